// AckTracker: the receive side of one packet number space (RFC 9000 §13.2, ack-frequency draft).
//
// It answers three questions for the connection:
//   - is this packet a duplicate? (RFC 9000 §12.3: drop it after decryption, before processing)
//   - must an ACK be sent now, or by when? (RFC 9000 §13.2.1; ack-frequency draft §6)
//   - what ACK frame to send (RFC 9000 §13.2.3, §19.3), including ECN counts (§13.4.1)?
//
// Two range sets: `received_` deduplicates (bounded to kMaxTrackedRanges intervals; packets below
// the oldest tracked interval count as duplicates), `to_ack_` is what the next ACK reports and
// shrinks when an ACK we sent is itself acknowledged (RFC 9000 §13.2.4, on_ack_acknowledged).
//
// ACK timing. Initial and Handshake: every ack-eliciting packet is acknowledged immediately
// (RFC 9000 §13.2.1). Application data: an ACK is due once more than ack_eliciting_threshold
// (default 1, i.e. every 2nd packet) ack-eliciting packets are unacknowledged, max_ack_delay after
// the first unacknowledged ack-eliciting packet, or immediately on IMMEDIATE_ACK, on a CE mark, or
// on reordering: with reordering_threshold 1 (the default) any ack-eliciting packet below the
// largest ack-eliciting one received, or one above it leaving a gap (RFC 9000 §13.2.1); with a
// larger threshold the draft's rule (immediate when the smallest unreported missing packet is at
// least that far below the largest received); with 0 never for reordering. Non-ack-eliciting
// packets are acknowledged only along with others (§13.2.1).
//
// Usage per received (and successfully decrypted) packet:
//   if (t.is_duplicate(pn)) drop; else { process frames; t.on_packet_received(now, pn, ae, ecn); }
//   when t.ack_due(now) (or a timer at t.ack_deadline()): if (auto a = t.build_ack(now, exp)) {
//     send it; t.on_ack_sent(); remember a->largest with the packet carrying it }
//   when that packet is acknowledged: t.on_ack_acknowledged(largest_in_that_ack).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "base/time.h"
#include "quic/ecn.h"
#include "quic/frame.h"
#include "quic/range_set.h"

namespace iroh::quic {

enum class PacketNumberSpace : std::uint8_t { kInitial, kHandshake, kApplicationData };

class AckTracker {
 public:
  static constexpr std::size_t kMaxTrackedRanges = 1000;
  static constexpr Duration kDefaultMaxAckDelay = std::chrono::milliseconds(25);

  explicit AckTracker(PacketNumberSpace space, Duration max_ack_delay = kDefaultMaxAckDelay);

  PacketNumberSpace space() const { return space_; }

  bool is_duplicate(std::uint64_t pn) const;
  // Records a packet that is not a duplicate (call after it was processed successfully).
  void on_packet_received(Instant now, std::uint64_t pn, bool ack_eliciting, EcnCodepoint ecn);

  bool ack_due(Instant now) const;
  // When an ACK becomes due (≤ now if it already is); nullopt if none is needed.
  std::optional<Instant> ack_deadline() const;
  // The ACK frame to send now (the newest max_ranges ranges), or nullopt if nothing is to be
  // acknowledged. ack_delay is the time since the largest packet was received, in microseconds
  // shifted right by `ack_delay_exponent` (our transport parameter, RFC 9000 §18.2, default 3).
  std::optional<frame::Ack> build_ack(Instant now, std::uint64_t ack_delay_exponent,
                                      std::size_t max_ranges = 32);
  // The ACK last built was sent: resets the ack-eliciting counter, the delay timer and
  // any immediate-ACK request.
  void on_ack_sent();
  // RFC 9000 §13.2.4: an ACK we sent with this Largest Acknowledged was acknowledged; stop
  // reporting ranges at or below it.
  void on_ack_acknowledged(std::uint64_t largest_in_that_ack);

  // IMMEDIATE_ACK frame received (ack-frequency draft).
  void set_immediate_ack_requested() { immediate_ = true; }
  // A newer ACK_FREQUENCY frame (ack-frequency draft): the caller checks its sequence number and
  // converts Request Max Ack Delay (µs) to a Duration. Applies to later packets.
  void set_ack_frequency(std::uint64_t ack_eliciting_threshold, Duration max_ack_delay,
                         std::uint64_t reordering_threshold);
  // Our max_ack_delay transport parameter (application data only).
  void set_max_ack_delay(Duration d) { max_ack_delay_ = d; }
  Duration max_ack_delay() const { return max_ack_delay_; }

  bool has_ack_eliciting_unacked() const { return unacked_ack_eliciting_ > 0; }
  std::optional<std::uint64_t> largest() const { return largest_; }
  // Cumulative ECN counts of received packets (RFC 9000 §13.4.1).
  const frame::EcnCounts& ecn_counts() const { return ecn_; }

 private:
  bool reordered(std::uint64_t pn) const;

  PacketNumberSpace space_;
  Duration max_ack_delay_;
  std::uint64_t ack_eliciting_threshold_ = 1;
  std::uint64_t reordering_threshold_ = 1;

  RangeSet received_;              // deduplication
  std::uint64_t dedup_floor_ = 0;  // everything below is treated as a duplicate
  RangeSet to_ack_;                // reported by the next ACK

  std::optional<std::uint64_t> largest_;
  Instant largest_time_{};
  std::optional<std::uint64_t> largest_ack_eliciting_;
  std::optional<std::uint64_t> largest_acked_by_us_;  // Largest Acknowledged of the last ACK sent
  std::optional<std::uint64_t> last_built_largest_;

  std::uint64_t unacked_ack_eliciting_ = 0;
  std::optional<Instant> deadline_;  // max_ack_delay timer, or the time it became immediate
  bool immediate_ = false;
  Instant last_receive_{};

  frame::EcnCounts ecn_;
  bool ecn_seen_ = false;
};

}  // namespace iroh::quic

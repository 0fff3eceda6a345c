// SentPackets: the sender side of one packet number space — loss detection (RFC 9002 §6,
// Appendix A).
//
// Holds every packet sent and not yet acknowledged or declared lost, in a deque indexed by
// packet-number offset, plus a RangeSet of the packet numbers that are settled (acknowledged,
// lost, or skipped). Costs: on_sent amortised O(1); on_ack O(log n) per ACK range plus O(1) per
// newly acknowledged packet, however often the peer repeats old ranges; detect_lost amortised O(1)
// per lost packet (packets are scanned in send order and the scan stops at the first one that is
// not yet lost). 10^5 outstanding packets are fine.
//
// This object owns bytes_in_flight for its space; the path's total is the sum over its spaces
// (Initial + Handshake + application data). It does not own the RTT estimate or the congestion
// controller; the caller feeds them from AckOutcome:
//
//   auto r = space.on_ack(now, ack_intervals(ack), rtt);            // PROTOCOL_VIOLATION → close
//   if (r->latest_rtt) rtt.update(*r->latest_rtt, ack_delay, confirmed, max_ack_delay);
//   for (p : r->newly_acked) if (p.in_flight) cc.on_packet_acked(now, p.time_sent, p.bytes, rtt,
//   ..) if (!r->lost.empty()) { cc.on_congestion_event(now, r->lost.back().time_sent);
//     if (in_persistent_congestion(r->lost, rtt, max_ack_delay, first_rtt_sample))
//       cc.on_persistent_congestion(now); }
//   rearm the loss/PTO timer from loss_time() / pto_duration(...).
//
// on_ack runs loss detection itself (RFC 9002 A.7 does it inside OnAckReceived), before the
// caller can update the RttEstimator with the new sample; it therefore uses
// max(rtt.latest(), rtt.smoothed(), this ACK's latest_rtt) — for the first sample just that
// sample, exactly what the updated estimator would give, and later at worst slightly more
// conservative than after the update. Lost packets are forgotten (spurious-loss detection is not
// implemented); an ACK for them later is ignored.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <vector>

#include "base/time.h"
#include "quic/error.h"
#include "quic/frame.h"
#include "quic/range_set.h"
#include "quic/rtt_estimator.h"

namespace iroh::quic {

inline constexpr std::uint64_t kPacketThreshold = 3;           // RFC 9002 §6.1.1
inline constexpr unsigned kPersistentCongestionThreshold = 3;  // RFC 9002 §7.6.1

struct SentPacketMeta {
  std::uint64_t pn = 0;
  Instant time_sent{};
  std::uint32_t bytes = 0;
  bool ack_eliciting = false;
  bool in_flight = false;  // RFC 9002 §2: ack-eliciting or PADDING; not ACK-only packets
  bool ect0 = false;       // sent ECT(0)-marked (EcnValidator bookkeeping)
};

struct AckOutcome {
  std::vector<SentPacketMeta> newly_acked;  // ascending packet numbers
  std::vector<SentPacketMeta> lost;         // ascending packet numbers
  // Set iff the largest acknowledged is newly acknowledged and some newly acknowledged packet is
  // ack-eliciting (RFC 9002 §5.1): now - time_sent of the largest acknowledged.
  std::optional<Duration> latest_rtt;
  std::optional<std::uint64_t> largest_newly_acked;
  // Whether this ACK raised largest_acked() (gate for EcnValidator::on_ack, RFC 9000 §13.4.2.1).
  bool largest_acked_increased = false;
};

class SentPackets {
 public:
  // Packet numbers must increase (gaps, i.e. skipped packet numbers, are fine) and time_sent
  // must not decrease (loss detection relies on send order = packet number order).
  void on_sent(const SentPacketMeta& packet);

  // `intervals` as frame::ack_intervals() returns them (largest first, disjoint). Acking a packet
  // number above the largest sent is PROTOCOL_VIOLATION (RFC 9000 §13.1).
  QuicResult<AckOutcome> on_ack(Instant now, const std::vector<frame::PacketInterval>& intervals,
                                const RttEstimator& rtt);

  // RFC 9002 §6.1 / A.10: packets below largest_acked() that are kPacketThreshold behind it or
  // were sent more than 9/8 · max(srtt, latest_rtt) (at least kGranularity) ago. Removes and
  // returns them (ascending), and recomputes loss_time(). Call when the loss timer fires.
  std::vector<SentPacketMeta> detect_lost(Instant now, const RttEstimator& rtt);

  // When the earliest not-yet-lost packet below largest_acked() crosses the time threshold
  // (the loss-detection timer of RFC 9002 §6.1.2 / A.8), if any.
  std::optional<Instant> loss_time() const { return loss_time_; }
  // Send time of the most recent ack-eliciting packet (acknowledged or not), for the PTO.
  std::optional<Instant> last_ack_eliciting_sent() const { return last_ack_eliciting_sent_; }
  std::uint64_t bytes_in_flight() const { return bytes_in_flight_; }
  bool has_ack_eliciting_in_flight() const { return ack_eliciting_in_flight_ > 0; }
  // RFC 9002 §6.4: key discard. Forgets every packet and resets the space's state; returns the
  // packets that were in flight so the caller can remove them from congestion control (without
  // treating them as lost).
  std::vector<SentPacketMeta> discard();
  std::optional<std::uint64_t> largest_acked() const { return largest_acked_; }
  std::optional<std::uint64_t> largest_sent() const { return largest_sent_; }
  // Packets outstanding (neither acknowledged nor lost).
  std::size_t size() const { return outstanding_; }

 private:
  enum class Slot : std::uint8_t { kEmpty, kOutstanding };
  struct Entry {
    SentPacketMeta meta;
    Slot slot = Slot::kEmpty;
  };

  Entry* find(std::uint64_t pn);
  // Removes an outstanding entry's accounting and marks its slot settled.
  void settle(Entry& e);
  void trim_front();
  std::vector<SentPacketMeta> detect_lost_with(Instant now, Duration rtt_for_loss);

  std::deque<Entry> entries_;  // entries_[i].meta.pn == base_ + i (kEmpty for skipped/settled)
  std::uint64_t base_ = 0;
  RangeSet settled_;  // settled packet numbers ≥ base_ (acknowledged, lost, or never sent)
  std::optional<std::uint64_t> largest_sent_;
  std::optional<std::uint64_t> largest_acked_;
  std::optional<Instant> loss_time_;
  std::optional<Instant> last_ack_eliciting_sent_;
  std::uint64_t bytes_in_flight_ = 0;
  std::size_t ack_eliciting_in_flight_ = 0;
  std::size_t outstanding_ = 0;
};

// RFC 9002 §7.6: (smoothed + max(4·rttvar, kGranularity) + max_ack_delay) · 3.
Duration persistent_congestion_duration(const RttEstimator& rtt, Duration max_ack_delay);

// RFC 9002 §7.6.2 / A.8 for one batch of lost packets of one space (ascending pn, as AckOutcome
// and detect_lost return them): true if two ack-eliciting packets, both sent after the first RTT
// sample, are lost more than the persistent congestion duration apart with no packet between
// them acknowledged. "None between acknowledged" is judged conservatively: the lost packets must
// have consecutive packet numbers (a gap may hide an acknowledged packet). False without an RTT
// sample.
bool in_persistent_congestion(const std::vector<SentPacketMeta>& lost, const RttEstimator& rtt,
                              Duration max_ack_delay, std::optional<Instant> first_rtt_sample);

// RFC 9002 §6.2.1: (pto_base + max_ack_delay) · 2^pto_count. Pass max_ack_delay = 0 for the
// Initial and Handshake spaces. The exponent is capped at kMaxPtoBackoffShift and the result at
// kMaxPto.
inline constexpr unsigned kMaxPtoBackoffShift = 16;
inline constexpr Duration kMaxPto = std::chrono::seconds(600);
Duration pto_duration(const RttEstimator& rtt, Duration max_ack_delay, unsigned pto_count);

}  // namespace iroh::quic

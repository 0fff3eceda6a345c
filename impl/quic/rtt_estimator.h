// RttEstimator: one path's round-trip-time estimate (RFC 9002 §5).
//
// min_rtt (§5.2), smoothed_rtt and rttvar (§5.3) from latest_rtt samples. Before the first sample
// smoothed() is the initial RTT and rttvar() half of it (§5.3, §6.2.2), so pto_base() and pacing
// work from the first packet. The caller takes samples (RFC 9002 §5.1: only when the largest
// acknowledged packet is newly acknowledged and at least one newly acknowledged packet was
// ack-eliciting; SentPackets::on_ack reports exactly that as AckOutcome::latest_rtt) and passes
// the peer's ack delay already decoded to a Duration (ACK Delay << ack_delay_exponent). For
// Initial and Handshake packets the ack delay is 0 (RFC 9002 §5.3: it SHOULD be ignored there).
#pragma once

#include <chrono>

#include "base/time.h"

namespace iroh::quic {

// RFC 9002 §6.1.2: timer granularity.
inline constexpr Duration kGranularity = std::chrono::milliseconds(1);
// RFC 9002 §6.2.2: initial RTT before any sample.
inline constexpr Duration kInitialRtt = std::chrono::milliseconds(333);

class RttEstimator {
 public:
  explicit RttEstimator(Duration initial_rtt = kInitialRtt);

  // RFC 9002 §5.3. `ack_delay` is limited to `max_ack_delay` once the handshake is confirmed
  // (before, the peer's max_ack_delay MAY be ignored, §5.3), and is subtracted only when that
  // leaves at least min_rtt. The first sample sets smoothed = latest, rttvar = latest / 2.
  void update(Duration latest_rtt, Duration ack_delay, bool handshake_confirmed,
              Duration max_ack_delay);

  bool has_sample() const { return has_sample_; }
  Duration initial() const { return initial_; }
  // The most recent sample (0 before the first).
  Duration latest() const { return latest_; }
  Duration smoothed() const { return smoothed_; }
  Duration rttvar() const { return rttvar_; }
  // Minimum over the path's lifetime (0 before the first sample), not adjusted for ack delay.
  Duration min() const { return min_; }
  // smoothed + max(4 * rttvar, kGranularity): the PTO without max_ack_delay (RFC 9002 §6.2.1).
  Duration pto_base() const;

  // RFC 9002 §5.2: after persistent congestion min_rtt MAY be re-established from the next
  // sample; this sets min = latest.
  void reset_min_rtt() { min_ = latest_; }

 private:
  Duration initial_;
  Duration latest_{0};
  Duration smoothed_;
  Duration rttvar_;
  Duration min_{0};
  bool has_sample_ = false;
};

}  // namespace iroh::quic

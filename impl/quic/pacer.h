// Pacer: token-bucket pacing of one path's packets (RFC 9002 §7.7).
//
// Rate = kPacingGain (1.25) * cwnd / srtt, so the window drains in 0.8 RTT and ACK clocking cannot
// starve the sender. The bucket holds what the path carries in kBurstInterval (2 ms) at that
// rate — at least kBurstPackets (10) and at most kMaxBurstPackets (256) datagrams, never more than
// the window — and starts full. On a slow or long path that is the RFC's small burst; on a fast,
// short one (loopback, LAN) it lets a sender hand the kernel whole GSO batches per wake-up
// instead of arming a timer every few packets, which is where a userspace stack's CPU would go.
// Pass rtt.smoothed() as srtt: RttEstimator returns the initial RTT before
// the first sample, as §7.7 asks. Both calls are O(1) and allocation-free.
//
//   auto t = pacer.next_send_time(now, cc.window(), rtt.smoothed(), size);
//   if (t <= now) { send(); pacer.on_sent(now, size); } else { arm a timer for t; }
#pragma once

#include <cstdint>

#include "base/time.h"

namespace iroh::quic {

class Pacer {
 public:
  static constexpr std::uint64_t kBurstPackets = 10;
  static constexpr std::uint64_t kMaxBurstPackets = 256;
  static constexpr Duration kBurstInterval = std::chrono::milliseconds(2);
  static constexpr double kPacingGain = 1.25;

  explicit Pacer(std::uint64_t max_datagram_size);

  // When a packet of `packet_bytes` may be sent; a value <= now means immediately.
  Instant next_send_time(Instant now, std::uint64_t cwnd, Duration srtt,
                         std::uint64_t packet_bytes);
  // Takes `bytes` tokens (the bucket may not go below zero).
  void on_sent(Instant now, std::uint64_t bytes);
  void on_max_datagram_size(std::uint64_t max_datagram_size) { mds_ = max_datagram_size; }

  // Tokens available after the last refill (tests, diagnostics).
  double tokens() const { return tokens_; }

 private:
  void refill(Instant now);

  std::uint64_t mds_;
  double tokens_ = -1;       // < 0: not yet initialised (starts full)
  double capacity_ = 0;      // bytes
  double bytes_per_ns_ = 0;  // 0 until the first next_send_time
  Instant last_{};
};

}  // namespace iroh::quic

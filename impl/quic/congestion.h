// Congestion controllers, one per path: NewReno (RFC 9002 §7, Appendix B) and CUBIC (RFC 9438).
//
// Units are bytes. The controller does not track bytes in flight: the caller (SentPackets owns the
// count) compares bytes_in_flight with window() before sending. The caller reports:
//   - on_packet_sent for every in-flight packet (bytes_in_flight_after includes it);
//   - on_packet_acked for every newly acknowledged in-flight packet, with `app_limited` = true when
//     the sender was not using the window when the packet was sent or acked (RFC 9002 §7.8; e.g.
//     bytes_in_flight at send time was below window() and nothing more was queued); the window
//     does not grow then;
//   - on_congestion_event for declared losses (once per ACK, with the send time of the largest lost
//     packet) and for an increase of the ECN-CE count (with the send time of the largest newly
//     acknowledged packet). A packet sent at or before the start of the current recovery period
//     neither grows the window nor starts a new reduction (RFC 9002 §7.3.2, B.6);
//   - on_persistent_congestion after in_persistent_congestion(...) (sent_packets.h) is true
//     (RFC 9002 §7.6.2: window collapses to the minimum);
//   - on_max_datagram_size when PMTU changes (RFC 9002 §7.2).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "base/time.h"
#include "quic/rtt_estimator.h"

namespace iroh::quic {

enum class CongestionAlgorithm { kNewReno, kCubic };

// RFC 9002 §7.2: min(10 * mds, max(14720, 2 * mds)).
std::uint64_t initial_congestion_window(std::uint64_t max_datagram_size);
// RFC 9002 §7.2: 2 * mds.
std::uint64_t minimum_congestion_window(std::uint64_t max_datagram_size);

class CongestionController {
 public:
  virtual ~CongestionController() = default;

  virtual void on_packet_sent(Instant now, std::uint64_t bytes,
                              std::uint64_t bytes_in_flight_after) = 0;
  virtual void on_packet_acked(Instant now, Instant sent_time, std::uint64_t bytes,
                               const RttEstimator& rtt, bool app_limited) = 0;
  // Loss or ECN-CE. At most one window reduction per recovery period: ignored when
  // sent_time <= the start of the current recovery period.
  virtual void on_congestion_event(Instant now, Instant sent_time) = 0;
  virtual void on_persistent_congestion(Instant now) = 0;
  virtual void on_max_datagram_size(std::uint64_t max_datagram_size) = 0;

  virtual std::uint64_t window() const = 0;
  // UINT64_MAX while in the initial slow start.
  virtual std::uint64_t ssthresh() const = 0;
  virtual const char* name() const = 0;

  // Whether a packet sent at `sent_time` belongs to the current recovery period.
  virtual bool in_recovery(Instant sent_time) const = 0;
  bool in_slow_start() const { return window() < ssthresh(); }
};

std::unique_ptr<CongestionController> make_congestion_controller(CongestionAlgorithm algorithm,
                                                                 std::uint64_t max_datagram_size);

}  // namespace iroh::quic

// ECN codepoints and the sender's ECN validation (RFC 9000 §13.4, RFC 3168 §5).
//
// EcnValidator is the per-path, per-packet-number-space state of RFC 9000 §13.4.2: the sender
// marks its first kTestingPackets packets ECT(0) ("testing"), then stops marking until an ACK
// validates the path ("capable": mark everything) or shows that ECN is broken ("failed": never
// mark again). The connection tells it how many ECT(0)-marked packets it sent, and for every ACK
// that increases the largest acknowledged packet number, the ECN counts it carried and how many
// of the newly acknowledged packets had been sent ECT(0). An increase in the CE count is a
// congestion signal (RFC 9002 §7.1) that on_ack reports, so the caller can call
// CongestionController::on_congestion_event with the send time of the largest newly acked packet.
#pragma once

#include <cstdint>
#include <optional>

#include "quic/frame.h"

namespace iroh::quic {

// The two ECN bits of the IP header (RFC 3168 §5), numerically as on the wire.
enum class EcnCodepoint : std::uint8_t { kNotEct = 0b00, kEct1 = 0b01, kEct0 = 0b10, kCe = 0b11 };

enum class EcnState : std::uint8_t {
  kTesting,  // marking the first kTestingPackets packets, not yet validated
  kUnknown,  // testing packets sent, waiting for an ACK to validate them; not marking
  kCapable,  // validated: mark every packet
  kFailed,   // ECN disabled on this path
};

struct EcnAckResult {
  // How much the peer's CE count grew with this ACK (0 if validation failed or ECN is off).
  // Non-zero means a congestion event (RFC 9002 §7.1, Appendix B.7).
  std::uint64_t newly_ce = 0;
};

class EcnValidator {
 public:
  static constexpr std::uint64_t kTestingPackets = 10;  // RFC 9000 §13.4.2 example

  // `enabled` = false starts (and stays) in kFailed, e.g. when the socket cannot set ECN bits.
  explicit EcnValidator(bool enabled = true);

  EcnState state() const { return state_; }
  // The codepoint to put on the next packet sent on this path: ECT(0) or Not-ECT.
  EcnCodepoint codepoint_to_send() const;
  // Records one packet sent with `codepoint` (pass codepoint_to_send()'s result).
  void on_packet_sent(EcnCodepoint codepoint);
  // ECT(0)-marked packets declared lost. If every marked packet of the testing period is lost
  // before any was acknowledged, validation fails (RFC 9000 §13.4.2: ECN may be blackholing).
  void on_packets_lost(std::uint64_t ect0_lost);
  // An ACK frame of this space. Call only when the ACK increased the largest acknowledged packet
  // number (RFC 9000 §13.4.2.1: reordered ACKs must not fail validation); `newly_acked_ect0` is
  // how many of the packets it newly acknowledges were sent ECT(0). Fails validation if the ACK
  // lacks ECN counts while acking marked packets, if a count decreased, if ECT(0)+CE grew less
  // than the marked packets newly acked, or if counts exceed what was sent (ECT(1) or ECT(0)+CE
  // beyond the ECT(0) packets sent).
  EcnAckResult on_ack(const std::optional<frame::EcnCounts>& counts,
                      std::uint64_t newly_acked_ect0);

  std::uint64_t ect0_sent() const { return ect0_sent_; }
  const frame::EcnCounts& peer_counts() const { return counts_; }

 private:
  void fail() { state_ = EcnState::kFailed; }

  EcnState state_;
  std::uint64_t ect0_sent_ = 0;
  std::uint64_t ect0_lost_ = 0;
  std::uint64_t ect0_acked_ = 0;
  frame::EcnCounts counts_;
};

}  // namespace iroh::quic

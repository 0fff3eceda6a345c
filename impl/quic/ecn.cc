#include "quic/ecn.h"

namespace iroh::quic {

EcnValidator::EcnValidator(bool enabled)
    : state_(enabled ? EcnState::kTesting : EcnState::kFailed) {}

EcnCodepoint EcnValidator::codepoint_to_send() const {
  return state_ == EcnState::kTesting || state_ == EcnState::kCapable ? EcnCodepoint::kEct0
                                                                      : EcnCodepoint::kNotEct;
}

void EcnValidator::on_packet_sent(EcnCodepoint codepoint) {
  if (codepoint != EcnCodepoint::kEct0) return;
  ++ect0_sent_;
  if (state_ == EcnState::kTesting && ect0_sent_ >= kTestingPackets) state_ = EcnState::kUnknown;
}

void EcnValidator::on_packets_lost(std::uint64_t ect0_lost) {
  ect0_lost_ += ect0_lost;
  if ((state_ == EcnState::kTesting || state_ == EcnState::kUnknown) && ect0_acked_ == 0 &&
      ect0_sent_ >= kTestingPackets && ect0_lost_ >= ect0_sent_) {
    fail();
  }
}

EcnAckResult EcnValidator::on_ack(const std::optional<frame::EcnCounts>& counts,
                                  std::uint64_t newly_acked_ect0) {
  EcnAckResult out;
  if (state_ == EcnState::kFailed) return out;
  ect0_acked_ += newly_acked_ect0;
  if (!counts) {
    if (newly_acked_ect0 > 0) fail();
    return out;
  }
  const frame::EcnCounts& c = *counts;
  if (c.ect0 < counts_.ect0 || c.ect1 < counts_.ect1 || c.ce < counts_.ce) {
    fail();
    return out;
  }
  // We never send ECT(1), and the peer cannot have seen more ECT(0)/CE packets than we marked.
  if (c.ect1 > 0 || c.ect0 + c.ce > ect0_sent_) {
    fail();
    return out;
  }
  const std::uint64_t increase = (c.ect0 - counts_.ect0) + (c.ce - counts_.ce);
  if (increase < newly_acked_ect0) {
    fail();
    return out;
  }
  out.newly_ce = c.ce - counts_.ce;
  counts_ = c;
  if (newly_acked_ect0 > 0 && state_ != EcnState::kCapable) state_ = EcnState::kCapable;
  return out;
}

}  // namespace iroh::quic

// RFC 9000 §13.4.2 ECN validation (impl/quic/ecn.h).
#include "quic/ecn.h"

#include <gtest/gtest.h>

namespace iroh::quic {
namespace {

void send_marked(EcnValidator& v, int n) {
  for (int i = 0; i < n; ++i) v.on_packet_sent(v.codepoint_to_send());
}

TEST(Ecn, CodepointsMatchIpBits) {
  EXPECT_EQ(static_cast<int>(EcnCodepoint::kNotEct), 0);
  EXPECT_EQ(static_cast<int>(EcnCodepoint::kEct1), 1);
  EXPECT_EQ(static_cast<int>(EcnCodepoint::kEct0), 2);
  EXPECT_EQ(static_cast<int>(EcnCodepoint::kCe), 3);
}

TEST(EcnValidator, TestingMarksFirstPacketsThenWaits) {
  EcnValidator v;
  EXPECT_EQ(v.state(), EcnState::kTesting);
  send_marked(v, 10);
  EXPECT_EQ(v.ect0_sent(), 10u);
  EXPECT_EQ(v.state(), EcnState::kUnknown);
  EXPECT_EQ(v.codepoint_to_send(), EcnCodepoint::kNotEct);
}

TEST(EcnValidator, ValidAckMakesCapable) {
  EcnValidator v;
  send_marked(v, 3);
  auto r = v.on_ack(frame::EcnCounts{3, 0, 0}, 3);
  EXPECT_EQ(r.newly_ce, 0u);
  EXPECT_EQ(v.state(), EcnState::kCapable);
  EXPECT_EQ(v.codepoint_to_send(), EcnCodepoint::kEct0);
}

TEST(EcnValidator, CeIncreaseIsReported) {
  EcnValidator v;
  send_marked(v, 6);
  EXPECT_EQ(v.on_ack(frame::EcnCounts{2, 0, 1}, 3).newly_ce, 1u);
  EXPECT_EQ(v.on_ack(frame::EcnCounts{3, 0, 3}, 3).newly_ce, 2u);
  EXPECT_EQ(v.on_ack(frame::EcnCounts{3, 0, 3}, 0).newly_ce, 0u);
  EXPECT_EQ(v.state(), EcnState::kCapable);
}

TEST(EcnValidator, MissingCountsFailWhenMarkedPacketsAcked) {
  EcnValidator v;
  send_marked(v, 2);
  EXPECT_EQ(v.on_ack(std::nullopt, 0).newly_ce, 0u);  // acked only unmarked packets: fine
  EXPECT_EQ(v.state(), EcnState::kTesting);
  v.on_ack(std::nullopt, 2);
  EXPECT_EQ(v.state(), EcnState::kFailed);
  EXPECT_EQ(v.codepoint_to_send(), EcnCodepoint::kNotEct);
}

TEST(EcnValidator, DecreasingCountsFail) {
  EcnValidator v;
  send_marked(v, 4);
  v.on_ack(frame::EcnCounts{2, 0, 0}, 2);
  v.on_ack(frame::EcnCounts{1, 0, 0}, 0);
  EXPECT_EQ(v.state(), EcnState::kFailed);
  // Once failed, CE is no longer reported.
  EXPECT_EQ(v.on_ack(frame::EcnCounts{4, 0, 9}, 2).newly_ce, 0u);
}

TEST(EcnValidator, CountsBeyondWhatWasSentFail) {
  EcnValidator a;
  send_marked(a, 2);
  a.on_ack(frame::EcnCounts{3, 0, 0}, 2);
  EXPECT_EQ(a.state(), EcnState::kFailed);
  EcnValidator b;
  send_marked(b, 2);
  b.on_ack(frame::EcnCounts{1, 1, 0}, 2);  // ECT(1) never sent (also: increase 1 < 2)
  EXPECT_EQ(b.state(), EcnState::kFailed);
}

TEST(EcnValidator, UnderCountingFails) {
  EcnValidator v;
  send_marked(v, 4);
  v.on_ack(frame::EcnCounts{1, 0, 0}, 3);  // bleached: 3 marked packets acked, 1 counted
  EXPECT_EQ(v.state(), EcnState::kFailed);
}

TEST(EcnValidator, AllTestingPacketsLostFails) {
  EcnValidator v;
  send_marked(v, 10);
  v.on_packets_lost(9);
  EXPECT_EQ(v.state(), EcnState::kUnknown);
  v.on_packets_lost(1);
  EXPECT_EQ(v.state(), EcnState::kFailed);
}

TEST(EcnValidator, DisabledNeverMarks) {
  EcnValidator v(false);
  EXPECT_EQ(v.state(), EcnState::kFailed);
  EXPECT_EQ(v.codepoint_to_send(), EcnCodepoint::kNotEct);
  v.on_packet_sent(v.codepoint_to_send());
  EXPECT_EQ(v.ect0_sent(), 0u);
}

}  // namespace
}  // namespace iroh::quic

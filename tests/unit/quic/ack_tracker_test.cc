// Receive-side ACK generation, RFC 9000 §13.2 and the ack-frequency draft
// (impl/quic/ack_tracker.h).
#include "quic/ack_tracker.h"

#include <gtest/gtest.h>

#include <vector>

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using frame::PacketInterval;

Instant at(Duration d) { return instant_at(d); }

void recv(AckTracker& t, Instant now, std::uint64_t pn, bool ae = true,
          EcnCodepoint ecn = EcnCodepoint::kNotEct) {
  ASSERT_FALSE(t.is_duplicate(pn)) << pn;
  t.on_packet_received(now, pn, ae, ecn);
}

std::vector<PacketInterval> intervals(const frame::Ack& a) { return frame::ack_intervals(a); }

TEST(AckTracker, HandshakeSpacesAckImmediately) {
  for (auto space : {PacketNumberSpace::kInitial, PacketNumberSpace::kHandshake}) {
    AckTracker t(space);
    EXPECT_FALSE(t.ack_deadline());
    recv(t, at(1s), 0, /*ae=*/false);
    EXPECT_FALSE(t.ack_due(at(2s)));  // non-ack-eliciting alone never triggers an ACK
    recv(t, at(1s), 1);
    EXPECT_TRUE(t.ack_due(at(1s)));
    EXPECT_EQ(t.ack_deadline(), at(1s));
    auto ack = t.build_ack(at(1s), 3);
    ASSERT_TRUE(ack);
    EXPECT_EQ(intervals(*ack), (std::vector<PacketInterval>{{0, 1}}));
    t.on_ack_sent();
    EXPECT_FALSE(t.ack_due(at(5s)));
  }
}

TEST(AckTracker, ApplicationDataEverySecondPacketOrMaxAckDelay) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  recv(t, at(1s), 0);
  EXPECT_TRUE(t.has_ack_eliciting_unacked());
  EXPECT_EQ(t.ack_deadline(), at(1s) + 25ms);
  EXPECT_FALSE(t.ack_due(at(1s) + 24ms));
  EXPECT_TRUE(t.ack_due(at(1s) + 25ms));
  recv(t, at(1s) + 5ms, 1);
  EXPECT_TRUE(t.ack_due(at(1s) + 5ms));  // second ack-eliciting packet
  ASSERT_TRUE(t.build_ack(at(1s) + 5ms, 3));
  t.on_ack_sent();
  EXPECT_FALSE(t.has_ack_eliciting_unacked());
  EXPECT_FALSE(t.ack_deadline());
  recv(t, at(2s), 2);
  EXPECT_EQ(t.ack_deadline(), at(2s) + 25ms);  // the timer restarts from the next packet
  t.set_max_ack_delay(10ms);
  recv(t, at(3s), 3, false);
  EXPECT_EQ(t.ack_deadline(), at(2s) + 25ms);
}

TEST(AckTracker, BuildsRangesAndAckDelay) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  for (std::uint64_t pn : {0, 1, 2, 5, 6, 9}) recv(t, at(1s), pn, pn != 9);
  recv(t, at(1s), 10);
  ASSERT_EQ(t.largest(), 10u);
  auto ack = t.build_ack(at(1s) + 8ms, 3);
  ASSERT_TRUE(ack);
  EXPECT_EQ(intervals(*ack), (std::vector<PacketInterval>{{9, 10}, {5, 6}, {0, 2}}));
  EXPECT_EQ(ack->ack_delay, 8000u >> 3);
  EXPECT_FALSE(ack->ecn);
  // Delay is measured from the largest packet's arrival.
  recv(t, at(2s), 8, false);
  EXPECT_EQ(t.build_ack(at(2s), 0)->ack_delay, 1'000'000u);
  // max_ranges keeps the newest ranges.
  auto two = t.build_ack(at(2s), 3, 2);
  EXPECT_EQ(intervals(*two), (std::vector<PacketInterval>{{8, 10}, {5, 6}}));
}

TEST(AckTracker, Duplicates) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  recv(t, at(1s), 3);
  EXPECT_TRUE(t.is_duplicate(3));
  EXPECT_FALSE(t.is_duplicate(2));
  EXPECT_FALSE(t.is_duplicate(4));
  // Forgetting acknowledged ranges does not make old packets new again.
  ASSERT_TRUE(t.build_ack(at(1s), 3));
  t.on_ack_sent();
  t.on_ack_acknowledged(3);
  EXPECT_TRUE(t.is_duplicate(3));
}

TEST(AckTracker, DedupHorizonIsBounded) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  for (std::uint64_t i = 0; i < 1500; ++i) t.on_packet_received(at(1s), 10 + 2 * i, false, {});
  // 1500 separate intervals: the oldest were dropped, and everything below the oldest tracked
  // interval is a duplicate, including packets never received.
  EXPECT_TRUE(t.is_duplicate(0));
  EXPECT_TRUE(t.is_duplicate(11));
  EXPECT_TRUE(t.is_duplicate(10 + 2 * 499));
  EXPECT_FALSE(t.is_duplicate(10 + 2 * 1499 - 1));
  EXPECT_TRUE(t.is_duplicate(10 + 2 * 1499));
  auto ack = t.build_ack(at(1s), 3, 5000);
  EXPECT_LE(intervals(*ack).size(), AckTracker::kMaxTrackedRanges);
}

TEST(AckTracker, ReorderingTriggersImmediateAck) {
  {
    AckTracker t(PacketNumberSpace::kApplicationData);
    recv(t, at(1s), 0);
    t.build_ack(at(1s), 3);
    t.on_ack_sent();
    recv(t, at(2s), 2);  // gap: 1 is missing
    EXPECT_TRUE(t.ack_due(at(2s)));
  }
  {
    AckTracker t(PacketNumberSpace::kApplicationData);
    recv(t, at(1s), 0);
    recv(t, at(1s), 2, false);  // not ack-eliciting: no immediate ACK
    EXPECT_FALSE(t.ack_due(at(1s)));
    t.build_ack(at(1s), 3);
    t.on_ack_sent();
    recv(t, at(2s), 3);  // 1 is missing between the largest ack-eliciting packet (0) and 3
    EXPECT_TRUE(t.ack_due(at(2s)));
  }
  {
    AckTracker t(PacketNumberSpace::kApplicationData);
    recv(t, at(1s), 0);
    recv(t, at(1s), 2);
    t.build_ack(at(1s), 3);
    t.on_ack_sent();
    recv(t, at(2s), 1);  // below the largest ack-eliciting packet
    EXPECT_TRUE(t.ack_due(at(2s)));
  }
  {
    AckTracker t(PacketNumberSpace::kApplicationData);
    recv(t, at(1s), 0);
    t.build_ack(at(1s), 3);
    t.on_ack_sent();
    recv(t, at(2s), 1);  // in order
    EXPECT_FALSE(t.ack_due(at(2s)));
  }
}

TEST(AckTracker, ImmediateAckFrame) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  recv(t, at(1s), 0);
  EXPECT_FALSE(t.ack_due(at(1s)));
  t.set_immediate_ack_requested();
  EXPECT_TRUE(t.ack_due(at(1s)));
  t.build_ack(at(1s), 3);
  t.on_ack_sent();
  recv(t, at(2s), 1);
  EXPECT_FALSE(t.ack_due(at(2s)));  // the request was consumed by the ACK
}

TEST(AckTracker, AckFrequencyThresholds) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  t.set_ack_frequency(/*ack_eliciting_threshold=*/9, 100ms, /*reordering_threshold=*/0);
  for (std::uint64_t pn = 0; pn < 8; ++pn) recv(t, at(1s), pn);
  recv(t, at(1s), 12);  // the 9th: a gap, but reordering threshold 0
  EXPECT_FALSE(t.ack_due(at(1s)));
  EXPECT_EQ(t.ack_deadline(), at(1s) + 100ms);
  recv(t, at(1s), 13);  // the 10th ack-eliciting packet: more than 9 unacknowledged
  EXPECT_TRUE(t.ack_due(at(1s)));
}

TEST(AckTracker, ReorderingThresholdAboveOne) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  t.set_ack_frequency(100, 1s, /*reordering_threshold=*/3);
  recv(t, at(1s), 0);
  recv(t, at(1s), 2);  // 1 missing: 2 - 1 < 3
  recv(t, at(1s), 3);
  EXPECT_FALSE(t.ack_due(at(1s)));
  recv(t, at(1s), 4);  // 4 - 1 ≥ 3: packet 1 would now be declared lost by the sender
  EXPECT_TRUE(t.ack_due(at(1s)));
  t.build_ack(at(1s), 3);
  t.on_ack_sent();  // reported up to 4
  recv(t, at(2s), 5);
  recv(t, at(2s), 6);
  EXPECT_FALSE(t.ack_due(at(2s)));  // packet 1 was already reported missing
}

TEST(AckTracker, AckOfAckForgetsRanges) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  for (std::uint64_t pn : {0, 1, 3, 4}) recv(t, at(1s), pn);
  auto a = t.build_ack(at(1s), 3);
  ASSERT_TRUE(a);
  t.on_ack_sent();
  recv(t, at(2s), 6);
  t.on_ack_acknowledged(a->largest);
  auto b = t.build_ack(at(2s), 3);
  EXPECT_EQ(intervals(*b), (std::vector<PacketInterval>{{6, 6}}));
  t.on_ack_acknowledged(6);
  EXPECT_FALSE(t.build_ack(at(2s), 3));
  EXPECT_EQ(t.largest(), 6u);
}

TEST(AckTracker, EcnCountsAndCeIsImmediate) {
  AckTracker t(PacketNumberSpace::kApplicationData);
  recv(t, at(1s), 0, true, EcnCodepoint::kEct0);
  recv(t, at(1s), 1, false, EcnCodepoint::kEct1);
  EXPECT_FALSE(t.ack_due(at(1s)));
  recv(t, at(1s), 2, true, EcnCodepoint::kCe);
  EXPECT_TRUE(t.ack_due(at(1s)));
  auto a = t.build_ack(at(1s), 3);
  ASSERT_TRUE(a && a->ecn);
  EXPECT_EQ(*a->ecn, (frame::EcnCounts{1, 1, 1}));
  t.on_ack_sent();
  t.on_ack_acknowledged(2);
  recv(t, at(2s), 3, true, EcnCodepoint::kEct0);
  EXPECT_EQ(*t.build_ack(at(2s), 3)->ecn, (frame::EcnCounts{2, 1, 1}));  // cumulative
}

}  // namespace
}  // namespace iroh::quic

// Sender-side loss detection, RFC 9002 §6 and Appendix A (impl/quic/sent_packets.h).
#include "quic/sent_packets.h"

#include <gtest/gtest.h>

#include <chrono>
#include <vector>

#include "quic/ack_tracker.h"

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using frame::PacketInterval;

Instant at(Duration d) { return instant_at(d); }

SentPacketMeta pkt(std::uint64_t pn, Instant t, std::uint32_t bytes = 1200, bool ae = true,
                   bool in_flight = true) {
  return SentPacketMeta{pn, t, bytes, ae, in_flight};
}

std::vector<std::uint64_t> pns(const std::vector<SentPacketMeta>& v) {
  std::vector<std::uint64_t> out;
  for (const auto& p : v) out.push_back(p.pn);
  return out;
}

RttEstimator rtt_of(Duration d) {
  RttEstimator r;
  r.update(d, 0ms, true, 25ms);
  return r;
}

TEST(SentPackets, AckRemovesPacketsAndSamplesRtt) {
  SentPackets s;
  RttEstimator rtt;
  for (std::uint64_t pn = 0; pn < 4; ++pn) s.on_sent(pkt(pn, at(1s + pn * 1ms)));
  s.on_sent(pkt(4, at(1s + 4ms), 50, /*ae=*/false, /*in_flight=*/false));  // ACK-only packet
  EXPECT_EQ(s.bytes_in_flight(), 4800u);
  EXPECT_EQ(s.size(), 5u);
  EXPECT_TRUE(s.has_ack_eliciting_in_flight());
  EXPECT_EQ(s.last_ack_eliciting_sent(), at(1s + 3ms));
  EXPECT_FALSE(s.largest_acked());

  auto r = s.on_ack(at(1s + 103ms), {{2, 3}, {0, 1}}, rtt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pns(r->newly_acked), (std::vector<std::uint64_t>{0, 1, 2, 3}));
  EXPECT_EQ(r->largest_newly_acked, 3u);
  ASSERT_TRUE(r->latest_rtt);
  EXPECT_EQ(*r->latest_rtt, 100ms);
  EXPECT_TRUE(r->largest_acked_increased);
  EXPECT_TRUE(r->lost.empty());
  EXPECT_EQ(s.bytes_in_flight(), 0u);
  EXPECT_FALSE(s.has_ack_eliciting_in_flight());
  EXPECT_EQ(s.size(), 1u);
  EXPECT_EQ(s.largest_acked(), 3u);

  // Re-acknowledging is a no-op; the largest is not newly acked so no RTT sample.
  r = s.on_ack(at(2s), {{0, 3}}, rtt);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->newly_acked.empty());
  EXPECT_FALSE(r->latest_rtt);
  EXPECT_FALSE(r->largest_acked_increased);
}

TEST(SentPackets, NoRttSampleWithoutAckElicitingOrWhenLargestNotNew) {
  SentPackets s;
  RttEstimator rtt;
  s.on_sent(pkt(0, at(1s), 40, false, false));
  s.on_sent(pkt(1, at(1s), 40, false, false));
  auto r = s.on_ack(at(2s), {{0, 1}}, rtt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->newly_acked.size(), 2u);
  EXPECT_FALSE(r->latest_rtt);  // only non-ack-eliciting packets newly acked

  s.on_sent(pkt(2, at(3s)));
  s.on_sent(pkt(3, at(3s)));
  ASSERT_TRUE(s.on_ack(at(4s), {{3, 3}}, rtt).ok());
  r = s.on_ack(at(5s), {{2, 3}}, rtt);  // 2 newly acked, but the largest (3) is not
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pns(r->newly_acked), (std::vector<std::uint64_t>{2}));
  EXPECT_FALSE(r->latest_rtt);
}

TEST(SentPackets, AckOfUnsentPacketIsProtocolViolation) {
  SentPackets s;
  RttEstimator rtt;
  auto r = s.on_ack(at(1s), {{0, 0}}, rtt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kProtocolViolation);
  s.on_sent(pkt(0, at(1s)));
  r = s.on_ack(at(1s), {{5, 7}, {0, 0}}, rtt);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kProtocolViolation);
  EXPECT_EQ(s.size(), 1u);  // nothing was applied
  EXPECT_FALSE(s.largest_acked());
}

TEST(SentPackets, PacketThresholdLossAndLossTimer) {
  SentPackets s;
  const RttEstimator rtt = rtt_of(100ms);
  for (std::uint64_t pn = 0; pn < 6; ++pn) s.on_sent(pkt(pn, at(1s + pn * 10ms)));
  auto r = s.on_ack(at(1100ms), {{5, 5}}, rtt);
  ASSERT_TRUE(r.ok());
  // 5 - pn ≥ 3 for pn 0..2; 3 and 4 are within the reordering window and not old enough yet.
  EXPECT_EQ(pns(r->lost), (std::vector<std::uint64_t>{0, 1, 2}));
  EXPECT_EQ(s.bytes_in_flight(), 2 * 1200u);
  // loss_delay = 9/8 · max(srtt 100, latest 50) = 112.5 ms after packet 3 was sent (1030 ms).
  ASSERT_TRUE(s.loss_time());
  EXPECT_EQ(*s.loss_time(), at(1030ms) + 112500us);
  EXPECT_TRUE(s.detect_lost(at(1142ms), rtt).empty());
  auto lost = s.detect_lost(*s.loss_time(), rtt);
  EXPECT_EQ(pns(lost), (std::vector<std::uint64_t>{3}));
  EXPECT_EQ(*s.loss_time(), at(1040ms) + 112500us);
  EXPECT_EQ(pns(s.detect_lost(at(10s), rtt)), (std::vector<std::uint64_t>{4}));
  EXPECT_FALSE(s.loss_time());
  EXPECT_EQ(s.size(), 0u);
  EXPECT_EQ(s.bytes_in_flight(), 0u);
  // A late ACK for a packet declared lost is ignored.
  r = s.on_ack(at(11s), {{0, 5}}, rtt);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->newly_acked.empty());
}

TEST(SentPackets, TimeThresholdUsesFirstSampleBeforeEstimatorUpdate) {
  SentPackets s;
  RttEstimator rtt;  // no sample yet: smoothed = 333 ms
  s.on_sent(pkt(0, at(0ms)));
  s.on_sent(pkt(1, at(10ms)));
  // ACK of 1 at 30 ms: first sample 20 ms, loss delay = 22.5 ms; packet 0 was sent 30 ms ago.
  auto r = s.on_ack(at(30ms), {{1, 1}}, rtt);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->latest_rtt, 20ms);
  EXPECT_EQ(pns(r->lost), (std::vector<std::uint64_t>{0}));
}

TEST(SentPackets, SkippedPacketNumbers) {
  SentPackets s;
  RttEstimator rtt = rtt_of(100ms);
  s.on_sent(pkt(0, at(1s)));
  s.on_sent(pkt(3, at(1s)));  // 1 and 2 skipped
  s.on_sent(pkt(4, at(1s)));
  EXPECT_EQ(s.size(), 3u);
  auto r = s.on_ack(at(1100ms), {{1, 4}}, rtt);  // the peer (wrongly) acks 1, 2: ignored
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(pns(r->newly_acked), (std::vector<std::uint64_t>{3, 4}));
  EXPECT_EQ(pns(r->lost), (std::vector<std::uint64_t>{0}));  // 4 - 0 ≥ 3
}

TEST(SentPackets, DiscardReturnsInFlightPackets) {
  SentPackets s;
  RttEstimator rtt = rtt_of(100ms);
  s.on_sent(pkt(0, at(1s)));
  s.on_sent(pkt(1, at(1s), 30, false, false));
  s.on_sent(pkt(2, at(1s)));
  ASSERT_TRUE(s.on_ack(at(1100ms), {{2, 2}}, rtt).ok());
  auto gone = s.discard();
  EXPECT_EQ(pns(gone), (std::vector<std::uint64_t>{0}));
  EXPECT_EQ(s.bytes_in_flight(), 0u);
  EXPECT_EQ(s.size(), 0u);
  EXPECT_FALSE(s.loss_time());
  EXPECT_FALSE(s.last_ack_eliciting_sent());
  EXPECT_FALSE(s.has_ack_eliciting_in_flight());
}

TEST(SentPackets, HundredThousandOutstandingWithRepeatedRanges) {
  SentPackets s;
  const RttEstimator rtt = rtt_of(100ms);
  constexpr std::uint64_t kN = 100000;
  for (std::uint64_t pn = 0; pn < kN; ++pn) s.on_sent(pkt(pn, at(1s + pn * 1us)));
  EXPECT_EQ(s.size(), kN);
  // Packet 0 stays outstanding; ACKs keep re-reporting everything from 1 upwards (as a peer does
  // until its ranges are acknowledged) — each must cost O(newly acked), not O(range).
  std::uint64_t acked = 0;
  const Instant now = at(1s) + 50ms;  // before packet 0 crosses the time threshold
  for (std::uint64_t top = 100; top < kN; top += 100) {
    auto r = s.on_ack(now, {{1, top}}, RttEstimator(1s));
    ASSERT_TRUE(r.ok());
    acked += r->newly_acked.size();
    if (top == 100) {
      EXPECT_EQ(pns(r->lost), (std::vector<std::uint64_t>{0}));
    } else {
      EXPECT_TRUE(r->lost.empty());
    }
  }
  EXPECT_EQ(acked, kN - 100);
  EXPECT_EQ(s.size(), 99u);
  EXPECT_EQ(s.bytes_in_flight(), 99u * 1200);
  (void)rtt;
}

TEST(SentPackets, RoundTripThroughAckTracker) {
  // Sender → lossy path (every 5th packet dropped) → AckTracker → ACK frame → SentPackets.
  SentPackets sender;
  AckTracker receiver(PacketNumberSpace::kApplicationData);
  RttEstimator rtt;
  std::vector<std::uint64_t> lost, acked;
  Instant now = at(0ms);
  for (std::uint64_t pn = 0; pn < 200; ++pn, now += 1ms) {
    sender.on_sent(pkt(pn, now));
    if (pn % 5 != 4) receiver.on_packet_received(now + 20ms, pn, true, EcnCodepoint::kNotEct);
    if (receiver.ack_due(now + 20ms)) {
      auto ack = receiver.build_ack(now + 20ms, 3);
      ASSERT_TRUE(ack);
      receiver.on_ack_sent();
      auto r = sender.on_ack(now + 40ms, frame::ack_intervals(*ack), rtt);
      ASSERT_TRUE(r.ok());
      if (r->latest_rtt) rtt.update(*r->latest_rtt, 0ms, true, 25ms);
      for (const auto& p : r->newly_acked) acked.push_back(p.pn);
      for (const auto& p : r->lost) lost.push_back(p.pn);
    }
  }
  // Exactly the dropped packets are declared lost (those near the end may still be pending).
  ASSERT_GE(lost.size(), 35u);
  for (std::uint64_t pn : lost) EXPECT_EQ(pn % 5, 4u) << pn;
  EXPECT_EQ(acked.size() + lost.size() + sender.size(), 200u);
  EXPECT_EQ(rtt.latest(), 40ms);
}

TEST(PersistentCongestion, DurationAndDetection) {
  const RttEstimator rtt = rtt_of(100ms);  // srtt 100, rttvar 50: pto_base = 300 ms
  EXPECT_EQ(persistent_congestion_duration(rtt, 25ms), 975ms);
  const Instant first_sample = at(1s);
  auto lost_run = [&](Duration span) {
    std::vector<SentPacketMeta> v;
    for (std::uint64_t pn = 10; pn < 20; ++pn) {
      v.push_back(pkt(pn, at(2s) + span * static_cast<int>(pn - 10) / 9));
    }
    return v;
  };
  EXPECT_TRUE(in_persistent_congestion(lost_run(1s), rtt, 25ms, first_sample));
  EXPECT_FALSE(in_persistent_congestion(lost_run(975ms), rtt, 25ms, first_sample));
  // Packets sent before the first RTT sample do not count.
  EXPECT_FALSE(in_persistent_congestion(lost_run(1s), rtt, 25ms, at(3500ms)));
  EXPECT_FALSE(in_persistent_congestion(lost_run(1s), rtt, 25ms, std::nullopt));
  EXPECT_FALSE(in_persistent_congestion(lost_run(1s), RttEstimator(), 25ms, first_sample));
  // A gap in packet numbers (maybe an acknowledged packet) splits the run.
  auto gap = lost_run(1s);
  gap[5].pn = 100;
  for (std::size_t i = 6; i < gap.size(); ++i) gap[i].pn = 100 + i - 5;
  EXPECT_FALSE(in_persistent_congestion(gap, rtt, 25ms, first_sample));
  // Non-ack-eliciting endpoints do not count, but do not break the run either.
  auto non_ae = lost_run(1s);
  non_ae.back().ack_eliciting = false;
  EXPECT_FALSE(in_persistent_congestion(non_ae, rtt, 25ms, first_sample));
  auto non_ae_mid = lost_run(2s);
  non_ae_mid[4].ack_eliciting = false;
  EXPECT_TRUE(in_persistent_congestion(non_ae_mid, rtt, 25ms, first_sample));
}

TEST(Pto, DurationBacksOffAndIsCapped) {
  RttEstimator rtt;  // no sample: pto_base = 3 × 333 ms
  EXPECT_EQ(pto_duration(rtt, 0ms, 0), 999ms);
  const RttEstimator r = rtt_of(100ms);
  EXPECT_EQ(pto_duration(r, 25ms, 0), 325ms);
  EXPECT_EQ(pto_duration(r, 25ms, 1), 650ms);
  EXPECT_EQ(pto_duration(r, 25ms, 3), 2600ms);
  EXPECT_EQ(pto_duration(r, 25ms, 40), kMaxPto);
  EXPECT_EQ(pto_duration(r, 25ms, 1000), kMaxPto);
}

}  // namespace
}  // namespace iroh::quic

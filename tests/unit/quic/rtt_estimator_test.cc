// RFC 9002 §5 RTT estimation (impl/quic/rtt_estimator.h).
#include "quic/rtt_estimator.h"

#include <gtest/gtest.h>

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;

TEST(RttEstimator, BeforeFirstSampleUsesInitialRtt) {
  RttEstimator rtt;
  EXPECT_FALSE(rtt.has_sample());
  EXPECT_EQ(rtt.smoothed(), 333ms);
  EXPECT_EQ(rtt.rttvar(), Duration(333ms) / 2);
  EXPECT_EQ(rtt.latest(), 0ns);
  EXPECT_EQ(rtt.min(), 0ns);
  // RFC 9002 §6.2.2: PTO before a sample is 3 × initial RTT (+ max_ack_delay).
  EXPECT_EQ(rtt.pto_base(), 999ms);
  RttEstimator custom(100ms);
  EXPECT_EQ(custom.smoothed(), 100ms);
  EXPECT_EQ(custom.pto_base(), 300ms);
}

TEST(RttEstimator, FirstSampleInitialisesEverything) {
  RttEstimator rtt;
  rtt.update(100ms, 20ms, true, 25ms);  // ack delay ignored for the first sample
  EXPECT_TRUE(rtt.has_sample());
  EXPECT_EQ(rtt.latest(), 100ms);
  EXPECT_EQ(rtt.min(), 100ms);
  EXPECT_EQ(rtt.smoothed(), 100ms);
  EXPECT_EQ(rtt.rttvar(), 50ms);
  EXPECT_EQ(rtt.pto_base(), 300ms);
}

TEST(RttEstimator, SubsequentSamplesSmoothAndSubtractAckDelay) {
  RttEstimator rtt;
  rtt.update(100ms, 0ms, true, 25ms);
  // adjusted = 140 - 20 = 120; rttvar = 3/4·50 + 1/4·|100-120| = 42.5; srtt = 7/8·100 + 120/8.
  rtt.update(140ms, 20ms, true, 25ms);
  EXPECT_EQ(rtt.latest(), 140ms);
  EXPECT_EQ(rtt.min(), 100ms);
  EXPECT_EQ(rtt.rttvar(), 42500us);
  EXPECT_EQ(rtt.smoothed(), 102500us);
}

TEST(RttEstimator, AckDelayClampedToMaxAckDelayOnceConfirmed) {
  RttEstimator a, b;
  a.update(100ms, 0ms, true, 25ms);
  b.update(100ms, 0ms, false, 25ms);
  a.update(200ms, 80ms, true, 25ms);   // adjusted = 200 - 25
  b.update(200ms, 80ms, false, 25ms);  // not confirmed: adjusted = 200 - 80
  EXPECT_EQ(a.smoothed(), Duration(7 * 100ms + 175ms) / 8);
  EXPECT_EQ(b.smoothed(), Duration(7 * 100ms + 120ms) / 8);
}

TEST(RttEstimator, AckDelayNotSubtractedBelowMinRtt) {
  RttEstimator rtt;
  rtt.update(100ms, 0ms, true, 25ms);
  rtt.update(110ms, 20ms, true, 25ms);  // 110 < 100 + 20: use 110 unadjusted
  EXPECT_EQ(rtt.smoothed(), Duration(7 * 100ms + 110ms) / 8);
}

TEST(RttEstimator, MinRttTracksMinimumAndCanBeReset) {
  RttEstimator rtt;
  rtt.update(100ms, 0ms, true, 25ms);
  rtt.update(50ms, 0ms, true, 25ms);
  rtt.update(80ms, 0ms, true, 25ms);
  EXPECT_EQ(rtt.min(), 50ms);
  rtt.reset_min_rtt();
  EXPECT_EQ(rtt.min(), 80ms);
}

TEST(RttEstimator, PtoBaseHasGranularityFloor) {
  RttEstimator rtt;
  for (int i = 0; i < 200; ++i) rtt.update(10ms, 0ms, true, 25ms);
  EXPECT_EQ(rtt.smoothed(), 10ms);
  EXPECT_LT(rtt.rttvar() * 4, kGranularity);
  EXPECT_EQ(rtt.pto_base(), 10ms + kGranularity);
}

}  // namespace
}  // namespace iroh::quic

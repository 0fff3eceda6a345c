// NewReno (RFC 9002 §7, Appendix B) and CUBIC (RFC 9438) over virtual time
// (impl/quic/congestion.h).
#include "quic/congestion.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMds = 1200;

Instant at(Duration d) { return instant_at(d); }

RttEstimator rtt_of(Duration d) {
  RttEstimator r;
  r.update(d, 0ms, true, 25ms);
  return r;
}

// Acknowledges `bytes` in kMds packets, all sent at `sent`, acked at `now`.
void ack_bytes(CongestionController& cc, Instant now, Instant sent, std::uint64_t bytes,
               const RttEstimator& rtt, bool app_limited = false) {
  for (std::uint64_t b = 0; b < bytes; b += kMds) {
    cc.on_packet_acked(now, sent, std::min(kMds, bytes - b), rtt, app_limited);
  }
}

// One round trip: a window's worth of packets sent at `now`, acked one RTT later.
void run_round(CongestionController& cc, Instant& now, const RttEstimator& rtt) {
  const Instant sent = now;
  now += rtt.smoothed();
  ack_bytes(cc, now, sent, cc.window() / kMds * kMds, rtt);
}

TEST(Congestion, InitialAndMinimumWindows) {
  EXPECT_EQ(initial_congestion_window(1200), 12000u);
  EXPECT_EQ(initial_congestion_window(1500), 14720u);
  EXPECT_EQ(initial_congestion_window(9000), 18000u);
  EXPECT_EQ(minimum_congestion_window(1200), 2400u);
  for (auto algo : {CongestionAlgorithm::kNewReno, CongestionAlgorithm::kCubic}) {
    auto cc = make_congestion_controller(algo, kMds);
    EXPECT_EQ(cc->window(), 12000u);
    EXPECT_EQ(cc->ssthresh(), UINT64_MAX);
    EXPECT_TRUE(cc->in_slow_start());
  }
  EXPECT_EQ(std::string(make_congestion_controller(CongestionAlgorithm::kNewReno, kMds)->name()),
            "newreno");
  EXPECT_EQ(std::string(make_congestion_controller(CongestionAlgorithm::kCubic, kMds)->name()),
            "cubic");
}

class BothAlgorithms : public ::testing::TestWithParam<CongestionAlgorithm> {};

TEST_P(BothAlgorithms, SlowStartDoublesPerRoundTrip) {
  auto cc = make_congestion_controller(GetParam(), kMds);
  const RttEstimator rtt = rtt_of(100ms);
  Instant now = at(1s);
  run_round(*cc, now, rtt);
  EXPECT_EQ(cc->window(), 24000u);
  run_round(*cc, now, rtt);
  EXPECT_EQ(cc->window(), 48000u);
}

TEST_P(BothAlgorithms, AppLimitedDoesNotGrow) {
  auto cc = make_congestion_controller(GetParam(), kMds);
  const RttEstimator rtt = rtt_of(100ms);
  ack_bytes(*cc, at(1s), at(900ms), 12000, rtt, /*app_limited=*/true);
  EXPECT_EQ(cc->window(), 12000u);
  // Also in congestion avoidance.
  cc->on_congestion_event(at(1s), at(950ms));
  const std::uint64_t w = cc->window();
  for (int i = 0; i < 100; ++i) {
    ack_bytes(*cc, at(2s + i * 100ms), at(1500ms + i * 100ms), w, rtt, /*app_limited=*/true);
  }
  EXPECT_EQ(cc->window(), w);
}

TEST_P(BothAlgorithms, OneReductionPerRecoveryPeriod) {
  auto cc = make_congestion_controller(GetParam(), kMds);
  const RttEstimator rtt = rtt_of(100ms);
  Instant now = at(1s);
  run_round(*cc, now, rtt);  // 24000
  cc->on_congestion_event(at(1200ms), at(1050ms));
  const std::uint64_t reduced = cc->window();
  EXPECT_LT(reduced, 24000u);
  EXPECT_EQ(cc->ssthresh(), reduced);
  EXPECT_FALSE(cc->in_slow_start());
  EXPECT_TRUE(cc->in_recovery(at(1200ms)));
  EXPECT_FALSE(cc->in_recovery(at(1201ms)));
  // More losses of packets sent before the recovery started: no further reduction.
  cc->on_congestion_event(at(1250ms), at(1100ms));
  cc->on_congestion_event(at(1260ms), at(1200ms));
  EXPECT_EQ(cc->window(), reduced);
  // ACKs of packets sent before recovery started do not grow the window.
  ack_bytes(*cc, at(1300ms), at(1150ms), 24000, rtt);
  EXPECT_EQ(cc->window(), reduced);
  // A loss of a packet sent after the recovery started is a new congestion event.
  cc->on_congestion_event(at(1400ms), at(1210ms));
  EXPECT_LT(cc->window(), reduced);
}

TEST_P(BothAlgorithms, PersistentCongestionCollapsesToMinimumWindow) {
  auto cc = make_congestion_controller(GetParam(), kMds);
  const RttEstimator rtt = rtt_of(100ms);
  Instant now = at(1s);
  for (int i = 0; i < 4; ++i) run_round(*cc, now, rtt);
  cc->on_congestion_event(now, now - 50ms);
  cc->on_persistent_congestion(now);
  EXPECT_EQ(cc->window(), 2 * kMds);
  // Recovery period is reset: a packet sent before `now` can grow the window again (slow start
  // towards ssthresh).
  EXPECT_TRUE(cc->in_slow_start());
  cc->on_packet_acked(now + 100ms, now - 10ms, kMds, rtt, false);
  EXPECT_EQ(cc->window(), 3 * kMds);
}

TEST_P(BothAlgorithms, WindowNeverBelowMinimum) {
  auto cc = make_congestion_controller(GetParam(), kMds);
  for (int i = 0; i < 20; ++i) cc->on_congestion_event(at(1s + i * 1s), at(1s + i * 1s - 1ms));
  EXPECT_EQ(cc->window(), 2 * kMds);
}

TEST_P(BothAlgorithms, MaxDatagramSizeChange) {
  auto cc = make_congestion_controller(GetParam(), kMds);
  cc->on_max_datagram_size(1500);  // untouched window: recomputed (RFC 9002 §7.2)
  EXPECT_EQ(cc->window(), 14720u);
  for (int i = 0; i < 20; ++i) cc->on_congestion_event(at(1s + i * 1s), at(1s + i * 1s - 1ms));
  EXPECT_EQ(cc->window(), 3000u);
  cc->on_max_datagram_size(4000);
  EXPECT_EQ(cc->window(), 8000u);  // raised to the new minimum
}

INSTANTIATE_TEST_SUITE_P(Congestion, BothAlgorithms,
                         ::testing::Values(CongestionAlgorithm::kNewReno,
                                           CongestionAlgorithm::kCubic));

TEST(NewReno, HalvesOnLossAndGrowsOneDatagramPerWindow) {
  auto cc = make_congestion_controller(CongestionAlgorithm::kNewReno, kMds);
  const RttEstimator rtt = rtt_of(100ms);
  Instant now = at(1s);
  run_round(*cc, now, rtt);  // 24000
  cc->on_congestion_event(now, now - 10ms);
  EXPECT_EQ(cc->ssthresh(), 12000u);
  EXPECT_EQ(cc->window(), 12000u);
  now += 1ms;
  run_round(*cc, now, rtt);
  EXPECT_EQ(cc->window(), 13200u);
  ack_bytes(*cc, now + 100ms, now + 1ms, 12000, rtt);  // not yet a full window of 13200
  EXPECT_EQ(cc->window(), 13200u);
  ack_bytes(*cc, now + 100ms, now + 1ms, 1200, rtt);
  EXPECT_EQ(cc->window(), 14400u);
}

TEST(Cubic, MultiplicativeDecreaseIsBetaAndFastConvergence) {
  auto cc = make_congestion_controller(CongestionAlgorithm::kCubic, kMds);
  const RttEstimator rtt = rtt_of(100ms);
  ack_bytes(*cc, at(1s), at(900ms), 108000, rtt);  // 120000 = 100 datagrams
  ASSERT_EQ(cc->window(), 120000u);
  cc->on_congestion_event(at(1s), at(950ms));
  EXPECT_EQ(cc->window(), 84000u);  // × 0.7
  EXPECT_EQ(cc->ssthresh(), 84000u);
  // A second loss while below w_max (fast convergence lowers w_max to 85 datagrams).
  cc->on_congestion_event(at(2s), at(1500ms));
  EXPECT_EQ(cc->window(), 58800u);
}

// Window after each round trip of a long congestion-avoidance epoch.
std::vector<std::uint64_t> cubic_epoch(std::uint64_t w_max_bytes, Duration rtt_d, int rounds) {
  auto cc = make_congestion_controller(CongestionAlgorithm::kCubic, kMds);
  const RttEstimator rtt = rtt_of(rtt_d);
  ack_bytes(*cc, at(1s), at(900ms), w_max_bytes - cc->window(), rtt);
  cc->on_congestion_event(at(1s), at(950ms));
  Instant now = at(1s) + 1ms;
  std::vector<std::uint64_t> w{cc->window()};
  for (int i = 0; i < rounds; ++i) {
    run_round(*cc, now, rtt);
    w.push_back(cc->window());
  }
  return w;
}

TEST(Cubic, ConcaveThenConvexGrowth) {
  // w_max = 1000 datagrams: K = cbrt(1000 · 0.3 / 0.4) ≈ 9.09 s ≈ 91 rounds of 100 ms.
  const std::uint64_t w_max = 1000 * kMds;
  const auto w = cubic_epoch(w_max, 100ms, 180);
  ASSERT_EQ(w[0], 700 * kMds);
  for (std::size_t i = 1; i < w.size(); ++i) ASSERT_GE(w[i], w[i - 1]) << i;
  auto growth = [&](int from, int to) { return w[to] - w[from]; };
  // Concave: growth slows down as the window approaches w_max...
  EXPECT_GT(growth(0, 10), growth(40, 50));
  EXPECT_GT(growth(40, 50), growth(80, 90));
  // ...plateaus near w_max around K...
  EXPECT_NEAR(static_cast<double>(w[91]), static_cast<double>(w_max), 0.03 * w_max);
  // ...then convex: probing accelerates beyond w_max.
  EXPECT_LT(growth(100, 110), growth(130, 140));
  EXPECT_LT(growth(130, 140), growth(170, 180));
  EXPECT_GT(w[180], w_max * 11 / 10);
  // Compare with the closed form W(t) = C (t - K)^3 + w_max at t = 5 s (rounds run t + RTT
  // ahead, so allow a few percent).
  const double k = std::cbrt(1000.0 * 0.3 / 0.4);
  const double expect = 0.4 * std::pow(5.0 - k, 3) + 1000.0;
  EXPECT_NEAR(static_cast<double>(w[50]) / kMds, expect, 0.05 * expect);
}

TEST(Cubic, RenoFriendlyRegionAtSmallWindowsAndShortRtt) {
  // w_max = 20 datagrams, RTT 10 ms: CUBIC alone would still be below w_max after 1 s
  // (K ≈ 2.47 s), the Reno-friendly estimate grows ~1 datagram per RTT.
  const auto w = cubic_epoch(20 * kMds, 10ms, 100);
  EXPECT_EQ(w[0], 14 * kMds);
  EXPECT_GT(w[100], 60 * kMds);
  // And it is never faster than Reno + slow-start-like growth.
  EXPECT_LT(w[100], 200 * kMds);
}

TEST(Cubic, IdlePeriodDoesNotCountAsEpochTime) {
  auto run = [](bool idle) {
    auto cc = make_congestion_controller(CongestionAlgorithm::kCubic, kMds);
    const RttEstimator rtt = rtt_of(100ms);
    ack_bytes(*cc, at(1s), at(900ms), 1000 * kMds - cc->window(), rtt);
    cc->on_congestion_event(at(1s), at(950ms));
    Instant now = at(1s) + 1ms;
    for (int i = 0; i < 5; ++i) run_round(*cc, now, rtt);
    if (idle) {
      now += 20s;
      cc->on_packet_sent(now, kMds, kMds);  // first packet after idle
    }
    run_round(*cc, now, rtt);
    return cc->window();
  };
  // Without the idle shift, 20 s would put the epoch far past K and the window would jump 50 %.
  EXPECT_EQ(run(true), run(false));
}

}  // namespace
}  // namespace iroh::quic

// RFC 9002 §7.7 token-bucket pacing (impl/quic/pacer.h).
#include "quic/pacer.h"

#include <gtest/gtest.h>

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;

constexpr std::uint64_t kMds = 1200;

TEST(Pacer, InitialBurstThenRate) {
  Pacer p(kMds);
  const Instant t0 = instant_at(1s);
  // cwnd 120000, srtt 100 ms: rate = 1.25 · 120000 / 0.1 s = 1.5 MB/s → 800 µs per datagram.
  for (int i = 0; i < 10; ++i) {
    ASSERT_LE(p.next_send_time(t0, 120000, 100ms, kMds), t0) << i;
    p.on_sent(t0, kMds);
  }
  EXPECT_EQ(p.next_send_time(t0, 120000, 100ms, kMds), t0 + 800us);
  EXPECT_EQ(p.next_send_time(t0 + 400us, 120000, 100ms, kMds), t0 + 800us);
  EXPECT_LE(p.next_send_time(t0 + 800us, 120000, 100ms, kMds), t0 + 800us);
}

TEST(Pacer, BurstBoundedByWindow) {
  Pacer p(kMds);
  const Instant t0 = instant_at(1s);
  int sent = 0;
  while (p.next_send_time(t0, 2 * kMds, 100ms, kMds) <= t0 && sent < 100) {
    p.on_sent(t0, kMds);
    ++sent;
  }
  EXPECT_EQ(sent, 2);
}

TEST(Pacer, LongRunRateIsGainTimesWindowPerRtt) {
  Pacer p(kMds);
  Instant now = instant_at(0s);
  const Instant end = instant_at(1s);
  std::uint64_t bytes = 0;
  while (true) {
    Instant t = p.next_send_time(now, 60000, 50ms, kMds);
    if (t > now) now = t;
    if (now >= end) break;
    p.on_sent(now, kMds);
    bytes += kMds;
  }
  // 1.25 · 60000 / 0.05 s = 1.5 MB in one second, plus the initial burst of 10 datagrams.
  EXPECT_NEAR(static_cast<double>(bytes), 1.5e6 + 12000, 2 * kMds);
}

TEST(Pacer, IdleRefillIsCappedAtBurst) {
  Pacer p(kMds);
  Instant t = instant_at(1s);
  for (int i = 0; i < 10; ++i) p.on_sent(t, (p.next_send_time(t, 120000, 100ms, kMds), kMds));
  t += 10s;
  int sent = 0;
  while (p.next_send_time(t, 120000, 100ms, kMds) <= t) {
    p.on_sent(t, kMds);
    ++sent;
  }
  EXPECT_EQ(sent, 10);
}

TEST(Pacer, UsesGivenSrttSoInitialRttWorksBeforeSamples) {
  Pacer fast(kMds), slow(kMds);
  const Instant t0 = instant_at(0s);
  for (int i = 0; i < 10; ++i) {
    fast.on_sent(t0, (fast.next_send_time(t0, 12000, 10ms, kMds), kMds));
    slow.on_sent(t0, (slow.next_send_time(t0, 12000, 333ms, kMds), kMds));
  }
  // 1.25 · 12000 B / 10 ms = 1.5 B/µs → 800 µs; with 333 ms it is 33.3 times longer.
  EXPECT_EQ(fast.next_send_time(t0, 12000, 10ms, kMds), t0 + 800us);
  EXPECT_EQ(slow.next_send_time(t0, 12000, 333ms, kMds), t0 + 26640us);
}

}  // namespace
}  // namespace iroh::quic

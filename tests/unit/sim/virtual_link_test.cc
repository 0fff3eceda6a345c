#include "sim/virtual_link.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

namespace iroh::sim {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

Instant at_ms(double ms) {
  return instant_at(Duration(static_cast<std::int64_t>(std::llround(ms * 1e6))));
}

// A datagram carrying its sequence number in the first 8 bytes.
Bytes numbered(std::uint64_t n, std::size_t size) {
  Bytes b(std::max<std::size_t>(size, 8), 0);
  std::memcpy(b.data(), &n, 8);
  return b;
}
std::uint64_t number_of(const Bytes& b) {
  std::uint64_t n = 0;
  std::memcpy(&n, b.data(), 8);
  return n;
}

// Sends `count` datagrams one every `interval`, collecting deliveries as virtual time advances,
// then drains the link. Returns everything delivered, in delivery order.
std::vector<Delivered> run(VirtualLink& link, std::size_t count, Duration interval,
                           std::size_t size = 1200, std::uint8_t ecn = 0) {
  std::vector<Delivered> out;
  Instant now{};
  for (std::size_t i = 0; i < count; ++i) {
    for (auto& d : link.deliver_due(now)) out.push_back(std::move(d));
    (void)link.send(now, numbered(i, size), ecn);
    now += interval;
  }
  while (auto next = link.next_delivery()) {
    for (auto& d : link.deliver_due(*next)) out.push_back(std::move(d));
  }
  return out;
}

// |observed − p| within 5 standard deviations of a binomial proportion over n trials.
void expect_rate(double observed, double p, std::size_t n) {
  const double sigma = std::sqrt(p * (1 - p) / static_cast<double>(n));
  EXPECT_NEAR(observed, p, 5 * sigma) << "expected " << p;
}

LinkProfile everything_on() {
  LinkProfile p;
  p.delay = milliseconds(20);
  p.jitter = milliseconds(3);
  p.rate_bps = 50'000'000;
  p.queue_bytes = 64'000;
  p.loss = 0.02;
  p.gilbert_p = 0.01;
  p.gilbert_r = 0.3;
  p.loss_in_bad = 0.8;
  p.reorder = 0.05;
  p.reorder_delay = milliseconds(7);
  p.duplicate = 0.01;
  p.mtu = 1400;
  return p;
}

TEST(VirtualLink, SameSeedSameRunDifferentSeedDifferentRun) {
  auto trace = [](std::uint64_t seed) {
    VirtualLink link(everything_on(), seed);
    std::vector<std::pair<std::int64_t, std::uint64_t>> t;
    for (const auto& d : run(link, 5000, microseconds(150), 1200, 2))
      t.emplace_back(d.at.time_since_epoch().count(), number_of(d.data));
    return std::make_pair(t, link.stats().dropped_loss);
  };
  const auto a = trace(42);
  const auto b = trace(42);
  const auto c = trace(43);
  EXPECT_EQ(a, b);
  EXPECT_NE(a.first, c.first);
  EXPECT_GT(a.first.size(), 3000u);  // the offered 64 Mbit/s overflows the 50 Mbit/s queue
}

TEST(VirtualLink, PerfectLinkIsAFifoWithFixedDelay) {
  LinkProfile p;
  p.delay = milliseconds(10);
  VirtualLink link(p, 1);
  EXPECT_FALSE(link.next_delivery().has_value());
  ASSERT_TRUE(link.send(at_ms(0), numbered(0, 100), 3));
  ASSERT_TRUE(link.send(at_ms(1), numbered(1, 100)));
  EXPECT_EQ(link.next_delivery(), at_ms(10));
  EXPECT_TRUE(link.deliver_due(at_ms(9.999)).empty());
  auto first = link.deliver_due(at_ms(10));
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(number_of(first[0].data), 0u);
  EXPECT_EQ(first[0].ecn, 3);  // ECN passes through
  EXPECT_EQ(first[0].at, at_ms(10));
  auto second = link.deliver_due(at_ms(100));
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].at, at_ms(11));  // the scheduled time, not the collection time
  EXPECT_EQ(link.stats().sent, 2u);
  EXPECT_EQ(link.stats().delivered, 2u);
  EXPECT_EQ(link.in_flight(), 0u);
}

TEST(VirtualLink, RandomLossRateWithinStatisticalBounds) {
  LinkProfile p;
  p.delay = milliseconds(5);
  p.loss = 0.1;
  VirtualLink link(p, 7);
  constexpr std::size_t kN = 100'000;
  const auto got = run(link, kN, microseconds(10));
  const auto s = link.stats();
  EXPECT_EQ(s.sent, kN);
  EXPECT_EQ(s.dropped_loss + s.delivered, kN);
  EXPECT_EQ(got.size(), s.delivered);
  expect_rate(static_cast<double>(s.dropped_loss) / kN, 0.1, kN);
}

TEST(VirtualLink, ThroughputMatchesRate) {
  LinkProfile p;
  p.delay = milliseconds(30);
  p.rate_bps = 10'000'000;  // 1250-byte datagrams take exactly 1 ms each
  VirtualLink link(p, 1);
  // A burst of 1000 at t = 0 into an unlimited queue: serialized back to back.
  Instant now{};
  for (std::uint64_t i = 0; i < 1000; ++i) ASSERT_TRUE(link.send(now, numbered(i, 1250)));
  EXPECT_EQ(link.queued_bytes(now), 1'250'000u);
  std::vector<Delivered> got;
  while (auto next = link.next_delivery())
    for (auto& d : link.deliver_due(*next)) got.push_back(std::move(d));
  ASSERT_EQ(got.size(), 1000u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(number_of(got[i].data), i);
    EXPECT_EQ(got[i].at, at_ms(30 + 1.0 * static_cast<double>(i + 1)));
  }
  const double seconds = to_millis_f(got.back().at - got.front().at) / 1000.0;
  const double bps = 999 * 1250 * 8 / seconds;
  EXPECT_NEAR(bps, 10e6, 10e6 * 0.001);
  EXPECT_EQ(link.queued_bytes(at_ms(1000)), 0u);
}

TEST(VirtualLink, OverloadedBottleneckDeliversAtRateAndDropsTheRest) {
  LinkProfile p;
  p.delay = milliseconds(10);
  p.rate_bps = 8'000'000;  // 1000 bytes/ms
  p.queue_bytes = 20'000;
  VirtualLink link(p, 1);
  // Offer 16 Mbit/s (twice the rate) for 2 seconds.
  const auto got = run(link, 4000, microseconds(500), 1000);
  const auto s = link.stats();
  EXPECT_GT(s.dropped_queue, 1900u);
  EXPECT_LT(s.dropped_queue, 2100u);
  const double seconds = to_millis_f(got.back().at - got.front().at) / 1000.0;
  const double bps = static_cast<double>(got.size() - 1) * 1000 * 8 / seconds;
  EXPECT_NEAR(bps, 8e6, 8e6 * 0.01);
  // Queueing delay is bounded by the queue: at most 20 datagrams × 1 ms behind.
  for (const auto& d : got) {
    const double sent_ms = static_cast<double>(number_of(d.data)) * 0.5;
    EXPECT_LE(to_millis_f(d.at - at_ms(sent_ms)), 10 + 20 + 1e-6);
  }
}

TEST(VirtualLink, QueueTailDrop) {
  LinkProfile p;
  p.rate_bps = 8'000'000;  // 1000 bytes/ms
  p.queue_bytes = 10'000;
  VirtualLink link(p, 1);
  int accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += link.send(at_ms(0), numbered(i, 1000)) ? 1 : 0;
  EXPECT_EQ(accepted, 10);
  EXPECT_EQ(link.stats().dropped_queue, 90u);
  // 3.5 ms later three have left the queue (fully serialized): room for exactly three more.
  accepted = 0;
  for (int i = 0; i < 10; ++i) accepted += link.send(at_ms(3.5), numbered(100 + i, 1000)) ? 1 : 0;
  EXPECT_EQ(accepted, 3);
  // A datagram larger than what is free is dropped even if a smaller one would fit.
  EXPECT_FALSE(link.send(at_ms(4.5), numbered(200, 1001)));
  EXPECT_TRUE(link.send(at_ms(4.5), numbered(201, 1000)));
}

TEST(VirtualLink, ReorderingReorders) {
  LinkProfile p;
  p.delay = milliseconds(20);
  p.reorder = 0.1;
  p.reorder_delay = milliseconds(10);
  VirtualLink link(p, 5);
  const auto got = run(link, 10'000, milliseconds(1));
  ASSERT_EQ(got.size(), 10'000u);
  std::size_t inversions = 0;
  for (std::size_t i = 1; i < got.size(); ++i)
    if (number_of(got[i].data) < number_of(got[i - 1].data)) ++inversions;
  expect_rate(static_cast<double>(link.stats().reordered) / 10'000, 0.1, 10'000);
  EXPECT_GT(inversions, 500u);
  for (std::size_t i = 1; i < got.size(); ++i) EXPECT_LE(got[i - 1].at, got[i].at);

  // Without reordering or jitter the order is preserved.
  p.reorder = 0;
  VirtualLink fifo(p, 5);
  const auto in_order = run(fifo, 1000, microseconds(100));
  for (std::size_t i = 0; i < in_order.size(); ++i) EXPECT_EQ(number_of(in_order[i].data), i);
  EXPECT_EQ(fifo.stats().reordered, 0u);
}

TEST(VirtualLink, JitterIsBoundedAndNeverNegative) {
  LinkProfile p;
  p.delay = milliseconds(2);
  p.jitter = milliseconds(5);  // larger than the delay: clamped at zero
  VirtualLink link(p, 9);
  const auto got = run(link, 20'000, microseconds(100));
  ASSERT_EQ(got.size(), 20'000u);
  bool saw_zero = false, saw_max = false;
  for (const auto& d : got) {
    const Instant sent = at_ms(static_cast<double>(number_of(d.data)) * 0.1);
    const Duration delay = d.at - sent;
    EXPECT_GE(delay, Duration(0));
    EXPECT_LE(delay, milliseconds(7));
    saw_zero |= delay == Duration(0);
    saw_max |= delay > microseconds(6900);
  }
  EXPECT_TRUE(saw_zero);
  EXPECT_TRUE(saw_max);
}

TEST(VirtualLink, Duplication) {
  LinkProfile p;
  p.delay = milliseconds(1);
  p.duplicate = 0.05;
  VirtualLink link(p, 11);
  constexpr std::size_t kN = 100'000;
  const auto got = run(link, kN, microseconds(10));
  const auto s = link.stats();
  EXPECT_EQ(got.size(), kN + s.duplicated);
  EXPECT_EQ(s.delivered, kN + s.duplicated);
  expect_rate(static_cast<double>(s.duplicated) / kN, 0.05, kN);
  std::vector<int> copies(kN, 0);
  for (const auto& d : got) ++copies[number_of(d.data)];
  std::size_t twice = 0;
  for (int c : copies) {
    EXPECT_GE(c, 1);
    EXPECT_LE(c, 2);
    twice += c == 2;
  }
  EXPECT_EQ(twice, s.duplicated);
}

TEST(VirtualLink, MtuDrops) {
  LinkProfile p;
  p.mtu = 1200;
  VirtualLink link(p, 1);
  EXPECT_TRUE(link.send(at_ms(0), Bytes(1200)));
  EXPECT_FALSE(link.send(at_ms(0), Bytes(1201)));
  EXPECT_TRUE(link.send(at_ms(0), Bytes(1)));
  EXPECT_EQ(link.stats().dropped_mtu, 1u);
  EXPECT_EQ(link.deliver_due(at_ms(0)).size(), 2u);  // zero delay: due immediately
}

// Lengths of runs of consecutive lost datagrams (by sequence number).
std::vector<std::size_t> loss_bursts(const std::vector<Delivered>& got, std::size_t n) {
  std::vector<bool> arrived(n, false);
  for (const auto& d : got) arrived[number_of(d.data)] = true;
  std::vector<std::size_t> bursts;
  std::size_t run_len = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (!arrived[i]) {
      ++run_len;
    } else if (run_len > 0) {
      bursts.push_back(run_len);
      run_len = 0;
    }
  }
  if (run_len > 0) bursts.push_back(run_len);
  return bursts;
}

double mean(const std::vector<std::size_t>& v) {
  double sum = 0;
  for (auto x : v) sum += static_cast<double>(x);
  return sum / static_cast<double>(v.size());
}

TEST(VirtualLink, GilbertElliottLossComesInBursts) {
  constexpr std::size_t kN = 200'000;
  LinkProfile p;
  p.delay = milliseconds(1);
  p.gilbert_p = 0.01;
  p.gilbert_r = 0.25;
  p.loss_in_bad = 1.0;
  VirtualLink ge(p, 3);
  const auto bursts = loss_bursts(run(ge, kN, microseconds(10), 64), kN);
  // Stationary bad fraction p/(p+r); bad periods (= loss bursts here) last 1/r on average.
  const double loss_rate = static_cast<double>(ge.stats().dropped_loss) / kN;
  EXPECT_NEAR(loss_rate, 0.01 / 0.26, 0.005);
  ASSERT_GT(bursts.size(), 1000u);
  // Burst length is geometric with mean 4 and variance (1−r)/r² = 12.
  EXPECT_NEAR(mean(bursts), 1 / 0.25, 5 * std::sqrt(12.0 / static_cast<double>(bursts.size())));

  // The same average loss, independent: bursts of about one.
  LinkProfile q;
  q.delay = milliseconds(1);
  q.loss = loss_rate;
  VirtualLink bernoulli(q, 3);
  const auto single = loss_bursts(run(bernoulli, kN, microseconds(10), 64), kN);
  EXPECT_LT(mean(single), 1.1);
}

TEST(VirtualLink, NoRandomnessUsedWhenFeaturesAreOff) {
  // Two links with different seeds and no random features behave identically.
  LinkProfile p;
  p.delay = milliseconds(3);
  p.rate_bps = 1'000'000;
  VirtualLink a(p, 1), b(p, 2);
  const auto x = run(a, 100, microseconds(700));
  const auto y = run(b, 100, microseconds(700));
  ASSERT_EQ(x.size(), y.size());
  for (std::size_t i = 0; i < x.size(); ++i) {
    EXPECT_EQ(x[i].at, y[i].at);
    EXPECT_EQ(x[i].data, y[i].data);
  }
}

TEST(VirtualLink, DutyCycleSilencesTheSenderFor99TimesTheAirtime) {
  // 8 kbit/s: a 100-byte datagram is on the air 100 ms; at 1 % duty the sender then waits 9.9 s.
  LinkProfile p;
  p.delay = milliseconds(50);
  p.rate_bps = 8'000;
  p.duty_cycle = 0.01;
  VirtualLink link(p, 1);
  ASSERT_TRUE(link.send(at_ms(0), numbered(0, 100)));
  ASSERT_TRUE(link.send(at_ms(1), numbered(1, 100)));
  EXPECT_EQ(link.next_delivery(), at_ms(150));  // airtime + delay
  auto first = link.deliver_due(at_ms(150));
  ASSERT_EQ(first.size(), 1u);
  // The second waits for the silence (100 ms air + 9.9 s off), then its own 100 ms of air.
  EXPECT_EQ(link.next_delivery(), at_ms(100 + 9900 + 100 + 50));
  // While it waits it occupies the queue.
  EXPECT_EQ(link.queued_bytes(at_ms(5000)), 100u);
}

TEST(VirtualLink, DutyCycleOffOrFullIsBitIdenticalToNoDutyCycle) {
  LinkProfile base = everything_on();
  for (double duty : {0.0, 1.0}) {
    LinkProfile with = base;
    with.duty_cycle = duty;
    VirtualLink a(base, 7), b(with, 7);
    const auto x = run(a, 500, microseconds(150));
    const auto y = run(b, 500, microseconds(150));
    ASSERT_EQ(x.size(), y.size());
    for (std::size_t i = 0; i < x.size(); ++i) {
      EXPECT_EQ(x[i].at, y[i].at);
      EXPECT_EQ(x[i].data, y[i].data);
    }
  }
}

}  // namespace
}  // namespace iroh::sim

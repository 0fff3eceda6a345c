// Acceptance: bulk transfers over lossy, reordering, duplicating links in virtual time.
//
// Every seed is a different network history; a failure names its seed. Reproduce one with
//   IROHLAB_SEED=<seed> unit_tests --gtest_filter='ConnectionLoss.*'
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>

#include "quic_echo.h"
#include "quic_test_pair.h"

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using testing::QuicPair;

struct UploadResult {
  bool connected = false;
  bool finished = false;
  std::size_t received = 0;
  std::string error;
  Duration took{};  // from the first byte written to the last byte read (virtual)
  ConnectionStats client;
  sim::VirtualLink::Stats c2s, s2c;
};

// Client uploads `size` pattern bytes on a uni stream; the server reads and checks them.
// `during` runs before every step with the bytes received so far (key updates, ...).
using Hook = std::function<void(QuicPair&, std::size_t received)>;

UploadResult upload(std::uint64_t seed, const sim::LinkProfile& link, std::size_t size,
                    Duration limit, ConnectionConfig cfg = ConnectionConfig(), Hook during = {}) {
  UploadResult res;
  QuicPair p(seed, cfg);
  p.net.set_path(p.kClientAddr, p.kServerAddr, link);
  res.connected = p.connect(30s);
  if (!res.connected) {
    res.error = "handshake did not complete";
    return res;
  }
  auto* c = p.cconn();
  auto* s = p.sconn();
  auto id = c->open_stream(StreamDirection::kUni);
  if (!id) {
    res.error = "open_stream failed";
    return res;
  }
  const Instant t0 = p.net.now();
  std::size_t written = 0;
  bool finished_write = false;
  std::optional<std::uint64_t> sid;
  Bytes buf(64 * 1024);
  res.finished = p.net.run_until(
      [&] {
        if (p.cconn() != c || c->is_closed()) {
          res.error = "client closed";
          return true;
        }
        while (written < size) {
          const std::size_t n = std::min<std::size_t>(size - written, 256 * 1024);
          auto w = c->stream_write(*id, testing::pattern(n, seed, written));
          if (!w) {
            res.error = "write: " + w.error().message;
            return true;
          }
          written += *w;
          if (*w < n) break;
        }
        if (written == size && !finished_write) finished_write = c->stream_finish(*id).ok();
        if (during) during(p, res.received);
        if (!sid) sid = s->accept_stream(StreamDirection::kUni);
        if (!sid) return false;
        for (;;) {
          auto r = s->stream_read(*sid, buf);
          if (!r) {
            res.error = "read: " + r.error().message;
            return true;
          }
          for (std::size_t i = 0; i < r->bytes; ++i) {
            if (buf[i] != testing::pattern_byte(res.received + i, seed)) {
              res.error = "corrupt byte at offset " + std::to_string(res.received + i);
              return true;
            }
          }
          res.received += r->bytes;
          if (r->fin) return true;
          if (r->bytes == 0) return false;
        }
      },
      limit);
  res.finished = res.finished && res.error.empty() && res.received == size;
  res.took = p.net.now() - t0;
  if (p.cconn()) res.client = p.cconn()->stats();
  res.c2s = p.net.link(p.kClientAddr, p.kServerAddr)->stats();
  res.s2c = p.net.link(p.kServerAddr, p.kClientAddr)->stats();
  return res;
}

std::string summary(const UploadResult& r) {
  char b[320];
  std::snprintf(b, sizeof b,
                "received %zu, %.2f s virtual, sent %lu pkts, lost %lu, pto %lu, congestion "
                "events %lu, cwnd %lu, link c2s sent %lu dropped %lu/%lu reordered %lu dup %lu",
                r.received, std::chrono::duration<double>(r.took).count(),
                (unsigned long)r.client.packets_sent, (unsigned long)r.client.packets_lost,
                (unsigned long)r.client.pto_count, (unsigned long)r.client.congestion_events,
                (unsigned long)r.client.path.cwnd, (unsigned long)r.c2s.sent,
                (unsigned long)r.c2s.dropped_loss, (unsigned long)r.c2s.dropped_queue,
                (unsigned long)r.c2s.reordered, (unsigned long)r.c2s.duplicated);
  return b;
}

// The acceptance test of the issue: 100 seeds × 4 MiB at 5 % random loss with jitter,
// reordering and duplication; every transfer intact and done within a virtual-time bound.
TEST(ConnectionLoss, HundredSeedsFourMiBFivePercentLossReorderDuplicate) {
  sim::LinkProfile link;
  link.delay = 10ms;
  link.jitter = 2ms;
  link.loss = 0.05;
  link.reorder = 0.05;
  link.reorder_delay = 15ms;
  link.duplicate = 0.01;
  constexpr std::size_t kSize = 4 << 20;
  // Loss-limited Cubic/Reno throughput is about MSS/RTT · 1.22/√p ≈ 330 KB/s at RTT 20 ms and
  // p = 5 % (both directions lossy): ~13 s for 4 MiB. 60 s leaves room for unlucky seeds but
  // catches stalls and RTO spirals.
  constexpr Duration kBound = 60s;
  Duration worst{};
  std::uint64_t worst_seed = 0;
  for (auto seed : testing::seeds(1000, 100)) {
    SCOPED_TRACE("IROHLAB_SEED=" + std::to_string(seed));
    auto r = upload(seed, link, kSize, kBound);
    ASSERT_TRUE(r.connected) << r.error;
    EXPECT_TRUE(r.finished) << r.error << "; " << summary(r);
    EXPECT_EQ(r.received, kSize);
    EXPECT_LT(r.took, kBound) << summary(r);
    if (r.took > worst) {
      worst = r.took;
      worst_seed = seed;
    }
    if (::testing::Test::HasFailure()) break;  // one failing seed is enough to look at
  }
  std::printf("worst seed %lu: %.2f s virtual\n", (unsigned long)worst_seed,
              std::chrono::duration<double>(worst).count());
}

// Flow control under loss: small stream and connection windows need a stream of MAX_STREAM_DATA
// and MAX_DATA frames, some of which are lost and must be repeated (RFC 9000 §13.3).
TEST(ConnectionLoss, SmallWindowsUnderLoss) {
  sim::LinkProfile link;
  link.delay = 10ms;
  link.jitter = 2ms;
  link.loss = 0.05;
  link.reorder = 0.05;
  link.reorder_delay = 15ms;
  ConnectionConfig cfg;
  cfg.stream_receive_window = 32 * 1024;
  cfg.max_stream_receive_window = 64 * 1024;
  cfg.connection_receive_window = 48 * 1024;
  for (auto seed : testing::seeds(4000, 20)) {
    SCOPED_TRACE("IROHLAB_SEED=" + std::to_string(seed));
    auto r = upload(seed, link, 1 << 20, 60s, cfg);
    ASSERT_TRUE(r.finished) << r.error << "; " << summary(r);
  }
}

// Key updates every 512 KiB, alternating sides, while packets are lost and reordered: late
// packets of the previous phase must still decrypt, the peer's updates must be recognised.
TEST(ConnectionLoss, KeyUpdatesUnderLossAndReordering) {
  sim::LinkProfile link;
  link.delay = 10ms;
  link.jitter = 3ms;
  link.loss = 0.05;
  link.reorder = 0.1;
  link.reorder_delay = 15ms;
  link.duplicate = 0.01;
  for (auto seed : testing::seeds(5000, 20)) {
    SCOPED_TRACE("IROHLAB_SEED=" + std::to_string(seed));
    int updates = 0;
    std::uint64_t before = 0;
    auto r = upload(seed, link, 4 << 20, 60s, ConnectionConfig(),
                    [&](QuicPair& p, std::size_t received) {
                      if (received < static_cast<std::size_t>(updates + 1) * (512 << 10)) return;
                      Connection* who = updates % 2 ? p.sconn() : p.cconn();
                      if (who->initiate_key_update()) ++updates;
                      before = p.cconn()->stats().key_updates;
                    });
    ASSERT_TRUE(r.finished) << r.error << "; " << summary(r);
    EXPECT_GE(updates, 5);
    EXPECT_GE(r.client.key_updates, before);
  }
}

// Burst losses (Gilbert–Elliott: ~1 % chance to enter a bad period lasting ~4 datagrams, half of
// them lost there) — the pattern that defeats naive fast retransmit.
TEST(ConnectionLoss, GilbertElliottBursts) {
  sim::LinkProfile link;
  link.delay = 15ms;
  link.jitter = 1ms;
  link.gilbert_p = 0.01;
  link.gilbert_r = 0.25;
  link.loss_in_bad = 0.5;
  for (auto seed : testing::seeds(2000, 20)) {
    SCOPED_TRACE("IROHLAB_SEED=" + std::to_string(seed));
    auto r = upload(seed, link, 4 << 20, 60s);
    ASSERT_TRUE(r.connected) << r.error;
    ASSERT_TRUE(r.finished) << r.error << "; " << summary(r);
  }
}

// A 10 Mbit/s bottleneck with a 32 KB drop-tail queue (~¼ BDP at 40 ms RTT). The congestion
// controller must adapt: the transfer completes near link speed and drops stay moderate.
class RateLimited : public ::testing::TestWithParam<CongestionAlgorithm> {};

TEST_P(RateLimited, CwndAdaptsToSmallQueue) {
  sim::LinkProfile link;
  link.delay = 20ms;
  link.rate_bps = 10'000'000;
  link.queue_bytes = 32 * 1024;
  ConnectionConfig cfg;
  cfg.congestion = GetParam();
  for (auto seed : testing::seeds(3000, 5)) {
    SCOPED_TRACE("IROHLAB_SEED=" + std::to_string(seed));
    constexpr std::size_t kSize = 4 << 20;
    auto r = upload(seed, link, kSize, 60s, cfg);
    ASSERT_TRUE(r.finished) << r.error << "; " << summary(r);
    const double secs = std::chrono::duration<double>(r.took).count();
    const double ideal = kSize * 8.0 / 10e6;  // 3.4 s
    EXPECT_LT(secs, ideal * 2.0) << summary(r);
    const double drop_rate = double(r.c2s.dropped_queue) / double(r.c2s.sent);
    EXPECT_LT(drop_rate, 0.05) << summary(r);
    EXPECT_GT(r.client.congestion_events, 0u) << "never saw the queue overflow?";
    // cwnd ends in the vicinity of the BDP + queue (50 KB + 32 KB), not unbounded.
    EXPECT_LT(r.client.path.cwnd, 400u * 1024) << summary(r);
  }
}
INSTANTIATE_TEST_SUITE_P(Algorithms, RateLimited,
                         ::testing::Values(CongestionAlgorithm::kCubic,
                                           CongestionAlgorithm::kNewReno),
                         [](const auto& info) {
                           return info.param == CongestionAlgorithm::kCubic ? "Cubic" : "NewReno";
                         });

}  // namespace
}  // namespace iroh::quic

// quic::Connection end to end, two endpoints in virtual time (sim::VirtualNetwork via QuicPair,
// or the MiniNet of quic_echo.h where a test needs to move, drop or rewrite datagrams).
#include <gtest/gtest.h>

#include <cstring>
#include <set>

#include "crypto/packet_protection.h"
#include "quic/frame.h"
#include "quic/packet.h"
#include "quic_echo.h"
#include "quic_test_pair.h"

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using testing::Echo;
using testing::FlexPair;
using testing::QuicPair;

sim::LinkProfile delay_link(Duration one_way) {
  sim::LinkProfile p;
  p.delay = one_way;
  return p;
}

template <class Conn>
std::vector<ConnectionEvent> drain_events(Conn* c) {
  std::vector<ConnectionEvent> out;
  while (auto e = c->poll_event()) out.push_back(std::move(*e));
  return out;
}

template <class Pair>
bool run_echo(Pair& p, std::size_t n, Duration limit, std::uint64_t salt = 0) {
  Echo e(p, n, salt);
  const bool finished = p.net.run_until([&] { return e.pump(); }, limit);
  EXPECT_TRUE(e.error.empty()) << e.error;
  EXPECT_EQ(e.back, n);
  return finished && e.ok();
}

// Whether connection `h` of `ep` is closed (or already drained and removed); its reason, then.
// `log` keeps what Endpoint::take_removed() handed out.
std::optional<CloseReason> closed_reason(Endpoint& ep, ConnectionHandle h,
                                         std::vector<Endpoint::Removed>& log) {
  if (auto* c = ep.connection(h)) return c->is_closed() ? c->close_reason() : std::nullopt;
  for (auto& r : ep.take_removed()) log.push_back(r);
  for (auto& r : log) {
    if (r.handle == h) return r.reason ? r.reason : CloseReason{};
  }
  return CloseReason{};  // gone without a trace (a test failure below, most likely)
}

double secs(Duration d) { return std::chrono::duration<double>(d).count(); }

// ---------------------------------------------------------------------------------------------
// handshake
// ---------------------------------------------------------------------------------------------

TEST(ConnectionHandshake, AlpnAndPeerIdsBothWays) {
  QuicPair p(1);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto *c = p.cconn(), *s = p.sconn();
  EXPECT_EQ(c->alpn(), "test/echo/0");
  EXPECT_EQ(s->alpn(), "test/echo/0");
  ASSERT_TRUE(c->peer_id());
  ASSERT_TRUE(s->peer_id());
  EXPECT_EQ(*c->peer_id(), p.server_key.public_key());
  EXPECT_EQ(*s->peer_id(), p.client_key.public_key());
  EXPECT_EQ(c->role(), Role::kClient);
  EXPECT_EQ(s->role(), Role::kServer);
  // 1 RTT for the client (20 ms), the server completes on the client's Finished.
  EXPECT_LT(p.net.now() - Instant(1s), 100ms);
  bool saw = false;
  for (auto& e : drain_events(c)) saw |= std::holds_alternative<event::HandshakeCompleted>(e);
  EXPECT_TRUE(saw);
  // Both sides settle: the server confirms, the client gets HANDSHAKE_DONE, nothing closes.
  p.net.run_for(2s);
  EXPECT_FALSE(c->is_closed());
  EXPECT_FALSE(s->is_closed());
  EXPECT_TRUE(c->stats().path.validated);
  EXPECT_TRUE(s->stats().path.validated);
}

TEST(ConnectionHandshake, ServerPicksAmongSeveralAlpns) {
  QuicPair p(2, ConnectionConfig(), {"first/1", "test/echo/0", "last/2"});
  p.dial("last/2");
  ASSERT_TRUE(p.net.run_until(
      [&] { return p.sconn() && p.sconn()->is_handshake_complete() &&
                   p.cconn()->is_handshake_complete(); },
      5s));
  EXPECT_EQ(p.cconn()->alpn(), "last/2");
  EXPECT_EQ(p.sconn()->alpn(), "last/2");
}

TEST(ConnectionHandshake, ServerKeyMismatchClosesWithBadCertificate) {
  QuicPair p(3);
  SeededRandom other_rng(99);
  const auto other = SecretKey::generate(other_rng.array<32>());
  auto h = p.client->connect(p.net.now(), p.kServerAddr, other.public_key(), "test/echo/0");
  ASSERT_TRUE(h);
  p.client_handle = *h;
  Connection* c = p.cconn();
  ASSERT_TRUE(p.net.run_until([&] { return c->is_closed(); }, 5s));
  const auto& r = *c->close_reason();
  EXPECT_EQ(r.kind, CloseReason::Kind::kLocalTransport);
  EXPECT_EQ(r.code, kCryptoErrorBase + 42);
  ASSERT_TRUE(r.tls_alert);
  EXPECT_EQ(*r.tls_alert, 42);
  EXPECT_FALSE(c->is_handshake_complete());
  const std::string d = r.describe();
  EXPECT_NE(d.find("expected"), std::string::npos) << d;
  EXPECT_NE(d.find(other.public_key().to_hex()), std::string::npos) << d;
  EXPECT_NE(d.find("presented " + p.server_key.public_key().to_hex()), std::string::npos) << d;
  EXPECT_NE(d.find("CRYPTO_ERROR"), std::string::npos) << d;
  // The server learns about it (CONNECTION_CLOSE in Handshake/Initial) or times out; in any
  // case it never completes and is eventually forgotten.
  p.net.run_for(20s);
  EXPECT_EQ(p.server->connection_count(), 0u);
  EXPECT_EQ(p.client->connection_count(), 0u);
}

TEST(ConnectionHandshake, AlpnMismatchIsCryptoError0x178) {
  QuicPair p(4);
  p.dial("nobody/speaks/this");
  Connection* c = p.cconn();
  ASSERT_TRUE(p.net.run_until([&] { return c->is_closed(); }, 5s));
  const auto& r = *c->close_reason();
  EXPECT_EQ(r.code, 0x178u) << r.describe();
  EXPECT_TRUE(r.kind == CloseReason::Kind::kPeerTransport ||
              r.kind == CloseReason::Kind::kLocalTransport)
      << r.describe();
  EXPECT_NE(r.describe().find("CRYPTO_ERROR"), std::string::npos);
  EXPECT_NE(r.describe().find("120"), std::string::npos) << r.describe();
  EXPECT_FALSE(c->is_handshake_complete());
  p.net.run_for(20s);
  EXPECT_EQ(p.client->connection_count(), 0u);
  EXPECT_EQ(p.server->connection_count(), 0u);
}

TEST(ConnectionHandshake, HandshakeTimeoutWhenServerUnreachable) {
  QuicPair p(5);
  sim::LinkProfile dead;
  dead.loss = 1.0;
  p.net.set_link(p.kClientAddr, p.kServerAddr, dead);
  const Instant t0 = p.net.now();
  p.dial();
  std::vector<Endpoint::Removed> log;
  std::optional<CloseReason> r;
  ASSERT_TRUE(p.net.run_until(
      [&] { return (r = closed_reason(*p.client, p.client_handle, log)).has_value(); }, 30s));
  EXPECT_EQ(r->kind, CloseReason::Kind::kHandshakeTimeout);
  EXPECT_NEAR(secs(p.net.now() - t0), 10.0, 0.1);
  EXPECT_EQ(r->describe(), "handshake timeout");
  ASSERT_EQ(log.size(), 1u);
  EXPECT_GE(log[0].stats.packets_sent, 4u);
  // The client retransmitted its Initial with backoff meanwhile (PTO), not once per ms.
  const auto sent = p.net.link(p.kClientAddr, p.kServerAddr)->stats().sent;
  EXPECT_GE(sent, 4u);
  EXPECT_LE(sent, 30u);
  p.net.run_for(1s);
  EXPECT_EQ(p.client->connection_count(), 0u);
}

TEST(ConnectionHandshake, SurvivesLossOfEveryFirstFlight) {
  // Deterministically drop the first two datagrams each way: PTOs must repair the handshake.
  FlexPair p(6);
  int c2s = 0, s2c = 0;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes&, std::uint8_t&) {
    int& n = from == FlexPair::kClientAddr ? c2s : s2c;
    return ++n > 2;
  };
  p.net.profile = delay_link(15ms);
  ASSERT_TRUE(p.connect(10s));
  ASSERT_TRUE(run_echo(p, 100'000, 10s));
}

// ---------------------------------------------------------------------------------------------
// streams
// ---------------------------------------------------------------------------------------------

class EchoSize : public ::testing::TestWithParam<std::size_t> {};

TEST_P(EchoSize, IntactOver20msLink) {
  QuicPair p(10 + GetParam());
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, GetParam(), 60s, GetParam()));
  EXPECT_EQ(p.cconn()->stats().packets_lost, 0u);
  EXPECT_FALSE(p.cconn()->is_closed());
}
INSTANTIATE_TEST_SUITE_P(Sizes, EchoSize,
                         ::testing::Values(std::size_t{1}, std::size_t{1} << 20,
                                           std::size_t{16} << 20));

TEST(ConnectionStreams, ZeroByteStreamJustFin) {
  QuicPair p(20);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 0, 5s));
}

TEST(ConnectionStreams, ThirtyTwoConcurrentBidiStreams) {
  QuicPair p(21);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(5ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  constexpr int kStreams = 32;
  constexpr std::size_t kSize = 100'000;
  std::vector<std::uint64_t> ids;
  std::map<std::uint64_t, std::size_t> written, back;
  std::map<std::uint64_t, bool> cfin;
  for (int i = 0; i < kStreams; ++i) {
    auto id = c->open_stream(StreamDirection::kBidi);
    ASSERT_TRUE(id);
    ids.push_back(*id);
  }
  std::set<std::uint64_t> ids_set(ids.begin(), ids.end());
  EXPECT_EQ(ids_set.size(), ids.size());
  std::map<std::uint64_t, Bytes> srv_pending;
  std::map<std::uint64_t, bool> srv_fin, srv_finished;
  std::vector<std::uint64_t> accepted;
  Bytes buf(65536);
  std::string err;
  auto pump = [&] {
    for (auto id : ids) {
      while (written[id] < kSize) {
        auto d = testing::pattern(std::min<std::size_t>(kSize - written[id], 16384), id,
                                  written[id]);
        auto n = c->stream_write(id, d);
        if (!n) { err = n.error().message; return true; }
        written[id] += *n;
        if (*n < d.size()) break;
        if (written[id] == kSize) (void)c->stream_finish(id);
      }
    }
    while (auto sid = s->accept_stream(StreamDirection::kBidi)) accepted.push_back(*sid);
    for (auto sid : accepted) {
      while (!srv_fin[sid]) {
        auto r = s->stream_read(sid, buf);
        if (!r) { err = r.error().message; return true; }
        srv_pending[sid].insert(srv_pending[sid].end(), buf.begin(), buf.begin() + r->bytes);
        if (r->fin) srv_fin[sid] = true;
        if (r->bytes == 0) break;
      }
      auto& pend = srv_pending[sid];
      if (!pend.empty()) {
        auto n = s->stream_write(sid, pend);
        if (!n) { err = n.error().message; return true; }
        pend.erase(pend.begin(), pend.begin() + *n);
      }
      if (srv_fin[sid] && pend.empty() && !srv_finished[sid]) {
        srv_finished[sid] = s->stream_finish(sid).ok();
      }
    }
    int done = 0;
    for (auto id : ids) {
      for (;;) {
        if (cfin[id]) break;
        auto r = c->stream_read(id, buf);
        if (!r) { err = r.error().message; return true; }
        for (std::size_t i = 0; i < r->bytes; ++i) {
          if (buf[i] != testing::pattern_byte(back[id] + i, id)) {
            err = "corrupt stream " + std::to_string(id);
            return true;
          }
        }
        back[id] += r->bytes;
        if (r->fin) cfin[id] = true;
        if (r->bytes == 0) break;
      }
      done += cfin[id] ? 1 : 0;
    }
    return done == kStreams;
  };
  ASSERT_TRUE(p.net.run_until(pump, 30s)) << err;
  EXPECT_TRUE(err.empty()) << err;
  EXPECT_EQ(accepted.size(), std::size_t{kStreams});
  for (auto id : ids) EXPECT_EQ(back[id], kSize) << id;
}

// One side opens a uni stream, writes `n` bytes and finishes; the other accepts and reads all.
template <class Pair>
void uni_transfer(Pair& p, Connection* from, Connection* to, std::size_t n, std::uint64_t salt) {
  auto id = from->open_stream(StreamDirection::kUni);
  ASSERT_TRUE(id);
  // Our uni stream has no receive side.
  Bytes tmp(16);
  EXPECT_FALSE(from->stream_read(*id, tmp));
  std::size_t written = 0, got = 0;
  bool fin = false;
  std::optional<std::uint64_t> rid;
  Bytes buf(65536);
  std::string err;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        while (written < n) {
          auto d = testing::pattern(std::min<std::size_t>(n - written, 65536), salt, written);
          auto w = from->stream_write(*id, d);
          if (!w || *w == 0) break;
          written += *w;
          if (written == n) (void)from->stream_finish(*id);
        }
        if (!rid) rid = to->accept_stream(StreamDirection::kUni);
        if (rid) {
          EXPECT_FALSE(to->stream_write(*rid, tmp)) << "a peer's uni stream is receive-only";
          while (!fin) {
            auto r = to->stream_read(*rid, buf);
            if (!r) { err = r.error().message; return true; }
            for (std::size_t i = 0; i < r->bytes; ++i) {
              if (buf[i] != testing::pattern_byte(got + i, salt)) { err = "corrupt"; return true; }
            }
            got += r->bytes;
            fin |= r->fin;
            if (r->bytes == 0) break;
          }
        }
        return fin;
      },
      20s));
  EXPECT_TRUE(err.empty()) << err;
  EXPECT_EQ(got, n);
  EXPECT_EQ(stream_direction(*id), StreamDirection::kUni);
}

TEST(ConnectionStreams, UniStreamsBothWays) {
  QuicPair p(22);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(5ms));
  ASSERT_TRUE(p.connect());
  uni_transfer(p, p.cconn(), p.sconn(), 300'000, 1);
  uni_transfer(p, p.sconn(), p.cconn(), 300'000, 2);
  uni_transfer(p, p.cconn(), p.sconn(), 1, 3);
}

TEST(ConnectionStreams, StreamLimitBlocksUntilPeerClosesStreams) {
  QuicPair p(23);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(5ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  std::vector<std::uint64_t> ids;
  for (int i = 0; i < 100; ++i) {
    auto id = c->open_stream(StreamDirection::kBidi);
    ASSERT_TRUE(id) << i;
    ids.push_back(*id);
  }
  // The server's initial_max_streams_bidi is 100: the 101st blocks (and STREAMS_BLOCKED goes out).
  EXPECT_FALSE(c->open_stream(StreamDirection::kBidi));
  // Uni streams have their own limit.
  auto uni = c->open_stream(StreamDirection::kUni);
  EXPECT_TRUE(uni);
  drain_events(c);
  // Nothing happens while the streams stay open.
  p.net.run_for(500ms);
  EXPECT_FALSE(c->open_stream(StreamDirection::kBidi));
  // Each stream: one byte and FIN from the client; the server reads it and finishes its side.
  Bytes one{7};
  for (auto id : ids) {
    ASSERT_TRUE(c->stream_write(id, one));
    ASSERT_TRUE(c->stream_finish(id));
  }
  int closed_by_server = 0;
  bool available = false;
  Bytes buf(64);
  ASSERT_TRUE(p.net.run_until(
      [&] {
        while (auto sid = s->accept_stream(StreamDirection::kBidi)) {
          auto r = s->stream_read(*sid, buf);
          EXPECT_TRUE(r);
          (void)s->stream_finish(*sid);
          ++closed_by_server;
        }
        for (auto& e : drain_events(c)) {
          if (auto* a = std::get_if<event::StreamsAvailable>(&e)) {
            available |= a->direction == StreamDirection::kBidi;
          }
        }
        return available;
      },
      5s));
  EXPECT_GT(closed_by_server, 0);
  auto id101 = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(id101);
  EXPECT_EQ(stream_index(*id101), 100u);
  // And it works.
  ASSERT_TRUE(c->stream_write(*id101, one));
  ASSERT_TRUE(c->stream_finish(*id101));
  bool got101 = false;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        while (auto sid = s->accept_stream(StreamDirection::kBidi)) {
          if (*sid == *id101) got101 = true;
          (void)s->stream_read(*sid, buf);
          (void)s->stream_finish(*sid);
        }
        return got101;
      },
      5s));
  // Eventually all 100 earlier streams are accounted for: the client can open 100 more.
  p.net.run_for(1s);
  int more = 0;
  while (c->open_stream(StreamDirection::kBidi)) ++more;
  EXPECT_GE(more, 90);
  EXPECT_LE(more, 100);
}

TEST(ConnectionFlowControl, SlowReaderKeepsWindowBounded) {
  ConnectionConfig cfg;
  cfg.stream_receive_window = 64 * 1024;
  cfg.max_stream_receive_window = 16 << 20;
  QuicPair p(30, cfg);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  auto id = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(id);
  const Bytes data = testing::pattern(4 << 20);
  auto w = c->stream_write(*id, data);
  ASSERT_TRUE(w);
  EXPECT_EQ(*w, data.size());  // the 16 MiB send buffer takes it all
  p.net.run_for(2s);
  // Nobody read: the client may not send beyond the initial window.
  EXPECT_LE(c->stats().stream_bytes_sent, 64u * 1024);
  EXPECT_GE(c->stats().stream_bytes_sent, 60u * 1024);
  auto sid = s->accept_stream(StreamDirection::kBidi);
  ASSERT_TRUE(sid);
  // A slow reader: 8 KiB every 100 ms. The window must not balloon (auto-tuning is for readers
  // that keep up with the network, not for ones that leave data lying in the buffer).
  std::size_t read = 0;
  Bytes buf(8192);
  std::uint64_t max_unread = 0;
  for (int i = 0; i < 50; ++i) {
    auto r = s->stream_read(*sid, buf);
    ASSERT_TRUE(r);
    for (std::size_t k = 0; k < r->bytes; ++k) ASSERT_EQ(buf[k], testing::pattern_byte(read + k));
    read += r->bytes;
    p.net.run_for(100ms);
    const std::uint64_t sent = c->stats().stream_bytes_sent;
    max_unread = std::max<std::uint64_t>(max_unread, sent - read);
  }
  EXPECT_EQ(read, 50u * 8192);
  EXPECT_LE(max_unread, 256u * 1024) << "receive window grew for a slow reader";
}

TEST(ConnectionFlowControl, AutoTuningGrowsWindowForFastReader) {
  ConnectionConfig cfg;
  cfg.stream_receive_window = 64 * 1024;
  cfg.max_stream_receive_window = 16 << 20;
  QuicPair p(31, cfg);
  // 100 ms RTT: a fixed 64 KiB window would cap throughput at 640 KiB/s → 8 MiB takes 12.8 s.
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(50ms));
  ASSERT_TRUE(p.connect());
  const Instant t0 = p.net.now();
  ASSERT_TRUE(run_echo(p, 8 << 20, 60s));
  const double took = testing::seconds_since(p, t0);
  EXPECT_LT(took, 5.0) << "flow control windows did not grow";
}

TEST(ConnectionStreams, ResetStreamSeenWithCode) {
  QuicPair p(32);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(5ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  auto id = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(c->stream_write(*id, testing::pattern(10'000)));
  p.net.run_for(100ms);
  ASSERT_TRUE(c->stream_reset(*id, 77));
  EXPECT_FALSE(c->stream_write(*id, testing::pattern(10)));
  std::optional<std::uint64_t> sid;
  std::string err;
  Bytes buf(4096);
  ASSERT_TRUE(p.net.run_until(
      [&] {
        if (!sid) sid = s->accept_stream(StreamDirection::kBidi);
        if (!sid) return false;
        for (;;) {
          auto r = s->stream_read(*sid, buf);
          if (!r) {
            err = r.error().message;
            return true;
          }
          if (r->bytes == 0) return false;
        }
      },
      5s));
  EXPECT_NE(err.find("reset by peer with code 77"), std::string::npos) << err;
  // The server can still use its half... of the stream (send side is independent).
  EXPECT_TRUE(s->stream_write(*sid, testing::pattern(5)));
}

TEST(ConnectionStreams, StopSendingSeenWithCode) {
  QuicPair p(33);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(5ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  auto id = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(c->stream_write(*id, testing::pattern(1000)));
  std::optional<std::uint64_t> sid;
  ASSERT_TRUE(p.net.run_until([&] { return (sid = s->accept_stream(StreamDirection::kBidi)).has_value(); }, 2s));
  ASSERT_TRUE(s->stream_stop_sending(*sid, 88));
  std::optional<std::uint64_t> stopped_code;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        // Keep writing: the client does not know yet.
        (void)c->stream_write(*id, testing::pattern(1000));
        for (auto& e : drain_events(c)) {
          if (auto* st = std::get_if<event::StreamStopped>(&e); st && st->id == *id) {
            stopped_code = st->code;
          }
        }
        return stopped_code.has_value();
      },
      2s));
  EXPECT_EQ(*stopped_code, 88u);
  auto w = c->stream_write(*id, testing::pattern(10));
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message.find("88"), std::string::npos) << w.error().message;
  // The client's reply RESET_STREAM carries the same code: the server's read side ends.
  p.net.run_for(200ms);
  EXPECT_FALSE(c->is_closed());
  EXPECT_FALSE(s->is_closed());
}

TEST(ConnectionStreams, HigherPriorityStreamFinishesFirst) {
  QuicPair p(34);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  auto low = c->open_stream(StreamDirection::kUni);
  auto high = c->open_stream(StreamDirection::kUni);
  ASSERT_TRUE(low && high);
  ASSERT_TRUE(c->stream_set_priority(*high, 10));
  constexpr std::size_t kSize = 1 << 20;
  // The low-priority stream is written (and queued) first.
  ASSERT_EQ(*c->stream_write(*low, testing::pattern(kSize, 1)), kSize);
  ASSERT_TRUE(c->stream_finish(*low));
  ASSERT_EQ(*c->stream_write(*high, testing::pattern(kSize, 2)), kSize);
  ASSERT_TRUE(c->stream_finish(*high));
  std::map<std::uint64_t, Instant> finished;
  std::vector<std::uint64_t> open;
  Bytes buf(65536);
  ASSERT_TRUE(p.net.run_until(
      [&] {
        while (auto sid = s->accept_stream(StreamDirection::kUni)) open.push_back(*sid);
        for (auto sid : open) {
          if (finished.count(sid)) continue;
          for (;;) {
            auto r = s->stream_read(sid, buf);
            if (!r) return true;
            if (r->fin) {
              finished[sid] = p.net.now();
              break;
            }
            if (r->bytes == 0) break;
          }
        }
        return finished.size() == 2;
      },
      30s));
  ASSERT_EQ(finished.size(), 2u);
  EXPECT_LT(finished[*high], finished[*low]);
}

// ---------------------------------------------------------------------------------------------
// datagrams, close, timers
// ---------------------------------------------------------------------------------------------

TEST(ConnectionDatagrams, RoundTripAndSizeLimit) {
  QuicPair p(40);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(5ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  const std::size_t max = c->max_datagram_size();
  EXPECT_GE(max, 1100u);
  EXPECT_LT(max, 1200u);
  const Bytes small = testing::pattern(100, 5);
  ASSERT_TRUE(c->send_datagram(small));
  const Bytes big = testing::pattern(max, 6);
  ASSERT_TRUE(c->send_datagram(big));
  auto too_big = c->send_datagram(testing::pattern(max + 1));
  ASSERT_FALSE(too_big);
  EXPECT_NE(too_big.error().message.find("exceeds"), std::string::npos);
  std::vector<Bytes> got;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        while (auto d = s->recv_datagram()) got.push_back(*d);
        return got.size() == 2;
      },
      2s));
  EXPECT_EQ(got[0], small);
  EXPECT_EQ(got[1], big);
  // And back.
  ASSERT_TRUE(s->send_datagram(small));
  std::optional<Bytes> echo;
  ASSERT_TRUE(p.net.run_until([&] { return (echo = c->recv_datagram()).has_value(); }, 2s));
  EXPECT_EQ(*echo, small);
  EXPECT_EQ(c->stats().datagrams_sent, 2u);
  EXPECT_EQ(s->stats().datagrams_received, 2u);
}

TEST(ConnectionDatagrams, DisabledByPeer) {
  ConnectionConfig cfg;
  cfg.max_datagram_frame_size = 0;
  QuicPair p(41, cfg);
  ASSERT_TRUE(p.connect());
  EXPECT_EQ(p.cconn()->max_datagram_size(), 0u);
  EXPECT_FALSE(p.cconn()->send_datagram(testing::pattern(10)));
}

TEST(ConnectionClose, ApplicationCloseCodeAndReasonSeenByPeer) {
  QuicPair p(50);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  p.net.run_for(100ms);
  c->close(p.net.now(), 42, "bye now");
  EXPECT_TRUE(c->is_closed());
  EXPECT_EQ(c->close_reason()->kind, CloseReason::Kind::kLocalApplication);
  EXPECT_FALSE(c->stream_write(0, testing::pattern(1)));
  ASSERT_TRUE(p.net.run_until([&] { return s->is_closed(); }, 2s));
  const auto& r = *s->close_reason();
  EXPECT_EQ(r.kind, CloseReason::Kind::kPeerApplication);
  EXPECT_EQ(r.code, 42u);
  EXPECT_EQ(r.reason, "bye now");
  EXPECT_EQ(r.describe(), "peer closed: application code 42: bye now");
  bool closed_event = false;
  for (auto& e : drain_events(s)) closed_event |= std::holds_alternative<event::Closed>(e);
  EXPECT_TRUE(closed_event);
  // Both are forgotten after their closing/draining periods.
  p.net.run_for(5s);
  EXPECT_EQ(p.client->connection_count(), 0u);
  EXPECT_EQ(p.server->connection_count(), 0u);
}

TEST(ConnectionClose, ServerClosesWhileClientIsSending) {
  QuicPair p(51);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  auto id = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(c->stream_write(*id, testing::pattern(4 << 20)));
  p.net.run_for(200ms);
  s->close(p.net.now(), 7, "srv-bye");
  ASSERT_TRUE(p.net.run_until([&] { return c->is_closed(); }, 2s));
  EXPECT_EQ(c->close_reason()->describe(), "peer closed: application code 7: srv-bye");
  p.net.run_for(5s);
  EXPECT_EQ(p.client->connection_count(), 0u);
  EXPECT_EQ(p.server->connection_count(), 0u);
}

TEST(ConnectionClose, CloseDuringHandshake) {
  QuicPair p(52);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(20ms));
  p.dial();
  p.net.run_for(30ms);  // the server has the client's Initial; the client has nothing yet
  ASSERT_TRUE(p.sconn());
  p.sconn()->close(p.net.now(), 3, "go away");
  ASSERT_TRUE(p.net.run_until([&] { return p.cconn()->is_closed(); }, 3s));
  const auto& r = *p.cconn()->close_reason();
  // Below 1-RTT an application close travels as APPLICATION_ERROR without reason (§10.2.3).
  EXPECT_EQ(r.kind, CloseReason::Kind::kPeerTransport) << r.describe();
  EXPECT_EQ(r.code, static_cast<std::uint64_t>(TransportError::kApplicationError));
}

TEST(ConnectionTimers, IdleTimeoutAfterThirtySecondsOfSilence) {
  ConnectionConfig cfg;
  cfg.idle_timeout = 30s;
  cfg.keep_alive = Duration::zero();
  QuicPair p(60, cfg);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  ASSERT_TRUE(run_echo(p, 1000, 2s));
  (void)c;
  (void)s;
  const Instant last = p.net.now();
  std::optional<Instant> c_closed, s_closed;
  std::optional<CloseReason> cr, sr;
  std::vector<Endpoint::Removed> clog, slog;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        if (!c_closed && (cr = closed_reason(*p.client, p.client_handle, clog))) {
          c_closed = p.net.now();
        }
        if (!s_closed && (sr = closed_reason(*p.server, *p.server_handle, slog))) {
          s_closed = p.net.now();
        }
        return c_closed && s_closed;
      },
      60s));
  EXPECT_EQ(cr->kind, CloseReason::Kind::kIdleTimeout);
  EXPECT_EQ(sr->kind, CloseReason::Kind::kIdleTimeout);
  EXPECT_NEAR(secs(*c_closed - last), 30.0, 0.2);
  EXPECT_NEAR(secs(*s_closed - last), 30.0, 0.2);
  EXPECT_EQ(cr->describe(), "idle timeout");
  // Silently: nothing was sent when the timer fired.
  p.net.run_for(1s);
  EXPECT_EQ(p.client->connection_count(), 0u);
  EXPECT_EQ(p.server->connection_count(), 0u);
}

TEST(ConnectionTimers, IdleTimeoutIsTheSmallerOfBothSides) {
  ConnectionConfig client_cfg;
  client_cfg.keep_alive = Duration::zero();
  client_cfg.idle_timeout = 30s;
  quic::EndpointConfig server_cfg = FlexPair::default_server();
  server_cfg.connection.idle_timeout = 10s;
  server_cfg.connection.keep_alive = Duration::zero();
  quic::EndpointConfig cc;
  cc.connection = client_cfg;
  FlexPair p(61, cc, server_cfg);
  ASSERT_TRUE(p.connect());
  const Instant t0 = p.net.now();
  std::vector<Endpoint::Removed> log;
  std::optional<CloseReason> r;
  ASSERT_TRUE(p.net.run_until(
      [&] { return (r = closed_reason(*p.client, p.client_handle, log)).has_value(); }, 60s));
  EXPECT_EQ(r->kind, CloseReason::Kind::kIdleTimeout);
  EXPECT_NEAR(secs(p.net.now() - t0), 10.0, 0.2);
}

TEST(ConnectionTimers, KeepAliveKeepsIdleConnectionAlive) {
  ConnectionConfig cfg;
  cfg.idle_timeout = 60s;
  cfg.keep_alive = 5s;
  QuicPair p(62, cfg);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  const auto before = p.cconn()->stats().packets_sent;
  p.net.run_for(300s);
  EXPECT_FALSE(p.cconn()->is_closed());
  EXPECT_FALSE(p.sconn()->is_closed());
  // About one PING per 5 s (plus ACKs), not a flood.
  const auto sent = p.cconn()->stats().packets_sent - before;
  EXPECT_GE(sent, 300u / 5 / 2);
  EXPECT_LE(sent, 300u / 5 * 3);
  ASSERT_TRUE(run_echo(p, 10'000, 2s));
}

TEST(ConnectionTimers, KeepAliveOnOneSideIsEnough) {
  ConnectionConfig client_cfg;
  client_cfg.idle_timeout = 30s;
  client_cfg.keep_alive = 5s;
  quic::EndpointConfig server_cfg = FlexPair::default_server();
  server_cfg.connection.idle_timeout = 30s;
  server_cfg.connection.keep_alive = Duration::zero();
  quic::EndpointConfig cc;
  cc.connection = client_cfg;
  FlexPair p(63, cc, server_cfg);
  ASSERT_TRUE(p.connect());
  p.net.run_for(120s);
  EXPECT_FALSE(p.cconn()->is_closed());
  ASSERT_TRUE(p.sconn());
  EXPECT_FALSE(p.sconn()->is_closed());
}

// ---------------------------------------------------------------------------------------------
// key update
// ---------------------------------------------------------------------------------------------

class KeyUpdate : public ::testing::TestWithParam<bool> {};

TEST_P(KeyUpdate, MidTransferDataIntact) {
  const bool by_client = GetParam();
  QuicPair p(70 + by_client);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  p.net.run_for(100ms);  // client confirmed (HANDSHAKE_DONE)
  Echo e(p, 4 << 20);
  int updates = 0;
  std::string err;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        Connection* who = by_client ? p.cconn() : p.sconn();
        // Three updates, spread over the transfer.
        if (updates < 3 && e.back > static_cast<std::size_t>(updates + 1) * (1 << 20)) {
          auto r = who->initiate_key_update();
          if (r) {
            ++updates;
          }
        }
        return e.pump();
      },
      30s))
      << "written " << e.written << " server got " << e.server_got << " back " << e.back
      << " updates " << updates << " t=" << secs(p.net.now() - Instant(1s)) << " closed "
      << p.cconn()->is_closed() << p.sconn()->is_closed() << " pto " << p.cconn()->stats().pto_count
      << "/" << p.sconn()->stats().pto_count;
  EXPECT_TRUE(e.ok()) << e.error;
  EXPECT_EQ(updates, 3);
  EXPECT_EQ(p.cconn()->stats().key_updates, 3u);
  EXPECT_EQ(p.sconn()->stats().key_updates, 3u);
  EXPECT_FALSE(p.cconn()->is_closed());
  EXPECT_FALSE(p.sconn()->is_closed());
}
INSTANTIATE_TEST_SUITE_P(Initiator, KeyUpdate, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Client" : "Server"; });

TEST(ConnectionKeyUpdate, RefusedBeforeConfirmationAndWhileUnacknowledged) {
  QuicPair p(72);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  p.dial();
  EXPECT_FALSE(p.cconn()->initiate_key_update());
  ASSERT_TRUE(p.net.run_until([&] { return p.sconn() && p.sconn()->is_handshake_complete(); }, 2s));
  p.net.run_for(100ms);
  ASSERT_TRUE(p.cconn()->initiate_key_update());
  EXPECT_FALSE(p.cconn()->initiate_key_update());  // not acknowledged yet
  ASSERT_TRUE(run_echo(p, 1000, 2s));
  p.net.run_for(100ms);
  EXPECT_TRUE(p.cconn()->initiate_key_update());
  ASSERT_TRUE(run_echo(p, 1000, 2s, 1));
}

TEST(ConnectionKeyUpdate, BothSidesUpdateAtOnce) {
  QuicPair p(73);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  p.net.run_for(100ms);
  ASSERT_TRUE(p.cconn()->initiate_key_update());
  ASSERT_TRUE(p.sconn()->initiate_key_update());
  ASSERT_TRUE(run_echo(p, 200'000, 5s));
  EXPECT_FALSE(p.cconn()->is_closed());
  EXPECT_FALSE(p.sconn()->is_closed());
}

}  // namespace
}  // namespace iroh::quic

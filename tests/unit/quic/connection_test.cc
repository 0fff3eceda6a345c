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
      [&] {
        return p.sconn() && p.sconn()->is_handshake_complete() &&
               p.cconn()->is_handshake_complete();
      },
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
        auto d =
            testing::pattern(std::min<std::size_t>(kSize - written[id], 16384), id, written[id]);
        auto n = c->stream_write(id, d);
        if (!n) {
          err = n.error().message;
          return true;
        }
        written[id] += *n;
        if (*n < d.size()) break;
        if (written[id] == kSize) (void)c->stream_finish(id);
      }
    }
    while (auto sid = s->accept_stream(StreamDirection::kBidi)) accepted.push_back(*sid);
    for (auto sid : accepted) {
      while (!srv_fin[sid]) {
        auto r = s->stream_read(sid, buf);
        if (!r) {
          err = r.error().message;
          return true;
        }
        srv_pending[sid].insert(srv_pending[sid].end(), buf.begin(), buf.begin() + r->bytes);
        if (r->fin) srv_fin[sid] = true;
        if (r->bytes == 0) break;
      }
      auto& pend = srv_pending[sid];
      if (!pend.empty()) {
        auto n = s->stream_write(sid, pend);
        if (!n) {
          err = n.error().message;
          return true;
        }
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
        if (!r) {
          err = r.error().message;
          return true;
        }
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
            if (!r) {
              err = r.error().message;
              return true;
            }
            for (std::size_t i = 0; i < r->bytes; ++i) {
              if (buf[i] != testing::pattern_byte(got + i, salt)) {
                err = "corrupt";
                return true;
              }
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
  ASSERT_TRUE(p.net.run_until(
      [&] { return (sid = s->accept_stream(StreamDirection::kBidi)).has_value(); }, 2s));
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

TEST(ConnectionClose, LostCloseIsRepeatedWhenPeerKeepsSending) {
  // The client's first CONNECTION_CLOSE is lost; the server keeps sending and the closing client
  // answers again (RFC 9000 §10.2.1), so the server learns the code instead of timing out.
  FlexPair p(53);
  p.net.profile = delay_link(10ms);
  bool drop_next_client_datagram = false;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes&, std::uint8_t&) {
    if (from == FlexPair::kClientAddr && drop_next_client_datagram) {
      drop_next_client_datagram = false;
      return false;
    }
    return true;
  };
  ASSERT_TRUE(p.connect());
  auto* s = p.sconn();
  auto id = s->open_stream(StreamDirection::kUni);
  ASSERT_TRUE(s->stream_write(*id, testing::pattern(2 << 20)));
  p.net.run_for(50ms);
  drop_next_client_datagram = true;
  p.cconn()->close(p.net.now(), 9, "bye");
  ASSERT_TRUE(p.net.run_until([&] { return s->is_closed(); }, 3s));
  EXPECT_FALSE(drop_next_client_datagram);  // the first close was indeed dropped
  EXPECT_EQ(s->close_reason()->kind, CloseReason::Kind::kPeerApplication);
  EXPECT_EQ(s->close_reason()->code, 9u);
}

TEST(ConnectionTimers, DeadLinkMidTransferEndsInIdleTimeout) {
  ConnectionConfig cfg;
  cfg.idle_timeout = 30s;
  QuicPair p(64, cfg);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  auto id = p.cconn()->open_stream(StreamDirection::kUni);
  ASSERT_TRUE(p.cconn()->stream_write(*id, testing::pattern(4 << 20)));
  p.net.run_for(100ms);
  sim::LinkProfile dead;
  dead.loss = 1.0;
  p.net.set_path(p.kClientAddr, p.kServerAddr, dead);
  const Instant cut = p.net.now();
  std::vector<Endpoint::Removed> clog, slog;
  std::optional<CloseReason> cr, sr;
  std::optional<Instant> c_at, s_at;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        if (!c_at && (cr = closed_reason(*p.client, p.client_handle, clog))) c_at = p.net.now();
        if (!s_at && (sr = closed_reason(*p.server, *p.server_handle, slog))) s_at = p.net.now();
        return c_at && s_at;
      },
      120s));
  EXPECT_EQ(cr->kind, CloseReason::Kind::kIdleTimeout);
  EXPECT_EQ(sr->kind, CloseReason::Kind::kIdleTimeout);
  EXPECT_NEAR(secs(*c_at - cut), 30.0, 0.5);
  EXPECT_NEAR(secs(*s_at - cut), 30.0, 0.5);
}

TEST(ConnectionStreams, ThousandSequentialStreamsKeepStreamCreditFlowing) {
  QuicPair p(24);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(2ms));
  ASSERT_TRUE(p.connect());
  auto* c = p.cconn();
  auto* s = p.sconn();
  Bytes buf(256);
  int done = 0;
  std::optional<std::uint64_t> cur;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        if (!cur) {
          cur = c->open_stream(StreamDirection::kBidi);
          if (cur) {
            (void)c->stream_write(*cur, testing::pattern(100, done));
            (void)c->stream_finish(*cur);
          }
        }
        while (auto sid = s->accept_stream(StreamDirection::kBidi)) {
          auto r = s->stream_read(*sid, buf);
          if (r && r->fin) {
            (void)s->stream_write(*sid, ByteView(buf).first(r->bytes));
            (void)s->stream_finish(*sid);
          }
        }
        if (cur) {
          auto r = c->stream_read(*cur, buf);
          if (r && r->fin) {
            EXPECT_EQ(r->bytes, 100u);
            ++done;
            cur.reset();
          }
        }
        return done == 1000;
      },
      120s));
  EXPECT_FALSE(c->is_closed());
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
  // The last update may still be on its way to the peer when the echo completes.
  p.net.run_for(200ms);
  for (auto& r : p.client->take_removed()) ADD_FAILURE() << "client: " << r.reason->describe();
  for (auto& r : p.server->take_removed()) ADD_FAILURE() << "server: " << r.reason->describe();
  ASSERT_TRUE(p.cconn() && p.sconn());
  // A lossless link: nothing may be lost around the updates (old-phase packets in flight when a
  // side updates must still decrypt — RFC 9001 §6.3, §6.5).
  EXPECT_EQ(p.cconn()->stats().packets_lost, 0u);
  EXPECT_EQ(p.sconn()->stats().packets_lost, 0u);
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

// ---------------------------------------------------------------------------------------------
// protocol errors: 1-RTT packets forged with the client's keys (captured through the keylog hook)
// ---------------------------------------------------------------------------------------------

void put_varint(Bytes& b, std::uint64_t v) {
  if (v < 64) {
    b.push_back(static_cast<std::uint8_t>(v));
  } else if (v < 16384) {
    b.push_back(static_cast<std::uint8_t>(0x40 | (v >> 8)));
    b.push_back(static_cast<std::uint8_t>(v));
  } else {
    b.push_back(static_cast<std::uint8_t>(0x80 | (v >> 24)));
    b.push_back(static_cast<std::uint8_t>(v >> 16));
    b.push_back(static_cast<std::uint8_t>(v >> 8));
    b.push_back(static_cast<std::uint8_t>(v));
  }
}

// A FlexPair whose client reveals its 1-RTT secret, plus a forger of client→server packets.
struct ForgingPair {
  explicit ForgingPair(std::uint64_t seed) : p(seed, client_config(secret)) {
    p.net.profile = delay_link(5ms);
    p.net.tap = [this](const SocketAddr& from, const SocketAddr&, Bytes& d, std::uint8_t&) {
      if (from == FlexPair::kClientAddr && !d.empty() && !(d[0] & 0x80)) last_c2s = d;
      return true;
    };
  }
  static EndpointConfig client_config(std::shared_ptr<Bytes>& out) {
    out = std::make_shared<Bytes>();
    EndpointConfig c;
    auto sink = out;
    c.connection.keylog = [sink](std::string_view label, ByteView, ByteView secret) {
      if (label == "CLIENT_TRAFFIC_SECRET_0") sink->assign(secret.begin(), secret.end());
    };
    return c;
  }
  // Learns keys, DCID and the packet number from a captured client 1-RTT datagram.
  bool prepare() {
    if (secret->empty() || last_c2s.empty()) return false;
    for (auto alg : {crypto::AeadAlgorithm::kAes128Gcm, crypto::AeadAlgorithm::kChaCha20Poly1305,
                     crypto::AeadAlgorithm::kAes256Gcm}) {
      auto keys =
          crypto::PacketProtection::from_secret(alg, *secret, crypto::EncryptionLevel::kOneRtt);
      if (!keys) continue;
      Bytes copy = last_c2s;
      auto opened = unprotect_packet(copy, 8, std::nullopt, *keys);
      if (!opened) continue;
      dcid = opened->header.dcid;
      next_pn = opened->header.packet_number + 1000;
      tx.emplace(std::move(keys).value());
      return true;
    }
    return false;
  }
  // Sends `frames` to the server in a forged 1-RTT packet.
  void inject(Bytes frames, std::uint8_t reserved_bits = 0) {
    while (frames.size() < 8) frames.push_back(0);  // PADDING: room for the HP sample
    PacketHeader h;
    h.type = PacketType::kOneRtt;
    h.dcid = dcid;
    h.packet_number = next_pn++;
    h.pn_length = 4;
    h.reserved_bits = reserved_bits;
    auto pkt = protect_packet(h, frames, *tx);
    ASSERT_TRUE(pkt);
    p.server->handle_datagram(p.net.now(), FlexPair::kClientAddr, *pkt);
  }

  std::shared_ptr<Bytes> secret;
  FlexPair p;
  Bytes last_c2s;
  std::optional<crypto::PacketProtection> tx;
  ConnectionId dcid;
  std::uint64_t next_pn = 0;
};

struct ForgeCase {
  const char* name;
  Bytes frames;
  std::uint8_t reserved_bits;
  TransportError expected;
};

class ForgedFrames : public ::testing::TestWithParam<ForgeCase> {};

TEST_P(ForgedFrames, ServerClosesWithTransportErrorPeerSeesIt) {
  const auto& tc = GetParam();
  ForgingPair f(80);
  ASSERT_TRUE(f.p.connect());
  ASSERT_TRUE(run_echo(f.p, 1000, 2s));
  ASSERT_TRUE(f.prepare());
  f.inject(tc.frames, tc.reserved_bits);
  auto* s = f.p.sconn();
  ASSERT_TRUE(s->is_closed());
  const auto& sr = *s->close_reason();
  EXPECT_EQ(sr.kind, CloseReason::Kind::kLocalTransport) << sr.describe();
  EXPECT_EQ(sr.code, static_cast<std::uint64_t>(tc.expected)) << sr.describe();
  std::vector<Endpoint::Removed> log;
  std::optional<CloseReason> cr;
  ASSERT_TRUE(f.p.net.run_until(
      [&] { return (cr = closed_reason(*f.p.client, f.p.client_handle, log)).has_value(); }, 2s));
  EXPECT_EQ(cr->kind, CloseReason::Kind::kPeerTransport) << cr->describe();
  EXPECT_EQ(cr->code, static_cast<std::uint64_t>(tc.expected));
  EXPECT_EQ(
      cr->describe().rfind("peer closed: " + std::string(transport_error_name(tc.expected)), 0), 0u)
      << cr->describe();
}

Bytes stream_frame(std::uint64_t id, std::uint64_t offset, std::size_t len) {
  Bytes b{0x0e};  // STREAM with OFF and LEN
  put_varint(b, id);
  put_varint(b, offset);
  put_varint(b, len);
  b.resize(b.size() + len, 0xab);
  return b;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ForgedFrames,
    ::testing::Values(
        ForgeCase{"HandshakeDoneFromClient", {0x1e}, 0, TransportError::kProtocolViolation},
        ForgeCase{"ReservedBits", {0x01}, 1, TransportError::kProtocolViolation},
        ForgeCase{"UnknownFrameType", {0x40, 0x99}, 0, TransportError::kFrameEncodingError},
        ForgeCase{"StreamLimit", stream_frame(4 * 1000, 0, 10), 0,
                  TransportError::kStreamLimitError},
        ForgeCase{"FlowControl", stream_frame(4, 2'000'000, 10), 0,
                  TransportError::kFlowControlError},
        ForgeCase{"StreamOnServersUniStream", stream_frame(3, 0, 10), 0,
                  TransportError::kStreamStateError},
        // OBSERVED_ADDRESS (v4, seq 0, 10.0.0.1:4433) to a server that did not negotiate QAD.
        ForgeCase{"ObservedAddressNotNegotiated",
                  {0x80, 0x9f, 0x81, 0xa6, 0x00, 10, 0, 0, 1, 0x11, 0x51},
                  0,
                  TransportError::kProtocolViolation},
        ForgeCase{"AckOfUnsentPacket",
                  {0x02, 0x80, 0x10, 0x00, 0x00, 0x00, 0x00},
                  0,
                  TransportError::kProtocolViolation}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(ConnectionErrors, ForgedPacketWithBadTagIsIgnored) {
  ForgingPair f(81);
  ASSERT_TRUE(f.p.connect());
  ASSERT_TRUE(run_echo(f.p, 1000, 2s));
  ASSERT_TRUE(f.prepare());
  // Right header, wrong keys: looks like a packet of ours, fails authentication, dropped.
  auto wrong = crypto::PacketProtection::from_secret(
      crypto::AeadAlgorithm::kAes128Gcm, Bytes(32, 0x42), crypto::EncryptionLevel::kOneRtt);
  ASSERT_TRUE(wrong);
  f.tx.emplace(std::move(wrong).value());
  for (int i = 0; i < 50; ++i) f.inject({0x1e});
  EXPECT_FALSE(f.p.sconn()->is_closed());
  ASSERT_TRUE(run_echo(f.p, 100'000, 5s, 1));
}

// ---------------------------------------------------------------------------------------------
// Retry, stateless reset, migration
// ---------------------------------------------------------------------------------------------

TEST(ConnectionRetry, HandshakeWorksAndServerCountsRetries) {
  EndpointConfig server_cfg = FlexPair::default_server();
  server_cfg.retry = true;
  FlexPair p(90, {}, server_cfg);
  p.net.profile = delay_link(10ms);
  ASSERT_TRUE(p.connect());
  EXPECT_EQ(p.server->stats().retries_sent, 1u);
  EXPECT_EQ(p.server->stats().invalid_tokens, 0u);
  // One extra round trip for the Retry: handshake done in about 2 RTT.
  EXPECT_LT(p.net.now() - Instant(1s), 70ms);
  EXPECT_GE(p.net.now() - Instant(1s), 40ms);
  EXPECT_TRUE(p.sconn()->stats().path.validated);  // the token proved the address
  ASSERT_TRUE(run_echo(p, 1 << 20, 10s));
}

TEST(ConnectionRetry, WorksWithLossyLink) {
  EndpointConfig server_cfg = FlexPair::default_server();
  server_cfg.retry = true;
  for (std::uint64_t seed = 91; seed < 101; ++seed) {
    SCOPED_TRACE(seed);
    FlexPair p(seed, {}, server_cfg);
    sim::LinkProfile lossy = delay_link(10ms);
    lossy.loss = 0.2;
    p.net.profile = lossy;
    ASSERT_TRUE(p.connect(20s));
    ASSERT_TRUE(run_echo(p, 50'000, 20s));
  }
}

TEST(ConnectionStatelessReset, ClientDrainsWhenServerForgotTheConnection) {
  EndpointConfig server_cfg = FlexPair::default_server();
  SeededRandom key_rng(7);
  server_cfg.connection.reset_key = key_rng.array<32>();
  FlexPair p(100, {}, server_cfg);
  p.net.profile = delay_link(10ms);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 100'000, 5s));
  p.net.run_for(1s);
  // The server restarts (same identity, same reset key) and knows nothing about us.
  p.recreate_server();
  auto* c = p.cconn();
  auto id = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(id);
  ASSERT_TRUE(c->stream_write(*id, testing::pattern(1000)));
  const Instant t0 = p.net.now();
  std::vector<Endpoint::Removed> log;
  std::optional<CloseReason> r;
  ASSERT_TRUE(p.net.run_until(
      [&] { return (r = closed_reason(*p.client, p.client_handle, log)).has_value(); }, 5s));
  EXPECT_EQ(r->kind, CloseReason::Kind::kStatelessReset) << r->describe();
  EXPECT_LT(p.net.now() - t0, 100ms);  // one round trip, not an idle timeout
  EXPECT_GE(p.server->stats().stateless_resets_sent, 1u);
  // Draining: the client sends nothing more and is eventually forgotten.
  p.net.run_for(5s);
  EXPECT_EQ(p.client->connection_count(), 0u);
}

TEST(ConnectionStatelessReset, DifferentResetKeyDoesNotKill) {
  // A restarted server with a *different* reset key cannot reset us: the client times out
  // instead (the reset token does not match).
  FlexPair p(101);
  p.net.profile = delay_link(10ms);
  ASSERT_TRUE(p.connect());
  p.recreate_server();  // reset_key zero in the config: a fresh random one
  auto* c = p.cconn();
  auto id = c->open_stream(StreamDirection::kBidi);
  ASSERT_TRUE(c->stream_write(*id, testing::pattern(1000)));
  p.net.run_for(2s);
  ASSERT_TRUE(p.cconn());
  EXPECT_FALSE(p.cconn()->is_closed());
}

class Migration : public ::testing::TestWithParam<bool> {};

TEST_P(Migration, ClientAddressChangesMidTransfer) {
  const bool port_only = GetParam();
  FlexPair p(110 + port_only);
  p.net.profile = delay_link(10ms);
  ASSERT_TRUE(p.connect());
  const SocketAddr moved =
      port_only ? SocketAddr::v4({10, 0, 0, 1}, 50000) : SocketAddr::v4({192, 168, 7, 9}, 61000);
  Echo e(p, 4 << 20);
  bool did_move = false;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        if (!did_move && e.back > (1 << 20)) {
          p.move_client(moved);
          did_move = true;
        }
        return e.pump();
      },
      30s))
      << e.error;
  EXPECT_TRUE(e.ok()) << e.error;
  EXPECT_TRUE(did_move);
  auto* s = p.sconn();
  EXPECT_EQ(s->remote_address(), moved);
  p.net.run_for(1s);
  EXPECT_TRUE(s->stats().path.validated);
  EXPECT_FALSE(s->is_closed());
  EXPECT_FALSE(p.cconn()->is_closed());
}
INSTANTIATE_TEST_SUITE_P(Kinds, Migration, ::testing::Values(false, true),
                         [](const auto& info) { return info.param ? "PortOnly" : "NewAddress"; });

TEST(ConnectionMigration, SingleDatagramFromNewAddressIsAnsweredAtOnce) {
  // After moving, the client sends one datagram and then nothing gets through for a while. The
  // server must still answer the new address (PATH_CHALLENGE, within 3× what it received there).
  FlexPair p(113);
  p.net.profile = delay_link(10ms);
  const SocketAddr moved = SocketAddr::v4({192, 168, 1, 50}, 4000);
  bool blocking = false;
  int passed = 0;
  std::uint64_t to_new = 0, to_new_bytes = 0, from_new_bytes = 0;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr& to, Bytes& d, std::uint8_t&) {
    if (to == moved) {
      ++to_new;
      to_new_bytes += d.size();
    }
    if (blocking && from == moved) {
      if (passed++ >= 1) return false;
      from_new_bytes += d.size();
    }
    return true;
  };
  ASSERT_TRUE(p.connect());
  p.net.run_for(1s);
  p.move_client(moved);
  blocking = true;
  auto id = p.cconn()->open_stream(StreamDirection::kUni);
  ASSERT_TRUE(p.cconn()->stream_write(*id, testing::pattern(10)));
  p.net.run_for(50ms);
  EXPECT_EQ(passed >= 1, true);
  EXPECT_GE(to_new, 1u) << "the server stayed silent towards the new address";
  EXPECT_LE(to_new_bytes, 3 * from_new_bytes);
  blocking = false;
  ASSERT_TRUE(run_echo(p, 100'000, 5s));
  EXPECT_EQ(p.sconn()->remote_address(), moved);
}

TEST(ConnectionMigration, SpoofedSourceDoesNotHijack) {
  // An attacker replays a client packet from another address: the server may probe that path
  // but must keep the connection usable for the real client (RFC 9000 §9.3.2, §21.5.4).
  FlexPair p(112);
  p.net.profile = delay_link(10ms);
  Bytes captured;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes& d, std::uint8_t&) {
    if (from == FlexPair::kClientAddr && !(d[0] & 0x80)) captured = d;
    return true;
  };
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 10'000, 2s));
  ASSERT_FALSE(captured.empty());
  const SocketAddr attacker = SocketAddr::v4({6, 6, 6, 6}, 666);
  // A replay is a duplicate packet number: ignored entirely.
  Bytes copy = captured;
  p.server->handle_datagram(p.net.now(), attacker, copy);
  EXPECT_EQ(p.sconn()->remote_address(), FlexPair::kClientAddr);
  ASSERT_TRUE(run_echo(p, 100'000, 5s, 1));
}

// ---------------------------------------------------------------------------------------------
// PMTU, ECN, anti-amplification
// ---------------------------------------------------------------------------------------------

TEST(ConnectionPmtu, ReachesMaxOnMtu1500Link) {
  QuicPair p(120);
  sim::LinkProfile l = delay_link(10ms);
  l.mtu = 1500;
  p.net.set_path(p.kClientAddr, p.kServerAddr, l);
  ASSERT_TRUE(p.connect());
  p.net.run_for(3s);
  EXPECT_EQ(p.cconn()->stats().path.mtu, 1452u);
  EXPECT_EQ(p.sconn()->stats().path.mtu, 1452u);
  ASSERT_TRUE(run_echo(p, 1 << 20, 10s));
  EXPECT_EQ(p.cconn()->stats().packets_lost, 0u);
  EXPECT_GE(p.cconn()->max_datagram_size(), 1350u);
}

TEST(ConnectionPmtu, NeverExceedsLinkMtu1300) {
  QuicPair p(121);
  sim::LinkProfile l = delay_link(10ms);
  l.mtu = 1300;
  p.net.set_path(p.kClientAddr, p.kServerAddr, l);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 4 << 20, 30s));
  p.net.run_for(60s);
  for (auto* c : {p.cconn(), p.sconn()}) {
    const auto mtu = c->stats().path.mtu;
    EXPECT_GE(mtu, 1200u);
    EXPECT_LE(mtu, 1300u);
    EXPECT_FALSE(c->is_closed());
  }
  // Failed probes are not congestion: nothing but probes was dropped.
  EXPECT_EQ(p.net.link(p.kClientAddr, p.kServerAddr)->stats().dropped_loss, 0u);
  ASSERT_TRUE(run_echo(p, 1 << 20, 10s, 1));
}

TEST(ConnectionPmtu, StaysAt1200WhenEvenSmallProbesFail) {
  QuicPair p(122);
  sim::LinkProfile l = delay_link(10ms);
  l.mtu = 1200;
  p.net.set_path(p.kClientAddr, p.kServerAddr, l);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 1 << 20, 30s));
  p.net.run_for(60s);
  EXPECT_EQ(p.cconn()->stats().path.mtu, 1200u);
  EXPECT_EQ(p.sconn()->stats().path.mtu, 1200u);
  EXPECT_FALSE(p.cconn()->is_closed());
}

TEST(ConnectionPmtu, DisabledStaysAt1200) {
  ConnectionConfig cfg;
  cfg.pmtu_discovery = false;
  QuicPair p(123, cfg);
  sim::LinkProfile l = delay_link(10ms);
  l.mtu = 1500;
  p.net.set_path(p.kClientAddr, p.kServerAddr, l);
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 1 << 20, 30s));
  p.net.run_for(10s);
  EXPECT_EQ(p.cconn()->stats().path.mtu, 1200u);
  EXPECT_EQ(p.sconn()->stats().path.mtu, 1200u);
}

struct EcnCount {
  std::uint64_t ect = 0, not_ect = 0;
  std::vector<std::uint8_t> last;  // codepoints of the last datagrams sent by the client
};

void ecn_run(bool bleach, bool enabled, EcnCount& out) {
  EndpointConfig cc;
  cc.connection.ecn = enabled;
  FlexPair p(130 + bleach, cc);
  p.net.profile = delay_link(10ms);
  p.net.bleach_ecn = bleach;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes&, std::uint8_t& ecn) {
    if (from != FlexPair::kClientAddr) return true;
    (ecn ? out.ect : out.not_ect)++;
    out.last.push_back(ecn);
    if (out.last.size() > 100) out.last.erase(out.last.begin());
    return true;
  };
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(run_echo(p, 2 << 20, 20s));
}

TEST(ConnectionEcn, ValidatesOnEcnPreservingPath) {
  EcnCount n;
  ecn_run(false, true, n);
  ASSERT_EQ(n.last.size(), 100u);
  // Capable: still marking ECT(0) (0b10) long after the testing period.
  for (auto e : n.last) EXPECT_EQ(e, 2) << "ECN validation did not succeed";
}

TEST(ConnectionEcn, FailsOnBleachingPath) {
  EcnCount n;
  ecn_run(true, true, n);
  EXPECT_GT(n.ect, 0u);  // it tried
  for (auto e : n.last) EXPECT_EQ(e, 0) << "kept marking although the path clears ECN";
}

TEST(ConnectionEcn, DisabledNeverMarks) {
  EcnCount n;
  ecn_run(false, false, n);
  EXPECT_EQ(n.ect, 0u);
}

TEST(ConnectionAmplification, ServerSendsAtMostThreeTimesBeforeValidation) {
  // Only the client's first datagram reaches the server; it must then stay within 3× that many
  // bytes no matter how many PTOs fire (RFC 9000 §8.1).
  FlexPair p(140);
  p.net.profile = delay_link(10ms);
  std::uint64_t c2s = 0, c2s_bytes = 0, s2c_bytes = 0;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes& d, std::uint8_t&) {
    if (from == FlexPair::kClientAddr) {
      if (++c2s > 1) return false;
      c2s_bytes += d.size();
      return true;
    }
    s2c_bytes += d.size();
    return true;
  };
  p.dial();
  p.net.run_for(20s);
  EXPECT_EQ(c2s_bytes, 1200u);
  EXPECT_GT(s2c_bytes, 0u);
  EXPECT_LE(s2c_bytes, 3 * c2s_bytes);
  EXPECT_EQ(p.server->connection_count(), 0u) << "the half-open server connection lingers";
}

TEST(ConnectionAmplification, LargeServerCertificateFlightStillCompletes) {
  // Lose the client's second Initial flight... the 3× budget plus the client's PTO probes
  // (which add credit) must get the handshake through.
  FlexPair p(141);
  p.net.profile = delay_link(10ms);
  int c2s = 0;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes&, std::uint8_t&) {
    if (from == FlexPair::kClientAddr) return ++c2s != 2;
    return true;
  };
  ASSERT_TRUE(p.connect(10s));
}

// ---------------------------------------------------------------------------------------------
// malformed input
// ---------------------------------------------------------------------------------------------

TEST(ConnectionMalformed, RandomGarbageNeverCrashesAndConnectionSurvives) {
  FlexPair p(150);
  p.net.profile = delay_link(5ms);
  ASSERT_TRUE(p.connect());
  SeededRandom rng(150);
  auto garbage = [&](std::size_t n) {
    Bytes b(n);
    rng.fill(b);
    return b;
  };
  for (int i = 0; i < 3000; ++i) {
    const std::size_t n = rng.uniform(1500) + 1;
    Bytes g = garbage(n);
    // Make a third of them look like ours: a short header with the right DCID length.
    if (i % 3 == 0) g[0] = (g[0] & 0x3f) | 0x40;
    // And some long headers claiming v1.
    if (i % 3 == 1 && n > 6) {
      g[0] |= 0xc0;
      g[1] = 0, g[2] = 0, g[3] = 0, g[4] = 1;
    }
    Bytes g2 = g;
    p.server->handle_datagram(p.net.now(), FlexPair::kClientAddr, g);
    p.client->handle_datagram(p.net.now(), FlexPair::kServerAddr, g2);
    if (i % 100 == 0) p.net.run_for(1ms);
  }
  ASSERT_TRUE(p.cconn() && p.sconn());
  // A lossless link: nothing may be lost around the updates (old-phase packets in flight when a
  // side updates must still decrypt — RFC 9001 §6.3, §6.5).
  EXPECT_EQ(p.cconn()->stats().packets_lost, 0u);
  EXPECT_EQ(p.sconn()->stats().packets_lost, 0u);
  EXPECT_FALSE(p.cconn()->is_closed());
  EXPECT_FALSE(p.sconn()->is_closed());
  ASSERT_TRUE(run_echo(p, 200'000, 5s));
  // Garbage Initials must not have produced connections for the application.
  EXPECT_FALSE(p.server->accept()) << "a garbage datagram became an incoming connection";
}

TEST(ConnectionMalformed, MutatedAndTruncatedRealPacketsAreSurvived) {
  // Every 7th datagram either way is corrupted (bit flip, truncation, or extension), during the
  // handshake as well: AEAD rejects them and recovery treats them as lost.
  for (std::uint64_t seed = 160; seed < 170; ++seed) {
    SCOPED_TRACE(seed);
    FlexPair p(seed);
    p.net.profile = delay_link(5ms);
    SeededRandom rng(seed);
    std::uint64_t n = 0;
    p.net.tap = [&](const SocketAddr&, const SocketAddr&, Bytes& d, std::uint8_t&) {
      if (++n % 7 != 0) return true;
      switch (rng.uniform(4)) {
        case 0:
          d[rng.uniform(d.size())] ^= static_cast<std::uint8_t>(1u << rng.uniform(8));
          break;
        case 1:
          d.resize(rng.uniform(d.size()));
          break;
        case 2:
          d.push_back(static_cast<std::uint8_t>(rng.uniform(256)));
          break;
        default:
          for (std::size_t k = 0; k < 16 && k < d.size(); ++k) {
            d[rng.uniform(d.size())] = static_cast<std::uint8_t>(rng.uniform(256));
          }
      }
      return !d.empty();
    };
    ASSERT_TRUE(p.connect(20s));
    ASSERT_TRUE(run_echo(p, 300'000, 30s));
    EXPECT_FALSE(p.cconn()->is_closed());
  }
}

// ---------------------------------------------------------------------------------------------
// performance sanity (virtual time)
// ---------------------------------------------------------------------------------------------

class Performance : public ::testing::TestWithParam<CongestionAlgorithm> {};

TEST_P(Performance, FourMiBEchoOver20msLinkIsFastAndCwndGrows) {
  ConnectionConfig cfg;
  cfg.congestion = GetParam();
  QuicPair p(170, cfg);
  p.net.set_path(p.kClientAddr, p.kServerAddr, delay_link(10ms));
  ASSERT_TRUE(p.connect());
  const auto initial_cwnd = p.cconn()->stats().path.cwnd;
  EXPECT_GE(initial_cwnd, 12000u);
  EXPECT_LE(initial_cwnd, 15000u);
  const Instant t0 = p.net.now();
  ASSERT_TRUE(run_echo(p, 4 << 20, 10s));
  const double took = testing::seconds_since(p, t0);
  // Unlimited link: the time is slow start's. From a 12 KB window, 4 MiB needs ~9 doublings;
  // the echo follows one RTT behind. 10 RTT (200 ms) + a few RTT of slack.
  EXPECT_LT(took, 0.3) << "took " << took << " s";
  EXPECT_EQ(p.cconn()->stats().packets_lost, 0u);
  EXPECT_GT(p.cconn()->stats().path.cwnd, 20 * initial_cwnd);
  EXPECT_GT(p.sconn()->stats().path.cwnd, 20 * initial_cwnd);
  EXPECT_NEAR(to_millis_f(p.cconn()->stats().path.min_rtt), 20.0, 1.0);
}

TEST_P(Performance, FillsA100MbitLink) {
  ConnectionConfig cfg;
  cfg.congestion = GetParam();
  QuicPair p(171, cfg);
  sim::LinkProfile l = delay_link(10ms);
  l.rate_bps = 100'000'000;
  l.queue_bytes = 256 * 1024;  // ~1 BDP
  p.net.set_path(p.kClientAddr, p.kServerAddr, l);
  ASSERT_TRUE(p.connect());
  const Instant t0 = p.net.now();
  ASSERT_TRUE(run_echo(p, 8 << 20, 30s));
  const double took = testing::seconds_since(p, t0);
  const double wire = (8 << 20) * 8.0 / 100e6;  // 0.67 s each way, pipelined
  EXPECT_LT(took, wire + 10 * 0.02 + 0.3) << took;
}
INSTANTIATE_TEST_SUITE_P(Algorithms, Performance,
                         ::testing::Values(CongestionAlgorithm::kCubic,
                                           CongestionAlgorithm::kNewReno),
                         [](const auto& info) {
                           return info.param == CongestionAlgorithm::kCubic ? "Cubic" : "NewReno";
                         });

}  // namespace
}  // namespace iroh::quic

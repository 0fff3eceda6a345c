// quic::Endpoint: routing, Version Negotiation, stateless reset, Retry, refusing (RFC 9000 §5.2,
// §6, §8.1.2, §10.3), driven by hand or on the MiniNet of quic_echo.h.
#include <gtest/gtest.h>

#include "quic/packet.h"
#include "quic_echo.h"

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using testing::Echo;
using testing::FlexPair;

const SocketAddr kPeer = SocketAddr::v4({192, 0, 2, 1}, 5000);
const SocketAddr kServer = SocketAddr::v4({192, 0, 2, 2}, 443);
const Instant kT0{std::chrono::seconds(100)};

struct Standalone {
  explicit Standalone(std::uint64_t seed, EndpointConfig cfg = FlexPair::default_server())
      : rng(seed), key(SecretKey::generate(rng.array<32>())), ep(key, std::move(cfg), rng) {}
  std::vector<std::pair<Bytes, SocketAddr>> drain(Instant now) {
    std::vector<std::pair<Bytes, SocketAddr>> out;
    Bytes buf(1500);
    while (auto t = ep.poll_transmit(now, buf))
      out.emplace_back(Bytes(buf.begin(), buf.begin() + t->size), t->dest);
    return out;
  }
  SeededRandom rng;
  SecretKey key;
  Endpoint ep;
};

// A long-header datagram with arbitrary version and CIDs, padded to `size`.
Bytes long_header(std::uint32_t version, ByteView dcid, ByteView scid, std::size_t size) {
  Bytes b{0xc0};
  for (int i = 3; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(version >> (8 * i)));
  b.push_back(static_cast<std::uint8_t>(dcid.size()));
  b.insert(b.end(), dcid.begin(), dcid.end());
  b.push_back(static_cast<std::uint8_t>(scid.size()));
  b.insert(b.end(), scid.begin(), scid.end());
  b.resize(size, 0x5a);
  return b;
}

TEST(EndpointVersionNegotiation, UnknownVersionGetsVersionNegotiation) {
  Standalone s(1);
  const Bytes dcid{1, 2, 3, 4, 5, 6, 7, 8, 9}, scid{0xa, 0xb, 0xc};
  Bytes d = long_header(0x1a2a3a4a, dcid, scid, 1200);
  s.ep.handle_datagram(kT0, kPeer, d);
  auto out = s.drain(kT0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].second, kPeer);
  EXPECT_EQ(s.ep.stats().version_negotiations, 1u);
  auto parsed = parse_header(out[0].first, 8);
  ASSERT_TRUE(parsed) << parsed.error().message;
  EXPECT_EQ(parsed->header.type, PacketType::kVersionNegotiation);
  // §17.2.1: our DCID is the client's SCID and vice versa.
  EXPECT_TRUE(std::equal(scid.begin(), scid.end(), parsed->header.dcid.view().begin(),
                         parsed->header.dcid.view().end()));
  EXPECT_TRUE(std::equal(dcid.begin(), dcid.end(), parsed->header.scid.view().begin(),
                         parsed->header.scid.view().end()));
  const auto& v = parsed->header.supported_versions;
  EXPECT_NE(std::find(v.begin(), v.end(), kVersion1), v.end());
  EXPECT_EQ(std::find(v.begin(), v.end(), 0x1a2a3a4au), v.end());
  EXPECT_EQ(s.ep.connection_count(), 0u);
}

TEST(EndpointVersionNegotiation, NotForSmallDatagramsOrVersionNegotiation) {
  Standalone s(2);
  const Bytes dcid{1, 2, 3, 4, 5, 6, 7, 8}, scid{9};
  Bytes small = long_header(0x1a2a3a4a, dcid, scid, 1199);
  s.ep.handle_datagram(kT0, kPeer, small);
  Bytes vn = long_header(0, dcid, scid, 1200);  // never answer a VN (§6.1)
  s.ep.handle_datagram(kT0, kPeer, vn);
  EXPECT_TRUE(s.drain(kT0).empty());
  EXPECT_EQ(s.ep.stats().version_negotiations, 0u);
}

// The client's first Initial and the CIDs it used.
struct DialedClient {
  explicit DialedClient(std::uint64_t seed) : s(seed, EndpointConfig{}) {
    SeededRandom other(seed + 1000);
    auto server_key = SecretKey::generate(other.array<32>());
    auto h = s.ep.connect(kT0, kServer, server_key.public_key(), "test/echo/0");
    EXPECT_TRUE(h);
    handle = *h;
    auto out = s.drain(kT0);
    EXPECT_FALSE(out.empty());
    initial = out.at(0).first;
    auto inv = parse_invariants(initial);
    EXPECT_TRUE(inv);
    dcid.assign(inv->dcid.begin(), inv->dcid.end());
    scid.assign(inv->scid.begin(), inv->scid.end());
  }
  Bytes vn(std::vector<std::uint32_t> versions, ByteView to_dcid) {
    Bytes b{0x80 | 0x40};
    b.insert(b.end(), {0, 0, 0, 0});
    b.push_back(static_cast<std::uint8_t>(to_dcid.size()));
    b.insert(b.end(), to_dcid.begin(), to_dcid.end());
    b.push_back(static_cast<std::uint8_t>(dcid.size()));
    b.insert(b.end(), dcid.begin(), dcid.end());
    for (auto v : versions) {
      for (int i = 3; i >= 0; --i) b.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
    }
    return b;
  }
  Standalone s;
  ConnectionHandle handle = 0;
  Bytes initial, dcid, scid;
};

TEST(EndpointVersionNegotiation, ClientWithoutCommonVersionClosesVersionMismatch) {
  DialedClient c(3);
  ASSERT_EQ(c.initial.size(), 1200u);
  Bytes vn = c.vn({0x1a2a3a4a, 0xff00001d}, c.scid);
  c.s.ep.handle_datagram(kT0 + 10ms, kServer, vn);
  // Gone at once (nothing to drain), with its reason kept for the driver.
  EXPECT_EQ(c.s.ep.connection(c.handle), nullptr);
  auto removed = c.s.ep.take_removed();
  ASSERT_EQ(removed.size(), 1u);
  ASSERT_TRUE(removed[0].reason);
  EXPECT_EQ(removed[0].reason->kind, CloseReason::Kind::kVersionMismatch);
  EXPECT_EQ(removed[0].reason->describe(), "peer does not support QUIC v1");
  EXPECT_NE(removed[0].reason->reason.find("0x1a2a3a4a"), std::string::npos);
  EXPECT_TRUE(c.s.drain(kT0 + 10ms).empty());
}

TEST(EndpointVersionNegotiation, ClientIgnoresBogusVersionNegotiation) {
  DialedClient c(4);
  // Lists v1 (§6.2: must be ignored), or is addressed to another CID.
  Bytes with_v1 = c.vn({0x1a2a3a4a, kVersion1}, c.scid);
  c.s.ep.handle_datagram(kT0 + 10ms, kServer, with_v1);
  ASSERT_NE(c.s.ep.connection(c.handle), nullptr) << "VN listing v1";
  Bytes other{1, 2, 3, 4, 5, 6, 7, 8};
  Bytes wrong_cid = c.vn({0x1a2a3a4a}, other);
  c.s.ep.handle_datagram(kT0 + 10ms, kServer, wrong_cid);
  ASSERT_NE(c.s.ep.connection(c.handle), nullptr) << "VN for another CID";
  EXPECT_FALSE(c.s.ep.connection(c.handle)->is_closed());
}

TEST(EndpointStatelessReset, UnroutableShortHeaderGetsSmallerReset) {
  EndpointConfig cfg = FlexPair::default_server();
  SeededRandom kr(5);
  cfg.connection.reset_key = kr.array<32>();
  Standalone s(5, cfg);
  Bytes d(100);
  SeededRandom r(55);
  r.fill(d);
  d[0] = 0x41;
  const Bytes dcid(d.begin() + 1, d.begin() + 9);
  s.ep.handle_datagram(kT0, kPeer, d);
  auto out = s.drain(kT0);
  ASSERT_EQ(out.size(), 1u);
  const Bytes& reset = out[0].first;
  EXPECT_LT(reset.size(), d.size());  // §10.3: never larger than what triggered it
  EXPECT_GE(reset.size(), 21u);
  EXPECT_EQ(reset[0] & 0xc0, 0x40);  // looks like a short header
  const auto token = stateless_reset_token(cfg.connection.reset_key, dcid);
  EXPECT_TRUE(std::equal(token.begin(), token.end(), reset.end() - 16));
  EXPECT_EQ(s.ep.stats().stateless_resets_sent, 1u);
}

TEST(EndpointStatelessReset, NoResetForTinyDatagramsAndLoopsDie) {
  Standalone a(6), b(7);
  Bytes tiny(22, 0x41);
  a.ep.handle_datagram(kT0, kPeer, tiny);
  EXPECT_TRUE(a.drain(kT0).empty());
  // Two endpoints that know nothing of each other reset each other's resets: every reply is
  // smaller, so the ping-pong ends.
  Bytes d(200, 0x42);
  int rounds = 0;
  for (int i = 0; i < 400; ++i) {
    Endpoint* to = i % 2 ? &b.ep : &a.ep;
    Bytes in = d;
    to->handle_datagram(kT0, kPeer, in);
    auto out = (to == &a.ep ? a : b).drain(kT0);
    if (out.empty()) break;
    ASSERT_LT(out[0].first.size(), d.size());
    d = out[0].first;
    ++rounds;
  }
  EXPECT_LT(rounds, 400);
}

TEST(EndpointRetry, RetryThenTokenChecks) {
  EndpointConfig cfg = FlexPair::default_server();
  cfg.retry = true;
  Standalone server(8, cfg);
  DialedClient c(9);
  Bytes first = c.initial;
  server.ep.handle_datagram(kT0, kPeer, first);
  auto out = server.drain(kT0);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(server.ep.stats().retries_sent, 1u);
  EXPECT_EQ(server.ep.connection_count(), 0u);  // stateless until the token comes back
  auto parsed = parse_header(out[0].first, 8);
  ASSERT_TRUE(parsed);
  ASSERT_EQ(parsed->header.type, PacketType::kRetry);
  EXPECT_FALSE(parsed->header.token.empty());
  // The client follows the Retry: its next Initial carries the token.
  Bytes retry = out[0].first;
  c.s.ep.handle_datagram(kT0 + 1ms, kServer, retry);
  auto again = c.s.drain(kT0 + 1ms);
  ASSERT_FALSE(again.empty());
  Bytes with_token = again[0].first;
  // From another address the token is refused (bound to the client's address).
  Bytes copy = with_token;
  server.ep.handle_datagram(kT0 + 2ms, SocketAddr::v4({192, 0, 2, 99}, 5000), copy);
  EXPECT_EQ(server.ep.stats().invalid_tokens, 1u);
  EXPECT_EQ(server.ep.connection_count(), 0u);
  // Too late (the token lives 10 s).
  copy = with_token;
  server.ep.handle_datagram(kT0 + 11s, kPeer, copy);
  EXPECT_EQ(server.ep.stats().invalid_tokens, 2u);
  EXPECT_EQ(server.ep.connection_count(), 0u);
  // In time from the right address: accepted.
  copy = with_token;
  server.ep.handle_datagram(kT0 + 2ms, kPeer, copy);
  EXPECT_EQ(server.ep.connection_count(), 1u);
  EXPECT_TRUE(server.ep.accept());
}

TEST(EndpointRetry, ClientIgnoresSecondRetryAndBadIntegrityTag) {
  EndpointConfig cfg = FlexPair::default_server();
  cfg.retry = true;
  Standalone server(10, cfg);
  DialedClient c(11);
  Bytes first = c.initial;
  server.ep.handle_datagram(kT0, kPeer, first);
  auto out = server.drain(kT0);
  ASSERT_EQ(out.size(), 1u);
  Bytes tampered = out[0].first;
  tampered[tampered.size() - 20] ^= 1;  // inside the token: the integrity tag fails
  c.s.ep.handle_datagram(kT0 + 1ms, kServer, tampered);
  auto none = c.s.drain(kT0 + 1ms);
  EXPECT_TRUE(none.empty()) << "a Retry with a bad integrity tag was followed";
  Bytes good = out[0].first;
  c.s.ep.handle_datagram(kT0 + 2ms, kServer, good);
  EXPECT_FALSE(c.s.drain(kT0 + 2ms).empty());
  Bytes second = out[0].first;
  c.s.ep.handle_datagram(kT0 + 3ms, kServer, second);
  EXPECT_TRUE(c.s.drain(kT0 + 3ms).empty()) << "a second Retry was followed";
}

TEST(EndpointAccept, GarbageInitialDoesNotCreateAConnection) {
  Standalone s(12);
  // A well-formed v1 Initial header whose payload is not decryptable.
  Bytes d{0xc3, 0, 0, 0, 1, 8, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0};  // ... SCID len 0, token len 0
  d.push_back(0x44);  // Length: 2-byte varint 0x449e = 1182
  d.push_back(0x9e);
  d.resize(d.size() + 1182, 0x77);
  ASSERT_GE(d.size(), 1200u);
  s.ep.handle_datagram(kT0, kPeer, d);
  EXPECT_FALSE(s.ep.accept()) << "an undecryptable Initial became an incoming connection";
  EXPECT_EQ(s.ep.connection_count(), 0u);
  EXPECT_TRUE(s.drain(kT0).empty());
}

TEST(EndpointAccept, RefusesWithoutAlpnsAndClientTimesOut) {
  EndpointConfig no_alpns;  // accepts nothing
  FlexPair p(13, {}, no_alpns);
  p.dial();
  std::optional<CloseReason> reason;
  ASSERT_TRUE(p.net.run_until(
      [&] {
        for (auto& r : p.client->take_removed()) reason = r.reason;
        return reason.has_value();
      },
      20s));
  EXPECT_EQ(reason->kind, CloseReason::Kind::kHandshakeTimeout);
  EXPECT_GE(p.server->stats().refused, 1u);
  EXPECT_EQ(p.server->connection_count(), 0u);
}

TEST(EndpointRouting, ManyClientsOneServer) {
  // Three client endpoints and one server on a MiniNet; each echoes concurrently.
  testing::MiniNet net(14);
  net.profile.delay = 5ms;
  SeededRandom srng(140);
  auto skey = SecretKey::generate(srng.array<32>());
  Endpoint server(skey, FlexPair::default_server(), srng);
  net.attach(server, kServer);
  struct Client {
    std::unique_ptr<SeededRandom> rng;
    std::unique_ptr<Endpoint> ep;
    ConnectionHandle h = 0;
  };
  std::vector<Client> clients;
  for (int i = 0; i < 3; ++i) {
    Client c;
    c.rng = std::make_unique<SeededRandom>(200 + i);
    c.ep = std::make_unique<Endpoint>(SecretKey::generate(c.rng->array<32>()), EndpointConfig{},
                                      *c.rng);
    net.attach(*c.ep, SocketAddr::v4({10, 1, 0, static_cast<std::uint8_t>(i + 1)}, 7000));
    clients.push_back(std::move(c));
  }
  for (auto& c : clients) {
    auto h = c.ep->connect(net.now(), kServer, skey.public_key(), "test/echo/0");
    ASSERT_TRUE(h);
    c.h = *h;
  }
  std::vector<ConnectionHandle> accepted;
  ASSERT_TRUE(net.run_until(
      [&] {
        while (auto h = server.accept()) accepted.push_back(*h);
        for (auto& c : clients) {
          if (!c.ep->connection(c.h)->is_handshake_complete()) return false;
        }
        if (accepted.size() != 3) return false;
        for (auto h : accepted) {
          if (!server.connection(h)->is_handshake_complete()) return false;
        }
        return true;
      },
      5s));
  // Each server connection knows its own client.
  std::set<EndpointId> ids;
  for (auto h : accepted) ids.insert(*server.connection(h)->peer_id());
  EXPECT_EQ(ids.size(), 3u);
  for (auto& c : clients) EXPECT_TRUE(ids.count(c.ep->id()));
  // Uni transfer from every client at once, checked per server connection.
  std::vector<std::uint64_t> sids;
  for (std::size_t i = 0; i < clients.size(); ++i) {
    auto* c = clients[i].ep->connection(clients[i].h);
    auto id = c->open_stream(StreamDirection::kUni);
    ASSERT_TRUE(c->stream_write(*id, testing::pattern(100'000, i)));
    ASSERT_TRUE(c->stream_finish(*id));
  }
  std::map<ConnectionHandle, std::size_t> got;
  std::map<ConnectionHandle, bool> fin;
  Bytes buf(65536);
  ASSERT_TRUE(net.run_until(
      [&] {
        for (auto h : accepted) {
          auto* sc = server.connection(h);
          while (auto sid = sc->accept_stream(StreamDirection::kUni)) sids.push_back(*sid);
          for (auto sid : sids) {
            if (fin[h]) break;
            auto r = sc->stream_read(sid, buf);
            if (!r) continue;  // another connection's stream id
            got[h] += r->bytes;
            fin[h] = r->fin;
          }
        }
        int done = 0;
        for (auto h : accepted) done += fin[h];
        return done == 3;
      },
      10s));
  for (auto h : accepted) EXPECT_EQ(got[h], 100'000u);
}

}  // namespace
}  // namespace iroh::quic

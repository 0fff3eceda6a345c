// The relay client's sans-IO state machine (spec §6.4, §6.5, §6.8), on virtual time: alone, and
// driven against relay::ServerCore in-process (no sockets).
#include "relay/client_core.h"

#include <gtest/gtest.h>

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "relay/frame.h"
#include "relay/handshake.h"
#include "relay/server_core.h"
#include "test_bytes.h"

namespace iroh::relay {
namespace {

using iroh::testing::hex;
using namespace std::chrono_literals;

SecretKey key(std::uint8_t n) {
  ByteArray<32> seed;
  seed.fill(n);
  return SecretKey::from_seed(seed);
}

template <class T>
std::vector<T> all_of(const ClientActions& actions) {
  std::vector<T> out;
  for (const auto& a : actions) {
    if (auto* p = std::get_if<T>(&a)) out.push_back(*p);
  }
  return out;
}

std::vector<Frame> frames_of(const ClientActions& actions,
                             ProtocolVersion v = ProtocolVersion::V2) {
  std::vector<Frame> out;
  for (const auto& s : all_of<SendFrame>(actions)) {
    auto f = decode(s.frame, v);
    EXPECT_TRUE(f.ok());
    if (f.ok()) out.push_back(*f);
  }
  return out;
}

bool has_event(const ClientActions& actions, ClientEvent::Kind kind) {
  for (const auto& e : all_of<ClientEvent>(actions)) {
    if (e.kind == kind) return true;
  }
  return false;
}

// ---- the client alone ----

class RelayClientCore : public ::testing::Test {
 protected:
  RelayClientCore() : rng_(7), core_(key(1), ClientConfig{}, rng_) {}

  // start → connected → challenge → confirm. Returns the actions of the confirm.
  ClientActions bring_up(ProtocolVersion v = ProtocolVersion::V2) {
    core_.start(now_);
    core_.on_connected(v, false, now_);
    ByteArray<16> ch{};
    core_.on_message(encode(ServerChallenge{ch}), now_);
    return core_.on_message(encode(ServerConfirmsAuth{}), now_);
  }

  SeededRandom rng_;
  ClientCore core_;
  Instant now_{1'000'000'000};
};

TEST_F(RelayClientCore, AnswersChallengeWithSpecVector) {
  // spec §6.4 captured vector: sk = 00..1f, challenge = 10..1f.
  ByteArray<32> seed;
  for (int i = 0; i < 32; ++i) seed[i] = static_cast<std::uint8_t>(i);
  SeededRandom rng(1);
  ClientCore core(SecretKey::from_seed(seed), {}, rng);
  auto a = core.start(now_);
  ASSERT_EQ(all_of<Connect>(a).size(), 1u);
  EXPECT_EQ(core.state(), ClientState::Connecting);
  EXPECT_TRUE(core.on_connected(ProtocolVersion::V2, false, now_).empty());
  a = core.on_message(hex("00101112131415161718191a1b1c1d1e1f"), now_);
  auto sends = all_of<SendFrame>(a);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].frame,
            hex("0103a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
                "403f2532023e0d48d3871cd4f1953b128b5e155ae899a482bac8bc5bd52bb37dfccd6fa7762961"
                "684ae326f2d40d2dea96f92e32f1a03d21006909d4af3a28f700"));
  a = core.on_message(hex("02"), now_);
  EXPECT_EQ(core.state(), ClientState::Connected);
  EXPECT_EQ(core.auth_method(), AuthMethod::Challenge);
  ASSERT_TRUE(has_event(a, ClientEvent::Kind::Connected));
  // The first thing after auth is a relay Ping.
  auto f = frames_of(a);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Ping>(f[0]));
}

TEST_F(RelayClientCore, ImmediateConfirmOnlyWithKeyMaterialHeader) {
  core_.start(now_);
  core_.on_connected(ProtocolVersion::V2, true, now_);
  auto a = core_.on_message(encode(ServerConfirmsAuth{}), now_);
  EXPECT_EQ(core_.state(), ClientState::Connected);
  EXPECT_EQ(core_.auth_method(), AuthMethod::KeyMaterialHeader);
  EXPECT_EQ(all_of<ClientEvent>(a).front().detail, "key-material");

  // Without the header an unsolicited confirm is a protocol error → retry.
  SeededRandom rng(2);
  ClientCore other(key(2), {}, rng);
  other.start(now_);
  other.on_connected(ProtocolVersion::V2, false, now_);
  a = other.on_message(encode(ServerConfirmsAuth{}), now_);
  EXPECT_EQ(other.state(), ClientState::WaitingRetry);
  ASSERT_EQ(all_of<CloseConnection>(a).size(), 1u);
  EXPECT_EQ(all_of<CloseConnection>(a)[0].code, 1002);
}

TEST_F(RelayClientCore, DeniedIsTerminalWithReason) {
  core_.start(now_);
  core_.on_connected(ProtocolVersion::V2, false, now_);
  core_.on_message(encode(ServerChallenge{}), now_);
  auto a = core_.on_message(encode(ServerDeniesAuth{"go away"}), now_);
  EXPECT_EQ(core_.state(), ClientState::Denied);
  ASSERT_TRUE(core_.denial_reason());
  EXPECT_EQ(*core_.denial_reason(), "go away");
  auto events = all_of<ClientEvent>(a);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, ClientEvent::Kind::Denied);
  EXPECT_EQ(events[0].detail, "go away");
  EXPECT_EQ(all_of<CloseConnection>(a).size(), 1u);
  EXPECT_FALSE(core_.next_timeout());
  EXPECT_TRUE(core_.on_timeout(now_ + 1h).empty());
  EXPECT_TRUE(core_.send(key(9).public_key(), Bytes{1}, 0, now_).empty());
}

TEST_F(RelayClientCore, PingEveryIntervalAndTimeout) {
  auto a = bring_up();
  auto f = frames_of(a);
  ASSERT_EQ(f.size(), 1u);
  auto ping = std::get<Ping>(f[0]);
  core_.on_flushed(now_);
  // The pong arrives → next ping at +15 s.
  core_.on_message(encode(Pong{ping.data}), now_ + 10ms);
  EXPECT_EQ(core_.metrics().pongs_received, 1u);
  ASSERT_EQ(core_.next_timeout(), now_ + 15s);
  a = core_.on_timeout(now_ + 15s);
  f = frames_of(a);
  ASSERT_EQ(f.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<Ping>(f[0]));
  // A wrong pong is ignored; no pong within 5 s → reconnect needed.
  core_.on_message(encode(Pong{}), now_ + 16s);
  EXPECT_EQ(core_.next_timeout(), now_ + 20s);
  a = core_.on_timeout(now_ + 20s);
  EXPECT_TRUE(has_event(a, ClientEvent::Kind::PingTimeout));
  EXPECT_TRUE(has_event(a, ClientEvent::Kind::Disconnected));
  EXPECT_TRUE(has_event(a, ClientEvent::Kind::Reconnecting));
  EXPECT_EQ(all_of<CloseConnection>(a).size(), 1u);
  EXPECT_EQ(core_.state(), ClientState::WaitingRetry);
  EXPECT_EQ(core_.metrics().ping_timeouts, 1u);
  auto t = core_.next_timeout();
  ASSERT_TRUE(t);
  a = core_.on_timeout(*t);
  EXPECT_EQ(all_of<Connect>(a).size(), 1u);
}

TEST_F(RelayClientCore, AnswersServerPing) {
  bring_up();
  Ping p;
  p.data.fill(0x2a);
  auto a = core_.on_message(encode(p), now_);
  EXPECT_EQ(all_of<SendFrame>(a).at(0).frame, hex("0a2a2a2a2a2a2a2a2a"));
}

TEST_F(RelayClientCore, BatchesOfAtMostTwentyAndFlowControl) {
  bring_up();
  core_.on_flushed(now_);  // the first ping
  const EndpointId dst = key(2).public_key();
  std::size_t frames = 0;
  for (int i = 0; i < 50; ++i) {
    frames +=
        all_of<SendFrame>(core_.send(dst, Bytes{static_cast<std::uint8_t>(i)}, 0, now_)).size();
  }
  // The first datagram goes out alone (nothing in flight); the rest wait for the flush.
  EXPECT_EQ(frames, 1u);
  auto a = core_.on_flushed(now_);
  EXPECT_EQ(all_of<SendFrame>(a).size(), 20u);
  a = core_.on_flushed(now_);
  EXPECT_EQ(all_of<SendFrame>(a).size(), 20u);
  a = core_.on_flushed(now_);
  auto f = frames_of(a);
  ASSERT_EQ(f.size(), 9u);
  auto last = std::get<ClientToRelayDatagram>(f.back());
  EXPECT_EQ(last.dst, dst);
  EXPECT_EQ(last.payload, Bytes{49});
  EXPECT_TRUE(core_.on_flushed(now_).empty());
  EXPECT_EQ(core_.metrics().datagrams_sent, 50u);
}

TEST_F(RelayClientCore, DropsDatagramsOlderThanThreeSeconds) {
  core_.start(now_);
  const EndpointId dst = key(2).public_key();
  core_.send(dst, Bytes{1}, 0, now_);
  core_.send(dst, Bytes{2}, 0, now_ + 2s);
  EXPECT_EQ(core_.next_timeout(), now_ + 3s);
  auto a = core_.on_timeout(now_ + 3s);
  auto ev = all_of<ClientEvent>(a);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, ClientEvent::Kind::DatagramsDropped);
  EXPECT_EQ(ev[0].count, 1u);
  // Connect at +4 s: only the younger datagram goes out after the ping.
  now_ += 4s;
  a = bring_up();
  auto f = frames_of(a);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_TRUE(std::holds_alternative<Ping>(f[0]));
  EXPECT_EQ(std::get<ClientToRelayDatagram>(f[1]).payload, Bytes{2});
  EXPECT_EQ(core_.metrics().drops_too_old, 1u);
}

TEST_F(RelayClientCore, ExponentialBackoffWithJitter) {
  ClientConfig cfg;
  cfg.initial_backoff = 100ms;
  cfg.max_backoff = 2s;
  SeededRandom rng(3);
  ClientCore core(key(1), cfg, rng);
  Instant now = now_;
  core.start(now);
  std::vector<Duration> delays;
  for (int i = 0; i < 8; ++i) {
    auto failed = core.on_connect_failed("refused", now);
    ASSERT_EQ(core.state(), ClientState::WaitingRetry);
    ASSERT_EQ(all_of<ClientEvent>(failed).at(0).kind, ClientEvent::Kind::ConnectFailed);
    EXPECT_EQ(all_of<ClientEvent>(failed).at(0).detail, "refused");
    auto t = core.next_timeout();
    ASSERT_TRUE(t);
    delays.push_back(*t - now);
    now = *t;
    auto a = core.on_timeout(now);
    ASSERT_EQ(all_of<Connect>(a).size(), 1u);
    EXPECT_EQ(all_of<Connect>(a)[0].attempt, static_cast<std::uint64_t>(i + 2));
  }
  Duration base = 100ms;
  for (auto d : delays) {
    EXPECT_GE(d, base / 2);
    EXPECT_LT(d, base * 3 / 2);
    base = std::min<Duration>(base * 2, 2s);
  }
}

TEST_F(RelayClientCore, V1HealthAndV2Status) {
  auto a = bring_up(ProtocolVersion::V1);
  a = core_.on_message(encode(Health{"dog"}), now_);
  auto ev = all_of<ClientEvent>(a);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, ClientEvent::Kind::Health);
  EXPECT_EQ(ev[0].detail, "dog");

  SeededRandom rng(4);
  ClientCore v2(key(3), {}, rng);
  v2.start(now_);
  v2.on_connected(ProtocolVersion::V2, false, now_);
  v2.on_message(encode(ServerChallenge{}), now_);
  v2.on_message(encode(ServerConfirmsAuth{}), now_);
  a = v2.on_message(encode(Status{Status::kRateLimited}), now_);
  ev = all_of<ClientEvent>(a);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].kind, ClientEvent::Kind::Status);
  EXPECT_EQ(ev[0].status, Status::kRateLimited);
  EXPECT_EQ(v2.state(), ClientState::Connected);
  // Health on v2 is undecodable → protocol error, reconnect.
  a = v2.on_message(hex("0b41"), now_);
  EXPECT_EQ(v2.state(), ClientState::WaitingRetry);
  EXPECT_EQ(v2.metrics().protocol_errors, 1u);
}

TEST_F(RelayClientCore, HandshakeTimeout) {
  core_.start(now_);
  core_.on_connected(ProtocolVersion::V2, false, now_);
  EXPECT_EQ(core_.next_timeout(), now_ + 10s);
  auto a = core_.on_timeout(now_ + 10s);
  EXPECT_EQ(core_.state(), ClientState::WaitingRetry);
  EXPECT_TRUE(has_event(a, ClientEvent::Kind::Disconnected));
}

TEST_F(RelayClientCore, CloseSendsNormalClosure) {
  bring_up();
  auto a = core_.close(now_);
  auto c = all_of<CloseConnection>(a);
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].code, 1000);
  EXPECT_EQ(core_.state(), ClientState::Closed);
  EXPECT_FALSE(core_.next_timeout());
}

// ---- against ServerCore, in-process ----

class Sim {
 public:
  struct Client {
    std::unique_ptr<SeededRandom> rng;
    std::unique_ptr<ClientCore> core;
    bool use_header = false;
    bool up = false;
    ConnId conn = 0;
    std::vector<Received> rx;
    std::vector<ClientEvent> events;
  };

  explicit Sim(ServerConfig cfg = {}) { make_server(std::move(cfg)); }

  void make_server(ServerConfig cfg) {
    if (!cfg.ping_jitter) cfg.ping_jitter = [] { return Duration(1s); };
    server = std::make_unique<ServerCore>(std::move(cfg));
    server_down = false;
  }

  std::size_t add_client(const SecretKey& k, bool use_header = false) {
    Client c;
    c.rng = std::make_unique<SeededRandom>(clients.size() + 100);
    c.core = std::make_unique<ClientCore>(k, ClientConfig{}, *c.rng);
    c.use_header = use_header;
    clients.push_back(std::move(c));
    const std::size_t i = clients.size() - 1;
    client_actions(i, clients[i].core->start(now));
    run();
    return i;
  }

  Client& operator[](std::size_t i) { return clients[i]; }

  void send(std::size_t from, std::size_t to, Bytes data, std::uint8_t ecn = 0,
            std::optional<std::uint16_t> seg = std::nullopt) {
    client_actions(from, clients[from].core->send(clients[to].core->endpoint_id(), std::move(data),
                                                  ecn, now, seg));
    run();
  }

  void close(std::size_t i) {
    client_actions(i, clients[i].core->close(now));
    run();
  }

  void restart_server(ServerConfig cfg = {}) {
    server_actions(server->shutdown(now));
    run();
    server_down = true;
    pending_server = std::move(cfg);
  }
  void bring_server_back() { make_server(std::move(pending_server)); }

  // Runs timers up to now + d.
  void advance(Duration d) {
    const Instant target = now + d;
    for (int guard = 0; guard < 100000; ++guard) {
      std::optional<Instant> t;
      auto consider = [&](std::optional<Instant> x) {
        if (x && (!t || *x < *t)) t = x;
      };
      if (!server_down) consider(server->next_timeout());
      for (auto& c : clients) consider(c.core->next_timeout());
      if (!t || *t > target) break;
      now = std::max(now, *t);
      if (!server_down && server->next_timeout() && *server->next_timeout() <= now) {
        server_actions(server->on_timeout(now));
      }
      for (std::size_t i = 0; i < clients.size(); ++i) {
        auto nt = clients[i].core->next_timeout();
        if (nt && *nt <= now) client_actions(i, clients[i].core->on_timeout(now));
      }
      run();
    }
    now = target;
  }

  bool has_event(std::size_t i, ClientEvent::Kind kind) const {
    for (const auto& e : clients[i].events) {
      if (e.kind == kind) return true;
    }
    return false;
  }

  std::unique_ptr<ServerCore> server;
  std::vector<Client> clients;
  Instant now{5'000'000'000};
  bool server_down = false;
  bool drop_client_to_server = false;  // a black hole for the client's frames

 private:
  std::size_t client_of(ConnId conn) const {
    for (std::size_t i = 0; i < clients.size(); ++i) {
      if (clients[i].up && clients[i].conn == conn) return i;
    }
    return SIZE_MAX;
  }

  void client_actions(std::size_t i, ClientActions actions) {
    bool sent = false;
    for (auto& a : actions) {
      Client& c = clients[i];
      if (std::holds_alternative<Connect>(a)) {
        if (server_down) {
          work.push_back([this, i] {
            client_actions(i, clients[i].core->on_connect_failed("connection refused", now));
          });
          continue;
        }
        c.conn = next_conn++;
        c.up = true;
        client_actions(i, c.core->on_connected(ProtocolVersion::V2, c.use_header, now));
        if (c.use_header) {
          server_actions(server->on_connected_authenticated(c.conn, ProtocolVersion::V2, now,
                                                            c.core->endpoint_id()));
        } else {
          ByteArray<16> ch;
          ch.fill(static_cast<std::uint8_t>(c.conn));
          server_actions(server->on_connected(c.conn, ProtocolVersion::V2, now, ch));
        }
      } else if (auto* s = std::get_if<SendFrame>(&a)) {
        sent = true;
        if (!c.up || drop_client_to_server) continue;
        work.push_back([this, conn = c.conn, f = std::move(s->frame)] {
          if (server_down) return;
          server_actions(server->on_message(conn, f, now));
        });
      } else if (std::holds_alternative<CloseConnection>(a)) {
        if (!c.up) continue;
        c.up = false;
        work.push_back([this, conn = c.conn] {
          if (!server_down) server_actions(server->on_disconnected(conn, now));
        });
      } else if (auto* r = std::get_if<Received>(&a)) {
        c.rx.push_back(std::move(*r));
      } else if (auto* e = std::get_if<ClientEvent>(&a)) {
        c.events.push_back(std::move(*e));
      }
    }
    if (sent) {
      work.push_back([this, i] { client_actions(i, clients[i].core->on_flushed(now)); });
    }
  }

  void server_actions(Actions actions) {
    for (auto& a : actions) {
      if (auto* s = std::get_if<Send>(&a)) {
        server->on_sent(s->conn);
        work.push_back([this, conn = s->conn, f = std::move(s->frame)] {
          const std::size_t i = client_of(conn);
          if (i == SIZE_MAX) return;
          client_actions(i, clients[i].core->on_message(f, now));
        });
      } else if (auto* cl = std::get_if<Close>(&a)) {
        work.push_back([this, conn = cl->conn] {
          const std::size_t i = client_of(conn);
          if (i == SIZE_MAX) return;
          clients[i].up = false;
          client_actions(i, clients[i].core->on_disconnected("server closed", now));
        });
      }
    }
  }

  void run() {
    while (!work.empty()) {
      auto w = std::move(work.front());
      work.pop_front();
      w();
    }
  }

  ConnId next_conn = 1;
  std::deque<std::function<void()>> work;
  ServerConfig pending_server;
};

TEST(RelayClientVsServer, AuthSuccessAndPing) {
  Sim sim;
  auto a = sim.add_client(key(1));
  EXPECT_EQ(sim[a].core->state(), ClientState::Connected);
  EXPECT_EQ(sim[a].core->auth_method(), AuthMethod::Challenge);
  EXPECT_TRUE(sim.has_event(a, ClientEvent::Kind::Connected));
  EXPECT_EQ(sim.server->metrics().auth_ok, 1u);
  EXPECT_EQ(sim.server->endpoint_of(sim[a].conn), key(1).public_key());
  // The client's ping got its pong; a minute of keep-alives in both directions stays up.
  EXPECT_EQ(sim[a].core->metrics().pongs_received, 1u);
  sim.advance(60s);
  EXPECT_EQ(sim[a].core->state(), ClientState::Connected);
  EXPECT_GE(sim[a].core->metrics().pongs_received, 4u);
  EXPECT_EQ(sim[a].core->metrics().connects, 1u);
}

TEST(RelayClientVsServer, KeyMaterialPathSkipsChallenge) {
  Sim sim;
  auto a = sim.add_client(key(1), /*use_header=*/true);
  EXPECT_EQ(sim[a].core->state(), ClientState::Connected);
  EXPECT_EQ(sim[a].core->auth_method(), AuthMethod::KeyMaterialHeader);
  EXPECT_EQ(sim.server->metrics().auth_key_material, 1u);
  EXPECT_EQ(sim.server->metrics().auth_ok, 1u);
}

TEST(RelayClientVsServer, KeyMaterialPathStillRunsAccessControl) {
  ServerConfig cfg;
  cfg.access.mode = AccessPolicy::Mode::Denylist;
  cfg.access.ids = {key(2).public_key()};
  Sim sim(std::move(cfg));
  auto ok = sim.add_client(key(1), true);
  auto bad = sim.add_client(key(2), true);
  EXPECT_EQ(sim[ok].core->state(), ClientState::Connected);
  EXPECT_EQ(sim[bad].core->state(), ClientState::Denied);
  EXPECT_EQ(sim[bad].core->denial_reason().value_or(""), "not authorized");
  EXPECT_EQ(sim.server->metrics().auth_key_material, 2u);
  EXPECT_EQ(sim.server->metrics().auth_denied, 1u);
}

TEST(RelayClientVsServer, DenialWithReason) {
  ServerConfig cfg;
  cfg.access.mode = AccessPolicy::Mode::Allowlist;
  cfg.access.ids = {key(1).public_key()};
  cfg.access.deny_reason = "you are not on the list";
  Sim sim(std::move(cfg));
  auto ok = sim.add_client(key(1));
  auto bad = sim.add_client(key(2));
  EXPECT_EQ(sim[ok].core->state(), ClientState::Connected);
  EXPECT_EQ(sim[bad].core->state(), ClientState::Denied);
  EXPECT_EQ(sim[bad].core->denial_reason().value_or(""), "you are not on the list");
  sim.advance(120s);
  EXPECT_EQ(sim[bad].core->metrics().connects, 1u);  // no reconnect after a denial
  EXPECT_EQ(sim.server->metrics().auth_denied, 1u);
}

TEST(RelayClientVsServer, DatagramExchange) {
  Sim sim;
  auto a = sim.add_client(key(1));
  auto b = sim.add_client(key(2));
  sim.send(a, b, Bytes{1, 2, 3});
  sim.send(a, b, Bytes{'H', 'e', 'l', 'l', 'o', ' ', 'W', 'o', 'r', 'l', 'd', '!'}, ecn::kCe, 6);
  sim.send(b, a, Bytes{9});
  ASSERT_EQ(sim[b].rx.size(), 2u);
  EXPECT_EQ(sim[b].rx[0].src, key(1).public_key());
  EXPECT_EQ(sim[b].rx[0].payload, (Bytes{1, 2, 3}));
  EXPECT_EQ(sim[b].rx[0].ecn, ecn::kNotEct);
  EXPECT_FALSE(sim[b].rx[0].segment_size);
  EXPECT_EQ(sim[b].rx[1].ecn, ecn::kCe);
  EXPECT_EQ(sim[b].rx[1].segment_size, std::optional<std::uint16_t>(6));
  EXPECT_EQ(sim[b].rx[1].payload.size(), 12u);
  ASSERT_EQ(sim[a].rx.size(), 1u);
  EXPECT_EQ(sim[a].rx[0].src, key(2).public_key());
  // A burst bigger than one batch arrives complete and in order.
  for (int i = 0; i < 45; ++i) sim.send(a, b, Bytes{static_cast<std::uint8_t>(i)});
  ASSERT_EQ(sim[b].rx.size(), 47u);
  for (int i = 0; i < 45; ++i)
    EXPECT_EQ(sim[b].rx[2 + i].payload, Bytes{static_cast<std::uint8_t>(i)});
}

TEST(RelayClientVsServer, EndpointGone) {
  Sim sim;
  auto a = sim.add_client(key(1));
  auto b = sim.add_client(key(2));
  sim.send(a, b, Bytes{1});
  sim.close(a);
  EXPECT_EQ(sim[a].core->state(), ClientState::Closed);
  bool gone = false;
  for (const auto& e : sim[b].events) {
    if (e.kind == ClientEvent::Kind::EndpointGone) {
      gone = true;
      EXPECT_EQ(e.endpoint, key(1).public_key());
    }
  }
  EXPECT_TRUE(gone);
  EXPECT_EQ(sim[b].core->state(), ClientState::Connected);
}

TEST(RelayClientVsServer, SameEndpointIdConnected) {
  Sim sim;
  auto old_conn = sim.add_client(key(1));
  auto new_conn = sim.add_client(key(1));
  auto peer = sim.add_client(key(2));
  bool status = false;
  for (const auto& e : sim[old_conn].events) {
    status = status ||
             (e.kind == ClientEvent::Kind::Status && e.status == Status::kSameEndpointIdConnected);
  }
  EXPECT_TRUE(status);
  EXPECT_EQ(sim[old_conn].core->state(), ClientState::Connected);
  sim.send(peer, new_conn, Bytes{7});
  EXPECT_EQ(sim[new_conn].rx.size(), 1u);
  EXPECT_EQ(sim[old_conn].rx.size(), 0u);
}

TEST(RelayClientVsServer, PingTimeoutReconnects) {
  Sim sim;
  auto a = sim.add_client(key(1));
  sim.drop_client_to_server = true;  // the server never sees the next ping
  sim.advance(20s);                  // ping at +15 s, no pong by +20 s
  EXPECT_TRUE(sim.has_event(a, ClientEvent::Kind::PingTimeout));
  EXPECT_EQ(sim[a].core->state(), ClientState::WaitingRetry);
  sim.drop_client_to_server = false;
  sim.advance(2s);
  EXPECT_EQ(sim[a].core->state(), ClientState::Connected);
  EXPECT_EQ(sim[a].core->metrics().connected, 2u);
}

TEST(RelayClientVsServer, RestartingThenTrafficResumes) {
  Sim sim;
  auto a = sim.add_client(key(1));
  auto b = sim.add_client(key(2));
  ServerConfig cfg;
  sim.restart_server(cfg);  // Restarting(1000 ms, 30000 ms) + close
  EXPECT_TRUE(sim.has_event(a, ClientEvent::Kind::Restarting));
  EXPECT_TRUE(sim.has_event(b, ClientEvent::Kind::Restarting));
  EXPECT_EQ(sim[a].core->state(), ClientState::WaitingRetry);
  sim.advance(900ms);
  EXPECT_EQ(sim[a].core->metrics().connects, 1u);  // waits reconnect_in
  sim.advance(150ms);
  EXPECT_EQ(sim[a].core->metrics().connects, 2u);  // dialled, refused: server still down
  sim.bring_server_back();
  sim.advance(500ms);  // retries at the minimum backoff inside try_for
  EXPECT_EQ(sim[a].core->state(), ClientState::Connected);
  EXPECT_EQ(sim[b].core->state(), ClientState::Connected);
  sim.send(a, b, Bytes{42});
  ASSERT_EQ(sim[b].rx.size(), 1u);
  EXPECT_EQ(sim[b].rx[0].payload, Bytes{42});
}

}  // namespace
}  // namespace iroh::relay

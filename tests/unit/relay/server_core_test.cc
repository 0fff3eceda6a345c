// The relay server's sans-IO state machine (spec §6.4, §6.5, §6.7, §6.8), on virtual time.
#include "relay/server_core.h"

#include <gtest/gtest.h>

#include <string>

#include "relay/frame.h"
#include "relay/handshake.h"
#include "test_bytes.h"

namespace iroh::relay {
namespace {

using iroh::testing::cat;
using iroh::testing::hex;

using namespace std::chrono_literals;

SecretKey key(std::uint8_t n) {
  ByteArray<32> seed;
  seed.fill(n);
  return SecretKey::from_seed(seed);
}

ByteArray<16> challenge_for(ConnId conn) {
  ByteArray<16> c;
  c.fill(static_cast<std::uint8_t>(0xc0 + conn));
  return c;
}

// Sends addressed to `conn`, in order.
std::vector<Bytes> sent_to(const Actions& actions, ConnId conn) {
  std::vector<Bytes> out;
  for (const auto& a : actions) {
    if (auto* s = std::get_if<Send>(&a); s != nullptr && s->conn == conn) out.push_back(s->frame);
  }
  return out;
}

std::optional<Close> close_of(const Actions& actions, ConnId conn) {
  for (const auto& a : actions) {
    if (auto* c = std::get_if<Close>(&a); c != nullptr && c->conn == conn) return *c;
  }
  return std::nullopt;
}

class RelayServerCore : public ::testing::Test {
 protected:
  void make(ServerConfig cfg = {}) {
    if (!cfg.ping_jitter) cfg.ping_jitter = [] { return Duration(1s); };
    core_ = std::make_unique<ServerCore>(std::move(cfg));
  }
  void SetUp() override { make(); }

  Actions connect(ConnId conn, ProtocolVersion v = ProtocolVersion::V2,
                  std::optional<std::string> token = std::nullopt) {
    return core_->on_connected(conn, v, now_, challenge_for(conn), std::move(token));
  }
  Actions auth(ConnId conn, const SecretKey& k) {
    return msg(conn, encode(sign_challenge(k, challenge_for(conn))));
  }
  // Connects and authenticates; acknowledges the handshake writes.
  void join(ConnId conn, const SecretKey& k, ProtocolVersion v = ProtocolVersion::V2) {
    ack(connect(conn, v));
    auto a = auth(conn, k);
    ASSERT_FALSE(close_of(a, conn)) << "auth failed";
    ack(a);
  }
  Actions msg(ConnId conn, const Bytes& bytes) { return core_->on_message(conn, bytes, now_); }
  Actions datagram(ConnId from, const EndpointId& dst, const Bytes& payload,
                   std::optional<std::uint16_t> seg = std::nullopt, std::uint8_t ecn = 0) {
    return msg(from, encode(ClientToRelayDatagram{dst, ecn, seg, payload}));
  }
  // The driver wrote everything these actions asked for.
  void ack(const Actions& actions) {
    for (const auto& a : actions) {
      if (auto* s = std::get_if<Send>(&a)) core_->on_sent(s->conn);
    }
  }

  std::unique_ptr<ServerCore> core_;
  Instant now_{std::chrono::hours(1000)};
  SecretKey a_ = key(1), b_ = key(2), c_ = key(3);
};

// ---- handshake ----

TEST_F(RelayServerCore, HandshakeSucceeds) {
  auto hello = connect(1);
  ASSERT_EQ(hello.size(), 1u);
  EXPECT_EQ(sent_to(hello, 1), std::vector<Bytes>{cat({hex("00"), challenge_for(1)})});
  EXPECT_EQ(core_->metrics().connections_pending, 1u);
  EXPECT_FALSE(core_->endpoint_of(1));

  auto confirmed = auth(1, a_);
  ASSERT_EQ(confirmed.size(), 1u);
  EXPECT_EQ(sent_to(confirmed, 1), std::vector<Bytes>{hex("02")});
  EXPECT_EQ(core_->endpoint_of(1), a_.public_key());
  EXPECT_EQ(core_->metrics().clients, 1u);
  EXPECT_EQ(core_->metrics().connections_pending, 0u);
  EXPECT_EQ(core_->metrics().auth_ok, 1u);
}

TEST_F(RelayServerCore, CapturedRustClientAuthIsAccepted) {
  // spec §6.4: the ClientAuth iroh 1.0.2 sent for challenge 10..1f with sk 00..1f.
  ByteArray<16> challenge;
  for (std::size_t i = 0; i < 16; ++i) challenge[i] = static_cast<std::uint8_t>(0x10 + i);
  auto hello = core_->on_connected(7, ProtocolVersion::V2, now_, challenge);
  EXPECT_EQ(sent_to(hello, 7), std::vector<Bytes>{hex("00 101112131415161718191a1b1c1d1e1f")});
  auto out = msg(
      7,
      hex("01 03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
          "40 "
          "3f2532023e0d48d3871cd4f1953b128b5e155ae899a482bac8bc5bd52bb37dfccd6fa7762961684ae326f2d4"
          "0d2dea96f92e32f1a03d21006909d4af3a28f700"));
  EXPECT_EQ(sent_to(out, 7), std::vector<Bytes>{hex("02")});
  EXPECT_FALSE(close_of(out, 7));
}

TEST_F(RelayServerCore, BadSignatureIsDenied) {
  ack(connect(1));
  // Signed over another connection's challenge.
  auto out = msg(1, encode(sign_challenge(a_, challenge_for(2))));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(sent_to(out, 1),
            std::vector<Bytes>{cat({hex("03 11"), as_bytes("signature invalid")})});
  ASSERT_TRUE(std::holds_alternative<Close>(out[1]));  // after the denial
  EXPECT_FALSE(core_->is_connected(1));
  EXPECT_EQ(core_->metrics().auth_signature_invalid, 1u);
  EXPECT_EQ(core_->metrics().connections_pending, 0u);
  EXPECT_EQ(core_->metrics().clients, 0u);
}

TEST_F(RelayServerCore, AllowlistDeniesOthers) {
  ServerConfig cfg;
  cfg.access.mode = AccessPolicy::Mode::Allowlist;
  cfg.access.ids = {a_.public_key()};
  make(cfg);
  ack(connect(1));
  EXPECT_EQ(sent_to(auth(1, a_), 1), std::vector<Bytes>{hex("02")});
  ack(connect(2));
  auto out = auth(2, b_);
  EXPECT_EQ(sent_to(out, 2), std::vector<Bytes>{cat({hex("03 0e"), as_bytes("not authorized")})});
  ASSERT_TRUE(close_of(out, 2));
  EXPECT_EQ(core_->metrics().auth_denied, 1u);
  EXPECT_EQ(core_->metrics().clients, 1u);
}

TEST_F(RelayServerCore, DenylistDeniesListed) {
  ServerConfig cfg;
  cfg.access.mode = AccessPolicy::Mode::Denylist;
  cfg.access.ids = {a_.public_key()};
  cfg.access.deny_reason = "go away";
  make(cfg);
  ack(connect(1));
  auto out = auth(1, a_);
  EXPECT_EQ(sent_to(out, 1), std::vector<Bytes>{cat({hex("03 07"), as_bytes("go away")})});
  EXPECT_TRUE(close_of(out, 1));
  ack(connect(2));
  EXPECT_EQ(sent_to(auth(2, b_), 2), std::vector<Bytes>{hex("02")});
}

TEST_F(RelayServerCore, SharedTokenIsChecked) {
  ServerConfig cfg;
  cfg.access.mode = AccessPolicy::Mode::SharedToken;
  cfg.access.token = "s3cret";
  make(cfg);
  ack(connect(1, ProtocolVersion::V2, std::nullopt));
  EXPECT_TRUE(close_of(auth(1, a_), 1));
  ack(connect(2, ProtocolVersion::V2, "wrong"));
  EXPECT_TRUE(close_of(auth(2, b_), 2));
  ack(connect(3, ProtocolVersion::V2, "s3cret"));
  EXPECT_EQ(sent_to(auth(3, c_), 3), std::vector<Bytes>{hex("02")});
  EXPECT_EQ(core_->metrics().auth_denied, 2u);
}

TEST_F(RelayServerCore, DatagramBeforeAuthCloses) {
  ack(connect(1));
  auto out = datagram(1, b_.public_key(), hex("aabb"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(close_of(out, 1));
  EXPECT_EQ(core_->metrics().handshake_errors, 1u);
  // Later events for the closed connection are ignored.
  EXPECT_TRUE(auth(1, a_).empty());
  EXPECT_TRUE(core_->on_disconnected(1, now_).empty());
}

TEST_F(RelayServerCore, PingBeforeAuthCloses) {
  ack(connect(1));
  auto out = msg(1, hex("09 0102030405060708"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(close_of(out, 1));
}

TEST_F(RelayServerCore, GarbageClosesOnlyTheSender) {
  join(1, a_);
  join(2, b_);
  auto out = msg(1, hex("ff 00 01"));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(close_of(out, 1));
  EXPECT_EQ(core_->metrics().protocol_errors, 1u);
  EXPECT_TRUE(core_->is_connected(2));
  // A server→client frame from a client is a protocol error too.
  auto out2 = msg(2, hex("02"));
  EXPECT_TRUE(close_of(out2, 2));
}

// ---- forwarding ----

TEST_F(RelayServerCore, ForwardsSingleDatagramV2) {
  join(1, a_);
  join(2, b_);
  const auto hello = as_bytes("Hello World!");
  const Bytes payload(hello.begin(), hello.end());
  auto out = datagram(1, b_.public_key(), payload, std::nullopt, 3);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(sent_to(out, 2),
            std::vector<Bytes>{cat({hex("06"), a_.public_key().bytes(), hex("03"), payload})});
  EXPECT_EQ(core_->metrics().datagrams_forwarded, 1u);
  EXPECT_EQ(core_->metrics().bytes_forwarded, payload.size());
}

TEST_F(RelayServerCore, ForwardsBatchToV1Client) {
  join(1, a_, ProtocolVersion::V2);
  join(2, b_, ProtocolVersion::V1);
  const Bytes payload = hex("48656c6c6f20576f726c6421");
  auto out = datagram(1, b_.public_key(), payload, std::uint16_t{6}, 3);
  EXPECT_EQ(sent_to(out, 2),
            std::vector<Bytes>{cat({hex("07"), a_.public_key().bytes(), hex("03 0006"), payload})});
  // And back, v1 → v2, single.
  auto back = datagram(2, a_.public_key(), hex("01"));
  EXPECT_EQ(sent_to(back, 1),
            std::vector<Bytes>{cat({hex("06"), b_.public_key().bytes(), hex("00 01")})});
}

TEST_F(RelayServerCore, UnknownDestinationIsDropped) {
  join(1, a_);
  auto out = datagram(1, c_.public_key(), hex("0102"));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(core_->metrics().drops_unknown_destination, 1u);
}

TEST_F(RelayServerCore, FullQueueDropsDatagrams) {
  join(1, a_);
  join(2, b_);  // never acknowledges writes from here on
  std::size_t forwarded = 0;
  for (int i = 0; i < 600; ++i)
    forwarded += sent_to(datagram(1, b_.public_key(), hex("aa")), 2).size();
  EXPECT_EQ(forwarded, 512u);
  EXPECT_EQ(core_->metrics().drops_queue_full, 88u);
  // One write completes → room for exactly one more.
  core_->on_sent(2);
  EXPECT_EQ(sent_to(datagram(1, b_.public_key(), hex("aa")), 2).size(), 1u);
  EXPECT_TRUE(sent_to(datagram(1, b_.public_key(), hex("aa")), 2).empty());
  // Control frames still get through (Pong to the stuck client itself).
  EXPECT_EQ(sent_to(msg(2, hex("09 0000000000000001")), 2).size(), 1u);
}

TEST_F(RelayServerCore, EndpointGoneGoesToThoseTheLeaverSentTo) {
  join(1, a_);
  join(2, b_);
  join(3, c_);
  ack(datagram(1, b_.public_key(), hex("01")));  // a → b
  auto gone = core_->on_disconnected(1, now_);
  EXPECT_EQ(sent_to(gone, 2), std::vector<Bytes>{cat({hex("08"), a_.public_key().bytes()})});
  EXPECT_TRUE(sent_to(gone, 3).empty());
  EXPECT_FALSE(close_of(gone, 1));  // already gone: nothing to close
  EXPECT_EQ(core_->metrics().endpoint_gone_sent, 1u);
  EXPECT_EQ(core_->metrics().clients, 2u);
  // b never sent to anybody: its departure notifies nobody.
  EXPECT_TRUE(core_->on_disconnected(2, now_).empty());
}

TEST_F(RelayServerCore, NewerSameIdConnectionWins) {
  join(1, a_);
  join(3, b_);
  ack(connect(2));
  auto out = auth(2, a_);  // same id again
  EXPECT_EQ(sent_to(out, 2), std::vector<Bytes>{hex("02")});
  EXPECT_EQ(sent_to(out, 1), std::vector<Bytes>{hex("0d 01")});  // SameEndpointIdConnected
  EXPECT_TRUE(core_->is_connected(1));
  EXPECT_EQ(core_->metrics().same_id_replaced, 1u);
  // Traffic for a goes to the newer connection only.
  auto fwd = datagram(3, a_.public_key(), hex("77"));
  EXPECT_EQ(sent_to(fwd, 2).size(), 1u);
  EXPECT_TRUE(sent_to(fwd, 1).empty());
  // The old one may still send.
  EXPECT_EQ(sent_to(datagram(1, b_.public_key(), hex("78")), 3).size(), 1u);
  // When the newer one leaves, the older takes over again: no EndpointGone.
  ack(datagram(2, b_.public_key(), hex("70")));
  auto left = core_->on_disconnected(2, now_);
  EXPECT_TRUE(sent_to(left, 3).empty());
  EXPECT_EQ(sent_to(left, 1), std::vector<Bytes>{hex("0d 00")});  // Healthy again
  EXPECT_EQ(sent_to(datagram(3, a_.public_key(), hex("79")), 1).size(), 1u);
}

TEST_F(RelayServerCore, SameIdOnV1GetsNoStatus) {
  join(1, a_, ProtocolVersion::V1);
  ack(connect(2));
  auto out = auth(2, a_);
  EXPECT_TRUE(sent_to(out, 1).empty());
  EXPECT_EQ(core_->metrics().same_id_replaced, 1u);
}

// ---- pings ----

TEST_F(RelayServerCore, PingGetsPong) {
  join(1, a_);
  auto out = msg(1, hex("09 2a2a2a2a2a2a2a2a"));
  EXPECT_EQ(sent_to(out, 1), std::vector<Bytes>{hex("0a 2a2a2a2a2a2a2a2a")});
  EXPECT_EQ(core_->metrics().pongs_sent, 1u);
}

TEST_F(RelayServerCore, ServerPingsAndTimesOut) {
  const Instant t0 = now_;
  join(1, a_);
  // 15 s + the injected 1 s of jitter.
  ASSERT_EQ(core_->next_timeout(), t0 + 16s);
  EXPECT_TRUE(core_->on_timeout(t0 + 15s).empty());
  auto ping = core_->on_timeout(t0 + 16s);
  ASSERT_EQ(sent_to(ping, 1).size(), 1u);
  const Bytes frame = sent_to(ping, 1)[0];
  ASSERT_EQ(frame.size(), 9u);
  EXPECT_EQ(frame[0], 0x09);
  ack(ping);
  EXPECT_EQ(core_->next_timeout(), t0 + 21s);  // the pong deadline
  // The matching Pong clears the deadline and schedules the next ping.
  now_ = t0 + 17s;
  Bytes pong = frame;
  pong[0] = 0x0a;
  EXPECT_TRUE(msg(1, pong).empty());
  EXPECT_EQ(core_->next_timeout(), t0 + 33s);
  // Next ping is not answered: closed 5 s later.
  auto ping2 = core_->on_timeout(t0 + 33s);
  ASSERT_EQ(sent_to(ping2, 1).size(), 1u);
  EXPECT_NE(sent_to(ping2, 1)[0], frame);  // fresh data
  EXPECT_TRUE(core_->on_timeout(t0 + 37s).empty());
  auto dead = core_->on_timeout(t0 + 38s);
  ASSERT_TRUE(close_of(dead, 1));
  EXPECT_EQ(close_of(dead, 1)->reason, "ping timeout");
  EXPECT_EQ(core_->metrics().ping_timeouts, 1u);
  EXPECT_FALSE(core_->next_timeout());
}

TEST_F(RelayServerCore, TrafficPostponesServerPing) {
  const Instant t0 = now_;
  join(1, a_);
  join(2, b_);
  now_ = t0 + 10s;
  ack(datagram(1, b_.public_key(), hex("01")));
  // Conn 2 still wants its ping at t0 + 16 s; conn 1's moved to t0 + 26 s.
  auto out = core_->on_timeout(t0 + 16s);
  EXPECT_TRUE(sent_to(out, 1).empty());
  EXPECT_EQ(sent_to(out, 2).size(), 1u);
}

TEST_F(RelayServerCore, HandshakeTimesOut) {
  const Instant t0 = now_;
  ack(connect(1));
  EXPECT_EQ(core_->next_timeout(), t0 + 30s);
  auto out = core_->on_timeout(t0 + 30s);
  EXPECT_TRUE(close_of(out, 1));
  EXPECT_EQ(core_->metrics().handshake_errors, 1u);
}

// ---- rate limiting ----

TEST_F(RelayServerCore, RateLimitPausesReadsAndTellsV2Once) {
  ServerConfig cfg;
  cfg.rate_limit = RateLimit{1000, 2000};
  make(cfg);
  join(1, a_);  // the 98-byte ClientAuth came out of the bucket: 1902 left
  join(2, b_, ProtocolVersion::V1);
  const Bytes payload(1000 - 34, 0x55);  // 1000-byte frames: type, dst id, ECN, payload
  auto first = datagram(1, b_.public_key(), payload);
  for (const auto& a : first) EXPECT_FALSE(std::holds_alternative<PauseReads>(a));
  ack(first);
  auto second = datagram(1, b_.public_key(), payload);  // 902 - 1000 = -98 → wait 98 ms
  ack(second);
  ASSERT_EQ(second.size(), 3u);
  EXPECT_EQ(sent_to(second, 2).size(), 1u);  // still forwarded
  EXPECT_EQ(sent_to(second, 1), std::vector<Bytes>{hex("0d 02")});
  ASSERT_TRUE(std::holds_alternative<PauseReads>(second[2]));
  EXPECT_EQ(std::get<PauseReads>(second[2]).until, now_ + 98ms);
  // After the pause, another burst: paused again but no second Status.
  now_ += 98ms;
  auto third = datagram(1, b_.public_key(), payload);
  EXPECT_TRUE(sent_to(third, 1).empty());
  ASSERT_TRUE(std::holds_alternative<PauseReads>(third.back()));
  EXPECT_EQ(std::get<PauseReads>(third.back()).until, now_ + 1000ms);
  EXPECT_EQ(core_->metrics().rate_limited, 2u);
  // A v1 client is throttled without a Status frame.
  auto v1 = datagram(2, a_.public_key(), Bytes(3000, 1));
  EXPECT_TRUE(sent_to(v1, 2).empty());
  EXPECT_TRUE(std::holds_alternative<PauseReads>(v1.back()));
}

// ---- shutdown ----

TEST_F(RelayServerCore, ShutdownSendsRestartingToEveryone) {
  ServerConfig cfg;
  cfg.restart_reconnect_in_ms = 10;
  cfg.restart_try_for_ms = 20;
  make(cfg);
  join(1, a_);
  join(2, b_, ProtocolVersion::V1);
  ack(datagram(1, b_.public_key(), hex("01")));
  ack(connect(3));  // still in the handshake
  auto out = core_->shutdown(now_);
  EXPECT_EQ(sent_to(out, 1), std::vector<Bytes>{hex("0c 0000000a 00000014")});
  EXPECT_EQ(sent_to(out, 2), std::vector<Bytes>{hex("0c 0000000a 00000014")});  // no EndpointGone
  EXPECT_TRUE(sent_to(out, 3).empty());
  EXPECT_TRUE(close_of(out, 1) && close_of(out, 2) && close_of(out, 3));
  EXPECT_EQ(core_->connection_count(), 0u);
  EXPECT_EQ(core_->metrics().clients, 0u);
  EXPECT_EQ(core_->metrics().connections_pending, 0u);
}

}  // namespace
}  // namespace iroh::relay

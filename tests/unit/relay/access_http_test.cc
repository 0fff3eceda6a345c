// Access mode `http` (spec §6.7): the sans-IO URL/request/decision half and the core's
// CheckAccess / on_access_decision protocol.
#include "relay/access_http.h"

#include <gtest/gtest.h>

#include <string>

#include "relay/frame.h"
#include "relay/handshake.h"
#include "relay/server_core.h"
#include "test_bytes.h"

namespace iroh::relay {
namespace {

using namespace std::chrono_literals;
using iroh::testing::cat;
using iroh::testing::hex;

SecretKey key(std::uint8_t n) {
  ByteArray<32> seed;
  seed.fill(n);
  return SecretKey::from_seed(seed);
}

// ---- URL parsing ----

TEST(AccessHttpUrl, ParsesHostPortPath) {
  auto t = parse_access_http_url("http://127.0.0.1:8080/check?x=1");
  ASSERT_TRUE(t.ok()) << t.error().message;
  EXPECT_EQ(t->host, "127.0.0.1");
  EXPECT_EQ(t->port, 8080);
  EXPECT_EQ(t->target, "/check?x=1");
  EXPECT_EQ(t->host_header, "127.0.0.1:8080");
}

TEST(AccessHttpUrl, Defaults) {
  auto t = parse_access_http_url("HTTP://access.example");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "access.example");
  EXPECT_EQ(t->port, 80);
  EXPECT_EQ(t->target, "/");
  EXPECT_EQ(t->host_header, "access.example");
  auto q = parse_access_http_url("http://h?id=2#frag");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->target, "/?id=2");
}

TEST(AccessHttpUrl, Ipv6) {
  auto t = parse_access_http_url("http://[::1]:9/a");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->host, "::1");
  EXPECT_EQ(t->port, 9);
  EXPECT_EQ(t->host_header, "[::1]:9");
}

TEST(AccessHttpUrl, Rejects) {
  for (const char* bad :
       {"https://127.0.0.1/", "ftp://x/", "127.0.0.1:80", "http://", "http://:80/", "http://h:0/",
        "http://h:65536/", "http://h:x/", "http://u:p@h/", "http://[::1/", "http://h/a b"}) {
    EXPECT_FALSE(parse_access_http_url(bad).ok()) << bad;
  }
  auto https = parse_access_http_url("https://relay.example/");
  ASSERT_FALSE(https.ok());
  EXPECT_NE(https.error().message.find("https"), std::string::npos);
}

// ---- request ----

TEST(AccessHttpRequestTest, CarriesIdAndToken) {
  auto t = *parse_access_http_url("http://127.0.0.1:8080/allow");
  const EndpointId id = key(1).public_key();
  auto r = make_access_http_request(t, id, "s3cret");
  EXPECT_EQ(r.method, "POST");
  EXPECT_EQ(r.target, "/allow");
  using H = std::pair<std::string, std::string>;
  EXPECT_EQ(r.headers, (std::vector<H>{{"Host", "127.0.0.1:8080"},
                                       {"X-Iroh-NodeId", id.to_hex()},
                                       {"Authorization", "Bearer s3cret"},
                                       {"Content-Length", "0"}}));
  auto no_token = make_access_http_request(t, id, "");
  EXPECT_EQ(no_token.headers.size(), 3u);
}

// ---- decision ----

TEST(AccessHttpDecision, OnlyStatus200WithBodyTrueAllows) {
  EXPECT_EQ(decide_access_http_response(200, "true"), std::nullopt);
  EXPECT_EQ(decide_access_http_response(403, "true"), "denied by access server: status 403");
  EXPECT_EQ(decide_access_http_response(500, ""), "denied by access server: status 500");
  EXPECT_EQ(decide_access_http_response(204, ""), "denied by access server: status 204");
  for (const char* body : {"", "false", "TRUE", "true\n", " true", "\"true\"", "truex"}) {
    auto d = decide_access_http_response(200, body);
    ASSERT_TRUE(d) << body;
    EXPECT_EQ(*d, "denied by access server: answer is not 'true'");
  }
  EXPECT_EQ(access_http_failure_reason("timeout"), "denied: access server unreachable: timeout");
}

// ---- the core's side ----

class AccessHttpCore : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerConfig cfg;
    cfg.access.mode = AccessPolicy::Mode::Http;
    cfg.access.http_url = "http://127.0.0.1:1/";
    cfg.ping_jitter = [] { return Duration(0); };
    core_ = std::make_unique<ServerCore>(std::move(cfg));
  }
  ByteArray<16> challenge(ConnId c) {
    ByteArray<16> b;
    b.fill(static_cast<std::uint8_t>(c));
    return b;
  }
  Actions connect_and_auth(ConnId conn, const SecretKey& k) {
    core_->on_connected(conn, ProtocolVersion::V2, now_, challenge(conn));
    core_->on_sent(conn);
    return core_->on_message(conn, encode(sign_challenge(k, challenge(conn))), now_);
  }
  std::unique_ptr<ServerCore> core_;
  Instant now_{std::chrono::hours(10)};
};

TEST_F(AccessHttpCore, AuthEmitsCheckAccessThenAllow) {
  const SecretKey a = key(1);
  auto out = connect_and_auth(1, a);
  ASSERT_EQ(out.size(), 1u);
  ASSERT_TRUE(std::holds_alternative<CheckAccess>(out[0]));
  EXPECT_EQ(std::get<CheckAccess>(out[0]), (CheckAccess{1, a.public_key()}));
  EXPECT_FALSE(core_->endpoint_of(1));
  EXPECT_EQ(core_->metrics().connections_pending, 1u);
  EXPECT_EQ(core_->metrics().access_checks, 1u);

  auto ok = core_->on_access_decision(1, std::nullopt, now_);
  ASSERT_EQ(ok.size(), 1u);
  EXPECT_EQ(std::get<Send>(ok[0]), (Send{1, hex("02")}));
  EXPECT_EQ(core_->endpoint_of(1), a.public_key());
  EXPECT_EQ(core_->metrics().clients, 1u);
  // A second (stale) decision changes nothing.
  EXPECT_TRUE(core_->on_access_decision(1, "late", now_).empty());
  EXPECT_TRUE(core_->is_connected(1));
}

TEST_F(AccessHttpCore, DenyCarriesReason) {
  connect_and_auth(1, key(1));
  auto out = core_->on_access_decision(1, "denied by access server: status 403", now_);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(std::get<Send>(out[0]).frame,
            cat({hex("03 23"), as_bytes("denied by access server: status 403")}));
  EXPECT_TRUE(std::holds_alternative<Close>(out[1]));
  EXPECT_FALSE(core_->is_connected(1));
  EXPECT_EQ(core_->metrics().auth_denied, 1u);
  EXPECT_EQ(core_->metrics().connections_pending, 0u);
}

TEST_F(AccessHttpCore, BadSignatureNeverReachesTheAccessServer) {
  core_->on_connected(1, ProtocolVersion::V2, now_, challenge(1));
  auto out = core_->on_message(1, encode(sign_challenge(key(1), challenge(2))), now_);
  for (const auto& a : out) EXPECT_FALSE(std::holds_alternative<CheckAccess>(a));
  EXPECT_EQ(core_->metrics().access_checks, 0u);
  EXPECT_EQ(core_->metrics().auth_signature_invalid, 1u);
}

TEST_F(AccessHttpCore, FrameDuringCheckCloses) {
  connect_and_auth(1, key(1));
  auto out = core_->on_message(1, encode(Ping{{1, 2, 3, 4, 5, 6, 7, 8}}), now_);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Close>(out[0]));
  EXPECT_TRUE(core_->on_access_decision(1, std::nullopt, now_).empty());
  EXPECT_EQ(core_->metrics().clients, 0u);
}

TEST_F(AccessHttpCore, DisconnectDuringCheckIsIgnored) {
  connect_and_auth(1, key(1));
  core_->on_disconnected(1, now_);
  EXPECT_TRUE(core_->on_access_decision(1, std::nullopt, now_).empty());
  EXPECT_EQ(core_->metrics().clients, 0u);
  EXPECT_EQ(core_->metrics().connections_pending, 0u);
}

TEST_F(AccessHttpCore, HandshakeTimeoutCoversAStuckCheck) {
  connect_and_auth(1, key(1));
  auto t = core_->next_timeout();
  ASSERT_TRUE(t);
  auto out = core_->on_timeout(*t);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_TRUE(std::holds_alternative<Close>(out[0]));
  EXPECT_FALSE(core_->is_connected(1));
}

}  // namespace
}  // namespace iroh::relay

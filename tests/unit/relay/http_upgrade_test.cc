// The relay server's HTTP decisions (spec §6.2 upgrade checks, §6.6 other endpoints).
#include "relay/http_upgrade.h"

#include <gtest/gtest.h>

#include <string>

namespace iroh::relay {
namespace {

// spec §6.2, the request iroh 1.0.2 sends, verbatim (note the lowercase protocol header).
HttpHeaders observed_rust_request() {
  return HttpHeaders{
      {"Host", "127.0.0.1:3341"},      {"Upgrade", "websocket"},
      {"Connection", "Upgrade"},       {"Sec-WebSocket-Key", "4ltJ/H+6r9fkUwXen19msA=="},
      {"Sec-WebSocket-Version", "13"}, {"sec-websocket-protocol", "iroh-relay-v2, iroh-relay-v1"},
  };
}

// The observed request with header `name` replaced by `value` (or removed when nullopt).
HttpHeaders with(std::string_view name, std::optional<std::string_view> value) {
  HttpHeaders out;
  bool replaced = false;
  const HttpHeaders base = observed_rust_request();
  for (const auto& f : base.fields()) {
    if (header_name_equal(f.name, name)) {
      if (value && !replaced) out.add(f.name, *value);
      replaced = true;
    } else {
      out.add(f.name, f.value);
    }
  }
  if (!replaced && value) out.add(name, *value);
  return out;
}

HttpResponse expect_rejected(const HttpDecision& d, std::string_view reason) {
  EXPECT_EQ(d.route, HttpRoute::RelayUpgrade);
  EXPECT_FALSE(d.accepted());
  const HttpResponse kNone;
  const HttpResponse* r = d.response();
  if (r == nullptr) return kNone;
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->reject_reason, reason);
  EXPECT_EQ(r->body, std::string(reason) + "\n");
  EXPECT_EQ(r->content_type, "text/plain; charset=utf-8");
  EXPECT_TRUE(r->close);
  return *r;
}

UpgradeAccept expect_accepted(const HttpDecision& d) {
  EXPECT_EQ(d.route, HttpRoute::RelayUpgrade);
  const UpgradeAccept kNone;
  const UpgradeAccept* a = d.upgrade();
  EXPECT_NE(a, nullptr) << (d.response() ? d.response()->reject_reason : "");
  return a ? *a : kNone;
}

TEST(RelayHttpUpgrade, WebSocketAcceptRfc6455Example) {
  // RFC 6455 §1.3.
  EXPECT_EQ(websocket_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(kWebSocketGuid, "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");
  // Any key (even an empty one) yields 28 characters of base64(20 bytes).
  EXPECT_EQ(websocket_accept("").size(), 28u);
  EXPECT_EQ(websocket_accept(std::string(300, 'x')).size(), 28u);
}

TEST(RelayHttpUpgrade, ObservedRustRequestAcceptedWithV2) {
  const auto d = decide_http_request("GET", "/relay", observed_rust_request());
  const auto a = expect_accepted(d);
  EXPECT_EQ(a.version, ProtocolVersion::V2);
  EXPECT_EQ(a.subprotocol, "iroh-relay-v2");
  // base64(SHA-1("4ltJ/H+6r9fkUwXen19msA==" + GUID)), computed independently.
  EXPECT_EQ(a.accept, "raK+gjvkwRb78HhvEinOKB87KoU=");
  EXPECT_EQ(a.token, std::nullopt);
}

TEST(RelayHttpUpgrade, SubprotocolChoice) {
  auto version_for = [](std::string_view protocols) -> std::optional<ProtocolVersion> {
    const auto d = decide_http_request("GET", "/relay", with("Sec-WebSocket-Protocol", protocols));
    if (!d.upgrade()) return std::nullopt;
    EXPECT_EQ(d.upgrade()->subprotocol, to_string(d.upgrade()->version));
    return d.upgrade()->version;
  };
  EXPECT_EQ(version_for("iroh-relay-v1"), ProtocolVersion::V1);
  EXPECT_EQ(version_for("iroh-relay-v2"), ProtocolVersion::V2);
  EXPECT_EQ(version_for("iroh-relay-v1, iroh-relay-v2"), ProtocolVersion::V2);  // v2 preferred
  EXPECT_EQ(version_for("iroh-relay-v2,iroh-relay-v1"), ProtocolVersion::V2);
  EXPECT_EQ(version_for("foo, \tiroh-relay-v1\t , bar"), ProtocolVersion::V1);
  EXPECT_EQ(version_for(",,iroh-relay-v1,"), ProtocolVersion::V1);

  EXPECT_EQ(pick_subprotocol(""), std::nullopt);
  EXPECT_EQ(pick_subprotocol("iroh-relay-v3"), std::nullopt);
  EXPECT_EQ(pick_subprotocol("IROH-RELAY-V2"), std::nullopt);  // tokens match exactly
  EXPECT_EQ(pick_subprotocol("iroh-relay-v2 iroh-relay-v1"), std::nullopt);
}

TEST(RelayHttpUpgrade, RejectsNonGet) {
  for (std::string_view m : {"POST", "HEAD", "get", "PUT", ""}) {
    expect_rejected(decide_http_request(m, "/relay", observed_rust_request()), "expected GET");
  }
}

TEST(RelayHttpUpgrade, RejectsWrongUpgrade) {
  const std::string_view reason = "you must upgrade to websocket";
  expect_rejected(decide_http_request("GET", "/relay", with("Upgrade", std::nullopt)), reason);
  expect_rejected(decide_http_request("GET", "/relay", with("Upgrade", "WebSocket")), reason);
  expect_rejected(decide_http_request("GET", "/relay", with("Upgrade", "h2c")), reason);
  expect_rejected(decide_http_request("GET", "/relay", with("Upgrade", "websocket, h2c")), reason);
  expect_rejected(decide_http_request("GET", "/relay", with("Upgrade", "")), reason);
}

TEST(RelayHttpUpgrade, RejectsMissingKey) {
  expect_rejected(decide_http_request("GET", "/relay", with("Sec-WebSocket-Key", std::nullopt)),
                  "missing header Sec-WebSocket-Key");
  // Presence is all this layer checks (the WebSocket library validates the key's form).
  EXPECT_TRUE(decide_http_request("GET", "/relay", with("Sec-WebSocket-Key", "")).accepted());
}

TEST(RelayHttpUpgrade, RejectsWrongVersionWithVersionHeader) {
  for (std::optional<std::string_view> v :
       {std::optional<std::string_view>{}, std::optional<std::string_view>{"8"},
        std::optional<std::string_view>{"12"}, std::optional<std::string_view>{"13, 8"},
        std::optional<std::string_view>{""}}) {
    const auto d = decide_http_request("GET", "/relay", with("Sec-WebSocket-Version", v));
    const auto r = expect_rejected(d, "Sec-WebSocket-Version must be 13");
    ASSERT_EQ(r.headers.size(), 1u);
    EXPECT_EQ(r.headers[0], (HttpHeader{"Sec-WebSocket-Version", "13"}));
  }
}

TEST(RelayHttpUpgrade, RejectsMissingOrUnknownProtocol) {
  const auto missing =
      decide_http_request("GET", "/relay", with("Sec-WebSocket-Protocol", std::nullopt));
  EXPECT_TRUE(expect_rejected(missing, "missing header Sec-WebSocket-Protocol").headers.empty());
  for (std::string_view p : {"", "chat", "iroh-relay-v3, iroh-relay-v0", "Iroh-Relay-V1"}) {
    const auto d = decide_http_request("GET", "/relay", with("Sec-WebSocket-Protocol", p));
    EXPECT_TRUE(expect_rejected(d, "unsupported relay protocol version").headers.empty());
  }
}

TEST(RelayHttpUpgrade, ChecksRunInSpecOrder) {
  // Everything wrong at once: the method is reported first, then each check in turn.
  HttpHeaders nothing;
  expect_rejected(decide_http_request("POST", "/relay", nothing), "expected GET");
  expect_rejected(decide_http_request("GET", "/relay", nothing), "you must upgrade to websocket");
  expect_rejected(decide_http_request("GET", "/relay", HttpHeaders{{"Upgrade", "websocket"}}),
                  "missing header Sec-WebSocket-Key");
  expect_rejected(
      decide_http_request("GET", "/relay",
                          HttpHeaders{{"Upgrade", "websocket"}, {"Sec-WebSocket-Key", "k"}}),
      "Sec-WebSocket-Version must be 13");
  expect_rejected(decide_http_request("GET", "/relay",
                                      HttpHeaders{{"Upgrade", "websocket"},
                                                  {"Sec-WebSocket-Key", "k"},
                                                  {"Sec-WebSocket-Version", "13"}}),
                  "missing header Sec-WebSocket-Protocol");
}

TEST(RelayHttpUpgrade, HeaderNamesAreCaseInsensitive) {
  const HttpHeaders shouty{
      {"UPGRADE", "websocket"},           {"sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"SEC-WEBSOCKET-VERSION", "13"},    {"Sec-Websocket-Protocol", "iroh-relay-v1"},
      {"aUtHoRiZaTiOn", "Bearer s3cret"},
  };
  const auto a = expect_accepted(decide_http_request("GET", "/relay", shouty));
  EXPECT_EQ(a.version, ProtocolVersion::V1);
  EXPECT_EQ(a.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(a.token, "s3cret");

  EXPECT_TRUE(header_name_equal("X-Iroh-Challenge", "x-iroh-challenge"));
  EXPECT_FALSE(header_name_equal("X-Iroh-Challenge", "X-Iroh-Challeng"));
  EXPECT_FALSE(header_name_equal("a", "\xc1"));  // only ASCII letters fold
  HttpHeaders h{{"A", "1"}, {"a", "2"}};
  EXPECT_EQ(h.find("a"), "1");  // first occurrence wins
  EXPECT_EQ(h.find("b"), std::nullopt);
}

TEST(RelayHttpUpgrade, TokenFromAuthorizationBearer) {
  auto token_for = [](std::string_view auth, std::string_view target = "/relay") {
    const auto d = decide_http_request("GET", target, with("Authorization", auth));
    return d.upgrade() ? d.upgrade()->token : std::optional<std::string>{"<rejected>"};
  };
  EXPECT_EQ(token_for("Bearer abc"), "abc");
  EXPECT_EQ(token_for("Bearer   abc \t"), "abc");
  EXPECT_EQ(token_for("Bearer "), "");
  EXPECT_EQ(token_for("bearer abc"), std::nullopt);  // scheme is case-sensitive
  EXPECT_EQ(token_for("Basic dXNlcjpwYXNz"), std::nullopt);
  // The header wins over the query parameter; a non-Bearer header falls back to the query.
  EXPECT_EQ(token_for("Bearer from-header", "/relay?token=from-query"), "from-header");
  EXPECT_EQ(token_for("Basic x", "/relay?token=from-query"), "from-query");
  // The access check itself is the core's: a token never makes the upgrade fail.
  EXPECT_EQ(token_for("garbage"), std::nullopt);
}

TEST(RelayHttpUpgrade, TokenFromQuery) {
  auto token_for = [](std::string_view target) {
    const auto d = decide_http_request("GET", target, observed_rust_request());
    EXPECT_EQ(d.route, HttpRoute::RelayUpgrade);
    return d.upgrade() ? d.upgrade()->token : std::optional<std::string>{"<rejected>"};
  };
  EXPECT_EQ(token_for("/relay?token=abc"), "abc");
  EXPECT_EQ(token_for("/relay?a=b&token=abc&c=d"), "abc");
  EXPECT_EQ(token_for("/relay?token=first&token=second"), "first");
  EXPECT_EQ(token_for("/relay?token="), "");
  EXPECT_EQ(token_for("/relay?token=a%20b"), "a%20b");  // not percent-decoded
  EXPECT_EQ(token_for("/relay?tokens=abc"), std::nullopt);
  EXPECT_EQ(token_for("/relay?token"), std::nullopt);
  EXPECT_EQ(token_for("/relay?"), std::nullopt);

  EXPECT_EQ(query_param("x=1&token=t=2", "token"), "t=2");
  EXPECT_EQ(bearer_token("Bearer  t "), "t");
  EXPECT_EQ(bearer_token("Bearer"), std::nullopt);
}

TEST(RelayHttpUpgrade, Routes) {
  EXPECT_EQ(route_of("/relay"), HttpRoute::RelayUpgrade);
  EXPECT_EQ(route_of("/relay?token=x"), HttpRoute::RelayUpgrade);
  EXPECT_EQ(route_of("/relay/"), HttpRoute::NotFound);
  EXPECT_EQ(route_of("/ping"), HttpRoute::Ping);
  EXPECT_EQ(route_of("/generate_204?x"), HttpRoute::Generate204);
  EXPECT_EQ(route_of("/"), HttpRoute::Index);
  EXPECT_EQ(route_of("/?a=b"), HttpRoute::Index);
  EXPECT_EQ(route_of("/robots.txt"), HttpRoute::Robots);
  EXPECT_EQ(route_of("/metrics"), HttpRoute::NotFound);  // separate listener
  EXPECT_EQ(route_of(""), HttpRoute::NotFound);
  EXPECT_EQ(to_string(HttpRoute::Generate204), "generate_204");

  const HttpHeaders none;
  const auto ping = decide_http_request("GET", "/ping", none);
  ASSERT_NE(ping.response(), nullptr);
  EXPECT_EQ(ping.response()->status, 200);
  EXPECT_EQ(ping.response()->body, "");
  EXPECT_FALSE(ping.response()->close);
  EXPECT_EQ(ping.response()->headers,
            (std::vector<HttpHeader>{{"Access-Control-Allow-Origin", "*"}}));

  const auto index = decide_http_request("GET", "/", none);
  ASSERT_NE(index.response(), nullptr);
  EXPECT_EQ(index.response()->status, 200);
  EXPECT_EQ(index.response()->content_type, "text/html; charset=utf-8");
  EXPECT_NE(index.response()->body.find("/relay"), std::string::npos);

  const auto robots = decide_http_request("GET", "/robots.txt", none);
  ASSERT_NE(robots.response(), nullptr);
  EXPECT_EQ(robots.response()->status, 200);
  EXPECT_EQ(robots.response()->body, "User-agent: *\nDisallow: /\n");
  EXPECT_EQ(robots.response()->content_type, "text/plain; charset=utf-8");

  const auto missing = decide_http_request("GET", "/metrics", none);
  ASSERT_NE(missing.response(), nullptr);
  EXPECT_EQ(missing.route, HttpRoute::NotFound);
  EXPECT_EQ(missing.response()->status, 404);
  EXPECT_EQ(missing.response()->body, "Not Found\n");
  EXPECT_FALSE(missing.response()->close);
}

TEST(RelayHttpUpgrade, Generate204Challenge) {
  auto respond = [](std::optional<std::string_view> challenge) {
    HttpHeaders h;
    if (challenge) h.add("x-iroh-challenge", *challenge);
    const auto d = decide_http_request("GET", "/generate_204", h);
    EXPECT_EQ(d.route, HttpRoute::Generate204);
    return d.response() ? *d.response() : HttpResponse{};
  };
  const HttpHeader cors{"Access-Control-Allow-Origin", "*"};

  const auto ok = respond("ts_relay.example.com");
  EXPECT_EQ(ok.status, 204);
  EXPECT_EQ(ok.body, "");
  EXPECT_EQ(ok.headers,
            (std::vector<HttpHeader>{{"X-Iroh-Response", "response ts_relay.example.com"}, cors}));

  const std::string max63(63, 'a');
  EXPECT_EQ(respond(max63).headers.front().value, "response " + max63);
  EXPECT_EQ(respond("AZaz09._-").headers.front().value, "response AZaz09._-");

  // Invalid or absent: still 204, no X-Iroh-Response.
  const std::string too_long(64, 'a');
  for (std::optional<std::string_view> bad :
       {std::optional<std::string_view>{}, std::optional<std::string_view>{""},
        std::optional<std::string_view>{too_long}, std::optional<std::string_view>{"has space"},
        std::optional<std::string_view>{"a/b"}, std::optional<std::string_view>{"a:b"},
        std::optional<std::string_view>{"\xc3\xa9"}}) {
    const auto r = respond(bad);
    EXPECT_EQ(r.status, 204);
    EXPECT_EQ(r.headers, (std::vector<HttpHeader>{cors}));
  }

  EXPECT_TRUE(valid_captive_challenge("a"));
  EXPECT_TRUE(valid_captive_challenge(std::string(63, '-')));
  EXPECT_FALSE(valid_captive_challenge(std::string(64, '-')));
  EXPECT_FALSE(valid_captive_challenge(""));
  EXPECT_FALSE(valid_captive_challenge(std::string_view("a\0b", 3)));
}

}  // namespace
}  // namespace iroh::relay

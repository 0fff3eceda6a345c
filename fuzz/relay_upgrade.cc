// libFuzzer target: the relay server's HTTP request decision (spec §6.2 upgrade, §6.6 endpoints).
//
// FuzzedDataProvider builds a method, a request target and a header list (names drawn from the
// ones the decision reads, in random letter case, or arbitrary; values drawn from plausible ones or
// arbitrary) and runs relay::decide_http_request. Properties checked:
//   - it never crashes (sanitizers catch memory errors);
//   - the route is route_of(target), and every response is a well-formed HttpResponse for it;
//   - an accepted upgrade only happens for GET /relay, names a known subprotocol that the request's
//     Sec-WebSocket-Protocol listed (v1 only when v2 was not listed), carries a 28-char
//     Sec-WebSocket-Accept equal to RFC 6455's value for the request's key, and its token is the
//     Bearer token when there is one;
//   - a rejected upgrade is a 400 that closes the connection, its body the reason plus "\n";
//   - /generate_204 echoes the challenge only when it is valid.
#include <fuzzer/FuzzedDataProvider.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#ifdef IROHLAB_FUZZ_DEBUG
#include <cstdio>
#endif

#include "relay/http_upgrade.h"

namespace {

using namespace iroh::relay;

constexpr std::array<std::string_view, 9> kNames = {"Upgrade",
                                                    "Sec-WebSocket-Key",
                                                    "Sec-WebSocket-Version",
                                                    "Sec-WebSocket-Protocol",
                                                    "Authorization",
                                                    "X-Iroh-Challenge",
                                                    "Connection",
                                                    "Host",
                                                    "x-iroh-relay-client-auth-v1"};

constexpr std::array<std::string_view, 16> kValues = {"websocket",
                                                      "WebSocket",
                                                      "dGhlIHNhbXBsZSBub25jZQ==",
                                                      "4ltJ/H+6r9fkUwXen19msA==",
                                                      "13",
                                                      "8",
                                                      "iroh-relay-v2, iroh-relay-v1",
                                                      "iroh-relay-v1",
                                                      "iroh-relay-v2",
                                                      " iroh-relay-v1 ,\tfoo",
                                                      "iroh-relay-v3",
                                                      "Bearer token123",
                                                      "Bearer  spaced\t",
                                                      "ts_relay.example.com",
                                                      "",
                                                      "Upgrade"};

constexpr std::array<std::string_view, 6> kMethods = {"GET", "POST", "HEAD", "get", "OPTIONS", ""};
constexpr std::array<std::string_view, 8> kPaths = {"/relay",      "/ping",    "/generate_204", "/",
                                                    "/robots.txt", "/metrics", "/relay/",       ""};

std::string random_case(FuzzedDataProvider& p, std::string_view s) {
  std::string out(s);
  const std::uint64_t mask = p.ConsumeIntegral<std::uint64_t>();
  for (std::size_t i = 0; i < out.size() && i < 64; ++i) {
    if ((mask >> i) & 1) {
      char& c = out[i];
      if (c >= 'a' && c <= 'z')
        c = static_cast<char>(c - 'a' + 'A');
      else if (c >= 'A' && c <= 'Z')
        c = static_cast<char>(c - 'A' + 'a');
    }
  }
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Whether the comma-separated list `header` contains exactly `token` (after trimming).
bool lists(std::string_view header, std::string_view token) {
  while (true) {
    const auto comma = header.find(',');
    if (trim(header.substr(0, comma)) == token) return true;
    if (comma == std::string_view::npos) return false;
    header.remove_prefix(comma + 1);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);

  std::string method =
      p.ConsumeBool() ? std::string(p.PickValueInArray(kMethods)) : p.ConsumeRandomLengthString(16);
  std::string target;
  switch (p.ConsumeIntegralInRange(0, 3)) {
    case 0:
      target = p.PickValueInArray(kPaths);
      break;
    case 1:
      target = p.PickValueInArray(kPaths);
      target += "?";
      target += p.ConsumeRandomLengthString(64);  // separate statements: defined consumption order
      break;
    case 2:
      target = "/relay?token=" + p.ConsumeRandomLengthString(32);
      break;
    default:
      target = p.ConsumeRandomLengthString(64);
      break;
  }

  HttpHeaders headers;
  const int n = p.ConsumeIntegralInRange(0, 12);
  for (int i = 0; i < n && p.remaining_bytes() > 0; ++i) {
    std::string name = p.ConsumeBool() ? random_case(p, p.PickValueInArray(kNames))
                                       : p.ConsumeRandomLengthString(24);
    std::string value;
    switch (p.ConsumeIntegralInRange(0, 2)) {
      case 0:
        value = p.PickValueInArray(kValues);
        break;
      case 1:
        value = p.PickValueInArray(kValues);
        value += p.ConsumeRandomLengthString(16);
        break;
      default:
        value = p.ConsumeRandomLengthString(96);
        break;
    }
    headers.add(name, value);
  }

  const HttpDecision d = decide_http_request(method, target, headers);
#ifdef IROHLAB_FUZZ_DEBUG  // -DIROHLAB_FUZZ_DEBUG: show what an input decodes to
  std::printf("%s %s\n", method.c_str(), target.c_str());
  for (const auto& f : headers.fields()) std::printf("  %s: %s\n", f.name.c_str(), f.value.c_str());
  if (d.upgrade()) {
    std::printf("-> %s: accept %s %s\n", std::string(to_string(d.route)).c_str(),
                d.upgrade()->subprotocol.c_str(), d.upgrade()->accept.c_str());
  } else {
    std::printf("-> %s: %d %s\n", std::string(to_string(d.route)).c_str(), d.response()->status,
                d.response()->reject_reason.c_str());
  }
#endif
  if (d.route != route_of(target)) __builtin_trap();

  if (const UpgradeAccept* a = d.upgrade()) {
    if (d.route != HttpRoute::RelayUpgrade || method != "GET") __builtin_trap();
    if (a->subprotocol != kSubprotocolV1 && a->subprotocol != kSubprotocolV2) __builtin_trap();
    if (a->subprotocol != to_string(a->version)) __builtin_trap();
    const auto protocols = headers.find("sec-websocket-protocol");
    if (!protocols || !lists(*protocols, a->subprotocol)) __builtin_trap();
    if (a->version == ProtocolVersion::V1 && lists(*protocols, kSubprotocolV2)) __builtin_trap();
    if (a->accept.size() != 28) __builtin_trap();
    const auto key = headers.find("SEC-WEBSOCKET-KEY");
    if (!key || a->accept != websocket_accept(*key)) __builtin_trap();
    if (headers.find("upgrade") != std::optional<std::string_view>("websocket")) __builtin_trap();
    if (headers.find("sec-websocket-version") != std::optional<std::string_view>("13")) {
      __builtin_trap();
    }
    const auto auth = headers.find("authorization");
    if (auth && auth->substr(0, 7) == "Bearer ") {
      if (a->token != std::string(trim(auth->substr(7)))) __builtin_trap();
    }
    return 0;
  }

  const HttpResponse* r = d.response();
  if (r == nullptr) __builtin_trap();
  switch (d.route) {
    case HttpRoute::RelayUpgrade:
      if (r->status != 400 || !r->close || r->reject_reason.empty()) __builtin_trap();
      if (r->body != r->reject_reason + "\n") __builtin_trap();
      break;
    case HttpRoute::Generate204: {
      if (r->status != 204 || !r->body.empty() || r->close) __builtin_trap();
      const auto challenge = headers.find("x-iroh-challenge");
      const bool echoed = !r->headers.empty() && r->headers.front().name == "X-Iroh-Response";
      const bool valid = challenge && valid_captive_challenge(*challenge);
      if (echoed != valid) __builtin_trap();
      if (echoed && r->headers.front().value != "response " + std::string(*challenge)) {
        __builtin_trap();
      }
      if (challenge && valid && challenge->size() >= 64) __builtin_trap();
      break;
    }
    case HttpRoute::Ping:
    case HttpRoute::Index:
    case HttpRoute::Robots:
      if (r->status != 200 || r->close) __builtin_trap();
      break;
    case HttpRoute::NotFound:
      if (r->status != 404 || r->close) __builtin_trap();
      break;
  }
  if (!r->reject_reason.empty() && d.route != HttpRoute::RelayUpgrade) __builtin_trap();
  return 0;
}

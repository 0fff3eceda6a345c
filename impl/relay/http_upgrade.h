// The relay server's HTTP request decisions (spec §6.2, §6.6), sans-IO.
//
// The I/O driver (impl/io/relay_server.cc) parses one HTTP/1.1 request, hands its method, target
// and header fields to decide_http_request(), and carries out the decision:
//
//   route        path                 decision
//   RelayUpgrade /relay               UpgradeAccept (do the WebSocket 101 with the chosen
//                                     subprotocol) or a 400 HttpResponse (spec §6.2 checks)
//   Ping         /ping                200, CORS
//   Generate204  /generate_204        204, CORS; X-Iroh-Response: response <challenge> when the
//                                     X-Iroh-Challenge header is < 64 chars of [A-Za-z0-9._-]
//   Index        /                    200 HTML
//   Robots       /robots.txt          200 "User-agent: *\nDisallow: /\n"
//   NotFound     anything else        404 "Not Found\n" (no /metrics here: that has its own
//                                     listener)
//
// Upgrade checks, in order (iroh-relay http_server.rs:575-672; each failure is 400 with the reason
// plus "\n" as a text/plain body and the connection closed afterwards):
//   method GET                                   "expected GET"
//   Upgrade == "websocket" (exact, lowercase)    "you must upgrade to websocket"
//   Sec-WebSocket-Key present                    "missing header Sec-WebSocket-Key"
//   Sec-WebSocket-Version == "13"                "Sec-WebSocket-Version must be 13"
//                                                (+ response header Sec-WebSocket-Version: 13)
//   Sec-WebSocket-Protocol present               "missing header Sec-WebSocket-Protocol"
//   ... listing iroh-relay-v1 or iroh-relay-v2   "unsupported relay protocol version"
// On success the highest listed version wins (v2 over v1), Sec-WebSocket-Accept is computed
// (RFC 6455 §4.2.2) and the client's access token, if any, is extracted — from
// `Authorization: Bearer <token>` first, else from the `token` query parameter — for the core's
// access check (relay::ServerCore::on_connected; the check itself happens in-band after the relay
// handshake, spec §6.7, never at the HTTP layer).
//
// Header names are matched case-insensitively (ASCII); a repeated header counts by its first
// occurrence. Values are compared as given: the caller passes them as an HTTP parser delivers them
// (surrounding whitespace already stripped). Header values and tokens are opaque bytes.
//
// Everything HTTP/1.1-transport-level stays with the driver: keep-alive, Content-Length, the
// Server header, HSTS / CSP on https, and the WebSocket handshake itself.
#pragma once

#include <cstddef>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "relay/frame.h"

namespace iroh::relay {

// RFC 6455 §1.3 magic GUID appended to Sec-WebSocket-Key.
inline constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

struct HttpHeader {
  std::string name;
  std::string value;
  friend bool operator==(const HttpHeader&, const HttpHeader&) = default;
};

// An ordered list of header fields with case-insensitive name lookup.
class HttpHeaders {
 public:
  HttpHeaders() = default;
  HttpHeaders(std::initializer_list<std::pair<std::string_view, std::string_view>> fields);

  void add(std::string_view name, std::string_view value);
  // Value of the first field named `name` (ASCII case-insensitive), if any.
  std::optional<std::string_view> find(std::string_view name) const;

  const std::vector<HttpHeader>& fields() const { return fields_; }
  bool empty() const { return fields_.empty(); }
  std::size_t size() const { return fields_.size(); }

 private:
  std::vector<HttpHeader> fields_;
};

// ASCII case-insensitive equality (header names).
bool header_name_equal(std::string_view a, std::string_view b);

enum class HttpRoute { RelayUpgrade, Ping, Generate204, Index, Robots, NotFound };

// "relay_upgrade", "ping", "generate_204", "index", "robots", "not_found".
std::string_view to_string(HttpRoute route);

// The route for a request target ("/path?query"); the query is ignored.
HttpRoute route_of(std::string_view target);

// A plain HTTP response to send (status line + these headers + body).
struct HttpResponse {
  int status = 200;
  std::vector<HttpHeader> headers;  // extra headers, in order
  std::string body;
  // Content-Type, sent only when the body is not empty.
  std::string content_type = "text/plain; charset=utf-8";
  // Close the connection after this response even if the request asked for keep-alive.
  bool close = false;
  // Why an upgrade was rejected (the body without its "\n"); empty otherwise. For logs.
  std::string reject_reason;
  friend bool operator==(const HttpResponse&, const HttpResponse&) = default;
};

// Go ahead with the WebSocket upgrade: 101 with these values.
struct UpgradeAccept {
  ProtocolVersion version = ProtocolVersion::V2;
  std::string subprotocol;           // to_string(version): the response's Sec-WebSocket-Protocol
  std::string accept;                // the response's Sec-WebSocket-Accept (28 chars)
  std::optional<std::string> token;  // for ServerCore::on_connected
  friend bool operator==(const UpgradeAccept&, const UpgradeAccept&) = default;
};

struct HttpDecision {
  HttpRoute route = HttpRoute::NotFound;
  std::variant<HttpResponse, UpgradeAccept> outcome;

  bool accepted() const { return std::holds_alternative<UpgradeAccept>(outcome); }
  const UpgradeAccept* upgrade() const { return std::get_if<UpgradeAccept>(&outcome); }
  const HttpResponse* response() const { return std::get_if<HttpResponse>(&outcome); }
};

// The whole decision for one request. `target` is the request-target as received (origin form:
// path, optionally "?query").
HttpDecision decide_http_request(std::string_view method, std::string_view target,
                                 const HttpHeaders& headers);

// Just the /relay part (spec §6.2); `query` is the target's part after '?', without it.
std::variant<HttpResponse, UpgradeAccept> decide_upgrade(std::string_view method,
                                                         std::string_view query,
                                                         const HttpHeaders& headers);

// ---- building blocks (exposed for tests) ----

// base64(SHA-1(key + kWebSocketGuid)), RFC 6455 §4.2.2. Always 28 characters.
std::string websocket_accept(std::string_view sec_websocket_key);

// The highest relay protocol version among the comma-separated tokens of a
// Sec-WebSocket-Protocol value (tokens trimmed of spaces and tabs, matched exactly).
std::optional<ProtocolVersion> pick_subprotocol(std::string_view header_value);

// Token from an Authorization value "Bearer <token>" (scheme case-sensitive, token trimmed).
std::optional<std::string> bearer_token(std::string_view authorization);

// Value of the first `name=value` pair in a query string ("a=b&token=x"); not percent-decoded.
std::optional<std::string> query_param(std::string_view query, std::string_view name);

// spec §6.6: non-empty, < 64 chars, all of [A-Za-z0-9._-].
bool valid_captive_challenge(std::string_view challenge);

}  // namespace iroh::relay

// Access mode `http` (spec §6.7), the sans-IO half: where to POST, what to send, how to read the
// answer. The driver (impl/io/access_http_client.cc) does the socket work.
//
// After a client authenticates, the relay POSTs to the configured URL with `X-Iroh-NodeId: <hex
// id>` (the header name iroh-relay's code really sends) and, when configured, `Authorization:
// Bearer <token>`. The client is allowed iff the answer is status 200 with a body of exactly
// `true`; any other status or body, a connection error or a timeout denies it, with a reason that
// goes into ServerDeniesAuth.
//
// Only http:// callout URLs: the access service is an operator's own component (usually on
// localhost or a private network), and https would need a WebPKI trust store and certificate
// verification the relay otherwise never does as a client.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/key.h"
#include "base/result.h"

namespace iroh::relay {

inline constexpr std::string_view kAccessHttpNodeIdHeader = "X-Iroh-NodeId";
inline constexpr std::chrono::seconds kAccessHttpTimeout{5};

struct AccessHttpTarget {
  std::string host;  // DNS name or IP literal (IPv6 without brackets)
  std::uint16_t port = 80;
  std::string target = "/";  // path and query
  // The Host header value ("host" or "host:port", IPv6 bracketed).
  std::string host_header;
};

// Parses "http://host[:port][/path][?query]". https:// and anything else → error.
Result<AccessHttpTarget> parse_access_http_url(std::string_view url);

struct AccessHttpRequest {
  std::string method = "POST";
  std::string target;
  std::vector<std::pair<std::string, std::string>> headers;  // in order, Host first
};

// The callout for `id`: POST target, Host, X-Iroh-NodeId: <hex>, Authorization if `token` is
// non-empty, Content-Length: 0.
AccessHttpRequest make_access_http_request(const AccessHttpTarget& target, const EndpointId& id,
                                           std::string_view token);

// The decision for a complete answer: nullopt = allowed, else the ServerDeniesAuth reason.
std::optional<std::string> decide_access_http_response(unsigned status, std::string_view body);

// The reason for a callout that produced no answer (connection refused, timeout, bad HTTP...).
std::string access_http_failure_reason(std::string_view error);

}  // namespace iroh::relay

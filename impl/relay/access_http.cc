// Access mode `http`, sans-IO half. See access_http.h.
#include "relay/access_http.h"

#include <charconv>

namespace iroh::relay {

Result<AccessHttpTarget> parse_access_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() ||
      !std::equal(kScheme.begin(), kScheme.end(), url.begin(),
                  [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? b + 32 : b); })) {
    if (url.substr(0, 8) == "https://") {
      return make_error("access URL must be http:// (https callouts are not supported): " +
                        std::string(url));
    }
    return make_error("access URL must start with http://: " + std::string(url));
  }
  std::string_view rest = url.substr(kScheme.size());
  const auto slash = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, slash);
  std::string_view tail = slash == std::string_view::npos ? "" : rest.substr(slash);
  if (auto hash = tail.find('#'); hash != std::string_view::npos) tail = tail.substr(0, hash);
  if (authority.find('@') != std::string_view::npos) {
    return make_error("access URL must not carry credentials (use --access-http-token)");
  }
  AccessHttpTarget t;
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    const auto close = authority.find(']');
    if (close == std::string_view::npos) return make_error("access URL: unterminated IPv6 host");
    t.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return make_error("access URL: bad host");
      port_text = after.substr(1);
    }
  } else {
    const auto colon = authority.rfind(':');
    t.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (t.host.empty()) return make_error("access URL: missing host");
  for (char c : t.host) {
    if (c <= ' ' || c == '/' || c == '\\' || static_cast<unsigned char>(c) >= 0x7f) {
      return make_error("access URL: bad host");
    }
  }
  if (!port_text.empty()) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), v);
    if (ec != std::errc{} || p != port_text.data() + port_text.size() || v == 0 || v > 65535) {
      return make_error("access URL: bad port '" + std::string(port_text) + "'");
    }
    t.port = static_cast<std::uint16_t>(v);
  }
  t.target =
      tail.empty() ? "/" : (tail.front() == '?' ? "/" + std::string(tail) : std::string(tail));
  for (char c : t.target) {
    if (c <= ' ' || static_cast<unsigned char>(c) >= 0x7f) {
      return make_error("access URL: bad path (percent-encode it)");
    }
  }
  const bool v6 = t.host.find(':') != std::string::npos;
  t.host_header = v6 ? "[" + t.host + "]" : t.host;
  if (t.port != 80) t.host_header += ":" + std::to_string(t.port);
  return t;
}

AccessHttpRequest make_access_http_request(const AccessHttpTarget& target, const EndpointId& id,
                                           std::string_view token) {
  AccessHttpRequest r;
  r.target = target.target;
  r.headers.emplace_back("Host", target.host_header);
  r.headers.emplace_back(std::string(kAccessHttpNodeIdHeader), id.to_hex());
  if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + std::string(token));
  r.headers.emplace_back("Content-Length", "0");
  return r;
}

std::optional<std::string> decide_access_http_response(unsigned status, std::string_view body) {
  if (status != 200) return "denied by access server: status " + std::to_string(status);
  if (body != "true") return std::string("denied by access server: answer is not 'true'");
  return std::nullopt;
}

std::string access_http_failure_reason(std::string_view error) {
  return "denied: access server unreachable: " + std::string(error);
}

}  // namespace iroh::relay

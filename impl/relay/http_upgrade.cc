// The relay server's HTTP request decisions. See http_upgrade.h.
#include "relay/http_upgrade.h"

#include <openssl/evp.h>

#include <array>
#include <cstdlib>

namespace iroh::relay {

namespace {

char ascii_lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

constexpr std::string_view kIndexHtml =
    "<!DOCTYPE html>\n<html><head><title>irohlab relay</title></head><body>\n"
    "<h1>irohlab relay</h1>\n<p>An iroh-relay compatible relay server (iroh-relay-v1, "
    "iroh-relay-v2). Endpoints connect via <code>/relay</code>.</p>\n</body></html>\n";

HttpResponse reject(std::string why, std::vector<HttpHeader> headers = {}) {
  HttpResponse r;
  r.status = 400;
  r.headers = std::move(headers);
  r.body = why + "\n";
  r.close = true;
  r.reject_reason = std::move(why);
  return r;
}

HttpResponse cors(int status) {
  HttpResponse r;
  r.status = status;
  r.headers.push_back({"Access-Control-Allow-Origin", "*"});
  return r;
}

}  // namespace

// ---- headers ----

bool header_name_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
  }
  return true;
}

HttpHeaders::HttpHeaders(
    std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
  for (const auto& [name, value] : fields) add(name, value);
}

void HttpHeaders::add(std::string_view name, std::string_view value) {
  fields_.push_back({std::string(name), std::string(value)});
}

std::optional<std::string_view> HttpHeaders::find(std::string_view name) const {
  for (const auto& f : fields_) {
    if (header_name_equal(f.name, name)) return std::string_view(f.value);
  }
  return std::nullopt;
}

// ---- building blocks ----

std::string websocket_accept(std::string_view sec_websocket_key) {
  std::string input;
  input.reserve(sec_websocket_key.size() + kWebSocketGuid.size());
  input.append(sec_websocket_key);
  input.append(kWebSocketGuid);
  std::array<unsigned char, EVP_MAX_MD_SIZE> digest{};
  unsigned int digest_len = 0;
  if (EVP_Digest(input.data(), input.size(), digest.data(), &digest_len, EVP_sha1(), nullptr) !=
          1 ||
      digest_len != 20) {
    std::abort();  // SHA-1 is always available in libcrypto's default provider
  }
  std::array<unsigned char, 4 * ((20 + 2) / 3) + 1> b64{};  // 28 chars + NUL
  const int n = EVP_EncodeBlock(b64.data(), digest.data(), static_cast<int>(digest_len));
  return std::string(reinterpret_cast<const char*>(b64.data()), static_cast<std::size_t>(n));
}

std::optional<ProtocolVersion> pick_subprotocol(std::string_view header) {
  std::optional<ProtocolVersion> best;
  while (!header.empty()) {
    auto comma = header.find(',');
    std::string_view token = trim(header.substr(0, comma));
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
    auto v = parse_protocol_version(token);
    if (!v.ok()) continue;
    if (!best || *v == ProtocolVersion::V2) best = *v;
  }
  return best;
}

std::optional<std::string> bearer_token(std::string_view authorization) {
  if (authorization.substr(0, 7) != "Bearer ") return std::nullopt;
  return std::string(trim(authorization.substr(7)));
}

std::optional<std::string> query_param(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    auto eq = kv.find('=');
    if (eq != std::string_view::npos && kv.substr(0, eq) == name) {
      return std::string(kv.substr(eq + 1));
    }
  }
  return std::nullopt;
}

bool valid_captive_challenge(std::string_view c) {
  if (c.empty() || c.size() >= 64) return false;
  for (char ch : c) {
    const bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
    if (!ok) return false;
  }
  return true;
}

// ---- routes ----

std::string_view to_string(HttpRoute route) {
  switch (route) {
    case HttpRoute::RelayUpgrade:
      return "relay_upgrade";
    case HttpRoute::Ping:
      return "ping";
    case HttpRoute::Generate204:
      return "generate_204";
    case HttpRoute::Index:
      return "index";
    case HttpRoute::Robots:
      return "robots";
    case HttpRoute::NotFound:
      return "not_found";
  }
  return "not_found";
}

HttpRoute route_of(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  if (path == "/relay") return HttpRoute::RelayUpgrade;
  if (path == "/ping") return HttpRoute::Ping;
  if (path == "/generate_204") return HttpRoute::Generate204;
  if (path == "/") return HttpRoute::Index;
  if (path == "/robots.txt") return HttpRoute::Robots;
  return HttpRoute::NotFound;
}

// spec §6.2 (iroh-relay http_server.rs:575-672).
std::variant<HttpResponse, UpgradeAccept> decide_upgrade(std::string_view method,
                                                         std::string_view query,
                                                         const HttpHeaders& headers) {
  if (method != "GET") return reject("expected GET");
  auto upgrade = headers.find("Upgrade");
  if (!upgrade || *upgrade != "websocket") return reject("you must upgrade to websocket");
  auto key = headers.find("Sec-WebSocket-Key");
  if (!key) return reject("missing header Sec-WebSocket-Key");
  auto version = headers.find("Sec-WebSocket-Version");
  if (!version || *version != "13") {
    return reject("Sec-WebSocket-Version must be 13", {{"Sec-WebSocket-Version", "13"}});
  }
  auto proto = headers.find("Sec-WebSocket-Protocol");
  if (!proto) return reject("missing header Sec-WebSocket-Protocol");
  auto chosen = pick_subprotocol(*proto);
  if (!chosen) return reject("unsupported relay protocol version");

  UpgradeAccept accept;
  accept.version = *chosen;
  accept.subprotocol = std::string(relay::to_string(*chosen));
  accept.accept = websocket_accept(*key);
  if (auto auth = headers.find("Authorization")) accept.token = bearer_token(*auth);
  if (!accept.token) accept.token = query_param(query, "token");
  return accept;
}

HttpDecision decide_http_request(std::string_view method, std::string_view target,
                                 const HttpHeaders& headers) {
  const auto qpos = target.find('?');
  const std::string_view query =
      qpos == std::string_view::npos ? std::string_view{} : target.substr(qpos + 1);
  HttpDecision d;
  d.route = route_of(target);
  switch (d.route) {
    case HttpRoute::RelayUpgrade:
      d.outcome = decide_upgrade(method, query, headers);
      break;
    case HttpRoute::Ping:
      d.outcome = cors(200);
      break;
    case HttpRoute::Generate204: {
      HttpResponse r = cors(204);
      auto challenge = headers.find("X-Iroh-Challenge");
      if (challenge && valid_captive_challenge(*challenge)) {
        r.headers.insert(r.headers.begin(),
                         HttpHeader{"X-Iroh-Response", "response " + std::string(*challenge)});
      }
      d.outcome = std::move(r);
      break;
    }
    case HttpRoute::Index: {
      HttpResponse r;
      r.body = std::string(kIndexHtml);
      r.content_type = "text/html; charset=utf-8";
      d.outcome = std::move(r);
      break;
    }
    case HttpRoute::Robots: {
      HttpResponse r;
      r.body = "User-agent: *\nDisallow: /\n";
      d.outcome = std::move(r);
      break;
    }
    case HttpRoute::NotFound: {
      HttpResponse r;
      r.status = 404;
      r.body = "Not Found\n";
      d.outcome = std::move(r);
      break;
    }
  }
  return d;
}

}  // namespace iroh::relay

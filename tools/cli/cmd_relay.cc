// irohlab relay …: an iroh-relay compatible relay server (spec §6).
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "base/key.h"
#include "base/socket_addr.h"
#include "base/text_encoding.h"
#include "cli.h"
#include "io/qad_server.h"
#include "io/relay_server.h"
#include "relay/access_http.h"

namespace irohlab::cli {
namespace {

struct RelayArgs {
  std::string bind;
  std::string tls_cert;
  std::string tls_key;
  std::string access = "everyone";
  std::string access_http_token;
  std::string metrics;
  std::uint64_t rate_limit = 0;
  std::uint64_t rate_burst = 0;
  std::string log_level = "info";
  std::string fixed_challenge;
  std::uint64_t upgrade_timeout_ms = 30000;
  std::optional<std::uint64_t> qad_port;  // unset: 7842 with --tls-cert, else off
  std::string qad_bind;
};

iroh::SocketAddr parse_addr(const std::string& flag, const std::string& text) {
  auto r = iroh::SocketAddr::parse(text);
  if (!r.ok()) throw UsageError(flag + ": expected IP:PORT, got '" + text + "'");
  return *r;
}

std::set<iroh::EndpointId> read_id_file(const std::string& flag, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError(flag + ": cannot read " + path);
  std::set<iroh::EndpointId> ids;
  std::string line;
  int n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (auto hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    const auto b = line.find_first_not_of(" \t\r");
    if (b == std::string::npos) continue;
    const auto e = line.find_last_not_of(" \t\r");
    auto id = iroh::EndpointId::parse(line.substr(b, e - b + 1));
    if (!id.ok()) {
      throw UsageError(flag + ": " + path + ":" + std::to_string(n) + ": " + id.error().message);
    }
    ids.insert(*id);
  }
  return ids;
}

iroh::relay::AccessPolicy parse_access(const std::string& text) {
  iroh::relay::AccessPolicy p;
  if (text == "everyone") return p;
  const auto colon = text.find(':');
  const std::string kind = text.substr(0, colon);
  const std::string arg = colon == std::string::npos ? "" : text.substr(colon + 1);
  if (kind == "allowlist" || kind == "denylist") {
    if (arg.empty()) throw UsageError("--access " + kind + ": needs a FILE (" + kind + ":FILE)");
    p.mode = kind == "allowlist" ? iroh::relay::AccessPolicy::Mode::Allowlist
                                 : iroh::relay::AccessPolicy::Mode::Denylist;
    p.ids = read_id_file("--access " + kind, arg);
    return p;
  }
  if (kind == "http") {
    if (arg.empty()) throw UsageError("--access http: needs a URL (http:http://HOST:PORT/PATH)");
    auto target = iroh::relay::parse_access_http_url(arg);
    if (!target.ok()) throw UsageError("--access http: " + target.error().message);
    p.mode = iroh::relay::AccessPolicy::Mode::Http;
    p.http_url = arg;
    return p;
  }
  if (kind == "token") {
    if (arg.empty()) throw UsageError("--access token: needs a TOKEN (token:TOKEN)");
    p.mode = iroh::relay::AccessPolicy::Mode::SharedToken;
    p.token = arg;
    return p;
  }
  throw UsageError(
      "--access: expected everyone, allowlist:FILE, denylist:FILE, token:TOKEN or http:URL, got '" +
      text + "'");
}

void run_relay(const RelayArgs& a) {
  iroh::io::RelayServerOptions o;
  const auto bind = parse_addr("--bind", a.bind);
  o.bind_ip = bind.ip_string();
  o.bind_port = bind.port();
  if (a.tls_cert.empty() != a.tls_key.empty()) {
    throw UsageError("--tls-cert and --tls-key must be given together");
  }
  o.tls_cert_file = a.tls_cert;
  o.tls_key_file = a.tls_key;
  // QUIC address discovery (spec §6.9): on by default when there is a certificate to present.
  if (a.qad_port && *a.qad_port > 65535) throw UsageError("--qad-port: expected 0..65535");
  if (a.qad_port && *a.qad_port != 0) {
    if (a.tls_cert.empty()) {
      throw UsageError(
          "--qad-port: QUIC address discovery needs the relay's X.509 certificate (QAD clients "
          "verify it); give --tls-cert and --tls-key, or drop --qad-port");
    }
    o.qad_port = static_cast<std::uint16_t>(*a.qad_port);
  } else if (!a.qad_port && !a.tls_cert.empty()) {
    o.qad_port = iroh::io::kQadDefaultPort;
    o.qad_optional = true;  // another relay may hold 7842: run without QAD then, with a warning
  }
  if (!a.qad_bind.empty()) {
    if (!o.qad_port) throw UsageError("--qad-bind: QUIC address discovery is off");
    auto ip = iroh::SocketAddr::parse(
        a.qad_bind.find(':') != std::string::npos ? "[" + a.qad_bind + "]:0" : a.qad_bind + ":0");
    if (!ip.ok()) throw UsageError("--qad-bind: expected an IP address, got '" + a.qad_bind + "'");
    o.qad_bind_ip = a.qad_bind;
  }
  if (!a.metrics.empty()) {
    const auto m = parse_addr("--metrics", a.metrics);
    o.metrics_ip = m.ip_string();
    o.metrics_port = m.port();
  }
  o.core.access = parse_access(a.access);
  if (!a.access_http_token.empty()) {
    if (o.core.access.mode != iroh::relay::AccessPolicy::Mode::Http) {
      throw UsageError("--access-http-token needs --access http:URL");
    }
    o.core.access.http_token = a.access_http_token;
  }
  if (a.rate_burst != 0 && a.rate_limit == 0) throw UsageError("--rate-burst needs --rate-limit");
  if (a.rate_limit > (1ull << 32) || a.rate_burst > (1ull << 32)) {
    throw UsageError("--rate-limit / --rate-burst: at most 4294967296");
  }
  if (a.rate_limit != 0) {
    o.core.rate_limit =
        iroh::relay::RateLimit{a.rate_limit, a.rate_burst != 0 ? a.rate_burst : a.rate_limit};
  }
  auto level = iroh::io::parse_log_level(a.log_level);
  if (!level)
    throw UsageError("--log-level: expected error, warn, info, debug or trace, got '" +
                     a.log_level + "'");
  o.log_level = *level;
  if (!a.fixed_challenge.empty()) {
    auto bytes = iroh::parse_hex_lower(a.fixed_challenge);
    if (!bytes.ok() || bytes->size() != iroh::relay::kChallengeSize) {
      throw UsageError("--fixed-challenge: expected 32 lowercase hex chars");
    }
    iroh::ByteArray<iroh::relay::kChallengeSize> c{};
    std::copy(bytes->begin(), bytes->end(), c.begin());
    o.fixed_challenge = c;
  }
  if (a.upgrade_timeout_ms == 0) throw UsageError("--upgrade-timeout must be > 0");
  o.upgrade_timeout = std::chrono::milliseconds(a.upgrade_timeout_ms);

  iroh::io::RelayServer server(std::move(o));
  auto url = server.start();
  if (!url.ok()) throw UsageError(url.error().message);
  std::cout << "relay listening on " << *url << std::endl;
  if (auto qad = server.qad_addr()) {
    std::cout << "QUIC address discovery on udp " << *qad << std::endl;
  }
  server.run();
}

}  // namespace

void register_relay_commands(CLI::App& app) {
  auto a = std::make_shared<RelayArgs>();
  auto* cmd = app.add_subcommand("relay", "Run an iroh-relay compatible relay server (spec §6)");
  cmd->add_option("--bind", a->bind, "Listen on IP:PORT (port 0: any free port)")->required();
  cmd->add_option("--tls-cert", a->tls_cert,
                  "PEM certificate chain: serve https:// (with --tls-key)");
  cmd->add_option("--tls-key", a->tls_key, "PEM private key for --tls-cert");
  cmd->add_option("--qad-port", a->qad_port,
                  "UDP port of the QUIC address discovery service (ALPN /iroh-qad/0, spec §6.9); "
                  "0 = off. Default: 7842 (iroh's) when --tls-cert is given, off otherwise — QAD "
                  "clients verify the relay's X.509 certificate, so a relay without one cannot "
                  "serve it (if 7842 is taken, the relay runs without QAD and logs a warning)");
  cmd->add_option("--qad-bind", a->qad_bind, "IP address for the QAD socket (default: --bind's)");
  cmd->add_option("--access", a->access,
                  "Who may use the relay: everyone | allowlist:FILE | denylist:FILE | token:TOKEN "
                  "| http:URL (FILE: one endpoint id per line, '#' comments; URL: http:// only, "
                  "POSTed with X-Iroh-NodeId: <hex id>, allowed iff 200 and body 'true', 5 s "
                  "timeout)");
  cmd->add_option("--access-http-token", a->access_http_token,
                  "With --access http:URL: send Authorization: Bearer TOKEN to the access server");
  cmd->add_option("--metrics", a->metrics, "Serve Prometheus GET /metrics on IP:PORT");
  cmd->add_option("--rate-limit", a->rate_limit, "Per-client receive rate limit, bytes/s (0: off)");
  cmd->add_option("--rate-burst", a->rate_burst,
                  "Rate limiter burst, bytes (default: one second's worth)");
  cmd->add_option("--log-level", a->log_level, "error | warn | info | debug | trace (stderr)");
  // Test hooks, hidden from --help.
  cmd->add_option("--fixed-challenge", a->fixed_challenge, "")->group("");
  cmd->add_option("--upgrade-timeout", a->upgrade_timeout_ms, "")->group("");
  cmd->footer("Connections that have not completed the WebSocket upgrade within " +
              std::to_string(iroh::io::RelayServerOptions{}.upgrade_timeout.count() / 1000) +
              " s are closed.");
  cmd->callback([a] { run_relay(*a); });
}

}  // namespace irohlab::cli

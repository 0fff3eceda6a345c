// The relay server's I/O driver (spec §6): Boost.Beast HTTP/1.1 + WebSocket over Asio, plain
// http:// or https:// (OpenSSL), around the sans-IO relay::ServerCore.
//
// One io_context, one thread. Per TCP connection: (TLS handshake) → HTTP/1.1 requests (`/relay`
// upgrade, `/ping`, `/generate_204`, `/`, `/robots.txt`, 404) → after the 101, one relay frame per
// binary WebSocket message fed to the core; the core's actions come back as queued writes (drained
// asynchronously, one at a time), closes and read pauses. One timer drives the core's deadlines
// (server pings, ping and handshake timeouts). Optional Prometheus metrics on a separate listener.
// SIGINT / SIGTERM: Restarting to every client, close everything, run() returns.
//
// Beast and Asio stay out of this header (they compile slowly): everything lives behind Impl.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"
#include "relay/server_core.h"

namespace iroh::io {

enum class LogLevel { Error = 0, Warn = 1, Info = 2, Debug = 3, Trace = 4 };
// "error" | "warn" | "info" | "debug" | "trace".
std::optional<LogLevel> parse_log_level(std::string_view text);

struct RelayServerOptions {
  std::string bind_ip = "127.0.0.1";
  std::uint16_t bind_port = 0;
  // Both set → https:// (PEM files); both empty → plain http://.
  std::string tls_cert_file;
  std::string tls_key_file;
  // QUIC address discovery (spec §6.9) on UDP qad_bind_ip (empty: bind_ip) : qad_port (0: any
  // free port); unset → off. Needs the TLS certificate: QAD clients verify it as WebPKI.
  std::optional<std::uint16_t> qad_port;
  std::string qad_bind_ip;
  // The port was not asked for explicitly (the CLI's default 7842): if it cannot be bound, log a
  // warning and run without QAD instead of failing start().
  bool qad_optional = false;
  // Prometheus `GET /metrics` listener; unset → none.
  std::optional<std::string> metrics_ip;
  std::uint16_t metrics_port = 0;
  relay::ServerConfig core;
  // From TCP accept to the 101 response (TLS handshake and HTTP request included).
  std::chrono::milliseconds upgrade_timeout{30000};
  // Test hook: every ServerChallenge carries these bytes instead of fresh random ones.
  std::optional<ByteArray<relay::kChallengeSize>> fixed_challenge;
  LogLevel log_level = LogLevel::Info;
};

class RelayServer {
 public:
  explicit RelayServer(RelayServerOptions options);
  ~RelayServer();
  RelayServer(const RelayServer&) = delete;
  RelayServer& operator=(const RelayServer&) = delete;

  // Loads TLS material and binds the listeners. Returns the relay URL clients use, with the
  // actually bound port: "http://IP:PORT/" or "https://IP:PORT/".
  Result<std::string> start();
  // "http://IP:PORT/metrics" when a metrics listener is bound.
  std::optional<std::string> metrics_url() const;
  // "IP:PORT" of the QAD service's UDP socket when it runs.
  std::optional<std::string> qad_addr() const;
  // Serves until SIGINT / SIGTERM or stop(), then shuts down gracefully and returns.
  void run();
  // Thread-safe request for a graceful shutdown.
  void stop();

  struct Impl;  // implementation detail (relay_server.cc)

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace iroh::io

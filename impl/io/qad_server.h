// QadServer: the relay's QUIC address discovery service (spec §6.9) — a QuicEndpoint on its own
// UDP port (iroh's default 7842) that presents the relay's X.509 certificate, accepts ALPN
// `/iroh-qad/0`, allows zero streams and zero datagrams, announces observed_address role
// send-only, and lets the engine send each client OBSERVED_ADDRESS frames (its address as seen
// here; again with a higher sequence number when it changes). Connections end when the client
// closes (iroh: application code 1, "finished") or after the idle timeout.
//
// Runs on the caller's io_context (the relay server's), one thread.
#pragma once

// clang-format off
#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include "base/result.h"
#include "base/socket_addr.h"
#include "crypto/tls.h"
#include "io/quic_endpoint.h"

namespace iroh::io {

inline constexpr std::uint16_t kQadDefaultPort = 7842;  // iroh-relay defaults.rs
inline constexpr const char* kQadAlpn = "/iroh-qad/0";

struct QadServerOptions {
  SocketAddr bind = SocketAddr::v4({127, 0, 0, 1}, kQadDefaultPort);
  std::shared_ptr<const crypto::X509Credentials> identity;  // the relay's certificate + key
  Duration idle_timeout = std::chrono::seconds(35);         // as iroh's QAD client uses
};

class QadServer {
 public:
  // Binds the UDP socket and starts accepting. Errors: no identity, bind failure.
  static Result<std::unique_ptr<QadServer>> start(boost::asio::io_context& io,
                                                  QadServerOptions options);
  ~QadServer();
  QadServer(const QadServer&) = delete;
  QadServer& operator=(const QadServer&) = delete;

  SocketAddr local_addr() const;
  // Handshakes completed since start.
  std::uint64_t connections() const { return connections_; }
  // Open connections now.
  std::uint64_t active() const { return live_.size(); }
  // OBSERVED_ADDRESS frames sent (closed connections and live ones).
  std::uint64_t observations() const;
  // Closes every connection (application code 0) and the socket.
  void close();

 private:
  QadServer(boost::asio::io_context& io, std::shared_ptr<QuicEndpoint> endpoint);
  awaitable<void> accept_loop();
  awaitable<void> serve(std::shared_ptr<QuicConnection> conn);

  boost::asio::io_context& io_;
  std::shared_ptr<QuicEndpoint> endpoint_;
  std::set<std::shared_ptr<QuicConnection>> live_;
  std::uint64_t connections_ = 0;
  std::uint64_t observations_closed_ = 0;
  // Cleared on destruction: coroutines still suspended then must not touch this object.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The QuicEndpoint options of a QAD server (also used by tests): the engine template described
// above on `bind`.
QuicEndpointOptions qad_server_endpoint_options(const QadServerOptions& options);

}  // namespace iroh::io

// QAD client (see qad_client.h).
#include "io/qad_client.h"

#include <algorithm>

namespace iroh::io {

namespace asio = boost::asio;
using namespace std::chrono_literals;

std::string qad_server_name(const RelayUrl& relay) {
  std::string host = relay.host();
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host;
}

QuicEndpointOptions qad_client_endpoint_options(
    const RelayUrl& relay, std::shared_ptr<const crypto::X509Credentials> trust, SocketAddr bind,
    Duration timeout) {
  QuicEndpointOptions e;
  e.bind = bind;
  auto& c = e.connection;
  c.x509 = quic::ConnectionConfig::X509Tls{std::move(trust), qad_server_name(relay)};
  c.observed_address = quic::AddressDiscoveryRole::kReceiveOnly;
  c.initial_rtt = 111ms;  // iroh-relay quic.rs
  c.keep_alive = 25s;
  c.idle_timeout = 35s;
  c.handshake_timeout = timeout;
  c.max_concurrent_bidi_streams = 0;
  c.max_concurrent_uni_streams = 0;
  c.max_datagram_frame_size = 0;
  return e;
}

namespace {

SocketAddr from_asio(const asio::ip::address& a, std::uint16_t port) {
  if (a.is_v4()) {
    const auto b = a.to_v4().to_bytes();
    return SocketAddr::v4(ByteArray<4>{b[0], b[1], b[2], b[3]}, port);
  }
  const auto b = a.to_v6().to_bytes();
  ByteArray<16> ip{};
  std::copy(b.begin(), b.end(), ip.begin());
  return SocketAddr::v6(ip, port);
}

// The relay host as an address of `family_v4`'s family: IP literals directly, names through DNS.
awaitable<QuicResult<SocketAddr>> resolve(const RelayUrl& relay, std::uint16_t port,
                                          bool family_v4) {
  const std::string host = qad_server_name(relay);
  boost::system::error_code ec;
  const auto literal = asio::ip::make_address(host, ec);
  if (!ec) {
    if (literal.is_v4() != family_v4) {
      co_return QuicError{ErrorKind::kUnreachable,
                          "relay address " + host + " is not of our socket's address family",
                          std::nullopt};
    }
    co_return from_asio(literal, port);
  }
  auto ex = co_await asio::this_coro::executor;
  asio::ip::udp::resolver resolver(ex);
  auto results = co_await resolver.async_resolve(host, std::to_string(port),
                                                 asio::redirect_error(asio::use_awaitable, ec));
  if (ec) {
    co_return QuicError{ErrorKind::kUnreachable,
                        "cannot resolve relay host " + host + ": " + ec.message(), std::nullopt};
  }
  for (const auto& r : results) {
    const auto a = r.endpoint().address();
    if (a.is_v4() == family_v4) co_return from_asio(a, port);
  }
  co_return QuicError{
      ErrorKind::kUnreachable,
      "relay host " + host + " has no " + (family_v4 ? "IPv4" : "IPv6") + " address", std::nullopt};
}

}  // namespace

awaitable<QuicResult<SocketAddr>> observe_address(QuicEndpoint& endpoint, const RelayUrl& relay,
                                                  QadProbeOptions options) {
  const auto deadline = std::chrono::steady_clock::now() + options.timeout;
  auto target = co_await resolve(relay, options.port, endpoint.local_addr().is_v4());
  if (!target) co_return target.error();

  EndpointAddr addr;  // the id is unused by the X.509 profile
  addr.addrs.insert(TransportAddr(*target));
  auto conn = co_await endpoint.connect(addr, kQadAlpn);
  if (!conn) {
    QuicError e = conn.error();
    e.message = "QAD handshake with " + target->to_string() + ": " + e.message;
    co_return e;
  }
  auto c = *conn;
  // The engine records OBSERVED_ADDRESS frames; QuicConnection offers no wake-up for them (a hook
  // for the lead: see docs/ARCHITECTURE.md "QAD"), so look every 2 ms until the deadline.
  asio::steady_timer tick(endpoint.io());
  for (;;) {
    if (auto observed = c->stats().path.observed) {
      c->close(1, "finished");  // as iroh's client (quic.rs)
      co_await c->drain(100ms);
      co_return *observed;
    }
    if (c->is_closed()) {
      QuicError e;
      e.kind = ErrorKind::kClosed;
      e.message = "QAD connection to " + target->to_string() + " ended without an address";
      if (auto r = c->close_reason()) {
        e = error_from_close(*r);
        e.message =
            "QAD connection to " + target->to_string() + " ended without an address: " + e.message;
      }
      co_return e;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      c->close(0, "timeout");
      co_return QuicError{ErrorKind::kTimeout,
                          "the relay's QAD service at " + target->to_string() +
                              " sent no OBSERVED_ADDRESS within the timeout",
                          std::nullopt};
    }
    tick.expires_after(2ms);
    boost::system::error_code ec;
    co_await tick.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

}  // namespace iroh::io

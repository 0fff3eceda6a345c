// QadServer (see qad_server.h).
#include "io/qad_server.h"

namespace iroh::io {

namespace asio = boost::asio;

QuicEndpointOptions qad_server_endpoint_options(const QadServerOptions& o) {
  QuicEndpointOptions e;
  e.bind = o.bind;
  e.alpns = {kQadAlpn};
  auto& c = e.connection;
  c.x509 = quic::ConnectionConfig::X509Tls{o.identity, ""};
  c.observed_address = quic::AddressDiscoveryRole::kSendOnly;
  // Zero streams and no datagrams: the service is the OBSERVED_ADDRESS frame alone.
  c.max_concurrent_bidi_streams = 0;
  c.max_concurrent_uni_streams = 0;
  c.max_datagram_frame_size = 0;
  c.idle_timeout = o.idle_timeout;
  c.keep_alive = Duration::zero();  // the client keeps the connection alive (iroh: 25 s)
  return e;
}

QadServer::QadServer(asio::io_context& io, std::shared_ptr<QuicEndpoint> endpoint)
    : io_(io), endpoint_(std::move(endpoint)) {}

QadServer::~QadServer() {
  *alive_ = false;
  close();
}

Result<std::unique_ptr<QadServer>> QadServer::start(asio::io_context& io,
                                                    QadServerOptions options) {
  if (!options.identity || !options.identity->is_server()) {
    return make_error("QAD needs the relay's X.509 certificate and key");
  }
  // The endpoint's own key is unused by the X.509 profile; it still needs one.
  SystemRandom random;
  ByteArray<32> seed{};
  random.fill(seed);
  auto ep = QuicEndpoint::bind(io, SecretKey::generate(seed), qad_server_endpoint_options(options));
  if (!ep) return make_error("QAD: " + ep.error().message);
  std::unique_ptr<QadServer> server(new QadServer(io, std::move(*ep)));
  asio::co_spawn(io, server->accept_loop(), asio::detached);
  return server;
}

SocketAddr QadServer::local_addr() const { return endpoint_->local_addr(); }

std::uint64_t QadServer::observations() const {
  std::uint64_t n = observations_closed_;
  for (const auto& c : live_) n += c->stats().observed_addresses_sent;
  return n;
}

void QadServer::close() {
  if (!endpoint_) return;
  for (const auto& c : live_) c->close(0, "relay shutting down");
  endpoint_->close();
}

awaitable<void> QadServer::accept_loop() {
  const auto alive = alive_;
  for (;;) {
    auto conn = co_await endpoint_->accept();
    if (!*alive || !conn) co_return;
    ++connections_;
    live_.insert(conn);
    asio::co_spawn(io_, serve(std::move(conn)), asio::detached);
  }
}

awaitable<void> QadServer::serve(std::shared_ptr<QuicConnection> conn) {
  const auto alive = alive_;
  // The engine does the work (OBSERVED_ADDRESS after confirmation and on every address change;
  // the idle timeout ends silent clients); here we only wait for the end and keep the counters.
  (void)co_await conn->closed();
  if (!*alive) co_return;
  observations_closed_ += conn->stats().observed_addresses_sent;
  live_.erase(conn);
}

}  // namespace iroh::io

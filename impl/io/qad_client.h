// QUIC address discovery client (spec §6.9): asks a relay's QAD service which address our UDP
// socket has as the relay sees it (the NAT mapping peers will see, when sent from the endpoint's
// own socket).
//
//   auto ep = QuicEndpoint::bind(io, key, qad_client_endpoint_options(url, trust, bind));
//   auto addr = co_await observe_address(**ep, url);   // QuicResult<SocketAddr>
//
// The connection profile is iroh's (`iroh-relay/src/quic.rs`): ALPN /iroh-qad/0, the relay's
// WebPKI certificate checked against `trust` for the URL's host (DNS name or IP literal), TP
// observed_address = receive-only, initial RTT 111 ms, keep-alive 25 s, idle 35 s, and a close
// with application code 1, reason "finished", once the address is known.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include "base/relay_url.h"
#include "base/socket_addr.h"
#include "crypto/tls.h"
#include "io/qad_server.h"
#include "io/quic_endpoint.h"

namespace iroh::io {

struct QadProbeOptions {
  std::uint16_t port = kQadDefaultPort;  // the relay's QAD UDP port
  Duration timeout = std::chrono::seconds(5);
};

// The TLS server name for a relay URL: its host, without the brackets of an IPv6 literal.
std::string qad_server_name(const RelayUrl& relay);

// Options for an endpoint whose connections are QAD connections to `relay` (the engine template
// carries the X.509 trust, server name and QAD role; see the header comment). The handshake
// gives up after `timeout`.
QuicEndpointOptions qad_client_endpoint_options(
    const RelayUrl& relay, std::shared_ptr<const crypto::X509Credentials> trust, SocketAddr bind,
    Duration timeout = std::chrono::seconds(5));

// Resolves the relay's host (for a DNS name: the first address of the endpoint's family),
// connects to its QAD port, waits for the first OBSERVED_ADDRESS, closes (1, "finished") and
// returns the address. Precondition: `endpoint`'s connection template is a QAD client profile for
// this relay (qad_client_endpoint_options). Errors: kUnreachable (DNS, no address of our
// family), kTimeout, kClosed / kTransport (TLS failures carry the alert and reason, e.g. an
// unknown CA), kTransport if the relay completed the handshake but sent no address in time.
awaitable<QuicResult<SocketAddr>> observe_address(QuicEndpoint& endpoint, const RelayUrl& relay,
                                                  QadProbeOptions options = {});

}  // namespace iroh::io

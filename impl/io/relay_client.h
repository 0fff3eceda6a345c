// io::RelayClient: the sans-IO relay::ClientCore on a real connection (spec §6): Boost.Beast
// HTTP/1.1 upgrade to a WebSocket over TCP (`http://` relay URLs) or TLS (`https://`, OpenSSL,
// SNI = host, certificate checked against the system roots or a given CA file).
//
//   auto client = RelayClient::start(io, secret, *RelayUrl::parse("https://relay.example/"), {});
//   (*client)->on_receive([](RelayDatagram d) { ... d.src, d.data, d.ecn ... });
//   (*client)->on_event([](const relay::ClientEvent& e) { ... connected, denied, ... });
//   (*client)->send(peer_id, bytes, relay::ecn::kNotEct);
//   ...
//   (*client)->close();  // WebSocket close 1000
//
// One thread, one io_context (the caller's); every method must be called on that thread. The
// upgrade request is exactly spec §6.2's: `GET /relay`, `Upgrade: websocket`,
// `Sec-WebSocket-Protocol: iroh-relay-v2, iroh-relay-v1`, plus `Authorization: Bearer <token>`
// (or `?token=<token>`) when a token is configured and, over TLS, the TLS-exporter auth header
// `x-iroh-relay-client-auth-v1` (so an iroh relay confirms without a challenge). The 101 must name
// a known subprotocol. Then one relay frame per binary WebSocket message; the core decides
// everything else (handshake, pings, batching, reconnects with backoff, Restarting).
//
// Callbacks run on the io_context thread, from inside the client: they may call send() but must
// not destroy the client. The client keeps itself alive while it has work; drop the shared_ptr
// after close().
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>  // Boost 1.74's awaitable.hpp uses std::exchange without including it

#include "base/bytes.h"
#include "base/key.h"
#include "base/relay_url.h"
#include "base/result.h"
#include "relay/client_core.h"

namespace iroh::io {

struct RelayClientOptions {
  // Access token (iroh-relay access mode shared_token): `Authorization: Bearer <token>`, or the
  // `?token=` query parameter when token_in_query.
  std::optional<std::string> token;
  bool token_in_query = false;
  // https: trust exactly this PEM file (a CA or a self-signed certificate) instead of the system
  // roots. Empty → system default verify paths.
  std::string ca_file;
  // DNS + TCP + TLS + HTTP upgrade, per attempt (iroh: 10 s).
  std::chrono::milliseconds connect_timeout{10000};
  // Over TLS, send the x-iroh-relay-client-auth-v1 header (iroh does).
  bool key_material_header = true;
  // Test hook: send this header value instead of the computed one (e.g. a corrupt one).
  std::optional<std::string> key_material_header_override;
  relay::ClientConfig core;
  // Seed for jitter and ping payloads; unset → OS randomness.
  std::optional<std::uint64_t> random_seed;
};

struct RelayDatagram {
  EndpointId src;
  Bytes data;  // one datagram, or segment_size-strided datagrams
  std::uint8_t ecn = relay::ecn::kNotEct;
  std::optional<std::uint16_t> segment_size;
};

class RelayClient : public std::enable_shared_from_this<RelayClient> {
 public:
  // Validates the URL (http/https/ws/wss, with a host) and the CA file, then starts dialing on
  // `io` (nothing happens until the io_context runs).
  static Result<std::shared_ptr<RelayClient>> start(boost::asio::io_context& io,
                                                    SecretKey secret_key, RelayUrl url,
                                                    RelayClientOptions options = {});
  ~RelayClient();
  RelayClient(const RelayClient&) = delete;
  RelayClient& operator=(const RelayClient&) = delete;

  void on_receive(std::function<void(RelayDatagram)> callback);
  void on_event(std::function<void(const relay::ClientEvent&)> callback);

  // Queues a datagram for `dst` (sent when connected; dropped after 3 s). Any state.
  void send(const EndpointId& dst, ByteView datagram, std::uint8_t ecn = relay::ecn::kNotEct,
            std::optional<std::uint16_t> segment_size = std::nullopt);
  // Graceful stop: WebSocket close 1000, no more reconnects. Idempotent.
  void close();
  // The network changed (our address went away, say): drop the current connection at once and
  // reconnect, instead of waiting for pings to time out on a TCP connection that cannot work.
  // No-op unless connected.
  void reconnect(const std::string& why);

  relay::ClientState state() const;
  relay::AuthMethod auth_method() const;
  std::optional<std::string> denial_reason() const;
  const relay::ClientMetrics& metrics() const;
  const EndpointId& endpoint_id() const;
  // The WebSocket URL dialled, e.g. "wss://relay.example:443/relay".
  const std::string& websocket_url() const;

  struct Impl;  // implementation detail (relay_client.cc)

 private:
  explicit RelayClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace iroh::io

// A client and a server quic::Endpoint on a VirtualNetwork: the fixture every engine test uses.
#pragma once

#include <memory>
#include <string>

#include "base/key.h"
#include "base/random.h"
#include "quic/endpoint.h"
#include "sim/virtual_network.h"

namespace iroh::testing {

struct QuicPair {
  static inline const SocketAddr kClientAddr = SocketAddr::v4({10, 0, 0, 1}, 4433);
  static inline const SocketAddr kServerAddr = SocketAddr::v4({10, 0, 0, 2}, 443);

  explicit QuicPair(std::uint64_t seed, quic::ConnectionConfig base = quic::ConnectionConfig(),
                    std::vector<std::string> server_alpns = {"test/echo/0"})
      : QuicPair(seed, base, base, std::move(server_alpns)) {}

  // Different connection templates for the two sides (e.g. a feature on one side only).
  QuicPair(std::uint64_t seed, quic::ConnectionConfig client_base,
           quic::ConnectionConfig server_base, std::vector<std::string> server_alpns)
      : rng_client(seed * 2 + 1),
        rng_server(seed * 2 + 2),
        net(seed),
        client_key(SecretKey::generate(rng_client.array<32>())),
        server_key(SecretKey::generate(rng_server.array<32>())) {
    quic::EndpointConfig cc;
    cc.connection = client_base;
    client = std::make_unique<quic::Endpoint>(client_key, cc, rng_client);
    quic::EndpointConfig sc;
    sc.alpns = std::move(server_alpns);
    sc.connection = server_base;
    server = std::make_unique<quic::Endpoint>(server_key, sc, rng_server);
    net.attach(*client, kClientAddr);
    net.attach(*server, kServerAddr);
  }

  // Starts a connection from the client; returns its handle.
  quic::ConnectionHandle dial(std::string alpn = "test/echo/0") {
    auto h = client->connect(net.now(), kServerAddr, server_key.public_key(), std::move(alpn));
    if (!h) throw std::runtime_error(h.error().message);
    client_handle = *h;
    return *h;
  }
  quic::Connection* cconn() { return client->connection(client_handle); }
  quic::Connection* sconn() {
    if (!server_handle) {
      if (auto h = server->accept()) server_handle = *h;
    }
    return server_handle ? server->connection(*server_handle) : nullptr;
  }
  // Dials and runs until both sides completed the handshake.
  bool connect(Duration limit = std::chrono::seconds(5)) {
    dial();
    return net.run_until(
        [&] {
          return cconn() && cconn()->is_handshake_complete() && sconn() &&
                 sconn()->is_handshake_complete();
        },
        limit);
  }

  SeededRandom rng_client, rng_server;
  sim::VirtualNetwork net;
  SecretKey client_key, server_key;
  std::unique_ptr<quic::Endpoint> client, server;
  quic::ConnectionHandle client_handle = 0;
  std::optional<quic::ConnectionHandle> server_handle;
};

}  // namespace iroh::testing

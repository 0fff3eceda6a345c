// quic::Endpoint: many Connections behind one UDP socket, sans-IO (RFC 9000 §5.2, §6, §8.1.2,
// §10.3).
//
// It routes each datagram to its connection by destination CID (our CIDs are 8 random bytes;
// a client's first Initials are routed by the DCID it chose), creates server connections for new
// Initials, answers unknown versions with Version Negotiation, unroutable short-header packets
// with a stateless reset, and — when enabled — new Initials with a Retry (address validation
// tokens bound to the client's address and a 10 s lifetime). Drivers call it exactly like a
// Connection: handle_datagram / poll_transmit / next_timeout / handle_timeout.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/key.h"
#include "base/random.h"
#include "base/socket_addr.h"
#include "base/time.h"
#include "quic/connection.h"

namespace iroh::quic {

using ConnectionHandle = std::uint64_t;

struct EndpointConfig {
  // ALPNs accepted from incoming connections; empty = refuse incoming connections.
  std::vector<std::string> alpns;
  // Template for every connection (role, keys and ALPNs are filled in per connection).
  ConnectionConfig connection;
  std::size_t max_connections = 10000;
  bool retry = false;  // stateless Retry for every new client (address validation)
  // qlog: called once per new connection with its role and original DCID (the qlog group id);
  // the returned sink (may be empty) receives that connection's events.
  std::function<QlogSink(Role, ByteView original_dcid)> qlog_factory;
};

class Endpoint {
 public:
  Endpoint(const SecretKey& secret_key, EndpointConfig config, Random& random);
  ~Endpoint();
  Endpoint(const Endpoint&) = delete;
  Endpoint& operator=(const Endpoint&) = delete;

  EndpointId id() const;

  // Starts a client connection to `server` at `remote`.
  Result<ConnectionHandle> connect(Instant now, const SocketAddr& remote, const EndpointId& server,
                                   std::string alpn);

  void handle_datagram(Instant now, const SocketAddr& from, std::span<std::uint8_t> datagram,
                       std::uint8_t ecn = 0);
  // The next datagram batch of any connection (round-robin) or a stateless response.
  std::optional<Transmit> poll_transmit(Instant now, std::span<std::uint8_t> buf,
                                        std::size_t max_datagrams = 1);
  std::optional<Instant> next_timeout() const;
  // Runs connection timers due at `now` and forgets drained connections.
  void handle_timeout(Instant now);

  // New incoming connections, in arrival order.
  std::optional<ConnectionHandle> accept();
  Connection* connection(ConnectionHandle h);
  std::vector<ConnectionHandle> handles() const;
  // Connections removed since the last call (drained), with how they ended, so drivers can drop
  // their state and still tell the application why.
  struct Removed {
    ConnectionHandle handle;
    std::optional<CloseReason> reason;
    ConnectionStats stats;
  };
  std::vector<Removed> take_removed();
  std::size_t connection_count() const;

  struct Stats {
    std::uint64_t datagrams_in = 0, datagrams_unroutable = 0, version_negotiations = 0;
    std::uint64_t stateless_resets_sent = 0, retries_sent = 0, invalid_tokens = 0;
    std::uint64_t refused = 0;
  };
  const Stats& stats() const { return stats_; }

 private:
  struct Entry {
    std::unique_ptr<Connection> conn;
    std::vector<ConnectionId> cids;  // routed to this connection
    std::optional<Bytes> initial_dcid;
    std::optional<std::uint64_t> synced_epoch;
  };
  void sync_cids(ConnectionHandle h, Entry& e);
  void remove(ConnectionHandle h);
  void on_new_initial(Instant now, const SocketAddr& from, std::span<std::uint8_t> datagram,
                      const ParsedHeader& parsed, std::uint8_t ecn);
  Bytes make_retry_token(Instant now, const SocketAddr& client, const ConnectionId& odcid);
  std::optional<ConnectionId> check_retry_token(Instant now, const SocketAddr& client,
                                                ByteView token);
  ConnectionId random_cid();

  SecretKey secret_key_;
  EndpointConfig config_;
  Random& random_;
  EndpointId id_;
  ConnectionHandle next_handle_ = 1;
  std::map<ConnectionHandle, Entry> conns_;
  std::map<Bytes, ConnectionHandle> routes_;  // CID bytes -> connection
  std::deque<ConnectionHandle> incoming_;
  std::vector<Removed> removed_;
  std::deque<std::pair<Bytes, SocketAddr>> stateless_out_;
  ConnectionHandle rr_next_ = 0;
  ByteArray<32> token_key_{};
  Stats stats_;
};

}  // namespace iroh::quic

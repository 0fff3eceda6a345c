// The relay server's protocol state machine (spec §6.4, §6.5, §6.7, §6.8), sans-IO.
//
// ServerCore knows nothing about sockets, clocks or randomness. A driver (impl/io/relay_server.cc,
// or a test) owns the WebSocket connections, names each one with an opaque ConnId, and feeds the
// core events:
//
//   on_connected(conn, version, now, challenge, token)   a WebSocket upgrade finished
//   on_message(conn, bytes, now)                         one binary WebSocket message arrived
//   on_sent(conn)                                        one frame handed out in a Send was written
//   on_disconnected(conn, now)                           the transport went away
//   on_timeout(now)                                      now >= next_timeout()
//   shutdown(now)                                        graceful stop: Restarting to everyone
//
// Every call returns the Actions the driver must perform, in order: Send an encoded relay frame
// (one binary WebSocket message), Close a connection (after flushing what is already queued), or
// PauseReads on a connection until a time (rate limiting). Once the core has emitted Close for a
// connection it has forgotten it; later events for that ConnId are ignored. Counters live in
// metrics().
//
// Semantics (mirroring iroh-relay 1.x):
// - Handshake: the server speaks first with ServerChallenge (16 bytes, supplied by the caller). The
//   first client frame must be ClientAuth; anything else closes the connection. A bad signature →
//   ServerDeniesAuth("signature invalid") + Close. Then access control (everyone / allowlist /
//   denylist / shared token; the driver extracts the token from `Authorization: Bearer` or
//   `?token=` and passes it in) → ServerConfirmsAuth, or ServerDeniesAuth(reason) + Close. Access
//   mode Http emits CheckAccess and decides on on_access_decision; any frame from the client
//   while the check runs closes it (a client must wait for ServerConfirmsAuth).
// - Forwarding: ClientToRelayDatagram[Batch] to a connected EndpointId becomes
//   RelayToClientDatagram[Batch] with src = the sender, ECN and segment size preserved. Unknown
//   destination → dropped and counted. Per-destination queue limit (default 512 frames in flight,
//   i.e. handed out and not yet confirmed by on_sent): datagrams beyond it are dropped and counted.
// - EndpointGone(X) goes to every client X has sent datagrams to, when X disconnects (iroh-relay
//   `Clients::unregister`: the receivers of a vanished sender learn it is gone).
// - Same EndpointId twice: the newer connection wins; the older one gets Status
//   SameEndpointIdConnected (v2 only) and receives nothing more. It stays open (it may still send);
//   if the newer one leaves first, the most recent older one becomes active again and gets Status
//   Healthy (v2 only), as iroh-relay's `Clients::unregister` does.
// - Ping → Pong. The server pings each authenticated client ping_interval + jitter (the jitter
//   comes from the caller via ServerConfig::ping_jitter) after the last frame received from it; a
//   Pong with the same data must arrive within ping_timeout, else the client is closed.
// - Rate limiting (optional): a token bucket over bytes read from each client (rate bytes/s, burst
//   bytes). When a message overdraws it, PauseReads until the bucket is back to zero; the first
//   time this happens to a client, a v2 client gets Status RateLimited.
// - shutdown(): Restarting(reconnect_in, try_for) to every authenticated client, then Close all.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/key.h"
#include "relay/frame.h"

namespace iroh::relay {

// Opaque connection id chosen by the driver (never reused within one core).
using ConnId = std::uint64_t;
// A point in time: nanoseconds since an arbitrary epoch fixed by the driver (steady clock, ns-3
// simulated time or a test's virtual clock).
using Instant = std::chrono::nanoseconds;
using Duration = std::chrono::nanoseconds;

// spec §6.7. Mode::Http asks an external service: the core emits CheckAccess and waits for the
// driver's on_access_decision (relay/access_http.h has the sans-IO request/response half).
struct AccessPolicy {
  enum class Mode { Everyone, Allowlist, Denylist, SharedToken, Http };
  Mode mode = Mode::Everyone;
  std::set<EndpointId> ids;  // Allowlist / Denylist
  std::string token;         // SharedToken
  std::string http_url;      // Http: the callout URL (http:// only)
  std::string http_token;    // Http: optional `Authorization: Bearer` for the callout
  std::string deny_reason = "not authorized";
};

struct RateLimit {
  std::uint64_t bytes_per_second = 0;  // > 0
  std::uint64_t burst_bytes = 0;       // > 0, at most 2^32; the bucket's capacity
};

struct ServerConfig {
  AccessPolicy access;
  std::size_t queue_limit = 512;  // relay.rs PER_CLIENT_SEND_QUEUE_DEPTH
  Duration ping_interval = std::chrono::seconds(15);
  Duration ping_timeout = std::chrono::seconds(5);
  // Added to ping_interval each time a server ping is scheduled; injected randomness.
  std::function<Duration()> ping_jitter;
  // Time allowed between on_connected and a valid ClientAuth.
  Duration handshake_timeout = std::chrono::seconds(30);
  std::optional<RateLimit> rate_limit;
  std::uint32_t restart_reconnect_in_ms = 1000;
  std::uint32_t restart_try_for_ms = 30000;
};

// ---- actions ----

// Write `frame` (an encoded relay frame) as one binary WebSocket message. The driver must call
// on_sent(conn) once it has been written (or given up on because the connection died).
struct Send {
  ConnId conn = 0;
  Bytes frame;
  friend bool operator==(const Send&, const Send&) = default;
};
// Flush what is queued for `conn`, then close it (WebSocket close). `reason` is for logs.
struct Close {
  ConnId conn = 0;
  std::string reason;
  friend bool operator==(const Close&, const Close&) = default;
};
// Do not read from `conn` before `until` (rate limiting).
struct PauseReads {
  ConnId conn = 0;
  Instant until{};
  friend bool operator==(const PauseReads&, const PauseReads&) = default;
};
// Access mode Http: ask the access service whether `endpoint` may use the relay, then call
// on_access_decision(conn, ...). Until then the connection is neither confirmed nor denied.
struct CheckAccess {
  ConnId conn = 0;
  EndpointId endpoint;
  friend bool operator==(const CheckAccess&, const CheckAccess&) = default;
};
using Action = std::variant<Send, Close, PauseReads, CheckAccess>;
using Actions = std::vector<Action>;

// Cumulative counters since construction (gauges marked as such).
struct ServerMetrics {
  std::uint64_t clients = 0;              // gauge: authenticated connections now
  std::uint64_t connections_pending = 0;  // gauge: in handshake now
  std::uint64_t connections_accepted = 0;
  std::uint64_t auth_ok = 0;
  std::uint64_t auth_key_material = 0;  // valid TLS-exporter headers (challenge skipped)
  std::uint64_t auth_signature_invalid = 0;
  std::uint64_t auth_denied = 0;
  std::uint64_t access_checks = 0;     // CheckAccess emitted (access mode Http)
  std::uint64_t handshake_errors = 0;  // unexpected frame / timeout before auth
  std::uint64_t protocol_errors = 0;   // undecodable or wrong-direction frame after auth
  std::uint64_t bytes_received = 0;    // all relay frames from clients
  std::uint64_t frames_received = 0;
  std::uint64_t datagrams_forwarded = 0;        // frames
  std::uint64_t bytes_forwarded = 0;            // datagram payload bytes
  std::uint64_t drops_unknown_destination = 0;  // frames
  std::uint64_t drops_queue_full = 0;           // frames
  std::uint64_t endpoint_gone_sent = 0;
  std::uint64_t same_id_replaced = 0;
  std::uint64_t pings_sent = 0;
  std::uint64_t pongs_sent = 0;
  std::uint64_t ping_timeouts = 0;
  std::uint64_t rate_limited = 0;  // PauseReads emitted
  std::uint64_t disconnects = 0;
};

class ServerCore {
 public:
  explicit ServerCore(ServerConfig config);

  const ServerConfig& config() const { return config_; }
  const ServerMetrics& metrics() const { return metrics_; }

  // A WebSocket upgrade for `version` finished. `token` is what the client presented
  // (Authorization: Bearer / ?token=), if anything. Returns [Send ServerChallenge].
  Actions on_connected(ConnId conn, ProtocolVersion version, Instant now,
                       const ByteArray<kChallengeSize>& challenge,
                       std::optional<std::string> token = std::nullopt);
  // A WebSocket upgrade finished whose request carried a valid TLS-exporter auth header
  // (x-iroh-relay-client-auth-v1, verified by the driver with relay::verify_key_material_auth):
  // no ServerChallenge; access control runs at once → [Send ServerConfirmsAuth] or
  // [Send ServerDeniesAuth(reason), Close].
  Actions on_connected_authenticated(ConnId conn, ProtocolVersion version, Instant now,
                                     const EndpointId& endpoint,
                                     std::optional<std::string> token = std::nullopt);
  // One binary WebSocket message from `conn`.
  Actions on_message(ConnId conn, ByteView message, Instant now);
  // The answer to an earlier CheckAccess: nullopt = allowed, else the ServerDeniesAuth reason.
  // Ignored for connections that went away meanwhile.
  Actions on_access_decision(ConnId conn, std::optional<std::string> denial, Instant now);
  // One frame of an earlier Send to `conn` was written (or dropped with the connection).
  void on_sent(ConnId conn);
  // The transport closed (peer close, I/O error). Safe for unknown / already-closed ids.
  Actions on_disconnected(ConnId conn, Instant now);
  // Earliest time on_timeout wants to run, if any.
  std::optional<Instant> next_timeout() const;
  Actions on_timeout(Instant now);
  // Graceful stop: Restarting to every authenticated client, Close for every connection.
  Actions shutdown(Instant now);

  // Introspection (tests, logs).
  bool is_connected(ConnId conn) const { return conns_.count(conn) != 0; }
  std::optional<EndpointId> endpoint_of(ConnId conn) const;
  std::size_t connection_count() const { return conns_.size(); }

 private:
  struct Conn {
    ConnId id = 0;
    ProtocolVersion version = ProtocolVersion::V2;
    ByteArray<kChallengeSize> challenge{};
    std::optional<std::string> token;
    Instant connected_at{};
    bool authenticated = false;
    bool access_pending = false;  // CheckAccess emitted, no decision yet
    EndpointId endpoint;
    std::size_t queued = 0;  // frames handed out, not yet on_sent
    std::set<EndpointId> sent_to;
    // server pings
    Instant next_ping{};
    std::optional<ByteArray<kPingSize>> ping_outstanding;
    Instant ping_deadline{};
    std::uint64_t ping_counter = 0;
    // rate limiting
    std::int64_t tokens = 0;  // byte-nanoseconds
    Instant tokens_at{};
    bool rate_limited_notified = false;
  };

  void send(Actions& out, Conn& c, const Frame& frame);
  void close(Actions& out, ConnId conn, std::string reason, Instant now, bool emit_close = true);
  void handle_client_auth(Actions& out, Conn& c, const ClientAuth& auth, Instant now);
  void finish_auth(Actions& out, Conn& c, std::optional<std::string> denial, Instant now);
  void forward(Actions& out, Conn& from, const EndpointId& dst, std::uint8_t ecn,
               std::optional<std::uint16_t> segment_size, Bytes payload);
  void schedule_ping(Conn& c, Instant now);
  void charge_rate_limit(Actions& out, Conn& c, std::size_t bytes, Instant now);
  std::optional<std::string> access_denial(const Conn& c) const;

  ServerConfig config_;
  ServerMetrics metrics_;
  std::map<ConnId, Conn> conns_;
  // Active connection per EndpointId, plus older same-id connections (most recent last).
  std::map<EndpointId, ConnId> active_;
  std::map<EndpointId, std::vector<ConnId>> inactive_;
};

}  // namespace iroh::relay

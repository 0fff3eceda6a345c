// The relay client's protocol state machine (spec §6.4, §6.5, §6.8), sans-IO.
//
// ClientCore owns one relay *session*: a sequence of WebSocket connections to the same relay, with
// automatic reconnects. It knows nothing about sockets, clocks or OS randomness. A driver
// (impl/io/relay_client.cc, or a test) feeds it events and performs the actions it returns:
//
//   start(now)                              → [Connect]  (dial the relay: TCP/TLS/WebSocket)
//   on_connected(version, header_sent, now) the WebSocket is up (101 with a known subprotocol);
//                                           header_sent = the upgrade carried the TLS-exporter
//                                           auth header (then the server may confirm at once)
//   on_connect_failed(reason, now)          dialing failed (DNS, TCP, TLS, HTTP, timeout)
//   on_message(bytes, now)                  one binary WebSocket message arrived
//   on_flushed(now)                         every frame handed out so far has been written
//   on_disconnected(reason, now)            the transport went away
//   on_timeout(now)                         now >= next_timeout()
//   send(dst, payload, ecn, segment, now)   queue an outgoing datagram (any state)
//   close(now)                              user shutdown → [CloseConnection(1000)], terminal
//
// Every call returns Actions in order: Connect, SendFrame (one binary WebSocket message),
// CloseConnection (WebSocket close with a code), and the app-facing ones: Received (a datagram),
// Event (state changes, EndpointGone, Status, Health).
//
// Semantics (iroh 1.x `iroh-relay/src/client.rs`, `protos/handshake.rs`, relay actor):
// - Handshake: the client waits for ServerChallenge (answers ClientAuth, spec §6.4),
//   ServerConfirmsAuth (→ Connected; immediately after the upgrade only if the exporter header
//   was used, otherwise after ClientAuth) or ServerDeniesAuth(reason) (→ Denied: terminal, no
//   reconnect, the reason is reported). Any other frame, or nothing within handshake_timeout →
//   the connection is dropped and retried.
// - Keep-alive: a relay Ping right after auth and every ping_interval (15 s); its Pong must arrive
//   within ping_timeout (5 s), else Event PingTimeout, the connection is closed and re-dialled.
//   Server Pings are answered with Pong.
// - Datagrams out: queued (any state, up to max_queue; the oldest is dropped beyond it); while
//   connected and the previous batch is flushed, up to max_batch (20) go out as one batch of
//   WebSocket messages; datagrams older than max_datagram_age (3 s) are dropped, never sent.
// - Datagrams in: RelayToClientDatagram[Batch] → Received{src, ecn, segment_size, payload}.
// - EndpointGone, Status (v2), Health (v1) → Events; Status SameEndpointIdConnected keeps the
//   connection (the server stops forwarding to it; iroh only logs it).
// - Restarting(reconnect_in, try_for) → close; re-dial after reconnect_in, and while within
//   try_for retry at the minimum backoff; afterwards the normal backoff applies.
// - Reconnects: exponential backoff initial_backoff · 2^n, capped at max_backoff, each delay
//   multiplied by a jitter factor in [0.5, 1.5) drawn from the injected Random. A successful auth
//   resets it.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/key.h"
#include "base/random.h"
#include "relay/frame.h"
#include "relay/server_core.h"  // Instant, Duration (the relay's nanosecond timeline)

namespace iroh::relay {

struct ClientConfig {
  Duration ping_interval = std::chrono::seconds(15);  // iroh relay actor PING_INTERVAL
  Duration ping_timeout = std::chrono::seconds(5);    // ping_tracker.rs
  Duration handshake_timeout = std::chrono::seconds(10);
  Duration max_datagram_age = std::chrono::seconds(3);  // actor.rs UNDELIVERABLE_DATAGRAM_TIMEOUT
  std::size_t max_batch = 20;                           // actor.rs SEND_DATAGRAM_BATCH_SIZE
  std::size_t max_queue = 512;
  Duration initial_backoff = std::chrono::milliseconds(100);
  Duration max_backoff = std::chrono::seconds(10);
};

enum class ClientState {
  Idle,          // before start()
  Connecting,    // Connect emitted, waiting for on_connected / on_connect_failed
  Handshaking,   // WebSocket up, relay handshake running
  Connected,     // authenticated
  WaitingRetry,  // disconnected, re-dial scheduled
  Denied,        // terminal: ServerDeniesAuth
  Closed,        // terminal: close()
};
std::string_view to_string(ClientState state);

enum class AuthMethod { None, Challenge, KeyMaterialHeader };

// ---- actions ----

// Dial the relay (new TCP/TLS/WebSocket connection). Answer with on_connected/on_connect_failed.
struct Connect {
  std::uint64_t attempt = 0;  // 1, 2, ... since the last successful auth
  friend bool operator==(const Connect&, const Connect&) = default;
};
// Write one binary WebSocket message. When everything handed out has been written, call
// on_flushed().
struct SendFrame {
  Bytes frame;
  friend bool operator==(const SendFrame&, const SendFrame&) = default;
};
// Close the current WebSocket with `code` (1000 normal) after flushing; no on_disconnected needed.
struct CloseConnection {
  std::uint16_t code = 1000;
  std::string reason;
  friend bool operator==(const CloseConnection&, const CloseConnection&) = default;
};
// A datagram from `src` (payload is segment_size-strided when segment_size is set).
struct Received {
  EndpointId src;
  std::uint8_t ecn = ecn::kNotEct;
  std::optional<std::uint16_t> segment_size;
  Bytes payload;
  friend bool operator==(const Received&, const Received&) = default;
};
struct ClientEvent {
  enum class Kind {
    Connected,         // authenticated (detail: "challenge" / "key-material")
    Denied,            // terminal; detail = the server's reason
    Disconnected,      // detail = why
    ConnectFailed,     // a dial failed (DNS, TCP, TLS, HTTP, subprotocol, timeout); detail = why
    Reconnecting,      // detail = delay in ms until the next dial
    PingTimeout,       // a Pong did not arrive in time ("reconnect needed")
    EndpointGone,      // endpoint = the peer
    Status,            // status = the code (SameEndpointIdConnected, RateLimited, Healthy, unknown)
    Health,            // v1; detail = problem text
    Restarting,        // detail = "reconnect_in_ms/try_for_ms"
    DatagramsDropped,  // count = datagrams dropped (too old or queue full)
    Closed,            // close() done
  };
  Kind kind = Kind::Connected;
  std::string detail;
  std::optional<EndpointId> endpoint;
  std::uint8_t status = 0;
  std::uint64_t count = 0;
  friend bool operator==(const ClientEvent&, const ClientEvent&) = default;
};
std::string_view to_string(ClientEvent::Kind kind);

using ClientAction = std::variant<Connect, SendFrame, CloseConnection, Received, ClientEvent>;
using ClientActions = std::vector<ClientAction>;

struct ClientMetrics {
  std::uint64_t connects = 0;  // Connect emitted
  std::uint64_t connected = 0;
  std::uint64_t auth_challenge = 0;
  std::uint64_t auth_key_material = 0;
  std::uint64_t pings_sent = 0;
  std::uint64_t pongs_received = 0;
  std::uint64_t pongs_sent = 0;
  std::uint64_t ping_timeouts = 0;
  std::uint64_t datagrams_sent = 0;
  std::uint64_t datagrams_received = 0;
  std::uint64_t drops_too_old = 0;
  std::uint64_t drops_queue_full = 0;
  std::uint64_t protocol_errors = 0;
  std::uint64_t restarts = 0;
};

class ClientCore {
 public:
  ClientCore(SecretKey secret_key, ClientConfig config, Random& random);

  ClientState state() const { return state_; }
  const ClientMetrics& metrics() const { return metrics_; }
  const EndpointId& endpoint_id() const { return secret_key_.public_key(); }
  // How the current (or last) connection authenticated.
  AuthMethod auth_method() const { return auth_method_; }
  std::optional<ProtocolVersion> version() const { return version_; }
  // The reason of ServerDeniesAuth once Denied.
  const std::optional<std::string>& denial_reason() const { return denial_; }
  std::size_t queued_datagrams() const { return queue_.size(); }

  ClientActions start(Instant now);
  ClientActions on_connected(ProtocolVersion version, bool key_material_header_sent, Instant now);
  ClientActions on_connect_failed(std::string_view reason, Instant now);
  ClientActions on_message(ByteView message, Instant now);
  ClientActions on_flushed(Instant now);
  ClientActions on_disconnected(std::string_view reason, Instant now);
  std::optional<Instant> next_timeout() const;
  ClientActions on_timeout(Instant now);
  // Queue a datagram for `dst`. segment_size set (non-zero) → batch form (GSO stride).
  ClientActions send(const EndpointId& dst, Bytes payload, std::uint8_t ecn, Instant now,
                     std::optional<std::uint16_t> segment_size = std::nullopt);
  ClientActions close(Instant now);

 private:
  struct Outgoing {
    EndpointId dst;
    std::uint8_t ecn = 0;
    std::optional<std::uint16_t> segment_size;
    Bytes payload;
    Instant queued_at{};
  };

  void emit_frame(ClientActions& out, const Frame& frame);
  void on_authenticated(ClientActions& out, AuthMethod method, Instant now);
  void send_ping(ClientActions& out, Instant now);
  void pump(ClientActions& out, Instant now);
  void drop_old(ClientActions& out, Instant now);
  // Drop the current connection (closing it if `close_code`) and schedule a re-dial.
  void lose_connection(ClientActions& out, std::string reason, Instant now,
                       std::optional<std::uint16_t> close_code, std::optional<Duration> delay);
  Duration next_backoff();
  void handle_frame(ClientActions& out, Frame frame, Instant now);

  SecretKey secret_key_;
  ClientConfig config_;
  Random& random_;
  ClientMetrics metrics_;
  ClientState state_ = ClientState::Idle;
  std::optional<ProtocolVersion> version_;
  AuthMethod auth_method_ = AuthMethod::None;
  std::optional<std::string> denial_;
  bool challenge_answered_ = false;
  Instant handshake_deadline_{};
  // reconnects
  std::uint64_t attempt_ = 0;
  std::uint32_t backoff_exp_ = 0;
  Instant retry_at_{};
  std::optional<Instant> restart_until_;  // Restarting's try_for window
  // pings
  Instant next_ping_{};
  std::optional<ByteArray<kPingSize>> ping_outstanding_;
  Instant ping_deadline_{};
  // datagrams
  std::deque<Outgoing> queue_;
  bool batch_in_flight_ = false;
  std::size_t unflushed_ = 0;  // frames handed out on this connection, not yet flushed
};

}  // namespace iroh::relay

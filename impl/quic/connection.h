// Connection: one QUIC v1 connection (RFC 9000/9001/9002, RFC 9221), sans-IO.
//
// The driver (impl/io, sim/, tests) owns sockets and clocks and moves bytes and time in and out:
//
//   handle_datagram(now, from, bytes, ecn)   a UDP datagram routed to this connection
//   poll_transmit(now, buf)                  the next datagram(s) to send, or nothing
//   next_timeout() / handle_timeout(now)     the single timer the connection needs
//   poll_event()                             what the application should learn about
//
// plus the application API (streams, datagrams, close). Nothing here reads a clock, touches a
// socket, starts a thread or calls a global RNG: `now` is passed in and randomness comes from the
// Random& given at construction. Run the same byte/time sequence twice and the connection does the
// same thing twice (the TLS library's own key-share randomness aside).
//
// Paths (draft-ietf-quic-multipath, as noq implements it; spec §4.6): RTT, congestion control,
// pacing, MTU, the application-data packet number space, keep-alive and idle timers live in a
// Path; the Initial and Handshake spaces exist only on path 0 and live in the connection. Without
// multipath there is exactly one path (id 0) and the wire is plain RFC 9000. With it, each path
// has its own connection IDs, packet numbers and per-path AEAD nonce; the client opens paths
// (open_path), either side abandons them, and application data goes on the best validated path
// whose local status is Available (Backup paths only when no Available path exists).
//
// n0 NAT traversal (QNT, spec §5) rides on multipath: the server announces candidate addresses
// (add_nat_traversal_address → ADD_ADDRESS), the client starts rounds
// (initiate_nat_traversal_round → REACH_OUT) and both probe the other's candidates with unpadded
// PATH_CHALLENGEs on path 0's CID. A probe answered from the probed address makes the client open
// a path there. Policy — which addresses, when to start rounds, which path is selected — belongs
// to the endpoint (impl/quic/path_selector.h, impl/io/quic_endpoint).
//
// What is implemented (RFC section in brackets where it is a MUST):
//   - Initial/Handshake/1-RTT spaces, coalescing, CRYPTO reassembly, key discard [9001 §4.9],
//     1-RTT key update on receipt [9001 §6], Retry on the client [9000 §17.2.5, 9001 §5.8],
//     Version Negotiation on the client (abort: we speak only v1) [9000 §6.2];
//   - transport parameters (iroh's set), CID authentication [9000 §7.3];
//   - streams with flow control and auto-tuned windows, stream limits, RESET_STREAM/STOP_SENDING,
//     priorities; DATAGRAM [9221]; ACK_FREQUENCY / IMMEDIATE_ACK accepted;
//   - ACKs, loss detection and PTO [9002 §6], NewReno/Cubic, pacing, ECN validation [9000 §13.4];
//   - connection IDs (NEW/RETIRE, limit 5), stateless reset (tokens issued, resets detected),
//     path validation and migration of the peer's address [9000 §9], anti-amplification [§8.1];
//   - PMTU discovery 1200 → 1452 (DPLPMTUD-style probes, RFC 8899);
//   - idle timeout (min of both sides, ≥ 3 PTO) and keep-alive PINGs (iroh: 5 s);
//   - CONNECTION_CLOSE (transport and application), closing/draining periods [9000 §10.2].
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/key.h"
#include "base/random.h"
#include "base/result.h"
#include "base/socket_addr.h"
#include "base/time.h"
#include "crypto/tls.h"
#include "quic/congestion.h"
#include "quic/error.h"
#include "quic/packet.h"
#include "quic/stream_id.h"
#include "quic/transport_params.h"

namespace iroh::quic {

using namespace std::chrono_literals;

// One qlog event (draft-ietf-quic-qlog-main-schema): the connection produces them, a writer in
// the driver serialises them (JSON-SEQ). `data` is a JSON object body, already serialised.
struct QlogEvent {
  Instant time;
  std::string name;  // "transport:packet_sent", "recovery:metrics_updated", ...
  std::string data;  // JSON object text
};
using QlogSink = std::function<void(const QlogEvent&)>;

struct ConnectionConfig {
  Role role = Role::kClient;
  std::optional<SecretKey> secret_key;  // required (the endpoint fills it in)
  // Client: the key the server must present, and the one ALPN offered.
  EndpointId expected_server;
  std::string alpn;
  // Server: accepted ALPNs, in preference order.
  std::vector<std::string> alpns;

  Duration idle_timeout = 30s;  // our max_idle_timeout transport parameter
  Duration keep_alive = 5s;     // PING when nothing ack-eliciting was sent for this long; 0 = off
  Duration initial_rtt = 333ms;
  Duration handshake_timeout = 10s;  // client: give up if the handshake is not done by then
  CongestionAlgorithm congestion = CongestionAlgorithm::kCubic;
  std::uint64_t initial_mtu = 1200;  // UDP payload bytes
  std::uint64_t max_mtu = 1452;      // PMTU discovery upper bound (iroh)
  bool pmtu_discovery = true;
  bool ecn = true;
  bool pacing = true;

  // Flow control. Initial windows are advertised in the transport parameters; the receive windows
  // grow up to the max_* values when the application reads quickly (auto-tuning).
  std::uint64_t stream_receive_window = 1'250'000;
  std::uint64_t max_stream_receive_window = 16 * 1024 * 1024;
  std::uint64_t connection_receive_window = (std::uint64_t{1} << 62) - 1;  // iroh: unlimited
  std::uint64_t max_concurrent_bidi_streams = 100;
  std::uint64_t max_concurrent_uni_streams = 100;
  std::uint64_t stream_send_buffer = 16 * 1024 * 1024;  // per stream
  std::uint64_t max_datagram_frame_size = 65535;        // 0 = DATAGRAM disabled
  std::size_t datagram_receive_buffer = 1 << 20;        // bytes queued for the app
  std::size_t datagram_send_buffer = 1 << 20;

  // 32 bytes keying the stateless reset tokens this endpoint issues (shared by all connections of
  // an endpoint so that it can reset connections it has forgotten).
  ByteArray<32> reset_key{};
  // SSLKEYLOGFILE support (see crypto::TlsSession::set_keylog_callback).
  crypto::KeylogCallback keylog;
  QlogSink qlog;

  // TLS profile. Unset: iroh's raw-public-key profile (secret_key, expected_server). Set: the
  // WebPKI profile of the relay's QUIC address discovery service (spec §6.9) — a server presents
  // `credentials` (certificate chain + key), a client verifies the server against
  // `credentials` (trust anchors) and `server_name` (DNS name or IP literal); expected_server
  // and secret_key are then unused. Credentials are shared, read-only, by every connection.
  struct X509Tls {
    std::shared_ptr<const crypto::X509Credentials> credentials;
    std::string server_name;  // client only
  };
  std::optional<X509Tls> x509;
  // QUIC address discovery (draft-ietf-quic-address-discovery, TP 0x9f81a176). Unset: not
  // announced, OBSERVED_ADDRESS is a protocol violation. kSendOnly / kBoth: we report the peer's
  // address (as we see it, per path) to a peer that asked (kReceiveOnly / kBoth). kReceiveOnly /
  // kBoth: we accept reports (observed_address()). The relay's QAD server is kSendOnly, its
  // clients kReceiveOnly.
  std::optional<AddressDiscoveryRole> observed_address;

  // draft-ietf-quic-multipath: announce initial_max_path_id (iroh: 7). Multipath is on iff both
  // sides announce it. 0 = do not announce (single-path RFC 9000 behaviour).
  std::uint32_t max_path_id = 7;
  // n0 NAT traversal: announce TP 0x3d7f91120401 with this many addresses (iroh: 32); 0 = off.
  // Needs multipath.
  std::uint8_t nat_traversal_addresses = 32;
  // A path on which nothing arrives for this long is abandoned (iroh: 15 s for IP paths; the
  // endpoint gives relay paths 30 s with set_path_idle_timeout). 0 = only the connection idles.
  Duration path_idle_timeout = 15s;
};

// draft-ietf-quic-multipath path status: Available paths carry application data, Backup paths
// only when no Available path is usable.
enum class PathStatus : std::uint8_t { kAvailable, kBackup };

// The stateless reset token of a CID under `reset_key` (keyed BLAKE3, truncated).
ByteArray<16> stateless_reset_token(const ByteArray<32>& reset_key, ByteView cid);

// Why a connection ended.
struct CloseReason {
  enum class Kind : std::uint8_t {
    kLocalApplication,  // we called close()
    kLocalTransport,    // we detected a protocol error
    kPeerApplication,   // CONNECTION_CLOSE 0x1d
    kPeerTransport,     // CONNECTION_CLOSE 0x1c
    kIdleTimeout,
    kHandshakeTimeout,
    kStatelessReset,
    kVersionMismatch,  // the server does not speak v1
  };
  Kind kind = Kind::kLocalApplication;
  std::uint64_t code = 0;
  std::uint64_t frame_type = 0;
  std::string reason;
  // TLS failures (CRYPTO_ERROR) of our own: the alert, to tell "key mismatch" from "ALPN" etc.
  std::optional<std::uint8_t> tls_alert;

  bool by_peer() const { return kind == Kind::kPeerApplication || kind == Kind::kPeerTransport; }
  bool application() const {
    return kind == Kind::kLocalApplication || kind == Kind::kPeerApplication;
  }
  // One line for logs and CLI errors: "peer closed: application code 7: srv-bye".
  std::string describe() const;
};

namespace event {
struct HandshakeCompleted {};
struct StreamOpened {  // the peer opened a stream: accept_stream() returns it
  std::uint64_t id;
};
struct StreamReadable {
  std::uint64_t id;
};
struct StreamWritable {  // buffer space or flow-control credit became available
  std::uint64_t id;
};
struct StreamStopped {  // the peer sent STOP_SENDING (our send side is now reset)
  std::uint64_t id;
  std::uint64_t code;
};
struct StreamsAvailable {  // the peer raised MAX_STREAMS: open_stream may succeed again
  StreamDirection direction;
};
struct DatagramReceived {};
struct CidIssued {  // the endpoint must route this CID to this connection
  ConnectionId cid;
  ByteArray<16> reset_token;
};
struct CidRetired {
  ConnectionId cid;
};
struct AddressObserved {  // QAD: the peer reported a new address for us (observed_address())
  SocketAddr address;
  std::uint64_t sequence;
};
struct PathOpened {  // a multipath path was validated and may carry data (both sides)
  std::uint32_t id;
  SocketAddr remote;
};
struct PathAbandoned {  // a path was abandoned (by either side, or it idled out)
  std::uint32_t id;
  std::uint64_t code;
};
struct NatTraversalUpdated {  // QNT client: the server's candidate addresses changed
};
struct Closed {  // terminal: the connection is draining or gone; close_reason() has details
  CloseReason reason;
};
}  // namespace event

using ConnectionEvent =
    std::variant<event::HandshakeCompleted, event::StreamOpened, event::StreamReadable,
                 event::StreamWritable, event::StreamStopped, event::StreamsAvailable,
                 event::DatagramReceived, event::CidIssued, event::CidRetired,
                 event::AddressObserved, event::PathOpened, event::PathAbandoned,
                 event::NatTraversalUpdated, event::Closed>;

// What poll_transmit() produced: `size` bytes at the start of the buffer, to `dest`, with the ECN
// codepoint `ecn` (IP TOS low bits). If size > segment_size the buffer holds several datagrams of
// segment_size bytes (the last may be shorter): send them with GSO or one by one.
struct Transmit {
  SocketAddr dest;
  std::uint8_t ecn = 0;
  std::size_t size = 0;
  std::size_t segment_size = 0;
};

struct StreamReadResult {
  std::size_t bytes = 0;
  bool fin = false;  // the stream ended: everything has been read
};

struct PathStats {
  std::uint32_t id = 0;
  SocketAddr remote;
  PathStatus status = PathStatus::kAvailable;  // ours
  bool abandoned = false;
  bool has_rtt = false;
  std::uint64_t packets_sent = 0, packets_received = 0;
  Duration rtt{};  // smoothed
  Duration min_rtt{};
  std::uint64_t cwnd = 0;
  std::uint64_t mtu = 0;
  bool validated = false;
  // QAD: our own address as the peer last reported it on this path (OBSERVED_ADDRESS).
  std::optional<SocketAddr> observed;
};

struct ConnectionStats {
  std::uint64_t packets_sent = 0, packets_received = 0, packets_lost = 0;
  std::uint64_t bytes_sent = 0, bytes_received = 0;  // UDP payload bytes
  std::uint64_t stream_bytes_sent = 0, stream_bytes_received = 0;
  std::uint64_t datagrams_sent = 0, datagrams_received = 0, datagrams_dropped = 0;
  std::uint64_t pto_count = 0, congestion_events = 0, key_updates = 0;
  std::uint64_t observed_addresses_sent = 0, observed_addresses_received = 0;  // QAD frames
  // Why poll_transmit stopped short (diagnostics for throughput work).
  std::uint64_t blocked_cwnd = 0, blocked_pacing = 0, blocked_flow_control = 0;
  std::uint64_t nat_probes_sent = 0, nat_probe_responses = 0, paths_opened = 0, paths_abandoned = 0;
  PathStats path;  // the path application data goes on now
};

class Connection {
 public:
  // A client connection to `remote`. `dcid`/`scid` are the random initial DCID (≥ 8 bytes) and our
  // source CID (the endpoint chooses it so that it can route replies).
  static Result<std::unique_ptr<Connection>> connect(ConnectionConfig config, Instant now,
                                                     Random& random, const SocketAddr& remote,
                                                     const ConnectionId& dcid,
                                                     const ConnectionId& scid);
  // A server connection for a client Initial: `original_dcid` is the DCID of the client's first
  // Initial, `client_scid` its SCID, `scid` the CID we choose. If the server sent a Retry,
  // `retry_scid` is the SCID of that Retry and `original_dcid` the DCID from before it.
  static Result<std::unique_ptr<Connection>> accept(ConnectionConfig config, Instant now,
                                                    Random& random, const SocketAddr& remote,
                                                    const ConnectionId& original_dcid,
                                                    const ConnectionId& client_scid,
                                                    const ConnectionId& scid,
                                                    std::optional<ConnectionId> retry_scid = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // ---- driver interface ----
  // A datagram addressed to one of our CIDs (the bytes are decrypted in place; hence mutable).
  void handle_datagram(Instant now, const SocketAddr& from, std::span<std::uint8_t> datagram,
                       std::uint8_t ecn = 0);
  // Writes up to `max_datagrams` datagrams for one destination into `buf` (which must hold at
  // least max_datagrams × 1452 bytes... any size ≥ 1200 works; fewer fit in smaller buffers).
  std::optional<Transmit> poll_transmit(Instant now, std::span<std::uint8_t> buf,
                                        std::size_t max_datagrams = 1);
  std::optional<Instant> next_timeout() const;
  void handle_timeout(Instant now);
  std::optional<ConnectionEvent> poll_event();

  // ---- state ----
  Role role() const;
  bool is_handshake_complete() const;
  bool is_handshake_confirmed() const;  // RFC 9001 §4.1.2 (client: HANDSHAKE_DONE received)
  // Closed or draining: no more application data either way. is_drained(): the connection can be
  // forgotten (closing/draining period over).
  bool is_closed() const;
  bool is_drained() const;
  const std::optional<CloseReason>& close_reason() const;
  std::optional<EndpointId> peer_id() const;
  std::optional<std::string> alpn() const;
  SocketAddr remote_address() const;
  // QAD: the latest address the peer reported for us (OBSERVED_ADDRESS with the highest sequence
  // number so far), once one arrived. An event::AddressObserved announces each change.
  std::optional<SocketAddr> observed_address() const;
  ConnectionStats stats() const;
  // The CIDs the peer uses to reach us (for the endpoint's routing table, initially).
  std::vector<ConnectionId> local_cids() const;
  // Changes whenever local_cids() does, so an endpoint can skip re-reading an unchanged set.
  std::uint64_t cid_epoch() const;
  // A stateless reset arriving for us (the endpoint checks unroutable datagrams against these).
  bool matches_reset_token(ByteView datagram) const;
  // The endpoint found a datagram carrying our peer's reset token: the connection is over
  // (RFC 9000 §10.3.1), it drains without sending anything.
  void handle_stateless_reset(Instant now);

  // ---- paths (draft-ietf-quic-multipath) ----
  bool multipath_enabled() const;      // both sides announced initial_max_path_id
  bool nat_traversal_enabled() const;  // both announced QNT, and multipath is on
  // Every path not yet forgotten (abandoned ones linger for 3 PTO), by id.
  std::vector<PathStats> paths() const;
  // Client: opens a path to `remote` (PATH_CHALLENGE on a fresh path id); event::PathOpened when
  // it validates. Errors: not a multipath client, no free path id or no peer CID for it yet.
  Result<std::uint32_t> open_path(Instant now, const SocketAddr& remote, PathStatus status);
  // Our status for a path (PATH_STATUS_AVAILABLE / PATH_STATUS_BACKUP to the peer).
  Result<void> set_path_status(std::uint32_t id, PathStatus status);
  // PATH_ABANDON with `code`; the path's state is forgotten 3 PTO later.
  Result<void> close_path(Instant now, std::uint32_t id, std::uint64_t code);
  // Per-path idle timeout (0 = none); the default is ConnectionConfig::path_idle_timeout.
  Result<void> set_path_idle_timeout(std::uint32_t id, Duration timeout);

  // ---- n0 NAT traversal (spec §5) ----
  // Server: announce / withdraw a candidate address (ADD_ADDRESS / REMOVE_ADDRESS). Adding a
  // known address is a no-op. Error when QNT is off, on a client, or beyond the peer's limit.
  Result<void> add_nat_traversal_address(const SocketAddr& address);
  Result<void> remove_nat_traversal_address(const SocketAddr& address);
  // Client: a new round — REACH_OUT for each of our candidates and probes to every server
  // candidate. Returns the round number.
  Result<std::uint64_t> initiate_nat_traversal_round(Instant now,
                                                     const std::vector<SocketAddr>& local);
  // Client: the server's current candidates (from ADD_ADDRESS). Server: the client's, this round.
  std::vector<SocketAddr> nat_traversal_remote_addresses() const;

  // ---- application interface ----
  // Opens a stream; nullopt when the peer's stream limit is reached (wait for StreamsAvailable).
  std::optional<std::uint64_t> open_stream(StreamDirection dir);
  // The next stream the peer opened, if any.
  std::optional<std::uint64_t> accept_stream(StreamDirection dir);
  // Buffers data; returns how much was accepted (0 when the buffer is full; wait for
  // StreamWritable). Errors: unknown stream, not writable by us, finished or reset.
  Result<std::size_t> stream_write(std::uint64_t id, ByteView data);
  Result<void> stream_finish(std::uint64_t id);
  Result<void> stream_reset(std::uint64_t id, std::uint64_t code);
  // Reads in-order bytes. bytes == 0 && !fin: nothing available now (wait for StreamReadable).
  // Error when the peer reset the stream ("reset by peer with code N").
  Result<StreamReadResult> stream_read(std::uint64_t id, std::span<std::uint8_t> out);
  Result<void> stream_stop_sending(std::uint64_t id, std::uint64_t code);
  // Higher priority streams are sent first; equal priorities round-robin. Default 0.
  Result<void> stream_set_priority(std::uint64_t id, int priority);
  // Bytes the stream can buffer now (0 if closed).
  std::uint64_t stream_writable(std::uint64_t id) const;
  // Whether everything written on the stream has been acknowledged.
  bool stream_all_acked(std::uint64_t id) const;

  // DATAGRAM frames [RFC 9221]. Error if the peer does not accept datagrams or it is too large for
  // the current path MTU (max_datagram_size()). The oldest queued datagram is dropped when the
  // send buffer is full.
  Result<void> send_datagram(ByteView data);
  std::optional<Bytes> recv_datagram();
  std::size_t max_datagram_size() const;

  // Closes with an application error code and reason [RFC 9000 §10.2]. Idempotent.
  void close(Instant now, std::uint64_t code, std::string_view reason);

  // Starts a 1-RTT key update [RFC 9001 §6] (tests; the engine also does this by itself before
  // the AEAD confidentiality limit). Error before the handshake is confirmed or while one is
  // still unacknowledged.
  Result<void> initiate_key_update();

  struct Impl;

 private:
  explicit Connection(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace iroh::quic

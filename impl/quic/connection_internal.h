// Internal state of quic::Connection, shared by its translation units (connection.cc: setup,
// receive path and API; connection_send.cc: packet assembly; connection_timers.cc: recovery and
// timers). Not part of the public API.
#pragma once

#include <array>
#include <boost/container/small_vector.hpp>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "crypto/packet_protection.h"
#include "crypto/tls.h"
#include "quic/ack_tracker.h"
#include "quic/congestion.h"
#include "quic/connection.h"
#include "quic/ecn.h"
#include "quic/flow_control.h"
#include "quic/frame.h"
#include "quic/nat_traversal.h"
#include "quic/pacer.h"
#include "quic/range_set.h"
#include "quic/recv_stream.h"
#include "quic/rtt_estimator.h"
#include "quic/send_stream.h"
#include "quic/sent_packets.h"
#include "quic/stream_id.h"

namespace iroh::quic::detail {

inline constexpr std::size_t kLocalCidLength = 8;  // iroh's CID length (spec §4.1)
inline constexpr std::size_t kMinInitialDatagram = 1200;
inline constexpr std::size_t kTagLength = 16;
inline constexpr std::uint64_t kAckDelayExponent = 3;  // ours (RFC default, not sent)
inline constexpr Duration kMaxAckDelay = 25ms;         // ours (RFC default, not sent)
inline constexpr std::uint64_t kActiveCidLimit = 5;    // iroh
inline constexpr std::size_t kMaxBufferedUndecryptable = 8;

enum class SpaceId : std::uint8_t { kInitial = 0, kHandshake = 1, kApplication = 2 };
inline const char* space_name(SpaceId s) {
  switch (s) {
    case SpaceId::kInitial:
      return "initial";
    case SpaceId::kHandshake:
      return "handshake";
    case SpaceId::kApplication:
      return "application";
  }
  return "?";
}

// A range of stream (or CRYPTO) bytes carried by a sent packet, to be marked acked or lost.
struct SentStreamRange {
  std::uint64_t stream_id;
  std::uint64_t offset;
  std::uint64_t length;
  bool fin;
};

// What a sent packet carried that must be redone if it is lost (RFC 9000 §13.3): data is
// retransmitted, control frames are re-sent with their *current* values.
struct SentFrames {
  // Inline capacity for the common case (one stream range per packet): no allocation per packet.
  boost::container::small_vector<SentStreamRange, 2> streams;
  boost::container::small_vector<std::pair<std::uint64_t, std::uint64_t>, 1> crypto;  // off, len
  std::optional<std::uint64_t> ack_largest;  // the packet held an ACK up to this pn
  bool handshake_done = false;
  bool max_data = false;
  std::vector<std::uint64_t> max_stream_data;  // stream ids
  bool max_streams_bidi = false;
  bool max_streams_uni = false;
  std::vector<std::pair<std::uint32_t, std::uint64_t>> new_cids;     // (path id, sequence)
  std::vector<std::pair<std::uint32_t, std::uint64_t>> retire_cids;  // (path id, sequence)
  std::vector<std::uint32_t> path_abandons;                          // PATH_ABANDON for these paths
  std::vector<std::uint32_t> path_statuses;  // PATH_STATUS_* for these paths
  bool max_path_id = false;
  std::vector<std::uint64_t> add_addresses;      // QNT ADD_ADDRESS sequence numbers
  std::vector<std::uint64_t> remove_addresses;   // QNT REMOVE_ADDRESS sequence numbers
  std::optional<std::uint64_t> reach_out_round;  // QNT REACH_OUTs of this round
  std::vector<std::uint64_t> reset_streams;
  std::vector<std::uint64_t> stop_sendings;
  std::size_t pmtu_probe = 0;     // the probed size, when this was a PMTU probe
  bool key_phase_flip = false;    // first packet of a new key phase
  bool observed_address = false;  // carried an OBSERVED_ADDRESS (QAD)
  bool path_challenge = false;    // carried its path's PATH_CHALLENGE
};

// Out-of-order CRYPTO bytes of one level, delivered in order to TLS.
struct CryptoReassembly {
  std::uint64_t delivered = 0;  // bytes handed to TLS
  std::map<std::uint64_t, Bytes> pending;
  std::size_t pending_bytes = 0;
};

// One packet number space: keys, received packets (ACKs), sent packets (loss detection), CRYPTO.
struct PacketSpace {
  explicit PacketSpace(SpaceId id);
  SpaceId id;
  std::optional<crypto::PacketProtection> tx;
  std::optional<crypto::PacketProtection> rx;
  AckTracker acks;
  SentPackets sent;
  std::map<std::uint64_t, SentFrames> sent_frames;
  std::uint64_t next_pn = 0;
  std::optional<std::uint64_t> largest_rx;
  bool discarded = false;
  unsigned probes_pending = 0;
  SendStream crypto_send;
  CryptoReassembly crypto_recv;
};

// One network path. Multipath adds more of these; everything per-path lives here.
struct Path {
  Path(const ConnectionConfig& config, const SocketAddr& remote, std::uint32_t id);
  std::uint32_t id = 0;
  SocketAddr remote;
  RttEstimator rtt;
  std::unique_ptr<CongestionController> cc;
  Pacer pacer;
  EcnValidator ecn;
  PacketSpace app{SpaceId::kApplication};
  std::uint64_t mtu;
  bool validated = false;
  // Anti-amplification (RFC 9000 §8): before validation send ≤ 3 × received.
  std::uint64_t bytes_received = 0;
  std::uint64_t bytes_sent = 0;
  std::optional<ByteArray<8>> challenge;  // outstanding PATH_CHALLENGE data
  std::optional<Instant> challenge_deadline;
  bool challenge_pending = false;  // must (re)send the challenge
  std::optional<Instant> first_rtt_sample;
  bool app_limited = true;
  // PMTU discovery.
  std::uint64_t pmtu_max;
  std::uint64_t pmtu_probe_size = 0;  // in flight, 0 = none
  unsigned pmtu_failures = 0;
  std::optional<Instant> pmtu_next_probe;
  // QAD: an OBSERVED_ADDRESS for the current remote address went out (reset when it changes).
  bool observed_address_sent = false;

  // Loss recovery and liveness, per path (RFC 9002 per path, as the multipath draft asks).
  unsigned pto_backoff = 0;  // RFC 9002 pto_count: consecutive PTOs without an ACK
  std::optional<Instant> last_ack_eliciting_sent;
  bool ping_pending = false;
  Instant last_rx{};  // per-path idle timer base
  bool received_since_send = false;
  Duration idle_timeout{0};  // 0: the connection's idle timer only
  std::uint64_t packets_sent = 0, packets_received = 0;

  // Multipath.
  PathStatus status = PathStatus::kAvailable;  // ours
  std::uint64_t status_seq = 0;                // of the last PATH_STATUS_* we sent
  bool status_pending = false;
  std::uint64_t peer_status_seq = 0;
  bool opened_event_sent = false;  // event::PathOpened delivered
  bool abandoned = false;
  bool abandon_pending = false;  // PATH_ABANDON still to send
  bool abandon_sent = false;
  std::uint64_t abandon_code = 0;
  std::optional<Instant> discard_at;  // abandoned: forget the path then
};

// The connection IDs of one path (draft multipath: every path has its own sequence space).

struct StreamEntry {
  std::optional<SendStream> send;
  std::optional<RecvStream> recv;
  int priority = 0;
  bool queued = false;  // in the send schedule
  bool pending_max_stream_data = false;
  bool max_stream_data_lost = false;  // a MAX_STREAM_DATA was lost: repeat the current limit
  std::optional<std::uint64_t> blocked_sent_at;
  bool accepted = false;  // peer-initiated: handed to the app via accept_stream
};

struct PeerCid {
  Bytes cid;
  ByteArray<16> reset_token{};
  bool has_reset_token = false;
};

struct LocalCid {
  ConnectionId cid;
  ByteArray<16> reset_token{};
};

// CIDs the peer issued to us for one path, and what we owe it.
struct PeerCids {
  std::map<std::uint64_t, PeerCid> cids;  // seq -> cid
  std::uint64_t in_use = 0;               // the one we send with
  std::uint64_t retire_prior_to = 0;
  std::set<std::uint64_t> pending_retire;  // seqs to send (PATH_)RETIRE_CONNECTION_ID for
};

// CIDs we issued for one path.
struct LocalCids {
  std::map<std::uint64_t, LocalCid> cids;  // seq -> cid
  std::uint64_t next_seq = 0;
  std::set<std::uint64_t> pending_new;  // seqs to send (PATH_)NEW_CONNECTION_ID for
};

}  // namespace iroh::quic::detail

namespace iroh::quic {

using detail::PacketSpace;
using detail::Path;
using detail::SentFrames;
using detail::SpaceId;
using detail::StreamEntry;

struct Connection::Impl {
  Impl(ConnectionConfig cfg, Random& rng);

  // ---- setup (connection.cc) ----
  Result<void> init_tls(Instant now);
  Result<void> install_initial_keys(const ConnectionId& dcid);
  Bytes local_transport_params() const;

  // ---- receive (connection.cc) ----
  void on_datagram(Instant now, const SocketAddr& from, std::span<std::uint8_t> data,
                   std::uint8_t ecn);
  void on_packet(Instant now, const SocketAddr& from, std::span<std::uint8_t> packet,
                 const ParsedHeader& parsed, std::uint8_t ecn, std::size_t datagram_size);
  QuicResult<void> on_frames(Instant now, Path& path, PacketSpace& space, const SocketAddr& from,
                             ByteView payload, PacketKind kind, bool& ack_eliciting,
                             bool& non_probing);
  QuicResult<void> on_frame(Instant now, Path& path, PacketSpace& space, const SocketAddr& from,
                            const Frame& f);
  QuicResult<void> on_multipath_frame(Instant now, Path& path, const SocketAddr& from,
                                      const Frame& f);
  QuicResult<void> on_ack(Instant now, Path& path, PacketSpace& space, const frame::Ack& ack);
  QuicResult<void> on_crypto(Instant now, PacketSpace& space, const frame::Crypto& c);
  QuicResult<void> drive_tls(Instant now);
  QuicResult<void> on_peer_params(Instant now, ByteView raw);
  QuicResult<void> on_stream_frame(const frame::Stream& s);
  QuicResult<StreamEntry*> stream_for_frame(std::uint64_t id, bool peer_sends);
  void on_handshake_complete(Instant now);
  void confirm_handshake(Instant now);
  void discard_space(Instant now, PacketSpace& space);
  void on_retry(Instant now, ByteView datagram, const ParsedHeader& parsed);
  void on_version_negotiation(Instant now, const ParsedHeader& parsed);
  void on_packet_acked(Instant now, Path& path, PacketSpace& space, const SentPacketMeta& meta,
                       SentFrames& frames);
  void on_packet_lost(Instant now, Path& path, PacketSpace& space, const SentPacketMeta& meta,
                      SentFrames& frames, bool congestion_loss);
  void maybe_close_stream(std::uint64_t id);
  void migrate_to(Instant now, Path& path, const SocketAddr& from);

  // ---- multipath (connection_paths.cc) ----
  Path* find_path(std::uint32_t id);
  const Path* find_path(std::uint32_t id) const;
  // The path a locally issued CID belongs to (nullopt: not one of ours).
  std::optional<std::uint32_t> path_of_local_cid(const ConnectionId& dcid) const;
  // The path application data goes on now: the lowest-RTT validated Available path, else a
  // validated Backup path, else path 0 (before validation).
  Path& send_path();
  const Path& send_path() const;
  bool path_wants_to_send(Instant now, const Path& p) const;
  bool owes_response_on(const Path& p) const;  // an on-path PATH_RESPONSE is due on `p`
  Path* new_path(Instant now, std::uint32_t id, const SocketAddr& remote);
  void issue_local_cids(std::uint32_t path_id, std::size_t want);
  void issue_path_cids();  // after the handshake: CIDs for every path id we allow
  void abandon_path(Instant now, Path& p, std::uint64_t code, bool send);
  Result<std::uint32_t> open_path_internal(Instant now, const SocketAddr& remote,
                                           PathStatus status);
  void discard_abandoned_paths(Instant now);
  void on_path_validated(Instant now, Path& p);
  std::uint32_t max_path_id_in_use() const;  // what the peer may use (min of both limits)
  std::size_t build_nat_probe(Instant now, std::span<std::uint8_t> out, SocketAddr& dest);
  crypto::PacketProtection* tx_keys(PacketSpace& sp) {
    if (sp.id != SpaceId::kApplication) return sp.tx ? &*sp.tx : nullptr;
    return one_rtt_tx ? &*one_rtt_tx : nullptr;
  }
  crypto::PacketProtection* rx_keys(PacketSpace& sp) {
    if (sp.id != SpaceId::kApplication) return sp.rx ? &*sp.rx : nullptr;
    return one_rtt_rx ? &*one_rtt_rx : nullptr;
  }
  bool has_tx(const PacketSpace& sp) const {
    return sp.id != SpaceId::kApplication ? sp.tx.has_value() : one_rtt_tx.has_value();
  }

  // ---- send (connection_send.cc) ----
  std::optional<Transmit> poll_transmit(Instant now, std::span<std::uint8_t> buf,
                                        std::size_t max_datagrams);
  std::optional<Transmit> transmit_on(Instant now, Path& p, bool data, std::span<std::uint8_t> buf,
                                      std::size_t max_datagrams);
  std::size_t build_datagram(Instant now, Path& p, bool data, std::span<std::uint8_t> out,
                             bool& ack_eliciting_sent, std::size_t pad_to = 0);
  std::size_t build_close_datagram(Instant now, Path& p, std::span<std::uint8_t> out);
  std::size_t build_path_probe(Instant now, std::span<std::uint8_t> out, SocketAddr& dest);
  std::size_t build_pmtu_probe(Instant now, Path& p, std::span<std::uint8_t> out);
  bool space_wants_to_send(Instant now, const Path& p, bool data, PacketSpace& space,
                           bool cc_allowed) const;
  bool conn_control_pending() const;  // connection-level frames waiting (go on the send path)
  bool app_has_stream_data() const;
  std::optional<ConnectionId> peer_cid_for(std::uint32_t path_id) const;  // DCID for sending
  ConnectionId current_peer_cid() const { return peer_cid_for(0).value_or(ConnectionId{}); }
  std::uint64_t in_flight_bytes(const Path& p) const;
  void schedule_stream(std::uint64_t id);

  // ---- timers and recovery (connection_timers.cc) ----
  std::optional<Instant> next_timeout() const;
  void on_timeout(Instant now);
  // RFC 9002 A.8 over every space of every path: when, and which (path, space).
  std::optional<Instant> loss_detection_deadline(const Path** which_path, SpaceId* which) const;
  void on_loss_detection_timeout(Instant now);
  Duration pto(const Path& p, const PacketSpace& space) const;
  Duration idle_timeout() const;
  Duration three_pto() const;
  Duration path_idle(const Path& p) const;
  void enter_closing(Instant now, CloseReason reason, bool send_close);
  void enter_draining(Instant now, CloseReason reason);
  void close_with_error(Instant now, const QuicError& e);
  void qlog(Instant now, const char* name, std::string data) const;

  // The handshake spaces, or path `p`'s application space.
  PacketSpace& space(SpaceId id, Path& p) {
    return id == SpaceId::kInitial ? initial : id == SpaceId::kHandshake ? handshake : p.app;
  }
  const PacketSpace& space(SpaceId id, const Path& p) const {
    return id == SpaceId::kInitial ? initial : id == SpaceId::kHandshake ? handshake : p.app;
  }
  // Path 0: the handshake's path. It always exists (abandoned, it lingers without sending).
  Path& path() { return *paths.front(); }
  const Path& path() const { return *paths.front(); }
  bool multipath() const { return multipath_on; }
  bool is_client() const { return config.role == Role::kClient; }
  bool handshake_confirmed() const { return confirmed; }

  ConnectionConfig config;
  Random& rng;
  std::optional<crypto::TlsSession> tls;
  PacketSpace initial{SpaceId::kInitial};
  PacketSpace handshake{SpaceId::kHandshake};
  std::vector<std::unique_ptr<Path>> paths;  // paths[0] is path 0; the rest by increasing id
  // 1-RTT keys, shared by every path (the per-path nonce tells paths apart).
  std::optional<crypto::PacketProtection> one_rtt_tx;
  std::optional<crypto::PacketProtection> one_rtt_rx;

  // Multipath (draft-ietf-quic-multipath) and QNT negotiation outcome, and path ids.
  bool multipath_on = false;
  std::uint32_t local_max_path_id = 0;  // the highest path id we allow (sent as MAX_PATH_ID)
  std::uint32_t peer_max_path_id = 0;   // the highest the peer allows
  bool max_path_id_pending = false;
  std::uint32_t next_path_id = 1;  // client: the next id open_path uses
  std::optional<NatTraversal> nat;
  std::set<std::uint64_t> pending_add_addresses;     // QNT sequence numbers to (re)send
  std::set<std::uint64_t> pending_remove_addresses;  // QNT sequence numbers to (re)send
  bool reach_out_pending = false;
  std::size_t send_rr = 0;  // round-robin over paths with path-specific traffic
  mutable std::optional<std::pair<ConnectionId, std::uint32_t>> cid_path_cache;

  enum class State : std::uint8_t { kHandshake, kEstablished, kClosing, kDraining, kDrained };
  State state = State::kHandshake;
  bool handshake_complete = false;
  bool confirmed = false;
  bool handshake_done_pending = false;
  std::optional<CloseReason> closed;
  std::optional<Instant> close_deadline;
  bool close_pending = false;  // send (another) CONNECTION_CLOSE
  std::uint64_t close_sent_count = 0;
  std::uint64_t packets_since_close = 0;
  frame::ConnectionClose close_frame;
  std::string close_reason_bytes;

  // Connection IDs.
  ConnectionId original_dcid;  // client's first DCID (both roles know it)
  ConnectionId initial_scid;   // ours, sequence 0
  std::optional<ConnectionId> retry_scid;
  Bytes retry_token;
  bool received_any = false;      // client: a packet from the server was processed
  bool peer_cid_updated = false;  // client: switched to the server's SCID
  std::map<std::uint32_t, detail::PeerCids> peer_cids;    // by path id
  std::map<std::uint32_t, detail::LocalCids> local_cids;  // by path id
  ConnectionId peer_initial_scid;  // the SCID the peer used in its first long header

  // Transport parameters.
  std::optional<TransportParameters> peer_params;
  std::uint64_t peer_max_udp_payload = 65527;
  Duration peer_max_ack_delay = 25ms;
  std::uint64_t peer_ack_delay_exponent = 3;
  std::uint64_t peer_active_cid_limit = 2;
  std::uint64_t peer_max_datagram_frame = 0;
  Duration peer_idle_timeout{0};
  std::optional<ByteArray<16>> peer_reset_token;  // server's, from its transport parameters

  // Streams and flow control.
  std::map<std::uint64_t, detail::StreamEntry> streams;
  std::map<int, std::deque<std::uint64_t>, std::greater<int>> send_schedule;
  std::deque<std::uint64_t> accept_queue[2];  // [bidi, uni]
  StreamLimits bidi_limits, uni_limits;       // stream counts, ours and the peer's (RFC 9000 §4.6)
  StreamLimits& limits(bool uni) { return uni ? uni_limits : bidi_limits; }
  SendCredit send_credit;
  RecvWindow recv_window;
  bool pending_max_data = false;
  bool max_data_lost = false;  // a MAX_DATA frame was lost: repeat the current limit
  std::optional<std::uint64_t> data_blocked_sent_at;
  bool pending_max_streams[2] = {false, false};
  bool pending_max_streams_lost[2] = {false, false};
  std::optional<std::uint64_t> streams_blocked_sent_at[2];
  std::set<std::uint64_t> pending_control_streams;  // streams with a control frame to send

  // Datagrams.
  std::deque<Bytes> datagrams_out;
  std::size_t datagrams_out_bytes = 0;
  std::deque<Bytes> datagrams_in;
  std::size_t datagrams_in_bytes = 0;

  // PATH_RESPONSEs owed: the challenge, where it came from, and the path it arrived on.
  struct OwedResponse {
    ByteArray<8> data;
    SocketAddr dest;
    std::uint32_t path_id = 0;
  };
  std::deque<OwedResponse> path_responses;

  // Key update (RFC 9001 §6).
  bool key_phase = false;
  std::optional<crypto::PacketProtection> next_rx;  // keys for the other phase
  std::optional<crypto::PacketProtection> prev_rx;  // the previous phase, for late packets
  // The lowest packet number received in the current key phase (none yet right after we initiated
  // an update). Old-phase packets below it, or any while it is unset, belong to the previous
  // phase; only an old-phase packet above it is the peer's next update (RFC 9001 §6.3, §6.5).
  std::optional<std::uint64_t> phase_first_rx_pn;
  // We sent an ACK (in the current phase) for a packet the peer sent in the current phase: only
  // then may the peer update again (RFC 9001 §6.2).
  bool phase_ack_sent = false;
  std::optional<std::uint64_t> key_update_first_pn;  // our first pn in the current phase
  bool key_update_acked = true;
  std::uint64_t packets_in_phase = 0;

  // QUIC address discovery (draft-ietf-quic-address-discovery). Sequence numbers are per
  // connection and increase with every frame sent (a lost frame is re-sent with the current
  // address and a new number, as noq does); the receiver keeps the highest one.
  bool sends_observed_address() const;    // we report, and the peer asked for reports
  bool accepts_observed_address() const;  // we asked for reports, and the peer may send them
  bool observed_address_due(const Path& p) const {
    return confirmed && sends_observed_address() &&
           (!p.observed_address_sent || observed_address_pending);
  }
  std::uint64_t next_observed_seq = 0;
  bool observed_address_pending = false;  // one was lost: send a fresh one
  std::optional<frame::ObservedAddress> last_observed;

  // Buffered packets that arrived before their keys.
  std::vector<std::pair<Bytes, SocketAddr>> undecryptable;

  // Timers.
  Instant created;
  Instant last_activity;                           // idle timer base
  std::optional<Instant> last_ack_eliciting_sent;  // any path
  bool handshake_acked = false;  // client: the server acknowledged a Handshake packet
  Instant pacing_deadline{};
  bool pacing_blocked = false;
  EcnCodepoint batch_ecn = EcnCodepoint::kNotEct;

  std::deque<ConnectionEvent> events;
  std::uint64_t cid_epoch = 0;  // bumped whenever local_cids changes (the endpoint re-syncs)
  Bytes frame_scratch;          // reused for packet headers on the send path
  Bytes payload_scratch;        // reused for frame encoding on the send path
  ConnectionStats stats;
  std::optional<std::uint64_t> largest_app_rx_non_probing;
};

}  // namespace iroh::quic

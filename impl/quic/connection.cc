// quic::Connection: construction, the receive path and the application API.
// Packet assembly is in connection_send.cc, timers and loss recovery in connection_timers.cc.
#include "quic/connection.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "base/blake3.h"
#include "base/text_encoding.h"
#include "crypto/initial_secrets.h"
#include "quic/connection_internal.h"
#include "quic/reader.h"

namespace iroh::quic {

using detail::kLocalCidLength;

ByteArray<16> stateless_reset_token(const ByteArray<32>& reset_key, ByteView cid) {
  auto h = blake3::Hasher::keyed(reset_key);
  h.update(cid);
  const auto out = h.finalize();
  ByteArray<16> token{};
  std::memcpy(token.data(), out.data(), token.size());
  return token;
}

std::string CloseReason::describe() const {
  auto code_text = [&] {
    if (application()) return "application code " + std::to_string(code);
    std::string s = std::string(transport_error_name(static_cast<TransportError>(code)));
    if (code >= kCryptoErrorBase && code < kCryptoErrorBase + 0x100) {
      s += " (TLS alert " + std::to_string(code - kCryptoErrorBase) + ")";
    }
    return s;
  };
  std::string s;
  switch (kind) {
    case Kind::kLocalApplication:
      s = "closed locally: " + code_text();
      break;
    case Kind::kLocalTransport:
      s = "connection error: " + code_text();
      break;
    case Kind::kPeerApplication:
    case Kind::kPeerTransport:
      s = "peer closed: " + code_text();
      break;
    case Kind::kIdleTimeout:
      return "idle timeout";
    case Kind::kHandshakeTimeout:
      return "handshake timeout";
    case Kind::kStatelessReset:
      return "stateless reset by peer";
    case Kind::kVersionMismatch:
      return "peer does not support QUIC v1";
  }
  if (!reason.empty()) s += ": " + reason;
  return s;
}

namespace detail {

PacketSpace::PacketSpace(SpaceId id_)
    : id(id_),
      acks(id_ == SpaceId::kApplication ? PacketNumberSpace::kApplicationData
           : id_ == SpaceId::kHandshake ? PacketNumberSpace::kHandshake
                                        : PacketNumberSpace::kInitial),
      crypto_send(UINT64_MAX) {}

Path::Path(const ConnectionConfig& config, const SocketAddr& remote_, std::uint32_t id_)
    : id(id_),
      remote(remote_),
      rtt(config.initial_rtt),
      cc(make_congestion_controller(config.congestion, config.initial_mtu)),
      pacer(config.initial_mtu),
      mtu(config.initial_mtu),
      pmtu_max(config.max_mtu),
      idle_timeout(config.path_idle_timeout) {}

}  // namespace detail

// ---------------------------------------------------------------------------------------------
// construction
// ---------------------------------------------------------------------------------------------

Connection::Impl::Impl(ConnectionConfig cfg, Random& r)
    : config(std::move(cfg)),
      rng(r),
      bidi_limits(config.role, StreamDirection::kBidi, config.max_concurrent_bidi_streams),
      uni_limits(config.role, StreamDirection::kUni, config.max_concurrent_uni_streams),
      recv_window(config.connection_receive_window, config.connection_receive_window) {}

Bytes Connection::Impl::local_transport_params() const {
  TransportParameters p = iroh_transport_parameters(initial_scid.view());
  if (config.max_path_id > 0) {
    p.initial_max_path_id = config.max_path_id;
  } else {
    p.initial_max_path_id.reset();
  }
  if (config.max_path_id > 0 && config.nat_traversal_addresses > 0) {
    p.n0_nat_traversal = config.nat_traversal_addresses;
  } else {
    p.n0_nat_traversal.reset();
  }
  p.max_idle_timeout = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::milliseconds>(config.idle_timeout).count());
  p.max_udp_payload_size = std::max<std::uint64_t>(1200, config.max_mtu + 20);
  p.initial_max_data = config.connection_receive_window;
  p.initial_max_stream_data_bidi_local = config.stream_receive_window;
  p.initial_max_stream_data_bidi_remote = config.stream_receive_window;
  p.initial_max_stream_data_uni = config.stream_receive_window;
  p.initial_max_streams_bidi = config.max_concurrent_bidi_streams;
  p.initial_max_streams_uni = config.max_concurrent_uni_streams;
  p.active_connection_id_limit = detail::kActiveCidLimit;
  p.observed_address = config.observed_address;
  if (config.max_datagram_frame_size > 0) {
    p.max_datagram_frame_size = config.max_datagram_frame_size;
  } else {
    p.max_datagram_frame_size.reset();
  }
  if (!is_client()) {
    p.original_destination_connection_id =
        Bytes(original_dcid.view().begin(), original_dcid.view().end());
    p.stateless_reset_token = stateless_reset_token(config.reset_key, initial_scid.view());
    if (retry_scid) {
      p.retry_source_connection_id = Bytes(retry_scid->view().begin(), retry_scid->view().end());
    }
  }
  // One GREASE parameter, as noq does, so peers keep ignoring unknown ids (RFC 9000 §18.1).
  Bytes grease_random(24);
  rng.fill(grease_random);
  return encode_transport_parameters(p, config.role, make_grease_parameter(grease_random));
}

Result<void> Connection::Impl::install_initial_keys(const ConnectionId& dcid) {
  auto keys = crypto::derive_initial_keys(dcid.view());
  if (!keys) return keys.error();
  if (is_client()) {
    initial.tx.emplace(std::move(keys->client));
    initial.rx.emplace(std::move(keys->server));
  } else {
    initial.tx.emplace(std::move(keys->server));
    initial.rx.emplace(std::move(keys->client));
  }
  return {};
}

Result<void> Connection::Impl::init_tls(Instant now) {
  auto params = local_transport_params();
  crypto::TlsResult<crypto::TlsSession> session = crypto::TlsError{};
  if (config.x509) {
    // The WebPKI profile (relay QAD, spec §6.9).
    session = is_client() ? crypto::TlsSession::x509_client(config.x509->credentials,
                                                            config.x509->server_name, config.alpn,
                                                            std::move(params))
                          : crypto::TlsSession::x509_server(config.x509->credentials, config.alpns,
                                                            std::move(params));
  } else {
    if (!config.secret_key) return make_error("connection config without a secret key");
    session = is_client()
                  ? crypto::TlsSession::client(*config.secret_key, config.expected_server,
                                               config.alpn, std::move(params))
                  : crypto::TlsSession::server(*config.secret_key, config.alpns, std::move(params));
  }
  if (!session) return make_error("TLS setup: " + session.error().message);
  tls.emplace(std::move(session).value());
  if (config.keylog) tls->set_keylog_callback(config.keylog);
  if (is_client()) {
    if (auto r = tls->start(); !r) return make_error("TLS start: " + r.error().message);
    if (auto r = drive_tls(now); !r) return make_error(r.error().message);
  }
  return {};
}

Connection::Connection(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Connection::~Connection() = default;

Result<std::unique_ptr<Connection>> Connection::connect(ConnectionConfig config, Instant now,
                                                        Random& random, const SocketAddr& remote,
                                                        const ConnectionId& dcid,
                                                        const ConnectionId& scid) {
  if (dcid.size() < 8) return make_error("the client's initial DCID must be at least 8 bytes");
  config.role = Role::kClient;
  auto impl = std::make_unique<Impl>(std::move(config), random);
  impl->created = now;
  impl->last_activity = now;
  impl->original_dcid = dcid;
  impl->initial_scid = scid;
  impl->local_cids[0].cids[0] = {scid, stateless_reset_token(impl->config.reset_key, scid.view())};
  impl->local_cids[0].next_seq = 1;
  impl->peer_cids[0].cids[0] = {Bytes(dcid.view().begin(), dcid.view().end()), {}, false};
  impl->paths.push_back(std::make_unique<Path>(impl->config, remote, 0));
  impl->path().last_rx = now;
  // The server's address is validated by definition for the client (RFC 9000 §8.1 limits
  // servers only).
  impl->path().validated = true;
  if (auto r = impl->install_initial_keys(dcid); !r) return r.error();
  if (auto r = impl->init_tls(now); !r) return r.error();
  impl->qlog(now, "transport:connection_started",
             "{\"src_cid\":\"" + to_hex(scid.view()) + "\",\"dst_cid\":\"" + to_hex(dcid.view()) +
                 "\",\"dst\":\"" + remote.to_string() + "\"}");
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

Result<std::unique_ptr<Connection>> Connection::accept(ConnectionConfig config, Instant now,
                                                       Random& random, const SocketAddr& remote,
                                                       const ConnectionId& original_dcid,
                                                       const ConnectionId& client_scid,
                                                       const ConnectionId& scid,
                                                       std::optional<ConnectionId> retry_scid) {
  if (config.alpns.empty()) return make_error("a server needs at least one ALPN");
  config.role = Role::kServer;
  auto impl = std::make_unique<Impl>(std::move(config), random);
  impl->created = now;
  impl->last_activity = now;
  impl->original_dcid = original_dcid;
  impl->initial_scid = scid;
  impl->retry_scid = retry_scid;
  impl->peer_initial_scid = client_scid;
  impl->local_cids[0].cids[0] = {scid, stateless_reset_token(impl->config.reset_key, scid.view())};
  impl->local_cids[0].next_seq = 1;
  impl->peer_cids[0].cids[0] = {
      Bytes(client_scid.view().begin(), client_scid.view().end()), {}, false};
  impl->paths.push_back(std::make_unique<Path>(impl->config, remote, 0));
  impl->path().last_rx = now;
  // After a Retry the client has proven its address (RFC 9000 §8.1.2).
  impl->path().validated = retry_scid.has_value();
  // Initial keys come from the DCID the client used in the packet we are answering: after a
  // Retry that is our Retry SCID.
  if (auto r = impl->install_initial_keys(retry_scid ? *retry_scid : original_dcid); !r) {
    return r.error();
  }
  if (auto r = impl->init_tls(now); !r) return r.error();
  impl->qlog(now, "transport:connection_started",
             "{\"src_cid\":\"" + to_hex(scid.view()) + "\",\"dst_cid\":\"" +
                 to_hex(client_scid.view()) + "\",\"dst\":\"" + remote.to_string() + "\"}");
  return std::unique_ptr<Connection>(new Connection(std::move(impl)));
}

// ---------------------------------------------------------------------------------------------
// receive path
// ---------------------------------------------------------------------------------------------

void Connection::Impl::on_datagram(Instant now, const SocketAddr& from,
                                   std::span<std::uint8_t> data, std::uint8_t ecn) {
  if (state == State::kDraining || state == State::kDrained) return;
  stats.bytes_received += data.size();
  if (state == State::kClosing) {
    // RFC 9000 §10.2.1: answer with CONNECTION_CLOSE, but rate-limited: after 1, 2, 4, 8 ...
    // received packets.
    ++packets_since_close;
    if ((packets_since_close & (packets_since_close - 1)) == 0) close_pending = true;
    return;
  }
  // Anti-amplification accounting counts whole datagrams (RFC 9000 §8.1), per path address.
  for (auto& p : paths) {
    if (p->remote == from && !p->validated) p->bytes_received += data.size();
  }

  const auto split = split_datagram(data, kLocalCidLength);
  for (const auto& parsed : split.packets) {
    auto packet = data.subspan(parsed.offset, parsed.packet_length);
    on_packet(now, from, packet, parsed, ecn, data.size());
    if (state == State::kDraining || state == State::kDrained || state == State::kClosing) return;
  }
  // A datagram that holds nothing we can use may be a stateless reset (RFC 9000 §10.3.1).
  if (split.packets.empty() && data.size() >= 21 && peer_reset_token) {
    // handled below via matches_reset_token by the endpoint; nothing else to do here.
  }
}

void Connection::Impl::on_version_negotiation(Instant now, const ParsedHeader& parsed) {
  // RFC 9000 §6.2: only before any other packet from the server, and only if it does not list
  // the version we tried. We speak v1 only, so a valid VN ends the attempt.
  if (!is_client() || received_any) return;
  if (!(parsed.header.dcid == initial_scid)) return;
  for (auto v : parsed.header.supported_versions) {
    if (v == kVersion1) return;  // RFC 9000 §6.2: must ignore a VN listing our version
  }
  std::string versions;
  for (auto v : parsed.header.supported_versions) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "%s0x%08x", versions.empty() ? "" : " ", v);
    versions += buf;
  }
  enter_draining(now, CloseReason{CloseReason::Kind::kVersionMismatch, 0, 0,
                                  "server offers only: " + versions, std::nullopt});
  state = State::kDrained;
}

void Connection::Impl::on_retry(Instant now, ByteView datagram, const ParsedHeader& parsed) {
  // RFC 9000 §17.2.5.2: a client accepts at most one Retry, before any other server packet,
  // whose integrity tag verifies against the original DCID.
  if (!is_client() || received_any || retry_scid) return;
  if (parsed.header.token.empty()) return;
  if (parsed.header.scid == original_dcid) return;  // §17.2.5.2: SCID must differ
  auto expected = encode_retry(parsed.header, original_dcid.view());
  if (!expected) return;
  ByteView actual = datagram.subspan(parsed.offset, parsed.packet_length);
  if (expected->size() != actual.size() ||
      !std::equal(expected->begin(), expected->end(), actual.begin())) {
    return;  // integrity tag mismatch: discard
  }
  retry_scid = parsed.header.scid;
  retry_token = parsed.header.token;
  peer_cids[0].cids[0].cid =
      Bytes(parsed.header.scid.view().begin(), parsed.header.scid.view().end());
  // New Initial keys from the Retry's SCID; everything sent so far in the Initial space is
  // considered lost and goes again (without congestion penalty), PNs continue.
  if (auto r = install_initial_keys(parsed.header.scid); !r) return;
  for (auto& [pn, frames] : initial.sent_frames) {
    for (auto [off, len] : frames.crypto) initial.crypto_send.on_lost(off, len, false);
  }
  initial.sent_frames.clear();
  for (const auto& m : initial.sent.discard()) (void)m;
  qlog(now, "transport:packet_received", "{\"header\":{\"packet_type\":\"retry\"}}");
}

void Connection::Impl::on_packet(Instant now, const SocketAddr& from,
                                 std::span<std::uint8_t> packet, const ParsedHeader& parsed,
                                 std::uint8_t ecn, std::size_t datagram_size) {
  const auto type = parsed.header.type;
  if (type == PacketType::kVersionNegotiation) return on_version_negotiation(now, parsed);
  if (type == PacketType::kRetry) {
    return on_retry(now, ByteView(packet.data() - parsed.offset, parsed.offset + packet.size()),
                    parsed);
  }
  if (type == PacketType::kZeroRtt) return;  // we never accept 0-RTT
  if (is_long_header(type) && parsed.header.version != kVersion1) return;

  SpaceId sid = type == PacketType::kInitial     ? SpaceId::kInitial
                : type == PacketType::kHandshake ? SpaceId::kHandshake
                                                 : SpaceId::kApplication;
  // The path: long headers belong to path 0; a 1-RTT packet's DCID names the path (multipath:
  // every path has its own CIDs, spec §4.6). A packet for a path id we allow but have not seen
  // opens that path (the peer is the one opening it).
  std::uint32_t path_id = 0;
  if (sid == SpaceId::kApplication && multipath()) {
    auto pid = path_of_local_cid(parsed.header.dcid);
    if (!pid) return;  // a CID we retired
    path_id = *pid;
  }
  Path* pp = find_path(path_id);
  bool fresh_path = false;
  if (!pp) {
    // Only the client opens paths (noq drops a client's packets for unknown paths), and not
    // before the handshake is confirmed.
    if (is_client() || !confirmed || path_id > local_max_path_id || !one_rtt_rx) return;
    fresh_path = true;
  }
  PacketSpace* spp = pp ? &space(sid, *pp) : nullptr;
  if (spp && spp->discarded) return;
  crypto::PacketProtection* rx = sid == SpaceId::kApplication
                                     ? (one_rtt_rx ? &*one_rtt_rx : nullptr)
                                 : spp && spp->rx ? &*spp->rx
                                                  : nullptr;
  if (!rx) {
    // Keys not yet available (e.g. 1-RTT before the handshake completed): keep a few packets.
    if (undecryptable.size() < detail::kMaxBufferedUndecryptable) {
      undecryptable.emplace_back(Bytes(packet.begin(), packet.end()), from);
    }
    return;
  }
  // Keep a copy for a stateless-reset check: decryption works in place.
  std::array<std::uint8_t, 16> tail{};
  const bool reset_candidate = type == PacketType::kOneRtt && packet.size() >= 21;
  if (reset_candidate) std::memcpy(tail.data(), packet.data() + packet.size() - 16, 16);

  ParsedHeader local = parsed;
  local.offset = 0;
  const std::optional<std::uint64_t> largest_rx = spp ? spp->largest_rx : std::nullopt;
  auto opened = remove_header_protection(packet, local, largest_rx, rx->header_protection());
  if (!opened) return;
  crypto::Aead* aead = &rx->aead();
  bool phase_flip = false;
  // The next key phase's AEAD (derived once, on first use).
  auto next_phase_aead = [&]() -> crypto::Aead* {
    if (!next_rx) {
      auto next = rx->next_generation();
      if (!next) return nullptr;
      next_rx.emplace(std::move(next).value());
    }
    return &next_rx->aead();
  };
  if (type == PacketType::kOneRtt && opened->header.key_phase != key_phase) {
    // RFC 9001 §6.3: a packet in the other phase is either a key update by the peer (pn above
    // the first packet received in this phase) or a late packet of the previous phase. After
    // *we* initiated an update nothing has arrived in the new phase yet: until the peer follows,
    // its packets (with ever higher pns) still use the old keys (§6.5), so pn alone cannot tell.
    // (Fix: comparing with largest_rx dropped a whole RTT of the peer's packets after our update
    // and mistook them for a second update.) Packet numbers are per path: the comparison is
    // made on path 0; other paths tell old from new phase by which keys open the packet.
    const bool old_phase =
        prev_rx &&
        (path_id == 0 ? (!phase_first_rx_pn || opened->header.packet_number < *phase_first_rx_pn)
                      : true);
    if (old_phase) {
      aead = &prev_rx->aead();
    } else {
      aead = next_phase_aead();
      if (!aead) return;
      phase_flip = true;
    }
  }
  Bytes retry_copy;
  const bool may_retry_next = type == PacketType::kOneRtt && path_id != 0 && !phase_flip &&
                              aead == (prev_rx ? &prev_rx->aead() : nullptr);
  if (may_retry_next) retry_copy.assign(packet.begin(), packet.end());
  auto decrypted =
      decrypt_payload(packet, *opened, *aead, path_id);  // path_id is 0 without multipath
  if (!decrypted && may_retry_next) {
    // Not the previous phase after all: the peer's key update, seen first on this path.
    std::memcpy(packet.data(), retry_copy.data(), packet.size());
    opened->payload =
        packet.subspan(opened->header_length, opened->packet_length - opened->header_length);
    aead = next_phase_aead();
    if (!aead) return;
    phase_flip = true;
    decrypted = decrypt_payload(packet, *opened, *aead, path_id);
  }
  if (!decrypted) {
    if (reset_candidate) {
      for (const auto& [pid, set] : peer_cids) {
        for (const auto& [seq, c] : set.cids) {
          if (c.has_reset_token && std::equal(tail.begin(), tail.end(), c.reset_token.begin())) {
            enter_draining(now, CloseReason{CloseReason::Kind::kStatelessReset, 0, 0, "", {}});
            return;
          }
        }
      }
    }
    return;  // RFC 9001 §5.5: undecryptable packets are dropped silently
  }
  if (fresh_path) {
    // The peer opened a path (draft multipath §3.1): its address is unvalidated until our
    // PATH_CHALLENGE comes back.
    pp = new_path(now, path_id, from);
    if (!pp) return;
    spp = &space(sid, *pp);
    // The datagram that opened the path counts towards its anti-amplification budget (on_datagram
    // ran before the path existed). (Fix: a path the peer opened had no budget at all and could
    // not answer the client's challenge until the client happened to send again.)
    if (!pp->validated) pp->bytes_received += datagram_size;
  }
  Path& path_ref = *pp;
  PacketSpace& sp = *spp;
  const std::uint64_t pn = opened->header.packet_number;
  if (sp.acks.is_duplicate(pn)) return;
  if (phase_flip) {
    if (!phase_ack_sent) {
      // RFC 9001 §6.2: a peer may update again only once it got an ACK for a packet it sent in
      // the current phase, i.e. once *we* sent such an ACK. (Fix: this used to require that
      // the peer had acknowledged *our* new-phase packets — a condition the peer cannot see —
      // and closed healthy connections doing back-to-back updates with KEY_UPDATE_ERROR.)
      close_with_error(now, quic_error(TransportError::kKeyUpdateError,
                                       "key update before the previous one was acknowledged"));
      return;
    }
    // Accept the peer's key update: rotate receive keys and follow on the send side.
    prev_rx = std::move(one_rtt_rx);
    one_rtt_rx = std::move(next_rx);
    next_rx.reset();
    auto next_tx = one_rtt_tx->next_generation();
    if (!next_tx) return;
    one_rtt_tx.emplace(std::move(next_tx).value());
    key_phase = !key_phase;
    key_update_first_pn = path().app.next_pn;
    key_update_acked = false;
    packets_in_phase = 0;
    phase_first_rx_pn = path_id == 0 ? std::optional<std::uint64_t>(pn) : std::nullopt;
    phase_ack_sent = path_id != 0;
    ++stats.key_updates;
    qlog(now, "security:key_updated", "{\"trigger\":\"remote_update\"}");
  }
  if (type == PacketType::kOneRtt && path_id == 0 && one_rtt_rx && aead == &one_rtt_rx->aead() &&
      (!phase_first_rx_pn || pn < *phase_first_rx_pn)) {
    phase_first_rx_pn = pn;
    phase_ack_sent = false;
  }
  if (opened->header.reserved_bits != 0) {
    close_with_error(
        now, quic_error(TransportError::kProtocolViolation, "reserved header bits are not zero"));
    return;
  }
  ++stats.packets_received;
  ++path_ref.packets_received;
  if (!sp.largest_rx || pn > *sp.largest_rx) sp.largest_rx = pn;
  if (!received_any && is_client()) received_any = true;

  // The client switches to the server's chosen CID on its first Initial (RFC 9000 §7.2).
  if (is_client() && is_long_header(type) && !peer_cid_updated) {
    peer_cid_updated = true;
    peer_initial_scid = parsed.header.scid;
    peer_cids[0].cids[0].cid =
        Bytes(parsed.header.scid.view().begin(), parsed.header.scid.view().end());
  }

  const PacketKind kind = type == PacketType::kInitial     ? PacketKind::kInitial
                          : type == PacketType::kHandshake ? PacketKind::kHandshake
                                                           : PacketKind::kOneRtt;
  bool ack_eliciting = false;
  bool non_probing = false;
  if (config.qlog) {
    qlog(now, "transport:packet_received",
         std::string("{\"header\":{\"packet_type\":\"") + space_name(sid) +
             "\",\"packet_number\":" + std::to_string(pn) +
             (multipath() ? ",\"path_id\":" + std::to_string(path_id) : std::string()) +
             "},\"raw\":{\"length\":" + std::to_string(packet.size()) + "}}");
  }
  auto r =
      on_frames(now, path_ref, sp, from, ByteView(opened->payload.data(), opened->payload.size()),
                kind, ack_eliciting, non_probing);
  if (!r) {
    close_with_error(now, r.error());
    return;
  }
  if (state == State::kDraining || state == State::kDrained) return;

  const auto codepoint = static_cast<EcnCodepoint>(ecn & 0x3);
  sp.acks.on_packet_received(now, pn, ack_eliciting, codepoint);
  last_activity = now;
  if (from == path_ref.remote) {
    path_ref.last_rx = now;
    path_ref.received_since_send = true;
  }

  // Server: a Handshake packet proves the client's address and ends the Initial space
  // (RFC 9001 §4.9.1, RFC 9000 §8.1).
  if (!is_client() && sid == SpaceId::kHandshake) {
    path().validated = true;
    if (!initial.discarded) discard_space(now, initial);
  }
  // Peer address change (RFC 9000 §9.3): only non-probing packets with the highest packet number
  // seen move the path. (With QNT, probes arrive on path 0 from other addresses all the time:
  // they are answered off-path and never move it — spec §4.3.)
  // With multipath only the server follows (noq: a client never migrates a path after the
  // handshake).
  if (sid == SpaceId::kApplication && from != path_ref.remote && !path_ref.abandoned &&
      !(multipath() && is_client())) {
    if (non_probing && sp.largest_rx == pn) {
      migrate_to(now, path_ref, from);
      // The datagram that moved us counts towards the new address's anti-amplification budget
      // (RFC 9000 §8.1, §9.3.1). (Fix: on_datagram() had not counted it — it came from an address
      // other than the path's — and migrate_to() zeroed the budget, so nothing, not even the
      // PATH_CHALLENGE, could be sent until the peer happened to send again.)
      path_ref.bytes_received = datagram_size;
      path_ref.last_rx = now;
    }
  }
  // Packets that waited for keys may be decryptable now.
  if (!undecryptable.empty() && one_rtt_rx) {
    auto pending = std::move(undecryptable);
    undecryptable.clear();
    for (auto& [bytes, addr] : pending) {
      auto s = split_datagram(bytes, kLocalCidLength);
      for (const auto& p : s.packets) {
        auto sub = std::span<std::uint8_t>(bytes).subspan(p.offset, p.packet_length);
        // Only retry packets whose keys now exist; others are re-buffered by on_packet.
        on_packet(now, addr, sub, p, ecn, datagram_size);
      }
    }
  }
}

void Connection::Impl::migrate_to(Instant now, Path& p, const SocketAddr& from) {
  const bool port_only = from.ip().size() == p.remote.ip().size() &&
                         std::equal(from.ip().begin(), from.ip().end(), p.remote.ip().begin());
  qlog(now, "transport:path_updated",
       "{\"path_id\":" + std::to_string(p.id) + ",\"old\":\"" + p.remote.to_string() +
           "\",\"new\":\"" + from.to_string() + "\"}");
  p.remote = from;
  p.validated = false;
  p.bytes_received = 0;
  p.bytes_sent = 0;
  // RFC 9000 §9.4: a new path gets a fresh congestion controller and RTT estimate unless only the
  // port changed (NAT rebinding).
  if (!port_only) {
    p.cc = make_congestion_controller(config.congestion, p.mtu);
    p.rtt = RttEstimator(config.initial_rtt);
  }
  ByteArray<8> data{};
  rng.fill(data);
  p.challenge = data;
  p.challenge_pending = true;
  p.challenge_deadline = now + 3 * pto(p, p.app);
  // QAD: the peer's address changed (NAT rebinding, migration): report the new one.
  p.observed_address_sent = false;
}

bool Connection::Impl::sends_observed_address() const {
  using R = AddressDiscoveryRole;
  if (!config.observed_address || *config.observed_address == R::kReceiveOnly) return false;
  if (!peer_params || !peer_params->observed_address) return false;
  return *peer_params->observed_address != R::kSendOnly;
}

bool Connection::Impl::accepts_observed_address() const {
  using R = AddressDiscoveryRole;
  if (!config.observed_address || *config.observed_address == R::kSendOnly) return false;
  if (!peer_params || !peer_params->observed_address) return false;
  return *peer_params->observed_address != R::kReceiveOnly;
}

QuicResult<void> Connection::Impl::on_frames(Instant now, Path& path, PacketSpace& sp,
                                             const SocketAddr& from, ByteView payload,
                                             PacketKind kind, bool& ack_eliciting,
                                             bool& non_probing) {
  Reader reader(payload);
  if (payload.empty()) {
    return quic_error(TransportError::kProtocolViolation, "packet without frames");
  }
  while (!reader.empty()) {
    auto f = decode_frame(reader);
    if (!f) return f.error();
    if (!allowed_in(*f, kind)) {
      return quic_error(TransportError::kProtocolViolation,
                        std::string(frame_name(*f)) + " not allowed in this packet type",
                        frame_type_of(*f));
    }
    if (is_ack_eliciting(*f)) ack_eliciting = true;
    if (!is_probing(*f)) non_probing = true;
    auto r = on_frame(now, path, sp, from, *f);
    if (!r) {
      auto e = r.error();
      if (e.frame_type == 0) e.frame_type = frame_type_of(*f);
      return e;
    }
    if (state == State::kDraining || state == State::kDrained) return {};
  }
  return {};
}

QuicResult<StreamEntry*> Connection::Impl::stream_for_frame(std::uint64_t id, bool peer_sends) {
  // RFC 9000 §19.8, §3.2: a frame for a stream the peer cannot send on, or for one of our streams
  // we have not opened, is STREAM_STATE_ERROR. Frames for closed streams are ignored (nullptr).
  const bool ours = is_client_initiated(id) == is_client();
  const bool uni = is_uni(id);
  if (peer_sends && ours && uni) {
    return quic_error(TransportError::kStreamStateError, "data on a send-only stream");
  }
  if (!peer_sends && !ours && uni) {
    return quic_error(TransportError::kStreamStateError, "control frame for a receive-only stream");
  }
  if (auto it = streams.find(id); it != streams.end()) return &it->second;
  StreamLimits& lim = limits(uni);
  if (ours) {
    if (auto r = lim.check_local_stream(id); !r) return r.error();
    return nullptr;  // closed
  }
  const std::uint64_t first_new = lim.peer_opened();
  if (stream_index(id) < first_new) return nullptr;  // closed already
  if (auto r = lim.check_peer_stream(id); !r) return r.error();
  // Opening stream n implicitly opens every lower-numbered stream of its type (RFC 9000 §3.2).
  const Role peer_role = is_client() ? Role::kServer : Role::kClient;
  const auto dir = uni ? StreamDirection::kUni : StreamDirection::kBidi;
  for (std::uint64_t idx = first_new; idx < lim.peer_opened(); ++idx) {
    const std::uint64_t sid = stream_id_of(peer_role, dir, idx);
    detail::StreamEntry e;
    const std::uint64_t window = config.stream_receive_window;
    e.recv.emplace(window, std::max(window, config.max_stream_receive_window));
    if (!uni) {
      const std::uint64_t limit = peer_params ? peer_params->initial_max_stream_data_bidi_local : 0;
      e.send.emplace(limit, config.stream_send_buffer);
    }
    streams.emplace(sid, std::move(e));
    accept_queue[uni ? 1 : 0].push_back(sid);
    events.push_back(event::StreamOpened{sid});
  }
  return &streams.find(id)->second;
}

QuicResult<void> Connection::Impl::on_stream_frame(const frame::Stream& s) {
  auto entry = stream_for_frame(s.stream_id, true);
  if (!entry) return entry.error();
  if (*entry == nullptr) {
    // Closed stream: still count the data for connection flow control? The stream's final size
    // was already accounted; retransmitted data adds nothing new.
    return {};
  }
  auto& e = **entry;
  const bool was_readable = e.recv->readable() > 0 || e.recv->finished();
  auto inc = e.recv->on_data(s.offset, s.data, s.fin);
  if (!inc) return inc.error();
  if (auto r = recv_window.on_received(*inc); !r) return r.error();
  stats.stream_bytes_received += s.data.size();
  if (!was_readable && (e.recv->readable() > 0 || e.recv->finished() || s.fin)) {
    events.push_back(event::StreamReadable{s.stream_id});
  }
  return {};
}

QuicResult<void> Connection::Impl::on_frame(Instant now, Path& path, PacketSpace& sp,
                                            const SocketAddr& from, const Frame& f) {
  using namespace frame;
  const bool app = sp.id == SpaceId::kApplication;
  return std::visit(
      [&](const auto& fr) -> QuicResult<void> {
        using T = std::decay_t<decltype(fr)>;
        if constexpr (std::is_same_v<T, Padding> || std::is_same_v<T, Ping>) {
          return {};
        } else if constexpr (std::is_same_v<T, Ack>) {
          // With multipath a 1-RTT ACK acknowledges path 0 (noq sends PATH_ACK, accepts both).
          if (app && multipath()) return on_ack(now, this->path(), this->path().app, fr);
          return on_ack(now, path, sp, fr);
        } else if constexpr (std::is_same_v<T, Crypto>) {
          return on_crypto(now, sp, fr);
        } else if constexpr (std::is_same_v<T, Stream>) {
          return on_stream_frame(fr);
        } else if constexpr (std::is_same_v<T, ResetStream>) {
          auto entry = stream_for_frame(fr.stream_id, true);
          if (!entry) return entry.error();
          if (*entry == nullptr) return {};
          auto& e = **entry;
          auto inc = e.recv->on_reset(fr.error_code, fr.final_size);
          if (!inc) return inc.error();
          if (auto r = recv_window.on_received(*inc); !r) return r.error();
          events.push_back(event::StreamReadable{fr.stream_id});
          return {};
        } else if constexpr (std::is_same_v<T, StopSending>) {
          auto entry = stream_for_frame(fr.stream_id, false);
          if (!entry) return entry.error();
          if (*entry == nullptr) return {};
          auto& e = **entry;
          if (!e.send) {
            return quic_error(TransportError::kStreamStateError, "STOP_SENDING for recv-only");
          }
          if (!e.send->is_reset() && !e.send->all_acked()) {
            e.send->on_stop_sending(fr.error_code);
            pending_control_streams.insert(fr.stream_id);
            events.push_back(event::StreamStopped{fr.stream_id, fr.error_code});
          }
          return {};
        } else if constexpr (std::is_same_v<T, MaxData>) {
          const bool was_blocked = send_credit.available() == 0;
          send_credit.on_max_data(fr.max);
          if (was_blocked && send_credit.available() > 0) {
            for (auto& [id, e] : streams) {
              if (e.send && e.send->has_data_to_send()) schedule_stream(id);
            }
          }
          return {};
        } else if constexpr (std::is_same_v<T, MaxStreamData>) {
          auto entry = stream_for_frame(fr.stream_id, false);
          if (!entry) return entry.error();
          if (*entry == nullptr) return {};
          auto& e = **entry;
          if (!e.send) {
            return quic_error(TransportError::kStreamStateError, "MAX_STREAM_DATA for recv-only");
          }
          const auto before = e.send->writable();
          e.send->on_max_stream_data(fr.max);
          if (e.send->has_data_to_send()) schedule_stream(fr.stream_id);
          if (e.send->writable() > before || before > 0) {
            events.push_back(event::StreamWritable{fr.stream_id});
          }
          return {};
        } else if constexpr (std::is_same_v<T, MaxStreams>) {
          StreamLimits& lim = limits(!fr.bidi);
          const bool could = lim.can_open();
          lim.on_max_streams(fr.max);
          if (!could && lim.can_open()) {
            events.push_back(
                event::StreamsAvailable{fr.bidi ? StreamDirection::kBidi : StreamDirection::kUni});
          }
          return {};
        } else if constexpr (std::is_same_v<T, DataBlocked> ||
                             std::is_same_v<T, StreamDataBlocked> ||
                             std::is_same_v<T, StreamsBlocked>) {
          // Informational; our windows grow as the application reads.
          if constexpr (std::is_same_v<T, StreamDataBlocked>) {
            auto entry = stream_for_frame(fr.stream_id, true);
            if (!entry) return entry.error();
          }
          return {};
        } else if constexpr (std::is_same_v<T, NewToken>) {
          if (!is_client()) {
            return quic_error(TransportError::kProtocolViolation, "NEW_TOKEN from a client");
          }
          return {};  // we do not use address-validation tokens for future connections
        } else if constexpr (std::is_same_v<T, NewConnectionId>) {
          if (fr.path_id && !multipath()) {
            return quic_error(TransportError::kProtocolViolation, "multipath not negotiated");
          }
          const std::uint64_t pid = fr.path_id.value_or(0);
          if (pid > local_max_path_id) {
            return quic_error(TransportError::kProtocolViolation,
                              "PATH_NEW_CONNECTION_ID beyond our maximum path id");
          }
          const auto path_id = static_cast<std::uint32_t>(pid);
          if (const Path* target = find_path(path_id); target && target->abandoned) return {};
          auto& set = peer_cids[path_id];
          if (path_id == 0 && set.cids.count(0) && set.cids.begin()->second.cid.empty()) {
            return quic_error(TransportError::kProtocolViolation,
                              "NEW_CONNECTION_ID with zero-length CIDs");
          }
          if (auto it = set.cids.find(fr.sequence); it != set.cids.end()) {
            if (!frame::same_bytes(it->second.cid, fr.cid)) {
              return quic_error(TransportError::kProtocolViolation,
                                "sequence number reused for another CID");
            }
            return {};
          }
          if (fr.sequence < set.retire_prior_to) {
            set.pending_retire.insert(fr.sequence);  // already retired: retire at once
            return {};
          }
          set.cids[fr.sequence] = {Bytes(fr.cid.begin(), fr.cid.end()), fr.reset_token, true};
          if (fr.retire_prior_to > set.retire_prior_to) {
            set.retire_prior_to = fr.retire_prior_to;
            for (auto it = set.cids.begin(); it != set.cids.end();) {
              if (it->first < set.retire_prior_to) {
                set.pending_retire.insert(it->first);
                it = set.cids.erase(it);
              } else {
                ++it;
              }
            }
            if (!set.cids.count(set.in_use)) set.in_use = set.cids.begin()->first;
          }
          if (!set.cids.count(set.in_use)) set.in_use = set.cids.begin()->first;
          if (set.cids.size() > detail::kActiveCidLimit) {
            return quic_error(TransportError::kConnectionIdLimitError,
                              "more active connection IDs than our limit of 5");
          }
          return {};
        } else if constexpr (std::is_same_v<T, RetireConnectionId>) {
          if (fr.path_id && !multipath()) {
            return quic_error(TransportError::kProtocolViolation, "multipath not negotiated");
          }
          const auto path_id = static_cast<std::uint32_t>(fr.path_id.value_or(0));
          auto sit = local_cids.find(path_id);
          if (sit == local_cids.end() || fr.sequence >= sit->second.next_seq) {
            return quic_error(TransportError::kProtocolViolation,
                              "RETIRE_CONNECTION_ID for a CID never issued");
          }
          auto& set = sit->second;
          auto it = set.cids.find(fr.sequence);
          if (it == set.cids.end()) return {};
          events.push_back(event::CidRetired{it->second.cid});
          set.cids.erase(it);
          cid_path_cache.reset();
          ++cid_epoch;
          // Keep the peer supplied: issue a replacement (not for an abandoned path).
          const Path* target = find_path(path_id);
          if (!(target && target->abandoned)) issue_local_cids(path_id, set.cids.size() + 1);
          return {};
        } else if constexpr (std::is_same_v<T, PathChallenge>) {
          // Answered on the path it arrived on, to the address it came from (RFC 9000 §8.2.2);
          // from an address that is not the path's (a QNT probe) the answer goes off-path.
          path_responses.push_back({fr.data, from, path.id});
          if (path_responses.size() > 32) path_responses.pop_front();
          return {};
        } else if constexpr (std::is_same_v<T, PathResponse>) {
          // A QNT probe answered from the probed address (spec §5.3): the client opens a path
          // there. Otherwise it may validate the path it arrived on.
          if (nat) {
            if (auto opened = nat->on_path_response(fr.data, from)) {
              ++stats.nat_probe_responses;
              qlog(now, "transport:nat_probe_answered",
                   "{\"address\":\"" + from.to_string() + "\"}");
              if (is_client()) {
                bool exists = false;
                for (const auto& q : paths) {
                  if (!q->abandoned && q->remote == from) exists = true;
                }
                if (!exists) (void)open_path_internal(now, from, quic::PathStatus::kBackup);
              }
              return {};
            }
          }
          Path& p = path;
          if (p.challenge && *p.challenge == fr.data && from == p.remote) {
            p.validated = true;
            p.challenge.reset();
            p.challenge_pending = false;
            p.challenge_deadline.reset();
            on_path_validated(now, p);
          }
          return {};
        } else if constexpr (std::is_same_v<T, ConnectionClose>) {
          CloseReason reason;
          reason.kind = fr.application ? CloseReason::Kind::kPeerApplication
                                       : CloseReason::Kind::kPeerTransport;
          reason.code = fr.error_code;
          reason.frame_type = fr.frame_type;
          reason.reason.assign(fr.reason.begin(), fr.reason.end());
          enter_draining(now, std::move(reason));
          return {};
        } else if constexpr (std::is_same_v<T, HandshakeDone>) {
          if (!is_client()) {
            return quic_error(TransportError::kProtocolViolation, "HANDSHAKE_DONE from a client");
          }
          confirm_handshake(now);
          return {};
        } else if constexpr (std::is_same_v<T, frame::Datagram>) {
          if (config.max_datagram_frame_size == 0 ||
              fr.data.size() + 3 > config.max_datagram_frame_size + 3) {
            return quic_error(TransportError::kProtocolViolation,
                              "DATAGRAM larger than max_datagram_frame_size");
          }
          ++stats.datagrams_received;
          datagrams_in.emplace_back(fr.data.begin(), fr.data.end());
          datagrams_in_bytes += fr.data.size();
          while (datagrams_in_bytes > config.datagram_receive_buffer && !datagrams_in.empty()) {
            datagrams_in_bytes -= datagrams_in.front().size();
            datagrams_in.pop_front();
            ++stats.datagrams_dropped;
          }
          events.push_back(event::DatagramReceived{});
          return {};
        } else if constexpr (std::is_same_v<T, AckFrequency>) {
          // ack-frequency draft: honour the peer's request, bounded below by our min_ack_delay.
          const auto delay =
              std::max<Duration>(std::chrono::microseconds(fr.request_max_ack_delay), 1ms);
          for (auto& q : paths) {
            q->app.acks.set_ack_frequency(fr.ack_eliciting_threshold, delay,
                                          fr.reordering_threshold);
          }
          return {};
        } else if constexpr (std::is_same_v<T, ImmediateAck>) {
          sp.acks.set_immediate_ack_requested();
          return {};
        } else if constexpr (std::is_same_v<T, ObservedAddress>) {
          // draft-ietf-quic-address-discovery: only a peer we allowed to report may send it.
          if (!accepts_observed_address()) {
            return quic_error(TransportError::kProtocolViolation,
                              "OBSERVED_ADDRESS without negotiating address discovery");
          }
          ++stats.observed_addresses_received;
          // Reports that do not raise the sequence number are stale (reordered or repeated).
          if (last_observed && fr.sequence <= last_observed->sequence) return {};
          const bool changed = !last_observed || last_observed->address != fr.address;
          last_observed = fr;
          if (changed) {
            events.push_back(event::AddressObserved{fr.address, fr.sequence});
            qlog(now, "transport:address_observed",
                 "{\"sequence_number\":" + std::to_string(fr.sequence) + ",\"address\":\"" +
                     fr.address.to_string() + "\"}");
          }
          return {};
        } else {
          // Multipath and QNT frames (connection_paths.cc).
          (void)app;
          return on_multipath_frame(now, path, from, f);
        }
      },
      f);
}

QuicResult<void> Connection::Impl::on_crypto(Instant now, PacketSpace& sp, const frame::Crypto& c) {
  auto& rb = sp.crypto_recv;
  const std::uint64_t end = c.offset + c.data.size();
  if (end <= rb.delivered) return {};  // retransmission of delivered data
  // RFC 9000 §7.5: buffer at most 64 KiB of out-of-order CRYPTO data.
  if (end - rb.delivered > 65536) {
    return quic_error(TransportError::kCryptoBufferExceeded, "too much out-of-order CRYPTO data");
  }
  std::uint64_t off = c.offset;
  ByteView data = c.data;
  if (off < rb.delivered) {
    data = data.subspan(rb.delivered - off);
    off = rb.delivered;
  }
  const auto level = sp.id == SpaceId::kInitial     ? crypto::EncryptionLevel::kInitial
                     : sp.id == SpaceId::kHandshake ? crypto::EncryptionLevel::kHandshake
                                                    : crypto::EncryptionLevel::kOneRtt;
  if (off == rb.delivered) {
    if (auto r = tls->provide_data(level, data); !r) {
      QuicError e = quic_error(crypto_error(r.error().alert), r.error().message);
      return e;
    }
    rb.delivered += data.size();
    // Drain anything buffered that is now contiguous.
    while (!rb.pending.empty()) {
      auto it = rb.pending.begin();
      if (it->first > rb.delivered) break;
      Bytes chunk = std::move(it->second);
      const std::uint64_t coff = it->first;
      rb.pending_bytes -= chunk.size();
      rb.pending.erase(it);
      if (coff + chunk.size() <= rb.delivered) continue;
      ByteView rest = ByteView(chunk).subspan(rb.delivered - coff);
      if (auto r = tls->provide_data(level, rest); !r) {
        return quic_error(crypto_error(r.error().alert), r.error().message);
      }
      rb.delivered += rest.size();
    }
  } else {
    auto& slot = rb.pending[off];
    if (data.size() > slot.size()) {
      rb.pending_bytes += data.size() - slot.size();
      slot.assign(data.begin(), data.end());
    }
  }
  return drive_tls(now);
}

QuicResult<void> Connection::Impl::drive_tls(Instant now) {
  while (auto ev = tls->next_event()) {
    if (auto* s = std::get_if<crypto::SecretEvent>(&*ev)) {
      auto keys = crypto::PacketProtection::from_secret(s->aead, s->secret, s->level);
      if (!keys) return quic_error(TransportError::kInternalError, keys.error().message);
      if (s->level == crypto::EncryptionLevel::kOneRtt) {
        (s->direction == crypto::Direction::kWrite ? one_rtt_tx : one_rtt_rx)
            .emplace(std::move(keys).value());
        continue;
      }
      if (s->level != crypto::EncryptionLevel::kHandshake) continue;  // 0-RTT: unused
      if (s->direction == crypto::Direction::kWrite) {
        handshake.tx.emplace(std::move(keys).value());
      } else {
        handshake.rx.emplace(std::move(keys).value());
      }
    } else if (auto* p = std::get_if<crypto::PeerTransportParamsEvent>(&*ev)) {
      if (auto r = on_peer_params(now, p->raw); !r) return r;
    } else if (std::holds_alternative<crypto::HandshakeCompleteEvent>(*ev)) {
      on_handshake_complete(now);
    }
  }
  for (auto level : {crypto::EncryptionLevel::kInitial, crypto::EncryptionLevel::kHandshake,
                     crypto::EncryptionLevel::kOneRtt}) {
    Bytes out = tls->take_outgoing(level);
    if (out.empty()) continue;
    PacketSpace& sp = level == crypto::EncryptionLevel::kInitial     ? initial
                      : level == crypto::EncryptionLevel::kHandshake ? handshake
                                                                     : path().app;
    if (sp.discarded) continue;
    ByteView rest = out;
    while (!rest.empty()) {
      const std::size_t n = sp.crypto_send.write(rest);
      if (n == 0) return quic_error(TransportError::kInternalError, "CRYPTO send buffer full");
      rest = rest.subspan(n);
    }
  }
  // The client discards Initial keys when it first has Handshake data to send (RFC 9001 §4.9.1).
  if (is_client() && handshake.tx && !initial.discarded &&
      handshake.crypto_send.has_data_to_send()) {
    discard_space(now, initial);
  }
  if (tls->error()) {
    const auto& e = *tls->error();
    return quic_error(crypto_error(e.alert), e.message);
  }
  return {};
}

QuicResult<void> Connection::Impl::on_peer_params(Instant now, ByteView raw) {
  const Role peer = is_client() ? Role::kServer : Role::kClient;
  auto decoded = decode_transport_parameters(raw, peer);
  if (!decoded) return decoded.error();
  TransportParameters& p = *decoded;
  auto tp_error = [](std::string m) {
    return quic_error(TransportError::kTransportParameterError, std::move(m));
  };
  // RFC 9000 §7.3: authenticate the connection IDs used during the handshake.
  if (!p.initial_source_connection_id ||
      !frame::same_bytes(*p.initial_source_connection_id, peer_initial_scid.view())) {
    return tp_error("initial_source_connection_id does not match the packets' SCID");
  }
  if (is_client()) {
    if (!p.original_destination_connection_id ||
        !frame::same_bytes(*p.original_destination_connection_id, original_dcid.view())) {
      return tp_error("original_destination_connection_id mismatch");
    }
    if (retry_scid.has_value() != p.retry_source_connection_id.has_value() ||
        (retry_scid && !frame::same_bytes(*p.retry_source_connection_id, retry_scid->view()))) {
      return tp_error("retry_source_connection_id mismatch");
    }
    peer_reset_token = p.stateless_reset_token;
    if (p.stateless_reset_token) {
      peer_cids[0].cids[0].reset_token = *p.stateless_reset_token;
      peer_cids[0].cids[0].has_reset_token = true;
    }
  }
  peer_max_udp_payload = p.max_udp_payload_size;
  peer_max_ack_delay = std::chrono::milliseconds(p.max_ack_delay);
  peer_ack_delay_exponent = p.ack_delay_exponent;
  peer_active_cid_limit = p.active_connection_id_limit;
  peer_max_datagram_frame = p.max_datagram_frame_size.value_or(0);
  peer_idle_timeout = std::chrono::milliseconds(p.max_idle_timeout);
  send_credit.on_max_data(p.initial_max_data);
  bidi_limits.on_max_streams(p.initial_max_streams_bidi);
  uni_limits.on_max_streams(p.initial_max_streams_uni);
  // Streams the peer already opened got a zero send limit; apply the real one now.
  for (auto& [id, e] : streams) {
    if (e.send) e.send->on_max_stream_data(p.initial_max_stream_data_bidi_local);
  }
  for (auto& pth : paths)
    pth->pmtu_max = std::min<std::uint64_t>(pth->pmtu_max, peer_max_udp_payload);
  // draft multipath: on iff both sides sent initial_max_path_id; QNT iff both sent its TP and
  // multipath is on (spec §4.3). Each side may announce at most the other's limit of addresses.
  if (config.max_path_id > 0 && p.initial_max_path_id) {
    multipath_on = true;
    local_max_path_id = config.max_path_id;
    peer_max_path_id =
        static_cast<std::uint32_t>(std::min<std::uint64_t>(*p.initial_max_path_id, 0xffffffffu));
    if (config.nat_traversal_addresses > 0 && p.n0_nat_traversal) {
      nat.emplace(config.role, *p.n0_nat_traversal, config.nat_traversal_addresses,
                  config.initial_rtt);
    }
  }
  peer_params = std::move(p);
  qlog(now, "transport:parameters_set",
       std::string("{\"owner\":\"remote\",\"multipath\":") + (multipath_on ? "true" : "false") +
           ",\"nat_traversal\":" + (nat ? "true" : "false") + "}");
  return {};
}

void Connection::Impl::on_handshake_complete(Instant now) {
  handshake_complete = true;
  state = State::kEstablished;
  events.push_back(event::HandshakeCompleted{});
  // Hand the peer spare connection IDs (RFC 9000 §5.1.1), up to its limit (incl. the first);
  // with multipath also CIDs for every other path id both sides allow (noq does it eagerly).
  issue_local_cids(0, std::min<std::uint64_t>(peer_active_cid_limit, detail::kActiveCidLimit));
  issue_path_cids();
  if (!is_client()) {
    // RFC 9001 §4.1.2: the server's handshake is confirmed when it completes.
    handshake_done_pending = true;
    confirm_handshake(now);
  }
  qlog(now, "transport:connection_state_updated", "{\"new\":\"handshake_complete\"}");
}

void Connection::Impl::confirm_handshake(Instant now) {
  if (confirmed) return;
  confirmed = true;
  // RFC 9001 §4.9.2: Handshake keys are discarded once the handshake is confirmed.
  if (!initial.discarded) discard_space(now, initial);
  if (!handshake.discarded) discard_space(now, handshake);
  for (auto& p : paths) p->pmtu_next_probe = now;
  qlog(now, "transport:connection_state_updated", "{\"new\":\"handshake_confirmed\"}");
}

void Connection::Impl::discard_space(Instant now, PacketSpace& sp) {
  // RFC 9002 §6.4: remove the space's packets from bytes in flight, forget its state.
  (void)now;
  sp.sent.discard();
  sp.sent_frames.clear();
  sp.tx.reset();
  sp.rx.reset();
  sp.discarded = true;
  sp.probes_pending = 0;
}

QuicResult<void> Connection::Impl::on_ack(Instant now, Path& p, PacketSpace& sp,
                                          const frame::Ack& ack) {
  // RFC 9000 §19.3: validate the ranges (the decoder did), then process.
  if (ack.largest >= sp.next_pn) {
    return quic_error(TransportError::kProtocolViolation, "ACK of a packet never sent");
  }
  auto intervals = frame::ack_intervals(ack);
  auto outcome = sp.sent.on_ack(now, intervals, p.rtt);
  if (!outcome) return outcome.error();
  if (outcome->latest_rtt) {
    const auto exp = sp.id == SpaceId::kApplication ? peer_ack_delay_exponent : 3;
    Duration ack_delay =
        std::chrono::microseconds(ack.ack_delay << std::min<std::uint64_t>(exp, 20));
    if (sp.id != SpaceId::kApplication) ack_delay = Duration::zero();
    p.rtt.update(*outcome->latest_rtt, ack_delay, confirmed, peer_max_ack_delay);
    if (!p.first_rtt_sample) p.first_rtt_sample = now;
  }
  for (const auto& meta : outcome->newly_acked) {
    auto it = sp.sent_frames.find(meta.pn);
    if (it != sp.sent_frames.end()) {
      on_packet_acked(now, p, sp, meta, it->second);
      sp.sent_frames.erase(it);
    }
    if (meta.in_flight)
      p.cc->on_packet_acked(now, meta.time_sent, meta.bytes, p.rtt, p.app_limited);
  }
  // ECN (RFC 9000 §13.4.2): validate the counts, CE increase is a congestion signal.
  if (sp.id == SpaceId::kApplication && outcome->largest_acked_increased) {
    std::uint64_t ect0_acked = 0;
    for (const auto& m : outcome->newly_acked) ect0_acked += m.ect0 ? 1 : 0;
    const auto ecn = p.ecn.on_ack(ack.ecn, ect0_acked);
    if (ecn.newly_ce > 0 && !outcome->newly_acked.empty()) {
      ++stats.congestion_events;
      p.cc->on_congestion_event(now, outcome->newly_acked.back().time_sent);
    }
  }
  if (!outcome->lost.empty()) {
    std::optional<Instant> largest_lost_sent;
    std::uint64_t ect0_lost = 0;
    for (const auto& meta : outcome->lost) {
      ect0_lost += meta.ect0 ? 1 : 0;
      auto it = sp.sent_frames.find(meta.pn);
      // A lost PMTU probe says the size is too big, not that the path is congested.
      const bool probe = it != sp.sent_frames.end() && it->second.pmtu_probe;
      if (!probe && (!largest_lost_sent || meta.time_sent > *largest_lost_sent)) {
        largest_lost_sent = meta.time_sent;
      }
      if (it != sp.sent_frames.end()) {
        on_packet_lost(now, p, sp, meta, it->second, !probe);
        sp.sent_frames.erase(it);
      }
    }
    if (ect0_lost > 0) p.ecn.on_packets_lost(ect0_lost);
    if (largest_lost_sent) {
      ++stats.congestion_events;
      p.cc->on_congestion_event(now, *largest_lost_sent);
    }
    if (in_persistent_congestion(outcome->lost, p.rtt, peer_max_ack_delay, p.first_rtt_sample)) {
      p.cc->on_persistent_congestion(now);
    }
  }
  // RFC 9002 §6.2.1: the PTO backoff resets on an ACK (a client keeps it until the server's
  // address validation is certain — we have the server's Handshake packets by then).
  if (sp.id == SpaceId::kHandshake) handshake_acked = true;
  if (!outcome->newly_acked.empty()) p.pto_backoff = 0;
  // Our key update is complete once the peer acknowledges a packet of the new phase.
  if (sp.id == SpaceId::kApplication && key_update_first_pn && !outcome->newly_acked.empty() &&
      outcome->largest_newly_acked && *outcome->largest_newly_acked >= *key_update_first_pn) {
    key_update_acked = true;
  }
  return {};
}

void Connection::Impl::on_packet_acked(Instant now, Path& p, PacketSpace& sp,
                                       const SentPacketMeta& meta, SentFrames& fr) {
  for (const auto& s : fr.streams) {
    auto it = streams.find(s.stream_id);
    if (it == streams.end() || !it->second.send) continue;
    it->second.send->on_acked(s.offset, s.length, s.fin);
    // Writers wait for buffer space, and "stopped" waiters for everything to be acknowledged.
    if (it->second.send->writable() > 0 || it->second.send->all_acked()) {
      events.push_back(event::StreamWritable{s.stream_id});
    }
    maybe_close_stream(s.stream_id);
  }
  for (auto [off, len] : fr.crypto) sp.crypto_send.on_acked(off, len, false);
  for (auto id : fr.reset_streams) {
    auto it = streams.find(id);
    if (it != streams.end() && it->second.send) it->second.send->on_reset_acked();
  }
  if (fr.ack_largest) sp.acks.on_ack_acknowledged(*fr.ack_largest);
  if (fr.key_phase_flip) key_update_acked = true;
  if (fr.pmtu_probe) {
    if (fr.pmtu_probe > p.mtu) {
      p.mtu = fr.pmtu_probe;
      p.cc->on_max_datagram_size(p.mtu);
      qlog(now, "transport:mtu_updated", "{\"new\":" + std::to_string(p.mtu) + ",\"done\":true}");
    }
    p.pmtu_probe_size = 0;
    p.pmtu_failures = 0;
  }
  for (auto id : fr.reset_streams) maybe_close_stream(id);
  (void)meta;
}

void Connection::Impl::on_packet_lost(Instant now, Path& p, PacketSpace& sp,
                                      const SentPacketMeta& meta, SentFrames& fr,
                                      bool congestion_loss) {
  if (congestion_loss) ++stats.packets_lost;
  for (const auto& s : fr.streams) {
    auto it = streams.find(s.stream_id);
    if (it == streams.end() || !it->second.send) continue;
    it->second.send->on_lost(s.offset, s.length, s.fin);
    if (it->second.send->has_data_to_send()) schedule_stream(s.stream_id);
  }
  for (auto [off, len] : fr.crypto) sp.crypto_send.on_lost(off, len, false);
  if (fr.handshake_done) handshake_done_pending = true;
  if (fr.observed_address) observed_address_pending = true;
  // A lost PATH_CHALLENGE is sent again (with the same data) while its path is unvalidated.
  if (fr.path_challenge && !p.validated && p.challenge && !p.abandoned) p.challenge_pending = true;
  if (fr.max_data) pending_max_data = max_data_lost = true;
  for (auto id : fr.max_stream_data) {
    auto it = streams.find(id);
    if (it != streams.end() && it->second.recv && it->second.recv->wants_max_stream_data()) {
      it->second.pending_max_stream_data = true;
      it->second.max_stream_data_lost = true;
      pending_control_streams.insert(id);
    }
  }
  if (fr.max_streams_bidi) pending_max_streams[0] = pending_max_streams_lost[0] = true;
  if (fr.max_streams_uni) pending_max_streams[1] = pending_max_streams_lost[1] = true;
  for (auto [pid, seq] : fr.new_cids) {
    auto it = local_cids.find(pid);
    if (it != local_cids.end() && it->second.cids.count(seq)) it->second.pending_new.insert(seq);
  }
  for (auto [pid, seq] : fr.retire_cids) peer_cids[pid].pending_retire.insert(seq);
  for (auto pid : fr.path_abandons) {
    if (Path* q = find_path(pid); q && q->abandoned) q->abandon_pending = true;
  }
  for (auto pid : fr.path_statuses) {
    if (Path* q = find_path(pid); q && !q->abandoned) q->status_pending = true;
  }
  if (fr.max_path_id) max_path_id_pending = true;
  for (auto seq : fr.add_addresses) {
    if (nat && nat->local_address(seq)) pending_add_addresses.insert(seq);
  }
  for (auto seq : fr.remove_addresses) pending_remove_addresses.insert(seq);
  if (fr.reach_out_round && nat && *fr.reach_out_round == nat->round()) reach_out_pending = true;
  for (auto id : fr.reset_streams) {
    auto it = streams.find(id);
    if (it != streams.end() && it->second.send) {
      it->second.send->on_reset_lost();
      pending_control_streams.insert(id);
    }
  }
  for (auto id : fr.stop_sendings) {
    auto it = streams.find(id);
    if (it != streams.end() && it->second.recv) {
      it->second.recv->on_stop_sending_lost();
      pending_control_streams.insert(id);
    }
  }
  if (fr.pmtu_probe) {
    p.pmtu_probe_size = 0;
    if (++p.pmtu_failures >= 3) {
      // The size does not fit: search lower next time, or give up at the floor.
      p.pmtu_max = std::max<std::uint64_t>(p.mtu, (p.mtu + fr.pmtu_probe) / 2);
      p.pmtu_failures = 0;
    }
    p.pmtu_next_probe = now + 1s;
  }
  if (config.qlog) {
    qlog(now, "recovery:packet_lost",
         std::string("{\"header\":{\"packet_type\":\"") + detail::space_name(sp.id) +
             "\",\"packet_number\":" + std::to_string(meta.pn) + "}}");
  }
}

void Connection::Impl::maybe_close_stream(std::uint64_t id) {
  auto it = streams.find(id);
  if (it == streams.end()) return;
  auto& e = it->second;
  const bool send_done = !e.send || e.send->is_closed();
  const bool recv_done = !e.recv || e.recv->is_closed();
  if (!send_done || !recv_done) return;
  const bool ours = is_client_initiated(id) == is_client();
  // Peer-initiated streams must also have been accepted by the app before they go away.
  if (!ours && !e.accepted) return;
  streams.erase(it);
  pending_control_streams.erase(id);
  if (!ours) {
    limits(is_uni(id)).on_peer_stream_closed();
    pending_max_streams[is_uni(id) ? 1 : 0] = true;
  }
}

// ---------------------------------------------------------------------------------------------
// public API
// ---------------------------------------------------------------------------------------------

void Connection::handle_datagram(Instant now, const SocketAddr& from,
                                 std::span<std::uint8_t> datagram, std::uint8_t ecn) {
  impl_->on_datagram(now, from, datagram, ecn);
}

std::optional<Transmit> Connection::poll_transmit(Instant now, std::span<std::uint8_t> buf,
                                                  std::size_t max_datagrams) {
  return impl_->poll_transmit(now, buf, max_datagrams);
}

std::optional<Instant> Connection::next_timeout() const { return impl_->next_timeout(); }
void Connection::handle_timeout(Instant now) { impl_->on_timeout(now); }

std::optional<ConnectionEvent> Connection::poll_event() {
  if (impl_->events.empty()) return std::nullopt;
  auto ev = std::move(impl_->events.front());
  impl_->events.pop_front();
  return ev;
}

Role Connection::role() const { return impl_->config.role; }
bool Connection::is_handshake_complete() const { return impl_->handshake_complete; }
bool Connection::is_handshake_confirmed() const { return impl_->confirmed; }
bool Connection::is_closed() const { return impl_->closed.has_value(); }
bool Connection::is_drained() const { return impl_->state == Impl::State::kDrained; }
const std::optional<CloseReason>& Connection::close_reason() const { return impl_->closed; }
std::optional<EndpointId> Connection::peer_id() const {
  return impl_->tls ? impl_->tls->peer_id() : std::nullopt;
}
std::optional<std::string> Connection::alpn() const {
  return impl_->tls ? impl_->tls->alpn() : std::nullopt;
}
SocketAddr Connection::remote_address() const { return impl_->send_path().remote; }
std::optional<SocketAddr> Connection::observed_address() const {
  if (!impl_->last_observed) return std::nullopt;
  return impl_->last_observed->address;
}

ConnectionStats Connection::stats() const {
  ConnectionStats s = impl_->stats;
  const Path& p = impl_->send_path();
  s.path.id = p.id;
  s.path.status = p.status;
  s.path.has_rtt = p.rtt.has_sample();
  s.path.packets_sent = p.packets_sent;
  s.path.packets_received = p.packets_received;
  s.path.remote = p.remote;
  s.path.rtt = p.rtt.smoothed();
  s.path.min_rtt = p.rtt.has_sample() ? p.rtt.min() : Duration::zero();
  s.path.cwnd = p.cc->window();
  s.path.mtu = p.mtu;
  s.path.validated = p.validated;
  if (impl_->last_observed) s.path.observed = impl_->last_observed->address;
  return s;
}

std::uint64_t Connection::cid_epoch() const { return impl_->cid_epoch; }

std::vector<ConnectionId> Connection::local_cids() const {
  std::vector<ConnectionId> out;
  for (const auto& [pid, set] : impl_->local_cids) {
    for (const auto& [seq, c] : set.cids) out.push_back(c.cid);
  }
  return out;
}

bool Connection::matches_reset_token(ByteView datagram) const {
  if (datagram.size() < 21) return false;
  auto tail = datagram.last(16);
  for (const auto& [pid, set] : impl_->peer_cids) {
    for (const auto& [seq, c] : set.cids) {
      if (c.has_reset_token && std::equal(tail.begin(), tail.end(), c.reset_token.begin())) {
        return true;
      }
    }
  }
  return false;
}

void Connection::handle_stateless_reset(Instant now) {
  impl_->enter_draining(now, CloseReason{CloseReason::Kind::kStatelessReset, 0, 0, "", {}});
}

std::optional<std::uint64_t> Connection::open_stream(StreamDirection dir) {
  auto& I = *impl_;
  if (I.closed || !I.peer_params) return std::nullopt;
  auto id = I.limits(dir == StreamDirection::kUni).open_next();
  if (!id) return std::nullopt;  // blocked_at() now asks for STREAMS_BLOCKED
  detail::StreamEntry e;
  const auto& p = *I.peer_params;
  const std::uint64_t send_limit = dir == StreamDirection::kUni
                                       ? p.initial_max_stream_data_uni
                                       : p.initial_max_stream_data_bidi_remote;
  e.send.emplace(send_limit, I.config.stream_send_buffer);
  if (dir == StreamDirection::kBidi) {
    e.recv.emplace(I.config.stream_receive_window,
                   std::max(I.config.stream_receive_window, I.config.max_stream_receive_window));
  }
  I.streams.emplace(*id, std::move(e));
  return id;
}

std::optional<std::uint64_t> Connection::accept_stream(StreamDirection dir) {
  auto& q = impl_->accept_queue[dir == StreamDirection::kUni ? 1 : 0];
  while (!q.empty()) {
    const auto id = q.front();
    q.pop_front();
    auto it = impl_->streams.find(id);
    if (it == impl_->streams.end()) continue;
    it->second.accepted = true;
    return id;
  }
  return std::nullopt;
}

Result<std::size_t> Connection::stream_write(std::uint64_t id, ByteView data) {
  auto& I = *impl_;
  if (I.closed) return make_error("connection closed: " + I.closed->describe());
  auto it = I.streams.find(id);
  if (it == I.streams.end()) return make_error("unknown or closed stream " + std::to_string(id));
  auto& e = it->second;
  if (!e.send) return make_error("stream " + std::to_string(id) + " is receive-only");
  if (e.send->is_reset()) {
    return make_error("stream " + std::to_string(id) + " was reset (stopped by peer with code " +
                      std::to_string(e.send->reset_info() ? e.send->reset_info()->code : 0) + ")");
  }
  if (e.send->finished()) return make_error("stream " + std::to_string(id) + " is finished");
  const std::size_t n = e.send->write(data);
  if (n > 0) I.schedule_stream(id);
  return n;
}

Result<void> Connection::stream_finish(std::uint64_t id) {
  auto& I = *impl_;
  auto it = I.streams.find(id);
  if (it == I.streams.end() || !it->second.send) {
    return make_error("no writable stream " + std::to_string(id));
  }
  if (it->second.send->is_reset()) return make_error("stream was reset");
  it->second.send->finish();
  I.schedule_stream(id);
  return {};
}

Result<void> Connection::stream_reset(std::uint64_t id, std::uint64_t code) {
  auto& I = *impl_;
  auto it = I.streams.find(id);
  if (it == I.streams.end() || !it->second.send) {
    return make_error("no writable stream " + std::to_string(id));
  }
  auto& e = it->second;
  if (e.send->is_reset() || e.send->all_acked()) return {};
  e.send->reset(code);
  I.pending_control_streams.insert(id);
  return {};
}

Result<StreamReadResult> Connection::stream_read(std::uint64_t id, std::span<std::uint8_t> out) {
  auto& I = *impl_;
  auto it = I.streams.find(id);
  if (it == I.streams.end() || !it->second.recv) {
    return make_error("no readable stream " + std::to_string(id));
  }
  auto& e = it->second;
  if (auto code = e.recv->reset_code()) {
    (void)e.recv->read(out);  // moves the stream to ResetRead
    I.recv_window.on_consumed(e.recv->take_freed_credit());
    I.maybe_close_stream(id);
    return make_error("stream " + std::to_string(id) + " reset by peer with code " +
                      std::to_string(*code));
  }
  StreamReadResult r;
  r.bytes = e.recv->read(out);
  r.fin = e.recv->finished();
  if (const auto freed = e.recv->take_freed_credit(); freed > 0) {
    I.recv_window.on_consumed(freed);
    I.pending_max_data = true;
  }
  if (r.bytes > 0 && e.recv->wants_max_stream_data()) {
    // The window update itself is computed at send time (auto-tuning needs the RTT then).
    e.pending_max_stream_data = true;
    I.pending_control_streams.insert(id);
  }
  if (r.fin) {
    e.pending_max_stream_data = false;
    I.maybe_close_stream(id);
  }
  return r;
}

Result<void> Connection::stream_stop_sending(std::uint64_t id, std::uint64_t code) {
  auto& I = *impl_;
  auto it = I.streams.find(id);
  if (it == I.streams.end() || !it->second.recv) {
    return make_error("no readable stream " + std::to_string(id));
  }
  auto& e = it->second;
  if (e.recv->finished() || e.recv->reset_code()) return {};
  e.recv->stop_sending(code);
  if (const auto freed = e.recv->take_freed_credit(); freed > 0) {
    I.recv_window.on_consumed(freed);
    I.pending_max_data = true;
  }
  I.pending_control_streams.insert(id);
  I.maybe_close_stream(id);
  return {};
}

Result<void> Connection::stream_set_priority(std::uint64_t id, int priority) {
  auto it = impl_->streams.find(id);
  if (it == impl_->streams.end()) return make_error("unknown stream " + std::to_string(id));
  it->second.priority = priority;
  return {};
}

std::uint64_t Connection::stream_writable(std::uint64_t id) const {
  auto it = impl_->streams.find(id);
  if (it == impl_->streams.end() || !it->second.send) return 0;
  const auto& s = *it->second.send;
  if (s.is_reset() || s.finished()) return 0;
  return s.writable();
}

bool Connection::stream_all_acked(std::uint64_t id) const {
  auto it = impl_->streams.find(id);
  if (it == impl_->streams.end()) return true;  // closed: everything was acknowledged
  return !it->second.send || it->second.send->all_acked();
}

std::size_t Connection::max_datagram_size() const {
  const auto& I = *impl_;
  if (I.peer_max_datagram_frame == 0) return 0;
  // 1-RTT overhead: short header (1 + CID + 4-byte PN) + tag + frame type and length.
  const std::size_t overhead = 1 + 20 + 4 + detail::kTagLength + 1 + 4;
  const std::size_t mtu = I.send_path().mtu;
  return std::min<std::size_t>(I.peer_max_datagram_frame, mtu > overhead ? mtu - overhead : 0);
}

Result<void> Connection::send_datagram(ByteView data) {
  auto& I = *impl_;
  if (I.closed) return make_error("connection closed: " + I.closed->describe());
  if (!I.peer_params) return make_error("handshake not complete");
  if (I.peer_max_datagram_frame == 0) return make_error("peer does not accept datagrams");
  if (data.size() > max_datagram_size()) {
    return make_error("datagram of " + std::to_string(data.size()) +
                      " bytes exceeds the maximum of " + std::to_string(max_datagram_size()));
  }
  I.datagrams_out.emplace_back(data.begin(), data.end());
  I.datagrams_out_bytes += data.size();
  while (I.datagrams_out_bytes > I.config.datagram_send_buffer && I.datagrams_out.size() > 1) {
    I.datagrams_out_bytes -= I.datagrams_out.front().size();
    I.datagrams_out.pop_front();
    ++I.stats.datagrams_dropped;
  }
  return {};
}

std::optional<Bytes> Connection::recv_datagram() {
  auto& I = *impl_;
  if (I.datagrams_in.empty()) return std::nullopt;
  Bytes d = std::move(I.datagrams_in.front());
  I.datagrams_in.pop_front();
  I.datagrams_in_bytes -= d.size();
  return d;
}

void Connection::close(Instant now, std::uint64_t code, std::string_view reason) {
  auto& I = *impl_;
  if (I.closed) return;
  CloseReason r;
  r.kind = CloseReason::Kind::kLocalApplication;
  r.code = code;
  r.reason = std::string(reason);
  I.enter_closing(now, std::move(r), true);
}

Result<void> Connection::initiate_key_update() {
  auto& I = *impl_;
  if (!I.confirmed) return make_error("handshake not confirmed");
  if (!I.key_update_acked) return make_error("previous key update not yet acknowledged");
  auto& sp = I.path().app;
  auto next_tx = I.one_rtt_tx->next_generation();
  auto next_rx = I.one_rtt_rx->next_generation();
  if (!next_tx || !next_rx) return make_error("key derivation failed");
  I.one_rtt_tx.emplace(std::move(next_tx).value());
  I.prev_rx = std::move(I.one_rtt_rx);
  I.one_rtt_rx.emplace(std::move(next_rx).value());
  I.next_rx.reset();
  I.key_phase = !I.key_phase;
  I.phase_first_rx_pn.reset();  // nothing received in the new phase yet
  I.phase_ack_sent = false;
  I.key_update_first_pn = sp.next_pn;
  I.key_update_acked = false;
  I.packets_in_phase = 0;
  ++I.stats.key_updates;
  return {};
}

}  // namespace iroh::quic

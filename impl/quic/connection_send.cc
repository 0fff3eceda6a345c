// quic::Connection: packet assembly (RFC 9000 §12–§14, RFC 9001 §5).
//
// A datagram is built as a sequence of packets, one per packet number space that has something
// to say (Initial, Handshake, 1-RTT: the coalescing order of RFC 9000 §12.2). Each packet is
// written in place — header, then frames straight into the caller's buffer — and sealed when the
// next one starts or the datagram ends. Sealing the last packet late lets us pad it when the
// datagram must reach 1200 bytes (RFC 9000 §14.1) without knowing that in advance.
#include <algorithm>
#include <cstring>

#include "quic/connection_internal.h"
#include "quic/varint.h"

namespace iroh::quic {

using detail::kTagLength;

namespace {

std::size_t put_varint(std::uint8_t* p, std::uint64_t v) {
  if (v < 64) {
    p[0] = static_cast<std::uint8_t>(v);
    return 1;
  }
  if (v < 16384) {
    p[0] = static_cast<std::uint8_t>(0x40 | (v >> 8));
    p[1] = static_cast<std::uint8_t>(v);
    return 2;
  }
  if (v < (1ull << 30)) {
    p[0] = static_cast<std::uint8_t>(0x80 | (v >> 24));
    p[1] = static_cast<std::uint8_t>(v >> 16);
    p[2] = static_cast<std::uint8_t>(v >> 8);
    p[3] = static_cast<std::uint8_t>(v);
    return 4;
  }
  p[0] = static_cast<std::uint8_t>(0xc0 | (v >> 56));
  for (int i = 1; i < 8; ++i) p[i] = static_cast<std::uint8_t>(v >> (8 * (7 - i)));
  return 8;
}

// Writes frames into one packet's payload area.
struct PayloadWriter {
  std::uint8_t* base;
  std::size_t pos = 0;
  std::size_t limit = 0;  // payload bytes available (the tag's room is excluded)
  bool ack_eliciting = false;
  bool has_frames = false;
  Bytes* scratch = nullptr;  // the connection's, reused: no allocation per frame

  std::size_t room() const { return limit - pos; }
  bool put(const Frame& f) {
    scratch->clear();
    encode_frame(*scratch, f);
    if (scratch->size() > room()) return false;
    std::memcpy(base + pos, scratch->data(), scratch->size());
    pos += scratch->size();
    has_frames = true;
    if (is_ack_eliciting(f)) ack_eliciting = true;
    return true;
  }
  // STREAM/CRYPTO frames are written by hand: the data is copied once, from the send buffer.
  bool put_stream(std::uint64_t id, std::uint64_t offset, ByteView data, bool fin) {
    const std::size_t header =
        1 + varint_size(id) + (offset ? varint_size(offset) : 0) + varint_size(data.size());
    if (header + data.size() > room()) return false;
    std::uint8_t* p = base + pos;
    p[0] = static_cast<std::uint8_t>(frame_type::kStream | frame_type::kStreamLen |
                                     (offset ? frame_type::kStreamOff : 0) |
                                     (fin ? frame_type::kStreamFin : 0));
    std::size_t n = 1;
    n += put_varint(p + n, id);
    if (offset) n += put_varint(p + n, offset);
    n += put_varint(p + n, data.size());
    if (!data.empty()) std::memcpy(p + n, data.data(), data.size());
    pos += n + data.size();
    has_frames = ack_eliciting = true;
    return true;
  }
  bool put_crypto(std::uint64_t offset, ByteView data) {
    const std::size_t header = 1 + varint_size(offset) + varint_size(data.size());
    if (header + data.size() > room()) return false;
    std::uint8_t* p = base + pos;
    p[0] = static_cast<std::uint8_t>(frame_type::kCrypto);
    std::size_t n = 1;
    n += put_varint(p + n, offset);
    n += put_varint(p + n, data.size());
    std::memcpy(p + n, data.data(), data.size());
    pos += n + data.size();
    has_frames = ack_eliciting = true;
    return true;
  }
  void pad_to(std::size_t payload_len) {
    if (payload_len > limit) payload_len = limit;
    if (payload_len > pos) {
      std::memset(base + pos, 0, payload_len - pos);
      pos = payload_len;
      has_frames = true;
    }
  }
};

// The multipath and QNT control frames waiting to go (they ride on the send path): PATH_ABANDON,
// PATH_STATUS_*, MAX_PATH_ID, and the QNT ADD_ADDRESS / REMOVE_ADDRESS / REACH_OUT.
void put_multipath_frames(Connection::Impl& c, PayloadWriter& w, SentFrames& rec) {
  for (auto& q : c.paths) {
    if (q->abandon_pending) {
      if (!w.put(Frame(frame::PathAbandon{q->id, q->abandon_code}))) return;
      q->abandon_pending = false;
      q->abandon_sent = true;
      rec.path_abandons.push_back(q->id);
    }
    if (q->status_pending && !q->abandoned) {
      const bool available = q->status == PathStatus::kAvailable;
      if (!w.put(Frame(frame::PathStatus{available, q->id, q->status_seq}))) return;
      q->status_pending = false;
      rec.path_statuses.push_back(q->id);
    }
  }
  if (c.max_path_id_pending) {
    if (!w.put(Frame(frame::MaxPathId{c.local_max_path_id}))) return;
    c.max_path_id_pending = false;
    rec.max_path_id = true;
  }
  if (!c.nat) return;
  // Removals first: a client at its address limit must make room before the new address comes.
  for (auto it = c.pending_remove_addresses.begin(); it != c.pending_remove_addresses.end();) {
    if (!w.put(Frame(frame::RemoveAddress{*it}))) return;
    rec.remove_addresses.push_back(*it);
    it = c.pending_remove_addresses.erase(it);
  }
  for (auto it = c.pending_add_addresses.begin(); it != c.pending_add_addresses.end();) {
    auto addr = c.nat->local_address(*it);
    if (addr && !w.put(Frame(frame::AddAddress{*it, *addr}))) return;
    if (addr) rec.add_addresses.push_back(*it);
    it = c.pending_add_addresses.erase(it);
  }
  if (c.reach_out_pending) {
    // All REACH_OUTs of the round in one packet (at most 32 × 27 bytes; they fit when the packet
    // is fresh, else they wait for the next one).
    std::size_t need = 0;
    for (const auto& a : c.nat->reach_out_addresses()) {
      need += 4 + varint_size(c.nat->round()) + (a.is_v4() ? 4 : 16) + 2;
    }
    if (need > w.room()) return;
    for (const auto& a : c.nat->reach_out_addresses()) {
      w.put(Frame(frame::ReachOut{c.nat->round(), a}));
    }
    c.reach_out_pending = false;
    rec.reach_out_round = c.nat->round();
  }
}

// A packet whose header and frames are written but which is not sealed yet.
struct OpenPacket {
  PacketSpace* space = nullptr;
  std::size_t start = 0;      // offset in the datagram
  std::size_t pn_offset = 0;  // from start
  std::size_t pn_length = 0;
  std::uint64_t pn = 0;
  bool long_header = false;
  PayloadWriter writer;
  SentFrames record;
  bool padded = false;
};

}  // namespace

void Connection::Impl::schedule_stream(std::uint64_t id) {
  auto it = streams.find(id);
  if (it == streams.end() || it->second.queued) return;
  it->second.queued = true;
  send_schedule[it->second.priority].push_back(id);
}

std::uint64_t Connection::Impl::in_flight_bytes(const Path& p) const {
  const std::uint64_t handshake_bytes =
      p.id == 0 ? initial.sent.bytes_in_flight() + handshake.sent.bytes_in_flight() : 0;
  return handshake_bytes + p.app.sent.bytes_in_flight();
}

bool Connection::Impl::conn_control_pending() const {
  if (handshake_done_pending) return true;
  if (pending_max_data || pending_max_streams[0] || pending_max_streams[1]) return true;
  for (const auto& [pid, set] : local_cids) {
    if (!set.pending_new.empty()) return true;
  }
  for (const auto& [pid, set] : peer_cids) {
    if (!set.pending_retire.empty()) return true;
  }
  if (!pending_control_streams.empty()) return true;
  if (max_path_id_pending || reach_out_pending || !pending_add_addresses.empty() ||
      !pending_remove_addresses.empty()) {
    return true;
  }
  for (const auto& q : paths) {
    if (q->abandon_pending || q->status_pending) return true;
  }
  return false;
}

bool Connection::Impl::app_has_stream_data() const {
  for (const auto& [prio, q] : send_schedule) {
    if (!q.empty()) return true;
  }
  return false;
}

bool Connection::Impl::space_wants_to_send(Instant now, const Path& p, bool data, PacketSpace& sp,
                                           bool cc_allowed) const {
  if (!has_tx(sp) || sp.discarded) return false;
  if (sp.acks.ack_due(now)) return true;
  if (sp.probes_pending > 0) return true;
  if (sp.id == SpaceId::kApplication) {
    if (p.ping_pending || (p.challenge_pending && p.challenge) || owes_response_on(p)) return true;
  }
  if (!cc_allowed) return false;
  if (sp.crypto_send.has_data_to_send()) return true;
  if (sp.id != SpaceId::kApplication || !data) return false;
  // The send path also carries every other path's ACKs.
  for (const auto& q : paths) {
    if (q.get() != &p && q->app.acks.ack_due(now)) return true;
  }
  if (observed_address_due(p)) return true;
  if (conn_control_pending()) return true;
  if (!datagrams_out.empty()) return true;
  if (app_has_stream_data()) return true;
  return false;
}

std::optional<Transmit> Connection::Impl::poll_transmit(Instant now, std::span<std::uint8_t> buf,
                                                        std::size_t max_datagrams) {
  if (state == State::kDraining || state == State::kDrained) return std::nullopt;
  if (buf.size() < detail::kMinInitialDatagram) return std::nullopt;
  if (state == State::kClosing) {
    if (!close_pending) return std::nullopt;
    Path& p = send_path();
    close_pending = false;
    std::size_t room = std::min<std::size_t>(buf.size(), p.mtu);
    if (!p.validated) {
      // A CONNECTION_CLOSE is bound by the anti-amplification limit too (RFC 9000 §8.1, §10.2).
      const std::uint64_t budget = 3 * p.bytes_received;
      if (p.bytes_sent >= budget) return std::nullopt;
      room = std::min<std::size_t>(room, budget - p.bytes_sent);
    }
    const std::size_t n = build_close_datagram(now, p, buf.first(room));
    if (n == 0) return std::nullopt;
    p.bytes_sent += n;
    stats.bytes_sent += n;
    return Transmit{p.remote, 0, n, n};
  }
  // A PATH_RESPONSE to an address that is not its path's (a migrating peer, or a QNT probe from
  // a candidate address) goes alone.
  if (one_rtt_tx) {
    for (const auto& r : path_responses) {
      const Path* on = find_path(r.path_id);
      if (on && on->remote == r.dest) continue;
      SocketAddr dest;
      const std::size_t n = build_path_probe(now, buf, dest);
      if (n > 0) return Transmit{dest, 0, n, n};
      break;
    }
  }
  // QNT probes to candidate addresses (not congestion controlled).
  if (nat && confirmed && one_rtt_tx) {
    if (auto t = nat->next_probe_time(); t && *t <= now) {
      SocketAddr dest;
      const std::size_t n = build_nat_probe(now, buf, dest);
      if (n > 0) return Transmit{dest, 0, n, n};
    }
  }
  Path& data_path = send_path();
  // Path-specific traffic (validation, PTO probes, keep-alives) on the other paths, round-robin.
  if (paths.size() > 1) {
    for (std::size_t k = 0; k < paths.size(); ++k) {
      const std::size_t idx = (send_rr + k) % paths.size();
      Path& p = *paths[idx];
      if (&p == &data_path || !path_wants_to_send(now, p)) continue;
      if (multipath() && !peer_cid_for(p.id)) continue;
      send_rr = idx + 1;
      if (auto t = transmit_on(now, p, false, buf, 1)) return t;
    }
  }
  return transmit_on(now, data_path, true, buf, max_datagrams);
}

std::optional<Transmit> Connection::Impl::transmit_on(Instant now, Path& p, bool data,
                                                      std::span<std::uint8_t> buf,
                                                      std::size_t max_datagrams) {
  // (Fix: config.pmtu_discovery was only consulted by next_timeout(), so "disabled" still probed.)
  if (data && config.pmtu_discovery && confirmed && p.pmtu_next_probe &&
      *p.pmtu_next_probe <= now && p.pmtu_probe_size == 0 && p.mtu < p.pmtu_max &&
      buf.size() >= p.pmtu_max && p.validated) {
    const std::size_t n = build_pmtu_probe(now, p, buf);
    if (n > 0) return Transmit{p.remote, 0, n, n};
  }

  // One ECN codepoint per batch (it is a socket-level setting for the whole GSO send). Only
  // 1-RTT traffic after confirmation is marked, so validation sees only application packets.
  batch_ecn = config.ecn && confirmed ? p.ecn.codepoint_to_send() : EcnCodepoint::kNotEct;
  std::size_t total = 0;
  std::size_t segment = 0;
  for (std::size_t i = 0; i < std::max<std::size_t>(max_datagrams, 1); ++i) {
    std::size_t room = std::min<std::size_t>(buf.size() - total, p.mtu);
    if (!p.validated) {
      // Anti-amplification: at most three times what the peer sent us (RFC 9000 §8.1). A
      // server's ack-eliciting Initial must fill a 1200-byte datagram (§14.1), so with less
      // budget than that left, wait for the client's next datagram instead of sending a short one.
      // A client never limits itself towards a server's address it dialed (path 0); on paths it
      // opened it is the one proving the address, so it is not limited either.
      if (!is_client()) {
        const std::uint64_t budget = 3 * p.bytes_received;
        if (p.bytes_sent >= budget) break;
        const std::uint64_t left = budget - p.bytes_sent;
        if (left < detail::kMinInitialDatagram && !initial.discarded && initial.tx) break;
        room = std::min<std::size_t>(room, left);
      }
    }
    // GSO: every datagram but the last has exactly the segment size (the first one's).
    if (i > 0) room = std::min(room, segment);
    if (room < 64 || (i > 0 && room < segment)) break;
    bool eliciting = false;
    // Nearly full datagrams are padded to exactly `room` so a GSO batch keeps its segment size
    // (STREAM frames rarely fit a packet to the byte).
    const std::size_t n = build_datagram(now, p, data, buf.subspan(total, room), eliciting, room);
    if (n == 0) {
      // Nothing left to send while the window had room: the application is the limit.
      if (data && !pacing_blocked && in_flight_bytes(p) + p.mtu <= p.cc->window()) {
        p.app_limited = true;
      }
      break;
    }
    p.bytes_sent += n;
    stats.bytes_sent += n;
    if (i == 0) segment = n;
    total += n;
    // GSO: every datagram but the last has the segment size; a shorter one ends the batch.
    if (n < segment) break;
  }
  if (total == 0) return std::nullopt;
  return Transmit{p.remote, static_cast<std::uint8_t>(batch_ecn), total, segment};
}

std::size_t Connection::Impl::build_datagram(Instant now, Path& p, bool data,
                                             std::span<std::uint8_t> out, bool& ack_eliciting_sent,
                                             std::size_t pad_to) {
  const bool first_path = &p == paths.front().get();
  std::uint64_t in_flight = in_flight_bytes(p);
  const bool probing =
      (first_path && (initial.probes_pending || handshake.probes_pending)) || p.app.probes_pending;
  // Off the send path only small path-maintenance frames go: never held by congestion control.
  bool cc_allowed = !data || probing || in_flight + p.mtu <= p.cc->window() || in_flight == 0;
  // The window limits us (not the application): acknowledgements may grow it (RFC 9002 §7.8).
  if (!cc_allowed) {
    p.app_limited = false;
    ++stats.blocked_cwnd;
  }
  if (data && cc_allowed && config.pacing && !probing && one_rtt_tx) {
    const Instant t = p.pacer.next_send_time(
        now, p.cc->window(), p.rtt.has_sample() ? p.rtt.smoothed() : config.initial_rtt, p.mtu);
    if (t > now) {
      pacing_blocked = true;
      pacing_deadline = t;
      cc_allowed = false;
      p.app_limited = false;
      ++stats.blocked_pacing;
    } else {
      pacing_blocked = false;
    }
  }

  std::size_t used = 0;
  std::optional<OpenPacket> open;
  bool has_initial = false;
  bool needs_padding = false;
  std::size_t datagram_bytes = 0;

  auto seal = [&](OpenPacket& pk) -> std::size_t {
    PacketSpace& sp = *pk.space;
    auto& w = pk.writer;
    // Header protection samples 16 bytes starting 4 after the PN field (RFC 9001 §5.4.2).
    if (pk.pn_length + w.pos < 4) w.pad_to(4 - pk.pn_length);
    std::uint8_t* hdr = out.data() + pk.start;
    if (pk.long_header) {
      const std::uint64_t len = pk.pn_length + w.pos + kTagLength;
      hdr[pk.pn_offset - 2] = static_cast<std::uint8_t>(0x40 | (len >> 8));
      hdr[pk.pn_offset - 1] = static_cast<std::uint8_t>(len);
    }
    const std::size_t total_len = pk.pn_offset + pk.pn_length + w.pos + kTagLength;
    auto sealed =
        seal_packet(std::span<std::uint8_t>(hdr, total_len), pk.pn_offset, pk.pn, w.pos,
                    *tx_keys(sp), sp.id == SpaceId::kApplication && multipath() ? p.id : 0);
    if (!sealed) return 0;
    const bool in_flight = w.ack_eliciting || pk.padded;
    SentPacketMeta meta{pk.pn,           now,       static_cast<std::uint32_t>(*sealed),
                        w.ack_eliciting, in_flight, batch_ecn == EcnCodepoint::kEct0};
    sp.sent.on_sent(meta);
    if (w.ack_eliciting || !pk.record.crypto.empty() || pk.record.ack_largest) {
      sp.sent_frames.emplace(pk.pn, std::move(pk.record));
    }
    if (in_flight) {
      const std::uint64_t after = in_flight_bytes(p);
      p.cc->on_packet_sent(now, *sealed, after);
      p.pacer.on_sent(now, *sealed);
    }
    if (w.ack_eliciting) {
      ack_eliciting_sent = true;
      last_ack_eliciting_sent = now;
      p.last_ack_eliciting_sent = now;
      // noq: the first ack-eliciting packet sent after a receive also restarts the path's idle
      // timer (RFC 9000 §10.1 does the same for the connection).
      if (p.received_since_send) {
        p.last_rx = now;
        p.received_since_send = false;
      }
      if (sp.probes_pending > 0) --sp.probes_pending;
    }
    if (batch_ecn != EcnCodepoint::kNotEct) p.ecn.on_packet_sent(batch_ecn);
    ++stats.packets_sent;
    ++p.packets_sent;
    if (config.qlog) {
      qlog(now, "transport:packet_sent",
           std::string("{\"header\":{\"packet_type\":\"") + detail::space_name(sp.id) +
               "\",\"packet_number\":" + std::to_string(pk.pn) +
               (multipath() ? ",\"path_id\":" + std::to_string(p.id) : std::string()) +
               "},\"raw\":{\"length\":" + std::to_string(*sealed) + "}}");
    }
    return *sealed;
  };

  for (SpaceId sid : {SpaceId::kInitial, SpaceId::kHandshake, SpaceId::kApplication}) {
    if (sid != SpaceId::kApplication && !first_path) continue;  // handshake spaces: path 0 only
    PacketSpace& sp = space(sid, p);
    if (!space_wants_to_send(now, p, data, sp, cc_allowed)) continue;
    // Seal the previous packet: this one follows it in the datagram.
    if (open) {
      const std::size_t n = seal(*open);
      if (n == 0) return 0;
      used = open->start + n;
      open.reset();
    }
    if (out.size() - used < 64) break;

    OpenPacket pk;
    pk.space = &sp;
    pk.start = used;
    pk.pn = sp.next_pn;
    PacketHeader h;
    h.type = sid == SpaceId::kInitial     ? PacketType::kInitial
             : sid == SpaceId::kHandshake ? PacketType::kHandshake
                                          : PacketType::kOneRtt;
    {
      auto dcid = sid == SpaceId::kApplication ? peer_cid_for(p.id) : peer_cid_for(0);
      if (!dcid) break;  // no CID for this path (yet)
      h.dcid = *dcid;
    }
    h.scid = initial_scid;
    if (sid == SpaceId::kInitial && is_client()) h.token = retry_token;
    h.pn_length = static_cast<std::uint8_t>(packet_number_length(pk.pn, sp.sent.largest_acked()));
    h.packet_number = pk.pn;
    h.key_phase = key_phase;
    h.length_size = 2;
    h.length = 0;
    Bytes& header = frame_scratch;
    header.clear();
    auto hr = encode_header(header, h);
    if (!hr) return 0;
    pk.pn_offset = *hr;
    pk.pn_length = h.pn_length;
    pk.long_header = sid != SpaceId::kApplication;
    if (header.size() + kTagLength + 8 > out.size() - used) break;
    std::memcpy(out.data() + used, header.data(), header.size());
    auto& w = pk.writer;
    w.base = out.data() + used + header.size();
    w.scratch = &payload_scratch;
    w.limit = out.size() - used - header.size() - kTagLength;

    // ACK first: it is what the peer's loss detection waits for. With multipath every 1-RTT
    // acknowledgement is a PATH_ACK (path 0's too, as noq sends), and the send path carries
    // those of every path.
    if (sp.acks.ack_due(now) || sp.acks.has_ack_eliciting_unacked() ||
        (sp.id != SpaceId::kApplication && sp.acks.largest())) {
      const std::uint64_t exp = sid == SpaceId::kApplication ? detail::kAckDelayExponent : 3;
      if (auto ack = sp.acks.build_ack(now, exp)) {
        const bool as_path_ack = sid == SpaceId::kApplication && multipath();
        if (as_path_ack ? w.put(Frame(frame::PathAck{p.id, *ack})) : w.put(Frame(*ack))) {
          pk.record.ack_largest = ack->largest;
          sp.acks.on_ack_sent();
          if (sid == SpaceId::kApplication && p.id == 0 && phase_first_rx_pn &&
              ack->largest >= *phase_first_rx_pn) {
            phase_ack_sent = true;
          }
        }
      }
    }
    if (sid == SpaceId::kApplication && multipath() && data) {
      for (auto& q : paths) {
        if (q.get() == &p) continue;
        auto& qa = q->app.acks;
        if (!(qa.ack_due(now) || qa.has_ack_eliciting_unacked())) continue;
        auto ack = qa.build_ack(now, detail::kAckDelayExponent);
        if (!ack) continue;
        // Not recorded in this packet's SentFrames (it tracks its own path's ACK only): a lost
        // PATH_ACK is simply superseded by the next one.
        if (!w.put(Frame(frame::PathAck{q->id, *ack}))) break;
        qa.on_ack_sent();
        if (q->id == 0 && phase_first_rx_pn && ack->largest >= *phase_first_rx_pn) {
          phase_ack_sent = true;
        }
      }
    }
    if (cc_allowed && sid == SpaceId::kApplication) {
      // Path maintenance, on the path itself: the answers to its challenges, its own challenge.
      for (auto it = path_responses.begin(); it != path_responses.end();) {
        if (it->path_id != p.id || it->dest != p.remote) {
          ++it;
          continue;
        }
        if (!w.put(Frame(frame::PathResponse{it->data}))) break;
        it = path_responses.erase(it);
        // noq pads on-path responses like challenges (RFC 9000 §8.2.2 allows it).
        if (multipath()) {
          pk.padded = true;
          needs_padding = true;
        }
      }
      if (p.challenge_pending && p.challenge) {
        if (w.put(Frame(frame::PathChallenge{*p.challenge}))) {
          p.challenge_pending = false;
          pk.record.path_challenge = true;
          pk.padded = true;  // RFC 9000 §8.2.1: challenges travel in ≥ 1200-byte datagrams
          needs_padding = true;
        }
      }
    }
    if (cc_allowed && data) {
      if (sid == SpaceId::kApplication) {
        if (handshake_done_pending && !is_client() && w.put(Frame(frame::HandshakeDone{}))) {
          handshake_done_pending = false;
          pk.record.handshake_done = true;
        }
        // QAD: the peer's address as we see it on this path (1-RTT only, after confirmation).
        if (observed_address_due(p) &&
            w.put(Frame(frame::ObservedAddress{next_observed_seq, p.remote}))) {
          ++next_observed_seq;
          ++stats.observed_addresses_sent;
          p.observed_address_sent = true;
          observed_address_pending = false;
          pk.record.observed_address = true;
        }
        if (multipath()) put_multipath_frames(*this, w, pk.record);
        if (pending_max_data) {
          const Duration srtt = p.rtt.has_sample() ? p.rtt.smoothed() : config.initial_rtt;
          auto v = recv_window.take_max_data_update(now, srtt);
          // A lost MAX_DATA is repeated with the current limit (RFC 9000 §13.3): take_update()
          // only reports *new* limits, so without this the lost credit never reached the peer.
          if (!v && max_data_lost) v = recv_window.current_limit();
          if (v && w.put(Frame(frame::MaxData{*v}))) {
            pk.record.max_data = true;
            max_data_lost = false;
          }
          pending_max_data = false;
        }
        for (int d = 0; d < 2; ++d) {
          StreamLimits& lim = limits(d == 1);
          if (pending_max_streams[d]) {
            // A fresh value if streams closed since the last one, else a repeat of a lost one.
            const auto update = lim.take_max_streams_update();
            const bool repeat = pending_max_streams_lost[d];
            if (update || repeat) {
              const std::uint64_t v = update.value_or(lim.current_max_streams());
              if (w.put(Frame(frame::MaxStreams{d == 0, v}))) {
                pending_max_streams[d] = pending_max_streams_lost[d] = false;
                (d == 0 ? pk.record.max_streams_bidi : pk.record.max_streams_uni) = true;
              }
            } else {
              pending_max_streams[d] = false;
            }
          }
          if (auto at = lim.blocked_at(); at && streams_blocked_sent_at[d] != at) {
            if (w.put(Frame(frame::StreamsBlocked{d == 0, *at}))) streams_blocked_sent_at[d] = at;
          }
        }
        // CIDs: with multipath PATH_NEW/RETIRE_CONNECTION_ID for every path, path 0 included
        // (as noq sends them); without, the RFC 9000 frames.
        bool cids_full = false;
        for (auto& [pid, set] : local_cids) {
          for (auto it = set.pending_new.begin(); it != set.pending_new.end();) {
            auto lc = set.cids.find(*it);
            if (lc == set.cids.end()) {
              it = set.pending_new.erase(it);
              continue;
            }
            frame::NewConnectionId f;
            if (multipath()) f.path_id = pid;
            f.sequence = *it;
            f.retire_prior_to = 0;
            f.cid = lc->second.cid.view();
            f.reset_token = lc->second.reset_token;
            if (!w.put(Frame(f))) {
              cids_full = true;
              break;
            }
            pk.record.new_cids.emplace_back(pid, *it);
            it = set.pending_new.erase(it);
          }
          if (cids_full) break;
        }
        for (auto& [pid, set] : peer_cids) {
          for (auto it = set.pending_retire.begin(); it != set.pending_retire.end();) {
            const auto path_id =
                multipath() ? std::optional<std::uint64_t>(pid) : std::optional<std::uint64_t>{};
            if (!w.put(Frame(frame::RetireConnectionId{path_id, *it}))) break;
            pk.record.retire_cids.emplace_back(pid, *it);
            it = set.pending_retire.erase(it);
          }
        }
        for (auto it = pending_control_streams.begin(); it != pending_control_streams.end();) {
          auto se = streams.find(*it);
          if (se == streams.end()) {
            it = pending_control_streams.erase(it);
            continue;
          }
          auto& e = se->second;
          bool full = false;
          if (auto reset = e.send ? e.send->pending_reset() : std::nullopt) {
            if (w.put(Frame(frame::ResetStream{*it, reset->code, reset->final_size}))) {
              e.send->on_reset_sent();
              pk.record.reset_streams.push_back(*it);
            } else {
              full = true;
            }
          }
          if (auto code = e.recv ? e.recv->pending_stop_sending() : std::nullopt; !full && code) {
            if (w.put(Frame(frame::StopSending{*it, *code}))) {
              e.recv->on_stop_sending_sent();
              pk.record.stop_sendings.push_back(*it);
            } else {
              full = true;
            }
          }
          if (!full && e.pending_max_stream_data && e.recv) {
            const Duration srtt = p.rtt.has_sample() ? p.rtt.smoothed() : config.initial_rtt;
            auto v = e.recv->take_max_stream_data_update(now, srtt);
            // Lost MAX_STREAM_DATA: repeat the current limit (RFC 9000 §13.3). Without this a
            // lost update was never resent once the window had been advanced, and a sender
            // that used up the old limit stalled forever.
            if (!v && e.max_stream_data_lost) v = e.recv->current_max_stream_data();
            if (v) {
              if (w.put(Frame(frame::MaxStreamData{*it, *v}))) {
                pk.record.max_stream_data.push_back(*it);
                e.pending_max_stream_data = false;
                e.max_stream_data_lost = false;
              } else {
                full = true;
              }
            } else {
              e.pending_max_stream_data = false;
            }
          }
          if (full) break;
          it = pending_control_streams.erase(it);
        }
        // Blocked signals (RFC 9000 §4.1), once per limit value.
        if (send_credit.available() == 0 && app_has_stream_data()) {
          if (auto at = send_credit.blocked_at(); at && data_blocked_sent_at != at) {
            if (w.put(Frame(frame::DataBlocked{*at}))) data_blocked_sent_at = at;
          }
        }
        // Datagrams: each in its own frame; one that does not fit waits for the next packet.
        while (!datagrams_out.empty()) {
          const Bytes& d = datagrams_out.front();
          if (!w.put(Frame(frame::Datagram{d, true}))) break;
          datagrams_out_bytes -= d.size();
          datagrams_out.pop_front();
          ++stats.datagrams_sent;
        }
      }
      // CRYPTO (retransmissions first; the send stream orders them).
      while (sp.crypto_send.has_data_to_send() && w.room() > 16) {
        const std::uint64_t max = w.room() - 1 - 8 - 4;
        auto chunk = sp.crypto_send.next_chunk(max, UINT64_MAX);
        if (!chunk) break;
        if (chunk->data.empty()) break;
        if (!w.put_crypto(chunk->offset, chunk->data)) {
          sp.crypto_send.on_lost(chunk->offset, chunk->data.size(), false);
          break;
        }
        pk.record.crypto.emplace_back(chunk->offset, chunk->data.size());
      }
      if (sid == SpaceId::kApplication && handshake_complete) {
        // STREAM frames: highest priority first, round-robin within a priority.
        for (auto bucket = send_schedule.begin(); bucket != send_schedule.end();) {
          auto& q = bucket->second;
          // Bounded: each pass either writes a chunk or retires a stream from the queue.
          std::size_t visits = q.size() + 64;
          while (visits-- > 0 && !q.empty() && w.room() > 24) {
            const std::uint64_t id = q.front();
            q.pop_front();
            auto se = streams.find(id);
            if (se == streams.end() || !se->second.send) continue;
            auto& e = se->second;
            if (e.priority != bucket->first) {
              // Priority changed while queued: move it.
              e.queued = false;
              schedule_stream(id);
              continue;
            }
            const std::uint64_t overhead = 1 + varint_size(id) + 8 + 4;
            if (w.room() <= overhead) {
              q.push_front(id);
              break;
            }
            auto chunk = e.send->next_chunk(w.room() - overhead, send_credit.available());
            if (!chunk) {
              if (e.send->blocked_at() || send_credit.available() == 0)
                ++stats.blocked_flow_control;
              e.queued = false;
              if (auto at = e.send->blocked_at(); at && e.blocked_sent_at != at) {
                if (w.put(Frame(frame::StreamDataBlocked{id, *at}))) e.blocked_sent_at = at;
              }
              continue;
            }
            if (!w.put_stream(id, chunk->offset, chunk->data, chunk->fin)) {
              e.send->on_lost(chunk->offset, chunk->data.size(), chunk->fin);
              q.push_front(id);
              break;
            }
            send_credit.consume(chunk->new_bytes);
            stats.stream_bytes_sent += chunk->data.size();
            pk.record.streams.push_back({id, chunk->offset, chunk->data.size(), chunk->fin});
            if (!e.send->has_data_to_send()) {
              e.queued = false;
            } else if (chunk->data.size() + overhead < w.room() + chunk->data.size() &&
                       w.room() > overhead + 64) {
              // The chunk ended early (a send-buffer block boundary) and the packet has room:
              // keep filling it from the same stream.
              q.push_front(id);
            } else {
              q.push_back(id);  // round-robin between streams, packet by packet
            }
          }
          if (q.empty()) {
            bucket = send_schedule.erase(bucket);
          } else if (w.room() <= 24) {
            break;
          } else {
            ++bucket;
          }
        }
      }
    }
    // Something ack-eliciting must go out: PTO probes, keep-alives.
    if (!w.ack_eliciting &&
        (sp.probes_pending > 0 || (sid == SpaceId::kApplication && p.ping_pending))) {
      if (w.put(Frame(frame::Ping{}))) {
        if (sid == SpaceId::kApplication) p.ping_pending = false;
      }
    } else if (sid == SpaceId::kApplication && w.ack_eliciting) {
      p.ping_pending = false;
    }
    if (!w.has_frames) continue;  // nothing fit after all (header already discarded by reuse)
    sp.next_pn++;
    if (sid == SpaceId::kInitial) {
      has_initial = true;
      if (is_client() || w.ack_eliciting) needs_padding = true;
    }
    open = std::move(pk);
  }
  if (!open) return 0;
  if (needs_padding) {
    // Pad the last packet so the datagram reaches 1200 bytes (RFC 9000 §14.1), within `out`.
    const std::size_t target = std::min<std::size_t>(detail::kMinInitialDatagram, out.size());
    const std::size_t header_len = open->pn_offset + open->pn_length;
    const std::size_t current = open->start + header_len + open->writer.pos + kTagLength;
    if (current < target) {
      open->writer.pad_to(open->writer.pos + (target - current));
      open->padded = true;
    }
  }
  (void)has_initial;
  if (pad_to > 0 && pad_to <= out.size() && open->writer.ack_eliciting) {
    const std::size_t header_len = open->pn_offset + open->pn_length;
    const std::size_t current = open->start + header_len + open->writer.pos + kTagLength;
    if (current < pad_to && current + 64 >= pad_to) {
      open->writer.pad_to(open->writer.pos + (pad_to - current));
      open->padded = true;
    }
  }
  const std::size_t n = seal(*open);
  if (n == 0) return 0;
  datagram_bytes = open->start + n;
  return datagram_bytes;
}

std::size_t Connection::Impl::build_close_datagram(Instant now, Path& p,
                                                   std::span<std::uint8_t> out) {
  // RFC 9000 §10.2.3: before the handshake is confirmed the peer may lack 1-RTT (or Handshake)
  // keys, so the close goes at every level we have; an application close becomes
  // APPLICATION_ERROR below 1-RTT, without the reason.
  std::size_t used = 0;
  for (SpaceId sid : {SpaceId::kInitial, SpaceId::kHandshake, SpaceId::kApplication}) {
    if (sid != SpaceId::kApplication && &p != paths.front().get()) continue;
    PacketSpace& sp = space(sid, p);
    if (!has_tx(sp) || sp.discarded) continue;
    if (sid == SpaceId::kApplication && !handshake_complete && is_client()) continue;
    frame::ConnectionClose f = close_frame;
    f.reason = ByteView(reinterpret_cast<const std::uint8_t*>(close_reason_bytes.data()),
                        close_reason_bytes.size());
    if (sid != SpaceId::kApplication && f.application) {
      f.application = false;
      f.error_code = static_cast<std::uint64_t>(TransportError::kApplicationError);
      f.frame_type = 0;
      f.reason = {};
    }
    Bytes payload;
    encode_frame(payload, Frame(f));
    while (payload.size() < 4) payload.push_back(0);
    PacketHeader h;
    h.type = sid == SpaceId::kInitial     ? PacketType::kInitial
             : sid == SpaceId::kHandshake ? PacketType::kHandshake
                                          : PacketType::kOneRtt;
    auto dcid = peer_cid_for(sid == SpaceId::kApplication ? p.id : 0);
    if (!dcid) continue;
    h.dcid = *dcid;
    h.scid = initial_scid;
    if (sid == SpaceId::kInitial && is_client()) h.token = retry_token;
    h.packet_number = sp.next_pn++;
    h.pn_length = 4;
    h.key_phase = key_phase;
    auto pkt = protect_packet(h, payload, *tx_keys(sp),
                              sid == SpaceId::kApplication && multipath() ? p.id : 0);
    if (!pkt || used + pkt->size() > out.size()) break;
    std::memcpy(out.data() + used, pkt->data(), pkt->size());
    used += pkt->size();
  }
  ++close_sent_count;
  (void)now;
  return used;
}

std::size_t Connection::Impl::build_path_probe(Instant now, std::span<std::uint8_t> out,
                                               SocketAddr& dest) {
  // A PATH_RESPONSE to an address other than its path's (RFC 9000 §8.2.2: the response goes
  // where the challenge came from), padded to 1200 bytes (§8.2.1), in the space and with the CID
  // of the path the challenge arrived on. A QNT client answering a server's probe adds its own
  // PATH_CHALLENGE: the server's candidate address is now worth probing (spec §5.3).
  auto it = path_responses.begin();
  while (it != path_responses.end()) {
    const Path* on = find_path(it->path_id);
    if (!(on && on->remote == it->dest)) break;
    ++it;
  }
  if (it == path_responses.end()) return 0;
  const auto owed = *it;
  path_responses.erase(it);
  Path* on = find_path(owed.path_id);
  if (!on) on = paths.front().get();
  auto dcid = peer_cid_for(on->id);
  if (!dcid) return 0;
  PacketSpace& sp = on->app;
  dest = owed.dest;
  Bytes payload;
  encode_frame(payload, Frame(frame::PathResponse{owed.data}));
  if (nat && is_client()) {
    bool have_path = false;
    for (const auto& q : paths) {
      if (q->validated && !q->abandoned && q->remote == owed.dest) have_path = true;
    }
    if (!have_path) {
      ByteArray<8> token{};
      rng.fill(token);
      encode_frame(payload, Frame(frame::PathChallenge{token}));
      nat->on_probe_sent(owed.dest, token);
    }
  }
  PacketHeader h;
  h.type = PacketType::kOneRtt;
  h.dcid = *dcid;
  h.packet_number = sp.next_pn++;
  h.pn_length =
      static_cast<std::uint8_t>(packet_number_length(h.packet_number, sp.sent.largest_acked()));
  h.key_phase = key_phase;
  const std::size_t header_len = 1 + h.dcid.size() + h.pn_length;
  const std::size_t target = std::min<std::size_t>(1200, out.size());
  if (header_len + payload.size() + kTagLength < target) {
    payload.resize(target - header_len - kTagLength, 0);
  }
  auto pkt = protect_packet(h, payload, *one_rtt_tx, multipath() ? on->id : 0);
  if (!pkt || pkt->size() > out.size()) return 0;
  std::memcpy(out.data(), pkt->data(), pkt->size());
  sp.sent.on_sent(
      SentPacketMeta{h.packet_number, now, static_cast<std::uint32_t>(pkt->size()), false, false});
  ++stats.packets_sent;
  stats.bytes_sent += pkt->size();
  return pkt->size();
}

std::size_t Connection::Impl::build_pmtu_probe(Instant now, Path& p, std::span<std::uint8_t> out) {
  // DPLPMTUD probe (RFC 8899 §4.1, RFC 9000 §14.4): PING + PADDING of the probed size. Its loss
  // says nothing about congestion, so loss handling ignores it for the congestion controller.
  PacketSpace& sp = p.app;
  const std::uint64_t size = p.pmtu_max;
  auto dcid = peer_cid_for(p.id);
  if (!dcid) return 0;
  PacketHeader h;
  h.type = PacketType::kOneRtt;
  h.dcid = *dcid;
  h.packet_number = sp.next_pn++;
  h.pn_length =
      static_cast<std::uint8_t>(packet_number_length(h.packet_number, sp.sent.largest_acked()));
  h.key_phase = key_phase;
  const std::size_t header_len = 1 + h.dcid.size() + h.pn_length;
  if (size < header_len + kTagLength + 1 || size > out.size()) return 0;
  Bytes payload(size - header_len - kTagLength, 0);
  payload[0] = static_cast<std::uint8_t>(frame_type::kPing);
  auto pkt = protect_packet(h, payload, *one_rtt_tx, multipath() ? p.id : 0);
  if (!pkt) return 0;
  std::memcpy(out.data(), pkt->data(), pkt->size());
  SentPacketMeta meta{h.packet_number, now, static_cast<std::uint32_t>(pkt->size()), true, true};
  sp.sent.on_sent(meta);
  SentFrames rec;
  rec.pmtu_probe = size;
  sp.sent_frames.emplace(h.packet_number, std::move(rec));
  p.pmtu_probe_size = size;
  p.pmtu_next_probe.reset();
  last_ack_eliciting_sent = now;
  p.last_ack_eliciting_sent = now;
  ++p.packets_sent;
  ++stats.packets_sent;
  stats.bytes_sent += pkt->size();
  return pkt->size();
}

}  // namespace iroh::quic

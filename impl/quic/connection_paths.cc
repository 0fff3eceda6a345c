// quic::Connection: multipath (draft-ietf-quic-multipath as noq implements it, spec §4.6) and
// n0 NAT traversal (spec §5) — path lifecycle, per-path connection IDs, the multipath and QNT
// frames, and NAT probes. Facts about noq's behaviour that this follows are recorded, with
// evidence, in docs/ARCHITECTURE.md ("Multipath and NAT traversal").
#include <algorithm>
#include <cstring>

#include "quic/connection_internal.h"

namespace iroh::quic {

using detail::kLocalCidLength;

namespace {
// Error codes of PATH_ABANDON (draft multipath; noq transport_error.rs).
constexpr std::uint64_t kPathUnstableOrPoor = 0x3e76;
}  // namespace

Path* Connection::Impl::find_path(std::uint32_t id) {
  for (auto& p : paths) {
    if (p->id == id) return p.get();
  }
  return nullptr;
}

const Path* Connection::Impl::find_path(std::uint32_t id) const {
  for (const auto& p : paths) {
    if (p->id == id) return p.get();
  }
  return nullptr;
}

std::optional<std::uint32_t> Connection::Impl::path_of_local_cid(const ConnectionId& dcid) const {
  if (cid_path_cache && cid_path_cache->first == dcid) return cid_path_cache->second;
  for (const auto& [pid, set] : local_cids) {
    for (const auto& [seq, c] : set.cids) {
      if (c.cid == dcid) {
        cid_path_cache = std::make_pair(dcid, pid);
        return pid;
      }
    }
  }
  return std::nullopt;
}

std::optional<ConnectionId> Connection::Impl::peer_cid_for(std::uint32_t path_id) const {
  // The CID in use, or the lowest still active if it was retired (stored CIDs were validated as
  // 0..20 bytes on receipt).
  auto sit = peer_cids.find(path_id);
  if (sit == peer_cids.end() || sit->second.cids.empty()) return std::nullopt;
  auto it = sit->second.cids.find(sit->second.in_use);
  if (it == sit->second.cids.end()) it = sit->second.cids.begin();
  return ConnectionId::from(it->second.cid).value();
}

const Path& Connection::Impl::send_path() const {
  // noq's scheduling (spec §5.6): validated, not abandoned, with CIDs; Available first, Backup
  // only when no such Available path exists. Among equals the lowest smoothed RTT.
  const Path* best = nullptr;
  auto better = [&](const Path& a, const Path* b) {
    if (!b) return true;
    if (a.status != b->status) return a.status == PathStatus::kAvailable;
    return a.rtt.smoothed() < b->rtt.smoothed();
  };
  for (const auto& p : paths) {
    if (p->abandoned || !p->validated) continue;
    if (multipath() && !peer_cid_for(p->id)) continue;
    if (better(*p, best)) best = p.get();
  }
  if (best) return *best;
  // Nothing validated (the server's path 0 during the handshake, or every path abandoned).
  for (const auto& p : paths) {
    if (!p->abandoned) return *p;
  }
  return *paths.front();
}

Path& Connection::Impl::send_path() {
  return const_cast<Path&>(static_cast<const Impl*>(this)->send_path());
}

bool Connection::Impl::path_wants_to_send(Instant now, const Path& p) const {
  // Path-specific traffic, sent on the path itself whether or not it carries data: its
  // validation, PTO probes, keep-alive PINGs and (once) its own PATH_ABANDON.
  if (p.challenge_pending && p.challenge) return true;
  if (p.app.probes_pending > 0) return true;
  if (p.ping_pending && !p.abandoned) return true;
  if (owes_response_on(p)) return true;
  if (p.app.acks.ack_due(now) && !p.abandoned) return true;
  return false;
}

bool Connection::Impl::owes_response_on(const Path& p) const {
  for (const auto& r : path_responses) {
    if (r.path_id == p.id && r.dest == p.remote) return true;
  }
  return false;
}

Path* Connection::Impl::new_path(Instant now, std::uint32_t id, const SocketAddr& remote) {
  auto p = std::make_unique<Path>(config, remote, id);
  p->last_rx = now;
  p->pmtu_next_probe = now;
  p->pmtu_max = std::min<std::uint64_t>(p->pmtu_max, peer_max_udp_payload);
  // Validated at once only if an existing validated path has the same 4-tuple (noq); otherwise
  // a padded PATH_CHALLENGE proves the address (RFC 9000 §8.2, draft multipath §3.1).
  for (const auto& q : paths) {
    if (q->validated && !q->abandoned && q->remote == remote) p->validated = true;
  }
  ByteArray<8> data{};
  rng.fill(data);
  p->challenge = data;
  p->challenge_pending = true;
  // A path that never validates is given up after the path idle timeout (noq 1.1) — or 3 PTO of
  // the first path's RTT when no idle timeout is set.
  p->challenge_deadline =
      now + std::max<Duration>(config.path_idle_timeout, 3 * pto(path(), path().app));
  next_path_id = std::max(next_path_id, id + 1);
  Path* raw = p.get();
  auto pos = std::find_if(paths.begin(), paths.end(),
                          [&](const std::unique_ptr<Path>& q) { return q->id > id; });
  paths.insert(pos, std::move(p));
  qlog(now, "transport:path_created",
       "{\"path_id\":" + std::to_string(id) + ",\"remote\":\"" + remote.to_string() + "\"}");
  // Our CIDs for the path exist already (issued eagerly); the peer's too, normally.
  if (!is_client()) raw->status_pending = true;  // announce our status, as noq's server does
  return raw;
}

void Connection::Impl::issue_local_cids(std::uint32_t path_id, std::size_t want) {
  auto& set = local_cids[path_id];
  while (set.cids.size() < want) {
    const std::uint64_t seq = set.next_seq++;
    ByteArray<kLocalCidLength> raw{};
    rng.fill(raw);
    auto cid = ConnectionId::from(raw).value();
    set.cids[seq] = {cid, stateless_reset_token(config.reset_key, cid.view())};
    events.push_back(event::CidIssued{cid, set.cids[seq].reset_token});
    set.pending_new.insert(seq);
    ++cid_epoch;
  }
  cid_path_cache.reset();
}

std::uint32_t Connection::Impl::max_path_id_in_use() const {
  return std::min(local_max_path_id, peer_max_path_id);
}

void Connection::Impl::issue_path_cids() {
  if (!multipath() || !handshake_complete) return;
  // noq issues 5 CIDs (iroh's active_connection_id_limit) for every path id up to the lower of
  // both maxima, eagerly; a CID for a path id above the peer's maximum is a protocol violation.
  const std::size_t want = std::min<std::uint64_t>(peer_active_cid_limit, detail::kActiveCidLimit);
  for (std::uint32_t id = 1; id <= max_path_id_in_use(); ++id) {
    const Path* p = find_path(id);
    if (p && p->abandoned) continue;
    if (local_cids.count(id) && local_cids[id].next_seq > 0) continue;  // issued before
    issue_local_cids(id, want);
  }
}

void Connection::Impl::on_path_validated(Instant now, Path& p) {
  if (!multipath() || p.opened_event_sent) return;
  p.opened_event_sent = true;
  ++stats.paths_opened;
  if (p.id != 0) events.push_back(event::PathOpened{p.id, p.remote});
  qlog(now, "transport:path_validated",
       "{\"path_id\":" + std::to_string(p.id) + ",\"remote\":\"" + p.remote.to_string() + "\"}");
}

void Connection::Impl::abandon_path(Instant now, Path& p, std::uint64_t code, bool send) {
  if (p.abandoned) return;
  p.abandoned = true;
  p.abandon_code = code;
  p.abandon_pending = send;
  p.status_pending = false;
  p.challenge_pending = false;
  p.challenge.reset();
  p.challenge_deadline.reset();
  p.ping_pending = false;
  // Its state goes after 3 PTO (late packets are still acknowledged meanwhile).
  p.discard_at = now + 3 * pto(p, p.app);
  ++stats.paths_abandoned;
  events.push_back(event::PathAbandoned{p.id, code});
  qlog(now, "transport:path_abandoned",
       "{\"path_id\":" + std::to_string(p.id) + ",\"error_code\":" + std::to_string(code) + "}");
  // Everything in flight on the path (data and control frames) is resent elsewhere now rather
  // than after its loss timer; not a congestion signal.
  for (auto& [pn, frames] : p.app.sent_frames) {
    SentPacketMeta meta{};
    meta.pn = pn;
    on_packet_lost(now, p, p.app, meta, frames, false);
  }
  p.app.sent_frames.clear();
  (void)p.app.sent.discard();
  p.app.probes_pending = 0;
}

void Connection::Impl::discard_abandoned_paths(Instant now) {
  for (auto it = paths.begin(); it != paths.end();) {
    Path& p = **it;
    if (!p.abandoned || !p.discard_at || now < *p.discard_at) {
      ++it;
      continue;
    }
    // Retire everything of the path: our CIDs (the endpoint stops routing them), the peer's.
    if (auto lc = local_cids.find(p.id); lc != local_cids.end()) {
      for (const auto& [seq, c] : lc->second.cids) events.push_back(event::CidRetired{c.cid});
      lc->second.cids.clear();
      lc->second.pending_new.clear();
      ++cid_epoch;
      cid_path_cache.reset();
    }
    peer_cids.erase(p.id);
    qlog(now, "transport:path_discarded", "{\"path_id\":" + std::to_string(p.id) + "}");
    if (it == paths.begin()) {
      p.discard_at.reset();  // path 0 stays as a placeholder (the handshake spaces' path)
      ++it;
    } else {
      it = paths.erase(it);
    }
  }
}

Result<std::uint32_t> Connection::Impl::open_path_internal(Instant now, const SocketAddr& remote,
                                                           PathStatus status) {
  if (!multipath()) return make_error("multipath not negotiated");
  if (!is_client()) return make_error("only the client opens paths");
  if (!confirmed) return make_error("the handshake is not confirmed yet");
  if (closed) return make_error("connection closed");
  for (const auto& q : paths) {
    if (!q->abandoned && q->remote == remote) return q->id;  // open_path_ensure
  }
  const std::uint32_t id = next_path_id;
  if (id > max_path_id_in_use()) {
    return make_error("no free path id (maximum " + std::to_string(max_path_id_in_use()) + ")");
  }
  if (!peer_cid_for(id))
    return make_error("the peer has issued no CID for path " + std::to_string(id) + " yet");
  Path* p = new_path(now, id, remote);
  if (!p) return make_error("cannot create path");
  p->validated = false;  // the client validates every path it opens
  p->status = status;
  p->status_seq = status == PathStatus::kBackup ? 1 : 0;
  p->status_pending = true;
  return id;
}

QuicResult<void> Connection::Impl::on_multipath_frame(Instant now, Path& path,
                                                      const SocketAddr& from, const Frame& f) {
  using namespace frame;
  auto violation = [&](std::string m) {
    return quic_error(TransportError::kProtocolViolation, std::move(m), frame_type_of(f));
  };
  if (std::holds_alternative<AddAddress>(f) || std::holds_alternative<ReachOut>(f) ||
      std::holds_alternative<RemoveAddress>(f)) {
    if (!nat) return violation(std::string(frame_name(f)) + " without NAT traversal");
    if (const auto* a = std::get_if<AddAddress>(&f)) {
      if (!is_client()) return violation("ADD_ADDRESS sent to a server");
      auto changed = nat->on_add_address(now, a->sequence, a->address);
      // Beyond our limit noq only warns; so do we (the address is not stored).
      if (changed && *changed) events.push_back(event::NatTraversalUpdated{});
      return {};
    }
    if (const auto* r = std::get_if<RemoveAddress>(&f)) {
      if (!is_client()) return violation("REMOVE_ADDRESS sent to a server");
      if (nat->on_remove_address(r->sequence)) events.push_back(event::NatTraversalUpdated{});
      return {};
    }
    const auto& ro = std::get<ReachOut>(f);
    if (is_client()) return violation("REACH_OUT sent to a client");
    if (auto r = nat->on_reach_out(now, ro.round, ro.address); !r) {
      return violation(r.error().message);
    }
    return {};
  }
  if (!multipath()) return violation(std::string(frame_name(f)) + " without multipath");
  if (const auto* pa = std::get_if<PathAck>(&f)) {
    if (pa->path_id > 0xffffffffu) return violation("path id out of range");
    const auto id = static_cast<std::uint32_t>(pa->path_id);
    Path* target = find_path(id);
    if (!target) {
      if (id < next_path_id || (local_cids.count(id) && id <= max_path_id_in_use())) return {};
      return violation("PATH_ACK for a path never used");
    }
    return on_ack(now, *target, target->app, pa->ack);
  }
  if (const auto* ab = std::get_if<PathAbandon>(&f)) {
    Path* target = find_path(static_cast<std::uint32_t>(ab->path_id));
    if (!target) return {};  // a path we never saw a packet on: nothing to abandon
    const bool was_abandoned = target->abandoned;
    // Echo it (noq answers with the peer's code) unless we abandoned it ourselves already.
    abandon_path(now, *target, ab->error_code, !was_abandoned);
    if (!target->abandon_pending) {
      // Both PATH_ABANDONs exchanged: the path drains for 3 PTO.
      target->discard_at = now + 3 * pto(*target, target->app);
    }
    // noq raises its maximum by one per abandoned path; so do we, so path ids never run out.
    ++local_max_path_id;
    max_path_id_pending = true;
    issue_path_cids();
    return {};
  }
  if (const auto* st = std::get_if<frame::PathStatus>(&f)) {
    Path* target = find_path(static_cast<std::uint32_t>(st->path_id));
    if (target && st->sequence >= target->peer_status_seq) target->peer_status_seq = st->sequence;
    return {};  // informational: noq schedules by its local status only
  }
  if (const auto* mp = std::get_if<MaxPathId>(&f)) {
    if (mp->max_path_id > peer_max_path_id) {
      peer_max_path_id =
          static_cast<std::uint32_t>(std::min<std::uint64_t>(mp->max_path_id, 0xffffffffu));
      issue_path_cids();
    }
    return {};
  }
  if (const auto* pb = std::get_if<PathsBlocked>(&f)) {
    if (pb->max_path_id > local_max_path_id) return violation("PATHS_BLOCKED above our maximum");
    return {};
  }
  if (const auto* cb = std::get_if<PathCidsBlocked>(&f)) {
    if (cb->path_id > local_max_path_id) return violation("PATH_CIDS_BLOCKED above our maximum");
    return {};
  }
  (void)path;
  (void)from;
  return violation(std::string(frame_name(f)) + " not expected");
}

std::size_t Connection::Impl::build_nat_probe(Instant now, std::span<std::uint8_t> out,
                                              SocketAddr& dest) {
  // A QNT probe (spec §5.3): a 1-RTT packet on the first validated path's space and CID holding
  // only a PATH_CHALLENGE, unpadded, not congestion controlled and not tracked.
  Path* via = nullptr;
  for (auto& p : paths) {
    if (p->validated && !p->abandoned && peer_cid_for(p->id)) {
      via = p.get();
      break;
    }
  }
  if (!via || !one_rtt_tx) return 0;
  auto to = nat->next_probe_due(now);
  if (!to) return 0;
  ByteArray<8> token{};
  rng.fill(token);
  PacketSpace& sp = via->app;
  Bytes payload;
  encode_frame(payload, Frame(frame::PathChallenge{token}));
  PacketHeader h;
  h.type = PacketType::kOneRtt;
  h.dcid = *peer_cid_for(via->id);
  h.packet_number = sp.next_pn++;
  h.pn_length =
      static_cast<std::uint8_t>(packet_number_length(h.packet_number, sp.sent.largest_acked()));
  h.key_phase = key_phase;
  auto pkt = protect_packet(h, payload, *one_rtt_tx, via->id);
  if (!pkt || pkt->size() > out.size()) return 0;
  std::memcpy(out.data(), pkt->data(), pkt->size());
  // Recorded as sent but not in flight, so that the peer's ACK of it is an ACK of a sent pn.
  sp.sent.on_sent(
      SentPacketMeta{h.packet_number, now, static_cast<std::uint32_t>(pkt->size()), false, false});
  nat->on_probe_sent(*to, token);
  dest = *to;
  ++stats.packets_sent;
  ++stats.nat_probes_sent;
  stats.bytes_sent += pkt->size();
  qlog(now, "transport:nat_probe_sent", "{\"address\":\"" + to->to_string() + "\"}");
  return pkt->size();
}

// ---------------------------------------------------------------------------------------------
// public API
// ---------------------------------------------------------------------------------------------

bool Connection::multipath_enabled() const { return impl_->multipath(); }
bool Connection::nat_traversal_enabled() const { return impl_->nat.has_value(); }

std::vector<PathStats> Connection::paths() const {
  std::vector<PathStats> out;
  for (const auto& p : impl_->paths) {
    if (p->id == 0 && p->abandoned && !p->discard_at && impl_->paths.size() > 1 &&
        impl_->multipath()) {
      continue;  // path 0's placeholder after it was discarded
    }
    PathStats s;
    s.id = p->id;
    s.remote = p->remote;
    s.status = p->status;
    s.abandoned = p->abandoned;
    s.has_rtt = p->rtt.has_sample();
    s.rtt = p->rtt.smoothed();
    s.min_rtt = p->rtt.has_sample() ? p->rtt.min() : Duration::zero();
    s.cwnd = p->cc->window();
    s.mtu = p->mtu;
    s.validated = p->validated;
    s.packets_sent = p->packets_sent;
    s.packets_received = p->packets_received;
    out.push_back(s);
  }
  return out;
}

Result<std::uint32_t> Connection::open_path(Instant now, const SocketAddr& remote,
                                            PathStatus status) {
  return impl_->open_path_internal(now, remote, status);
}

Result<void> Connection::set_path_status(std::uint32_t id, PathStatus status) {
  auto& I = *impl_;
  Path* p = I.find_path(id);
  if (!p || p->abandoned) return make_error("no open path " + std::to_string(id));
  if (p->status == status) return {};
  p->status = status;
  if (I.multipath()) {
    ++p->status_seq;
    p->status_pending = true;
  }
  return {};
}

Result<void> Connection::close_path(Instant now, std::uint32_t id, std::uint64_t code) {
  auto& I = *impl_;
  if (!I.multipath()) return make_error("multipath not negotiated");
  Path* p = I.find_path(id);
  if (!p || p->abandoned) return make_error("no open path " + std::to_string(id));
  std::size_t open = 0;
  for (const auto& q : I.paths) open += q->abandoned ? 0 : 1;
  if (open <= 1) return make_error("the last open path cannot be abandoned");
  I.abandon_path(now, *p, code, true);
  return {};
}

Result<void> Connection::set_path_idle_timeout(std::uint32_t id, Duration timeout) {
  Path* p = impl_->find_path(id);
  if (!p) return make_error("no path " + std::to_string(id));
  p->idle_timeout = timeout;
  return {};
}

Result<void> Connection::add_nat_traversal_address(const SocketAddr& address) {
  auto& I = *impl_;
  if (!I.nat) return make_error("NAT traversal not negotiated");
  if (I.is_client()) return make_error("only the server announces addresses (ADD_ADDRESS)");
  auto seq = I.nat->add_local_address(address);
  if (!seq) return seq.error();
  if (*seq) I.pending_add_addresses.insert(**seq);
  return {};
}

Result<void> Connection::remove_nat_traversal_address(const SocketAddr& address) {
  auto& I = *impl_;
  if (!I.nat) return make_error("NAT traversal not negotiated");
  if (I.is_client()) return make_error("only the server withdraws addresses");
  if (auto seq = I.nat->remove_local_address(address)) {
    I.pending_add_addresses.erase(*seq);
    I.pending_remove_addresses.insert(*seq);
  }
  return {};
}

Result<std::uint64_t> Connection::initiate_nat_traversal_round(
    Instant now, const std::vector<SocketAddr>& local) {
  auto& I = *impl_;
  if (!I.nat) return make_error("NAT traversal not negotiated");
  if (!I.is_client()) return make_error("only the client starts NAT traversal rounds");
  if (!I.confirmed) return make_error("the handshake is not confirmed yet");
  if (local.empty()) return make_error("no local candidate addresses");
  const auto round = I.nat->start_round(now, local);
  I.reach_out_pending = true;
  // Addresses a path already goes to need no probing.
  for (const auto& p : I.paths) {
    if (!p->abandoned && p->validated) I.nat->stop_probing(p->remote);
  }
  I.qlog(now, "transport:nat_round_started",
         "{\"round\":" + std::to_string(round) + ",\"local\":" + std::to_string(local.size()) +
             ",\"remote\":" + std::to_string(I.nat->remote_addresses().size()) + "}");
  return round;
}

std::vector<SocketAddr> Connection::nat_traversal_remote_addresses() const {
  if (!impl_->nat) return {};
  return impl_->nat->remote_addresses();
}

}  // namespace iroh::quic

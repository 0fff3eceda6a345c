// quic::Connection: the timer (RFC 9002 §6.2 PTO, §6.1.2 time-threshold loss, RFC 9000 §10.1
// idle timeout, §10.2 closing/draining, keep-alive, pacing, PMTU probes) and closing.
#include <algorithm>

#include "quic/connection_internal.h"

namespace iroh::quic {

namespace {
void consider(std::optional<Instant>& best, std::optional<Instant> t) {
  if (t && (!best || *t < *best)) best = t;
}
}  // namespace

Duration Connection::Impl::pto(const Path& p, const PacketSpace& sp) const {
  const Duration max_ack_delay =
      sp.id == SpaceId::kApplication && confirmed ? peer_max_ack_delay : Duration::zero();
  return pto_duration(p.rtt, max_ack_delay, p.pto_backoff);
}

Duration Connection::Impl::path_idle(const Path& p) const {
  // noq: max(path idle timeout, 3 PTO) — the PTO without its backoff, which grows while the
  // path is dead and would push the deadline away forever. (Fix: it did exactly that.)
  return std::max(p.idle_timeout, 3 * pto_duration(p.rtt, peer_max_ack_delay, 0));
}

Duration Connection::Impl::three_pto() const {
  return 3 * pto_duration(send_path().rtt, peer_max_ack_delay, 0);
}

Duration Connection::Impl::idle_timeout() const {
  // RFC 9000 §10.1: the smaller of both advertised values (0 = none), at least 3 PTO.
  Duration t = config.idle_timeout;
  if (peer_idle_timeout > Duration::zero() && (t == Duration::zero() || peer_idle_timeout < t)) {
    t = peer_idle_timeout;
  }
  if (t == Duration::zero()) return Duration::max();
  return std::max(t, three_pto());
}

std::optional<Instant> Connection::Impl::loss_detection_deadline(const Path** which_path,
                                                                 SpaceId* which) const {
  // RFC 9002 Appendix A.8 (SetLossDetectionTimer / GetPtoTimeAndSpace), over every path's space
  // (draft multipath: loss recovery is per path).
  const Path& first = *paths.front();
  struct Entry {
    const Path* path;
    const PacketSpace* space;
  };
  boost::container::small_vector<Entry, 10> spaces;
  spaces.push_back({&first, &initial});
  spaces.push_back({&first, &handshake});
  for (const auto& p : paths) spaces.push_back({p.get(), &p->app});
  auto set = [&](const Entry& e) {
    if (which_path) *which_path = e.path;
    if (which) *which = e.space->id;
  };
  std::optional<Instant> earliest_loss;
  for (const auto& e : spaces) {
    if (e.space->discarded) continue;
    if (auto t = e.space->sent.loss_time(); t && (!earliest_loss || *t < *earliest_loss)) {
      earliest_loss = t;
      set(e);
    }
  }
  if (earliest_loss) return earliest_loss;

  bool any_in_flight = false;
  for (const auto& e : spaces) {
    if (!e.space->discarded && e.space->sent.has_ack_eliciting_in_flight()) any_in_flight = true;
  }
  // A client keeps a PTO armed until the server has validated its address, so that a lost
  // server flight cannot deadlock the handshake (RFC 9002 §6.2.2.1).
  const bool peer_validated_us = !is_client() || confirmed || handshake_acked;
  if (!any_in_flight) {
    if (peer_validated_us || state != State::kHandshake) return std::nullopt;
    const bool hs = handshake.tx && !handshake.discarded;
    set(Entry{&first, hs ? &handshake : &initial});
    return last_ack_eliciting_sent.value_or(created) + pto(first, hs ? handshake : initial);
  }
  std::optional<Instant> best;
  for (const auto& e : spaces) {
    const PacketSpace& sp = *e.space;
    if (sp.discarded || !sp.sent.has_ack_eliciting_in_flight()) continue;
    // Application data is not probed until the handshake is confirmed (A.8).
    if (sp.id == SpaceId::kApplication && !confirmed) continue;
    auto last = sp.sent.last_ack_eliciting_sent();
    if (!last) continue;
    const Instant t = *last + pto(*e.path, sp);
    if (!best || t < *best) {
      best = t;
      set(e);
    }
  }
  return best;
}

std::optional<Instant> Connection::Impl::next_timeout() const {
  if (state == State::kDrained) return std::nullopt;
  if (state == State::kClosing || state == State::kDraining) return close_deadline;
  std::optional<Instant> best;
  const Path& p0 = path();
  // At the anti-amplification limit (RFC 9000 §8.1) nothing can be sent until the peer sends
  // more. Timers whose only effect is to send (ACK, PTO — RFC 9002 §6.2.2.1 —, keep-alive,
  // pacing, PMTU probes) must not be armed then: a deadline in the past that cannot be served
  // makes the driver spin at one instant forever. (Fix: a server whose peer migrated, or whose
  // client went quiet during the handshake with an ACK owed, live-locked the event loop.)
  const Path& sp = send_path();
  std::size_t open_paths = 0;
  for (const auto& p : paths) open_paths += p->abandoned ? 0 : 1;
  const bool amplification_blocked =
      !is_client() && !sp.validated && sp.bytes_sent + 64 > 3 * sp.bytes_received;
  if (!amplification_blocked) {
    consider(best, loss_detection_deadline(nullptr, nullptr));
    for (SpaceId sid : {SpaceId::kInitial, SpaceId::kHandshake}) {
      const PacketSpace& s = space(sid, p0);
      if (!s.discarded && s.tx) consider(best, s.acks.ack_deadline());
    }
    for (const auto& p : paths) {
      if (one_rtt_tx) consider(best, p->app.acks.ack_deadline());
      // Once fired, the keep-alive waits in ping_pending until the PING can go out. (Fix: the
      // deadline stayed in the past meanwhile and the driver spun at one instant.) Every open
      // path keeps itself alive (noq: per-path keep-alive, 5 s in iroh).
      if (handshake_complete && config.keep_alive > Duration::zero() && !p->ping_pending &&
          !p->abandoned && (p->validated || p.get() == paths.front().get())) {
        consider(best, p->last_ack_eliciting_sent.value_or(created) + config.keep_alive);
      }
      if (confirmed && config.pmtu_discovery && p->pmtu_probe_size == 0 && p->mtu < p->pmtu_max &&
          p.get() == &sp) {
        consider(best, p->pmtu_next_probe);
      }
      consider(best, p->challenge_deadline);
      if (p->discard_at) consider(best, p->discard_at);
      if (multipath() && confirmed && !p->abandoned && p->idle_timeout > Duration::zero() &&
          open_paths > 1) {
        consider(best, p->last_rx + path_idle(*p));
      }
    }
    if (pacing_blocked) consider(best, pacing_deadline);
    if (nat && confirmed) consider(best, nat->next_probe_time());
  }
  const Duration idle = idle_timeout();
  if (idle != Duration::max()) consider(best, last_activity + idle);
  if (!handshake_complete) consider(best, created + config.handshake_timeout);
  consider(best, p0.challenge_deadline);
  return best;
}

void Connection::Impl::on_timeout(Instant now) {
  if (state == State::kDrained) return;
  if (state == State::kClosing || state == State::kDraining) {
    if (close_deadline && now >= *close_deadline) state = State::kDrained;
    return;
  }
  if (!handshake_complete && now >= created + config.handshake_timeout) {
    enter_draining(now, CloseReason{CloseReason::Kind::kHandshakeTimeout, 0, 0,
                                    "no handshake within the timeout", std::nullopt});
    state = State::kDrained;
    return;
  }
  const Duration idle = idle_timeout();
  if (idle != Duration::max() && now >= last_activity + idle) {
    // RFC 9000 §10.1: silently discard the connection.
    enter_draining(now, CloseReason{CloseReason::Kind::kIdleTimeout, 0, 0, "", std::nullopt});
    state = State::kDrained;
    return;
  }
  if (pacing_blocked && now >= pacing_deadline) pacing_blocked = false;
  std::size_t open_paths = 0;
  for (const auto& p : paths) open_paths += p->abandoned ? 0 : 1;
  for (auto& pp : paths) {
    Path& p = *pp;
    if (handshake_complete && config.keep_alive > Duration::zero() && !p.abandoned &&
        (p.validated || &p == paths.front().get()) &&
        now >= p.last_ack_eliciting_sent.value_or(created) + config.keep_alive) {
      p.ping_pending = true;
    }
    if (p.challenge_deadline && now >= *p.challenge_deadline) {
      p.challenge.reset();
      p.challenge_pending = false;
      p.challenge_deadline.reset();
      if (!multipath() || &p == paths.front().get()) {
        // RFC 9000 §9.3.2: validation failed. With a single path we keep talking to the
        // address the peer moved to (it sent non-probing packets from there) and stop
        // challenging.
        p.validated = true;
      } else if (!p.validated && !p.abandoned && open_paths > 1) {
        abandon_path(now, p, 0x3e76, true);  // PATH_UNSTABLE_OR_POOR, as noq
        --open_paths;
      }
    }
    // Per-path idle (noq: max(idle, 3 PTO)); the last open path never idles out on its own.
    if (multipath() && confirmed && !p.abandoned && p.idle_timeout > Duration::zero() &&
        open_paths > 1 && now >= p.last_rx + path_idle(p)) {
      abandon_path(now, p, 0x3e76, true);
      --open_paths;
    }
  }
  discard_abandoned_paths(now);
  const Path* which_path = nullptr;
  SpaceId which = SpaceId::kApplication;
  if (auto t = loss_detection_deadline(&which_path, &which); t && now >= *t) {
    on_loss_detection_timeout(now);
  }
}

void Connection::Impl::on_loss_detection_timeout(Instant now) {
  // RFC 9002 Appendix A.9 (OnLossDetectionTimeout).
  const Path* which_path = nullptr;
  SpaceId which = SpaceId::kApplication;
  auto deadline = loss_detection_deadline(&which_path, &which);
  if (!deadline || now < *deadline || !which_path) return;
  Path& p = *const_cast<Path*>(which_path);
  PacketSpace& sp = space(which, p);
  if (auto loss = sp.sent.loss_time(); loss && *loss <= now) {
    auto lost = sp.sent.detect_lost(now, p.rtt);
    if (lost.empty()) return;
    Instant largest_sent = lost.front().time_sent;
    bool congestion = false;
    for (const auto& meta : lost) {
      auto it = sp.sent_frames.find(meta.pn);
      const bool probe = it != sp.sent_frames.end() && it->second.pmtu_probe;
      if (!probe) {
        congestion = true;
        largest_sent = std::max(largest_sent, meta.time_sent);
      }
      if (it != sp.sent_frames.end()) {
        on_packet_lost(now, p, sp, meta, it->second, !probe);
        sp.sent_frames.erase(it);
      }
    }
    if (congestion) {
      ++stats.congestion_events;
      p.cc->on_congestion_event(now, largest_sent);
    }
    return;
  }
  // PTO: send one or two ack-eliciting probes (§6.2.4). In the handshake spaces the probe
  // carries the unacknowledged CRYPTO data again; elsewhere new data or a PING.
  ++p.pto_backoff;
  ++stats.pto_count;
  sp.probes_pending = 2;
  // An unvalidated path's challenge is repeated on its PTO (noq's PathChallengeLost timer): the
  // padded challenge is also what gives the peer the anti-amplification budget to answer.
  if (which == SpaceId::kApplication && !p.validated && p.challenge && !p.abandoned) {
    p.challenge_pending = true;
  }
  if (which != SpaceId::kApplication) {
    for (auto& [pn, frames] : sp.sent_frames) {
      for (auto [off, len] : frames.crypto) sp.crypto_send.on_lost(off, len, false);
    }
  } else {
    // Retransmit the oldest outstanding stream data with the probes so a tail loss is repaired
    // one round trip sooner.
    for (auto& [pn, frames] : sp.sent_frames) {
      bool any = false;
      for (const auto& s : frames.streams) {
        auto it = streams.find(s.stream_id);
        if (it == streams.end() || !it->second.send) continue;
        it->second.send->on_lost(s.offset, s.length, s.fin);
        schedule_stream(s.stream_id);
        any = true;
      }
      if (any) break;
    }
  }
  if (which != SpaceId::kApplication && !sp.tx) {
    // Client anti-deadlock probe before Handshake keys: an Initial PING.
    initial.probes_pending = 1;
  }
  qlog(
      now, "recovery:loss_timer_updated",
      std::string("{\"event_type\":\"expired\",\"timer_type\":\"pto\",\"packet_number_space\":\"") +
          detail::space_name(which) + "\",\"path_id\":" + std::to_string(p.id) + "}");
}

void Connection::Impl::enter_closing(Instant now, CloseReason reason, bool send_close) {
  if (closed) return;
  close_frame = frame::ConnectionClose{};
  close_frame.application = reason.kind == CloseReason::Kind::kLocalApplication;
  close_frame.error_code = reason.code;
  close_frame.frame_type = reason.frame_type;
  // The reason phrase is for humans; keep it short enough for one small packet.
  close_reason_bytes = reason.reason.substr(0, 512);
  closed = reason;
  state = State::kClosing;
  close_pending = send_close;
  close_deadline = now + three_pto();
  events.push_back(event::Closed{reason});
  qlog(now, "transport:connection_closed",
       "{\"owner\":\"local\",\"error_code\":" + std::to_string(reason.code) + "}");
}

void Connection::Impl::enter_draining(Instant now, CloseReason reason) {
  if (closed && state != State::kClosing) return;
  if (!closed) {
    closed = reason;
    events.push_back(event::Closed{reason});
  }
  state = State::kDraining;
  close_pending = false;
  close_deadline = now + three_pto();
  qlog(now, "transport:connection_closed",
       "{\"owner\":\"remote\",\"error_code\":" + std::to_string(reason.code) + "}");
}

void Connection::Impl::close_with_error(Instant now, const QuicError& e) {
  CloseReason r;
  r.kind = CloseReason::Kind::kLocalTransport;
  r.code = static_cast<std::uint64_t>(e.code);
  r.frame_type = e.frame_type;
  r.reason = e.message;
  if (r.code >= kCryptoErrorBase && r.code < kCryptoErrorBase + 0x100) {
    r.tls_alert = static_cast<std::uint8_t>(r.code - kCryptoErrorBase);
  }
  enter_closing(now, std::move(r), true);
}

void Connection::Impl::qlog(Instant now, const char* name, std::string data) const {
  if (!config.qlog) return;
  config.qlog(QlogEvent{now, name, std::move(data)});
}

}  // namespace iroh::quic

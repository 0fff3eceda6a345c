// The relay server's protocol state machine, sans-IO. See server_core.h.
#include "relay/server_core.h"

#include <algorithm>
#include <utility>

#include "relay/handshake.h"

namespace iroh::relay {
namespace {

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

}  // namespace

ServerCore::ServerCore(ServerConfig config) : config_(std::move(config)) {
  if (config_.queue_limit == 0) config_.queue_limit = 1;
}

std::optional<EndpointId> ServerCore::endpoint_of(ConnId conn) const {
  auto it = conns_.find(conn);
  if (it == conns_.end() || !it->second.authenticated) return std::nullopt;
  return it->second.endpoint;
}

void ServerCore::send(Actions& out, Conn& c, const Frame& frame) {
  out.push_back(Send{c.id, encode(frame)});
  ++c.queued;
}

Actions ServerCore::on_connected(ConnId conn, ProtocolVersion version, Instant now,
                                 const ByteArray<kChallengeSize>& challenge,
                                 std::optional<std::string> token) {
  Actions out;
  if (conns_.count(conn) != 0) return out;  // driver bug; ignore the duplicate
  Conn& c = conns_[conn];
  c.id = conn;
  c.version = version;
  c.challenge = challenge;
  c.token = std::move(token);
  c.connected_at = now;
  if (config_.rate_limit) {
    c.tokens = static_cast<std::int64_t>(config_.rate_limit->burst_bytes) * 1'000'000'000;
    c.tokens_at = now;
  }
  ++metrics_.connections_accepted;
  ++metrics_.connections_pending;
  send(out, c, ServerChallenge{challenge});
  return out;
}

std::optional<std::string> ServerCore::access_denial(const Conn& c) const {
  const AccessPolicy& p = config_.access;
  switch (p.mode) {
    case AccessPolicy::Mode::Everyone:
      return std::nullopt;
    case AccessPolicy::Mode::Allowlist:
      if (p.ids.count(c.endpoint) != 0) return std::nullopt;
      return p.deny_reason;
    case AccessPolicy::Mode::Denylist:
      if (p.ids.count(c.endpoint) == 0) return std::nullopt;
      return p.deny_reason;
    case AccessPolicy::Mode::SharedToken:
      if (c.token && *c.token == p.token) return std::nullopt;
      return p.deny_reason;
    case AccessPolicy::Mode::Http:
      return std::nullopt;  // decided by on_access_decision
  }
  return p.deny_reason;
}

void ServerCore::schedule_ping(Conn& c, Instant now) {
  Duration d = config_.ping_interval;
  if (config_.ping_jitter) d += config_.ping_jitter();
  c.next_ping = now + d;
}

void ServerCore::handle_client_auth(Actions& out, Conn& c, const ClientAuth& auth, Instant now) {
  if (auto v = verify_client_auth(auth, c.challenge); !v.ok()) {
    ++metrics_.auth_signature_invalid;
    send(out, c, ServerDeniesAuth{std::string(kReasonSignatureInvalid)});
    close(out, c.id, "auth: " + v.error().message, now);
    return;
  }
  c.endpoint = auth.public_key;
  if (config_.access.mode == AccessPolicy::Mode::Http) {
    c.access_pending = true;
    ++metrics_.access_checks;
    out.push_back(CheckAccess{c.id, c.endpoint});
    return;
  }
  finish_auth(out, c, access_denial(c), now);
}

// TLS-exporter header path (spec §6.4 step 1): the driver verified the header, so there is no
// challenge; the connection goes straight to access control.
Actions ServerCore::on_connected_authenticated(ConnId conn, ProtocolVersion version, Instant now,
                                               const EndpointId& endpoint,
                                               std::optional<std::string> token) {
  Actions out;
  if (conns_.count(conn) != 0) return out;  // driver bug; ignore the duplicate
  Conn& c = conns_[conn];
  c.id = conn;
  c.version = version;
  c.token = std::move(token);
  c.connected_at = now;
  if (config_.rate_limit) {
    c.tokens = static_cast<std::int64_t>(config_.rate_limit->burst_bytes) * 1'000'000'000;
    c.tokens_at = now;
  }
  ++metrics_.connections_accepted;
  ++metrics_.connections_pending;
  ++metrics_.auth_key_material;
  c.endpoint = endpoint;
  if (config_.access.mode == AccessPolicy::Mode::Http) {
    c.access_pending = true;
    ++metrics_.access_checks;
    out.push_back(CheckAccess{c.id, c.endpoint});
    return out;
  }
  finish_auth(out, c, access_denial(c), now);
  return out;
}

Actions ServerCore::on_access_decision(ConnId conn, std::optional<std::string> denial,
                                       Instant now) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end() || !it->second.access_pending) return out;
  it->second.access_pending = false;
  finish_auth(out, it->second, std::move(denial), now);
  return out;
}

void ServerCore::finish_auth(Actions& out, Conn& c, std::optional<std::string> denial,
                             Instant now) {
  if (denial) {
    ++metrics_.auth_denied;
    send(out, c, ServerDeniesAuth{*denial});
    close(out, c.id, "access denied: " + *denial, now);
    return;
  }
  c.authenticated = true;
  --metrics_.connections_pending;
  ++metrics_.clients;
  ++metrics_.auth_ok;
  send(out, c, ServerConfirmsAuth{});
  if (auto it = active_.find(c.endpoint); it != active_.end()) {
    auto old = conns_.find(it->second);
    if (old != conns_.end()) {
      ++metrics_.same_id_replaced;
      if (old->second.version == ProtocolVersion::V2) {
        send(out, old->second, Status{Status::kSameEndpointIdConnected});
      }
      inactive_[c.endpoint].push_back(old->first);
    }
  }
  active_[c.endpoint] = c.id;
  schedule_ping(c, now);
}

void ServerCore::forward(Actions& out, Conn& from, const EndpointId& dst, std::uint8_t ecn,
                         std::optional<std::uint16_t> segment_size, Bytes payload) {
  auto it = active_.find(dst);
  if (it == active_.end()) {
    ++metrics_.drops_unknown_destination;
    return;
  }
  auto to = conns_.find(it->second);
  if (to == conns_.end()) {
    ++metrics_.drops_unknown_destination;
    return;
  }
  if (to->second.queued >= config_.queue_limit) {
    ++metrics_.drops_queue_full;
    return;
  }
  from.sent_to.insert(dst);
  ++metrics_.datagrams_forwarded;
  metrics_.bytes_forwarded += payload.size();
  send(out, to->second,
       RelayToClientDatagram{from.endpoint, ecn, segment_size, std::move(payload)});
}

void ServerCore::charge_rate_limit(Actions& out, Conn& c, std::size_t bytes, Instant now) {
  // Integer token bucket in byte-nanoseconds (bytes × 1e9), so refills and waits are exact.
  const RateLimit& rl = *config_.rate_limit;
  constexpr std::int64_t kNano = 1'000'000'000;
  const auto rate = static_cast<std::int64_t>(rl.bytes_per_second);
  const std::int64_t cap = static_cast<std::int64_t>(rl.burst_bytes) * kNano;
  const std::int64_t elapsed = (now - c.tokens_at).count();
  if (elapsed > 0) {
    c.tokens_at = now;
    if (elapsed >= (cap - c.tokens) / rate + 1) {
      c.tokens = cap;
    } else {
      c.tokens += rate * elapsed;  // < cap - tokens: no overflow
    }
  }
  c.tokens -= static_cast<std::int64_t>(bytes) * kNano;
  if (c.tokens >= 0) return;
  const std::int64_t wait_ns = (-c.tokens + rate - 1) / rate;
  ++metrics_.rate_limited;
  if (!c.rate_limited_notified && c.authenticated) {
    c.rate_limited_notified = true;
    if (c.version == ProtocolVersion::V2) send(out, c, Status{Status::kRateLimited});
  }
  out.emplace_back(PauseReads{c.id, now + Duration(wait_ns)});
}

Actions ServerCore::on_message(ConnId conn, ByteView message, Instant now) {
  Actions out;
  auto it = conns_.find(conn);
  if (it == conns_.end()) return out;
  Conn& c = it->second;
  ++metrics_.frames_received;
  metrics_.bytes_received += message.size();

  auto decoded = decode(message, c.version);
  if (!decoded.ok()) {
    if (c.authenticated) {
      ++metrics_.protocol_errors;
    } else {
      ++metrics_.handshake_errors;
    }
    close(out, conn, "bad frame: " + decoded.error().message, now);
    return out;
  }
  Frame& frame = *decoded;

  if (!c.authenticated) {
    if (c.access_pending) {
      ++metrics_.handshake_errors;
      close(out, conn,
            std::string("frame before the access decision: ") + std::string(frame_name(frame)),
            now);
      return out;
    }
    if (auto* auth = std::get_if<ClientAuth>(&frame)) {
      handle_client_auth(out, c, *auth, now);
      // The handshake counts against the rate limit like every other byte read.
      if (config_.rate_limit && conns_.count(conn) != 0) {
        charge_rate_limit(out, c, message.size(), now);
      }
    } else {
      ++metrics_.handshake_errors;
      close(out, conn, std::string("expected ClientAuth, got ") + std::string(frame_name(frame)),
            now);
    }
    return out;
  }

  // Anything received resets the keep-alive ping timer (an outstanding ping still needs its Pong).
  if (!c.ping_outstanding) schedule_ping(c, now);

  bool keep = true;
  std::visit(
      Overloaded{
          [&](ClientToRelayDatagram& d) {
            forward(out, c, d.dst, d.ecn, d.segment_size, std::move(d.payload));
          },
          [&](Ping& p) {
            ++metrics_.pongs_sent;
            send(out, c, Pong{p.data});
          },
          [&](Pong& p) {
            if (c.ping_outstanding && *c.ping_outstanding == p.data) {
              c.ping_outstanding.reset();
              schedule_ping(c, now);
            }
          },
          [&](auto& other) {
            ++metrics_.protocol_errors;
            (void)other;
            close(out, conn,
                  std::string("unexpected frame from client: ") + std::string(frame_name(frame)),
                  now);
            keep = false;
          },
      },
      frame);
  if (keep && config_.rate_limit) charge_rate_limit(out, c, message.size(), now);
  return out;
}

void ServerCore::on_sent(ConnId conn) {
  auto it = conns_.find(conn);
  if (it != conns_.end() && it->second.queued > 0) --it->second.queued;
}

void ServerCore::close(Actions& out, ConnId conn, std::string reason, Instant now,
                       bool emit_close) {
  auto it = conns_.find(conn);
  if (it == conns_.end()) return;
  Conn c = std::move(it->second);
  conns_.erase(it);
  ++metrics_.disconnects;
  if (!c.authenticated) {
    --metrics_.connections_pending;
  } else {
    --metrics_.clients;
    auto act = active_.find(c.endpoint);
    if (act != active_.end() && act->second == conn) {
      auto older = inactive_.find(c.endpoint);
      if (older != inactive_.end() && !older->second.empty()) {
        act->second = older->second.back();  // an older same-id connection takes over
        older->second.pop_back();
        if (older->second.empty()) inactive_.erase(older);
        auto promoted = conns_.find(act->second);
        if (promoted != conns_.end() && promoted->second.version == ProtocolVersion::V2) {
          send(out, promoted->second, Status{Status::kHealthy});  // "you are healthy again"
        }
      } else {
        active_.erase(act);
        for (const EndpointId& peer : c.sent_to) {
          auto p = active_.find(peer);
          if (p == active_.end()) continue;
          auto pc = conns_.find(p->second);
          if (pc == conns_.end()) continue;
          ++metrics_.endpoint_gone_sent;
          send(out, pc->second, EndpointGone{c.endpoint});
        }
      }
    } else if (auto older = inactive_.find(c.endpoint); older != inactive_.end()) {
      auto& v = older->second;
      v.erase(std::remove(v.begin(), v.end(), conn), v.end());
      if (v.empty()) inactive_.erase(older);
    }
  }
  if (emit_close) out.push_back(Close{conn, std::move(reason)});
}

Actions ServerCore::on_disconnected(ConnId conn, Instant now) {
  Actions out;
  // The transport is already gone: the driver has nothing to close.
  close(out, conn, "disconnected", now, /*emit_close=*/false);
  return out;
}

std::optional<Instant> ServerCore::next_timeout() const {
  std::optional<Instant> best;
  for (const auto& [id, c] : conns_) {
    Instant t = !c.authenticated     ? c.connected_at + config_.handshake_timeout
                : c.ping_outstanding ? c.ping_deadline
                                     : c.next_ping;
    if (!best || t < *best) best = t;
  }
  return best;
}

Actions ServerCore::on_timeout(Instant now) {
  Actions out;
  std::vector<ConnId> ids;
  ids.reserve(conns_.size());
  for (const auto& [id, c] : conns_) ids.push_back(id);
  for (ConnId id : ids) {
    auto it = conns_.find(id);
    if (it == conns_.end()) continue;
    Conn& c = it->second;
    if (!c.authenticated) {
      if (now >= c.connected_at + config_.handshake_timeout) {
        ++metrics_.handshake_errors;
        close(out, id, "handshake timeout", now);
      }
    } else if (c.ping_outstanding) {
      if (now >= c.ping_deadline) {
        ++metrics_.ping_timeouts;
        close(out, id, "ping timeout", now);
      }
    } else if (now >= c.next_ping) {
      ByteArray<kPingSize> data{};
      std::uint64_t n = ++c.ping_counter;
      for (int i = 7; i >= 0; --i, n >>= 8) data[static_cast<std::size_t>(i)] = n & 0xff;
      c.ping_outstanding = data;
      c.ping_deadline = now + config_.ping_timeout;
      ++metrics_.pings_sent;
      send(out, c, Ping{data});
    }
  }
  return out;
}

Actions ServerCore::shutdown(Instant now) {
  Actions out;
  std::vector<ConnId> ids;
  for (auto& [id, c] : conns_) {
    ids.push_back(id);
    if (c.authenticated) {
      send(out, c, Restarting{config_.restart_reconnect_in_ms, config_.restart_try_for_ms});
    }
  }
  for (ConnId id : ids) {
    // Everyone is leaving: no EndpointGone storm, just close.
    auto it = conns_.find(id);
    if (it != conns_.end()) it->second.sent_to.clear();
    close(out, id, "server shutting down", now);
  }
  return out;
}

}  // namespace iroh::relay

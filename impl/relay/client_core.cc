// The relay client's protocol state machine, sans-IO. See client_core.h.
#include "relay/client_core.h"

#include <algorithm>
#include <utility>

#include "relay/handshake.h"

namespace iroh::relay {

std::string_view to_string(ClientState state) {
  switch (state) {
    case ClientState::Idle:
      return "idle";
    case ClientState::Connecting:
      return "connecting";
    case ClientState::Handshaking:
      return "handshaking";
    case ClientState::Connected:
      return "connected";
    case ClientState::WaitingRetry:
      return "waiting-retry";
    case ClientState::Denied:
      return "denied";
    case ClientState::Closed:
      return "closed";
  }
  return "unknown";
}

std::string_view to_string(ClientEvent::Kind kind) {
  using K = ClientEvent::Kind;
  switch (kind) {
    case K::Connected:
      return "connected";
    case K::Denied:
      return "denied";
    case K::Disconnected:
      return "disconnected";
    case K::ConnectFailed:
      return "connect-failed";
    case K::Reconnecting:
      return "reconnecting";
    case K::PingTimeout:
      return "ping-timeout";
    case K::EndpointGone:
      return "endpoint-gone";
    case K::Status:
      return "status";
    case K::Health:
      return "health";
    case K::Restarting:
      return "restarting";
    case K::DatagramsDropped:
      return "datagrams-dropped";
    case K::Closed:
      return "closed";
  }
  return "unknown";
}

namespace {
ClientEvent make_event(ClientEvent::Kind kind, std::string detail) {
  ClientEvent e;
  e.kind = kind;
  e.detail = std::move(detail);
  return e;
}
}  // namespace

ClientCore::ClientCore(SecretKey secret_key, ClientConfig config, Random& random)
    : secret_key_(std::move(secret_key)), config_(config), random_(random) {
  if (config_.max_batch == 0) config_.max_batch = 1;
  if (config_.max_queue == 0) config_.max_queue = 1;
  if (config_.initial_backoff <= Duration::zero()) config_.initial_backoff = Duration(1);
  if (config_.max_backoff < config_.initial_backoff) config_.max_backoff = config_.initial_backoff;
}

void ClientCore::emit_frame(ClientActions& out, const Frame& frame) {
  out.push_back(SendFrame{encode(frame)});
  ++unflushed_;
}

ClientActions ClientCore::start(Instant now) {
  ClientActions out;
  if (state_ != ClientState::Idle) return out;
  state_ = ClientState::Connecting;
  ++attempt_;
  ++metrics_.connects;
  out.push_back(Connect{attempt_});
  return out;
}

ClientActions ClientCore::on_connected(ProtocolVersion version, bool key_material_header_sent,
                                       Instant now) {
  ClientActions out;
  if (state_ != ClientState::Connecting) return out;
  state_ = ClientState::Handshaking;
  version_ = version;
  auth_method_ = key_material_header_sent ? AuthMethod::KeyMaterialHeader : AuthMethod::None;
  challenge_answered_ = false;
  handshake_deadline_ = now + config_.handshake_timeout;
  ping_outstanding_.reset();
  batch_in_flight_ = false;
  unflushed_ = 0;
  return out;
}

ClientActions ClientCore::on_connect_failed(std::string_view reason, Instant now) {
  ClientActions out;
  if (state_ != ClientState::Connecting) return out;
  out.push_back(make_event(ClientEvent::Kind::ConnectFailed, std::string(reason)));
  lose_connection(out, "connect failed: " + std::string(reason), now, std::nullopt, std::nullopt);
  return out;
}

Duration ClientCore::next_backoff() {
  Duration base = config_.initial_backoff;
  for (std::uint32_t i = 0; i < backoff_exp_ && base < config_.max_backoff; ++i) base *= 2;
  base = std::min(base, config_.max_backoff);
  if (backoff_exp_ < 32) ++backoff_exp_;
  // Jitter factor in [0.5, 1.5).
  const double factor = 0.5 + random_.unit();
  return Duration(static_cast<Duration::rep>(static_cast<double>(base.count()) * factor));
}

void ClientCore::lose_connection(ClientActions& out, std::string reason, Instant now,
                                 std::optional<std::uint16_t> close_code,
                                 std::optional<Duration> delay) {
  const bool was_up = state_ == ClientState::Handshaking || state_ == ClientState::Connected;
  if (close_code) out.push_back(CloseConnection{*close_code, reason});
  if (was_up) out.push_back(make_event(ClientEvent::Kind::Disconnected, reason));
  ping_outstanding_.reset();
  batch_in_flight_ = false;
  unflushed_ = 0;
  Duration d;
  if (delay) {
    d = *delay;
  } else if (restart_until_ && now < *restart_until_) {
    d = config_.initial_backoff;  // inside Restarting's try_for window: retry promptly
  } else {
    restart_until_.reset();
    d = next_backoff();
  }
  state_ = ClientState::WaitingRetry;
  retry_at_ = now + d;
  out.push_back(
      make_event(ClientEvent::Kind::Reconnecting,
                 std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(d).count())));
}

ClientActions ClientCore::on_disconnected(std::string_view reason, Instant now) {
  ClientActions out;
  if (state_ == ClientState::Connecting || state_ == ClientState::Handshaking ||
      state_ == ClientState::Connected) {
    lose_connection(out, std::string(reason), now, std::nullopt, std::nullopt);
  }
  return out;
}

void ClientCore::on_authenticated(ClientActions& out, AuthMethod method, Instant now) {
  state_ = ClientState::Connected;
  auth_method_ = method;
  backoff_exp_ = 0;
  attempt_ = 0;
  restart_until_.reset();
  ++metrics_.connected;
  if (method == AuthMethod::KeyMaterialHeader) {
    ++metrics_.auth_key_material;
  } else {
    ++metrics_.auth_challenge;
  }
  out.push_back(make_event(ClientEvent::Kind::Connected,
                           method == AuthMethod::KeyMaterialHeader ? "key-material" : "challenge"));
  send_ping(out, now);
  pump(out, now);
}

void ClientCore::send_ping(ClientActions& out, Instant now) {
  Ping ping;
  random_.fill(ping.data);
  ping_outstanding_ = ping.data;
  ping_deadline_ = now + config_.ping_timeout;
  next_ping_ = now + config_.ping_interval;
  ++metrics_.pings_sent;
  emit_frame(out, ping);
}

void ClientCore::drop_old(ClientActions& out, Instant now) {
  std::uint64_t dropped = 0;
  while (!queue_.empty() && now - queue_.front().queued_at >= config_.max_datagram_age) {
    queue_.pop_front();
    ++dropped;
  }
  if (dropped != 0) {
    metrics_.drops_too_old += dropped;
    ClientEvent e = make_event(ClientEvent::Kind::DatagramsDropped, "too old");
    e.count = dropped;
    out.push_back(std::move(e));
  }
}

void ClientCore::pump(ClientActions& out, Instant now) {
  drop_old(out, now);
  if (state_ != ClientState::Connected || batch_in_flight_ || queue_.empty()) return;
  std::size_t n = 0;
  while (!queue_.empty() && n < config_.max_batch) {
    Outgoing o = std::move(queue_.front());
    queue_.pop_front();
    emit_frame(out, ClientToRelayDatagram{o.dst, o.ecn, o.segment_size, std::move(o.payload)});
    ++n;
  }
  metrics_.datagrams_sent += n;
  batch_in_flight_ = true;
}

ClientActions ClientCore::on_flushed(Instant now) {
  ClientActions out;
  unflushed_ = 0;
  batch_in_flight_ = false;
  pump(out, now);
  return out;
}

ClientActions ClientCore::send(const EndpointId& dst, Bytes payload, std::uint8_t ecn, Instant now,
                               std::optional<std::uint16_t> segment_size) {
  ClientActions out;
  if (state_ == ClientState::Denied || state_ == ClientState::Closed) return out;
  if (segment_size && *segment_size == 0) segment_size.reset();
  if (queue_.size() >= config_.max_queue) {
    queue_.pop_front();
    ++metrics_.drops_queue_full;
    ClientEvent e = make_event(ClientEvent::Kind::DatagramsDropped, "queue full");
    e.count = 1;
    out.push_back(std::move(e));
  }
  queue_.push_back(
      Outgoing{dst, static_cast<std::uint8_t>(ecn & 3), segment_size, std::move(payload), now});
  pump(out, now);
  return out;
}

ClientActions ClientCore::on_message(ByteView message, Instant now) {
  ClientActions out;
  if (state_ != ClientState::Handshaking && state_ != ClientState::Connected) return out;
  auto decoded = decode(message, version_.value_or(ProtocolVersion::V2));
  if (!decoded.ok()) {
    ++metrics_.protocol_errors;
    lose_connection(out, "bad frame: " + decoded.error().message, now, std::uint16_t{1002},
                    std::nullopt);
    return out;
  }
  handle_frame(out, std::move(*decoded), now);
  return out;
}

void ClientCore::handle_frame(ClientActions& out, Frame frame, Instant now) {
  if (state_ == ClientState::Handshaking) {
    if (auto* ch = std::get_if<ServerChallenge>(&frame)) {
      if (challenge_answered_) {
        ++metrics_.protocol_errors;
        return lose_connection(out, "second ServerChallenge", now, std::uint16_t{1002},
                               std::nullopt);
      }
      challenge_answered_ = true;
      emit_frame(out, sign_challenge(secret_key_, ch->challenge));
      return;
    }
    if (std::holds_alternative<ServerConfirmsAuth>(frame)) {
      // Confirmed without a challenge only happens on the exporter-header path.
      if (!challenge_answered_ && auth_method_ != AuthMethod::KeyMaterialHeader) {
        ++metrics_.protocol_errors;
        return lose_connection(out, "ServerConfirmsAuth without authentication", now,
                               std::uint16_t{1002}, std::nullopt);
      }
      return on_authenticated(
          out, challenge_answered_ ? AuthMethod::Challenge : AuthMethod::KeyMaterialHeader, now);
    }
    if (auto* denied = std::get_if<ServerDeniesAuth>(&frame)) {
      state_ = ClientState::Denied;
      denial_ = denied->reason;
      queue_.clear();
      out.push_back(CloseConnection{1000, "denied: " + denied->reason});
      out.push_back(make_event(ClientEvent::Kind::Denied, denied->reason));
      return;
    }
    ++metrics_.protocol_errors;
    return lose_connection(
        out, std::string("unexpected ") + std::string(frame_name(frame)) + " during handshake", now,
        std::uint16_t{1002}, std::nullopt);
  }

  // Connected.
  if (auto* d = std::get_if<RelayToClientDatagram>(&frame)) {
    ++metrics_.datagrams_received;
    out.push_back(Received{d->src, d->ecn, d->segment_size, std::move(d->payload)});
  } else if (auto* ping = std::get_if<Ping>(&frame)) {
    ++metrics_.pongs_sent;
    emit_frame(out, Pong{ping->data});
  } else if (auto* pong = std::get_if<Pong>(&frame)) {
    if (ping_outstanding_ && pong->data == *ping_outstanding_) {
      ++metrics_.pongs_received;
      ping_outstanding_.reset();
    }
  } else if (auto* gone = std::get_if<EndpointGone>(&frame)) {
    ClientEvent e = make_event(ClientEvent::Kind::EndpointGone, gone->id.to_hex());
    e.endpoint = gone->id;
    out.push_back(std::move(e));
  } else if (auto* st = std::get_if<Status>(&frame)) {
    ClientEvent e = make_event(ClientEvent::Kind::Status, std::string(st->name()));
    e.status = st->code;
    out.push_back(std::move(e));
  } else if (auto* h = std::get_if<Health>(&frame)) {
    out.push_back(make_event(ClientEvent::Kind::Health, h->problem));
  } else if (auto* r = std::get_if<Restarting>(&frame)) {
    ++metrics_.restarts;
    out.push_back(
        make_event(ClientEvent::Kind::Restarting,
                   std::to_string(r->reconnect_in_ms) + "/" + std::to_string(r->try_for_ms)));
    const Duration reconnect_in = std::chrono::milliseconds(r->reconnect_in_ms);
    restart_until_ = now + reconnect_in + std::chrono::milliseconds(r->try_for_ms);
    lose_connection(out, "server restarting", now, std::uint16_t{1000}, reconnect_in);
  } else {
    // ServerChallenge / auth frames after auth, or client-direction frames: protocol error.
    ++metrics_.protocol_errors;
    lose_connection(out, std::string("unexpected ") + std::string(frame_name(frame)), now,
                    std::uint16_t{1002}, std::nullopt);
  }
}

std::optional<Instant> ClientCore::next_timeout() const {
  std::optional<Instant> t;
  auto consider = [&](Instant i) {
    if (!t || i < *t) t = i;
  };
  switch (state_) {
    case ClientState::Handshaking:
      consider(handshake_deadline_);
      break;
    case ClientState::Connected:
      consider(next_ping_);
      if (ping_outstanding_) consider(ping_deadline_);
      break;
    case ClientState::WaitingRetry:
      consider(retry_at_);
      break;
    default:
      break;
  }
  if (!queue_.empty() && state_ != ClientState::Denied && state_ != ClientState::Closed) {
    consider(queue_.front().queued_at + config_.max_datagram_age);
  }
  return t;
}

ClientActions ClientCore::on_timeout(Instant now) {
  ClientActions out;
  switch (state_) {
    case ClientState::Handshaking:
      if (now >= handshake_deadline_) {
        lose_connection(out, "handshake timeout", now, std::uint16_t{1000}, std::nullopt);
      }
      break;
    case ClientState::Connected:
      if (ping_outstanding_ && now >= ping_deadline_) {
        ++metrics_.ping_timeouts;
        out.push_back(make_event(ClientEvent::Kind::PingTimeout, "no pong within timeout"));
        lose_connection(out, "ping timeout", now, std::uint16_t{1000}, std::nullopt);
        break;
      }
      if (now >= next_ping_) send_ping(out, now);
      break;
    case ClientState::WaitingRetry:
      if (now >= retry_at_) {
        state_ = ClientState::Connecting;
        ++attempt_;
        ++metrics_.connects;
        out.push_back(Connect{attempt_});
      }
      break;
    default:
      break;
  }
  drop_old(out, now);
  return out;
}

ClientActions ClientCore::close(Instant now) {
  ClientActions out;
  if (state_ == ClientState::Closed) return out;
  // (Denied already closed its connection.)
  const bool up = state_ == ClientState::Handshaking || state_ == ClientState::Connected;
  state_ = ClientState::Closed;
  queue_.clear();
  ping_outstanding_.reset();
  if (up) out.push_back(CloseConnection{1000, "closed"});
  out.push_back(make_event(ClientEvent::Kind::Closed, "closed"));
  return out;
}

}  // namespace iroh::relay

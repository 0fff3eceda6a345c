#include "io/quic_endpoint.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "base/text_encoding.h"
#include "crypto/tls.h"

namespace iroh::io {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

Instant steady_now() {
  return Instant(
      std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch()));
}

std::chrono::steady_clock::time_point to_steady(Instant t) {
  return std::chrono::steady_clock::time_point(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(t.time_since_epoch()));
}

// Largest UDP payload we ever build (PMTU probes included); the GSO buffer holds a batch of them.
constexpr std::size_t kMaxDatagram = 1500;
constexpr std::size_t kMaxBatch = 32;

}  // namespace

const char* error_kind_name(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kTimeout:
      return "timeout";
    case ErrorKind::kKeyMismatch:
      return "key-mismatch";
    case ErrorKind::kAlpn:
      return "alpn";
    case ErrorKind::kClosed:
      return "closed";
    case ErrorKind::kUnreachable:
      return "unreachable";
    case ErrorKind::kTransport:
      return "transport";
  }
  return "transport";
}

QuicError error_from_close(const quic::CloseReason& r) {
  using K = quic::CloseReason::Kind;
  QuicError e;
  e.close = r;
  e.message = r.describe();
  constexpr std::uint64_t kAlpnAlert = 0x100 + 120;  // CRYPTO_ERROR(no_application_protocol)
  switch (r.kind) {
    case K::kHandshakeTimeout:
      e.kind = ErrorKind::kTimeout;
      e.message = "no handshake with the peer within the timeout";
      return e;
    case K::kIdleTimeout:
      e.kind = ErrorKind::kTimeout;
      e.message = "connection idle timeout";
      return e;
    case K::kLocalTransport:
      if (r.tls_alert == 42 && r.reason.find("key mismatch") != std::string::npos) {
        e.kind = ErrorKind::kKeyMismatch;
        e.message = r.reason;
      } else if (r.code == kAlpnAlert) {
        e.kind = ErrorKind::kAlpn;
      } else {
        e.kind = ErrorKind::kTransport;
      }
      return e;
    case K::kPeerTransport:
      if (r.code == kAlpnAlert) {
        e.kind = ErrorKind::kAlpn;
        e.message = "the peer accepts none of our ALPNs (" + r.describe() + ")";
      } else if (r.code == 0) {
        e.kind = ErrorKind::kClosed;
      } else {
        e.kind = ErrorKind::kTransport;
      }
      return e;
    case K::kPeerApplication:
    case K::kLocalApplication:
    case K::kStatelessReset:
      e.kind = ErrorKind::kClosed;
      return e;
    case K::kVersionMismatch:
      e.kind = ErrorKind::kTransport;
      return e;
  }
  return e;
}

// ---------------------------------------------------------------------------------------------
// QuicConnection
// ---------------------------------------------------------------------------------------------

QuicConnection::QuicConnection(std::shared_ptr<QuicEndpoint> endpoint,
                               quic::ConnectionHandle handle)
    : endpoint_(std::move(endpoint)), handle_(handle), notifier_(endpoint_->io()), remote_id_() {
  notifier_.expires_at(std::chrono::steady_clock::time_point::max());
}

QuicConnection::~QuicConnection() = default;

quic::Connection* QuicConnection::conn() const { return endpoint_->core().connection(handle_); }

void QuicConnection::notify() { notifier_.cancel(); }

awaitable<void> QuicConnection::wait() {
  boost::system::error_code ec;
  co_await notifier_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

bool QuicConnection::is_closed() const {
  auto* c = conn();
  return !c || c->is_closed();
}

std::optional<quic::CloseReason> QuicConnection::close_reason() const {
  if (auto* c = conn()) return c->close_reason();
  return final_reason_;
}

QuicError QuicConnection::closed_error() const {
  if (auto r = close_reason()) return error_from_close(*r);
  return QuicError{ErrorKind::kClosed, "connection closed", std::nullopt};
}

awaitable<QuicResult<std::uint64_t>> QuicConnection::open_bi() {
  for (;;) {
    if (is_closed()) co_return closed_error();
    if (auto id = conn()->open_stream(quic::StreamDirection::kBidi)) {
      endpoint_->kick();
      co_return *id;
    }
    co_await wait();
  }
}

awaitable<QuicResult<std::uint64_t>> QuicConnection::open_uni() {
  for (;;) {
    if (is_closed()) co_return closed_error();
    if (auto id = conn()->open_stream(quic::StreamDirection::kUni)) {
      endpoint_->kick();
      co_return *id;
    }
    co_await wait();
  }
}

awaitable<QuicResult<std::uint64_t>> QuicConnection::accept_bi() {
  for (;;) {
    if (auto* c = conn()) {
      if (auto id = c->accept_stream(quic::StreamDirection::kBidi)) co_return *id;
    }
    if (is_closed()) co_return closed_error();
    co_await wait();
  }
}

awaitable<QuicResult<std::uint64_t>> QuicConnection::accept_uni() {
  for (;;) {
    if (auto* c = conn()) {
      if (auto id = c->accept_stream(quic::StreamDirection::kUni)) co_return *id;
    }
    if (is_closed()) co_return closed_error();
    co_await wait();
  }
}

awaitable<QuicResult<void>> QuicConnection::write_all(std::uint64_t id, ByteView data) {
  while (!data.empty()) {
    if (is_closed()) co_return closed_error();
    auto n = conn()->stream_write(id, data);
    if (!n) co_return QuicError{ErrorKind::kTransport, n.error().message, std::nullopt};
    if (*n > 0) {
      data = data.subspan(*n);
      endpoint_->kick();
    }
    if (!data.empty()) co_await wait();
  }
  co_return QuicResult<void>{};
}

QuicResult<void> QuicConnection::finish(std::uint64_t id) {
  if (is_closed()) return closed_error();
  if (auto r = conn()->stream_finish(id); !r) {
    return QuicError{ErrorKind::kTransport, r.error().message, std::nullopt};
  }
  endpoint_->kick();
  return {};
}

QuicResult<void> QuicConnection::reset(std::uint64_t id, std::uint64_t code) {
  if (is_closed()) return closed_error();
  if (auto r = conn()->stream_reset(id, code); !r) {
    return QuicError{ErrorKind::kTransport, r.error().message, std::nullopt};
  }
  endpoint_->kick();
  return {};
}

QuicResult<void> QuicConnection::stop_sending(std::uint64_t id, std::uint64_t code) {
  if (is_closed()) return closed_error();
  if (auto r = conn()->stream_stop_sending(id, code); !r) {
    return QuicError{ErrorKind::kTransport, r.error().message, std::nullopt};
  }
  endpoint_->kick();
  return {};
}

awaitable<QuicResult<quic::StreamReadResult>> QuicConnection::read(std::uint64_t id,
                                                                   std::span<std::uint8_t> out) {
  for (;;) {
    auto* c = conn();
    if (!c) co_return closed_error();
    auto r = c->stream_read(id, out);
    if (!r) {
      if (c->is_closed()) co_return closed_error();
      co_return QuicError{ErrorKind::kTransport, r.error().message, std::nullopt};
    }
    if (r->bytes > 0 || r->fin) {
      endpoint_->kick();  // flow-control credit may go out
      co_return *r;
    }
    if (c->is_closed()) co_return closed_error();
    co_await wait();
  }
}

awaitable<QuicResult<void>> QuicConnection::stopped(std::uint64_t id) {
  for (;;) {
    auto* c = conn();
    if (!c) co_return closed_error();
    if (c->stream_all_acked(id)) co_return QuicResult<void>{};
    if (c->is_closed()) co_return closed_error();
    co_await wait();
  }
}

QuicResult<void> QuicConnection::send_datagram(ByteView data) {
  if (is_closed()) return closed_error();
  if (auto r = conn()->send_datagram(data); !r) {
    return QuicError{ErrorKind::kTransport, r.error().message, std::nullopt};
  }
  endpoint_->kick();
  return {};
}

awaitable<QuicResult<Bytes>> QuicConnection::recv_datagram() {
  for (;;) {
    auto* c = conn();
    if (!c) co_return closed_error();
    if (auto d = c->recv_datagram()) co_return std::move(*d);
    if (c->is_closed()) co_return closed_error();
    co_await wait();
  }
}

std::size_t QuicConnection::max_datagram_size() const {
  auto* c = conn();
  return c ? c->max_datagram_size() : 0;
}

void QuicConnection::close(std::uint64_t code, std::string_view reason) {
  if (auto* c = conn()) {
    c->close(endpoint_->now(), code, reason);
    endpoint_->kick();
  }
}

awaitable<quic::CloseReason> QuicConnection::closed() {
  for (;;) {
    if (auto r = close_reason()) co_return *r;
    if (!conn()) co_return quic::CloseReason{};
    co_await wait();
  }
}

awaitable<void> QuicConnection::drain(Duration limit) {
  // The close is written by the next flush; give it that chance, then wait for the connection to
  // be forgotten (end of the closing period) or the limit.
  asio::steady_timer t(endpoint_->io());
  t.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit));
  bool expired = false;
  t.async_wait([this, &expired](boost::system::error_code ec) {
    if (!ec) {
      expired = true;
      notify();
    }
  });
  while (conn() && !expired) co_await wait();
  t.cancel();
  // Let the cancelled handler run before `expired` goes out of scope.
  co_await asio::post(endpoint_->io(), asio::use_awaitable);
}

EndpointId QuicConnection::remote_id() const {
  if (auto* c = conn()) {
    if (auto id = c->peer_id()) return *id;
  }
  return remote_id_;
}

std::string QuicConnection::alpn() const {
  if (auto* c = conn()) {
    if (auto a = c->alpn()) return *a;
  }
  return alpn_;
}

quic::ConnectionStats QuicConnection::stats() const {
  if (auto* c = conn()) return c->stats();
  return last_stats_;
}

// ---------------------------------------------------------------------------------------------
// QuicEndpoint
// ---------------------------------------------------------------------------------------------

Result<std::shared_ptr<QuicEndpoint>> QuicEndpoint::bind(asio::io_context& io,
                                                         const SecretKey& secret,
                                                         QuicEndpointOptions options) {
  crypto::warm_up();
  UdpSocketOptions so;
  so.allow_gso = options.gso;
  so.allow_gro = options.gro;
  auto sock = UdpSocket::bind(io, options.bind, so);
  if (!sock) return sock.error();
  std::shared_ptr<QuicEndpoint> ep(
      new QuicEndpoint(io, secret, std::move(options), std::move(sock).value()));
  ep->start();
  return ep;
}

QuicEndpoint::QuicEndpoint(asio::io_context& io, const SecretKey& secret,
                           QuicEndpointOptions options, UdpSocket socket)
    : io_(io),
      secret_(secret),
      options_(std::move(options)),
      socket_(std::move(socket)),
      timer_(io),
      accept_notifier_(io),
      relay_notifier_(io),
      maintain_timer_(io),
      interface_timer_(io) {
  accept_notifier_.expires_at(std::chrono::steady_clock::time_point::max());
  relay_notifier_.expires_at(std::chrono::steady_clock::time_point::max());
  quic::EndpointConfig cfg;
  cfg.alpns = options_.alpns;
  cfg.connection = options_.connection;
  cfg.connection.ecn = cfg.connection.ecn && socket_.capabilities().ecn;
  // Without hole punching we do not offer n0 NAT traversal at all (so no peer punches to us).
  if (!options_.hole_punching) cfg.connection.nat_traversal_addresses = 0;
  cfg.retry = options_.retry;
  // SSLKEYLOGFILE (NSS key log format), read when the endpoint is created so that setting it for
  // one endpoint in a process works; lines are appended and flushed per secret so Wireshark can
  // decrypt live captures.
  if (const char* path = std::getenv("SSLKEYLOGFILE"); path && *path && !cfg.connection.keylog) {
    auto file = std::make_shared<std::ofstream>(path, std::ios::app);
    if (*file) {
      cfg.connection.keylog = [file](std::string_view label, ByteView client_random,
                                     ByteView secret) {
        *file << label << ' ' << to_hex(client_random) << ' ' << to_hex(secret) << '\n'
              << std::flush;
      };
    }
  }
  if (!options_.qlog_dir.empty()) {
    cfg.qlog_factory = [this](quic::Role role, ByteView odcid) { return make_qlog(role, odcid); };
  }
  core_ = std::make_unique<quic::Endpoint>(secret_, std::move(cfg), random_);
  const auto& caps = socket_.capabilities();
  max_batch_ = caps.gso ? std::min<std::size_t>(kMaxBatch, caps.max_gso_segments) : 1;
  send_buf_.resize(kMaxDatagram * std::max<std::size_t>(max_batch_, 1));
}

QuicEndpoint::~QuicEndpoint() {
  // Relay clients keep themselves alive while they have work: stop them with us.
  for (auto& [url, relay] : relays_) relay->close();
}

Instant QuicEndpoint::now() const { return steady_now(); }
SocketAddr QuicEndpoint::local_addr() const { return socket_.local_addr(); }
EndpointId QuicEndpoint::id() const { return core_->id(); }
const UdpCapabilities& QuicEndpoint::capabilities() const { return socket_.capabilities(); }

EndpointAddr QuicEndpoint::addr() const {
  SocketAddr a = local_addr();
  bool unspecified = true;
  for (auto b : a.ip()) unspecified = unspecified && b == 0;
  if (unspecified) {
    if (a.is_v4()) {
      a = SocketAddr::v4({127, 0, 0, 1}, a.port());
    } else {
      ByteArray<16> lo{};
      lo[15] = 1;
      a = SocketAddr::v6(lo, a.port());
    }
  }
  EndpointAddr out;
  out.id = id();
  out.addrs.insert(TransportAddr(a));
  if (options_.relay) out.addrs.insert(TransportAddr(*options_.relay));
  return out;
}

// ---- relays ---------------------------------------------------------------------------------

namespace {
// iroh's RelayMappedAddr range (spec §5.5): fd15:70a:510b:1::/64, fixed port 12345. Our host bits
// are a counter; the addresses are internal path handles only.
constexpr std::uint8_t kRelayPrefix[8] = {0xfd, 0x15, 0x07, 0x0a, 0x51, 0x0b, 0x00, 0x01};
constexpr std::uint16_t kRelayPort = 12345;
}  // namespace

bool QuicEndpoint::is_relay_path(const SocketAddr& remote) const {
  return relay_paths_.count(remote) != 0;
}

std::string QuicEndpoint::describe_path(const SocketAddr& remote) const {
  auto it = relay_paths_.find(remote);
  if (it != relay_paths_.end()) return "relay:" + it->second.url.str();
  return "udp:" + remote.to_string();
}

SocketAddr QuicEndpoint::relay_path_addr(const RelayUrl& url, const EndpointId& peer) {
  auto key = std::make_pair(url, peer);
  auto it = relay_path_addrs_.find(key);
  if (it != relay_path_addrs_.end()) return it->second;
  ByteArray<16> ip{};
  std::copy(std::begin(kRelayPrefix), std::end(kRelayPrefix), ip.begin());
  std::uint64_t n = next_relay_path_++;
  for (int i = 15; i >= 8; --i, n >>= 8) ip[i] = static_cast<std::uint8_t>(n);
  auto addr = SocketAddr::v6(ip, kRelayPort);
  relay_path_addrs_.emplace(key, addr);
  relay_paths_.emplace(addr, RelayPath{url, peer});
  return addr;
}

RelayClient* QuicEndpoint::relay_for(const RelayUrl& url) {
  auto it = relays_.find(url);
  if (it != relays_.end()) return it->second.get();
  auto client = RelayClient::start(io_, secret_, url, options_.relay_client);
  if (!client) return nullptr;
  // Weak: the endpoint owns its relay clients, whose callbacks must not keep it alive.
  std::weak_ptr<QuicEndpoint> weak = weak_from_this();
  (*client)->on_receive([weak, url](RelayDatagram d) {
    if (auto self = weak.lock()) self->on_relay_datagram(url, std::move(d));
  });
  const bool home = options_.relay && *options_.relay == url;
  (*client)->on_event([weak, home](const relay::ClientEvent&) {
    auto self = weak.lock();
    if (self && home) self->relay_notifier_.cancel();
  });
  auto* raw = client->get();
  relays_.emplace(url, std::move(client).value());
  return raw;
}

std::shared_ptr<RelayClient> QuicEndpoint::home_relay_client() const {
  if (!options_.relay) return nullptr;
  auto it = relays_.find(*options_.relay);
  return it == relays_.end() ? nullptr : it->second;
}

void QuicEndpoint::on_relay_datagram(const RelayUrl& url, RelayDatagram d) {
  if (closed_) return;
  const SocketAddr from = relay_path_addr(url, d.src);
  const Instant t = now();
  // A relayed batch carries segment_size-strided datagrams (the last one may be shorter).
  const std::size_t stride = d.segment_size && *d.segment_size ? *d.segment_size : d.data.size();
  for (std::size_t off = 0; off < d.data.size(); off += stride) {
    const std::size_t len = std::min(stride, d.data.size() - off);
    core_->handle_datagram(t, from, std::span<std::uint8_t>(d.data.data() + off, len), d.ecn);
  }
  dispatch_events();
  flush();
}

void QuicEndpoint::send_via_relay(const SocketAddr& dest, std::uint8_t ecn, ByteView data,
                                  std::size_t segment_size) {
  auto it = relay_paths_.find(dest);
  if (it == relay_paths_.end()) return;
  auto* relay = relay_for(it->second.url);
  if (!relay) return;
  // A GSO batch travels as one relay datagram with its segment size (iroh does the same): one
  // WebSocket message instead of one per QUIC packet, which is what bounds relay throughput.
  if (data.size() > segment_size) {
    relay->send(it->second.peer, data, ecn, static_cast<std::uint16_t>(segment_size));
  } else {
    relay->send(it->second.peer, data, ecn);
  }
}

awaitable<bool> QuicEndpoint::relay_ready(Duration limit) {
  auto client = home_relay_client();
  if (!client) co_return false;
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (;;) {
    const auto st = client->state();
    if (st == relay::ClientState::Connected) co_return true;
    if (st == relay::ClientState::Denied || st == relay::ClientState::Closed || closed_) {
      co_return false;
    }
    if (std::chrono::steady_clock::now() >= deadline) co_return false;
    // Wake on the next relay event, or at the deadline.
    asio::steady_timer guard(io_);
    guard.expires_at(deadline);
    guard.async_wait([this](boost::system::error_code ec) {
      if (!ec) relay_notifier_.cancel();
    });
    boost::system::error_code ec;
    co_await relay_notifier_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    guard.cancel();
    relay_notifier_.expires_at(std::chrono::steady_clock::time_point::max());
  }
}

quic::QlogSink QuicEndpoint::make_qlog(quic::Role role, ByteView odcid) {
  // JSON-SEQ (RFC 7464) qlog 0.3, one file per connection: <odcid>_<role>.sqlog.
  const std::string path = options_.qlog_dir + "/" + to_hex(odcid) +
                           (role == quic::Role::kClient ? "_client" : "_server") + ".sqlog";
  auto file = std::make_shared<std::ofstream>(path, std::ios::trunc);
  if (!*file) return {};
  const Instant reference = now();
  *file << '\x1e' << R"({"qlog_version":"0.3","qlog_format":"JSON-SEQ","title":"irohlab",)"
        << R"("trace":{"vantage_point":{"type":")"
        << (role == quic::Role::kClient ? "client" : "server")
        << R"("},"common_fields":{"group_id":")" << to_hex(odcid)
        << R"(","time_format":"relative","reference_time":0}}})"
        << "\n";
  auto count = std::make_shared<std::uint64_t>(0);
  return [file, reference, count](const quic::QlogEvent& ev) {
    char t[32];
    std::snprintf(t, sizeof t, "%.3f", to_millis_f(ev.time - reference));
    *file << '\x1e' << R"({"time":)" << t << R"(,"name":")" << ev.name << R"(","data":)"
          << (ev.data.empty() ? "{}" : ev.data) << "}\n";
    // Complete on disk when the connection ends, and never far behind while it runs.
    if (ev.name == "transport:connection_closed" || ++*count % 1024 == 0) file->flush();
  };
}

void QuicEndpoint::start() {
  refresh_candidates();
  watch_interfaces();
  receive_loop();
  arm_timer();
  if (options_.relay) relay_for(*options_.relay);
}

void QuicEndpoint::receive_loop() {
  if (closed_) return;
  auto self = shared_from_this();
  socket_.async_receive([self](Result<std::span<const ReceivedDatagram>> batch) {
    if (self->closed_) return;
    if (batch) self->on_batch(*batch);
    self->receive_loop();
  });
}

void QuicEndpoint::on_batch(std::span<const ReceivedDatagram> batch) {
  const Instant t = now();
  for (const auto& d : batch) {
    // The socket's receive buffers are ours until the handler returns; the engine decrypts in
    // place, so it gets them mutable.
    auto* p = const_cast<std::uint8_t*>(d.data.data());
    core_->handle_datagram(t, d.from, std::span<std::uint8_t>(p, d.data.size()), d.ecn);
  }
  dispatch_events();
  flush();
}

void QuicEndpoint::kick() {
  if (flush_posted_ || closed_) return;
  flush_posted_ = true;
  asio::post(io_, [self = shared_from_this()] {
    self->flush_posted_ = false;
    self->dispatch_events();
    self->flush();
  });
}

void QuicEndpoint::flush() {
  if (closed_ || send_blocked_) return;
  // Bounded per call so the receive side gets its turn; a kick continues.
  for (int i = 0; i < 256; ++i) {
    auto t = core_->poll_transmit(now(), send_buf_, max_batch_);
    if (!t) break;
    if (!relay_paths_.empty() && is_relay_path(t->dest)) {
      send_via_relay(t->dest, t->ecn, ByteView(send_buf_.data(), t->size),
                     t->segment_size ? t->segment_size : t->size);
      if (i == 255) kick();
      continue;
    }
    auto sent = socket_.send(t->dest, t->ecn, std::span(send_buf_.data(), t->size),
                             t->segment_size ? t->segment_size : t->size);
    if (!sent) continue;  // e.g. unreachable destination: QUIC recovers or times out
    if (*sent < t->size) {
      // Kernel buffer full: keep the rest and resume when the socket is writable.
      send_blocked_ = true;
      auto rest = std::make_shared<Bytes>(send_buf_.begin() + *sent, send_buf_.begin() + t->size);
      auto self = shared_from_this();
      const auto dest = t->dest;
      const auto ecn = t->ecn;
      const auto seg = t->segment_size ? t->segment_size : t->size;
      socket_.async_wait_writable([self, rest, dest, ecn, seg](Result<void>) {
        self->send_blocked_ = false;
        std::size_t off = 0;
        while (off < rest->size()) {
          auto n =
              self->socket_.send(dest, ecn, std::span(rest->data() + off, rest->size() - off), seg);
          if (!n || *n == 0) break;
          off += *n;
        }
        self->flush();
      });
      break;
    }
    if (i == 255) kick();
  }
  dispatch_events();
  arm_timer();
}

void QuicEndpoint::arm_timer() {
  if (closed_) return;
  auto t = core_->next_timeout();
  if (t == timer_at_) return;
  timer_at_ = t;
  if (!t) {
    timer_.cancel();
    return;
  }
  timer_.expires_at(to_steady(*t));
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    self->timer_at_.reset();
    self->core_->handle_timeout(self->now());
    self->dispatch_events();
    self->flush();
  });
}

// Hole-punch rounds are due at times of their own (impl/io/quic_endpoint_paths.cc).
void QuicEndpoint::arm_maintain_timer() {
  std::optional<Instant> next;
  auto consider = [&](std::optional<Instant> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (const auto& [h, pol] : path_policies_) {
    consider(pol.schedule.next_time());
    consider(pol.schedule.next_upgrade_check());
  }
  if (next == maintain_at_) return;
  maintain_at_ = next;
  if (!next) {
    maintain_timer_.cancel();
    return;
  }
  maintain_timer_.expires_at(to_steady(*next));
  maintain_timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (ec || self->closed_) return;
    self->maintain_at_.reset();
    self->maintain_paths();
    self->flush();
  });
}

void QuicEndpoint::dispatch_events() {
  // New incoming connections.
  while (auto h = core_->accept()) {
    auto c = std::make_shared<QuicConnection>(shared_from_this(), *h);
    conns_[*h] = c;
    pending_incoming_.push_back(c);
  }
  bool accept_ready = false;
  for (auto it = pending_incoming_.begin(); it != pending_incoming_.end();) {
    auto* c = (*it)->conn();
    if (!c || c->is_closed()) {
      it = pending_incoming_.erase(it);
    } else if (c->is_handshake_complete()) {
      ready_incoming_.push_back(*it);
      it = pending_incoming_.erase(it);
      accept_ready = true;
    } else {
      ++it;
    }
  }
  if (accept_ready) accept_notifier_.cancel();
  // Wake the coroutines of every connection that has news.
  for (auto it = conns_.begin(); it != conns_.end();) {
    auto c = it->second.lock();
    if (!c) {
      it = conns_.erase(it);
      continue;
    }
    bool news = false;
    if (auto* qc = c->conn()) {
      while (auto ev = qc->poll_event()) {
        news = true;
        // The server's candidates changed: the client punches again (spec §5.4).
        if (std::holds_alternative<quic::event::NatTraversalUpdated>(*ev)) {
          path_policies_[it->first].schedule.request(now(), true);
        }
      }
      if (qc->is_handshake_complete() && c->alpn_.empty()) {
        c->alpn_ = qc->alpn().value_or("");
        if (auto id = qc->peer_id()) c->remote_id_ = *id;
      }
    }
    if (news) c->notify();
    ++it;
  }
  for (auto& removed : core_->take_removed()) {
    auto it = conns_.find(removed.handle);
    if (it == conns_.end()) continue;
    if (auto c = it->second.lock()) {
      c->final_reason_ = removed.reason;
      c->last_stats_ = removed.stats;
      c->notify();
    }
    conns_.erase(it);
  }
  maintain_paths();
}

awaitable<QuicResult<std::shared_ptr<QuicConnection>>> QuicEndpoint::connect(
    const EndpointAddr& addr, std::string alpn) {
  const bool v4 = local_addr().is_v4();
  std::optional<SocketAddr> remote;
  for (const auto& a : addr.ip_addrs()) {
    if (a.is_v4() == v4) {
      remote = a;
      break;
    }
  }
  if (!remote) {
    // No direct address we can use: go through the peer's relay (any relay it named).
    auto relays = addr.relay_urls();
    if (!relays.empty() && relay_for(relays.front())) {
      remote = relay_path_addr(relays.front(), addr.id);
    }
  }
  if (!remote) {
    co_return QuicError{ErrorKind::kUnreachable,
                        std::string("the address has no ") + (v4 ? "IPv4" : "IPv6") +
                            " address to dial from " + local_addr().to_string() +
                            " and no usable relay URL",
                        std::nullopt};
  }
  auto h = core_->connect(now(), *remote, addr.id, std::move(alpn));
  if (!h) co_return QuicError{ErrorKind::kTransport, h.error().message, std::nullopt};
  auto c = std::make_shared<QuicConnection>(shared_from_this(), *h);
  conns_[*h] = c;
  kick();
  for (;;) {
    auto* qc = c->conn();
    if (qc && qc->is_handshake_complete() && !qc->is_closed()) co_return c;
    if (!qc || qc->is_closed()) co_return c->closed_error();
    co_await c->wait();
  }
}

awaitable<std::shared_ptr<QuicConnection>> QuicEndpoint::accept() {
  for (;;) {
    if (!ready_incoming_.empty()) {
      auto c = ready_incoming_.front();
      ready_incoming_.pop_front();
      co_return c;
    }
    if (closed_) co_return nullptr;
    boost::system::error_code ec;
    co_await accept_notifier_.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  }
}

awaitable<void> QuicEndpoint::shutdown(std::uint64_t code, std::string_view reason) {
  for (auto& [h, w] : conns_) {
    if (auto c = w.lock()) c->close(code, reason);
  }
  for (auto h : core_->handles()) {
    if (auto* c = core_->connection(h)) c->close(now(), code, reason);
  }
  flush();
  // The closes are on the wire after this flush; a short grace lets retransmitted CLOSEs go too.
  asio::steady_timer t(io_);
  t.expires_after(50ms);
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  close();
}

void QuicEndpoint::close() {
  if (closed_) return;
  closed_ = true;
  timer_.cancel();
  accept_notifier_.cancel();
  relay_notifier_.cancel();
  maintain_timer_.cancel();
  interface_timer_.cancel();
  socket_.close();
  for (auto& [url, relay] : relays_) relay->close();
  // Queued incoming connections hold the endpoint (QuicConnection keeps a shared_ptr to it):
  // drop them so a closed endpoint and its connections can be freed.
  pending_incoming_.clear();
  ready_incoming_.clear();
  for (auto& [h, w] : conns_) {
    if (auto c = w.lock()) c->notify();
  }
}

}  // namespace iroh::io

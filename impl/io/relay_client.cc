// The relay client's I/O driver. See relay_client.h; protocol decisions live in relay/client_core.
#include "io/relay_client.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <cctype>
#include <deque>
#include <fstream>
#include <variant>

#include "base/random.h"
#include "relay/handshake.h"

namespace iroh::io {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::size_t kMaxWsMessage = 1 << 20;  // MAX_FRAME_SIZE, protos/relay.rs
constexpr auto kCloseHandshakeTimeout = std::chrono::seconds(2);

relay::Instant now_instant() {
  return std::chrono::duration_cast<relay::Instant>(Clock::now().time_since_epoch());
}
Clock::time_point to_time_point(relay::Instant i) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(i));
}

// Percent-encodes everything but RFC 3986 unreserved characters (for ?token=).
std::string query_escape(std::string_view v) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : v) {
    if (std::isalnum(c) != 0 || c == '-' || c == '.' || c == '_' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

// The WebSocket side of one connection attempt, TCP or TLS.
class ConnectionBase : public std::enable_shared_from_this<ConnectionBase> {
 public:
  virtual ~ConnectionBase() = default;
  virtual void write(Bytes frame) = 0;
  virtual void close_after_flush(std::uint16_t code) = 0;
  virtual void abort() = 0;
};

}  // namespace

struct RelayClient::Impl {
  Impl(net::io_context& io, SecretKey sk, RelayUrl u, RelayClientOptions o,
       std::unique_ptr<Random> r)
      : ioc(io),
        secret_key(sk),
        url(std::move(u)),
        options(std::move(o)),
        rng(std::move(r)),
        core(secret_key, options.core, *rng),
        timer(io) {}

  void dispatch(relay::ClientActions actions);
  void rearm_timer();
  void dial(std::uint64_t generation);
  template <class WS>
  net::awaitable<void> connect(std::shared_ptr<RelayClient> self, std::uint64_t generation);

  // Called by connections (only when they are current).
  void on_ws_message(ConnectionBase* conn, ByteView message) {
    if (conn != current.get()) return;
    dispatch(core.on_message(message, now_instant()));
  }
  void on_ws_flushed(ConnectionBase* conn) {
    if (conn != current.get()) return;
    dispatch(core.on_flushed(now_instant()));
  }
  void on_ws_closed(ConnectionBase* conn, const std::string& why) {
    if (conn != current.get()) return;
    current.reset();
    dispatch(core.on_disconnected(why, now_instant()));
  }

  net::io_context& ioc;
  SecretKey secret_key;
  RelayUrl url;
  RelayClientOptions options;
  std::unique_ptr<Random> rng;
  relay::ClientCore core;
  net::steady_timer timer;
  std::optional<relay::Instant> timer_at;
  std::optional<ssl::context> tls;
  bool use_tls = false;
  std::string host;         // for DNS / SNI / certificate check (no brackets)
  std::string host_header;  // Host: value
  std::uint16_t port = 0;
  std::string target;  // "/relay" (+ "?token=")
  std::string ws_url;
  std::uint64_t generation = 0;  // bumps on every dial / detach
  std::shared_ptr<ConnectionBase> current;
  std::shared_ptr<ConnectionBase> dialing;
  std::function<void(RelayDatagram)> on_receive;
  std::function<void(const relay::ClientEvent&)> on_event;
  std::weak_ptr<RelayClient> owner;
};

namespace {

template <class WS>
class Connection final : public ConnectionBase {
 public:
  template <class... Args>
  explicit Connection(RelayClient::Impl& client, Args&&... args)
      : client_(client), ws_(std::forward<Args>(args)...) {}

  WS& ws() { return ws_; }

  void start_reading(std::shared_ptr<RelayClient> owner) {
    owner_ = std::move(owner);
    do_read();
  }

  void write(Bytes frame) override {
    if (closed_ || closing_) return;
    wq_.push_back(std::move(frame));
    if (!writing_) do_write();
  }

  void close_after_flush(std::uint16_t code) override {
    if (closing_ || closed_) return;
    closing_ = true;
    close_code_ = code;
    if (!writing_) do_close();
  }

  void abort() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    auto& sock = beast::get_lowest_layer(ws_).socket();
    sock.shutdown(tcp::socket::shutdown_both, ignored);
    sock.close(ignored);
    owner_.reset();
  }

 private:
  std::shared_ptr<Connection> self() {
    return std::static_pointer_cast<Connection>(shared_from_this());
  }

  void do_read() {
    if (closed_) return;
    ws_.async_read(rbuf_, [self = self()](beast::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) {
        self->closed_ = true;
        std::string why =
            ec == websocket::error::closed ? "closed by server" : "read: " + ec.message();
        if (ec == websocket::error::closed) {
          const auto& r = self->ws_.reason();
          why += " (code " + std::to_string(r.code) +
                 (r.reason.empty() ? "" : ", " + std::string(r.reason.c_str())) + ")";
        }
        auto owner = std::move(self->owner_);
        self->client_.on_ws_closed(self.get(), why);
        return;
      }
      if (!self->ws_.got_binary()) {
        self->rbuf_.consume(self->rbuf_.size());
        self->client_.on_ws_closed(self.get(), "text message (relay frames are binary)");
        self->close_after_flush(static_cast<std::uint16_t>(websocket::close_code::unknown_data));
        return;
      }
      const auto data = self->rbuf_.cdata();
      self->client_.on_ws_message(
          self.get(), ByteView(static_cast<const std::uint8_t*>(data.data()), data.size()));
      self->rbuf_.consume(self->rbuf_.size());
      self->do_read();
    });
  }

  void do_write() {
    if (closed_) return;
    if (wq_.empty()) {
      writing_ = false;
      if (closing_) return do_close();
      client_.on_ws_flushed(this);
      return;
    }
    writing_ = true;
    ws_.async_write(net::buffer(wq_.front()), [self = self()](beast::error_code ec, std::size_t) {
      if (self->closed_) return;
      if (ec) {
        self->closed_ = true;
        auto owner = std::move(self->owner_);
        self->client_.on_ws_closed(self.get(), "write: " + ec.message());
        return;
      }
      self->wq_.pop_front();
      self->do_write();
    });
  }

  void do_close() {
    if (closed_ || close_started_) return;
    close_started_ = true;
    ws_.async_close(websocket::close_reason(close_code_), [self = self()](beast::error_code) {
      // The read loop sees the close completing (or the timeout) and ends.
      beast::error_code ignored;
      if (!self->closed_) {
        self->closed_ = true;
        beast::get_lowest_layer(self->ws_).socket().close(ignored);
      }
      self->owner_.reset();
    });
  }

  RelayClient::Impl& client_;
  WS ws_;
  std::shared_ptr<RelayClient> owner_;  // keeps the client alive while the connection runs
  beast::flat_buffer rbuf_;
  std::deque<Bytes> wq_;
  bool writing_ = false;
  bool closing_ = false;
  bool close_started_ = false;
  bool closed_ = false;
  std::uint16_t close_code_ = 1000;
};

using PlainWs = websocket::stream<beast::tcp_stream>;
using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

}  // namespace

void RelayClient::Impl::dispatch(relay::ClientActions actions) {
  for (auto& action : actions) {
    if (std::holds_alternative<relay::Connect>(action)) {
      dial(++generation);
    } else if (auto* s = std::get_if<relay::SendFrame>(&action)) {
      if (current) current->write(std::move(s->frame));
    } else if (auto* cl = std::get_if<relay::CloseConnection>(&action)) {
      ++generation;
      if (current) {
        auto conn = std::move(current);
        conn->close_after_flush(cl->code);
      }
    } else if (auto* r = std::get_if<relay::Received>(&action)) {
      if (on_receive) {
        on_receive(RelayDatagram{r->src, std::move(r->payload), r->ecn, r->segment_size});
      }
    } else if (auto* e = std::get_if<relay::ClientEvent>(&action)) {
      if (on_event) on_event(*e);
    }
  }
  rearm_timer();
}

void RelayClient::Impl::rearm_timer() {
  auto next = core.next_timeout();
  if (!next) {
    if (timer_at) {
      timer.cancel();
      timer_at.reset();
    }
    return;
  }
  if (timer_at && *timer_at == *next) return;
  timer_at = next;
  timer.expires_at(to_time_point(*next));
  timer.async_wait([weak = owner, at = *next](beast::error_code ec) {
    if (ec) return;
    auto self = weak.lock();
    if (!self) return;
    Impl& s = *self->impl_;
    if (!s.timer_at || *s.timer_at != at) return;
    s.timer_at.reset();
    s.dispatch(s.core.on_timeout(now_instant()));
  });
}

void RelayClient::Impl::dial(std::uint64_t gen) {
  auto self = owner.lock();
  if (!self) return;
  if (dialing) {
    dialing->abort();
    dialing.reset();
  }
  if (use_tls) {
    net::co_spawn(ioc, connect<TlsWs>(self, gen), net::detached);
  } else {
    net::co_spawn(ioc, connect<PlainWs>(self, gen), net::detached);
  }
}

template <class WS>
net::awaitable<void> RelayClient::Impl::connect(std::shared_ptr<RelayClient> self,
                                                std::uint64_t gen) {
  constexpr bool kTls = std::is_same_v<WS, TlsWs>;
  std::shared_ptr<Connection<WS>> conn;
  if constexpr (kTls) {
    conn = std::make_shared<Connection<WS>>(*this, net::make_strand(ioc), *tls);
  } else {
    conn = std::make_shared<Connection<WS>>(*this, net::make_strand(ioc));
  }
  dialing = conn;
  auto fail = [&](std::string why) {
    if (dialing == conn) dialing.reset();
    conn->abort();
    if (gen != generation || core.state() != relay::ClientState::Connecting) return;
    dispatch(core.on_connect_failed(why, now_instant()));
  };
  auto& lowest = beast::get_lowest_layer(conn->ws());
  const auto deadline = Clock::now() + options.connect_timeout;
  lowest.expires_at(deadline);
  std::string step = "resolve";
  bool header_sent = false;
  std::string subprotocol;
  try {
    tcp::resolver resolver(ioc);
    net::steady_timer resolve_timer(ioc, deadline);
    resolve_timer.async_wait([&resolver](beast::error_code ec) {
      if (!ec) resolver.cancel();
    });
    auto endpoints =
        co_await resolver.async_resolve(host, std::to_string(port), net::use_awaitable);
    resolve_timer.cancel();
    step = "tcp connect";
    co_await lowest.async_connect(endpoints, net::use_awaitable);
    lowest.socket().set_option(tcp::no_delay(true));
    if constexpr (kTls) {
      step = "tls handshake";
      SSL* ssl_handle = conn->ws().next_layer().native_handle();
      beast::error_code ec;
      auto addr = net::ip::make_address(host, ec);
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
      if (ec) {
        SSL_set_tlsext_host_name(ssl_handle, host.c_str());  // SNI only for DNS names
        X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size());
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
      }
      co_await conn->ws().next_layer().async_handshake(ssl::stream_base::client,
                                                       net::use_awaitable);
    }
    step = "websocket upgrade";
    std::optional<std::string> auth_header;
    if constexpr (kTls) {
      if (options.key_material_header_override) {
        auth_header = options.key_material_header_override;
      } else if (options.key_material_header) {
        ByteArray<relay::kKeyMaterialSize> ekm{};
        const auto& pk = secret_key.public_key().bytes();
        if (SSL_export_keying_material(conn->ws().next_layer().native_handle(), ekm.data(),
                                       ekm.size(), relay::kTlsExporterLabel.data(),
                                       relay::kTlsExporterLabel.size(), pk.data(), pk.size(),
                                       1) == 1) {
          auth_header = relay::encode_client_auth_header(relay::sign_key_material(secret_key, ekm));
        }
      }
    }
    header_sent = auth_header.has_value();
    conn->ws().set_option(
        websocket::stream_base::decorator([this, auth_header](websocket::request_type& req) {
          req.erase(http::field::user_agent);
          req.set(http::field::sec_websocket_protocol, "iroh-relay-v2, iroh-relay-v1");
          if (options.token && !options.token_in_query) {
            req.set(http::field::authorization, "Bearer " + *options.token);
          }
          if (auth_header) {
            req.set(beast::string_view(relay::kClientAuthHeader.data(),
                                       relay::kClientAuthHeader.size()),
                    *auth_header);
          }
        }));
    conn->ws().read_message_max(kMaxWsMessage);
    conn->ws().auto_fragment(false);
    conn->ws().binary(true);
    websocket::response_type res;
    co_await conn->ws().async_handshake(res, host_header, target, net::use_awaitable);
    const auto proto = res[http::field::sec_websocket_protocol];
    auto version = relay::parse_protocol_version(std::string_view(proto.data(), proto.size()));
    if (!version.ok()) {
      fail("server did not select a relay subprotocol (got \"" + std::string(proto) + "\")");
      co_return;
    }
    lowest.expires_never();
    websocket::stream_base::timeout to{};
    to.handshake_timeout = kCloseHandshakeTimeout;
    to.idle_timeout = websocket::stream_base::none();
    to.keep_alive_pings = false;
    conn->ws().set_option(to);
    if (dialing == conn) dialing.reset();
    if (gen != generation || core.state() != relay::ClientState::Connecting) {
      conn->abort();
      co_return;
    }
    current = conn;
    conn->start_reading(self);
    dispatch(core.on_connected(*version, header_sent, now_instant()));
  } catch (const boost::system::system_error& e) {
    std::string why = step + ": " + e.code().message();
    if (e.code() == beast::error::timeout || e.code() == net::error::operation_aborted) {
      why = step + ": timeout";
    }
    fail(why);
  }
}

// ------------------------------------------------------------------------------------------------

RelayClient::RelayClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
RelayClient::~RelayClient() = default;

Result<std::shared_ptr<RelayClient>> RelayClient::start(net::io_context& io, SecretKey secret_key,
                                                        RelayUrl url, RelayClientOptions options) {
  // spec §6.1: http → ws, ws → ws, anything else → wss; path replaced with /relay.
  const std::string_view scheme = url.scheme();
  const bool tls = !(scheme == "http" || scheme == "ws");
  if (url.host().empty()) return make_error("relay URL has no host: " + url.str());
  if (scheme != "http" && scheme != "https" && scheme != "ws" && scheme != "wss") {
    return make_error("unsupported relay URL scheme \"" + std::string(scheme) + "\"");
  }
  std::unique_ptr<Random> rng;
  if (options.random_seed) {
    rng = std::make_unique<SeededRandom>(*options.random_seed);
  } else {
    rng = std::make_unique<SystemRandom>();
  }
  auto impl = std::make_unique<Impl>(io, secret_key, url, std::move(options), std::move(rng));
  Impl& s = *impl;
  s.use_tls = tls;
  s.host = url.host();
  if (s.host.size() >= 2 && s.host.front() == '[' && s.host.back() == ']') {
    s.host = s.host.substr(1, s.host.size() - 2);
  }
  s.port = url.port_or_default();
  if (s.port == 0) s.port = tls ? 443 : 80;
  s.host_header = url.host();
  if (url.port()) s.host_header += ":" + std::to_string(*url.port());
  s.target = "/relay";
  if (s.options.token && s.options.token_in_query) {
    s.target += "?token=" + query_escape(*s.options.token);
  }
  s.ws_url =
      std::string(tls ? "wss://" : "ws://") + url.host() + ":" + std::to_string(s.port) + s.target;
  if (tls) {
    s.tls.emplace(ssl::context::tls_client);
    s.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    s.tls->set_verify_mode(ssl::verify_peer);
    beast::error_code ec;
    if (!s.options.ca_file.empty()) {
      if (!std::ifstream(s.options.ca_file).good()) {
        return make_error("cannot read CA file " + s.options.ca_file);
      }
      s.tls->load_verify_file(s.options.ca_file, ec);
      if (ec) return make_error("cannot load CA file " + s.options.ca_file + ": " + ec.message());
    } else {
      s.tls->set_default_verify_paths(ec);
      if (ec) return make_error("cannot load the system CA roots: " + ec.message());
    }
  }
  std::shared_ptr<RelayClient> client(new RelayClient(std::move(impl)));
  client->impl_->owner = client;
  net::post(io, [weak = std::weak_ptr<RelayClient>(client)] {
    if (auto self = weak.lock()) {
      Impl& s = *self->impl_;
      s.dispatch(s.core.start(now_instant()));
    }
  });
  return client;
}

void RelayClient::on_receive(std::function<void(RelayDatagram)> callback) {
  impl_->on_receive = std::move(callback);
}
void RelayClient::on_event(std::function<void(const relay::ClientEvent&)> callback) {
  impl_->on_event = std::move(callback);
}

void RelayClient::send(const EndpointId& dst, ByteView datagram, std::uint8_t ecn,
                       std::optional<std::uint16_t> segment_size) {
  Impl& s = *impl_;
  s.dispatch(
      s.core.send(dst, Bytes(datagram.begin(), datagram.end()), ecn, now_instant(), segment_size));
}

void RelayClient::close() {
  Impl& s = *impl_;
  if (s.dialing) {
    s.dialing->abort();
    s.dialing.reset();
  }
  ++s.generation;
  s.dispatch(s.core.close(now_instant()));
  s.timer.cancel();
  s.timer_at.reset();
}

void RelayClient::reconnect(const std::string& why) {
  Impl& s = *impl_;
  if (!s.current) return;
  auto conn = std::move(s.current);
  conn->abort();  // its pending read completes with an error, ignored: it is no longer current
  s.dispatch(s.core.on_disconnected(why, now_instant()));
}

relay::ClientState RelayClient::state() const { return impl_->core.state(); }
relay::AuthMethod RelayClient::auth_method() const { return impl_->core.auth_method(); }
std::optional<std::string> RelayClient::denial_reason() const {
  return impl_->core.denial_reason();
}
const relay::ClientMetrics& RelayClient::metrics() const { return impl_->core.metrics(); }
const EndpointId& RelayClient::endpoint_id() const { return impl_->core.endpoint_id(); }
const std::string& RelayClient::websocket_url() const { return impl_->ws_url; }

}  // namespace iroh::io

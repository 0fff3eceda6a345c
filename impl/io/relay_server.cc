// The relay server's I/O driver. See relay_server.h; protocol decisions live in relay/server_core.
#include "io/relay_server.h"

#include <openssl/rand.h>
#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <csignal>
#include <ctime>
#include <deque>
#include <iostream>
#include <random>
#include <sstream>
#include <unordered_map>
#include <utility>

#include "base/text_encoding.h"
#include "io/access_http_client.h"
#include "io/qad_server.h"
#include "relay/handshake.h"
#include "relay/http_upgrade.h"

namespace iroh::io {

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

std::optional<LogLevel> parse_log_level(std::string_view text) {
  if (text == "error") return LogLevel::Error;
  if (text == "warn") return LogLevel::Warn;
  if (text == "info") return LogLevel::Info;
  if (text == "debug") return LogLevel::Debug;
  if (text == "trace") return LogLevel::Trace;
  return std::nullopt;
}

namespace {

constexpr std::size_t kMaxWsMessage = 1 << 20;  // MAX_FRAME_SIZE, protos/relay.rs
constexpr auto kCloseHandshakeTimeout = std::chrono::seconds(2);
constexpr auto kWriteTimeout = std::chrono::seconds(2);  // iroh-relay defaults.rs:51
constexpr auto kWriteSweepInterval = std::chrono::milliseconds(500);
constexpr auto kShutdownGrace = std::chrono::seconds(3);

relay::Instant to_instant(Clock::time_point t) {
  return std::chrono::duration_cast<relay::Instant>(t.time_since_epoch());
}
relay::Instant now_instant() { return to_instant(Clock::now()); }
Clock::time_point to_time_point(relay::Instant i) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(i));
}

std::string_view level_name(LogLevel l) {
  switch (l) {
    case LogLevel::Error:
      return "error";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Info:
      return "info";
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Trace:
      return "trace";
  }
  return "info";
}

// Quotes a log field value when needed (logfmt style).
std::string quote(std::string_view v) {
  bool plain = !v.empty();
  for (char c : v) {
    if (c == ' ' || c == '"' || c == '=' || static_cast<unsigned char>(c) < 0x20) plain = false;
  }
  if (plain) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out.push_back(c);
    }
  }
  out.push_back('"');
  return out;
}

// One-line structured logs on stderr: `ts=… level=… msg=… key=value …`.
class Logger {
 public:
  explicit Logger(LogLevel level) : level_(level) {}
  bool enabled(LogLevel l) const { return static_cast<int>(l) <= static_cast<int>(level_); }
  void log(LogLevel l, std::string_view msg,
           std::initializer_list<std::pair<std::string_view, std::string>> fields = {}) const {
    if (!enabled(l)) return;
    const auto now = std::chrono::system_clock::now();
    const std::time_t secs = std::chrono::system_clock::to_time_t(now);
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char ts[64];
    std::snprintf(ts, sizeof ts, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                  static_cast<int>(ms));
    std::string line = "ts=";
    line += ts;
    line += " level=";
    line += level_name(l);
    line += " msg=";
    line += quote(msg);
    for (const auto& [k, v] : fields) {
      line += ' ';
      line += k;
      line += '=';
      line += quote(v);
    }
    line += '\n';
    std::cerr << line << std::flush;
  }

 private:
  LogLevel level_;
};

// Driver-level counters (the protocol ones live in ServerCore's metrics).
struct IoMetrics {
  std::uint64_t tcp_accepted = 0;
  std::uint64_t tls_handshake_failures = 0;
  std::uint64_t http_requests = 0;
  std::uint64_t upgrades_rejected = 0;
  std::uint64_t upgrade_timeouts = 0;
  std::uint64_t ws_errors = 0;  // non-binary messages, oversize messages, WS protocol errors
  std::uint64_t slow_consumer_closes = 0;
  std::uint64_t write_timeouts = 0;
};

}  // namespace

// ------------------------------------------------------------------------------------------------

class SessionBase : public std::enable_shared_from_this<SessionBase> {
 public:
  virtual ~SessionBase() = default;
  virtual void enqueue(Bytes frame) = 0;
  virtual void close_after_flush(std::string reason) = 0;
  virtual void pause_reads_until(Clock::time_point until) = 0;
  virtual void abort() = 0;  // hard close (shutdown of not-yet-upgraded connections)
  // Closes the connection if one WebSocket write has been pending longer than kWriteTimeout.
  virtual void check_write_deadline(Clock::time_point now) = 0;
};

struct RelayServer::Impl {
  explicit Impl(RelayServerOptions o)
      : options(std::move(o)),
        log(options.log_level),
        core(make_core_config(options.core)),
        acceptor(ioc),
        metrics_acceptor(ioc),
        core_timer(ioc),
        signals(ioc),
        shutdown_timer(ioc),
        shutdown_poll(ioc),
        write_sweep(ioc) {}

  relay::ServerConfig make_core_config(relay::ServerConfig c) {
    if (!c.ping_jitter) {
      c.ping_jitter = [this] {
        // iroh-relay: 15 s + up to 5 s of random jitter.
        std::uniform_int_distribution<std::int64_t> d(0, 5'000'000'000);
        return relay::Duration(d(rng));
      };
    }
    return c;
  }

  // ---- core plumbing ----
  void dispatch(relay::Actions actions);
  void check_access(relay::ConnId conn, const EndpointId& endpoint);
  void rearm_core_timer();
  ByteArray<relay::kChallengeSize> new_challenge() {
    if (options.fixed_challenge) return *options.fixed_challenge;
    ByteArray<relay::kChallengeSize> c{};
    if (RAND_bytes(c.data(), static_cast<int>(c.size())) != 1) {
      for (auto& b : c) b = static_cast<std::uint8_t>(rng());
    }
    return c;
  }

  // ---- listeners ----
  void do_accept();
  void do_accept_metrics();
  void begin_shutdown(std::string_view why);
  void poll_shutdown();
  void sweep_writes();
  std::string render_metrics() const;

  RelayServerOptions options;
  Logger log;
  std::mt19937_64 rng{std::random_device{}()};
  net::io_context ioc{1};
  std::optional<ssl::context> tls;
  relay::ServerCore core;
  std::unique_ptr<AccessHttpClient> access_http;  // access mode http (spec §6.7)
  std::unique_ptr<QadServer> qad;                 // QUIC address discovery (spec §6.9)
  IoMetrics io_metrics;
  tcp::acceptor acceptor;
  tcp::acceptor metrics_acceptor;
  bool metrics_enabled = false;
  std::string url;
  std::string metrics_url_str;
  net::steady_timer core_timer;
  std::optional<relay::Instant> core_timer_at;
  net::signal_set signals;
  net::steady_timer shutdown_timer;
  net::steady_timer shutdown_poll;
  net::steady_timer write_sweep;
  bool stopping = false;
  relay::ConnId next_conn = 1;
  std::uint64_t next_serial = 1;
  // Upgraded connections, by the id the core knows them by.
  std::unordered_map<relay::ConnId, std::shared_ptr<SessionBase>> sessions;
  // Every live TCP session (for shutdown), by serial.
  std::unordered_map<std::uint64_t, std::weak_ptr<SessionBase>> all_sessions;
};

// ------------------------------------------------------------------------------------------------

template <class NextLayer>
class Session : public SessionBase {
 public:
  static constexpr bool kTls = !std::is_same_v<NextLayer, beast::tcp_stream>;

  template <class... Args>
  Session(RelayServer::Impl& server, std::uint64_t serial, std::string peer, Args&&... args)
      : server_(server),
        serial_(serial),
        peer_(std::move(peer)),
        ws_(std::forward<Args>(args)...),
        upgrade_timer_(server.ioc),
        pause_timer_(server.ioc) {}

  void start() {
    upgrade_timer_.expires_after(server_.options.upgrade_timeout);
    upgrade_timer_.async_wait([self = shared()](beast::error_code ec) {
      if (ec || self->upgraded_ || self->closed_) return;
      ++self->server_.io_metrics.upgrade_timeouts;
      self->server_.log.log(LogLevel::Debug, "upgrade timeout", {{"peer", self->peer_}});
      self->abort();
    });
    if constexpr (kTls) {
      ws_.next_layer().async_handshake(
          ssl::stream_base::server, [self = shared()](beast::error_code ec) {
            if (ec) {
              ++self->server_.io_metrics.tls_handshake_failures;
              self->server_.log.log(LogLevel::Debug, "tls handshake failed",
                                    {{"peer", self->peer_}, {"error", ec.message()}});
              return self->abort();
            }
            self->read_request();
          });
    } else {
      read_request();
    }
  }

  void enqueue(Bytes frame) override {
    if (closed_) {
      server_.core.on_sent(conn_);
      return;
    }
    // A client that never reads cannot make us buffer without bound: datagrams are capped by the
    // core's queue limit, this caps everything else (pongs, EndpointGone, ...).
    if (wq_.size() >= 2 * server_.core.config().queue_limit + 64) {
      ++server_.io_metrics.slow_consumer_closes;
      server_.core.on_sent(conn_);
      return fail("write queue overflow (slow consumer)");
    }
    wq_.push_back(std::move(frame));
    if (!writing_) do_write();
  }

  void close_after_flush(std::string reason) override {
    if (closing_ || closed_) return;
    closing_ = true;
    server_.log.log(LogLevel::Info, "closing connection",
                    {{"conn", std::to_string(conn_)}, {"endpoint", endpoint_}, {"reason", reason}});
    if (!writing_) do_close();
  }

  void pause_reads_until(Clock::time_point until) override { paused_until_ = until; }

  void abort() override {
    if (closed_) return;
    closed_ = true;
    beast::error_code ignored;
    upgrade_timer_.cancel();
    pause_timer_.cancel();
    beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(ws_).close();
    finish();
  }

  void check_write_deadline(Clock::time_point now) override {
    if (!writing_ || closed_ || now - write_started_ < kWriteTimeout) return;
    ++server_.io_metrics.write_timeouts;
    fail("write timeout");
  }

  void set_endpoint(std::string e) { endpoint_ = std::move(e); }
  bool authenticated() const { return !endpoint_.empty(); }

 private:
  std::shared_ptr<Session> shared() {
    return std::static_pointer_cast<Session>(shared_from_this());
  }

  // ---- HTTP phase ----
  void read_request() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(16 * 1024);
    http::async_read(
        ws_.next_layer(), buffer_, *parser_, [self = shared()](beast::error_code ec, std::size_t) {
          if (ec) {
            if (ec != http::error::end_of_stream && ec != net::error::eof &&
                ec != net::error::operation_aborted) {
              self->server_.log.log(LogLevel::Debug, "bad http request",
                                    {{"peer", self->peer_}, {"error", ec.message()}});
              // Syntax error: say so, then close.
              if (!self->closed_ &&
                  ec.category() == make_error_code(http::error::bad_target).category()) {
                return self->respond(http::status::bad_request, "Bad Request\n", false);
              }
            }
            return self->abort();
          }
          self->handle_request(self->parser_->release());
        });
  }

  template <class Body>
  void prepare(http::response<Body>& res, bool keep_alive) {
    res.set(http::field::server, "irohlab-relay");
    res.keep_alive(keep_alive);
    if constexpr (kTls) {
      res.set(http::field::strict_transport_security, "max-age=63072000; includeSubDomains");
      res.set("Content-Security-Policy",
              "default-src 'none'; frame-ancestors 'none'; form-action 'none'; base-uri 'self'; "
              "block-all-mixed-content; plugin-types 'none'");
    }
  }

  void respond(http::status status, std::string body, bool keep_alive,
               const std::vector<relay::HttpHeader>& headers = {},
               std::string_view content_type = "text/plain; charset=utf-8") {
    auto res = std::make_shared<http::response<http::string_body>>(status, 11);
    prepare(*res, keep_alive);
    for (const auto& [k, v] : headers) res->set(k, v);
    if (!body.empty()) {
      res->set(http::field::content_type,
               beast::string_view(content_type.data(), content_type.size()));
    }
    res->body() = std::move(body);
    res->prepare_payload();
    http::async_write(ws_.next_layer(), *res,
                      [self = shared(), res, keep_alive](beast::error_code ec, std::size_t) {
                        if (ec || !keep_alive) return self->abort();
                        self->read_request();
                      });
  }

  // Routing and the spec §6.2 upgrade checks are decided by relay::decide_http_request; this
  // only carries the decision out.
  void handle_request(http::request<http::string_body> req) {
    ++server_.io_metrics.http_requests;
    const std::string_view target(req.target().data(), req.target().size());
    const bool keep_alive = req.keep_alive();
    server_.log.log(LogLevel::Debug, "http request",
                    {{"peer", peer_},
                     {"method", std::string(req.method_string())},
                     {"target", std::string(target)}});

    relay::HttpHeaders headers;
    for (const auto& field : req) {
      headers.add(std::string_view(field.name_string().data(), field.name_string().size()),
                  std::string_view(field.value().data(), field.value().size()));
    }
    const std::string_view method(req.method_string().data(), req.method_string().size());
    relay::HttpDecision decision = relay::decide_http_request(method, target, headers);
    if (auto* accept = std::get_if<relay::UpgradeAccept>(&decision.outcome)) {
      return accept_upgrade(std::move(req), std::move(*accept));
    }
    auto& res = std::get<relay::HttpResponse>(decision.outcome);
    if (decision.route == relay::HttpRoute::RelayUpgrade) {
      ++server_.io_metrics.upgrades_rejected;
      server_.log.log(LogLevel::Info, "upgrade rejected",
                      {{"peer", peer_}, {"reason", res.reject_reason}});
    }
    respond(static_cast<http::status>(res.status), std::move(res.body), keep_alive && !res.close,
            res.headers, res.content_type);
  }

  void accept_upgrade(http::request<http::string_body> req, relay::UpgradeAccept accept) {
    version_ = accept.version;
    token_ = std::move(accept.token);
    if constexpr (kTls) check_key_material_header(req);

    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout to{};
    to.handshake_timeout = kCloseHandshakeTimeout;
    to.idle_timeout = websocket::stream_base::none();
    to.keep_alive_pings = false;
    ws_.set_option(to);
    ws_.set_option(websocket::stream_base::decorator(
        [subprotocol = std::move(accept.subprotocol),
         accept_value = std::move(accept.accept)](websocket::response_type& res) {
          res.set(http::field::server, "irohlab-relay");
          res.set(http::field::sec_websocket_protocol, subprotocol);
          // Beast computes the same RFC 6455 value itself; ours (relay/http_upgrade) is the one
          // that goes out. Only 101 responses carry it (Beast's own error replies do not).
          if (res.result() == http::status::switching_protocols) {
            res.set(http::field::sec_websocket_accept, accept_value);
          }
        }));
    ws_.read_message_max(kMaxWsMessage);
    ws_.auto_fragment(false);
    ws_.binary(true);
    upgrade_req_ = std::move(req);
    ws_.async_accept(upgrade_req_,
                     [self = shared()](beast::error_code ec) { self->on_accept(ec); });
  }

  // spec §6.4 step 1: a valid x-iroh-relay-client-auth-v1 header over TLS skips the challenge.
  // Malformed or invalid → fall back to the challenge (as iroh does), with a debug log.
  void check_key_material_header(const http::request<http::string_body>& req) {
    const auto it = req.find(
        beast::string_view(relay::kClientAuthHeader.data(), relay::kClientAuthHeader.size()));
    if (it == req.end()) return;
    auto fallback = [&](std::string why) {
      server_.log.log(LogLevel::Debug, "client auth header rejected, using challenge",
                      {{"peer", peer_}, {"reason", std::move(why)}});
    };
    auto auth =
        relay::decode_client_auth_header(std::string_view(it->value().data(), it->value().size()));
    if (!auth.ok()) return fallback(auth.error().message);
    ByteArray<relay::kKeyMaterialSize> ekm{};
    const auto& pk = auth->public_key.bytes();
    if (SSL_export_keying_material(ws_.next_layer().native_handle(), ekm.data(), ekm.size(),
                                   relay::kTlsExporterLabel.data(), relay::kTlsExporterLabel.size(),
                                   pk.data(), pk.size(), 1) != 1) {
      return fallback("TLS exporter unavailable");
    }
    if (auto v = relay::verify_key_material_auth(*auth, ekm); !v.ok()) {
      return fallback(v.error().message);
    }
    preauth_ = auth->public_key;
  }

  void on_accept(beast::error_code ec) {
    if (closed_) return;
    if (ec) {
      ++server_.io_metrics.upgrades_rejected;
      server_.log.log(LogLevel::Info, "websocket accept failed",
                      {{"peer", peer_}, {"error", ec.message()}});
      return abort();
    }
    if (server_.stopping) return abort();
    upgraded_ = true;
    upgrade_timer_.cancel();
    conn_ = server_.next_conn++;
    server_.sessions[conn_] = shared_from_this();
    server_.log.log(LogLevel::Debug, "websocket connected",
                    {{"conn", std::to_string(conn_)},
                     {"peer", peer_},
                     {"version", std::string(relay::to_string(version_))}});
    if (preauth_) {
      endpoint_ = preauth_->fmt_short();
      server_.log.log(LogLevel::Info, "client authenticated via tls exporter header",
                      {{"conn", std::to_string(conn_)},
                       {"endpoint", preauth_->to_hex()},
                       {"peer", peer_},
                       {"version", std::string(relay::to_string(version_))}});
      server_.dispatch(server_.core.on_connected_authenticated(conn_, version_, now_instant(),
                                                               *preauth_, std::move(token_)));
    } else {
      server_.dispatch(server_.core.on_connected(conn_, version_, now_instant(),
                                                 server_.new_challenge(), std::move(token_)));
    }
    server_.rearm_core_timer();
    do_read();
  }

  // ---- WebSocket phase ----
  void do_read() {
    if (closing_ || closed_) return;
    if (paused_until_ && *paused_until_ > Clock::now()) {
      pause_timer_.expires_at(*paused_until_);
      paused_until_.reset();
      pause_timer_.async_wait([self = shared()](beast::error_code ec) {
        if (!ec) self->do_read();
      });
      return;
    }
    paused_until_.reset();
    ws_.async_read(rbuf_,
                   [self = shared()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

  void on_read(beast::error_code ec) {
    if (closed_) return;
    if (ec) {
      if (ec != websocket::error::closed && ec != net::error::eof &&
          ec != net::error::connection_reset && ec != net::error::operation_aborted) {
        ++server_.io_metrics.ws_errors;
      }
      return fail("read: " + ec.message());
    }
    if (closing_) return;
    if (!ws_.got_binary()) {
      ++server_.io_metrics.ws_errors;
      return fail_with_close("text message (relay frames are binary)",
                             websocket::close_code::unknown_data);
    }
    const auto data = rbuf_.cdata();
    const bool was_authenticated = authenticated();
    if (!was_authenticated && server_.log.enabled(LogLevel::Debug)) {
      // The handshake frame, verbatim (at most one per connection; lets tests check ClientAuth).
      const auto* p = static_cast<const std::uint8_t*>(data.data());
      server_.log.log(LogLevel::Debug, "handshake frame",
                      {{"conn", std::to_string(conn_)},
                       {"hex", to_hex(ByteView(p, std::min<std::size_t>(data.size(), 256)))}});
    }
    server_.dispatch(server_.core.on_message(
        conn_, ByteView(static_cast<const std::uint8_t*>(data.data()), data.size()),
        now_instant()));
    rbuf_.consume(rbuf_.size());
    if (!was_authenticated && !closing_ && !closed_) {
      if (auto id = server_.core.endpoint_of(conn_)) {
        endpoint_ = id->fmt_short();
        server_.log.log(LogLevel::Info, "client authenticated",
                        {{"conn", std::to_string(conn_)},
                         {"endpoint", id->to_hex()},
                         {"peer", peer_},
                         {"version", std::string(relay::to_string(version_))}});
      }
      server_.rearm_core_timer();
    }
    do_read();
  }

  void do_write() {
    writing_ = true;
    write_started_ = Clock::now();
    ws_.async_write(net::buffer(wq_.front()),
                    [self = shared()](beast::error_code ec, std::size_t) { self->on_write(ec); });
  }

  void on_write(beast::error_code ec) {
    writing_ = false;
    if (closed_) return;
    if (ec) return fail("write: " + ec.message());
    wq_.pop_front();
    server_.core.on_sent(conn_);
    if (!wq_.empty()) return do_write();
    if (closing_) do_close();
  }

  void do_close(websocket::close_code code = websocket::close_code::normal) {
    if (closed_ || close_started_) return;
    close_started_ = true;
    ws_.async_close(code, [self = shared()](beast::error_code) { self->abort(); });
  }

  // The transport failed or the peer went away: tell the core, drop everything.
  void fail(std::string why) {
    if (closed_) return;
    server_.log.log(LogLevel::Debug, "connection ended",
                    {{"conn", std::to_string(conn_)}, {"endpoint", endpoint_}, {"why", why}});
    const bool tell_core = upgraded_ && !closing_;
    abort();
    if (tell_core) server_.dispatch(server_.core.on_disconnected(conn_, now_instant()));
  }

  // Misbehaviour at the WebSocket level: tell the core, then close with `code`.
  void fail_with_close(std::string why, websocket::close_code code) {
    server_.log.log(LogLevel::Info, "closing misbehaving connection",
                    {{"conn", std::to_string(conn_)}, {"peer", peer_}, {"reason", why}});
    if (!closing_) server_.dispatch(server_.core.on_disconnected(conn_, now_instant()));
    closing_ = true;
    wq_.clear();
    if (!writing_) do_close(code);
  }

  void finish() {
    if (upgraded_) {
      wq_.clear();
      server_.sessions.erase(conn_);
    }
    server_.all_sessions.erase(serial_);
  }

  RelayServer::Impl& server_;
  std::uint64_t serial_;
  std::string peer_;
  websocket::stream<NextLayer> ws_;
  beast::flat_buffer buffer_;  // HTTP phase
  std::optional<http::request_parser<http::string_body>> parser_;
  http::request<http::string_body> upgrade_req_;
  net::steady_timer upgrade_timer_;
  net::steady_timer pause_timer_;
  std::optional<Clock::time_point> paused_until_;
  relay::ProtocolVersion version_ = relay::ProtocolVersion::V2;
  std::optional<std::string> token_;
  std::optional<EndpointId> preauth_;  // set by a valid TLS-exporter auth header
  relay::ConnId conn_ = 0;
  std::string endpoint_;  // short id once authenticated (logs)
  beast::flat_buffer rbuf_;
  std::deque<Bytes> wq_;
  Clock::time_point write_started_{};
  bool upgraded_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool close_started_ = false;
  bool closed_ = false;
};

// ------------------------------------------------------------------------------------------------

void RelayServer::Impl::dispatch(relay::Actions actions) {
  for (auto& action : actions) {
    if (auto* s = std::get_if<relay::Send>(&action)) {
      auto it = sessions.find(s->conn);
      if (it == sessions.end()) {
        core.on_sent(s->conn);
        continue;
      }
      auto keep = it->second;  // enqueue may erase the map entry
      keep->enqueue(std::move(s->frame));
    } else if (auto* c = std::get_if<relay::Close>(&action)) {
      auto it = sessions.find(c->conn);
      if (it == sessions.end()) continue;
      auto keep = it->second;
      keep->close_after_flush(std::move(c->reason));
    } else if (auto* p = std::get_if<relay::PauseReads>(&action)) {
      auto it = sessions.find(p->conn);
      if (it != sessions.end()) it->second->pause_reads_until(to_time_point(p->until));
      log.log(LogLevel::Debug, "rate limited", {{"conn", std::to_string(p->conn)}});
    } else if (auto* a = std::get_if<relay::CheckAccess>(&action)) {
      check_access(a->conn, a->endpoint);
    }
  }
}

// Access mode http: an asynchronous callout; the core waits for its answer.
void RelayServer::Impl::check_access(relay::ConnId conn, const EndpointId& endpoint) {
  if (!access_http) {
    dispatch(core.on_access_decision(conn, "access server not configured", now_instant()));
    return;
  }
  access_http->check(
      endpoint, [this, conn, id = endpoint.to_hex()](std::optional<std::string> denial) {
        if (stopping) return;
        if (denial)
          log.log(LogLevel::Info, "access denied", {{"endpoint", id}, {"reason", *denial}});
        dispatch(core.on_access_decision(conn, std::move(denial), now_instant()));
        rearm_core_timer();
      });
}

void RelayServer::Impl::rearm_core_timer() {
  if (stopping) return;
  auto next = core.next_timeout();
  if (!next) return;
  if (core_timer_at && *core_timer_at <= *next) return;
  core_timer_at = next;
  core_timer.expires_at(to_time_point(*next));
  core_timer.async_wait([this](beast::error_code ec) {
    if (ec) return;  // re-armed earlier, or shutting down
    core_timer_at.reset();
    dispatch(core.on_timeout(now_instant()));
    rearm_core_timer();
  });
}

void RelayServer::Impl::sweep_writes() {
  write_sweep.expires_after(kWriteSweepInterval);
  write_sweep.async_wait([this](beast::error_code ec) {
    if (ec || stopping) return;
    const auto now = Clock::now();
    std::vector<std::shared_ptr<SessionBase>> all;
    all.reserve(sessions.size());
    for (auto& [id, s] : sessions) all.push_back(s);
    for (auto& s : all) s->check_write_deadline(now);
    sweep_writes();
  });
}

void RelayServer::Impl::do_accept() {
  acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping) return;
    if (ec) {
      log.log(LogLevel::Warn, "accept failed", {{"error", ec.message()}});
      if (ec == net::error::operation_aborted) return;
      return do_accept();
    }
    ++io_metrics.tcp_accepted;
    beast::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    std::string peer;
    auto ep = socket.remote_endpoint(ignored);
    if (!ignored) peer = ep.address().to_string() + ":" + std::to_string(ep.port());
    const std::uint64_t serial = next_serial++;
    std::shared_ptr<SessionBase> s;
    if (tls) {
      auto session = std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(
          *this, serial, peer, std::move(socket), *tls);
      all_sessions[serial] = session;
      session->start();
    } else {
      auto session =
          std::make_shared<Session<beast::tcp_stream>>(*this, serial, peer, std::move(socket));
      all_sessions[serial] = session;
      session->start();
    }
    do_accept();
  });
}

std::string RelayServer::Impl::render_metrics() const {
  const auto& m = core.metrics();
  std::ostringstream o;
  auto metric = [&](std::string_view name, std::string_view type, std::string_view help,
                    std::initializer_list<std::pair<std::string, std::uint64_t>> values) {
    o << "# HELP irohlab_relay_" << name << " " << help << "\n";
    o << "# TYPE irohlab_relay_" << name << " " << type << "\n";
    for (const auto& [labels, v] : values) {
      o << "irohlab_relay_" << name << labels << " " << v << "\n";
    }
  };
  metric("clients", "gauge", "Authenticated relay clients connected now.", {{"", m.clients}});
  metric("connections_pending", "gauge", "WebSocket connections still in the relay handshake.",
         {{"", m.connections_pending}});
  metric("connections_total", "counter", "WebSocket connections that started the handshake.",
         {{"", m.connections_accepted}});
  metric("tcp_accepted_total", "counter", "TCP connections accepted.",
         {{"", io_metrics.tcp_accepted}});
  metric("http_requests_total", "counter", "HTTP requests parsed.",
         {{"", io_metrics.http_requests}});
  metric("auth_ok_total", "counter", "Successful relay handshakes.", {{"", m.auth_ok}});
  metric("auth_key_material_total", "counter",
         "Handshakes that skipped the challenge via the TLS-exporter auth header.",
         {{"", m.auth_key_material}});
  metric("auth_failures_total", "counter", "Failed relay handshakes by reason.",
         {{"{reason=\"signature_invalid\"}", m.auth_signature_invalid},
          {"{reason=\"denied\"}", m.auth_denied},
          {"{reason=\"handshake_error\"}", m.handshake_errors}});
  metric("access_checks_total", "counter", "Access-server callouts made (access mode http).",
         {{"", m.access_checks}});
  metric("upgrades_rejected_total", "counter", "HTTP upgrade requests answered with an error.",
         {{"", io_metrics.upgrades_rejected}});
  metric("upgrade_timeouts_total", "counter", "Connections closed for not finishing the upgrade.",
         {{"", io_metrics.upgrade_timeouts}});
  metric("tls_handshake_failures_total", "counter", "Failed TLS handshakes.",
         {{"", io_metrics.tls_handshake_failures}});
  metric(
      "protocol_errors_total", "counter",
      "Connections closed for relay or WebSocket protocol errors.",
      {{"{layer=\"relay\"}", m.protocol_errors}, {"{layer=\"websocket\"}", io_metrics.ws_errors}});
  metric("frames_received_total", "counter", "Relay frames received from clients.",
         {{"", m.frames_received}});
  metric("bytes_received_total", "counter", "Relay frame bytes received from clients.",
         {{"", m.bytes_received}});
  metric("datagrams_forwarded_total", "counter", "Datagram frames forwarded.",
         {{"", m.datagrams_forwarded}});
  metric("bytes_forwarded_total", "counter", "Datagram payload bytes forwarded.",
         {{"", m.bytes_forwarded}});
  metric("drops_total", "counter", "Datagram frames dropped by reason.",
         {{"{reason=\"unknown_destination\"}", m.drops_unknown_destination},
          {"{reason=\"queue_full\"}", m.drops_queue_full}});
  metric("endpoint_gone_total", "counter", "EndpointGone frames sent.",
         {{"", m.endpoint_gone_sent}});
  metric("same_id_replaced_total", "counter",
         "Connections displaced by a newer one with the same id.", {{"", m.same_id_replaced}});
  metric("pings_sent_total", "counter", "Server pings sent.", {{"", m.pings_sent}});
  metric("pongs_sent_total", "counter", "Pongs sent in reply to client pings.",
         {{"", m.pongs_sent}});
  metric("ping_timeouts_total", "counter", "Clients closed for not answering a ping.",
         {{"", m.ping_timeouts}});
  metric("rate_limited_total", "counter", "Read pauses imposed by the rate limiter.",
         {{"", m.rate_limited}});
  metric("slow_consumer_closes_total", "counter", "Clients closed for an overflowing write queue.",
         {{"", io_metrics.slow_consumer_closes}});
  metric("write_timeouts_total", "counter",
         "Clients closed because one write took longer than 2 s.",
         {{"", io_metrics.write_timeouts}});
  metric("disconnects_total", "counter", "WebSocket connections ended.", {{"", m.disconnects}});
  if (qad) {
    metric("qad_connections_total", "counter", "QUIC address discovery connections accepted.",
           {{"", qad->connections()}});
    metric("qad_connections", "gauge", "QUIC address discovery connections open now.",
           {{"", qad->active()}});
    metric("qad_observations_total", "counter", "OBSERVED_ADDRESS frames sent to QAD clients.",
           {{"", qad->observations()}});
  }
  return o.str();
}

namespace {

// One request per connection: GET /metrics → Prometheus text, anything else 404.
class MetricsSession : public std::enable_shared_from_this<MetricsSession> {
 public:
  MetricsSession(RelayServer::Impl& server, tcp::socket socket)
      : server_(server), stream_(std::move(socket)) {}
  void start() {
    stream_.expires_after(std::chrono::seconds(5));
    http::async_read(stream_, buffer_, req_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       self->respond();
                     });
  }

 private:
  void respond();
  RelayServer::Impl& server_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
};

}  // namespace

void MetricsSession::respond() {
  const std::string_view target(req_.target().data(), req_.target().size());
  if (target == "/metrics" || target.substr(0, 9) == "/metrics?") {
    res_ = http::response<http::string_body>(http::status::ok, 11);
    res_.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    res_.body() = server_.render_metrics();
  } else {
    res_ = http::response<http::string_body>(http::status::not_found, 11);
    res_.set(http::field::content_type, "text/plain; charset=utf-8");
    res_.body() = "Not Found\n";
  }
  res_.keep_alive(false);
  res_.prepare_payload();
  http::async_write(stream_, res_, [self = shared_from_this()](beast::error_code, std::size_t) {
    beast::error_code ignored;
    self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  });
}

void RelayServer::Impl::do_accept_metrics() {
  metrics_acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
    if (stopping || ec == net::error::operation_aborted) return;
    if (!ec) std::make_shared<MetricsSession>(*this, std::move(socket))->start();
    do_accept_metrics();
  });
}

void RelayServer::Impl::begin_shutdown(std::string_view why) {
  if (stopping) return;
  log.log(LogLevel::Info, "shutting down", {{"why", std::string(why)}});
  // Restarting + close for every relay client (flushed by their sessions) ...
  dispatch(core.shutdown(now_instant()));
  stopping = true;
  beast::error_code ignored;
  acceptor.close(ignored);
  metrics_acceptor.close(ignored);
  signals.cancel(ignored);
  core_timer.cancel();
  write_sweep.cancel();
  if (access_http) access_http->cancel_all();
  if (qad) qad->close();
  // ... hard close for connections still in the HTTP phase.
  std::vector<std::shared_ptr<SessionBase>> pending;
  for (auto& [serial, weak] : all_sessions) {
    if (auto s = weak.lock()) pending.push_back(std::move(s));
  }
  for (auto& s : pending) {
    bool upgraded = false;
    for (auto& [id, u] : sessions) upgraded = upgraded || u == s;
    if (!upgraded) s->abort();
  }
  shutdown_timer.expires_after(kShutdownGrace);
  shutdown_timer.async_wait([this](beast::error_code ec) {
    if (ec) return;
    log.log(LogLevel::Warn, "shutdown grace period over; dropping remaining connections");
    ioc.stop();
  });
  poll_shutdown();
}

// When the last session is gone the grace timer is the only work left: cancel it so run() returns.
void RelayServer::Impl::poll_shutdown() {
  if (all_sessions.empty()) {
    shutdown_timer.cancel();
    return;
  }
  shutdown_poll.expires_after(std::chrono::milliseconds(20));
  shutdown_poll.async_wait([this](beast::error_code ec) {
    if (!ec) poll_shutdown();
  });
}

// ------------------------------------------------------------------------------------------------

RelayServer::RelayServer(RelayServerOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

RelayServer::~RelayServer() = default;

Result<std::string> RelayServer::start() {
  Impl& s = *impl_;
  const auto& o = s.options;
  const bool want_tls = !o.tls_cert_file.empty() || !o.tls_key_file.empty();
  if (want_tls) {
    if (o.tls_cert_file.empty() || o.tls_key_file.empty()) {
      return make_error("--tls-cert and --tls-key must be given together");
    }
    s.tls.emplace(ssl::context::tls_server);
    s.tls->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 |
                       ssl::context::single_dh_use);
    beast::error_code ec;
    s.tls->use_certificate_chain_file(o.tls_cert_file, ec);
    if (ec)
      return make_error("cannot load TLS certificate " + o.tls_cert_file + ": " + ec.message());
    s.tls->use_private_key_file(o.tls_key_file, ssl::context::pem, ec);
    if (ec) return make_error("cannot load TLS key " + o.tls_key_file + ": " + ec.message());
  }

  auto bind = [&](tcp::acceptor& acc, const std::string& ip, std::uint16_t port,
                  std::string_view what) -> Result<tcp::endpoint> {
    beast::error_code ec;
    auto addr = net::ip::make_address(ip, ec);
    if (ec) return make_error(std::string(what) + ": bad IP address " + ip);
    tcp::endpoint ep(addr, port);
    acc.open(ep.protocol(), ec);
    if (!ec) acc.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acc.bind(ep, ec);
    if (!ec) acc.listen(net::socket_base::max_listen_connections, ec);
    if (ec)
      return make_error(std::string(what) + ": cannot listen on " + ip + ":" +
                        std::to_string(port) + ": " + ec.message());
    return acc.local_endpoint();
  };
  auto host = [](const tcp::endpoint& ep) {
    return ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
  };

  if (o.core.access.mode == relay::AccessPolicy::Mode::Http) {
    auto target = relay::parse_access_http_url(o.core.access.http_url);
    if (!target.ok()) return target.error();
    s.access_http =
        std::make_unique<AccessHttpClient>(s.ioc, std::move(*target), o.core.access.http_token);
  }
  auto ep = bind(s.acceptor, o.bind_ip, o.bind_port, "--bind");
  if (!ep.ok()) return ep.error();
  s.url = std::string(want_tls ? "https://" : "http://") + host(*ep) + ":" +
          std::to_string(ep->port()) + "/";
  if (o.qad_port) {
    // QAD clients verify the relay's certificate (WebPKI); without one there is nothing to show.
    if (!want_tls) {
      return make_error(
          "QUIC address discovery needs the relay's X.509 certificate: give --tls-cert and "
          "--tls-key, or --qad-port 0 to turn it off");
    }
    auto identity = crypto::X509Credentials::server_from_files(o.tls_cert_file, o.tls_key_file);
    if (!identity) return make_error("QAD certificate: " + identity.error().message);
    const std::string ip = o.qad_bind_ip.empty() ? o.bind_ip : o.qad_bind_ip;
    auto addr = SocketAddr::parse(ip.find(':') != std::string::npos
                                      ? "[" + ip + "]:" + std::to_string(*o.qad_port)
                                      : ip + ":" + std::to_string(*o.qad_port));
    if (!addr) return make_error("--qad-bind: bad IP address " + ip);
    auto qad = QadServer::start(s.ioc, QadServerOptions{*addr, *identity});
    if (qad) {
      s.qad = std::move(*qad);
    } else if (o.qad_optional) {
      s.log.log(LogLevel::Warn, "QUIC address discovery off",
                {{"why", qad.error().message}, {"hint", "--qad-port P or 0"}});
    } else {
      return make_error(qad.error().message);
    }
  }
  if (o.metrics_ip) {
    auto mep = bind(s.metrics_acceptor, *o.metrics_ip, o.metrics_port, "--metrics");
    if (!mep.ok()) return mep.error();
    s.metrics_enabled = true;
    s.metrics_url_str = "http://" + host(*mep) + ":" + std::to_string(mep->port()) + "/metrics";
  }
  return s.url;
}

std::optional<std::string> RelayServer::qad_addr() const {
  if (!impl_->qad) return std::nullopt;
  return impl_->qad->local_addr().to_string();
}

std::optional<std::string> RelayServer::metrics_url() const {
  if (!impl_->metrics_enabled) return std::nullopt;
  return impl_->metrics_url_str;
}

void RelayServer::run() {
  Impl& s = *impl_;
  s.signals.add(SIGINT);
  s.signals.add(SIGTERM);
  s.signals.async_wait([&s](beast::error_code ec, int sig) {
    if (ec) return;
    s.begin_shutdown(sig == SIGINT ? "SIGINT" : "SIGTERM");
  });
  s.log.log(LogLevel::Info, "relay listening",
            {{"url", s.url},
             {"metrics", s.metrics_enabled ? s.metrics_url_str : "-"},
             {"qad", s.qad ? s.qad->local_addr().to_string() : "-"}});
  s.do_accept();
  s.sweep_writes();
  if (s.metrics_enabled) s.do_accept_metrics();
  s.ioc.run();
  s.log.log(LogLevel::Info, "relay stopped");
}

void RelayServer::stop() {
  net::post(impl_->ioc, [this] { impl_->begin_shutdown("stop()"); });
}

}  // namespace iroh::io

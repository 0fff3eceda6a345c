// io::RelayClient on real sockets (127.0.0.1) against our own io::RelayServer, started in-process
// on its own thread: datagram exchange, denial, graceful restart, https with a self-signed
// certificate including the TLS-exporter header path.
#include "io/relay_client.h"

#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <thread>

#include "io/relay_server.h"
#include "relay/http_upgrade.h"

namespace iroh::io {
namespace {

using namespace std::chrono_literals;
namespace net = boost::asio;

SecretKey key(std::uint8_t n) {
  ByteArray<32> seed;
  seed.fill(n);
  return SecretKey::from_seed(seed);
}

// A RelayServer running on its own thread.
class ServerThread {
 public:
  explicit ServerThread(RelayServerOptions o) : server_(std::move(o)) {}
  ~ServerThread() { stop(); }
  std::string start() {
    auto url = server_.start();
    EXPECT_TRUE(url.ok()) << (url.ok() ? "" : url.error().message);
    if (!url.ok()) return {};
    thread_ = std::thread([this] { server_.run(); });
    return *url;
  }
  void stop() {
    if (!thread_.joinable()) return;
    server_.stop();
    thread_.join();
  }

 private:
  RelayServer server_;
  std::thread thread_;
};

RelayServerOptions server_options() {
  RelayServerOptions o;
  o.bind_ip = "127.0.0.1";
  o.log_level = LogLevel::Error;
  o.core.restart_reconnect_in_ms = 100;
  o.core.restart_try_for_ms = 10000;
  return o;
}

// Runs `io` until `done()` or the timeout; true if done.
bool run_until(net::io_context& io, const std::function<bool()>& done,
               std::chrono::milliseconds timeout = 5000ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    io.restart();
    io.run_for(5ms);
  }
  return true;
}

struct Peer {
  std::shared_ptr<RelayClient> client;
  std::vector<RelayDatagram> rx;
  std::vector<relay::ClientEvent> events;

  bool saw(relay::ClientEvent::Kind kind) const {
    for (const auto& e : events) {
      if (e.kind == kind) return true;
    }
    return false;
  }
  int count(relay::ClientEvent::Kind kind) const {
    int n = 0;
    for (const auto& e : events) n += e.kind == kind ? 1 : 0;
    return n;
  }
};

std::unique_ptr<Peer> make_peer(net::io_context& io, const SecretKey& k, const std::string& url,
                                RelayClientOptions o = {}) {
  auto p = std::make_unique<Peer>();
  auto parsed = RelayUrl::parse(url);
  EXPECT_TRUE(parsed.ok());
  o.random_seed = k.seed()[0];
  auto c = RelayClient::start(io, k, *parsed, std::move(o));
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  p->client = *c;
  Peer* raw = p.get();
  p->client->on_receive([raw](RelayDatagram d) { raw->rx.push_back(std::move(d)); });
  p->client->on_event([raw](const relay::ClientEvent& e) { raw->events.push_back(e); });
  return p;
}

bool connected(const Peer& p) { return p.client->state() == relay::ClientState::Connected; }

TEST(RelayClientIo, TwoClientsExchangeDatagrams) {
  ServerThread server(server_options());
  const std::string url = server.start();
  ASSERT_FALSE(url.empty());
  net::io_context io;
  auto a = make_peer(io, key(1), url);
  auto b = make_peer(io, key(2), url);
  EXPECT_EQ(a->client->websocket_url().substr(0, 15), "ws://127.0.0.1:");
  ASSERT_TRUE(run_until(io, [&] { return connected(*a) && connected(*b); }));
  EXPECT_EQ(a->client->auth_method(), relay::AuthMethod::Challenge);  // plain http: no exporter

  const Bytes hello{'h', 'e', 'l', 'l', 'o'};
  a->client->send(key(2).public_key(), hello, relay::ecn::kEct0);
  b->client->send(key(1).public_key(), Bytes{1, 2, 3, 4, 5, 6, 7}, relay::ecn::kCe, 3);
  ASSERT_TRUE(run_until(io, [&] { return !a->rx.empty() && !b->rx.empty(); }));
  EXPECT_EQ(b->rx[0].src, key(1).public_key());
  EXPECT_EQ(b->rx[0].data, hello);
  EXPECT_EQ(b->rx[0].ecn, relay::ecn::kEct0);
  EXPECT_FALSE(b->rx[0].segment_size);
  EXPECT_EQ(a->rx[0].src, key(2).public_key());
  EXPECT_EQ(a->rx[0].segment_size, std::optional<std::uint16_t>(3));
  EXPECT_EQ(a->rx[0].ecn, relay::ecn::kCe);

  // A burst: everything arrives, in order.
  for (int i = 0; i < 200; ++i) {
    a->client->send(key(2).public_key(), Bytes{static_cast<std::uint8_t>(i), 0xee});
  }
  ASSERT_TRUE(run_until(io, [&] { return b->rx.size() == 201; }));
  for (int i = 0; i < 200; ++i) EXPECT_EQ(b->rx[1 + i].data[0], static_cast<std::uint8_t>(i));

  // Closing a sends EndpointGone(a) to b.
  a->client->close();
  ASSERT_TRUE(run_until(io, [&] { return b->saw(relay::ClientEvent::Kind::EndpointGone); }));
  EXPECT_EQ(a->client->state(), relay::ClientState::Closed);
  b->client->close();
  io.restart();
  io.run_for(100ms);
}

TEST(RelayClientIo, ReconnectOnNetworkChangeRedialsAtOnceAndTrafficResumes) {
  ServerThread server(server_options());
  const std::string url = server.start();
  ASSERT_FALSE(url.empty());
  net::io_context io;
  auto a = make_peer(io, key(1), url);
  auto b = make_peer(io, key(2), url);
  ASSERT_TRUE(run_until(io, [&] { return connected(*a) && connected(*b); }));
  // The relay forgets the old connection and serves the new one: traffic flows both ways.
  a->client->reconnect("network change");
  EXPECT_NE(a->client->state(), relay::ClientState::Connected);
  ASSERT_TRUE(run_until(
      io, [&] { return connected(*a) && a->client->metrics().connected == 2; }, 3000ms));
  a->client->send(key(2).public_key(), Bytes{7, 7});
  b->client->send(key(1).public_key(), Bytes{8, 8});
  ASSERT_TRUE(run_until(io, [&] { return !a->rx.empty() && !b->rx.empty(); }));
  EXPECT_EQ(b->rx.back().data, (Bytes{7, 7}));
  EXPECT_EQ(a->rx.back().data, (Bytes{8, 8}));
  a->client->close();
  b->client->close();
  io.restart();
  io.run_for(100ms);
}

TEST(RelayClientIo, DeniedWithReason) {
  auto o = server_options();
  o.core.access.mode = relay::AccessPolicy::Mode::Allowlist;
  o.core.access.ids = {key(1).public_key()};
  o.core.access.deny_reason = "not on the allowlist";
  ServerThread server(std::move(o));
  const std::string url = server.start();
  net::io_context io;
  auto ok = make_peer(io, key(1), url);
  auto bad = make_peer(io, key(2), url);
  ASSERT_TRUE(run_until(
      io, [&] { return connected(*ok) && bad->client->state() == relay::ClientState::Denied; }));
  EXPECT_EQ(bad->client->denial_reason().value_or(""), "not on the allowlist");
  ASSERT_TRUE(bad->saw(relay::ClientEvent::Kind::Denied));
  // Terminal: no reconnect attempts.
  io.restart();
  io.run_for(300ms);
  EXPECT_EQ(bad->client->metrics().connects, 1u);
  ok->client->close();
  io.restart();
  io.run_for(50ms);
}

TEST(RelayClientIo, TokenAndBadServer) {
  auto o = server_options();
  o.core.access.mode = relay::AccessPolicy::Mode::SharedToken;
  o.core.access.token = "s3cret";
  ServerThread server(std::move(o));
  const std::string url = server.start();
  net::io_context io;
  RelayClientOptions bearer;
  bearer.token = "s3cret";
  RelayClientOptions query = bearer;
  query.token_in_query = true;
  auto a = make_peer(io, key(1), url, bearer);
  auto b = make_peer(io, key(2), url, query);
  auto c = make_peer(io, key(3), url);  // no token
  ASSERT_TRUE(run_until(io, [&] {
    return connected(*a) && connected(*b) && c->client->state() == relay::ClientState::Denied;
  }));
  EXPECT_NE(b->client->websocket_url().find("/relay?token=s3cret"), std::string::npos);

  // Nothing listening: connect failures, backoff, Reconnecting events.
  net::io_context io2;
  RelayClientOptions fast;
  fast.core.initial_backoff = 20ms;
  auto d = make_peer(io2, key(4), "http://127.0.0.1:1/", fast);
  ASSERT_TRUE(run_until(io2, [&] { return d->client->metrics().connects >= 3; }));
  EXPECT_EQ(d->client->state() == relay::ClientState::WaitingRetry ||
                d->client->state() == relay::ClientState::Connecting,
            true);
  d->client->close();
  for (auto* p : {a.get(), b.get(), c.get()}) p->client->close();
  io.restart();
  io.run_for(50ms);
  io2.restart();
  io2.run_for(50ms);
}

TEST(RelayClientIo, ServerRestartReconnectsAndTrafficResumes) {
  auto o = server_options();
  auto first = std::make_unique<ServerThread>(o);
  const std::string url = first->start();
  const auto port = static_cast<std::uint16_t>(std::stoi(url.substr(url.rfind(':') + 1)));
  net::io_context io;
  RelayClientOptions co;
  co.core.initial_backoff = 50ms;
  auto a = make_peer(io, key(1), url, co);
  auto b = make_peer(io, key(2), url, co);
  ASSERT_TRUE(run_until(io, [&] { return connected(*a) && connected(*b); }));

  // Graceful stop: Restarting to everyone, then the server goes away.
  std::thread stopper([&] { first->stop(); });
  ASSERT_TRUE(run_until(io, [&] {
    return a->saw(relay::ClientEvent::Kind::Restarting) &&
           b->saw(relay::ClientEvent::Kind::Restarting);
  }));
  stopper.join();
  first.reset();

  // Same port, new server.
  o.bind_port = port;
  ServerThread second(o);
  ASSERT_EQ(second.start(), url);
  ASSERT_TRUE(run_until(io, [&] {
    return connected(*a) && connected(*b) && a->client->metrics().connected == 2 &&
           b->client->metrics().connected == 2;
  }));
  a->client->send(key(2).public_key(), Bytes{42});
  ASSERT_TRUE(run_until(io, [&] { return !b->rx.empty(); }));
  EXPECT_EQ(b->rx.back().data, Bytes{42});
  a->client->close();
  b->client->close();
  io.restart();
  io.run_for(50ms);
}

// A fake relay that records the upgrade request and answers 101 with or without a subprotocol.
TEST(RelayClientIo, UpgradeRequestIsSpecExactAndSubprotocolRequired) {
  net::io_context io;
  net::ip::tcp::acceptor acceptor(io, {net::ip::make_address("127.0.0.1"), 0});
  const auto port = acceptor.local_endpoint().port();
  std::vector<std::string> requests;
  std::function<void()> accept_one = [&] {
    auto sock = std::make_shared<net::ip::tcp::socket>(io);
    acceptor.async_accept(*sock, [&, sock](boost::system::error_code ec) {
      if (ec) return;
      auto buf = std::make_shared<std::string>();
      net::async_read_until(
          *sock, net::dynamic_buffer(*buf), "\r\n\r\n",
          [&, sock, buf](boost::system::error_code ec2, std::size_t n) {
            if (ec2) return;
            const std::string req = buf->substr(0, n);
            requests.push_back(req);
            std::string key;
            const auto k = req.find("Sec-WebSocket-Key: ");
            if (k != std::string::npos) key = req.substr(k + 19, req.find("\r\n", k) - k - 19);
            auto res = std::make_shared<std::string>(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: "
                "Upgrade\r\nSec-WebSocket-Accept: " +
                relay::websocket_accept(key) + "\r\n\r\n");  // no Sec-WebSocket-Protocol
            net::async_write(*sock, net::buffer(*res),
                             [sock, res](boost::system::error_code, std::size_t) {});
          });
      accept_one();
    });
  };
  accept_one();
  RelayClientOptions o;
  o.token = "tok";
  o.core.initial_backoff = 10ms;
  auto p = make_peer(io, key(1), "http://127.0.0.1:" + std::to_string(port) + "/ignored/path", o);
  ASSERT_TRUE(run_until(io, [&] { return p->client->metrics().connects >= 2; }));
  EXPECT_NE(p->client->state(), relay::ClientState::Connected);
  bool subprotocol_error = false;
  for (const auto& e : p->events) {
    subprotocol_error = subprotocol_error ||
                        (e.kind == relay::ClientEvent::Kind::ConnectFailed &&
                         e.detail.find("did not select a relay subprotocol") != std::string::npos);
  }
  EXPECT_TRUE(subprotocol_error);
  ASSERT_FALSE(requests.empty());
  const std::string& r = requests[0];
  EXPECT_EQ(r.rfind("GET /relay HTTP/1.1\r\n", 0), 0u) << r;
  EXPECT_NE(r.find("Host: 127.0.0.1:" + std::to_string(port) + "\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Upgrade: websocket\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Connection: upgrade\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Sec-WebSocket-Version: 13\r\n"), std::string::npos) << r;
  EXPECT_NE(r.find("Sec-WebSocket-Protocol: iroh-relay-v2, iroh-relay-v1\r\n"), std::string::npos)
      << r;
  EXPECT_NE(r.find("Authorization: Bearer tok\r\n"), std::string::npos) << r;
  EXPECT_EQ(r.find("User-Agent"), std::string::npos) << r;
  EXPECT_EQ(r.find("x-iroh-relay-client-auth-v1"), std::string::npos) << r;  // plain TCP
  p->client->close();
  acceptor.close();
  io.restart();
  io.run_for(50ms);
}

// ---- https ----

class TlsDir {
 public:
  TlsDir() {
    dir_ = std::filesystem::temp_directory_path() /
           ("irohlab-relayc-" + std::to_string(::getpid()) + "-" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    std::filesystem::create_directories(dir_);
    const std::string cmd =
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost -keyout " +
        key().string() + " -out " + cert().string() + " >/dev/null 2>&1";
    ok_ = std::system(cmd.c_str()) == 0;
  }
  ~TlsDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool ok() const { return ok_; }
  std::filesystem::path cert() const { return dir_ / "cert.pem"; }
  std::filesystem::path key() const { return dir_ / "key.pem"; }

 private:
  std::filesystem::path dir_;
  bool ok_ = false;
};

TEST(RelayClientIo, HttpsWithExporterHeaderSkipsChallenge) {
  TlsDir tls;
  ASSERT_TRUE(tls.ok()) << "openssl req failed";
  auto o = server_options();
  o.tls_cert_file = tls.cert().string();
  o.tls_key_file = tls.key().string();
  ServerThread server(std::move(o));
  const std::string url = server.start();
  ASSERT_EQ(url.substr(0, 8), "https://");
  net::io_context io;
  RelayClientOptions co;
  co.ca_file = tls.cert().string();
  auto a = make_peer(io, key(1), url, co);  // exporter header (default)
  RelayClientOptions no_header = co;
  no_header.key_material_header = false;
  auto b = make_peer(io, key(2), url, no_header);
  RelayClientOptions corrupt = co;
  corrupt.key_material_header_override = std::string(151, 'A');  // malformed → challenge
  auto c = make_peer(io, key(3), url, corrupt);
  ASSERT_TRUE(run_until(io, [&] { return connected(*a) && connected(*b) && connected(*c); }));
  EXPECT_EQ(a->client->websocket_url().substr(0, 6), "wss://");
  // The server confirmed a without sending a challenge (the client never answered one).
  EXPECT_EQ(a->client->auth_method(), relay::AuthMethod::KeyMaterialHeader);
  EXPECT_EQ(a->client->metrics().auth_key_material, 1u);
  EXPECT_EQ(b->client->auth_method(), relay::AuthMethod::Challenge);
  EXPECT_EQ(c->client->auth_method(), relay::AuthMethod::Challenge);

  a->client->send(key(2).public_key(), Bytes{7, 7, 7});
  b->client->send(key(1).public_key(), Bytes{8});
  ASSERT_TRUE(run_until(io, [&] { return !a->rx.empty() && !b->rx.empty(); }));
  EXPECT_EQ(b->rx[0].data, (Bytes{7, 7, 7}));
  EXPECT_EQ(a->rx[0].data, Bytes{8});

  // Without trusting the certificate the TLS handshake fails (and is retried).
  net::io_context io2;
  auto d = make_peer(io2, key(4), url);  // system roots only
  ASSERT_TRUE(run_until(io2, [&] { return d->client->metrics().connects >= 2; }));
  EXPECT_NE(d->client->state(), relay::ClientState::Connected);
  d->client->close();
  for (auto* p : {a.get(), b.get(), c.get()}) p->client->close();
  io.restart();
  io.run_for(50ms);
  io2.restart();
  io2.run_for(50ms);
}

}  // namespace
}  // namespace iroh::io

// io::QuicEndpoint and io::Router on real loopback UDP sockets: the coroutine API end to end.
#include "io/quic_endpoint.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/router.h"

namespace iroh::io {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

SecretKey key(std::uint8_t n) {
  ByteArray<32> seed{};
  seed[0] = n;
  seed[31] = 0x5a;
  return SecretKey::from_seed(seed);
}

// Echo every bidi stream, every datagram; close with 7 "bye" when asked via a stream "close".
awaitable<void> echo_handler(std::shared_ptr<QuicConnection> conn) {
  auto ex = co_await asio::this_coro::executor;
  asio::co_spawn(
      ex,
      [conn]() -> awaitable<void> {
        for (;;) {
          auto d = co_await conn->recv_datagram();
          if (!d) co_return;
          (void)conn->send_datagram(*d);
        }
      },
      asio::detached);
  for (;;) {
    auto id = co_await conn->accept_bi();
    if (!id) co_return;
    Bytes all;
    Bytes buf(4096);
    for (;;) {
      auto r = co_await conn->read(*id, buf);
      if (!r) co_return;
      all.insert(all.end(), buf.begin(), buf.begin() + r->bytes);
      if (r->fin) break;
    }
    if (std::string(all.begin(), all.end()) == "close") {
      conn->close(7, "bye");
      co_return;
    }
    (void)co_await conn->write_all(*id, all);
    (void)conn->finish(*id);
  }
}

struct Fixture {
  asio::io_context io;
  Router router;
  std::shared_ptr<QuicEndpoint> server;

  explicit Fixture(QuicEndpointOptions extra = {}) {
    router.add("test/echo/0", echo_handler);
    router.add("test/other/0", echo_handler);
    extra.alpns = router.alpns();
    auto ep = QuicEndpoint::bind(io, key(1), extra);
    EXPECT_TRUE(ep.ok()) << (ep.ok() ? "" : ep.error().message);
    server = *ep;
    asio::co_spawn(io, router.serve(server), asio::detached);
  }
  std::shared_ptr<QuicEndpoint> client(QuicEndpointOptions o = {}) {
    auto ep = QuicEndpoint::bind(io, key(2), o);
    EXPECT_TRUE(ep.ok());
    return *ep;
  }
  // Runs `body` to completion (bounded), then stops everything.
  void run(std::function<awaitable<void>()> body, Duration limit = 10s) {
    bool done = false;
    asio::co_spawn(io, [&]() -> awaitable<void> {
      co_await body();
      done = true;
      server->close();
      io.stop();
    }, asio::detached);
    io.run_for(std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit));
    EXPECT_TRUE(done) << "the test body did not finish in time";
  }
};

awaitable<Bytes> echo_once(std::shared_ptr<QuicConnection> c, ByteView data) {
  auto id = co_await c->open_bi();
  EXPECT_TRUE(id.ok());
  if (!id) co_return Bytes{};
  EXPECT_TRUE((co_await c->write_all(*id, data)).ok());
  EXPECT_TRUE(c->finish(*id).ok());
  Bytes out;
  Bytes buf(65536);
  for (;;) {
    auto r = co_await c->read(*id, buf);
    EXPECT_TRUE(r.ok()) << (r ? "" : r.error().message);
    if (!r) break;
    out.insert(out.end(), buf.begin(), buf.begin() + r->bytes);
    if (r->fin) break;
  }
  co_return out;
}

TEST(QuicEndpoint, RouterDispatchesByAlpnAndEchoes) {
  Fixture f;
  auto client = f.client();
  f.run([&]() -> awaitable<void> {
    Bytes data(300000);
    for (std::size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::uint8_t>(i * 7);
    for (const char* alpn : {"test/echo/0", "test/other/0"}) {
      auto c = co_await client->connect(f.server->addr(), alpn);
      EXPECT_TRUE(c.ok()) << (c ? "" : c.error().message);
      if (!c) co_return;
      EXPECT_EQ((*c)->alpn(), alpn);
      EXPECT_EQ((*c)->remote_id(), key(1).public_key());
      EXPECT_EQ(co_await echo_once(*c, data), data);
      (*c)->close(0, "done");
    }
    client->close();
  });
  EXPECT_EQ(f.router.handled("test/echo/0"), 1u);
  EXPECT_EQ(f.router.handled("test/other/0"), 1u);
}

TEST(QuicEndpoint, DatagramsRoundTrip) {
  Fixture f;
  auto client = f.client();
  f.run([&]() -> awaitable<void> {
    auto c = co_await client->connect(f.server->addr(), "test/echo/0");
    EXPECT_TRUE(c.ok());
    if (!c) co_return;
    EXPECT_GT((*c)->max_datagram_size(), 1000u);
    const Bytes d = {1, 2, 3, 4, 5};
    EXPECT_TRUE((*c)->send_datagram(d).ok());
    auto back = co_await (*c)->recv_datagram();
    EXPECT_TRUE(back.ok());
    if (back) EXPECT_EQ(*back, d);
    Bytes too_big((*c)->max_datagram_size() + 1);
    EXPECT_FALSE((*c)->send_datagram(too_big).ok());
    client->close();
  });
}

TEST(QuicEndpoint, WrongServerKeyIsAKeyMismatch) {
  Fixture f;
  auto client = f.client();
  f.run([&]() -> awaitable<void> {
    EndpointAddr addr = f.server->addr();
    addr.id = key(9).public_key();  // not the server's key
    auto c = co_await client->connect(addr, "test/echo/0");
    EXPECT_FALSE(c.ok());
    if (c) co_return;
    EXPECT_EQ(c.error().kind, ErrorKind::kKeyMismatch) << c.error().message;
    EXPECT_NE(c.error().message.find(key(9).public_key().to_hex()), std::string::npos);
    EXPECT_NE(c.error().message.find(key(1).public_key().to_hex()), std::string::npos);
    client->close();
  });
}

TEST(QuicEndpoint, UnknownAlpnIsRefused) {
  Fixture f;
  auto client = f.client();
  f.run([&]() -> awaitable<void> {
    auto c = co_await client->connect(f.server->addr(), "test/unknown/0");
    EXPECT_FALSE(c.ok());
    if (!c) {
      EXPECT_EQ(c.error().kind, ErrorKind::kAlpn) << c.error().message;
    }
    client->close();
  });
}

TEST(QuicEndpoint, SilentPeerTimesOut) {
  asio::io_context io;
  // A bound UDP socket nobody reads: packets vanish, the handshake times out.
  auto sink = UdpSocket::bind(io, SocketAddr::v4({127, 0, 0, 1}, 0));
  ASSERT_TRUE(sink.ok());
  QuicEndpointOptions o;
  o.connection.handshake_timeout = 300ms;
  auto client = QuicEndpoint::bind(io, key(2), o);
  ASSERT_TRUE(client.ok());
  EndpointAddr addr;
  addr.id = key(1).public_key();
  addr.addrs.insert(TransportAddr(sink->local_addr()));
  std::optional<QuicError> err;
  asio::co_spawn(io, [&]() -> awaitable<void> {
    auto c = co_await (*client)->connect(addr, "test/echo/0");
    if (!c) err = c.error();
    (*client)->close();
  }, asio::detached);
  io.run_for(5s);
  ASSERT_TRUE(err.has_value());
  EXPECT_EQ(err->kind, ErrorKind::kTimeout) << err->message;
}

TEST(QuicEndpoint, PeerCloseCodeAndReasonReachTheApplication) {
  Fixture f;
  auto client = f.client();
  f.run([&]() -> awaitable<void> {
    auto c = co_await client->connect(f.server->addr(), "test/echo/0");
    EXPECT_TRUE(c.ok());
    if (!c) co_return;
    auto id = co_await (*c)->open_bi();
    const std::string cmd = "close";
    (void)co_await (*c)->write_all(*id, as_bytes(cmd));
    (void)(*c)->finish(*id);
    auto reason = co_await (*c)->closed();
    EXPECT_EQ(reason.kind, quic::CloseReason::Kind::kPeerApplication);
    EXPECT_EQ(reason.code, 7u);
    EXPECT_EQ(reason.reason, "bye");
    auto e = error_from_close(reason);
    EXPECT_EQ(e.kind, ErrorKind::kClosed);
    client->close();
  });
}

TEST(QuicEndpoint, QlogFilesAreJsonSeq) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("irohlab-qlog-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  QuicEndpointOptions so;
  so.qlog_dir = dir.string();
  Fixture f(so);
  auto client = f.client();
  f.run([&]() -> awaitable<void> {
    auto c = co_await client->connect(f.server->addr(), "test/echo/0");
    EXPECT_TRUE(c.ok());
    if (!c) co_return;
    const Bytes data(1000, 1);
    EXPECT_EQ(co_await echo_once(*c, data), data);
    (*c)->close(0, "done");
    co_await (*c)->drain(100ms);
    client->close();
  });
  std::size_t files = 0, events = 0;
  bool saw_sent = false;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    ++files;
    std::ifstream in(e.path());
    std::string line;
    while (std::getline(in, line)) {
      ASSERT_FALSE(line.empty());
      ASSERT_EQ(line[0], '\x1e') << "JSON-SEQ records start with RS";
      auto j = nlohmann::json::parse(line.substr(1), nullptr, false);
      ASSERT_FALSE(j.is_discarded()) << line;
      if (j.contains("name")) {
        ++events;
        if (j["name"] == "transport:packet_sent") saw_sent = true;
      }
    }
  }
  std::filesystem::remove_all(dir);
  EXPECT_EQ(files, 1u);  // the server's connection
  EXPECT_GT(events, 5u);
  EXPECT_TRUE(saw_sent);
}

TEST(QuicEndpoint, SslKeylogFileGetsTheSecrets) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("irohlab-keylog-" + std::to_string(::getpid()) + ".txt");
  std::filesystem::remove(path);
  ::setenv("SSLKEYLOGFILE", path.c_str(), 1);
  {
    Fixture f;
    auto client = f.client();
    f.run([&]() -> awaitable<void> {
      auto c = co_await client->connect(f.server->addr(), "test/echo/0");
      EXPECT_TRUE(c.ok());
      client->close();
    });
  }
  ::unsetenv("SSLKEYLOGFILE");
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(path);
  EXPECT_NE(text.find("CLIENT_HANDSHAKE_TRAFFIC_SECRET"), std::string::npos) << text;
  EXPECT_NE(text.find("SERVER_TRAFFIC_SECRET_0"), std::string::npos);
}

}  // namespace
}  // namespace iroh::io

namespace iroh::io {
namespace {

// Fresh client endpoints created while the io_context runs, one-byte echo each (the shape of
// `irohlab bench quic`'s connect-latency loop).
TEST(QuicEndpoint, FreshClientEndpointsEchoOneByte) {
  Fixture f;
  int echoed = 0;
  f.run([&]() -> awaitable<void> {
    for (int i = 0; i < 5; ++i) {
      auto client = QuicEndpoint::bind(f.io, key(static_cast<std::uint8_t>(10 + i)), {});
      EXPECT_TRUE(client.ok());
      if (!client) co_return;
      auto c = co_await (*client)->connect(f.server->addr(), "test/echo/0");
      EXPECT_TRUE(c.ok());
      if (!c) co_return;
      const Bytes one = {0x2a};
      if (co_await echo_once(*c, one) == one) ++echoed;
      (*c)->close(0, "done");
      co_await (*c)->drain(20ms);
      (*client)->close();
    }
  });
  EXPECT_EQ(echoed, 5);
}

}  // namespace
}  // namespace iroh::io

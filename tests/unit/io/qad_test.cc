// io::QadServer and io::observe_address on real loopback UDP sockets (spec §6.9), in-process.
#include <gtest/gtest.h>

#include "crypto/x509_test_certs.h"
#include "io/qad_client.h"
#include "io/qad_server.h"

namespace iroh::io {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct QadFixture {
  asio::io_context io;
  std::unique_ptr<QadServer> server;

  QadFixture() {
    const auto& pki = testing::TestPki::get();
    auto identity = crypto::X509Credentials::server_from_pem(pki.leaf.cert_pem, pki.leaf.key_pem);
    EXPECT_TRUE(identity.ok());
    auto s = QadServer::start(io, QadServerOptions{SocketAddr::v4({127, 0, 0, 1}, 0), *identity});
    EXPECT_TRUE(s.ok()) << (s.ok() ? "" : s.error().message);
    if (s.ok()) server = std::move(*s);
  }

  // One probe from a fresh client endpoint trusting `ca_pem`, for `url`.
  std::pair<QuicResult<SocketAddr>, SocketAddr> probe(const std::string& ca_pem,
                                                      const std::string& url) {
    auto relay = RelayUrl::parse(url);
    EXPECT_TRUE(relay.ok());
    auto trust = crypto::X509Credentials::client_trusting_pem(ca_pem);
    EXPECT_TRUE(trust.ok());
    ByteArray<32> seed{};
    seed[0] = 3;
    auto ep = QuicEndpoint::bind(
        io, SecretKey::from_seed(seed),
        qad_client_endpoint_options(*relay, *trust, SocketAddr::v4({127, 0, 0, 1}, 0), 2s));
    EXPECT_TRUE(ep.ok());
    std::optional<QuicResult<SocketAddr>> result;
    QadProbeOptions o;
    o.port = server->local_addr().port();
    o.timeout = 2s;
    asio::co_spawn(io, run(*ep, *relay, o, result), asio::detached);
    for (int i = 0; i < 500 && !result; ++i) io.run_for(10ms);
    const SocketAddr local = (*ep)->local_addr();
    (*ep)->close();
    io.run_for(20ms);
    EXPECT_TRUE(result.has_value()) << "probe did not finish";
    if (!result) return {QuicError{ErrorKind::kTimeout, "no result", std::nullopt}, local};
    return {*result, local};
  }

  static awaitable<void> run(std::shared_ptr<QuicEndpoint> ep, RelayUrl relay, QadProbeOptions o,
                             std::optional<QuicResult<SocketAddr>>& out) {
    auto r = co_await observe_address(*ep, relay, o);
    out = std::move(r);
  }
};

TEST(QadIo, ProbeLearnsItsOwnAddressAndTheServerCounts) {
  QadFixture f;
  ASSERT_TRUE(f.server);
  // The URL's port is the relay's https port; QAD uses its own (QadProbeOptions::port).
  auto [result, local] = f.probe(testing::TestPki::get().ca.cert_pem, "https://127.0.0.1:8443/");
  ASSERT_TRUE(result.ok()) << result.error().message;
  EXPECT_EQ(*result, local);
  // The client closed with 1 "finished": the server forgets the connection.
  for (int i = 0; i < 100 && f.server->active() > 0; ++i) f.io.run_for(10ms);
  EXPECT_EQ(f.server->connections(), 1u);
  EXPECT_EQ(f.server->active(), 0u);
  EXPECT_EQ(f.server->observations(), 1u);
}

TEST(QadIo, UnknownCaIsATlsError) {
  QadFixture f;
  ASSERT_TRUE(f.server);
  auto [result, local] = f.probe(testing::TestPki::get().other_ca.cert_pem, "https://127.0.0.1/");
  ASSERT_FALSE(result.ok());
  EXPECT_NE(result.error().message.find("TLS alert 48"), std::string::npos)
      << result.error().message;
  EXPECT_EQ(f.server->connections(), 0u);
}

TEST(QadIo, ServerNeedsACertificate) {
  asio::io_context io;
  auto s = QadServer::start(io, QadServerOptions{SocketAddr::v4({127, 0, 0, 1}, 0), nullptr});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("X.509"), std::string::npos);
}

}  // namespace
}  // namespace iroh::io

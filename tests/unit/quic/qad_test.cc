// QUIC address discovery in the engine (draft-ietf-quic-address-discovery, spec §6.9): the
// relay-style server (role send-only, X.509 certificate) reports the client's address in
// OBSERVED_ADDRESS frames; the client (role receive-only) records it.
#include <gtest/gtest.h>

#include "crypto/x509_test_certs.h"
#include "quic_echo.h"

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using testing::FlexPair;
using R = AddressDiscoveryRole;

std::vector<event::AddressObserved> observed_events(Connection* c) {
  std::vector<event::AddressObserved> out;
  while (auto e = c->poll_event()) {
    if (auto* a = std::get_if<event::AddressObserved>(&*e)) out.push_back(*a);
  }
  return out;
}

EndpointConfig with_role(EndpointConfig c, std::optional<R> role) {
  c.connection.observed_address = role;
  return c;
}

// The relay's QAD profile: the server presents an X.509 chain, the client checks it.
std::pair<EndpointConfig, EndpointConfig> x509_configs() {
  const auto& pki = testing::TestPki::get();
  EndpointConfig client, server = FlexPair::default_server();
  auto identity = crypto::X509Credentials::server_from_pem(pki.leaf.cert_pem, pki.leaf.key_pem);
  auto trust = crypto::X509Credentials::client_trusting_pem(pki.ca.cert_pem);
  EXPECT_TRUE(identity.ok() && trust.ok());
  server.connection.x509 = ConnectionConfig::X509Tls{*identity, ""};
  client.connection.x509 = ConnectionConfig::X509Tls{*trust, "relay.test"};
  return {client, server};
}

TEST(Qad, ServerReportsTheClientsAddress) {
  auto [client, server] = x509_configs();
  FlexPair p(401, with_role(client, R::kReceiveOnly), with_role(server, R::kSendOnly));
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.net.run_until([&] { return p.cconn()->observed_address().has_value(); }, 1s));
  EXPECT_EQ(*p.cconn()->observed_address(), FlexPair::kClientAddr);
  auto evs = observed_events(p.cconn());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].sequence, 0u);
  EXPECT_EQ(evs[0].address, FlexPair::kClientAddr);
  EXPECT_FALSE(p.sconn()->observed_address()) << "the client is receive-only";
  EXPECT_FALSE(p.cconn()->peer_id()) << "X.509: no iroh endpoint id";
  // Nothing more is reported while the address stays the same.
  p.net.run_for(2s);
  EXPECT_TRUE(observed_events(p.cconn()).empty());
  EXPECT_FALSE(p.cconn()->is_closed());
  EXPECT_EQ(p.sconn()->stats().observed_addresses_sent, 1u);
  EXPECT_EQ(p.cconn()->stats().observed_addresses_received, 1u);
  EXPECT_EQ(p.cconn()->stats().path.observed, FlexPair::kClientAddr);
}

TEST(Qad, RebindingIsReportedWithAHigherSequenceNumber) {
  auto [client, server] = x509_configs();
  FlexPair p(402, with_role(client, R::kReceiveOnly), with_role(server, R::kSendOnly));
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.net.run_until([&] { return p.cconn()->observed_address().has_value(); }, 1s));
  (void)observed_events(p.cconn());
  // NAT rebinding: the client's port changes; its next packet moves the server's path.
  const SocketAddr rebound = SocketAddr::v4({10, 0, 0, 1}, 50001);
  p.move_client(rebound);
  auto id = p.cconn()->open_stream(StreamDirection::kUni);
  ASSERT_TRUE(id);
  ASSERT_TRUE(p.cconn()->stream_write(*id, testing::pattern(10)));
  ASSERT_TRUE(p.net.run_until([&] { return p.cconn()->observed_address() == rebound; }, 2s));
  auto evs = observed_events(p.cconn());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_GE(evs[0].sequence, 1u);
  EXPECT_EQ(evs[0].address, rebound);
  EXPECT_EQ(p.sconn()->remote_address(), rebound);
}

TEST(Qad, ALostReportIsResentWithANewSequenceNumber) {
  auto [client, server] = x509_configs();
  FlexPair p(405, with_role(client, R::kReceiveOnly), with_role(server, R::kSendOnly));
  // Drop the server datagram that carries OBSERVED_ADDRESS #0 (the tap runs after the frame was
  // written: the first datagram seen with one frame sent).
  int dropped = 0;
  p.net.tap = [&](const SocketAddr& from, const SocketAddr&, Bytes&, std::uint8_t&) {
    if (from == FlexPair::kServerAddr && dropped == 0 && p.sconn() &&
        p.sconn()->stats().observed_addresses_sent == 1) {
      ++dropped;
      return false;
    }
    return true;
  };
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.net.run_until([&] { return p.cconn()->observed_address().has_value(); }, 3s));
  EXPECT_EQ(dropped, 1);
  auto evs = observed_events(p.cconn());
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].sequence, 1u) << "#0 was lost; the repeat carries the next number";
  EXPECT_EQ(evs[0].address, FlexPair::kClientAddr);
  EXPECT_EQ(p.sconn()->stats().observed_addresses_sent, 2u);
}

TEST(Qad, BothRolesReportEachOther) {
  // Role 2 on both sides (the raw-public-key profile: QAD is independent of the certificate).
  FlexPair p(403, with_role({}, R::kBoth), with_role(FlexPair::default_server(), R::kBoth));
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.net.run_until(
      [&] { return p.cconn()->observed_address() && p.sconn()->observed_address(); }, 1s));
  EXPECT_EQ(*p.cconn()->observed_address(), FlexPair::kClientAddr);
  EXPECT_EQ(*p.sconn()->observed_address(), FlexPair::kServerAddr);
}

struct NoReportCase {
  const char* name;
  std::optional<R> client, server;
};
class QadNotNegotiated : public ::testing::TestWithParam<NoReportCase> {};

TEST_P(QadNotNegotiated, NoFrameIsSentAndTheConnectionStaysUp) {
  // A client that did not ask would close with PROTOCOL_VIOLATION on receiving one: staying
  // open proves none was sent.
  const auto& tc = GetParam();
  FlexPair p(404, with_role({}, tc.client), with_role(FlexPair::default_server(), tc.server));
  ASSERT_TRUE(p.connect());
  p.net.run_for(2s);
  EXPECT_FALSE(p.cconn()->observed_address());
  EXPECT_FALSE(p.sconn()->observed_address());
  EXPECT_FALSE(p.cconn()->is_closed()) << p.cconn()->close_reason()->describe();
  EXPECT_FALSE(p.sconn()->is_closed()) << p.sconn()->close_reason()->describe();
  EXPECT_EQ(p.sconn()->stats().observed_addresses_sent, 0u);
  EXPECT_EQ(p.cconn()->stats().observed_addresses_sent, 0u);
}
INSTANTIATE_TEST_SUITE_P(
    Cases, QadNotNegotiated,
    ::testing::Values(NoReportCase{"ClientSilent", std::nullopt, R::kSendOnly},
                      NoReportCase{"ServerSilent", R::kReceiveOnly, std::nullopt},
                      NoReportCase{"BothSendOnly", R::kSendOnly, R::kSendOnly},
                      NoReportCase{"BothReceiveOnly", R::kReceiveOnly, R::kReceiveOnly}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(Qad, TransportParameterCarriesTheRole) {
  // The role travels in TP 0x9f81a176 as a varint (spec §4.2); decode what each side sent.
  for (auto role : {R::kSendOnly, R::kReceiveOnly, R::kBoth}) {
    TransportParameters tp;
    tp.observed_address = role;
    auto back =
        decode_transport_parameters(encode_transport_parameters(tp, Role::kClient), Role::kClient);
    ASSERT_TRUE(back);
    EXPECT_EQ(back->observed_address, role);
  }
}

}  // namespace
}  // namespace iroh::quic

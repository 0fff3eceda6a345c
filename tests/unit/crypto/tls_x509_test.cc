// TlsSession's WebPKI profile (relay QUIC address discovery, spec §6.9): in-memory handshakes
// between our X.509 client and server with a throwaway CA.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "crypto/tls.h"
#include "x509_test_certs.h"

namespace iroh::crypto {
namespace {

using iroh::testing::TestPki;
using iroh::testing::X509Maker;

constexpr EncryptionLevel kLevels[] = {EncryptionLevel::kInitial, EncryptionLevel::kHandshake,
                                       EncryptionLevel::kOneRtt};
const Bytes kTp = {0x01, 0x01, 0x00};  // max_idle_timeout = 0: a minimal valid blob
const std::string kAlpn = "/iroh-qad/0";

std::shared_ptr<const X509Credentials> server_creds(const iroh::testing::TestCert& leaf) {
  auto r = X509Credentials::server_from_pem(leaf.cert_pem, leaf.key_pem);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

std::shared_ptr<const X509Credentials> trust(const std::string& ca_pem) {
  auto r = X509Credentials::client_trusting_pem(ca_pem);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.error().message);
  return r.ok() ? *r : nullptr;
}

struct Outcome {
  bool complete = false;
  std::optional<TlsError> client_error, server_error;
  Bytes client_hello;
  std::map<unsigned, Bytes> client_hello_exts;
};

// Extensions of a ClientHello handshake message, by type.
std::map<unsigned, Bytes> extensions_of(const Bytes& ch) {
  std::map<unsigned, Bytes> exts;
  std::size_t off = 4 + 2 + 32;
  off += 1 + ch[off];
  off += 2 + ((std::size_t{ch[off]} << 8) | ch[off + 1]);
  off += 1 + ch[off];
  const std::size_t end = off + 2 + ((std::size_t{ch[off]} << 8) | ch[off + 1]);
  off += 2;
  while (off + 4 <= end) {
    const unsigned type = (unsigned{ch[off]} << 8) | ch[off + 1];
    const std::size_t l = (std::size_t{ch[off + 2]} << 8) | ch[off + 3];
    exts[type] = Bytes(ch.begin() + off + 4, ch.begin() + off + 4 + l);
    off += 4 + l;
  }
  return exts;
}

Outcome handshake(TlsSession client, TlsSession server) {
  Outcome o;
  if (auto r = client.start(); !r) o.client_error = r.error();
  for (int round = 0; round < 20; ++round) {
    bool moved = false;
    for (auto* dir : {&client, &server}) {
      TlsSession& from = *dir;
      TlsSession& to = dir == &client ? server : client;
      auto& to_error = dir == &client ? o.server_error : o.client_error;
      while (from.next_event()) {
      }
      for (EncryptionLevel level : kLevels) {
        Bytes out = from.take_outgoing(level);
        if (out.empty()) continue;
        moved = true;
        if (dir == &client && o.client_hello.empty()) o.client_hello = out;
        if (to_error) continue;
        if (auto r = to.provide_data(level, out); !r) to_error = r.error();
      }
    }
    if (!moved) break;
  }
  if (!o.client_error && client.error()) o.client_error = client.error();
  if (!o.server_error && server.error()) o.server_error = server.error();
  o.complete = client.handshake_complete() && server.handshake_complete();
  if (!o.client_hello.empty()) o.client_hello_exts = extensions_of(o.client_hello);
  return o;
}

Outcome run(const std::string& ca_pem, const iroh::testing::TestCert& leaf,
            const std::string& server_name) {
  auto c = TlsSession::x509_client(trust(ca_pem), server_name, kAlpn, kTp);
  auto s = TlsSession::x509_server(server_creds(leaf), {kAlpn}, kTp);
  EXPECT_TRUE(c.ok() && s.ok());
  return handshake(std::move(c).value(), std::move(s).value());
}

TEST(TlsX509, HandshakeWithDnsNameSendsSni) {
  const auto& pki = TestPki::get();
  auto o = run(pki.ca.cert_pem, pki.leaf, "relay.test");
  ASSERT_TRUE(o.complete) << (o.client_error ? o.client_error->message : "")
                          << (o.server_error ? o.server_error->message : "");
  ASSERT_TRUE(o.client_hello_exts.count(0));
  const Bytes& sni = o.client_hello_exts.at(0);
  const std::string host(sni.end() - 10, sni.end());
  EXPECT_EQ(host, "relay.test");
  EXPECT_FALSE(o.client_hello_exts.count(19)) << "no raw-public-key certificate types";
  EXPECT_FALSE(o.client_hello_exts.count(20));
  ASSERT_TRUE(o.client_hello_exts.count(0x39));
  EXPECT_EQ(o.client_hello_exts.at(0x39), kTp);
}

TEST(TlsX509, HandshakeWithIpLiteralsSendsNoSni) {
  const auto& pki = TestPki::get();
  for (const char* ip : {"127.0.0.1", "::1"}) {
    auto o = run(pki.ca.cert_pem, pki.leaf, ip);
    ASSERT_TRUE(o.complete) << ip << ": " << (o.client_error ? o.client_error->message : "");
    EXPECT_FALSE(o.client_hello_exts.count(0)) << "IP literals are not sent as SNI";
  }
}

TEST(TlsX509, UnknownCaFailsWithAlert48) {
  const auto& pki = TestPki::get();
  auto o = run(pki.other_ca.cert_pem, pki.leaf, "relay.test");
  EXPECT_FALSE(o.complete);
  ASSERT_TRUE(o.client_error);
  EXPECT_EQ(o.client_error->alert, tls_alert::kUnknownCa) << o.client_error->message;
  EXPECT_NE(o.client_error->message.find("relay.test"), std::string::npos);
}

TEST(TlsX509, WrongNameFailsWithAlert42) {
  const auto& pki = TestPki::get();
  for (const char* name : {"other.test", "127.0.0.2", "::2"}) {
    auto o = run(pki.ca.cert_pem, pki.leaf, name);
    EXPECT_FALSE(o.complete) << name;
    ASSERT_TRUE(o.client_error) << name;
    EXPECT_EQ(o.client_error->alert, tls_alert::kBadCertificate)
        << name << ": " << o.client_error->message;
  }
}

TEST(TlsX509, ExpiredLeafFailsWithAlert45) {
  const auto& pki = TestPki::get();
  auto options = X509Maker::leaf("relay.test", {"relay.test"});
  options.not_before_offset = -7200;
  options.not_after_offset = -3600;
  const auto expired = X509Maker::make(options, &pki.ca);
  auto o = run(pki.ca.cert_pem, expired, "relay.test");
  EXPECT_FALSE(o.complete);
  ASSERT_TRUE(o.client_error);
  EXPECT_EQ(o.client_error->alert, tls_alert::kCertificateExpired) << o.client_error->message;
}

TEST(TlsX509, SelfSignedLeafIsUnknownCa) {
  const auto self = X509Maker::make(X509Maker::leaf("relay.test", {"relay.test"}));
  auto o = run(TestPki::get().ca.cert_pem, self, "relay.test");
  ASSERT_TRUE(o.client_error);
  EXPECT_EQ(o.client_error->alert, tls_alert::kUnknownCa) << o.client_error->message;
}

TEST(TlsX509, AlpnMismatchStillFailsWithAlert120) {
  const auto& pki = TestPki::get();
  auto c = TlsSession::x509_client(trust(pki.ca.cert_pem), "relay.test", "other/0", kTp);
  auto s = TlsSession::x509_server(server_creds(pki.leaf), {kAlpn}, kTp);
  ASSERT_TRUE(c.ok() && s.ok());
  auto o = handshake(std::move(c).value(), std::move(s).value());
  EXPECT_FALSE(o.complete);
  ASSERT_TRUE(o.server_error);
  EXPECT_EQ(o.server_error->alert, tls_alert::kNoApplicationProtocol);
}

TEST(TlsX509, RawPublicKeyClientCannotTalkToX509Server) {
  // The profiles do not mix: an iroh client offers only raw public keys.
  ByteArray<32> seed{};
  seed[0] = 9;
  const auto key = SecretKey::from_seed(seed);
  auto c = TlsSession::client(key, key.public_key(), kAlpn, kTp);
  auto s = TlsSession::x509_server(server_creds(TestPki::get().leaf), {kAlpn}, kTp);
  ASSERT_TRUE(c.ok() && s.ok());
  auto o = handshake(std::move(c).value(), std::move(s).value());
  EXPECT_FALSE(o.complete);
  EXPECT_TRUE(o.client_error || o.server_error);
}

TEST(TlsX509, CredentialErrorsAreClear) {
  auto bad = X509Credentials::server_from_pem("not a pem", "nor this");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("PEM"), std::string::npos);
  auto no_ca = X509Credentials::client_trusting_pem("garbage");
  EXPECT_FALSE(no_ca.ok());
  auto missing = X509Credentials::client_trusting_file("/nonexistent/ca.pem");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("/nonexistent/ca.pem"), std::string::npos);
  // A client needs trust anchors, a server an identity.
  auto pki_server = server_creds(TestPki::get().leaf);
  EXPECT_FALSE(TlsSession::x509_client(pki_server, "relay.test", kAlpn, kTp).ok());
  EXPECT_FALSE(TlsSession::x509_server(trust(TestPki::get().ca.cert_pem), {kAlpn}, kTp).ok());
}

}  // namespace
}  // namespace iroh::crypto

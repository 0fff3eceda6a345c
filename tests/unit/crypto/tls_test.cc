// TlsSession: in-memory handshakes between our client and our server (iroh's TLS profile).
#include "crypto/tls.h"

#include <gnutls/gnutls.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "base/key.h"
#include "crypto/packet_protection.h"
#include "test_bytes.h"

namespace iroh::crypto {
namespace {

using iroh::testing::hex;

SecretKey key_from_byte(std::uint8_t b) {
  ByteArray<32> seed;
  seed.fill(b);
  return SecretKey::from_seed(seed);
}

constexpr EncryptionLevel kLevels[] = {EncryptionLevel::kInitial, EncryptionLevel::kHandshake,
                                       EncryptionLevel::kOneRtt};

// What one side reported, collected from its events.
struct Observed {
  std::map<std::pair<EncryptionLevel, Direction>, SecretEvent> secrets;
  std::vector<Bytes> peer_tps;
  int complete_events = 0;
  std::vector<std::string> order;  // event kinds in order

  void drain(TlsSession& s) {
    while (auto ev = s.next_event()) {
      if (auto* sec = std::get_if<SecretEvent>(&*ev)) {
        EXPECT_FALSE(secrets.count({sec->level, sec->direction})) << "secret installed twice";
        order.push_back("secret");
        secrets.emplace(std::make_pair(sec->level, sec->direction), *sec);
      } else if (auto* tp = std::get_if<PeerTransportParamsEvent>(&*ev)) {
        order.push_back("tp");
        peer_tps.push_back(tp->raw);
      } else {
        order.push_back("complete");
        ++complete_events;
      }
    }
  }
};

struct Pair {
  TlsSession client;
  TlsSession server;
  Observed client_seen;
  Observed server_seen;
  std::optional<TlsError> client_error;
  std::optional<TlsError> server_error;
  std::size_t chunk = 0;  // 0 = deliver each flight whole, else in pieces of this size
  Bytes first_client_hello;

  // Moves one side's outgoing bytes into the other. Returns true if anything moved.
  bool shuttle(TlsSession& from, Observed& from_seen, TlsSession& to,
               std::optional<TlsError>& to_error) {
    from_seen.drain(from);
    bool moved = false;
    for (EncryptionLevel level : kLevels) {
      Bytes out = from.take_outgoing(level);
      if (out.empty()) continue;
      moved = true;
      if (&from == &client && level == EncryptionLevel::kInitial && first_client_hello.empty()) {
        first_client_hello = out;
      }
      if (to_error) continue;
      const std::size_t step = chunk == 0 ? out.size() : chunk;
      for (std::size_t off = 0; off < out.size() && !to_error; off += step) {
        const std::size_t n = std::min(step, out.size() - off);
        auto r = to.provide_data(level, ByteView(out).subspan(off, n));
        if (!r) to_error = r.error();
      }
    }
    return moved;
  }

  // Runs until nothing moves. Returns true if both sides completed.
  bool run() {
    auto r = client.start();
    if (!r) client_error = r.error();
    for (int round = 0; round < 20; ++round) {
      const bool a = shuttle(client, client_seen, server, server_error);
      const bool b = shuttle(server, server_seen, client, client_error);
      if (!a && !b) break;
    }
    client_seen.drain(client);
    server_seen.drain(server);
    return client.handshake_complete() && server.handshake_complete();
  }
};

const Bytes kClientTp =
    hex("0704801312d0 20048000ffff 0604801312d0 c0000000ff04de1b0243e8 0504801312d0 0e0105"
        "c0003d7f91120401 01 20 030245c0 0408ffffffffffffffff 0104 80007530 0902 4064 0802 4064"
        "3e01 07 0f08 8cdcba3b7acd37f2");
const Bytes kServerTp = hex(
    "0008 0102030405060708 0210 00112233445566778899aabbccddeeff 0f08 a1a2a3a4a5a6a7a8 3e01 07");

Pair make_pair(const SecretKey& ck, const SecretKey& sk, const EndpointId& expected,
               std::string client_alpn, std::vector<std::string> server_alpns) {
  auto c = TlsSession::client(ck, expected, std::move(client_alpn), kClientTp);
  auto s = TlsSession::server(sk, std::move(server_alpns), kServerTp);
  EXPECT_TRUE(c.ok());
  EXPECT_TRUE(s.ok());
  return Pair{std::move(c).value(), std::move(s).value(), {}, {}, {}, {}, 0, {}};
}

void expect_mirrored_secrets(const Observed& client, const Observed& server) {
  for (EncryptionLevel level : {EncryptionLevel::kHandshake, EncryptionLevel::kOneRtt}) {
    for (auto [cdir, sdir] : {std::pair{Direction::kWrite, Direction::kRead},
                              std::pair{Direction::kRead, Direction::kWrite}}) {
      auto c = client.secrets.find({level, cdir});
      auto s = server.secrets.find({level, sdir});
      ASSERT_NE(c, client.secrets.end());
      ASSERT_NE(s, server.secrets.end());
      EXPECT_EQ(c->second.secret, s->second.secret);
      EXPECT_EQ(c->second.aead, s->second.aead);
      EXPECT_EQ(c->second.secret.size(), hash_length(aead_hash(c->second.aead)));
    }
  }
  // The two directions differ.
  EXPECT_NE(client.secrets.at({EncryptionLevel::kHandshake, Direction::kRead}).secret,
            client.secrets.at({EncryptionLevel::kHandshake, Direction::kWrite}).secret);
  EXPECT_NE(client.secrets.at({EncryptionLevel::kOneRtt, Direction::kRead}).secret,
            client.secrets.at({EncryptionLevel::kHandshake, Direction::kRead}).secret);
  // No 0-RTT without resumption.
  EXPECT_FALSE(client.secrets.count({EncryptionLevel::kZeroRtt, Direction::kWrite}));
  EXPECT_EQ(client.secrets.size(), 4u);
  EXPECT_EQ(server.secrets.size(), 4u);
}

TEST(TlsSession, HandshakeCompletesWithMirroredSecrets) {
  const SecretKey ck = key_from_byte(1), sk = key_from_byte(2);
  Pair p = make_pair(ck, sk, sk.public_key(), "test/echo/0", {"test/echo/0"});
  ASSERT_TRUE(p.run()) << (p.client_error ? p.client_error->message : "")
                       << (p.server_error ? p.server_error->message : "");
  EXPECT_FALSE(p.client_error);
  EXPECT_FALSE(p.server_error);

  expect_mirrored_secrets(p.client_seen, p.server_seen);

  // Transport parameters intact both ways, reported once, before completion.
  ASSERT_EQ(p.server_seen.peer_tps.size(), 1u);
  EXPECT_EQ(p.server_seen.peer_tps[0], kClientTp);
  ASSERT_EQ(p.client_seen.peer_tps.size(), 1u);
  EXPECT_EQ(p.client_seen.peer_tps[0], kServerTp);
  EXPECT_EQ(p.client.peer_transport_params(), kServerTp);
  EXPECT_EQ(p.server.peer_transport_params(), kClientTp);

  EXPECT_EQ(p.client_seen.complete_events, 1);
  EXPECT_EQ(p.server_seen.complete_events, 1);
  EXPECT_EQ(p.client_seen.order.back(), "complete");
  EXPECT_EQ(p.server_seen.order.back(), "complete");

  EXPECT_EQ(p.client.alpn(), std::optional<std::string>("test/echo/0"));
  EXPECT_EQ(p.server.alpn(), std::optional<std::string>("test/echo/0"));
  ASSERT_TRUE(p.client.peer_id());
  ASSERT_TRUE(p.server.peer_id());
  EXPECT_EQ(*p.client.peer_id(), sk.public_key());
  EXPECT_EQ(*p.server.peer_id(), ck.public_key());
  ASSERT_TRUE(p.client.aead());
  EXPECT_EQ(p.client.aead(), p.server.aead());

  // Nothing left to send after completion (no session tickets: resumption is not offered).
  EXPECT_FALSE(p.client.has_outgoing());
  EXPECT_FALSE(p.server.has_outgoing());
  EXPECT_FALSE(p.client.error());
  EXPECT_FALSE(p.server.error());
}

TEST(TlsSession, SecretsBuildPacketProtectionThatInteroperates) {
  const SecretKey ck = key_from_byte(3), sk = key_from_byte(4);
  Pair p = make_pair(ck, sk, sk.public_key(), "a", {"a"});
  ASSERT_TRUE(p.run());
  for (EncryptionLevel level : {EncryptionLevel::kHandshake, EncryptionLevel::kOneRtt}) {
    const auto& cw = p.client_seen.secrets.at({level, Direction::kWrite});
    const auto& sr = p.server_seen.secrets.at({level, Direction::kRead});
    auto seal = PacketProtection::from_secret(cw.aead, cw.secret, level);
    auto open = PacketProtection::from_secret(sr.aead, sr.secret, level);
    ASSERT_TRUE(seal.ok());
    ASSERT_TRUE(open.ok());
    const Bytes aad = {0xc3, 0x00, 0x00, 0x00, 0x01};
    Bytes buf = {'h', 'e', 'l', 'l', 'o'};
    buf.resize(buf.size() + kAeadTagLength);
    ASSERT_TRUE(seal->aead().seal(aad, buf, 7).ok());
    auto n = open->aead().open(aad, buf, 7);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(Bytes(buf.begin(), buf.begin() + *n), (Bytes{'h', 'e', 'l', 'l', 'o'}));
  }
}

TEST(TlsSession, ByteByByteDeliveryIsReassembled) {
  const SecretKey ck = key_from_byte(5), sk = key_from_byte(6);
  Pair p = make_pair(ck, sk, sk.public_key(), "x/1", {"x/1"});
  p.chunk = 1;
  ASSERT_TRUE(p.run()) << (p.client_error ? p.client_error->message : "")
                       << (p.server_error ? p.server_error->message : "");
  expect_mirrored_secrets(p.client_seen, p.server_seen);
}

TEST(TlsSession, ClientHelloProfile) {
  const SecretKey ck = key_from_byte(7), sk = key_from_byte(8);
  Pair p = make_pair(ck, sk, sk.public_key(), "test/echo/0", {"test/echo/0"});
  ASSERT_TRUE(p.run());
  const Bytes& ch = p.first_client_hello;
  ASSERT_GT(ch.size(), 4u);
  EXPECT_EQ(ch[0], 0x01);  // ClientHello, a bare handshake message (no record header)
  const std::size_t len = (std::size_t{ch[1]} << 16) | (std::size_t{ch[2]} << 8) | ch[3];
  EXPECT_EQ(len + 4, ch.size());
  // Walk to the extensions and collect their types.
  std::size_t off = 4 + 2 + 32;
  off += 1 + ch[off];  // legacy_session_id (empty: no compat mode)
  EXPECT_EQ(ch[4 + 2 + 32], 0) << "compat mode must be off (empty legacy_session_id)";
  off += 2 + ((std::size_t{ch[off]} << 8) | ch[off + 1]);  // cipher_suites
  off += 1 + ch[off];                                      // compression
  const std::size_t ext_end = off + 2 + ((std::size_t{ch[off]} << 8) | ch[off + 1]);
  off += 2;
  std::map<unsigned, Bytes> exts;
  while (off + 4 <= ext_end) {
    const unsigned type = (unsigned{ch[off]} << 8) | ch[off + 1];
    const std::size_t l = (std::size_t{ch[off + 2]} << 8) | ch[off + 3];
    exts[type] = Bytes(ch.begin() + off + 4, ch.begin() + off + 4 + l);
    off += 4 + l;
  }
  EXPECT_EQ(off, ext_end);
  EXPECT_FALSE(exts.count(0)) << "no SNI";
  ASSERT_TRUE(exts.count(0x39));
  EXPECT_EQ(exts[0x39], kClientTp);
  ASSERT_TRUE(exts.count(16));
  EXPECT_EQ(exts[16], hex("000c 0b 746573742f6563686f2f30"));  // exactly one ALPN
  EXPECT_EQ(exts[13], hex("0002 0807"));                       // signature_algorithms: ed25519
  EXPECT_EQ(exts[19], hex("01 02"));                           // client_certificate_type: RPK
  EXPECT_EQ(exts[20], hex("01 02"));                           // server_certificate_type: RPK
  EXPECT_EQ(exts[43], hex("02 0304"));                         // supported_versions: TLS 1.3
  ASSERT_GE(exts[51].size(), 4u);
  EXPECT_EQ(exts[51][2], 0x00);  // key_share: first share is X25519 (0x001d)
  EXPECT_EQ(exts[51][3], 0x1d);
}

TEST(TlsSession, WrongExpectedServerIdFailsOnClient) {
  const SecretKey ck = key_from_byte(9), sk = key_from_byte(10), other = key_from_byte(11);
  Pair p = make_pair(ck, sk, other.public_key(), "a", {"a"});
  EXPECT_FALSE(p.run());
  ASSERT_TRUE(p.client_error);
  EXPECT_EQ(p.client_error->alert, tls_alert::kBadCertificate);
  EXPECT_EQ(p.client_error->quic_error_code(), 0x100u + 42);
  EXPECT_NE(p.client_error->message.find("mismatch"), std::string::npos);
  EXPECT_NE(p.client_error->message.find(other.public_key().to_hex()), std::string::npos);
  EXPECT_NE(p.client_error->message.find(sk.public_key().to_hex()), std::string::npos);
  EXPECT_FALSE(p.client.handshake_complete());
  EXPECT_FALSE(p.client.peer_id());
  // The client never sent its Finished; sticky error.
  EXPECT_FALSE(p.client.has_outgoing());
  EXPECT_TRUE(p.client.error());
  EXPECT_FALSE(p.client.provide_data(EncryptionLevel::kHandshake, hex("00")).ok());
  // No 1-RTT write secret was handed to the engine... except GnuTLS installs the client's
  // application secrets when it receives the server Finished, which fails first here.
  EXPECT_FALSE(p.server.handshake_complete());
}

TEST(TlsSession, AlpnMismatchFailsWithAlert120) {
  const SecretKey ck = key_from_byte(12), sk = key_from_byte(13);
  Pair p = make_pair(ck, sk, sk.public_key(), "wanted/1", {"other/1", "other/2"});
  EXPECT_FALSE(p.run());
  ASSERT_TRUE(p.server_error);
  EXPECT_EQ(p.server_error->alert, tls_alert::kNoApplicationProtocol);
  EXPECT_EQ(p.server_error->quic_error_code(), 0x178u);
  EXPECT_FALSE(p.server.handshake_complete());
  EXPECT_FALSE(p.client.handshake_complete());
  // The server produced no ServerHello.
  EXPECT_TRUE(p.server_seen.secrets.empty());
}

TEST(TlsSession, ServerWithSeveralAlpnsPicksTheClients) {
  const SecretKey ck = key_from_byte(14), sk = key_from_byte(15);
  Pair p = make_pair(ck, sk, sk.public_key(), "proto/b", {"proto/a", "proto/b", "proto/c"});
  ASSERT_TRUE(p.run());
  EXPECT_EQ(p.server.alpn(), std::optional<std::string>("proto/b"));
  EXPECT_EQ(p.client.alpn(), std::optional<std::string>("proto/b"));
}

TEST(TlsSession, ServerAcceptsClientHelloWithSni) {
  const SecretKey ck = key_from_byte(16), sk = key_from_byte(17);
  Pair p = make_pair(ck, sk, sk.public_key(), "a", {"a"});
  ASSERT_TRUE(p.client.set_server_name_for_testing(sk.public_key().to_tls_name()).ok());
  ASSERT_TRUE(p.run());
  EXPECT_EQ(*p.server.peer_id(), ck.public_key());
}

TEST(TlsSession, GarbageCryptoBytesFailCleanly) {
  const SecretKey sk = key_from_byte(18);
  const std::vector<Bytes> inputs = {
      hex("ffffffffffffffff"),
      hex("01000004 03030000"),  // ClientHello with a truncated body
      hex("0100000a 0303 0000000000000000"),
      hex("02000000"),  // ServerHello sent to a server
      Bytes(5000, 0x16),
  };
  {  // An incomplete message header is simply buffered.
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(s.ok());
    EXPECT_TRUE(s->provide_data(EncryptionLevel::kInitial, hex("0100")).ok());
    EXPECT_FALSE(s->has_outgoing());
  }
  for (const Bytes& in : inputs) {
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(s.ok());
    auto r = s->provide_data(EncryptionLevel::kInitial, in);
    ASSERT_FALSE(r.ok());
    ASSERT_TRUE(s->error());
    // Sticky: the same error again.
    auto again = s->provide_data(EncryptionLevel::kInitial, in);
    ASSERT_FALSE(again.ok());
    EXPECT_EQ(again.error().message, r.error().message);
    EXPECT_FALSE(r.error().message.empty());
    EXPECT_GE(r.error().quic_error_code(), 0x100u);
    EXPECT_LE(r.error().quic_error_code(), 0x1ffu);
    EXPECT_FALSE(s->has_outgoing());
  }
  // Garbage at the Handshake level to a client waiting for its ServerHello.
  auto c = TlsSession::client(key_from_byte(19), sk.public_key(), "a", kClientTp);
  ASSERT_TRUE(c.ok());
  ASSERT_TRUE(c->start().ok());
  EXPECT_TRUE(c->has_outgoing());
  auto r = c->provide_data(EncryptionLevel::kInitial, hex("0200000a 0303 00112233445566778899"));
  EXPECT_FALSE(r.ok());
}

TEST(TlsSession, TruncatedClientHelloIsBufferedThenCompleted) {
  const SecretKey ck = key_from_byte(20), sk = key_from_byte(21);
  auto c = TlsSession::client(ck, sk.public_key(), "a", kClientTp);
  auto s = TlsSession::server(sk, {"a"}, kServerTp);
  ASSERT_TRUE(c.ok() && s.ok());
  ASSERT_TRUE(c->start().ok());
  const Bytes ch = c->take_outgoing(EncryptionLevel::kInitial);
  ASSERT_TRUE(s->provide_data(EncryptionLevel::kInitial, ByteView(ch).first(10)).ok());
  EXPECT_FALSE(s->has_outgoing());
  ASSERT_TRUE(s->provide_data(EncryptionLevel::kInitial, ByteView(ch).subspan(10)).ok());
  EXPECT_FALSE(s->take_outgoing(EncryptionLevel::kInitial).empty());    // ServerHello
  EXPECT_FALSE(s->take_outgoing(EncryptionLevel::kHandshake).empty());  // EE..Finished
}

TEST(TlsSession, ApiMisuse) {
  const SecretKey ck = key_from_byte(22), sk = key_from_byte(23);
  EXPECT_FALSE(TlsSession::server(sk, {}, kServerTp).ok());
  EXPECT_FALSE(TlsSession::client(ck, sk.public_key(), "", kClientTp).ok());
  auto c = TlsSession::client(ck, sk.public_key(), "a", kClientTp);
  ASSERT_TRUE(c.ok());
  EXPECT_FALSE(c->provide_data(EncryptionLevel::kInitial, hex("00")).ok());  // before start()
  ASSERT_TRUE(c->start().ok());
  EXPECT_FALSE(c->start().ok());
  auto s = TlsSession::server(sk, {"a"}, kServerTp);
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->start().ok());
  // Moving keeps the session usable (callbacks point at the heap Impl, not the handle).
  TlsSession moved = std::move(*c);
  EXPECT_TRUE(moved.is_client());
  EXPECT_FALSE(moved.take_outgoing(EncryptionLevel::kInitial).empty());
}

TEST(TlsSession, MissingTransportParametersFailWithAlert109) {
  const SecretKey ck = key_from_byte(27), sk = key_from_byte(28);
  {  // An empty blob makes GnuTLS omit the extension: the server must refuse the ClientHello.
    auto c = TlsSession::client(ck, sk.public_key(), "a", {});
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(c.ok() && s.ok());
    Pair p{std::move(*c), std::move(*s), {}, {}, {}, {}, 0, {}};
    EXPECT_FALSE(p.run());
    ASSERT_TRUE(p.server_error);
    EXPECT_EQ(p.server_error->alert, tls_alert::kMissingExtension);
    EXPECT_TRUE(p.server_seen.secrets.empty());
  }
  {  // Server without transport parameters: the client refuses to complete.
    auto c = TlsSession::client(ck, sk.public_key(), "a", kClientTp);
    auto s = TlsSession::server(sk, {"a"}, {});
    ASSERT_TRUE(c.ok() && s.ok());
    Pair p{std::move(*c), std::move(*s), {}, {}, {}, {}, 0, {}};
    EXPECT_FALSE(p.run());
    ASSERT_TRUE(p.client_error);
    EXPECT_EQ(p.client_error->alert, tls_alert::kMissingExtension);
    EXPECT_FALSE(p.client.handshake_complete());
    EXPECT_FALSE(p.server.handshake_complete());
  }
}

TEST(TlsSession, PostHandshakeMessages) {
  const SecretKey ck = key_from_byte(29), sk = key_from_byte(30);
  // A NewSessionTicket from the server (Rust iroh may send them) is accepted and ignored.
  {
    Pair p = make_pair(ck, sk, sk.public_key(), "a", {"a"});
    ASSERT_TRUE(p.run());
    const Bytes ticket = hex("04000011 00001c20 01020304 00 0004 deadbeef 0000");
    // Split to check post-handshake framing too.
    ASSERT_TRUE(p.client.provide_data(EncryptionLevel::kOneRtt, ByteView(ticket).first(6)).ok());
    ASSERT_TRUE(p.client.provide_data(EncryptionLevel::kOneRtt, ByteView(ticket).subspan(6)).ok());
    EXPECT_FALSE(p.client.next_event());
    EXPECT_FALSE(p.client.has_outgoing());
    // The same message to a server is unexpected.
    auto r = p.server.provide_data(EncryptionLevel::kOneRtt, ticket);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().alert, tls_alert::kUnexpectedMessage);
  }
  // TLS KeyUpdate is forbidden in QUIC (RFC 9001 §6): error, and no new secrets appear.
  for (bool to_client : {true, false}) {
    Pair p = make_pair(ck, sk, sk.public_key(), "a", {"a"});
    ASSERT_TRUE(p.run());
    TlsSession& victim = to_client ? p.client : p.server;
    auto r = victim.provide_data(EncryptionLevel::kOneRtt, hex("18000001 00"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().alert, tls_alert::kUnexpectedMessage);
    EXPECT_EQ(r.error().quic_error_code(), 0x10au);
    EXPECT_FALSE(victim.next_event());
  }
}

TEST(TlsSession, DataAtTheWrongLevelIsRejected) {
  const SecretKey ck = key_from_byte(31), sk = key_from_byte(32);
  {  // ClientHello at the Handshake level.
    auto c = TlsSession::client(ck, sk.public_key(), "a", kClientTp);
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(c.ok() && s.ok());
    ASSERT_TRUE(c->start().ok());
    auto r =
        s->provide_data(EncryptionLevel::kHandshake, c->take_outgoing(EncryptionLevel::kInitial));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().alert, tls_alert::kUnexpectedMessage);
    EXPECT_FALSE(s->has_outgoing());
  }
  {  // The server's whole flight (ServerHello + EncryptedExtensions..Finished) at Initial.
    auto c = TlsSession::client(ck, sk.public_key(), "a", kClientTp);
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(c.ok() && s.ok());
    ASSERT_TRUE(c->start().ok());
    ASSERT_TRUE(
        s->provide_data(EncryptionLevel::kInitial, c->take_outgoing(EncryptionLevel::kInitial))
            .ok());
    Bytes flight = s->take_outgoing(EncryptionLevel::kInitial);
    append(flight, s->take_outgoing(EncryptionLevel::kHandshake));
    auto r = c->provide_data(EncryptionLevel::kInitial, flight);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().alert, tls_alert::kUnexpectedMessage);
    EXPECT_FALSE(c->handshake_complete());
  }
  {  // CRYPTO data can never arrive in 0-RTT packets.
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(s.ok());
    EXPECT_FALSE(s->provide_data(EncryptionLevel::kZeroRtt, hex("01")).ok());
  }
  {  // An absurd message length fails at once rather than buffering.
    auto s = TlsSession::server(sk, {"a"}, kServerTp);
    ASSERT_TRUE(s.ok());
    auto r = s->provide_data(EncryptionLevel::kInitial, hex("01ffffff"));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().alert, tls_alert::kDecodeError);
  }
}

// A bare GnuTLS QUIC client that loads no key of its own (the probe's --noclientcert), to show
// that our server insists on client authentication.
struct KeylessGnutlsClient {
  gnutls_session_t session = nullptr;
  gnutls_certificate_credentials_t cred = nullptr;
  std::map<int, Bytes> out;  // by gnutls level

  KeylessGnutlsClient() {
    EXPECT_EQ(gnutls_certificate_allocate_credentials(&cred), 0);
    EXPECT_EQ(gnutls_init(&session, GNUTLS_CLIENT | GNUTLS_ENABLE_RAWPK |
                                        GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_NO_TICKETS),
              0);
    gnutls_session_set_ptr(session, this);
    EXPECT_EQ(gnutls_priority_set_direct(
                  session,
                  "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:-SIGN-ALL:"
                  "+SIGN-EDDSA-ED25519:-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK",
                  nullptr),
              0);
    EXPECT_EQ(gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, cred), 0);
    gnutls_handshake_set_secret_function(
        session, [](gnutls_session_t, gnutls_record_encryption_level_t, const void*, const void*,
                    size_t) { return 0; });
    gnutls_handshake_set_read_function(
        session, [](gnutls_session_t s, gnutls_record_encryption_level_t level,
                    gnutls_handshake_description_t, const void* data, size_t size) {
          auto* self = static_cast<KeylessGnutlsClient*>(gnutls_session_get_ptr(s));
          append(self->out[level], ByteView(static_cast<const std::uint8_t*>(data), size));
          return 0;
        });
    gnutls_alert_set_read_function(
        session, [](gnutls_session_t, gnutls_record_encryption_level_t, gnutls_alert_level_t,
                    gnutls_alert_description_t) { return 0; });
    EXPECT_EQ(gnutls_session_ext_register(
                  session, "qtp", 0x39, GNUTLS_EXT_APPLICATION,
                  [](gnutls_session_t, const unsigned char*, size_t) { return 0; },
                  [](gnutls_session_t, gnutls_buffer_t b) {
                    return gnutls_buffer_append_data(b, kClientTp.data(), kClientTp.size());
                  },
                  nullptr, nullptr, nullptr,
                  GNUTLS_EXT_FLAG_TLS | GNUTLS_EXT_FLAG_CLIENT_HELLO | GNUTLS_EXT_FLAG_EE),
              0);
    const gnutls_datum_t alpn{
        const_cast<unsigned char*>(reinterpret_cast<const unsigned char*>("a")), 1};
    EXPECT_EQ(gnutls_alpn_set_protocols(session, &alpn, 1, 0), 0);
  }
  ~KeylessGnutlsClient() {
    gnutls_deinit(session);
    gnutls_certificate_free_credentials(cred);
  }
};

TEST(TlsSession, ServerRequiresClientAuthentication) {
  const SecretKey sk = key_from_byte(33);
  auto s = TlsSession::server(sk, {"a"}, kServerTp);
  ASSERT_TRUE(s.ok());
  KeylessGnutlsClient c;
  EXPECT_EQ(gnutls_handshake(c.session), GNUTLS_E_AGAIN);
  std::optional<TlsError> server_error;
  for (int round = 0; round < 5 && !server_error; ++round) {
    bool moved = false;
    for (auto& [level, bytes] : c.out) {
      if (bytes.empty()) continue;
      moved = true;
      const auto our_level = level == GNUTLS_ENCRYPTION_LEVEL_INITIAL ? EncryptionLevel::kInitial
                                                                      : EncryptionLevel::kHandshake;
      auto r = s->provide_data(our_level, std::exchange(bytes, Bytes{}));
      if (!r) server_error = r.error();
    }
    for (auto [our_level, glevel] :
         {std::pair{EncryptionLevel::kInitial, GNUTLS_ENCRYPTION_LEVEL_INITIAL},
          std::pair{EncryptionLevel::kHandshake, GNUTLS_ENCRYPTION_LEVEL_HANDSHAKE}}) {
      const Bytes b = s->take_outgoing(our_level);
      if (b.empty()) continue;
      moved = true;
      (void)gnutls_handshake_write(c.session, glevel, b.data(), b.size());
      (void)gnutls_handshake(c.session);
    }
    if (!moved) break;
  }
  ASSERT_TRUE(server_error) << "server accepted a client without a key";
  EXPECT_FALSE(s->handshake_complete());
  EXPECT_FALSE(s->peer_id());
  EXPECT_FALSE(server_error->message.empty());
}

TEST(TlsSession, ReplayedClientFlightIsRejectedWithoutAuthenticating) {
  // Two servers see the same ClientHello; the client's Certificate/CertificateVerify/Finished for
  // one of them is replayed to the other (whose transcript has a different server random).
  const SecretKey ck = key_from_byte(34), sk = key_from_byte(35);
  auto c = TlsSession::client(ck, sk.public_key(), "a", kClientTp);
  auto s1 = TlsSession::server(sk, {"a"}, kServerTp);
  auto s2 = TlsSession::server(sk, {"a"}, kServerTp);
  ASSERT_TRUE(c.ok() && s1.ok() && s2.ok());
  ASSERT_TRUE(c->start().ok());
  const Bytes ch = c->take_outgoing(EncryptionLevel::kInitial);
  ASSERT_TRUE(s1->provide_data(EncryptionLevel::kInitial, ch).ok());
  ASSERT_TRUE(s2->provide_data(EncryptionLevel::kInitial, ch).ok());
  ASSERT_TRUE(
      c->provide_data(EncryptionLevel::kInitial, s1->take_outgoing(EncryptionLevel::kInitial))
          .ok());
  ASSERT_TRUE(
      c->provide_data(EncryptionLevel::kHandshake, s1->take_outgoing(EncryptionLevel::kHandshake))
          .ok());
  ASSERT_TRUE(c->handshake_complete());
  const Bytes flight = c->take_outgoing(EncryptionLevel::kHandshake);
  auto r = s2->provide_data(EncryptionLevel::kHandshake, flight);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().alert, 51);  // decrypt_error: CertificateVerify does not verify
  EXPECT_FALSE(s2->peer_id()) << "peer id must only be reported after proof of possession";
  EXPECT_FALSE(s2->handshake_complete());
  // The genuine server accepts it.
  ASSERT_TRUE(s1->provide_data(EncryptionLevel::kHandshake, flight).ok());
  EXPECT_TRUE(s1->handshake_complete());
  EXPECT_EQ(*s1->peer_id(), ck.public_key());
}

TEST(TlsSession, KeylogCallbackSeesSecrets) {
  const SecretKey ck = key_from_byte(24), sk = key_from_byte(25);
  Pair p = make_pair(ck, sk, sk.public_key(), "a", {"a"});
  std::map<std::string, Bytes> logged;
  p.client.set_keylog_callback([&](std::string_view label, ByteView random, ByteView secret) {
    EXPECT_EQ(random.size(), 32u);
    logged[std::string(label)] = Bytes(secret.begin(), secret.end());
  });
  ASSERT_TRUE(p.run());
  ASSERT_TRUE(logged.count("CLIENT_HANDSHAKE_TRAFFIC_SECRET"));
  EXPECT_EQ(logged["CLIENT_HANDSHAKE_TRAFFIC_SECRET"],
            p.client_seen.secrets.at({EncryptionLevel::kHandshake, Direction::kWrite}).secret);
  EXPECT_TRUE(logged.count("SERVER_TRAFFIC_SECRET_0"));
}

TEST(TlsSession, SpkiHelpers) {
  const SecretKey k = key_from_byte(26);
  const Bytes spki = ed25519_spki(k.public_key());
  EXPECT_EQ(spki.size(), 44u);
  EXPECT_EQ(Bytes(spki.begin(), spki.begin() + 12), hex("302a300506032b6570032100"));
  auto id = endpoint_id_from_spki(spki);
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, k.public_key());
  Bytes bad = spki;
  bad[3] ^= 1;
  EXPECT_FALSE(endpoint_id_from_spki(bad).ok());
  EXPECT_FALSE(endpoint_id_from_spki(ByteView(spki).first(43)).ok());
}

}  // namespace
}  // namespace iroh::crypto

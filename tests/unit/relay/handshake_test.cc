// Relay challenge/response handshake (spec §6.4), against the handshake captured from iroh 1.0.2.
#include "relay/handshake.h"

#include <gtest/gtest.h>

#include <string>

#include "base/blake3.h"
#include "base/key.h"
#include "relay/frame.h"
#include "test_bytes.h"

namespace iroh::relay {
namespace {

using iroh::testing::cat;
using iroh::testing::hex;

// spec §6.4 captured vector: client sk = bytes 0x00..0x1f, challenge = 0x10..0x1f.
SecretKey capture_client_key() {
  ByteArray<32> seed;
  for (std::size_t i = 0; i < seed.size(); ++i) seed[i] = static_cast<std::uint8_t>(i);
  return SecretKey::from_seed(seed);
}

ByteArray<16> capture_challenge() {
  ByteArray<16> c;
  for (std::size_t i = 0; i < c.size(); ++i) c[i] = static_cast<std::uint8_t>(0x10 + i);
  return c;
}

constexpr std::string_view kClientAuthHex =
    "01 03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
    "40 3f2532023e0d48d3871cd4f1953b128b5e155ae899a482bac8bc5bd52bb37dfccd6fa7762961684ae326f2d4"
    "0d2dea96f92e32f1a03d21006909d4af3a28f700";

TEST(RelayHandshake, ContextString) {
  EXPECT_EQ(kChallengeSignatureContext, "iroh-relay handshake v1 challenge signature");
  EXPECT_EQ(kReasonSignatureInvalid, "signature invalid");
}

TEST(RelayHandshake, MessageIsDeriveKeyOfChallenge) {
  const auto challenge = capture_challenge();
  EXPECT_EQ(client_auth_message(challenge),
            blake3::derive_key("iroh-relay handshake v1 challenge signature", challenge));
  ByteArray<16> other = challenge;
  other[15] ^= 1;
  EXPECT_NE(client_auth_message(challenge), client_auth_message(other));
}

TEST(RelayHandshake, CapturedServerChallenge) {
  const Bytes wire = hex("00 101112131415161718191a1b1c1d1e1f");
  EXPECT_EQ(encode(ServerChallenge{capture_challenge()}), wire);
  for (auto v : {ProtocolVersion::V1, ProtocolVersion::V2}) {
    auto decoded = decode(wire, v);
    ASSERT_TRUE(decoded.ok()) << decoded.error().message;
    EXPECT_EQ(std::get<ServerChallenge>(*decoded).challenge, capture_challenge());
  }
}

TEST(RelayHandshake, CapturedClientAuthBytes) {
  const SecretKey sk = capture_client_key();
  EXPECT_EQ(sk.public_key().to_hex(),
            "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
  const ClientAuth auth = sign_challenge(sk, capture_challenge());
  const Bytes wire = encode(auth);
  EXPECT_EQ(wire.size(), 98u);
  EXPECT_EQ(wire, hex(kClientAuthHex));
}

TEST(RelayHandshake, CapturedClientAuthVerifies) {
  auto decoded = decode(hex(kClientAuthHex), ProtocolVersion::V2);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  const auto& auth = std::get<ClientAuth>(*decoded);
  EXPECT_EQ(auth.public_key, capture_client_key().public_key());
  auto ok = verify_client_auth(auth, capture_challenge());
  EXPECT_TRUE(ok.ok()) << ok.error().message;
}

TEST(RelayHandshake, FlippedBitsAreRejected) {
  const ClientAuth good = sign_challenge(capture_client_key(), capture_challenge());
  // Every single-bit flip of the signature.
  for (std::size_t bit = 0; bit < 64 * 8; ++bit) {
    ClientAuth bad = good;
    bad.signature[bit / 8] ^= static_cast<std::uint8_t>(1u << (bit % 8));
    auto r = verify_client_auth(bad, capture_challenge());
    ASSERT_FALSE(r.ok()) << "signature bit " << bit;
    EXPECT_EQ(r.error().message, "signature invalid");
  }
  // A flipped challenge bit.
  ByteArray<16> other = capture_challenge();
  other[0] ^= 0x80;
  auto r = verify_client_auth(good, other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "signature invalid");
  // Somebody else's key.
  ByteArray<32> seed;
  seed.fill(0x2a);
  ClientAuth wrong_key = good;
  wrong_key.public_key = SecretKey::from_seed(seed).public_key();
  EXPECT_FALSE(verify_client_auth(wrong_key, capture_challenge()).ok());
}

TEST(RelayHandshake, FlippedBitOnTheWireIsRejected) {
  // A bit flipped in the captured message's signature still decodes, but fails verification.
  Bytes wire = hex(kClientAuthHex);
  wire[40] ^= 0x04;
  auto decoded = decode(wire, ProtocolVersion::V2);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  auto r = verify_client_auth(std::get<ClientAuth>(*decoded), capture_challenge());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, kReasonSignatureInvalid);
}

TEST(RelayHandshake, SignVerifyRoundTrip) {
  for (int i = 0; i < 8; ++i) {
    ByteArray<32> seed;
    seed.fill(static_cast<std::uint8_t>(i * 31 + 1));
    ByteArray<16> challenge;
    challenge.fill(static_cast<std::uint8_t>(i));
    const SecretKey sk = SecretKey::from_seed(seed);
    const ClientAuth auth = sign_challenge(sk, challenge);
    EXPECT_EQ(auth.public_key, sk.public_key());
    EXPECT_TRUE(verify_client_auth(auth, challenge).ok());
    // Deterministic.
    EXPECT_EQ(sign_challenge(sk, challenge), auth);
  }
}

TEST(RelayHandshake, CapturedConfirmAndPingPong) {
  EXPECT_EQ(encode(ServerConfirmsAuth{}), hex("02"));
  auto confirms = decode(hex("02"), ProtocolVersion::V2);
  ASSERT_TRUE(confirms.ok());
  EXPECT_TRUE(std::holds_alternative<ServerConfirmsAuth>(*confirms));

  // The client's first Ping (random payload chosen by the client in the capture).
  const Ping client_ping{{0x7b, 0xb4, 0x5b, 0xfb, 0x27, 0x46, 0x96, 0x2c}};
  EXPECT_EQ(encode(client_ping), hex("09 7bb45bfb2746962c"));
  auto ping = decode(hex("09 7bb45bfb2746962c"), ProtocolVersion::V2);
  ASSERT_TRUE(ping.ok());
  EXPECT_EQ(std::get<Ping>(*ping), client_ping);

  // Server Ping [0x2a; 8] and the client's echoing Pong.
  auto server_ping = decode(hex("09 2a2a2a2a2a2a2a2a"), ProtocolVersion::V2);
  ASSERT_TRUE(server_ping.ok());
  const Pong echo{std::get<Ping>(*server_ping).data};
  EXPECT_EQ(encode(echo), hex("0a 2a2a2a2a2a2a2a2a"));
}

TEST(RelayHandshake, DenialFrame) {
  EXPECT_EQ(encode(ServerDeniesAuth{std::string(kReasonSignatureInvalid)}),
            hex("03 11 7369676e617475726520696e76616c6964"));
}

}  // namespace
}  // namespace iroh::relay

// AEAD payload protection (RFC 9001 §5.3) against RFC 9001 Appendix A.2, A.3 and A.5 and the
// GCM specification's AES-256 vectors.
#include "crypto/aead.h"

#include <gtest/gtest.h>

#include "rfc9001_vectors.h"

namespace iroh::crypto {
namespace {

using test::hex;
using test::to_hex_string;
namespace v = test::rfc9001;

Bytes with_tag_room(Bytes b) {
  b.resize(b.size() + kAeadTagLength);
  return b;
}

TEST(Aead, NonceIsIvXorLeftPaddedPacketNumber) {
  Nonce iv{};
  const Bytes ivb = hex(v::kClientIv);
  std::copy(ivb.begin(), ivb.end(), iv.begin());
  // RFC 9001 A.2: packet number 2 → nonce fa044b2f42a3fd3b46fb255e.
  EXPECT_EQ(to_hex_string(packet_nonce(iv, 2)), "fa044b2f42a3fd3b46fb255e");
  EXPECT_EQ(to_hex_string(packet_nonce(iv, 0)), v::kClientIv);
  // A.5: 654360564 = 0x2700bff4 → e0459b3474bdd0e46d417eb0.
  Nonce iv5{};
  const Bytes iv5b = hex(v::kChaChaIv);
  std::copy(iv5b.begin(), iv5b.end(), iv5.begin());
  EXPECT_EQ(to_hex_string(packet_nonce(iv5, v::kChaChaPacketNumber)), "e0459b3474bdd0e46d417eb0");
}

TEST(Aead, MultipathNonceMixesThePathIdIntoTheFirstFourBytes) {
  // draft-ietf-quic-multipath, "Nonce calculation": IV 6b26114b9cba2b63a9e8dd4f, path id 3,
  // packet number 0xaead → 6b2611489cba2b63a9e873e2.
  Nonce iv{};
  const Bytes ivb = hex("6b26114b9cba2b63a9e8dd4f");
  std::copy(ivb.begin(), ivb.end(), iv.begin());
  EXPECT_EQ(to_hex_string(path_packet_nonce(iv, 3, 0xaead)), "6b2611489cba2b63a9e873e2");
  // Path 0 is RFC 9001's nonce; the path id occupies exactly the 32 bits above the packet number.
  EXPECT_EQ(path_packet_nonce(iv, 0, 0xaead), packet_nonce(iv, 0xaead));
  EXPECT_EQ(to_hex_string(path_packet_nonce(Nonce{}, 0xffffffffu, 0)), "ffffffff0000000000000000");
  EXPECT_EQ(to_hex_string(path_packet_nonce(Nonce{}, 1, (1ull << 62) - 1)),
            "000000013fffffffffffffff");
}

// A.2: the payload ciphertext is the protected packet after its 22-byte header (header protection
// does not touch the payload).
TEST(Aead, Rfc9001A2ClientInitialPayload) {
  auto aead = Aead::create(AeadAlgorithm::kAes128Gcm, hex(v::kClientKey), hex(v::kClientIv));
  ASSERT_TRUE(aead.ok()) << aead.error().message;
  const Bytes header = hex(v::kClientInitialHeader);
  Bytes buf = with_tag_room(v::client_initial_payload());
  ASSERT_TRUE(aead->seal(header, buf, 2).ok());
  const Bytes packet = hex(v::kClientInitialPacket);
  ASSERT_EQ(packet.size(), 1200u);
  EXPECT_EQ(to_hex_string(buf), to_hex_string(ByteView(packet).subspan(header.size())));
  auto n = aead->open(header, buf, 2);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, v::kClientInitialPayloadLength);
  EXPECT_EQ(Bytes(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*n)),
            v::client_initial_payload());
}

TEST(Aead, Rfc9001A3ServerInitialPayload) {
  auto aead = Aead::create(AeadAlgorithm::kAes128Gcm, hex(v::kServerKey), hex(v::kServerIv));
  ASSERT_TRUE(aead.ok());
  const Bytes header = hex(v::kServerInitialHeader);
  Bytes buf = with_tag_room(hex(v::kServerInitialPayload));
  ASSERT_TRUE(aead->seal(header, buf, 1).ok());
  const Bytes packet = hex(v::kServerInitialPacket);
  EXPECT_EQ(to_hex_string(buf), to_hex_string(ByteView(packet).subspan(header.size())));
}

TEST(Aead, Rfc9001A5ChaCha20Poly1305) {
  auto aead = Aead::create(AeadAlgorithm::kChaCha20Poly1305, hex(v::kChaChaKey), hex(v::kChaChaIv));
  ASSERT_TRUE(aead.ok());
  Bytes buf = with_tag_room(hex(v::kChaChaPayload));
  ASSERT_TRUE(aead->seal(hex(v::kChaChaHeader), buf, v::kChaChaPacketNumber).ok());
  EXPECT_EQ(to_hex_string(buf), v::kChaChaCiphertext);
  auto n = aead->open(hex(v::kChaChaHeader), buf, v::kChaChaPacketNumber);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(buf[0], 0x01);
}

// McGrew & Viega, "The Galois/Counter Mode of Operation", test cases 13 and 14 (AES-256, zero key
// and zero IV). With a zero IV and packet number 0 the QUIC nonce is the zero nonce.
TEST(Aead, Aes256GcmSpecVectors) {
  auto aead = Aead::create(AeadAlgorithm::kAes256Gcm, Bytes(32, 0), Bytes(12, 0));
  ASSERT_TRUE(aead.ok());
  Bytes empty = with_tag_room({});
  ASSERT_TRUE(aead->seal({}, empty, 0).ok());
  EXPECT_EQ(to_hex_string(empty), "530f8afbc74536b9a963b4f1c4cb738b");
  Bytes block = with_tag_room(Bytes(16, 0));
  ASSERT_TRUE(aead->seal({}, block, 0).ok());
  EXPECT_EQ(to_hex_string(block),
            "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919");
}

TEST(Aead, RoundTripEveryAlgorithmAndExplicitNonce) {
  for (AeadAlgorithm alg :
       {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    SCOPED_TRACE(aead_name(alg));
    auto aead = Aead::create(alg, Bytes(aead_key_length(alg), 0x11), Bytes(12, 0x22));
    ASSERT_TRUE(aead.ok());
    const Bytes aad = hex("c0ffee");
    Bytes plain(1000);
    for (std::size_t i = 0; i < plain.size(); ++i) plain[i] = static_cast<std::uint8_t>(i);
    // seal(pn) is seal_with_nonce(nonce(pn)).
    Bytes a = with_tag_room(plain);
    Bytes b = with_tag_room(plain);
    ASSERT_TRUE(aead->seal(aad, a, 0x1234).ok());
    ASSERT_TRUE(aead->seal_with_nonce(aad, b, aead->nonce(0x1234)).ok());
    EXPECT_EQ(a, b);
    // The same context seals many packets: a second packet with another number differs.
    Bytes c = with_tag_room(plain);
    ASSERT_TRUE(aead->seal(aad, c, 0x1235).ok());
    EXPECT_NE(a, c);
    auto n = aead->open_with_nonce(aad, b, aead->nonce(0x1234));
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(Bytes(b.begin(), b.begin() + 1000), plain);
    auto n2 = aead->open(aad, c, 0x1235);
    ASSERT_TRUE(n2.ok());
    // Empty plaintext (tag only) round-trips.
    Bytes tag_only = with_tag_room({});
    ASSERT_TRUE(aead->seal({}, tag_only, 9).ok());
    auto n3 = aead->open({}, tag_only, 9);
    ASSERT_TRUE(n3.ok());
    EXPECT_EQ(*n3, 0u);
  }
}

TEST(Aead, OpenRejectsTamperingWrongNumberAndShortInput) {
  auto aead = Aead::create(AeadAlgorithm::kAes128Gcm, hex(v::kClientKey), hex(v::kClientIv));
  ASSERT_TRUE(aead.ok());
  const Bytes aad = hex("4000");
  Bytes sealed = with_tag_room(hex("0102030405060708"));
  ASSERT_TRUE(aead->seal(aad, sealed, 5).ok());
  {
    Bytes t = sealed;
    t[0] ^= 0x80;
    EXPECT_FALSE(aead->open(aad, t, 5).ok());
  }
  {
    Bytes t = sealed;
    t.back() ^= 1;
    EXPECT_FALSE(aead->open(aad, t, 5).ok());
  }
  {
    Bytes t = sealed;
    EXPECT_FALSE(aead->open(hex("4001"), t, 5).ok());
  }
  {
    Bytes t = sealed;
    EXPECT_FALSE(aead->open(aad, t, 6).ok());
  }
  Bytes short_buf(15, 0);
  EXPECT_FALSE(aead->open(aad, short_buf, 5).ok());
  EXPECT_FALSE(aead->seal(aad, short_buf, 5).ok());
  // The context stays usable after failures.
  Bytes t = sealed;
  EXPECT_TRUE(aead->open(aad, t, 5).ok());
}

TEST(Aead, CreateRejectsBadKeyAndIvLengths) {
  EXPECT_FALSE(Aead::create(AeadAlgorithm::kAes128Gcm, Bytes(32, 0), Bytes(12, 0)).ok());
  EXPECT_FALSE(Aead::create(AeadAlgorithm::kAes256Gcm, Bytes(16, 0), Bytes(12, 0)).ok());
  EXPECT_FALSE(Aead::create(AeadAlgorithm::kChaCha20Poly1305, Bytes(16, 0), Bytes(12, 0)).ok());
  EXPECT_FALSE(Aead::create(AeadAlgorithm::kAes128Gcm, Bytes(16, 0), Bytes(8, 0)).ok());
  EXPECT_EQ(aead_hash(AeadAlgorithm::kAes256Gcm), Hash::kSha384);
  EXPECT_EQ(aead_hash(AeadAlgorithm::kChaCha20Poly1305), Hash::kSha256);
}

TEST(Aead, MovedFromAeadFailsCleanly) {
  auto aead = Aead::create(AeadAlgorithm::kAes128Gcm, Bytes(16, 0), Bytes(12, 0));
  ASSERT_TRUE(aead.ok());
  Aead moved = std::move(*aead);
  Bytes buf(16, 0);
  EXPECT_FALSE(aead->seal({}, buf, 0).ok());  // NOLINT(bugprone-use-after-move): tested on purpose
  EXPECT_TRUE(moved.seal({}, buf, 0).ok());
}

}  // namespace
}  // namespace iroh::crypto

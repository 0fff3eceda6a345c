// Header protection (RFC 9001 §5.4) against the masks of RFC 9001 Appendix A.2, A.3 and A.5.
#include "crypto/header_protection.h"

#include <gtest/gtest.h>

#include "rfc9001_vectors.h"

namespace iroh::crypto {
namespace {

using test::hex;
using test::to_hex_string;
namespace v = test::rfc9001;

HeaderProtection make(AeadAlgorithm alg, std::string_view key_hex) {
  auto hp = HeaderProtection::create(alg, hex(key_hex));
  if (!hp) __builtin_trap();
  return std::move(*hp);
}

TEST(HeaderProtection, Rfc9001MasksAesAndChaCha) {
  auto client = make(AeadAlgorithm::kAes128Gcm, v::kClientHp);
  auto server = make(AeadAlgorithm::kAes128Gcm, v::kServerHp);
  auto chacha = make(AeadAlgorithm::kChaCha20Poly1305, v::kChaChaHp);
  EXPECT_EQ(to_hex_string(*client.mask(hex(v::kClientInitialSample))), v::kClientInitialMask);
  EXPECT_EQ(to_hex_string(*server.mask(hex(v::kServerInitialSample))), v::kServerInitialMask);
  EXPECT_EQ(to_hex_string(*chacha.mask(hex(v::kChaChaSample))), v::kChaChaMask);
  // The context is reusable: the same sample again gives the same mask.
  EXPECT_EQ(to_hex_string(*chacha.mask(hex(v::kChaChaSample))), v::kChaChaMask);
  EXPECT_EQ(to_hex_string(*client.mask(hex(v::kClientInitialSample))), v::kClientInitialMask);
}

// A.2: applying protection to the unprotected header + ciphertext gives the protected header;
// removing it gives the unprotected header back and reports a 4-byte packet number.
TEST(HeaderProtection, Rfc9001A2LongHeaderApplyAndRemove) {
  auto hp = make(AeadAlgorithm::kAes128Gcm, v::kClientHp);
  const Bytes protected_packet = hex(v::kClientInitialPacket);
  Bytes packet = hex(v::kClientInitialHeader);
  append(packet, ByteView(protected_packet).subspan(packet.size()));
  constexpr std::size_t kPnOffset = 18;
  ASSERT_TRUE(hp.apply(packet, kPnOffset).ok());
  EXPECT_EQ(packet, protected_packet);
  auto pn_len = hp.remove(packet, kPnOffset);
  ASSERT_TRUE(pn_len.ok());
  EXPECT_EQ(*pn_len, 4u);
  EXPECT_EQ(to_hex_string(ByteView(packet).first(22)), v::kClientInitialHeader);
}

TEST(HeaderProtection, Rfc9001A3LongHeaderTwoBytePacketNumber) {
  auto hp = make(AeadAlgorithm::kAes128Gcm, v::kServerHp);
  Bytes packet = hex(v::kServerInitialPacket);
  auto pn_len = hp.remove(packet, 18);
  ASSERT_TRUE(pn_len.ok());
  EXPECT_EQ(*pn_len, 2u);
  EXPECT_EQ(to_hex_string(ByteView(packet).first(20)), v::kServerInitialHeader);
  ASSERT_TRUE(hp.apply(packet, 18).ok());
  EXPECT_EQ(packet, hex(v::kServerInitialPacket));
}

// A.5: a short header; five bits of the first byte are protected.
TEST(HeaderProtection, Rfc9001A5ShortHeader) {
  auto hp = make(AeadAlgorithm::kChaCha20Poly1305, v::kChaChaHp);
  Bytes packet = hex(v::kChaChaPacket);
  auto pn_len = hp.remove(packet, 1);
  ASSERT_TRUE(pn_len.ok());
  EXPECT_EQ(*pn_len, 3u);
  EXPECT_EQ(to_hex_string(ByteView(packet).first(4)), v::kChaChaHeader);
  ASSERT_TRUE(hp.apply(packet, 1).ok());
  EXPECT_EQ(to_hex_string(packet), v::kChaChaPacket);
}

TEST(HeaderProtection, ShortHeaderProtectsFiveBitsLongHeaderFour) {
  auto hp = make(AeadAlgorithm::kAes256Gcm, std::string(64, 'a'));
  for (std::uint8_t first :
       {std::uint8_t{0x40}, std::uint8_t{0x7f}, std::uint8_t{0xc0}, std::uint8_t{0xef}}) {
    Bytes packet(40, 0x33);
    packet[0] = first;
    ASSERT_TRUE(hp.apply(packet, 9).ok());
    const std::uint8_t fixed = (first & 0x80) ? 0xf0 : 0xe0;
    EXPECT_EQ(packet[0] & fixed, first & fixed) << "unprotected bits changed";
    auto n = hp.remove(packet, 9);
    ASSERT_TRUE(n.ok());
    EXPECT_EQ(*n, static_cast<std::size_t>((first & 3) + 1));
    EXPECT_EQ(packet[0], first);
    EXPECT_EQ(Bytes(packet.begin() + 1, packet.end()), Bytes(39, 0x33));
  }
}

TEST(HeaderProtection, RejectsShortPacketsAndBadKeys) {
  auto hp = make(AeadAlgorithm::kAes128Gcm, v::kClientHp);
  Bytes packet(30, 0x40);
  EXPECT_FALSE(hp.apply(packet, 11).ok());  // needs 20 bytes after offset 11: has 19
  EXPECT_TRUE(hp.apply(packet, 10).ok());   // exactly 20
  EXPECT_FALSE(hp.remove(packet, 11).ok());
  EXPECT_FALSE(hp.remove(packet, 31).ok());  // offset past the end
  EXPECT_FALSE(hp.remove(packet, 0).ok());
  Bytes empty;
  EXPECT_FALSE(hp.remove(empty, 0).ok());
  EXPECT_FALSE(hp.mask(Bytes(15, 0)).ok());
  EXPECT_FALSE(HeaderProtection::create(AeadAlgorithm::kAes128Gcm, Bytes(32, 0)).ok());
  EXPECT_FALSE(HeaderProtection::create(AeadAlgorithm::kChaCha20Poly1305, Bytes(16, 0)).ok());
}

}  // namespace
}  // namespace iroh::crypto

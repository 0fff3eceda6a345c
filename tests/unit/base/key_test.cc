#include "base/key.h"

#include <gtest/gtest.h>
#include <sodium.h>

#include <random>

#include "base/text_encoding.h"

namespace iroh {
namespace {

ByteArray<32> seq_seed() {
  ByteArray<32> s{};
  for (int i = 0; i < 32; ++i) s[i] = static_cast<std::uint8_t>(i);
  return s;
}

// spec §1.2 test vectors.
TEST(SecretKey, SpecVectorSequentialSeed) {
  const auto sk = SecretKey::from_seed(seq_seed());
  const auto& id = sk.public_key();
  EXPECT_EQ(id.to_hex(), "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
  EXPECT_EQ(id.to_base32(), "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a");
  EXPECT_EQ(id.to_z32(), "yqooxx9u3aemh8mo5wcqq16yufu6jitouq1o4za751dger1igghy");
  EXPECT_EQ(id.to_tls_name(), "0eggffvjpo8bs7bgrkceeiu0j5ju9lhgjeigqnotri3684il66s0.iroh.invalid");
  EXPECT_EQ(id.fmt_short(), "03a107bff3");
  EXPECT_EQ(to_hex(sk.sign(as_bytes("hello"))),
            "e1a7fca94a835127885b99e2eba733d6ee5bf5dc463ed8385eb6f1dcaa1117c0f151750a10f46f5b3796a9"
            "1203578f702c85c67c334b5689a516284d499f710f");
}

TEST(SecretKey, SpecVectorZeroSeed) {
  const auto sk = SecretKey::from_seed(ByteArray<32>{});
  EXPECT_EQ(sk.public_key().to_hex(),
            "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29");
  EXPECT_EQ(sk.public_key().to_tls_name(),
            "7dl2ff6emqi2qol3l382krodedij45bn3nh479hqo14a32qpr8kg.iroh.invalid");
}

TEST(SecretKey, SpecVector2a) {
  ByteArray<32> seed;
  seed.fill(0x2a);
  EXPECT_EQ(SecretKey::from_seed(seed).public_key().to_hex(),
            "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61");
}

TEST(SecretKey, ParsesHexAndBase32) {
  const std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
  auto a = SecretKey::parse(hex);
  ASSERT_TRUE(a.ok());
  const auto b32 = base32_encode(a->seed(), Base32Alphabet::kRfc4648);
  auto b = SecretKey::parse(ascii_upper(b32));
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(a->seed(), b->seed());
  EXPECT_FALSE(SecretKey::parse(ascii_upper(hex)).ok());
  EXPECT_FALSE(SecretKey::parse(hex.substr(2)).ok());
  EXPECT_FALSE(SecretKey::parse("").ok());
}

TEST(EndpointId, ParseFollowsRustRule) {
  const std::string hex = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
  ASSERT_TRUE(EndpointId::parse(hex).ok());
  // 64 chars is always hex, and Rust's HEXLOWER rejects upper case.
  EXPECT_FALSE(EndpointId::parse(ascii_upper(hex)).ok());
  // Anything else is base32, in any case.
  for (const auto* text : {"aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a",
                           "AOQQPP7TZYIL4HLQ3UMOOS6ATFT6JVRQTOSQ2XY53SDGIESVGG4A",
                           "aOqQpP7TzYiL4HlQ3UmOoS6AtFt6jVrQtOsQ2Xy53SdGiEsVgG4A"}) {
    auto id = EndpointId::parse(text);
    ASSERT_TRUE(id.ok()) << text;
    EXPECT_EQ(id->to_hex(), hex);
  }
  EXPECT_FALSE(EndpointId::parse("aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4b").ok());
  EXPECT_FALSE(EndpointId::parse("aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg").ok());
}

TEST(EndpointId, RejectsNonPoints) {
  // y = 2: (4 - 1) / (4d + 1) is a non-square mod p, so no x exists.
  ByteArray<32> two{};
  two[0] = 2;
  EXPECT_FALSE(is_edwards25519_point(two));
  auto r = EndpointId::from_bytes(two);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("not a valid ed25519 public key"), std::string::npos);
  EXPECT_FALSE(EndpointId::from_bytes(Bytes(31, 0)).ok());
}

TEST(EndpointId, AcceptsWhatDalekDecompresses) {
  ByteArray<32> b{};
  EXPECT_TRUE(is_edwards25519_point(b));  // y = 0
  b[0] = 1;
  EXPECT_TRUE(is_edwards25519_point(b));  // identity, small order: decompresses fine
  b[31] = 0x80;
  EXPECT_TRUE(is_edwards25519_point(b));  // "negative zero" x: dalek does not reject it
  // Non-canonical y = p + 1 (reduces to the identity's y = 1).
  ByteArray<32> p1{};
  p1.fill(0xff);
  p1[0] = 0xee;
  p1[31] = 0x7f;
  EXPECT_TRUE(is_edwards25519_point(p1));
}

// Differential check against libsodium: every point libsodium calls valid (it is stricter: no
// small order, canonical, prime-order subgroup) must pass ours, and every real public key does.
TEST(EndpointId, AgreesWithLibsodiumOnRealKeys) {
  ASSERT_GE(sodium_init(), 0);
  std::mt19937_64 rng(42);
  int ours_valid = 0;
  for (int i = 0; i < 2000; ++i) {
    ByteArray<32> b;
    for (auto& x : b) x = static_cast<std::uint8_t>(rng());
    const bool strict = crypto_core_ed25519_is_valid_point(b.data()) == 1;
    const bool ours = is_edwards25519_point(b);
    if (strict) {
      EXPECT_TRUE(ours) << to_hex(b);
    }
    ours_valid += ours;
  }
  // About half of all y values are on the curve.
  EXPECT_GT(ours_valid, 850);
  EXPECT_LT(ours_valid, 1150);
  for (int i = 0; i < 200; ++i) {
    ByteArray<32> seed;
    for (auto& x : seed) x = static_cast<std::uint8_t>(rng());
    const auto sk = SecretKey::from_seed(seed);
    EXPECT_TRUE(is_edwards25519_point(sk.public_key().bytes()));
  }
}

TEST(Signature, VerifiesStrictly) {
  const auto sk = SecretKey::from_seed(seq_seed());
  const auto msg = as_bytes("hello");
  auto sig = sk.sign(msg);
  EXPECT_TRUE(sk.public_key().verify(msg, sig));
  EXPECT_FALSE(sk.public_key().verify(as_bytes("hellp"), sig));
  auto flipped = sig;
  flipped[10] ^= 1;
  EXPECT_FALSE(sk.public_key().verify(msg, flipped));
  // Non-canonical S (S + l) must be rejected (malleability).
  auto malleable = sig;
  const std::uint8_t l[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                              0xa2, 0xde, 0xf9, 0xde, 0x14, 0,    0,    0,    0,    0,    0,
                              0,    0,    0,    0,    0,    0,    0,    0,    0,    0x10};
  unsigned carry = 0;
  for (int i = 0; i < 32; ++i) {
    const unsigned s = malleable[32 + i] + l[i] + carry;
    malleable[32 + i] = static_cast<std::uint8_t>(s);
    carry = s >> 8;
  }
  EXPECT_FALSE(sk.public_key().verify(msg, malleable));
  // A small-order public key (the identity) never verifies anything.
  ByteArray<32> identity{};
  identity[0] = 1;
  auto weak = EndpointId::from_bytes(identity);
  ASSERT_TRUE(weak.ok());
  Signature zero_sig{};
  zero_sig[0] = 1;  // R = identity, S = 0: satisfies the equation for the identity key
  EXPECT_FALSE(weak->verify(msg, zero_sig));
}

}  // namespace
}  // namespace iroh

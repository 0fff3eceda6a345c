// HKDF (RFC 5869) and TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1).
#include "crypto/hkdf.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "rfc9001_vectors.h"

namespace iroh::crypto {
namespace {

using test::hex;
using test::to_hex_string;

// RFC 5869 Appendix A.1 (Test Case 1, SHA-256).
TEST(Hkdf, Rfc5869TestCase1) {
  const Bytes ikm(22, 0x0b);
  const Bytes salt = hex("000102030405060708090a0b0c");
  const Bytes info = hex("f0f1f2f3f4f5f6f7f8f9");
  auto prk = hkdf_extract(Hash::kSha256, salt, ikm);
  ASSERT_TRUE(prk.ok());
  EXPECT_EQ(to_hex_string(*prk),
            "077709362c2e32df0ddc3f0dc47bba6390b6c73bb50f9c3122ec844ad7c2b3e5");
  auto okm = hkdf_expand(Hash::kSha256, *prk, info, 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(to_hex_string(*okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
}

// RFC 5869 Appendix A.3 (Test Case 3: zero-length salt and info).
TEST(Hkdf, Rfc5869TestCase3EmptySaltAndInfo) {
  const Bytes ikm(22, 0x0b);
  auto prk = hkdf_extract(Hash::kSha256, {}, ikm);
  ASSERT_TRUE(prk.ok());
  EXPECT_EQ(to_hex_string(*prk),
            "19ef24a32c717b167f33a91d6f648bdf96596776afdb6377ac434c1c293ccb04");
  auto okm = hkdf_expand(Hash::kSha256, *prk, {}, 42);
  ASSERT_TRUE(okm.ok());
  EXPECT_EQ(to_hex_string(*okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8");
}

// HMAC through OpenSSL's one-shot HMAC() (a different code path from EVP_KDF) for the
// independent SHA-384 checks below: there is no RFC 5869 vector for SHA-384.
Bytes hmac(const EVP_MD* md, ByteView key, ByteView data) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(md, key.data(), static_cast<int>(key.size()), data.data(), data.size(), out, &len);
  return Bytes(out, out + len);
}

TEST(Hkdf, Sha384AgreesWithHmacDefinition) {
  const Bytes ikm = hex("000102030405060708090a0b0c0d0e0f");
  const Bytes salt = hex("a0a1a2a3");
  const Bytes info = hex("b0b1b2");
  auto prk = hkdf_extract(Hash::kSha384, salt, ikm);
  ASSERT_TRUE(prk.ok());
  ASSERT_EQ(prk->size(), 48u);
  EXPECT_EQ(*prk, hmac(EVP_sha384(), salt, ikm));  // RFC 5869 §2.2
  // Two blocks: T(1) = HMAC(PRK, info || 1), T(2) = HMAC(PRK, T(1) || info || 2) (§2.3).
  auto okm = hkdf_expand(Hash::kSha384, *prk, info, 60);
  ASSERT_TRUE(okm.ok());
  Bytes m1 = info;
  m1.push_back(1);
  const Bytes t1 = hmac(EVP_sha384(), *prk, m1);
  Bytes m2 = t1;
  append(m2, info);
  m2.push_back(2);
  const Bytes t2 = hmac(EVP_sha384(), *prk, m2);
  Bytes expected = t1;
  append(expected, ByteView(t2).first(12));
  EXPECT_EQ(*okm, expected);
}

// RFC 9001 Appendix A.1 prints the HkdfLabel info strings.
TEST(Hkdf, HkdfLabelBytesFromRfc9001A1) {
  EXPECT_EQ(to_hex_string(*hkdf_label("client in", {}, 32)),
            "00200f746c73313320636c69656e7420696e00");
  EXPECT_EQ(to_hex_string(*hkdf_label("server in", {}, 32)),
            "00200f746c7331332073657276657220696e00");
  EXPECT_EQ(to_hex_string(*hkdf_label("quic key", {}, 16)), "00100e746c7331332071756963206b657900");
  EXPECT_EQ(to_hex_string(*hkdf_label("quic iv", {}, 12)), "000c0d746c733133207175696320697600");
  EXPECT_EQ(to_hex_string(*hkdf_label("quic hp", {}, 16)), "00100d746c733133207175696320687000");
}

TEST(Hkdf, ExpandLabelMatchesRfc9001A1ClientSecret) {
  auto s =
      hkdf_expand_label(Hash::kSha256, hex(test::rfc9001::kInitialSecret), "client in", {}, 32);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(to_hex_string(*s), test::rfc9001::kClientInitialSecret);
}

TEST(Hkdf, ExpandLabelWithContextIsHkdfExpandOfLabel) {
  const Bytes secret(48, 0x42);
  const Bytes ctx = hex("0102030405");
  auto a = hkdf_expand_label(Hash::kSha384, secret, "derived", ctx, 48);
  auto info = hkdf_label("derived", ctx, 48);
  ASSERT_TRUE(a.ok() && info.ok());
  EXPECT_EQ(to_hex_string(*info).substr(0, 6),
            "00300d");  // length 48, label "tls13 derived" (13 bytes)
  auto b = hkdf_expand(Hash::kSha384, secret, *info, 48);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
}

TEST(Hkdf, RejectsBadArguments) {
  const Bytes prk(32, 1);
  EXPECT_FALSE(hkdf_expand(Hash::kSha256, prk, {}, 0).ok());
  EXPECT_FALSE(hkdf_expand(Hash::kSha256, prk, {}, 255 * 32 + 1).ok());
  EXPECT_TRUE(hkdf_expand(Hash::kSha256, prk, {}, 255 * 32).ok());
  EXPECT_FALSE(hkdf_expand(Hash::kSha384, prk, {}, 16).ok());  // PRK shorter than SHA-384
  EXPECT_FALSE(hkdf_label(std::string(250, 'x'), {}, 16).ok());
  EXPECT_FALSE(hkdf_label("x", Bytes(256, 0), 16).ok());
  EXPECT_FALSE(hkdf_label("x", {}, 0x10000).ok());
  EXPECT_EQ(hash_length(Hash::kSha256), 32u);
  EXPECT_EQ(hash_length(Hash::kSha384), 48u);
}

}  // namespace
}  // namespace iroh::crypto

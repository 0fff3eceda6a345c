// RFC 9001 §5.2 Initial secrets, §5.1 packet keys, §6 key update and §5.8 Retry integrity, against
// RFC 9001 Appendix A.1, A.4 and A.5.
#include "crypto/initial_secrets.h"

#include <gtest/gtest.h>

#include "crypto/packet_protection.h"
#include "rfc9001_vectors.h"

namespace iroh::crypto {
namespace {

using test::hex;
using test::to_hex_string;
namespace v = test::rfc9001;

TEST(InitialSecrets, Rfc9001A1Secrets) {
  auto s = derive_initial_secrets(hex(v::kDcid));
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(to_hex_string(s->initial), v::kInitialSecret);
  EXPECT_EQ(to_hex_string(s->client), v::kClientInitialSecret);
  EXPECT_EQ(to_hex_string(s->server), v::kServerInitialSecret);
}

TEST(InitialSecrets, Rfc9001A1ClientKeys) {
  auto m = derive_packet_key_material(kInitialAead, hex(v::kClientInitialSecret));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(to_hex_string(m->key), v::kClientKey);
  EXPECT_EQ(to_hex_string(m->iv), v::kClientIv);
  EXPECT_EQ(to_hex_string(m->hp), v::kClientHp);
}

TEST(InitialSecrets, Rfc9001A1ServerKeys) {
  auto m = derive_packet_key_material(kInitialAead, hex(v::kServerInitialSecret));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(to_hex_string(m->key), v::kServerKey);
  EXPECT_EQ(to_hex_string(m->iv), v::kServerIv);
  EXPECT_EQ(to_hex_string(m->hp), v::kServerHp);
}

TEST(InitialSecrets, DeriveInitialKeysBundlesBothDirections) {
  auto keys = derive_initial_keys(hex(v::kDcid));
  ASSERT_TRUE(keys.ok()) << keys.error().message;
  EXPECT_EQ(to_hex_string(keys->client.aead().iv()), v::kClientIv);
  EXPECT_EQ(to_hex_string(keys->server.aead().iv()), v::kServerIv);
  EXPECT_EQ(keys->client.level(), EncryptionLevel::kInitial);
  EXPECT_EQ(keys->client.algorithm(), AeadAlgorithm::kAes128Gcm);
  EXPECT_EQ(to_hex_string(keys->client.secret()), v::kClientInitialSecret);
}

TEST(InitialSecrets, EmptyAndMaximalDcidWork) {
  EXPECT_TRUE(derive_initial_secrets({}).ok());
  EXPECT_TRUE(derive_initial_secrets(Bytes(20, 0xff)).ok());
  auto a = derive_initial_secrets(Bytes(8, 1));
  auto b = derive_initial_secrets(Bytes(8, 2));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->client, b->client);
}

// RFC 9001 Appendix A.5: key, iv and hp from the ChaCha20-Poly1305 secret, and "ku".
TEST(InitialSecrets, Rfc9001A5ChaChaKeysAndKeyUpdateSecret) {
  auto m = derive_packet_key_material(AeadAlgorithm::kChaCha20Poly1305, hex(v::kChaChaSecret));
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_EQ(to_hex_string(m->key), v::kChaChaKey);
  EXPECT_EQ(to_hex_string(m->iv), v::kChaChaIv);
  EXPECT_EQ(to_hex_string(m->hp), v::kChaChaHp);
  auto ku = derive_next_secret(AeadAlgorithm::kChaCha20Poly1305, hex(v::kChaChaSecret));
  ASSERT_TRUE(ku.ok());
  EXPECT_EQ(to_hex_string(*ku), v::kChaChaKu);
}

// RFC 9001 §6: the next generation through PacketProtection agrees with the RFC's "ku" value and
// with the hand-composed derivation; the AEAD key/IV change and the HP key does not.
TEST(KeyUpdate, NextGenerationMatchesA5AndKeepsHpKey) {
  auto p0 = PacketProtection::from_secret(AeadAlgorithm::kChaCha20Poly1305, hex(v::kChaChaSecret),
                                          EncryptionLevel::kOneRtt);
  ASSERT_TRUE(p0.ok());
  auto p1 = p0->next_generation();
  ASSERT_TRUE(p1.ok());
  EXPECT_EQ(p1->generation(), 1u);
  EXPECT_EQ(to_hex_string(p1->secret()), v::kChaChaKu);
  auto m1 = derive_packet_key_material(AeadAlgorithm::kChaCha20Poly1305, hex(v::kChaChaKu));
  ASSERT_TRUE(m1.ok());
  EXPECT_EQ(to_hex_string(p1->aead().iv()), to_hex_string(m1->iv));
  EXPECT_NE(to_hex_string(p1->aead().iv()), v::kChaChaIv);

  // The header protection key is unchanged: both generations give the same mask.
  auto s = hex(v::kChaChaSample);
  auto mask0 = p0->header_protection().mask(s);
  auto mask1 = p1->header_protection().mask(s);
  ASSERT_TRUE(mask0.ok() && mask1.ok());
  EXPECT_EQ(*mask0, *mask1);
  EXPECT_EQ(to_hex_string(*mask0), v::kChaChaMask);

  // A packet sealed with generation 1 does not open with generation 0 and does with generation 1.
  Bytes text = hex("0102030405");
  text.resize(text.size() + kAeadTagLength);
  const Bytes aad = hex("40");
  ASSERT_TRUE(p1->aead().seal(aad, text, 7).ok());
  Bytes copy = text;
  EXPECT_FALSE(p0->aead().open(aad, copy, 7).ok());
  auto opened = p1->aead().open(aad, text, 7);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(*opened, 5u);
}

// No RFC vector exists for AES-128-GCM or AES-256-GCM key updates: check that two independent
// derivations (HKDF-Expand-Label by hand vs. next_generation) agree and that the key changes.
TEST(KeyUpdate, AesGenerationsAgreeWithHandDerivation) {
  for (AeadAlgorithm alg : {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm}) {
    const Hash hash = aead_hash(alg);
    const Bytes secret0(hash_length(hash), 0x5a);
    auto p0 = PacketProtection::from_secret(alg, secret0, EncryptionLevel::kOneRtt);
    ASSERT_TRUE(p0.ok());
    auto p2 = p0->next_generation();
    ASSERT_TRUE(p2.ok());
    p2 = p2->next_generation();
    ASSERT_TRUE(p2.ok());
    EXPECT_EQ(p2->generation(), 2u);
    auto s1 = hkdf_expand_label(hash, secret0, "quic ku", {}, hash_length(hash));
    ASSERT_TRUE(s1.ok());
    auto s2 = hkdf_expand_label(hash, *s1, "quic ku", {}, hash_length(hash));
    ASSERT_TRUE(s2.ok());
    EXPECT_EQ(Bytes(p2->secret().begin(), p2->secret().end()), *s2);
    EXPECT_NE(*s1, secret0);
    EXPECT_NE(*s2, *s1);
    auto k0 = derive_packet_key_material(alg, secret0);
    auto k2 = derive_packet_key_material(alg, *s2);
    ASSERT_TRUE(k0.ok() && k2.ok());
    EXPECT_NE(k0->key, k2->key);
    EXPECT_NE(k0->iv, k2->iv);
  }
}

TEST(KeyUpdate, RejectsWrongSecretLength) {
  EXPECT_FALSE(derive_next_secret(AeadAlgorithm::kAes256Gcm, Bytes(32, 0)).ok());
  EXPECT_FALSE(derive_next_secret(AeadAlgorithm::kAes128Gcm, Bytes(48, 0)).ok());
  EXPECT_FALSE(derive_packet_key_material(AeadAlgorithm::kAes128Gcm, Bytes(31, 0)).ok());
  EXPECT_FALSE(PacketProtection::from_secret(AeadAlgorithm::kAes256Gcm, Bytes(32, 0),
                                             EncryptionLevel::kOneRtt)
                   .ok());
}

// RFC 9001 Appendix A.4.
TEST(RetryIntegrity, Rfc9001A4Tag) {
  const Bytes packet = hex(v::kRetryPacket);
  const ByteView body = ByteView(packet).first(packet.size() - 16);
  auto tag = retry_integrity_tag(hex(v::kDcid), body);
  ASSERT_TRUE(tag.ok()) << tag.error().message;
  EXPECT_EQ(to_hex_string(*tag), v::kRetryTag);
  EXPECT_TRUE(verify_retry_integrity(hex(v::kDcid), packet).ok());
}

TEST(RetryIntegrity, RejectsTamperingAndWrongOdcid) {
  Bytes packet = hex(v::kRetryPacket);
  EXPECT_FALSE(verify_retry_integrity(hex("8394c8f03e515709"), packet).ok());
  packet[20] ^= 1;  // a token byte
  EXPECT_FALSE(verify_retry_integrity(hex(v::kDcid), packet).ok());
  EXPECT_FALSE(verify_retry_integrity(hex(v::kDcid), Bytes(15, 0)).ok());
  EXPECT_FALSE(retry_integrity_tag(Bytes(256, 0), {}).ok());
}

}  // namespace
}  // namespace iroh::crypto

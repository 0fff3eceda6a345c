// The TLS-exporter relay auth header (spec §6.4, `x-iroh-relay-client-auth-v1`): codec and
// verification.
#include <gtest/gtest.h>

#include <string>

#include "relay/handshake.h"
#include "test_bytes.h"

namespace iroh::relay {
namespace {

using iroh::testing::hex;

SecretKey seq_key() {
  ByteArray<32> seed;
  for (int i = 0; i < 32; ++i) seed[i] = static_cast<std::uint8_t>(i);
  return SecretKey::from_seed(seed);
}

ByteArray<32> seq_ekm(std::uint8_t start) {
  ByteArray<32> e;
  for (int i = 0; i < 32; ++i) e[i] = static_cast<std::uint8_t>(start + i);
  return e;
}

TEST(Base64UrlNoPad, Rfc4648Vectors) {
  auto s = [](std::string_view t) { return Bytes(t.begin(), t.end()); };
  EXPECT_EQ(base64url_nopad_encode(s("")), "");
  EXPECT_EQ(base64url_nopad_encode(s("f")), "Zg");
  EXPECT_EQ(base64url_nopad_encode(s("fo")), "Zm8");
  EXPECT_EQ(base64url_nopad_encode(s("foo")), "Zm9v");
  EXPECT_EQ(base64url_nopad_encode(s("foobar")), "Zm9vYmFy");
  EXPECT_EQ(base64url_nopad_encode(hex("fbff")), "-_8");
  for (std::size_t n = 0; n < 20; ++n) {
    Bytes b(n);
    for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(i * 37 + 250);
    auto back = base64url_nopad_decode(base64url_nopad_encode(b));
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, b);
  }
}

TEST(Base64UrlNoPad, RejectsNonCanonical) {
  auto err = [](std::string_view t) {
    auto r = base64url_nopad_decode(t);
    EXPECT_FALSE(r.ok()) << t;
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(err("Zm8=").find("padding"), std::string::npos);
  EXPECT_NE(err("Zm9").find("trailing bits"), std::string::npos);
  EXPECT_NE(err("A").find("length"), std::string::npos);
  EXPECT_NE(err("+/8").find("offset 0"), std::string::npos);
  EXPECT_NE(err("Zm 8").find("offset 2"), std::string::npos);
}

TEST(ClientAuthHeader, RoundTripAndLayout) {
  const SecretKey sk = seq_key();
  const auto ekm = seq_ekm(0x40);
  const auto auth = sign_key_material(sk, ekm);
  EXPECT_EQ(auth.public_key, sk.public_key());
  // Signs ekm[0..16] (raw, not hashed), carries ekm[16..32].
  EXPECT_TRUE(sk.public_key().verify(ByteView(ekm.data(), 16), auth.signature));
  EXPECT_EQ(Bytes(auth.key_material_suffix.begin(), auth.key_material_suffix.end()),
            Bytes(ekm.begin() + 16, ekm.end()));

  const Bytes raw = encode_key_material_auth(auth);
  ASSERT_EQ(raw.size(), 113u);
  EXPECT_EQ(Bytes(raw.begin(), raw.begin() + 32),
            Bytes(sk.public_key().bytes().begin(), sk.public_key().bytes().end()));
  EXPECT_EQ(raw[32], 0x40);
  const std::string header = encode_client_auth_header(auth);
  EXPECT_EQ(header.size(), 151u);
  EXPECT_EQ(header.find_first_of("=+/"), std::string::npos);
  auto back = decode_client_auth_header(header);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, auth);
  EXPECT_TRUE(verify_key_material_auth(*back, ekm).ok());
}

TEST(ClientAuthHeader, VerificationFailures) {
  const SecretKey sk = seq_key();
  const auto ekm = seq_ekm(0x40);
  const auto auth = sign_key_material(sk, ekm);
  auto other = ekm;
  other[20] ^= 1;  // suffix differs: another TLS session (or a TLS-terminating proxy)
  auto r = verify_key_material_auth(auth, other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "key material suffix mismatch");
  other = ekm;
  other[3] ^= 1;  // same suffix, different signed half
  r = verify_key_material_auth(auth, other);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message, "signature invalid");
  auto forged = auth;
  forged.signature[0] ^= 1;
  EXPECT_FALSE(verify_key_material_auth(forged, ekm).ok());
}

TEST(ClientAuthHeader, RejectsBadInputWithClearErrors) {
  const auto auth = sign_key_material(seq_key(), seq_ekm(1));
  const std::string header = encode_client_auth_header(auth);
  const Bytes raw = encode_key_material_auth(auth);
  auto herr = [](std::string_view t) {
    auto r = decode_client_auth_header(t);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.error().message;
  };
  auto berr = [](const Bytes& b) {
    auto r = decode_key_material_auth(b);
    EXPECT_FALSE(r.ok());
    return r.ok() ? std::string() : r.error().message;
  };
  EXPECT_NE(herr("").find("expected 151"), std::string::npos);
  EXPECT_NE(herr(header.substr(0, 150)).find("got 150"), std::string::npos);
  EXPECT_NE(herr(header + "=").find("got 152"), std::string::npos);
  std::string bad = header;
  bad[10] = '+';
  EXPECT_NE(herr(bad).find("invalid character at offset 10"), std::string::npos);
  EXPECT_NE(berr(Bytes(raw.begin(), raw.begin() + 20)).find("public_key truncated"),
            std::string::npos);
  Bytes b = raw;
  b[32] = 0x3f;
  EXPECT_NE(berr(b).find("signature length"), std::string::npos);
  EXPECT_NE(berr(Bytes(raw.begin(), raw.begin() + 100)).find("key_material_suffix truncated"),
            std::string::npos);
  b = raw;
  b.push_back(0);
  EXPECT_NE(berr(b).find("trailing"), std::string::npos);
  // A public key that is not a curve point.
  b = raw;
  bool found = false;
  for (int v = 2; v < 256 && !found; ++v) {
    ByteArray<32> pk{};
    pk[0] = static_cast<std::uint8_t>(v);
    if (!EndpointId::from_bytes(pk).ok()) {
      std::copy(pk.begin(), pk.end(), b.begin());
      found = true;
    }
  }
  ASSERT_TRUE(found);
  EXPECT_NE(berr(b).find("public_key"), std::string::npos);
}

}  // namespace
}  // namespace iroh::relay

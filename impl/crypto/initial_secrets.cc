// QUIC v1 Initial secrets, packet key derivation, key update and Retry integrity. See
// initial_secrets.h.
#include "crypto/initial_secrets.h"

#include <openssl/crypto.h>

#include <string>

#include "crypto/hkdf.h"

namespace iroh::crypto {

Result<InitialSecrets> derive_initial_secrets(ByteView client_dcid) {
  // RFC 9001 §5.2.
  auto initial = hkdf_extract(Hash::kSha256, kInitialSaltV1, client_dcid);
  if (!initial) return initial.error();
  auto client = hkdf_expand_label(Hash::kSha256, *initial, "client in", {}, 32);
  if (!client) return client.error();
  auto server = hkdf_expand_label(Hash::kSha256, *initial, "server in", {}, 32);
  if (!server) return server.error();
  return InitialSecrets{std::move(*initial), std::move(*client), std::move(*server)};
}

Result<PacketKeyMaterial> derive_packet_key_material(AeadAlgorithm alg, ByteView secret) {
  // RFC 9001 §5.1. The secret is as long as the suite's hash output.
  const Hash hash = aead_hash(alg);
  if (secret.size() != hash_length(hash)) {
    return make_error(std::string("packet keys (") + aead_name(alg) + "): secret must be " +
                      std::to_string(hash_length(hash)) + " bytes, got " +
                      std::to_string(secret.size()));
  }
  auto key = hkdf_expand_label(hash, secret, "quic key", {}, aead_key_length(alg));
  if (!key) return key.error();
  auto iv = hkdf_expand_label(hash, secret, "quic iv", {}, kAeadNonceLength);
  if (!iv) return iv.error();
  auto hp = hkdf_expand_label(hash, secret, "quic hp", {}, hp_key_length(alg));
  if (!hp) return hp.error();
  return PacketKeyMaterial{std::move(*key), std::move(*iv), std::move(*hp)};
}

Result<Bytes> derive_next_secret(AeadAlgorithm alg, ByteView secret) {
  // RFC 9001 §6.1.
  const Hash hash = aead_hash(alg);
  if (secret.size() != hash_length(hash)) {
    return make_error("key update: secret must be " + std::to_string(hash_length(hash)) +
                      " bytes, got " + std::to_string(secret.size()));
  }
  return hkdf_expand_label(hash, secret, "quic ku", {}, hash_length(hash));
}

namespace {
// RFC 9001 §5.8, QUIC v1.
constexpr ByteArray<16> kRetryKeyV1 = {0xbe, 0x0c, 0x69, 0x0b, 0x9f, 0x66, 0x57, 0x5a,
                                       0x1d, 0x76, 0x6b, 0x54, 0xe3, 0x68, 0xc8, 0x4e};
constexpr ByteArray<12> kRetryNonceV1 = {0x46, 0x15, 0x99, 0xd3, 0x5d, 0x63,
                                         0x2b, 0xf2, 0x23, 0x98, 0x25, 0xbb};
}  // namespace

Result<RetryIntegrityTag> retry_integrity_tag(ByteView original_dcid, ByteView retry_without_tag) {
  if (original_dcid.size() > 255) return make_error("Retry tag: ODCID longer than 255 bytes");
  // Retry is rare (one per connection attempt at most); keying a context per call is fine.
  auto aead = Aead::create(AeadAlgorithm::kAes128Gcm, kRetryKeyV1, kRetryNonceV1);
  if (!aead) return aead.error();
  Bytes pseudo;
  pseudo.reserve(1 + original_dcid.size() + retry_without_tag.size());
  pseudo.push_back(static_cast<std::uint8_t>(original_dcid.size()));
  append(pseudo, original_dcid);
  append(pseudo, retry_without_tag);
  RetryIntegrityTag tag{};
  // Empty plaintext: the span is only the tag. The nonce is the fixed v1 nonce itself.
  if (auto ok = aead->seal_with_nonce(pseudo, tag, kRetryNonceV1); !ok) return ok.error();
  return tag;
}

Result<void> verify_retry_integrity(ByteView original_dcid, ByteView retry_packet) {
  if (retry_packet.size() < kRetryIntegrityTagLength) {
    return make_error("Retry: packet shorter than its integrity tag");
  }
  const std::size_t body = retry_packet.size() - kRetryIntegrityTagLength;
  auto tag = retry_integrity_tag(original_dcid, retry_packet.first(body));
  if (!tag) return tag.error();
  if (CRYPTO_memcmp(tag->data(), retry_packet.data() + body, kRetryIntegrityTagLength) != 0) {
    return make_error("Retry: integrity tag mismatch");
  }
  return {};
}

}  // namespace iroh::crypto

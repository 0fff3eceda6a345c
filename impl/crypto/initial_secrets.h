// The QUIC v1 key schedule pieces that do not involve TLS (RFC 9001):
//   - Initial secrets from the client's first Destination Connection ID (§5.2);
//   - packet key, IV and header-protection key from a traffic secret ("quic key", "quic iv",
//     "quic hp", §5.1);
//   - the next key generation on key update ("quic ku", §6.1);
//   - the Retry Integrity Tag (§5.8).
// Only QUIC version 1 (0x00000001) constants are used; iroh peers speak v1 (spec §4.1).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/aead.h"

namespace iroh::crypto {

// RFC 9001 §5.2: initial_salt for QUIC v1.
inline constexpr ByteArray<20> kInitialSaltV1 = {0x38, 0x76, 0x2c, 0xf7, 0xf5, 0x59, 0x34,
                                                 0xb3, 0x4d, 0x17, 0x9a, 0xe6, 0xa4, 0xc8,
                                                 0x0c, 0xad, 0xcc, 0xbb, 0x7f, 0x0a};
// Initial packets always use AEAD_AES_128_GCM with SHA-256 (§5.2).
inline constexpr AeadAlgorithm kInitialAead = AeadAlgorithm::kAes128Gcm;

struct InitialSecrets {
  Bytes initial;  // initial_secret = HKDF-Extract(initial_salt, client_dst_connection_id)
  Bytes client;   // client_initial_secret = HKDF-Expand-Label(initial, "client in", "", 32)
  Bytes server;   // server_initial_secret = HKDF-Expand-Label(initial, "server in", "", 32)
};

// RFC 9001 §5.2. `client_dcid` is the Destination Connection ID of the client's first Initial
// (it may be empty; it is at most 20 bytes in v1 but any length is hashed as given).
Result<InitialSecrets> derive_initial_secrets(ByteView client_dcid);

// Key material of one direction and one encryption level (RFC 9001 §5.1).
struct PacketKeyMaterial {
  Bytes key;  // HKDF-Expand-Label(secret, "quic key", "", aead_key_length)
  Bytes iv;   // HKDF-Expand-Label(secret, "quic iv", "", 12)
  Bytes hp;   // HKDF-Expand-Label(secret, "quic hp", "", hp_key_length)
};
Result<PacketKeyMaterial> derive_packet_key_material(AeadAlgorithm alg, ByteView secret);

// RFC 9001 §6.1: secret_<n+1> = HKDF-Expand-Label(secret_<n>, "quic ku", "", Hash.length). The
// header-protection key is not updated (§6.1: "The header protection key is not updated").
Result<Bytes> derive_next_secret(AeadAlgorithm alg, ByteView secret);

// RFC 9001 §5.8: the Retry Integrity Tag is the AEAD_AES_128_GCM tag over an empty plaintext with
// the Retry Pseudo-Packet as associated data:
//   ODCID Length (8) || Original Destination Connection ID || Retry packet without its tag.
inline constexpr std::size_t kRetryIntegrityTagLength = 16;
using RetryIntegrityTag = ByteArray<kRetryIntegrityTagLength>;
Result<RetryIntegrityTag> retry_integrity_tag(ByteView original_dcid, ByteView retry_without_tag);
// Checks the last 16 bytes of a whole Retry packet against the tag computed over the rest
// (constant-time comparison). Error if the packet is shorter than the tag or the tag differs.
Result<void> verify_retry_integrity(ByteView original_dcid, ByteView retry_packet);

}  // namespace iroh::crypto

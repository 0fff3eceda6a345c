// PacketProtection: everything needed to protect or unprotect the packets of one direction at one
// encryption level (RFC 9001 §5): the AEAD (key + IV) and the header-protection key, plus the
// traffic secret so the next key generation can be derived (RFC 9001 §6).
#pragma once

#include <cstdint>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/aead.h"
#include "crypto/header_protection.h"
#include "crypto/initial_secrets.h"

namespace iroh::crypto {

// RFC 9001 §2.1 / §4: the four encryption levels, one packet number space each except 0-RTT and
// 1-RTT which share the application space.
enum class EncryptionLevel : std::uint8_t { kInitial, kZeroRtt, kHandshake, kOneRtt };

class PacketProtection {
 public:
  // Derives key, IV and HP key from a traffic secret (RFC 9001 §5.1).
  static Result<PacketProtection> from_secret(AeadAlgorithm alg, ByteView secret,
                                              EncryptionLevel level);

  PacketProtection(PacketProtection&&) noexcept = default;
  PacketProtection& operator=(PacketProtection&&) noexcept = default;

  AeadAlgorithm algorithm() const { return aead_.algorithm(); }
  EncryptionLevel level() const { return level_; }
  Aead& aead() { return aead_; }
  HeaderProtection& header_protection() { return hp_; }
  // The traffic secret these keys were derived from.
  ByteView secret() const { return secret_; }
  // 0 for keys made by from_secret(), n for the n-th next_generation() (1-RTT key updates).
  std::uint64_t generation() const { return generation_; }

  // RFC 9001 §6.1: the keys of the next key phase. The AEAD key and IV come from the secret
  // ratcheted with "quic ku"; the header-protection key is kept. Only meaningful at kOneRtt.
  Result<PacketProtection> next_generation() const;

 private:
  PacketProtection(Aead aead, HeaderProtection hp, Bytes secret, Bytes hp_key,
                   EncryptionLevel level, std::uint64_t generation);

  Aead aead_;
  HeaderProtection hp_;
  Bytes secret_;
  Bytes hp_key_;
  EncryptionLevel level_;
  std::uint64_t generation_ = 0;
};

// Both directions of the Initial level, derived from the client's first DCID (RFC 9001 §5.2).
struct InitialKeys {
  PacketProtection client;  // protects client → server Initials
  PacketProtection server;  // protects server → client Initials
};
Result<InitialKeys> derive_initial_keys(ByteView client_dcid);

}  // namespace iroh::crypto

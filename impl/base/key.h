// Endpoint identities: Ed25519 secret keys and public keys (EndpointId).   spec §1
//
// An EndpointId is the 32-byte compressed Edwards-Y encoding of an Ed25519 public key. Like Rust
// iroh (ed25519-dalek `VerifyingKey::from_bytes`) we accept exactly the encodings that decompress
// to a curve point, and verify signatures strictly (canonical S, no small-order R or A).
#pragma once

#include <compare>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace iroh {

using Signature = ByteArray<64>;

class EndpointId {
 public:
  static constexpr std::size_t kSize = 32;

  // The all-zero encoding (a valid point). Exists so ids can live in aggregates; real ids come from
  // from_bytes/parse or SecretKey::public_key.
  EndpointId() = default;

  // Accepts the 32 bytes iff they decompress to a point on edwards25519.
  static Result<EndpointId> from_bytes(ByteView bytes);
  // Parses the text forms Rust's `FromStr` accepts: 64 chars of lowercase hex, otherwise RFC 4648
  // base32 without padding, case-insensitive (spec §1.2).
  static Result<EndpointId> parse(std::string_view text);

  const ByteArray<kSize>& bytes() const { return bytes_; }

  std::string to_hex() const;       // canonical Display form, 64 lowercase hex chars
  std::string to_base32() const;    // RFC 4648 base32, lowercase, no padding (52 chars)
  std::string to_z32() const;       // z-base-32 (pkarr / DNS names)
  std::string to_tls_name() const;  // base32hex lowercase + ".iroh.invalid"
  std::string fmt_short() const;    // first 5 bytes as hex (10 chars), for logs

  // Strict Ed25519 verification (RFC 8032 + canonical-S and small-order rejection).
  bool verify(ByteView message, const Signature& signature) const;

  friend auto operator<=>(const EndpointId&, const EndpointId&) = default;
  friend bool operator==(const EndpointId&, const EndpointId&) = default;

 private:
  friend class SecretKey;
  explicit EndpointId(const ByteArray<kSize>& bytes) : bytes_(bytes) {}
  ByteArray<kSize> bytes_{};
};

class SecretKey {
 public:
  static constexpr std::size_t kSize = 32;

  // The 32-byte RFC 8032 seed.
  static SecretKey from_seed(const ByteArray<kSize>& seed);
  static Result<SecretKey> from_bytes(ByteView bytes);
  // Same text rule as EndpointId::parse (lowercase hex or case-insensitive base32).
  static Result<SecretKey> parse(std::string_view text);
  // Randomness is injected: the caller supplies 32 random bytes (sans-IO: no global RNG here).
  static SecretKey generate(const ByteArray<kSize>& random_seed) { return from_seed(random_seed); }

  const ByteArray<kSize>& seed() const { return seed_; }
  const EndpointId& public_key() const { return public_; }
  std::string to_hex() const;

  // Deterministic Ed25519 signature (RFC 8032).
  Signature sign(ByteView message) const;

 private:
  SecretKey(const ByteArray<kSize>& seed, const EndpointId& pub) : seed_(seed), public_(pub) {}
  ByteArray<kSize> seed_{};
  EndpointId public_;
};

// True iff `bytes` (32) is the compressed encoding of a point on edwards25519, accepting exactly
// what curve25519-dalek's `CompressedEdwardsY::decompress` accepts (non-canonical y reduced mod p,
// any sign bit on x = 0). Exposed for tests and fuzzing.
bool is_edwards25519_point(const ByteArray<32>& bytes);

}  // namespace iroh

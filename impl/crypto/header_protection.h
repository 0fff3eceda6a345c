// QUIC header protection (RFC 9001 §5.4).
//
// A 5-byte mask is computed from a 16-byte sample of the packet's ciphertext, taken 4 bytes after
// the start of the Packet Number field (§5.4.2). mask[0] masks the low 4 bits of the first byte of
// a long header, the low 5 bits of a short header (§5.4.1); mask[1..] masks the packet number
// bytes. AES-based suites use AES-ECB on the sample (§5.4.3); ChaCha20-Poly1305 uses ChaCha20 with
// the sample as counter || nonce, encrypting five zero bytes (§5.4.4).
//
// A HeaderProtection owns one OpenSSL context keyed once at create(); mask() is allocation-free.
// Not safe for concurrent use from two threads.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/aead.h"

namespace iroh::crypto {

inline constexpr std::size_t kHpSampleLength = 16;
inline constexpr std::size_t kHpMaskLength = 5;
// The sample starts this many bytes after the start of the Packet Number field (§5.4.2).
inline constexpr std::size_t kHpSampleOffset = 4;
using HpMask = ByteArray<kHpMaskLength>;

class HeaderProtection {
 public:
  // `hp_key` must be hp_key_length(alg) bytes.
  static Result<HeaderProtection> create(AeadAlgorithm alg, ByteView hp_key);

  HeaderProtection(HeaderProtection&&) noexcept;
  HeaderProtection& operator=(HeaderProtection&&) noexcept;
  ~HeaderProtection();
  HeaderProtection(const HeaderProtection&) = delete;
  HeaderProtection& operator=(const HeaderProtection&) = delete;

  AeadAlgorithm algorithm() const { return alg_; }

  // The mask for a 16-byte sample (§5.4.3 / §5.4.4).
  Result<HpMask> mask(ByteView sample);

  // Applies protection to `packet` (the whole packet: header, packet number, ciphertext) whose
  // Packet Number field starts at `pn_offset`. The packet number length is read from the
  // still-unprotected first byte. Long or short header is told by bit 0x80 of the first byte.
  Result<void> apply(std::span<std::uint8_t> packet, std::size_t pn_offset);

  // Removes protection in place and returns the packet number length (1..4). Only the first byte
  // and the packet number bytes are changed. Errors if the packet is too short to sample.
  Result<std::size_t> remove(std::span<std::uint8_t> packet, std::size_t pn_offset);

 private:
  struct Context;
  HeaderProtection(AeadAlgorithm alg, std::unique_ptr<Context> ctx);

  AeadAlgorithm alg_;
  std::unique_ptr<Context> ctx_;
};

}  // namespace iroh::crypto

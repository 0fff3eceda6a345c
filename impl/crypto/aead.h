// QUIC packet payload protection (RFC 9001 §5.3): AEAD_AES_128_GCM, AEAD_AES_256_GCM and
// AEAD_CHACHA20_POLY1305 over OpenSSL 3 libcrypto (EVP).
//
// An Aead holds one key and one IV. Its OpenSSL cipher contexts are created and keyed once, in
// create(); each seal/open only sets the per-packet nonce, so a packet costs no allocation and no
// key schedule. Sealing and opening work in place on a caller-owned span, the 16-byte tag sitting
// right after the text (RFC 9001 §5.3: "the output ciphertext, C, of the AEAD is transmitted in
// place of P").
//
// Thread-safety: an Aead is not safe to use from two threads at once (the contexts are mutable).
// One Aead per direction per connection is the intended use.
//
// Multipath (draft-ietf-quic-multipath): 1-RTT packets of path P use path_packet_nonce(), which
// mixes the path id into the IV alongside the packet number; callers pass it to
// seal_with_nonce()/open_with_nonce(). Path 0's nonce is RFC 9001 §5.3's, nonce().
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/hkdf.h"

namespace iroh::crypto {

enum class AeadAlgorithm { kAes128Gcm, kAes256Gcm, kChaCha20Poly1305 };

inline constexpr std::size_t kAeadTagLength = 16;    // all three AEADs (RFC 9001 §5.3)
inline constexpr std::size_t kAeadNonceLength = 12;  // = IV length for all three
using Nonce = ByteArray<kAeadNonceLength>;

// AEAD key length: 16 (AES-128-GCM) or 32 (AES-256-GCM, ChaCha20-Poly1305).
std::size_t aead_key_length(AeadAlgorithm alg);
// Header-protection key length (RFC 9001 §5.4.3/§5.4.4): same as the AEAD key length.
std::size_t hp_key_length(AeadAlgorithm alg);
// The hash of the TLS 1.3 cipher suite using this AEAD: SHA-384 for AES-256-GCM, else SHA-256.
Hash aead_hash(AeadAlgorithm alg);
const char* aead_name(AeadAlgorithm alg);

// RFC 9001 §5.3: the 62-bit packet number, in network byte order, left-padded with zeros to the
// IV length, XORed with the IV.
Nonce packet_nonce(const Nonce& iv, std::uint64_t packet_number);
// draft-ietf-quic-multipath "Nonce calculation": the 96-bit path id (32 bits, network order) ‖
// two zero bits ‖ 62-bit packet number, XORed with the IV (rustls' encrypt_in_place_for_path,
// which noq uses). Path 0 gives packet_nonce(). To be confirmed on the wire against Rust iroh.
Nonce path_packet_nonce(const Nonce& iv, std::uint32_t path_id, std::uint64_t packet_number);

class Aead {
 public:
  // `key` must be aead_key_length(alg) bytes and `iv` 12 bytes.
  static Result<Aead> create(AeadAlgorithm alg, ByteView key, ByteView iv);

  Aead(Aead&&) noexcept;
  Aead& operator=(Aead&&) noexcept;
  ~Aead();
  Aead(const Aead&) = delete;
  Aead& operator=(const Aead&) = delete;

  AeadAlgorithm algorithm() const { return alg_; }
  const Nonce& iv() const { return iv_; }
  Nonce nonce(std::uint64_t packet_number) const { return packet_nonce(iv_, packet_number); }

  // Seals in place. `text_and_tag` holds the plaintext followed by kAeadTagLength bytes of room;
  // afterwards it holds ciphertext || tag. `aad` (the QUIC header) must not overlap it.
  Result<void> seal(ByteView aad, std::span<std::uint8_t> text_and_tag,
                    std::uint64_t packet_number);
  Result<void> seal_with_nonce(ByteView aad, std::span<std::uint8_t> text_and_tag,
                               const Nonce& nonce);

  // Opens in place. `text_and_tag` holds ciphertext || tag; on success its first
  // size() - kAeadTagLength bytes are the plaintext and that length is returned. On failure
  // (bad tag, too short) an Error is returned and the span's contents are unspecified: keep a
  // copy if a second attempt with other keys is needed.
  Result<std::size_t> open(ByteView aad, std::span<std::uint8_t> text_and_tag,
                           std::uint64_t packet_number);
  Result<std::size_t> open_with_nonce(ByteView aad, std::span<std::uint8_t> text_and_tag,
                                      const Nonce& nonce);

 private:
  struct Contexts;
  Aead(AeadAlgorithm alg, const Nonce& iv, std::unique_ptr<Contexts> ctx);

  AeadAlgorithm alg_;
  Nonce iv_{};
  std::unique_ptr<Contexts> ctx_;
};

}  // namespace iroh::crypto

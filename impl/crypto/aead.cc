// AEAD packet protection over OpenSSL EVP. See aead.h.
#include "crypto/aead.h"

#include <openssl/evp.h>

#include <algorithm>
#include <climits>
#include <string>

namespace iroh::crypto {

std::size_t aead_key_length(AeadAlgorithm alg) {
  return alg == AeadAlgorithm::kAes128Gcm ? 16 : 32;
}
std::size_t hp_key_length(AeadAlgorithm alg) { return aead_key_length(alg); }
Hash aead_hash(AeadAlgorithm alg) {
  return alg == AeadAlgorithm::kAes256Gcm ? Hash::kSha384 : Hash::kSha256;
}
const char* aead_name(AeadAlgorithm alg) {
  switch (alg) {
    case AeadAlgorithm::kAes128Gcm:
      return "AES-128-GCM";
    case AeadAlgorithm::kAes256Gcm:
      return "AES-256-GCM";
    case AeadAlgorithm::kChaCha20Poly1305:
      return "ChaCha20-Poly1305";
  }
  return "?";
}

Nonce packet_nonce(const Nonce& iv, std::uint64_t packet_number) {
  Nonce n = iv;
  for (std::size_t i = 0; i < 8; ++i) {
    n[kAeadNonceLength - 1 - i] ^= static_cast<std::uint8_t>(packet_number >> (8 * i));
  }
  return n;
}

Nonce path_packet_nonce(const Nonce& iv, std::uint32_t path_id, std::uint64_t packet_number) {
  Nonce n = packet_nonce(iv, packet_number);
  for (std::size_t i = 0; i < 4; ++i) {
    n[3 - i] ^= static_cast<std::uint8_t>(path_id >> (8 * i));
  }
  return n;
}

namespace {
const EVP_CIPHER* evp_cipher(AeadAlgorithm alg) {
  switch (alg) {
    case AeadAlgorithm::kAes128Gcm:
      return EVP_aes_128_gcm();
    case AeadAlgorithm::kAes256Gcm:
      return EVP_aes_256_gcm();
    case AeadAlgorithm::kChaCha20Poly1305:
      return EVP_chacha20_poly1305();
  }
  return nullptr;
}

// EVP takes int lengths; QUIC packets are far below INT_MAX, but never trust a caller's size.
bool fits_int(std::size_t n) { return n <= static_cast<std::size_t>(INT_MAX); }
}  // namespace

struct Aead::Contexts {
  EVP_CIPHER_CTX* enc = nullptr;
  EVP_CIPHER_CTX* dec = nullptr;
  ~Contexts() {
    EVP_CIPHER_CTX_free(enc);
    EVP_CIPHER_CTX_free(dec);
  }
};

Aead::Aead(AeadAlgorithm alg, const Nonce& iv, std::unique_ptr<Contexts> ctx)
    : alg_(alg), iv_(iv), ctx_(std::move(ctx)) {}
Aead::Aead(Aead&&) noexcept = default;
Aead& Aead::operator=(Aead&&) noexcept = default;
Aead::~Aead() = default;

Result<Aead> Aead::create(AeadAlgorithm alg, ByteView key, ByteView iv) {
  if (key.size() != aead_key_length(alg)) {
    return make_error(std::string(aead_name(alg)) + ": key must be " +
                      std::to_string(aead_key_length(alg)) + " bytes, got " +
                      std::to_string(key.size()));
  }
  if (iv.size() != kAeadNonceLength) {
    return make_error("AEAD: IV must be 12 bytes, got " + std::to_string(iv.size()));
  }
  const EVP_CIPHER* cipher = evp_cipher(alg);
  auto ctx = std::make_unique<Contexts>();
  ctx->enc = EVP_CIPHER_CTX_new();
  ctx->dec = EVP_CIPHER_CTX_new();
  if (cipher == nullptr || ctx->enc == nullptr || ctx->dec == nullptr) {
    return make_error("AEAD: EVP_CIPHER_CTX_new failed");
  }
  // Key the contexts once. The default IV length of all three ciphers is 12 bytes, which is what
  // QUIC uses, so no EVP_CTRL_AEAD_SET_IVLEN is needed.
  if (EVP_EncryptInit_ex(ctx->enc, cipher, nullptr, key.data(), nullptr) != 1 ||
      EVP_DecryptInit_ex(ctx->dec, cipher, nullptr, key.data(), nullptr) != 1) {
    return make_error("AEAD: EVP key setup failed");
  }
  Nonce iv_array{};
  std::copy(iv.begin(), iv.end(), iv_array.begin());
  return Aead(alg, iv_array, std::move(ctx));
}

Result<void> Aead::seal(ByteView aad, std::span<std::uint8_t> text_and_tag,
                        std::uint64_t packet_number) {
  return seal_with_nonce(aad, text_and_tag, nonce(packet_number));
}

Result<void> Aead::seal_with_nonce(ByteView aad, std::span<std::uint8_t> text_and_tag,
                                   const Nonce& nonce) {
  if (!ctx_) return make_error("AEAD: used after move");
  if (text_and_tag.size() < kAeadTagLength) return make_error("AEAD seal: no room for the tag");
  const std::size_t text_len = text_and_tag.size() - kAeadTagLength;
  if (!fits_int(text_len) || !fits_int(aad.size())) return make_error("AEAD seal: too large");
  EVP_CIPHER_CTX* c = ctx_->enc;
  int len = 0;
  std::uint8_t* text = text_and_tag.data();
  if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_EncryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (text_len != 0 && EVP_EncryptUpdate(c, text, &len, text, static_cast<int>(text_len)) != 1) ||
      EVP_EncryptFinal_ex(c, text + text_len, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, static_cast<int>(kAeadTagLength),
                          text + text_len) != 1) {
    return make_error("AEAD seal: EVP encryption failed");
  }
  return {};
}

Result<std::size_t> Aead::open(ByteView aad, std::span<std::uint8_t> text_and_tag,
                               std::uint64_t packet_number) {
  return open_with_nonce(aad, text_and_tag, nonce(packet_number));
}

Result<std::size_t> Aead::open_with_nonce(ByteView aad, std::span<std::uint8_t> text_and_tag,
                                          const Nonce& nonce) {
  if (!ctx_) return make_error("AEAD: used after move");
  if (text_and_tag.size() < kAeadTagLength) {
    return make_error("AEAD open: ciphertext of " + std::to_string(text_and_tag.size()) +
                      " bytes is shorter than the tag");
  }
  const std::size_t text_len = text_and_tag.size() - kAeadTagLength;
  if (!fits_int(text_len) || !fits_int(aad.size())) return make_error("AEAD open: too large");
  EVP_CIPHER_CTX* c = ctx_->dec;
  int len = 0;
  std::uint8_t* text = text_and_tag.data();
  // Copy the tag out first: the decryption below is in place and must not read a tag that
  // overlaps its output (it does not, but the copy keeps SET_TAG independent of the buffer).
  ByteArray<kAeadTagLength> tag{};
  std::copy_n(text + text_len, kAeadTagLength, tag.begin());
  if (EVP_DecryptInit_ex(c, nullptr, nullptr, nullptr, nonce.data()) != 1 ||
      (!aad.empty() &&
       EVP_DecryptUpdate(c, nullptr, &len, aad.data(), static_cast<int>(aad.size())) != 1) ||
      (text_len != 0 && EVP_DecryptUpdate(c, text, &len, text, static_cast<int>(text_len)) != 1) ||
      EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, static_cast<int>(kAeadTagLength), tag.data()) !=
          1) {
    return make_error("AEAD open: EVP decryption failed");
  }
  if (EVP_DecryptFinal_ex(c, text + text_len, &len) != 1) {
    return make_error("AEAD open: authentication failed");
  }
  return text_len;
}

}  // namespace iroh::crypto

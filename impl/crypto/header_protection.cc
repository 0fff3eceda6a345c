// QUIC header protection (RFC 9001 §5.4). See header_protection.h.
#include "crypto/header_protection.h"

#include <openssl/evp.h>

#include <algorithm>
#include <string>

namespace iroh::crypto {

struct HeaderProtection::Context {
  EVP_CIPHER_CTX* ctx = nullptr;
  ~Context() { EVP_CIPHER_CTX_free(ctx); }
};

HeaderProtection::HeaderProtection(AeadAlgorithm alg, std::unique_ptr<Context> ctx)
    : alg_(alg), ctx_(std::move(ctx)) {}
HeaderProtection::HeaderProtection(HeaderProtection&&) noexcept = default;
HeaderProtection& HeaderProtection::operator=(HeaderProtection&&) noexcept = default;
HeaderProtection::~HeaderProtection() = default;

Result<HeaderProtection> HeaderProtection::create(AeadAlgorithm alg, ByteView hp_key) {
  if (hp_key.size() != hp_key_length(alg)) {
    return make_error(std::string("header protection (") + aead_name(alg) + "): key must be " +
                      std::to_string(hp_key_length(alg)) + " bytes, got " +
                      std::to_string(hp_key.size()));
  }
  auto ctx = std::make_unique<Context>();
  ctx->ctx = EVP_CIPHER_CTX_new();
  if (ctx->ctx == nullptr) return make_error("header protection: EVP_CIPHER_CTX_new failed");
  const EVP_CIPHER* cipher = alg == AeadAlgorithm::kAes128Gcm   ? EVP_aes_128_ecb()
                             : alg == AeadAlgorithm::kAes256Gcm ? EVP_aes_256_ecb()
                                                                : EVP_chacha20();
  if (EVP_EncryptInit_ex(ctx->ctx, cipher, nullptr, hp_key.data(), nullptr) != 1) {
    return make_error("header protection: EVP key setup failed");
  }
  // AES-ECB on exactly one block: no padding.
  if (alg != AeadAlgorithm::kChaCha20Poly1305) EVP_CIPHER_CTX_set_padding(ctx->ctx, 0);
  return HeaderProtection(alg, std::move(ctx));
}

Result<HpMask> HeaderProtection::mask(ByteView sample) {
  if (!ctx_) return make_error("header protection: used after move");
  if (sample.size() != kHpSampleLength) {
    return make_error("header protection: sample must be 16 bytes, got " +
                      std::to_string(sample.size()));
  }
  EVP_CIPHER_CTX* c = ctx_->ctx;
  HpMask out{};
  int len = 0;
  if (alg_ == AeadAlgorithm::kChaCha20Poly1305) {
    // §5.4.4: counter = sample[0..4] (little-endian), nonce = sample[4..16]. OpenSSL's ChaCha20
    // IV is exactly that 16-byte layout (32-bit little-endian counter, then the 96-bit nonce).
    static constexpr std::uint8_t kZeros[kHpMaskLength] = {0, 0, 0, 0, 0};
    if (EVP_EncryptInit_ex(c, nullptr, nullptr, nullptr, sample.data()) != 1 ||
        EVP_EncryptUpdate(c, out.data(), &len, kZeros, static_cast<int>(kHpMaskLength)) != 1) {
      return make_error("header protection: ChaCha20 failed");
    }
  } else {
    // §5.4.3: mask = AES-ECB(hp_key, sample), first five bytes.
    std::uint8_t block[kHpSampleLength];
    if (EVP_EncryptUpdate(c, block, &len, sample.data(), static_cast<int>(kHpSampleLength)) != 1 ||
        len != static_cast<int>(kHpSampleLength)) {
      return make_error("header protection: AES-ECB failed");
    }
    std::copy_n(block, kHpMaskLength, out.begin());
  }
  return out;
}

namespace {
// §5.4.1: long headers protect the low 4 bits of the first byte, short headers the low 5.
std::uint8_t first_byte_mask(std::uint8_t first) { return (first & 0x80) ? 0x0f : 0x1f; }

Result<void> check_sample(std::span<std::uint8_t> packet, std::size_t pn_offset) {
  if (packet.empty() || pn_offset > packet.size() ||
      packet.size() - pn_offset < kHpSampleOffset + kHpSampleLength) {
    return make_error("header protection: packet of " + std::to_string(packet.size()) +
                      " bytes too short to sample at packet number offset " +
                      std::to_string(pn_offset) + " (needs " +
                      std::to_string(kHpSampleOffset + kHpSampleLength) + " bytes after it)");
  }
  if (pn_offset == 0) return make_error("header protection: packet number offset 0");
  return {};
}
}  // namespace

Result<void> HeaderProtection::apply(std::span<std::uint8_t> packet, std::size_t pn_offset) {
  if (auto ok = check_sample(packet, pn_offset); !ok) return ok.error();
  auto m = mask(ByteView(packet).subspan(pn_offset + kHpSampleOffset, kHpSampleLength));
  if (!m) return m.error();
  const std::size_t pn_len = (packet[0] & 0x03) + 1;  // read before masking
  packet[0] ^= (*m)[0] & first_byte_mask(packet[0]);
  for (std::size_t i = 0; i < pn_len; ++i) packet[pn_offset + i] ^= (*m)[1 + i];
  return {};
}

Result<std::size_t> HeaderProtection::remove(std::span<std::uint8_t> packet,
                                             std::size_t pn_offset) {
  if (auto ok = check_sample(packet, pn_offset); !ok) return ok.error();
  auto m = mask(ByteView(packet).subspan(pn_offset + kHpSampleOffset, kHpSampleLength));
  if (!m) return m.error();
  packet[0] ^= (*m)[0] & first_byte_mask(packet[0]);
  const std::size_t pn_len = (packet[0] & 0x03) + 1;  // read after unmasking
  for (std::size_t i = 0; i < pn_len; ++i) packet[pn_offset + i] ^= (*m)[1 + i];
  return pn_len;
}

}  // namespace iroh::crypto

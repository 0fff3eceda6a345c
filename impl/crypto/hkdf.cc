// HKDF and TLS 1.3 HKDF-Expand-Label over OpenSSL 3's EVP_KDF. See hkdf.h.
#include "crypto/hkdf.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include <memory>
#include <string>

namespace iroh::crypto {
namespace {

struct KdfDeleter {
  void operator()(EVP_KDF* k) const { EVP_KDF_free(k); }
};
struct KdfCtxDeleter {
  void operator()(EVP_KDF_CTX* c) const { EVP_KDF_CTX_free(c); }
};

const char* digest_name(Hash hash) { return hash == Hash::kSha384 ? "SHA384" : "SHA256"; }

// Runs the HKDF KDF in `mode` (EVP_KDF_HKDF_MODE_EXTRACT_ONLY / EXPAND_ONLY). Inputs may be
// empty; OpenSSL is given a valid pointer in every case.
Result<Bytes> run_hkdf(Hash hash, int mode, ByteView key, ByteView salt, ByteView info,
                       std::size_t out_len) {
  // The fetched algorithm is immutable and thread-safe; fetch it once.
  static const std::unique_ptr<EVP_KDF, KdfDeleter> kdf(EVP_KDF_fetch(nullptr, "HKDF", nullptr));
  if (!kdf) return make_error("HKDF: EVP_KDF_fetch failed");
  std::unique_ptr<EVP_KDF_CTX, KdfCtxDeleter> ctx(EVP_KDF_CTX_new(kdf.get()));
  if (!ctx) return make_error("HKDF: EVP_KDF_CTX_new failed");

  static const std::uint8_t kEmpty[1] = {0};
  auto ptr = [](ByteView v) {
    return const_cast<std::uint8_t*>(v.empty() ? kEmpty : v.data());  // OSSL_PARAM is not const
  };
  OSSL_PARAM params[6];
  std::size_t n = 0;
  params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                 const_cast<char*>(digest_name(hash)), 0);
  params[n++] = OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode);
  params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, ptr(key), key.size());
  if (mode == EVP_KDF_HKDF_MODE_EXTRACT_ONLY) {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT, ptr(salt), salt.size());
  } else {
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, ptr(info), info.size());
  }
  params[n] = OSSL_PARAM_construct_end();

  Bytes out(out_len);
  if (EVP_KDF_derive(ctx.get(), out.data(), out.size(), params) != 1) {
    return make_error("HKDF: EVP_KDF_derive failed");
  }
  return out;
}

}  // namespace

std::size_t hash_length(Hash hash) { return hash == Hash::kSha384 ? 48 : 32; }

Result<Bytes> hkdf_extract(Hash hash, ByteView salt, ByteView ikm) {
  // RFC 5869 §2.2: PRK = HMAC-Hash(salt, IKM); an absent salt is HashLen zero bytes.
  Bytes zero_salt;
  if (salt.empty()) {
    zero_salt.assign(hash_length(hash), 0);
    salt = zero_salt;
  }
  return run_hkdf(hash, EVP_KDF_HKDF_MODE_EXTRACT_ONLY, ikm, salt, {}, hash_length(hash));
}

Result<Bytes> hkdf_expand(Hash hash, ByteView prk, ByteView info, std::size_t length) {
  if (prk.size() < hash_length(hash)) {
    return make_error("HKDF-Expand: PRK of " + std::to_string(prk.size()) +
                      " bytes is shorter than the hash (" + std::to_string(hash_length(hash)) +
                      ")");
  }
  if (length == 0 || length > 255 * hash_length(hash)) {
    return make_error("HKDF-Expand: output length " + std::to_string(length) + " out of range");
  }
  return run_hkdf(hash, EVP_KDF_HKDF_MODE_EXPAND_ONLY, prk, {}, info, length);
}

Result<Bytes> hkdf_label(std::string_view label, ByteView context, std::size_t length) {
  constexpr std::string_view kPrefix = "tls13 ";
  const std::size_t full_label = kPrefix.size() + label.size();
  // RFC 8446 §7.1: opaque label<7..255>, opaque context<0..255>, uint16 length.
  if (full_label < 7 || full_label > 255) return make_error("HkdfLabel: label length out of range");
  if (context.size() > 255) return make_error("HkdfLabel: context longer than 255 bytes");
  if (length > 0xffff) return make_error("HkdfLabel: length does not fit in uint16");
  Bytes out;
  out.reserve(2 + 1 + full_label + 1 + context.size());
  out.push_back(static_cast<std::uint8_t>(length >> 8));
  out.push_back(static_cast<std::uint8_t>(length));
  out.push_back(static_cast<std::uint8_t>(full_label));
  append(out, as_bytes(kPrefix));
  append(out, as_bytes(label));
  out.push_back(static_cast<std::uint8_t>(context.size()));
  append(out, context);
  return out;
}

Result<Bytes> hkdf_expand_label(Hash hash, ByteView secret, std::string_view label,
                                ByteView context, std::size_t length) {
  auto info = hkdf_label(label, context, length);
  if (!info) return info.error();
  return hkdf_expand(hash, secret, *info, length);
}

}  // namespace iroh::crypto

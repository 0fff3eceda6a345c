// HKDF (RFC 5869) and the TLS 1.3 HKDF-Expand-Label (RFC 8446 §7.1), as QUIC uses them for its
// key schedule (RFC 9001 §5.1). OpenSSL 3 libcrypto (EVP_KDF "HKDF") does the hashing.
//
// Only the two hashes of the TLS 1.3 cipher suites QUIC can negotiate are offered: SHA-256
// (TLS_AES_128_GCM_SHA256, TLS_CHACHA20_POLY1305_SHA256) and SHA-384 (TLS_AES_256_GCM_SHA384).
// Nothing here keeps state between calls; every function is safe to call from any thread.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace iroh::crypto {

enum class Hash { kSha256, kSha384 };

// Output length of the hash in bytes: 32 or 48.
std::size_t hash_length(Hash hash);

// HKDF-Extract(salt, IKM) → PRK of hash_length(hash) bytes (RFC 5869 §2.2).
Result<Bytes> hkdf_extract(Hash hash, ByteView salt, ByteView ikm);

// HKDF-Expand(PRK, info, L) → L bytes (RFC 5869 §2.3). L ≤ 255 · hash_length(hash); `prk` must be
// at least hash_length(hash) bytes (RFC 5869 §2.3: "a pseudorandom key of at least HashLen
// octets").
Result<Bytes> hkdf_expand(Hash hash, ByteView prk, ByteView info, std::size_t length);

// The HkdfLabel structure of RFC 8446 §7.1:
//   struct { uint16 length = L; opaque label<7..255> = "tls13 " + Label; opaque context<0..255>; }
// Exposed so tests can check the exact bytes; `label` is given without the "tls13 " prefix.
Result<Bytes> hkdf_label(std::string_view label, ByteView context, std::size_t length);

// HKDF-Expand-Label(Secret, Label, Context, Length) = HKDF-Expand(Secret, HkdfLabel, Length)
// (RFC 8446 §7.1). QUIC always passes an empty context (RFC 9001 §5.1).
Result<Bytes> hkdf_expand_label(Hash hash, ByteView secret, std::string_view label,
                                ByteView context, std::size_t length);

}  // namespace iroh::crypto

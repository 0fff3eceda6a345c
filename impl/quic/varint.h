// QUIC variable-length integers (RFC 9000 §16).
//
// The two most significant bits of the first byte give the encoded length (00 → 1 byte, 01 → 2,
// 10 → 4, 11 → 8); the remaining bits carry the value, big-endian. The largest encodable value is
// 2^62 - 1. The encoder always emits the minimal length; the decoder (quic/reader.h) accepts any
// length, as RFC 9000 §16 permits ("values do not need to be encoded on the minimum number of
// bytes").
//
// Used by the QUIC engine and as the frame-type prefix of relay frames (spec §6.3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "base/bytes.h"

namespace iroh::quic {

// Largest value a QUIC varint can carry: 2^62 - 1.
inline constexpr std::uint64_t kVarintMax = (std::uint64_t{1} << 62) - 1;

// Number of bytes the minimal encoding of `value` takes: 1, 2, 4 or 8. Returns 0 if `value` is
// larger than kVarintMax (not encodable).
std::size_t varint_size(std::uint64_t value);

// Appends the minimal encoding of `value` to `out`.
// Precondition: value <= kVarintMax (asserted). In builds with NDEBUG a larger value is a
// programming error: only its low 62 bits are encoded.
void encode_varint(Bytes& out, std::uint64_t value);

}  // namespace iroh::quic

// QUIC variable-length integers (RFC 9000 §16). See varint.h.
#include "quic/varint.h"

#include <cassert>

namespace iroh::quic {

std::size_t varint_size(std::uint64_t value) {
  if (value < (std::uint64_t{1} << 6)) return 1;
  if (value < (std::uint64_t{1} << 14)) return 2;
  if (value < (std::uint64_t{1} << 30)) return 4;
  if (value <= kVarintMax) return 8;
  return 0;
}

void encode_varint(Bytes& out, std::uint64_t value) {
  assert(value <= kVarintMax && "QUIC varint value must be < 2^62");
  value &= kVarintMax;
  const std::size_t n = varint_size(value);
  // Length prefix: log2(n) in the top two bits of the first byte (RFC 9000 §16, Table 4).
  const std::uint8_t prefix = n == 1 ? 0x00 : n == 2 ? 0x40 : n == 4 ? 0x80 : 0xc0;
  for (std::size_t i = 0; i < n; ++i) {
    auto byte = static_cast<std::uint8_t>(value >> (8 * (n - 1 - i)));
    if (i == 0) byte |= prefix;
    out.push_back(byte);
  }
}

}  // namespace iroh::quic

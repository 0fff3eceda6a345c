// The subset of the postcard wire format (serde, non-human-readable) that iroh's tickets use.
// spec §2.2; postcard wire-format spec ("Varint encoded integers", "Tagged unions", "Seq").
//
// Integers u16/u32/u64/usize are unsigned LEB128 varints. Like postcard's decoder, we accept
// non-minimal (over-long) encodings within the type's maximum length, and reject an encoding whose
// final byte carries bits beyond the type's width or that does not terminate in time.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace iroh::postcard {

void encode_varint(Bytes& out, std::uint64_t value);
void encode_bytes(Bytes& out, ByteView bytes);  // varint length, then the bytes
void encode_str(Bytes& out, std::string_view s);

// Bounds-checked cursor over a postcard blob. Every read fails with a reason naming the offset.
class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  Result<std::uint8_t> u8();
  Result<std::uint16_t> varint_u16();
  Result<std::uint32_t> varint_u32();     // also enum variant indices
  Result<std::uint64_t> varint_u64();     // also usize lengths (64-bit platforms)
  Result<ByteView> fixed(std::size_t n);  // [u8; N]
  Result<ByteView> bytes();               // length-prefixed byte string
  Result<std::string> str();              // length-prefixed UTF-8 string

  std::size_t offset() const { return pos_; }
  std::size_t remaining() const { return data_.size() - pos_; }

 private:
  Result<std::uint64_t> varint(int max_bytes, int width_bits, std::string_view type);
  ByteView data_;
  std::size_t pos_ = 0;
};

// Strict UTF-8 validation (no overlongs, surrogates or code points above U+10FFFF), as Rust's
// `str::from_utf8`.
bool is_valid_utf8(std::string_view s);

}  // namespace iroh::postcard

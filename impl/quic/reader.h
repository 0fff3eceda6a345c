// A bounds-checked cursor over a byte buffer, for sans-IO decoders.
//
// Every read either succeeds and advances, or returns an Error and leaves the cursor where it was.
// Nothing here throws, allocates (except for error messages) or reads past the end of the view.
// The optional `what` argument names the field in error messages ("truncated ECN: need 1 byte,
// have 0"), so callers get a clear reason without wrapping every call.
//
// The Reader does not own the bytes: the underlying buffer must outlive it and every ByteView it
// returns.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace iroh::quic {

class Reader {
 public:
  explicit Reader(ByteView data) : data_(data) {}

  // QUIC variable-length integer (RFC 9000 §16). Non-minimal encodings are accepted.
  Result<std::uint64_t> varint(std::string_view what = "varint");

  Result<std::uint8_t> u8(std::string_view what = "u8");
  Result<std::uint16_t> u16be(std::string_view what = "u16");
  Result<std::uint32_t> u32be(std::string_view what = "u32");
  Result<std::uint64_t> u64be(std::string_view what = "u64");

  // The next n bytes, as a view into the underlying buffer.
  Result<ByteView> bytes(std::size_t n, std::string_view what = "bytes");
  // The next N bytes, copied into a fixed-size array.
  template <std::size_t N>
  Result<ByteArray<N>> array(std::string_view what = "bytes") {
    auto view = bytes(N, what);
    if (!view) return view.error();
    ByteArray<N> out{};
    std::copy(view->begin(), view->end(), out.begin());
    return out;
  }

  // Everything not yet read; consumes it.
  ByteView rest();
  // Everything not yet read, without consuming it.
  ByteView peek_rest() const { return data_.subspan(pos_); }

  std::size_t remaining() const { return data_.size() - pos_; }
  std::size_t position() const { return pos_; }
  bool empty() const { return remaining() == 0; }

 private:
  Error truncated(std::string_view what, std::size_t need) const;

  ByteView data_;
  std::size_t pos_ = 0;
};

}  // namespace iroh::quic

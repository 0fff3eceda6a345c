// Bounds-checked byte cursor. See reader.h.
#include "quic/reader.h"

#include <string>

namespace iroh::quic {

Error Reader::truncated(std::string_view what, std::size_t need) const {
  return make_error("truncated " + std::string(what) + ": need " + std::to_string(need) +
                    (need == 1 ? " byte" : " bytes") + ", have " + std::to_string(remaining()));
}

Result<std::uint64_t> Reader::varint(std::string_view what) {
  if (empty()) return truncated(what, 1);
  // RFC 9000 §16: the top two bits of the first byte give the length 1 << prefix.
  const std::size_t n = std::size_t{1} << (data_[pos_] >> 6);
  if (remaining() < n) return truncated(what, n);
  std::uint64_t value = data_[pos_] & 0x3f;
  for (std::size_t i = 1; i < n; ++i) value = (value << 8) | data_[pos_ + i];
  pos_ += n;
  return value;
}

Result<std::uint8_t> Reader::u8(std::string_view what) {
  if (remaining() < 1) return truncated(what, 1);
  return data_[pos_++];
}

Result<std::uint16_t> Reader::u16be(std::string_view what) {
  if (remaining() < 2) return truncated(what, 2);
  const auto v = static_cast<std::uint16_t>((data_[pos_] << 8) | data_[pos_ + 1]);
  pos_ += 2;
  return v;
}

Result<std::uint32_t> Reader::u32be(std::string_view what) {
  if (remaining() < 4) return truncated(what, 4);
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < 4; ++i) v = (v << 8) | data_[pos_ + i];
  pos_ += 4;
  return v;
}

Result<std::uint64_t> Reader::u64be(std::string_view what) {
  if (remaining() < 8) return truncated(what, 8);
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < 8; ++i) v = (v << 8) | data_[pos_ + i];
  pos_ += 8;
  return v;
}

Result<ByteView> Reader::bytes(std::size_t n, std::string_view what) {
  if (remaining() < n) return truncated(what, n);
  ByteView out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

ByteView Reader::rest() {
  ByteView out = data_.subspan(pos_);
  pos_ = data_.size();
  return out;
}

}  // namespace iroh::quic

#include "base/postcard.h"

namespace iroh::postcard {

void encode_varint(Bytes& out, std::uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<std::uint8_t>(value | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<std::uint8_t>(value));
}

void encode_bytes(Bytes& out, ByteView bytes) {
  encode_varint(out, bytes.size());
  append(out, bytes);
}

void encode_str(Bytes& out, std::string_view s) { encode_bytes(out, as_bytes(s)); }

Result<std::uint8_t> Reader::u8() {
  if (remaining() < 1)
    return make_error("unexpected end of data at offset " + std::to_string(pos_));
  return data_[pos_++];
}

Result<std::uint64_t> Reader::varint(int max_bytes, int width_bits, std::string_view type) {
  const std::size_t start = pos_;
  std::uint64_t value = 0;
  for (int i = 0; i < max_bytes; ++i) {
    if (remaining() < 1) {
      return make_error("unexpected end of data in " + std::string(type) + " varint at offset " +
                        std::to_string(start));
    }
    const std::uint8_t byte = data_[pos_++];
    value |= static_cast<std::uint64_t>(byte & 0x7f) << (7 * i);
    if ((byte & 0x80) == 0) {
      // The last permitted byte may only carry the bits that still fit the type.
      const int used = 7 * i;
      if (i == max_bytes - 1 && width_bits - used < 7 && (byte >> (width_bits - used)) != 0) {
        return make_error(std::string(type) + " varint overflows at offset " +
                          std::to_string(start));
      }
      return value;
    }
  }
  return make_error(std::string(type) + " varint does not terminate within " +
                    std::to_string(max_bytes) + " bytes at offset " + std::to_string(start));
}

Result<std::uint16_t> Reader::varint_u16() {
  auto v = varint(3, 16, "u16");
  if (!v.ok()) return v.error();
  return static_cast<std::uint16_t>(*v);
}

Result<std::uint32_t> Reader::varint_u32() {
  auto v = varint(5, 32, "u32");
  if (!v.ok()) return v.error();
  return static_cast<std::uint32_t>(*v);
}

Result<std::uint64_t> Reader::varint_u64() { return varint(10, 64, "u64"); }

Result<ByteView> Reader::fixed(std::size_t n) {
  if (remaining() < n) {
    return make_error("unexpected end of data: need " + std::to_string(n) + " bytes at offset " +
                      std::to_string(pos_) + ", have " + std::to_string(remaining()));
  }
  const ByteView out = data_.subspan(pos_, n);
  pos_ += n;
  return out;
}

Result<ByteView> Reader::bytes() {
  auto len = varint_u64();
  if (!len.ok()) return len.error();
  if (*len > remaining()) {
    return make_error("length " + std::to_string(*len) + " at offset " + std::to_string(pos_) +
                      " exceeds the " + std::to_string(remaining()) + " bytes left");
  }
  return fixed(static_cast<std::size_t>(*len));
}

Result<std::string> Reader::str() {
  const std::size_t start = pos_;
  auto raw = bytes();
  if (!raw.ok()) return raw.error();
  std::string s(reinterpret_cast<const char*>(raw->data()), raw->size());
  if (!is_valid_utf8(s)) {
    return make_error("string at offset " + std::to_string(start) + " is not valid UTF-8");
  }
  return s;
}

bool is_valid_utf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<std::uint8_t>(s[i]);
    std::size_t len;
    std::uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (std::size_t k = 1; k < len; ++k) {
      const auto cc = static_cast<std::uint8_t>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    const bool overlong =
        (len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000);
    if (overlong || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

}  // namespace iroh::postcard

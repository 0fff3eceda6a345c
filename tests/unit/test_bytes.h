// Byte helpers shared by the unit tests.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/text_encoding.h"

namespace iroh::testing {

// Lowercase hex to bytes; spaces and newlines are ignored so vectors can be pasted from the spec
// and RFCs as printed. A malformed literal traps: a typo in a vector must not silently become a
// short or empty buffer.
inline Bytes hex(std::string_view h) {
  std::string digits;
  for (char c : h) {
    if (c != ' ' && c != '\n') digits.push_back(c);
  }
  auto r = parse_hex_lower(digits);
  if (!r) __builtin_trap();
  return *r;
}

inline Bytes cat(std::initializer_list<ByteView> parts) {
  Bytes out;
  for (const auto& p : parts) append(out, p);
  return out;
}

}  // namespace iroh::testing

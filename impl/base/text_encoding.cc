#include "base/text_encoding.h"

#include <array>
#include <cstdint>
#include <string>

namespace iroh {
namespace {

constexpr std::string_view kHexDigits = "0123456789abcdef";

constexpr std::string_view alphabet_chars(Base32Alphabet a) {
  switch (a) {
    case Base32Alphabet::kRfc4648:
      return "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    case Base32Alphabet::kZBase32:
      return "ybndrfg8ejkmcpqxot1uwisza345h769";
    case Base32Alphabet::kBase32Hex:
      return "0123456789abcdefghijklmnopqrstuv";
  }
  return {};
}

constexpr std::string_view alphabet_name(Base32Alphabet a) {
  switch (a) {
    case Base32Alphabet::kRfc4648:
      return "base32";
    case Base32Alphabet::kZBase32:
      return "z-base-32";
    case Base32Alphabet::kBase32Hex:
      return "base32hex";
  }
  return {};
}

// Reverse lookup table: 0xff marks characters outside the alphabet.
std::array<std::uint8_t, 256> reverse_table(Base32Alphabet a) {
  std::array<std::uint8_t, 256> table;
  table.fill(0xff);
  const auto chars = alphabet_chars(a);
  for (std::size_t i = 0; i < chars.size(); ++i) {
    table[static_cast<std::uint8_t>(chars[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string printable(char c) {
  const auto u = static_cast<unsigned char>(c);
  if (u >= 0x20 && u < 0x7f) return std::string("'") + c + "'";
  constexpr std::string_view digits = "0123456789abcdef";
  return std::string("byte 0x") + digits[u >> 4] + digits[u & 0xf];
}

}  // namespace

std::string to_hex(ByteView bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (const auto b : bytes) {
    out.push_back(kHexDigits[b >> 4]);
    out.push_back(kHexDigits[b & 0xf]);
  }
  return out;
}

Result<Bytes> parse_hex_lower(std::string_view text) {
  if (text.size() % 2 != 0) {
    return make_error("hex string has odd length " + std::to_string(text.size()));
  }
  Bytes out;
  out.reserve(text.size() / 2);
  for (std::size_t i = 0; i < text.size(); i += 2) {
    const int hi = hex_value(text[i]);
    const int lo = hex_value(text[i + 1]);
    if (hi < 0 || lo < 0) {
      const std::size_t bad = hi < 0 ? i : i + 1;
      return make_error("invalid hex character " + printable(text[bad]) + " at position " +
                        std::to_string(bad) + " (lowercase 0-9a-f only)");
    }
    out.push_back(static_cast<std::uint8_t>(hi << 4 | lo));
  }
  return out;
}

std::string base32_encode(ByteView bytes, Base32Alphabet alphabet) {
  const auto chars = alphabet_chars(alphabet);
  std::string out;
  out.reserve((bytes.size() * 8 + 4) / 5);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (const auto b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      bits -= 5;
      out.push_back(chars[(buffer >> bits) & 0x1f]);
    }
  }
  if (bits > 0) out.push_back(chars[(buffer << (5 - bits)) & 0x1f]);
  if (alphabet == Base32Alphabet::kRfc4648) out = ascii_lower(out);
  return out;
}

Result<Bytes> base32_decode(std::string_view text, Base32Alphabet alphabet) {
  static const auto kRfc = reverse_table(Base32Alphabet::kRfc4648);
  static const auto kZ = reverse_table(Base32Alphabet::kZBase32);
  static const auto kHex = reverse_table(Base32Alphabet::kBase32Hex);
  const auto& table = alphabet == Base32Alphabet::kRfc4648   ? kRfc
                      : alphabet == Base32Alphabet::kZBase32 ? kZ
                                                             : kHex;
  const auto name = std::string(alphabet_name(alphabet));
  // Unpadded base32 of n bytes has 8*floor(n/5) + {0,2,4,5,7} characters.
  const std::size_t tail = text.size() % 8;
  if (tail == 1 || tail == 3 || tail == 6) {
    return make_error("invalid " + name + " length " + std::to_string(text.size()));
  }
  Bytes out;
  out.reserve(text.size() * 5 / 8);
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const std::uint8_t v = table[static_cast<std::uint8_t>(text[i])];
    if (v == 0xff) {
      return make_error("invalid " + name + " character " + printable(text[i]) + " at position " +
                        std::to_string(i));
    }
    buffer = (buffer << 5) | v;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(buffer >> bits));
    }
  }
  // The leftover bits pad the last character and must be zero (non-canonical encodings rejected).
  if (bits > 0 && (buffer & ((1u << bits) - 1)) != 0) {
    return make_error("non-zero trailing bits in the last " + name + " character at position " +
                      std::to_string(text.size() - 1));
  }
  return out;
}

std::string ascii_upper(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
  }
  return out;
}

std::string ascii_lower(std::string_view text) {
  std::string out(text);
  for (auto& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

}  // namespace iroh

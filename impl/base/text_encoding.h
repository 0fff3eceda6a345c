// Text encodings of binary identifiers.   spec §1.2, §2.3
//
// - hex: lowercase only, both ways. Rust's data-encoding HEXLOWER rejects upper case on input, and
//   so do we: accepting exactly what Rust accepts is the point.
// - base32: RFC 4648 §6 alphabet, no padding, lower case out. Decoding is data-encoding's
//   BASE32_NOPAD: upper-case alphabet only (callers upper-case first, as Rust does), the length
//   must be a valid unpadded length, and the unused trailing bits must be zero.
// - z-base-32: the human-oriented alphabet used by pkarr/DNS names.
// - base32hex: RFC 4648 §7 alphabet, lower case ("BASE32_DNSSEC"), for the TLS server name.
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace iroh {

std::string to_hex(ByteView bytes);
// Lowercase hex only (0-9a-f), even length.
Result<Bytes> parse_hex_lower(std::string_view text);

enum class Base32Alphabet {
  kRfc4648,    // ABCDEFGHIJKLMNOPQRSTUVWXYZ234567, emitted in lower case
  kZBase32,    // ybndrfg8ejkmcpqxot1uwisza345h769
  kBase32Hex,  // 0123456789abcdefghijklmnopqrstuv (RFC 4648 §7, lower case)
};

// Unpadded encoding, most significant bit first (RFC 4648 bit order for all three alphabets).
std::string base32_encode(ByteView bytes, Base32Alphabet alphabet);

// Strict unpadded decoding in the alphabet's canonical case: kRfc4648 expects UPPER case (like
// data-encoding's BASE32_NOPAD), the others lower case. Rejects padding, invalid lengths
// (len mod 8 in {1, 3, 6}) and non-zero trailing bits, each with a precise reason.
Result<Bytes> base32_decode(std::string_view text, Base32Alphabet alphabet);

// ASCII upper-casing (Rust's `to_ascii_uppercase`), used before base32 decoding of user input.
std::string ascii_upper(std::string_view text);
std::string ascii_lower(std::string_view text);

}  // namespace iroh

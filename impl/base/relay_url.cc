// RelayUrl: WHATWG URL parsing as done by the Rust `url` 2.5.8 / `idna` 1.1.0 crates.
// See relay_url.h for the scope and the deliberate url-crate behaviours.
#include "base/relay_url.h"

#include <algorithm>
#include <array>
#include <cstddef>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "base/relay_url_idna_table.h"

namespace iroh {
namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

constexpr bool is_ascii_alpha(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
constexpr bool is_ascii_digit(unsigned char c) { return c >= '0' && c <= '9'; }
constexpr bool is_ascii_hex(unsigned char c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
constexpr unsigned char ascii_lower(unsigned char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<unsigned char>(c + 0x20) : c;
}
constexpr int hex_value(unsigned char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return c - 'A' + 10;
}

bool decode_utf8(std::string_view s, std::u32string* out);

// Quote the caller's input for an error message: printable ASCII and (if the input is valid
// UTF-8) non-ASCII as is, everything else as \xNN; at most about 200 bytes of it.
std::string quote_input(std::string_view in) {
  static constexpr char kHex[] = "0123456789abcdef";
  const bool utf8 = decode_utf8(in, nullptr);
  std::string out = "\"";
  size_t n = 0;
  for (unsigned char c : in) {
    if (++n > 200 && (c & 0xc0) != 0x80) {
      out += "...";
      break;
    }
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if ((c >= 0x20 && c < 0x7f) || (c >= 0x80 && utf8)) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  out += '"';
  return out;
}

// Strict UTF-8 decoding (what a Rust &str may hold): no overlongs, no surrogates, <= U+10FFFF.
// Returns false on malformed input.
bool decode_utf8(std::string_view s, std::u32string* out) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      if (out) out->push_back(c);
      ++i;
      continue;
    }
    int len;
    char32_t cp;
    char32_t min;
    if (c >= 0xc2 && c <= 0xdf) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (i + len > s.size()) return false;
    for (int k = 1; k < len; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    if (out) out->push_back(cp);
    i += len;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Percent-encode sets (url 2.5.8, parser.rs). Non-ASCII bytes are always encoded.
// ---------------------------------------------------------------------------------------------

enum class EncodeSet { kControls, kFragment, kPath, kUserinfo, kQuery, kSpecialQuery };

constexpr bool in_encode_set(unsigned char c, EncodeSet set) {
  if (c < 0x20 || c >= 0x7f) return true;  // C0 control percent-encode set
  switch (set) {
    case EncodeSet::kControls:
      return false;
    case EncodeSet::kFragment:
      return c == ' ' || c == '"' || c == '<' || c == '>' || c == '`';
    case EncodeSet::kPath:  // url 2.5.8 does not encode '^' here (the current standard does).
      return c == ' ' || c == '"' || c == '<' || c == '>' || c == '`' || c == '#' || c == '?' ||
             c == '{' || c == '}';
    case EncodeSet::kUserinfo:
      return c == ' ' || c == '"' || c == '<' || c == '>' || c == '`' || c == '#' || c == '?' ||
             c == '{' || c == '}' || c == '/' || c == ':' || c == ';' || c == '=' || c == '@' ||
             c == '[' || c == '\\' || c == ']' || c == '^' || c == '|';
    case EncodeSet::kQuery:
      return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>';
    case EncodeSet::kSpecialQuery:
      return c == ' ' || c == '"' || c == '#' || c == '<' || c == '>' || c == '\'';
  }
  return false;
}

void percent_encode_byte(unsigned char c, EncodeSet set, std::string& out) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  if (in_encode_set(c, set)) {
    out += '%';
    out += kHex[c >> 4];
    out += kHex[c & 15];
  } else {
    out += static_cast<char>(c);
  }
}

std::string percent_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(in[i]);
    if (c == '%' && i + 2 < in.size() && is_ascii_hex(in[i + 1]) && is_ascii_hex(in[i + 2])) {
      out += static_cast<char>(hex_value(in[i + 1]) * 16 + hex_value(in[i + 2]));
      i += 2;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

// Forbidden domain code points (ASCII part): C0 controls, space, DEL and "%#/:<>?@[\]^|".
constexpr bool is_forbidden_domain_ascii(char32_t c) {
  return c <= 0x20 || c == 0x7f || c == '%' || c == '#' || c == '/' || c == ':' || c == '<' ||
         c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' || c == ']' || c == '^' ||
         c == '|';
}

// Forbidden host code points (opaque hosts of non-special URLs).
constexpr bool is_forbidden_host_byte(unsigned char c) {
  return c == 0 || c == '\t' || c == '\n' || c == '\r' || c == ' ' || c == '#' || c == '/' ||
         c == ':' || c == '<' || c == '>' || c == '?' || c == '@' || c == '[' || c == '\\' ||
         c == ']' || c == '^' || c == '|';
}

// ---------------------------------------------------------------------------------------------
// IDNA (UTS #46) mapping, a verified subset. Returns what UTS #46 maps the non-ASCII code point c
// to, for the code points we know: c itself if c is in the generated table of "inert" valid code
// points (relay_url_idna_table.h), the lower-case letter for the upper-case letters of Latin-1,
// Latin Extended-A, Greek and Cyrillic (checked one by one against the Rust oracle), and 0 for
// everything else (which we reject). Every result is an inert valid code point, so a label made
// of them needs no normalisation, CheckJoiners or CheckBidi work.
// ---------------------------------------------------------------------------------------------

bool is_inert_valid(char32_t c) {
  const auto& table = relay_url_detail::kIdnaInertValid;
  auto it = std::upper_bound(
      table.begin(), table.end(), c,
      [](char32_t v, const relay_url_detail::CodePointRange& r) { return v < r.first; });
  return it != table.begin() && c <= std::prev(it)->last;
}

char32_t idna_map(char32_t c) {
  if (is_inert_valid(c)) return c;
  // Latin-1 Supplement: À..Þ except ×.
  if (c >= 0xc0 && c <= 0xde && c != 0xd7) return c + 0x20;
  // Latin Extended-A: upper/lower pairs; the few compatibility or multi-code-point mappings
  // (İ, Ĳ, Ŀ, ŉ, ſ) are not supported.
  if (c >= 0x100 && c <= 0x17e) {
    if (c == 0x130 || c == 0x132 || c == 0x13f || c == 0x149) return 0;
    if (c == 0x178) return 0xff;  // Ÿ -> ÿ
    bool even_is_upper = c < 0x138 || (c >= 0x14a && c <= 0x177);
    bool upper = even_is_upper ? (c % 2 == 0) : (c % 2 == 1);
    return upper ? c + 1 : 0;
  }
  // Greek.
  if (c == 0x386) return 0x3ac;
  if (c >= 0x388 && c <= 0x38a) return c + 0x25;
  if (c == 0x38c) return 0x3cc;
  if (c == 0x38e || c == 0x38f) return c + 0x3f;
  if ((c >= 0x391 && c <= 0x3a1) || (c >= 0x3a3 && c <= 0x3ab)) return c + 0x20;
  // Cyrillic.
  if (c >= 0x400 && c <= 0x40f) return c + 0x50;
  if (c >= 0x410 && c <= 0x42f) return c + 0x20;
  return 0;
}

// ---------------------------------------------------------------------------------------------
// Punycode (RFC 3492), with the idna crate's u32 overflow rules.
// ---------------------------------------------------------------------------------------------

constexpr uint32_t kBase = 36, kTMin = 1, kTMax = 26, kSkew = 38, kDamp = 700;
constexpr uint32_t kInitialBias = 72, kInitialN = 128;

uint32_t punycode_adapt(uint32_t delta, uint32_t num_points, bool first_time) {
  delta = first_time ? delta / kDamp : delta / 2;
  delta += delta / num_points;
  uint32_t k = 0;
  while (delta > ((kBase - kTMin) * kTMax) / 2) {
    delta /= kBase - kTMin;
    k += kBase;
  }
  return k + (kBase - kTMin + 1) * delta / (delta + kSkew);
}

char punycode_digit(uint32_t d) { return static_cast<char>(d < 26 ? 'a' + d : '0' + (d - 26)); }

bool punycode_encode(const std::u32string& input, std::string& out) {
  uint32_t n = kInitialN, delta = 0, bias = kInitialBias;
  uint32_t basic = 0;
  for (char32_t c : input) {
    if (c < 0x80) {
      out += static_cast<char>(c);
      ++basic;
    }
  }
  uint32_t h = basic;
  if (basic > 0) out += '-';
  const uint32_t len = static_cast<uint32_t>(input.size());
  while (h < len) {
    uint32_t m = 0xffffffff;
    for (char32_t c : input) {
      if (c >= n && c < m) m = c;
    }
    uint64_t step = static_cast<uint64_t>(m - n) * (h + 1);
    if (step + delta > 0xffffffffu) return false;
    delta += static_cast<uint32_t>(step);
    n = m;
    for (char32_t c : input) {
      if (c < n) {
        if (delta == 0xffffffffu) return false;
        ++delta;
      }
      if (c == n) {
        uint32_t q = delta;
        for (uint32_t k = kBase;; k += kBase) {
          uint32_t t = k <= bias ? kTMin : (k >= bias + kTMax ? kTMax : k - bias);
          if (q < t) break;
          out += punycode_digit(t + (q - t) % (kBase - t));
          q = (q - t) / (kBase - t);
        }
        out += punycode_digit(q);
        bias = punycode_adapt(delta, h + 1, h == basic);
        delta = 0;
        ++h;
      }
    }
    ++delta;
    ++n;
  }
  return true;
}

// Decodes the part after "xn--" (already lower-case ASCII).
bool punycode_decode(std::string_view input, std::u32string& out) {
  size_t delim = input.rfind('-');
  std::string_view base, rest;
  if (delim == std::string_view::npos) {
    rest = input;
  } else {
    base = input.substr(0, delim);
    rest = delim > 0 ? input.substr(delim + 1) : input;
  }
  out.clear();
  for (char c : base) out.push_back(static_cast<unsigned char>(c));
  uint32_t n = kInitialN, bias = kInitialBias, i = 0;
  size_t pos = 0;
  while (pos < rest.size()) {
    uint32_t old_i = i, w = 1;
    for (uint32_t k = kBase;; k += kBase) {
      if (pos >= rest.size()) return false;
      unsigned char c = static_cast<unsigned char>(rest[pos++]);
      uint32_t digit;
      if (c >= 'a' && c <= 'z') {
        digit = c - 'a';
      } else if (c >= 'A' && c <= 'Z') {
        digit = c - 'A';
      } else if (c >= '0' && c <= '9') {
        digit = c - '0' + 26;
      } else {
        return false;
      }
      uint64_t product = static_cast<uint64_t>(digit) * w;
      if (product > 0xffffffffu || product + i > 0xffffffffu) return false;
      i += static_cast<uint32_t>(product);
      uint32_t t = k <= bias ? kTMin : (k >= bias + kTMax ? kTMax : k - bias);
      if (digit < t) break;
      uint64_t nw = static_cast<uint64_t>(w) * (kBase - t);
      if (nw > 0xffffffffu) return false;
      w = static_cast<uint32_t>(nw);
    }
    uint32_t length = static_cast<uint32_t>(out.size()) + 1;
    bias = punycode_adapt(i - old_i, length, old_i == 0);
    uint64_t nn = static_cast<uint64_t>(n) + i / length;
    if (nn > 0xffffffffu) return false;
    n = static_cast<uint32_t>(nn);
    i %= length;
    if (n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) return false;
    out.insert(out.begin() + i, static_cast<char32_t>(n));
    ++i;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Domain to ASCII (UTS #46 ToASCII as the url crate calls it) and host parsing.
// ---------------------------------------------------------------------------------------------

constexpr size_t kPunycodeDecodeMaxInput = 2000;  // idna 1.1.0 limits
constexpr size_t kPunycodeEncodeMaxInput = 1000;
// "U+00E9".
std::string code_point_name(char32_t c) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out = "U+";
  for (int shift = 20; shift >= 0; shift -= 4) {
    if ((c >> shift) != 0 || shift < 16) out += kHex[(c >> shift) & 15];
  }
  return out;
}

std::string forbidden_host_code_point(char32_t c) {
  return "forbidden host code point " + (c > 0x20 && c < 0x7f
                                             ? "'" + std::string(1, static_cast<char>(c)) + "'"
                                             : code_point_name(c));
}

std::string needs_idna(char32_t c) {
  return "non-ASCII host needs IDNA mapping not supported (" + code_point_name(c) + ")";
}

bool starts_with_xn(const std::u32string& label) {
  return label.size() >= 4 && label[0] == 'x' && label[1] == 'n' && label[2] == '-' &&
         label[3] == '-';
}

// Checks an ASCII (lower-case) "xn--" label. Returns "" if valid, else the reason.
std::string check_punycode_label(const std::u32string& label) {
  if (label.back() == '-') return "invalid Punycode label";
  if (label.size() - 4 > kPunycodeDecodeMaxInput) return "Punycode label too long";
  std::string digits;
  for (size_t k = 4; k < label.size(); ++k) digits += static_cast<char>(label[k]);
  std::u32string decoded;
  if (!punycode_decode(digits, decoded)) return "invalid Punycode label";
  for (char32_t c : decoded) {
    if (c < 0x80) {
      if (is_forbidden_domain_ascii(c) || c == '.') return "invalid Punycode label";
      continue;
    }
    if (idna_map(c) != c) {
      std::string text(label.begin(), label.end());  // ASCII
      return "Punycode label \"" + text + "\" decodes to " + code_point_name(c) +
             ", which is invalid in a domain or not supported (see relay_url.h)";
    }
  }
  if (decoded.size() > kPunycodeEncodeMaxInput) return "Punycode label too long";
  return "";
}

// Returns "" and sets `out` on success, else the reason.
std::string domain_to_ascii(std::string_view domain, std::string& out) {
  std::u32string cps;
  if (!decode_utf8(domain, &cps)) return "host is not valid UTF-8 after percent-decoding";
  // Map, then split into labels on '.'.
  std::vector<std::u32string> labels(1);
  for (char32_t c : cps) {
    char32_t m;
    if (c < 0x80) {
      m = ascii_lower(static_cast<unsigned char>(c));
    } else {
      m = idna_map(c);
      if (m == 0) return needs_idna(c);
    }
    if (m == '.') {
      labels.emplace_back();
      continue;
    }
    if (m < 0x80 && is_forbidden_domain_ascii(m)) {
      return forbidden_host_code_point(m);
    }
    labels.back().push_back(m);
  }
  out.clear();
  for (size_t li = 0; li < labels.size(); ++li) {
    const std::u32string& label = labels[li];
    if (li > 0) out += '.';
    bool ascii = true;
    for (char32_t c : label) ascii = ascii && c < 0x80;
    if (ascii) {
      if (starts_with_xn(label)) {
        std::string why = check_punycode_label(label);
        if (!why.empty()) return why;
      }
      for (char32_t c : label) out += static_cast<char>(c);
      continue;
    }
    if (starts_with_xn(label)) return "invalid Punycode label";
    if (label.size() > kPunycodeEncodeMaxInput) return "IDNA label too long";
    out += "xn--";
    if (!punycode_encode(label, out)) return "IDNA label too long";
  }
  return "";
}

// IPv4 number parser. Returns false on syntax failure; sets overflow if the value exceeds u32.
bool parse_ipv4_number(std::string_view in, uint32_t& value, bool& overflow) {
  overflow = false;
  if (in.empty()) return false;
  unsigned radix = 10;
  if (in.size() >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
    in.remove_prefix(2);
    radix = 16;
  } else if (in.size() >= 2 && in[0] == '0') {
    in.remove_prefix(1);
    radix = 8;
  }
  uint64_t v = 0;
  for (unsigned char c : in) {
    unsigned d;
    if (radix == 16 && is_ascii_hex(c)) {
      d = static_cast<unsigned>(hex_value(c));
    } else if (radix == 10 && is_ascii_digit(c)) {
      d = c - '0';
    } else if (radix == 8 && c >= '0' && c <= '7') {
      d = c - '0';
    } else {
      return false;
    }
    if (!overflow) {
      v = v * radix + d;
      if (v > 0xffffffffu) overflow = true;
    }
  }
  value = overflow ? 0 : static_cast<uint32_t>(v);
  return true;
}

// WHATWG "ends in a number" checker.
bool ends_in_a_number(std::string_view s) {
  size_t dot = s.rfind('.');
  std::string_view last = dot == std::string_view::npos ? s : s.substr(dot + 1);
  if (last.empty()) {
    if (dot == std::string_view::npos) return false;
    std::string_view rest = s.substr(0, dot);
    size_t d2 = rest.rfind('.');
    last = d2 == std::string_view::npos ? rest : rest.substr(d2 + 1);
  }
  if (!last.empty()) {
    bool digits = true;
    for (unsigned char c : last) digits = digits && is_ascii_digit(c);
    if (digits) return true;
  }
  uint32_t v;
  bool overflow;
  return parse_ipv4_number(last, v, overflow);
}

// WHATWG IPv4 parser. Returns "" on success.
std::string parse_ipv4(std::string_view s, uint32_t& addr) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    size_t dot = s.find('.', start);
    if (dot == std::string_view::npos) {
      parts.push_back(s.substr(start));
      break;
    }
    parts.push_back(s.substr(start, dot - start));
    start = dot + 1;
  }
  if (parts.size() > 1 && parts.back().empty()) parts.pop_back();
  if (parts.size() > 4) return "invalid IPv4 address (more than four parts)";
  std::vector<uint32_t> numbers;
  for (std::string_view part : parts) {
    uint32_t v;
    bool overflow;
    if (!parse_ipv4_number(part, v, overflow)) return "invalid IPv4 address";
    if (overflow) return "invalid IPv4 address (number out of range)";
    numbers.push_back(v);
  }
  uint32_t last = numbers.back();
  numbers.pop_back();
  if (numbers.size() > 0 && last > (0xffffffffu >> (8 * numbers.size()))) {
    return "invalid IPv4 address (number out of range)";
  }
  for (uint32_t n : numbers) {
    if (n > 255) return "invalid IPv4 address (number out of range)";
  }
  for (size_t k = 0; k < numbers.size(); ++k) last += numbers[k] << (8 * (3 - k));
  addr = last;
  return "";
}

// WHATWG IPv6 parser (input without brackets). Returns "" on success.
std::string parse_ipv6(std::string_view in, std::array<uint16_t, 8>& a) {
  a.fill(0);
  const std::string kErr = "invalid IPv6 address";
  size_t len = in.size(), i = 0;
  int piece = 0, compress = -1;
  if (len < 2) return kErr;
  auto at = [&](size_t k) -> unsigned char { return static_cast<unsigned char>(in[k]); };
  if (at(0) == ':') {
    if (at(1) != ':') return kErr;
    i = 2;
    piece = 1;
    compress = 1;
  }
  bool ipv4 = false;
  while (i < len) {
    if (piece == 8) return kErr;
    if (at(i) == ':') {
      if (compress >= 0) return kErr + " (more than one \"::\")";
      ++i;
      ++piece;
      compress = piece;
      continue;
    }
    size_t start = i, end = std::min(len, start + 4);
    uint32_t value = 0;
    while (i < end && is_ascii_hex(at(i))) {
      value = value * 16 + static_cast<uint32_t>(hex_value(at(i)));
      ++i;
    }
    if (i < len) {
      if (at(i) == '.') {
        if (i == start) return kErr;
        i = start;
        if (piece > 6) return kErr;
        ipv4 = true;
      } else if (at(i) == ':') {
        ++i;
        if (i == len) return kErr;
      } else {
        return kErr;
      }
    }
    if (ipv4) break;
    a[piece++] = static_cast<uint16_t>(value);
  }
  if (ipv4) {
    if (piece > 6) return kErr;
    int seen = 0;
    while (i < len) {
      if (seen > 0) {
        if (seen < 4 && at(i) == '.') {
          ++i;
        } else {
          return kErr + " (bad embedded IPv4 address)";
        }
      }
      int v = -1;
      while (i < len && is_ascii_digit(at(i))) {
        int d = at(i) - '0';
        if (v == -1) {
          v = d;
        } else if (v == 0) {
          return kErr + " (bad embedded IPv4 address)";
        } else {
          v = v * 10 + d;
          if (v > 255) return kErr + " (bad embedded IPv4 address)";
        }
        ++i;
      }
      if (v < 0) return kErr + " (bad embedded IPv4 address)";
      a[piece] = static_cast<uint16_t>(a[piece] * 0x100 + v);
      ++seen;
      if (seen == 2 || seen == 4) ++piece;
    }
    if (seen != 4) return kErr + " (bad embedded IPv4 address)";
  }
  if (i < len) return kErr;
  if (compress >= 0) {
    int swaps = piece - compress;
    piece = 7;
    while (swaps > 0) {
      std::swap(a[piece], a[compress + swaps - 1]);
      --swaps;
      --piece;
    }
  } else if (piece != 8) {
    return kErr;
  }
  return "";
}

std::string serialize_ipv6(const std::array<uint16_t, 8>& a) {
  static constexpr char kHex[] = "0123456789abcdef";
  // Longest run of >= 2 zero pieces (first one on ties).
  int best = -1, best_len = 1;
  for (int k = 0; k < 8;) {
    if (a[k] != 0) {
      ++k;
      continue;
    }
    int e = k;
    while (e < 8 && a[e] == 0) ++e;
    if (e - k > best_len) best = k, best_len = e - k;
    k = e;
  }
  std::string out = "[";
  for (int k = 0; k < 8; ++k) {
    if (k == best) {
      out += k == 0 ? "::" : ":";
      k += best_len - 1;
      continue;
    }
    uint16_t v = a[k];
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      int d = (v >> shift) & 15;
      if (d || started || shift == 0) {
        out += kHex[d];
        started = true;
      }
    }
    if (k != 7) out += ':';
  }
  out += ']';
  return out;
}

// ---------------------------------------------------------------------------------------------
// Dot segments
// ---------------------------------------------------------------------------------------------

bool is_single_dot(std::string_view s) { return s == "." || s == "%2e" || s == "%2E"; }
bool is_double_dot(std::string_view s) {
  return s == ".." || s == ".%2e" || s == ".%2E" || s == "%2e." || s == "%2E." || s == "%2e%2e" ||
         s == "%2e%2E" || s == "%2E%2e" || s == "%2E%2E";
}

std::optional<uint16_t> default_port_for(std::string_view scheme) {
  if (scheme == "http" || scheme == "ws") return 80;
  if (scheme == "https" || scheme == "wss") return 443;
  if (scheme == "ftp") return 21;
  return std::nullopt;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// The parser
// ---------------------------------------------------------------------------------------------

class RelayUrlParser {
 public:
  explicit RelayUrlParser(std::string_view original) : original_(original) {}

  Result<RelayUrl> run() {
    if (!decode_utf8(original_, nullptr)) return fail("input is not valid UTF-8");
    // Strip leading/trailing C0 control or space, remove all ASCII tab or newline.
    size_t b = 0, e = original_.size();
    while (b < e && static_cast<unsigned char>(original_[b]) <= 0x20) ++b;
    while (e > b && static_cast<unsigned char>(original_[e - 1]) <= 0x20) --e;
    for (size_t k = b; k < e; ++k) {
      char c = original_[k];
      if (c != '\t' && c != '\n' && c != '\r') in_ += c;
    }

    // Scheme.
    if (in_.empty()) return fail("empty URL");
    if (!is_ascii_alpha(at(0))) return fail("missing scheme (relative URL without a base)");
    std::string scheme;
    size_t p = 0;
    while (p < in_.size() && at(p) != ':') {
      unsigned char c = at(p);
      if (!(is_ascii_alpha(c) || is_ascii_digit(c) || c == '+' || c == '-' || c == '.')) {
        return fail("missing scheme (relative URL without a base)");
      }
      scheme += static_cast<char>(ascii_lower(c));
      ++p;
    }
    if (p == in_.size()) return fail("missing scheme (relative URL without a base)");
    ++p;  // ':'
    if (scheme == "file") {
      return fail("unsupported scheme \"file\" (a relay cannot be a file: URL)");
    }
    url_.default_port_ = default_port_for(scheme);
    special_ = url_.default_port_.has_value();
    out_ = scheme + ":";
    url_.scheme_end_ = static_cast<uint32_t>(scheme.size());

    std::string err;
    if (special_) {
      // Special authority (ignore) slashes: any number of '/' or '\'.
      while (p < in_.size() && (at(p) == '/' || at(p) == '\\')) ++p;
      err = after_double_slash(p);
    } else if (in_.compare(p, 2, "//") == 0) {
      err = after_double_slash(p + 2);
    } else {
      // No authority.
      url_.username_begin_ = url_.username_end_ = static_cast<uint32_t>(out_.size());
      url_.password_begin_ = url_.password_end_ = url_.username_end_;
      const size_t path_begin = out_.size();
      url_.path_begin_ = static_cast<uint32_t>(path_begin);
      if (p < in_.size() && at(p) == '/') {
        out_ += '/';
        p = parse_path(p + 1, path_begin);
        if (out_.compare(path_begin, 2, "//") == 0) {
          out_.insert(path_begin, "/.");  // keep "foo:/.//p" from becoming "foo://p"
          url_.path_begin_ += 2;
        }
      } else {
        // Opaque path.
        while (p < in_.size() && at(p) != '?' && at(p) != '#') {
          percent_encode_byte(at(p), EncodeSet::kControls, out_);
          ++p;
        }
      }
      url_.path_end_ = static_cast<uint32_t>(out_.size());
      query_and_fragment(p);
    }
    if (!err.empty()) return fail(err);
    url_.serialization_ = std::move(out_);
    return std::move(url_);
  }

 private:
  unsigned char at(size_t k) const { return static_cast<unsigned char>(in_[k]); }
  bool is_path_end(unsigned char c) const {
    return c == '/' || c == '?' || c == '#' || (special_ && c == '\\');
  }

  Error fail(const std::string& reason) const {
    return make_error("invalid relay URL " + quote_input(original_) + ": " + reason);
  }

  // Authority, host, port, path, query, fragment. Returns "" or the reason for failure.
  std::string after_double_slash(size_t p) {
    out_ += "//";
    // Userinfo: everything before the last '@' of the authority.
    size_t end = p, last_at = std::string::npos;
    while (end < in_.size() && !is_path_end(at(end))) {
      if (at(end) == '@') last_at = end;
      ++end;
    }
    bool has_authority = false;
    url_.username_begin_ = url_.username_end_ = static_cast<uint32_t>(out_.size());
    url_.password_begin_ = url_.password_end_ = url_.username_end_;
    if (last_at == p) {
      // Empty userinfo: "http://@host".
      if (p + 1 < in_.size() && is_path_end(at(p + 1))) return "empty host";
      p = last_at + 1;
    } else if (last_at != std::string::npos) {
      std::string user, pass;
      bool seen_colon = false;
      for (size_t k = p; k < last_at; ++k) {
        if (at(k) == ':' && !seen_colon) {
          seen_colon = true;
          continue;
        }
        percent_encode_byte(at(k), EncodeSet::kUserinfo, seen_colon ? pass : user);
      }
      if (!user.empty() || !pass.empty()) {
        has_authority = true;
        out_ += user;
        url_.username_end_ = static_cast<uint32_t>(out_.size());
        url_.password_begin_ = url_.password_end_ = url_.username_end_;
        if (!pass.empty()) {
          out_ += ':';
          url_.password_begin_ = static_cast<uint32_t>(out_.size());
          out_ += pass;
          url_.password_end_ = static_cast<uint32_t>(out_.size());
        }
        out_ += '@';
      }
      p = last_at + 1;
    }

    // Host: up to ':' (outside brackets), '/', '?', '#', or '\' for special schemes.
    size_t q = p;
    bool in_brackets = false;
    while (q < in_.size()) {
      unsigned char c = at(q);
      if (c == ':' && !in_brackets) break;
      if (is_path_end(c)) break;
      if (c == '[') in_brackets = true;
      if (c == ']') in_brackets = false;
      ++q;
    }
    std::string_view host_in = std::string_view(in_).substr(p, q - p);
    if (special_ && host_in.empty()) return "empty host";
    std::string err = special_ ? parse_special_host(host_in) : parse_opaque_host(host_in);
    if (!err.empty()) return err;
    if (url_.host_.empty()) {
      if (q < in_.size() && at(q) == ':') return "empty host (port without a host)";
      if (has_authority) return "empty host";
    }
    out_ += url_.host_;
    p = q;

    // Port.
    if (p < in_.size() && at(p) == ':') {
      ++p;
      uint32_t port = 0;
      bool any = false;
      while (p < in_.size()) {
        unsigned char c = at(p);
        if (is_ascii_digit(c)) {
          port = port * 10 + (c - '0');
          if (port > 65535) return "port out of range (> 65535)";
          any = true;
        } else if (c == '/' || c == '\\' || c == '?' || c == '#') {
          break;  // note: '\' ends the port for non-special schemes too (url crate)
        } else {
          return "invalid port";
        }
        ++p;
      }
      if (any && port != url_.default_port_) {
        url_.port_ = static_cast<uint16_t>(port);
        out_ += ':' + std::to_string(port);
      }
    }

    // Path start.
    const size_t path_begin = out_.size();
    url_.path_begin_ = static_cast<uint32_t>(path_begin);
    if (special_) {
      out_ += '/';
      if (p < in_.size() && (at(p) == '/' || at(p) == '\\')) ++p;
      p = parse_path(p, path_begin);
    } else if (p < in_.size() && at(p) != '?' && at(p) != '#') {
      out_ += '/';
      if (at(p) == '/') ++p;
      p = parse_path(p, path_begin);
    }
    url_.path_end_ = static_cast<uint32_t>(out_.size());
    query_and_fragment(p);
    return "";
  }

  std::string parse_special_host(std::string_view h) {
    if (!h.empty() && h.front() == '[') {
      if (h.back() != ']' || h.size() < 2) return "unterminated IPv6 address";
      std::array<uint16_t, 8> a;
      std::string err = parse_ipv6(h.substr(1, h.size() - 2), a);
      if (!err.empty()) return err;
      url_.host_ = serialize_ipv6(a);
      return "";
    }
    std::string decoded = percent_decode(h);
    std::string ascii;
    std::string err = domain_to_ascii(decoded, ascii);
    if (!err.empty()) return err;
    if (ascii.empty()) return "empty host";
    if (ends_in_a_number(ascii)) {
      uint32_t v = 0;
      err = parse_ipv4(ascii, v);
      if (!err.empty()) return err;
      url_.host_ = std::to_string(v >> 24) + "." + std::to_string((v >> 16) & 255) + "." +
                   std::to_string((v >> 8) & 255) + "." + std::to_string(v & 255);
      return "";
    }
    url_.host_ = std::move(ascii);
    return "";
  }

  std::string parse_opaque_host(std::string_view h) {
    if (!h.empty() && h.front() == '[') {
      if (h.back() != ']' || h.size() < 2) return "unterminated IPv6 address";
      std::array<uint16_t, 8> a;
      std::string err = parse_ipv6(h.substr(1, h.size() - 2), a);
      if (!err.empty()) return err;
      url_.host_ = serialize_ipv6(a);
      return "";
    }
    std::string out;
    for (unsigned char c : h) {
      if (is_forbidden_host_byte(c)) {
        return forbidden_host_code_point(c);
      }
      percent_encode_byte(c, EncodeSet::kControls, out);
    }
    url_.host_ = std::move(out);
    return "";
  }

  // Path state, from p (just after the path's leading '/', which out_ ends with and which is at
  // out_[path_begin]) up to '?', '#' or the end. Works on the serialization like the url crate
  // does, including its quirk that ".." never removes a segment that looks like a Windows drive
  // letter ("http://h/x/C:/.." -> "http://h/x/C:/"), for every scheme.
  size_t parse_path(size_t p, size_t path_begin) {
    while (true) {
      const size_t segment_begin = out_.size();
      bool slash = false;
      while (p < in_.size()) {
        unsigned char c = at(p);
        if (c == '/' || (special_ && c == '\\')) {
          out_ += '/';
          slash = true;
          ++p;
          break;
        }
        if (c == '?' || c == '#') break;
        percent_encode_byte(c, EncodeSet::kPath, out_);
        ++p;
      }
      const std::string segment =
          out_.substr(segment_begin, out_.size() - segment_begin - (slash ? 1 : 0));
      if (is_double_dot(segment)) {
        out_.resize(segment_begin);
        if (out_.back() == '/' && last_slash_can_be_removed(path_begin)) out_.pop_back();
        // Shorten the path: drop everything after its last '/'.
        out_.resize(out_.rfind('/') + 1);
        if (slash && out_.back() != '/') out_ += '/';
      } else if (is_single_dot(segment)) {
        out_.resize(segment_begin);
        if (out_.back() != '/') out_ += '/';
      }
      if (!slash) return p;
    }
  }

  // out_ ends with '/': may ".." remove it? Not if it is the path's root slash, nor if the
  // segment before it starts like a Windows drive letter ("C:", "C|", "C:/...", "C:\\...").
  bool last_slash_can_be_removed(size_t path_begin) const {
    if (out_.size() < 2) return false;
    size_t before = out_.rfind('/', out_.size() - 2);
    if (before == std::string::npos || before < path_begin) return false;
    std::string_view rest = std::string_view(out_).substr(before + 1);
    auto is_end = [](char c) { return c == '/' || c == '\\' || c == '?' || c == '#'; };
    bool drive_letter = rest.size() >= 2 && is_ascii_alpha(rest[0]) &&
                        (rest[1] == ':' || rest[1] == '|') && (rest.size() == 2 || is_end(rest[2]));
    return !drive_letter;
  }

  void query_and_fragment(size_t p) {
    if (p < in_.size() && at(p) == '?') {
      ++p;
      out_ += '?';
      url_.query_begin_ = static_cast<uint32_t>(out_.size());
      EncodeSet set = special_ ? EncodeSet::kSpecialQuery : EncodeSet::kQuery;
      while (p < in_.size() && at(p) != '#') percent_encode_byte(at(p++), set, out_);
    }
    if (p < in_.size() && at(p) == '#') {
      ++p;
      out_ += '#';
      url_.fragment_begin_ = static_cast<uint32_t>(out_.size());
      while (p < in_.size()) percent_encode_byte(at(p++), EncodeSet::kFragment, out_);
    }
  }

  std::string_view original_;
  std::string in_;
  std::string out_;
  bool special_ = false;
  RelayUrl url_;
};

Result<RelayUrl> RelayUrl::parse(std::string_view input) { return RelayUrlParser(input).run(); }

std::string_view RelayUrl::username() const {
  return std::string_view(serialization_).substr(username_begin_, username_end_ - username_begin_);
}
std::string_view RelayUrl::password() const {
  return std::string_view(serialization_).substr(password_begin_, password_end_ - password_begin_);
}
std::string_view RelayUrl::path() const {
  return std::string_view(serialization_).substr(path_begin_, path_end_ - path_begin_);
}
std::optional<std::string_view> RelayUrl::query() const {
  if (!query_begin_) return std::nullopt;
  uint32_t end =
      fragment_begin_ ? *fragment_begin_ - 1 : static_cast<uint32_t>(serialization_.size());
  return std::string_view(serialization_).substr(*query_begin_, end - *query_begin_);
}
std::optional<std::string_view> RelayUrl::fragment() const {
  if (!fragment_begin_) return std::nullopt;
  return std::string_view(serialization_).substr(*fragment_begin_);
}

}  // namespace iroh

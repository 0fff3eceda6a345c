#include "base/socket_addr.h"

#include <charconv>
#include <cstdio>
#include <optional>

namespace iroh {
namespace {

// Rust's Ipv4Addr::from_str: exactly four decimal octets, each 1-3 digits, no leading zeros
// ("01" is rejected since Rust 1.55), value <= 255.
std::optional<ByteArray<4>> parse_ipv4(std::string_view s) {
  ByteArray<4> out{};
  std::size_t pos = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (pos >= s.size() || s[pos] != '.') return std::nullopt;
      ++pos;
    }
    const std::size_t start = pos;
    unsigned value = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9' && pos - start < 3) {
      value = value * 10 + static_cast<unsigned>(s[pos] - '0');
      ++pos;
    }
    const std::size_t digits = pos - start;
    if (digits == 0 || value > 255 || (digits > 1 && s[start] == '0')) return std::nullopt;
    out[part] = static_cast<std::uint8_t>(value);
  }
  if (pos != s.size()) return std::nullopt;
  return out;
}

// RFC 4291 §2.2 text forms: 1-4 hex digits per group, one "::", optional trailing dotted IPv4.
std::optional<ByteArray<16>> parse_ipv6(std::string_view s) {
  std::uint16_t head[8];
  std::uint16_t tail[8];
  int n_head = 0, n_tail = 0;
  bool compressed = false;
  std::size_t pos = 0;
  if (s.starts_with("::")) {
    compressed = true;
    pos = 2;
    if (pos == s.size()) return ByteArray<16>{};
  } else if (s.starts_with(":")) {
    return std::nullopt;
  }
  bool have_v4 = false;
  ByteArray<4> v4{};
  while (pos < s.size()) {
    std::uint16_t* groups = compressed ? tail : head;
    int& n = compressed ? n_tail : n_head;
    if (n_head + n_tail >= 8) return std::nullopt;
    // A dotted IPv4 may end the address in place of the last two groups.
    const std::size_t next_colon = s.find(':', pos);
    const std::string_view token = s.substr(
        pos, next_colon == std::string_view::npos ? std::string_view::npos : next_colon - pos);
    if (next_colon == std::string_view::npos && token.find('.') != std::string_view::npos) {
      auto ip4 = parse_ipv4(token);
      if (!ip4 || n_head + n_tail > 6) return std::nullopt;
      v4 = *ip4;
      have_v4 = true;
      pos = s.size();
      break;
    }
    if (token.empty() || token.size() > 4) return std::nullopt;
    unsigned value = 0;
    for (const char c : token) {
      int d;
      if (c >= '0' && c <= '9')
        d = c - '0';
      else if (c >= 'a' && c <= 'f')
        d = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F')
        d = c - 'A' + 10;
      else
        return std::nullopt;
      value = value * 16 + static_cast<unsigned>(d);
    }
    groups[n++] = static_cast<std::uint16_t>(value);
    pos += token.size();
    if (pos == s.size()) break;
    ++pos;  // the ':'
    if (pos < s.size() && s[pos] == ':') {
      if (compressed) return std::nullopt;  // a second "::"
      compressed = true;
      ++pos;
      if (pos == s.size()) break;
    } else if (pos == s.size()) {
      return std::nullopt;  // trailing single ':'
    }
  }
  const int groups_used = n_head + n_tail + (have_v4 ? 2 : 0);
  if (compressed ? groups_used > 7 : groups_used != 8) return std::nullopt;
  ByteArray<16> out{};
  for (int i = 0; i < n_head; ++i) {
    out[2 * i] = static_cast<std::uint8_t>(head[i] >> 8);
    out[2 * i + 1] = static_cast<std::uint8_t>(head[i]);
  }
  const int tail_start = 8 - n_tail - (have_v4 ? 2 : 0);
  for (int i = 0; i < n_tail; ++i) {
    out[2 * (tail_start + i)] = static_cast<std::uint8_t>(tail[i] >> 8);
    out[2 * (tail_start + i) + 1] = static_cast<std::uint8_t>(tail[i]);
  }
  if (have_v4) std::copy(v4.begin(), v4.end(), out.begin() + 12);
  return out;
}

// Rust's net parser reads decimal numbers with any count of leading zeros ("000080" is port 80)
// and no sign; the value must fit the type.
std::optional<std::uint64_t> parse_decimal(std::string_view s, std::uint64_t max) {
  if (s.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<unsigned>(c - '0');
    if (value > max) return std::nullopt;
  }
  return value;
}

std::optional<std::uint16_t> parse_port(std::string_view s) {
  auto v = parse_decimal(s, 65535);
  if (!v) return std::nullopt;
  return static_cast<std::uint16_t>(*v);
}

std::string format_ipv4(ByteView ip) {
  return std::to_string(ip[0]) + "." + std::to_string(ip[1]) + "." + std::to_string(ip[2]) + "." +
         std::to_string(ip[3]);
}

}  // namespace

std::string format_ipv6(const ByteArray<16>& ip) {
  std::uint16_t g[8];
  for (int i = 0; i < 8; ++i) g[i] = static_cast<std::uint16_t>(ip[2 * i] << 8 | ip[2 * i + 1]);
  const bool mapped =
      g[0] == 0 && g[1] == 0 && g[2] == 0 && g[3] == 0 && g[4] == 0 && g[5] == 0xffff;
  if (mapped) return "::ffff:" + format_ipv4(ByteView(ip).subspan(12, 4));
  int best_start = -1, best_len = 0;
  for (int i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    int j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len) {
      best_start = i;
      best_len = j - i;
    }
    i = j;
  }
  if (best_len < 2) best_start = -1;
  std::string out;
  char buf[8];
  for (int i = 0; i < 8; ++i) {
    if (i == best_start) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (!out.empty() && out.back() != ':') out += ':';
    std::snprintf(buf, sizeof buf, "%x", g[i]);
    out += buf;
  }
  return out;
}

SocketAddr SocketAddr::v4(const ByteArray<4>& ip, std::uint16_t port) {
  SocketAddr a;
  a.family_ = Family::kV4;
  std::copy(ip.begin(), ip.end(), a.ip_.begin());
  a.port_ = port;
  return a;
}

SocketAddr SocketAddr::v6(const ByteArray<16>& ip, std::uint16_t port) {
  SocketAddr a;
  a.family_ = Family::kV6;
  a.ip_ = ip;
  a.port_ = port;
  return a;
}

Result<SocketAddr> SocketAddr::parse(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error("invalid socket address \"" + std::string(text) + "\": " + std::string(why));
  };
  if (text.starts_with("[")) {
    const std::size_t close = text.find(']');
    if (close == std::string_view::npos) return bad("missing ']'");
    if (close + 1 >= text.size() || text[close + 1] != ':') return bad("expected ]:PORT");
    std::string_view inner = text.substr(1, close - 1);
    // An optional "%scope_id" (decimal u32) is accepted and dropped, as the postcard wire form
    // has no room for it (spec §2.2).
    if (const std::size_t pct = inner.find('%'); pct != std::string_view::npos) {
      if (!parse_decimal(inner.substr(pct + 1), 0xffffffffULL)) {
        return bad("invalid IPv6 scope id (decimal u32)");
      }
      inner = inner.substr(0, pct);
    }
    auto ip = parse_ipv6(inner);
    if (!ip) return bad("invalid IPv6 address");
    auto port = parse_port(text.substr(close + 2));
    if (!port) return bad("invalid port (0-65535)");
    return v6(*ip, *port);
  }
  const std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) return bad("expected IP:PORT");
  auto ip = parse_ipv4(text.substr(0, colon));
  if (!ip) {
    return bad(text.substr(0, colon).find(':') != std::string_view::npos
                   ? "IPv6 addresses need brackets: [IP]:PORT"
                   : "invalid IPv4 address");
  }
  auto port = parse_port(text.substr(colon + 1));
  if (!port) return bad("invalid port (0-65535)");
  return v4(*ip, *port);
}

std::string SocketAddr::ip_string() const { return is_v4() ? format_ipv4(ip()) : format_ipv6(ip_); }

std::string SocketAddr::to_string() const {
  return is_v4() ? ip_string() + ":" + std::to_string(port_)
                 : "[" + ip_string() + "]:" + std::to_string(port_);
}

}  // namespace iroh

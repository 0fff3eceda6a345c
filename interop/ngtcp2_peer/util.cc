// Small helpers shared by listen and connect: clocks, randomness, text, the pattern table.
#include <arpa/inet.h>
#include <gnutls/crypto.h>
#include <netinet/in.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstring>
#include <ctime>

#include "base/socket_addr.h"
#include "peer.h"

namespace ngpeer {

std::uint64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::uint64_t(ts.tv_sec) * 1000000000ull + std::uint64_t(ts.tv_nsec);
}

double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

void random_bytes(std::uint8_t* out, std::size_t len) {
  if (gnutls_rnd(GNUTLS_RND_RANDOM, out, len) != 0) {
    std::fprintf(stderr, "%s: error: gnutls_rnd failed\n", kProgName);
    std::abort();
  }
}

std::string hex(const std::uint8_t* data, std::size_t len) {
  static const char* digits = "0123456789abcdef";
  std::string s;
  s.reserve(len * 2);
  for (std::size_t i = 0; i < len; i++) {
    s += digits[data[i] >> 4];
    s += digits[data[i] & 15];
  }
  return s;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += char(c);
        }
    }
  }
  return out;
}

void emit_line(const std::string& line) {
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

namespace {
struct PatternTable {
  std::uint8_t rows[256][kPatternBlock];
  PatternTable() {
    for (unsigned c = 0; c < 256; c++)
      for (std::size_t j = 0; j < kPatternBlock; j++)
        rows[c][j] = std::uint8_t((j * 131 + c) & 0xff);
  }
};
const PatternTable& table() {
  static const PatternTable t;
  return t;
}
}  // namespace

const std::uint8_t* pattern_row(std::uint64_t stream_offset, std::uint64_t k) {
  return table().rows[((stream_offset >> 13) + k) & 0xff] + (stream_offset & (kPatternBlock - 1));
}

std::size_t pattern_mismatch(const std::uint8_t* data, std::size_t len, std::uint64_t offset,
                             std::uint64_t k) {
  std::size_t done = 0;
  while (done < len) {
    std::uint64_t off = offset + done;
    std::size_t piece =
        std::min<std::size_t>(len - done, kPatternBlock - (off & (kPatternBlock - 1)));
    const std::uint8_t* expect = pattern_row(off, k);
    if (std::memcmp(data + done, expect, piece) != 0) {
      for (std::size_t i = 0; i < piece; i++)
        if (data[done + i] != expect[i]) return done + i;
    }
    done += piece;
  }
  return len;
}

std::string Address::to_string() const {
  char ip[INET6_ADDRSTRLEN] = {0};
  if (storage.ss_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(&storage);
    inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
    return std::string(ip) + ":" + std::to_string(ntohs(in->sin_port));
  }
  auto* in6 = reinterpret_cast<const sockaddr_in6*>(&storage);
  inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
  return "[" + std::string(ip) + "]:" + std::to_string(ntohs(in6->sin6_port));
}

std::optional<Address> parse_address(std::string_view text) {
  // Same text rules as Rust's SocketAddr (and our tickets): a.b.c.d:port or [v6]:port.
  auto parsed = iroh::SocketAddr::parse(text);
  if (!parsed.ok()) return std::nullopt;
  Address a;
  if (parsed->is_v4()) {
    auto* in = reinterpret_cast<sockaddr_in*>(&a.storage);
    in->sin_family = AF_INET;
    in->sin_port = htons(parsed->port());
    std::memcpy(&in->sin_addr, parsed->ip().data(), 4);
    a.len = sizeof(sockaddr_in);
  } else {
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&a.storage);
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(parsed->port());
    std::memcpy(&in6->sin6_addr, parsed->ip().data(), 16);
    a.len = sizeof(sockaddr_in6);
  }
  return a;
}

[[noreturn]] void usage_error(const std::string& message) {
  std::fprintf(stderr, "%s: error: %s\n", kProgName, message.c_str());
  std::exit(2);
}

}  // namespace ngpeer

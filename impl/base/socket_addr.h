// IP socket addresses as iroh carries them: Rust's `std::net::SocketAddr`.   spec §2.2
//
// The text form matches Rust's Display/FromStr (`1.2.3.4:80`, `[2001:db8::1]:443`, IPv6 printed
// per RFC 5952 with IPv4-mapped addresses as `::ffff:a.b.c.d`). flowinfo and scope id are not
// part of the wire form (postcard encodes only ip and port), so they are not modelled.
#pragma once

#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/result.h"

namespace iroh {

class SocketAddr {
 public:
  enum class Family : std::uint8_t { kV4 = 0, kV6 = 1 };  // postcard variant indices

  SocketAddr() = default;
  static SocketAddr v4(const ByteArray<4>& ip, std::uint16_t port);
  static SocketAddr v6(const ByteArray<16>& ip, std::uint16_t port);
  // `a.b.c.d:port` or `[ipv6%scope]:port`, as Rust's SocketAddr::from_str (the scope id is
  // parsed and dropped; ports may carry leading zeros).
  static Result<SocketAddr> parse(std::string_view text);

  Family family() const { return family_; }
  bool is_v4() const { return family_ == Family::kV4; }
  // 4 bytes for V4, 16 for V6.
  ByteView ip() const { return ByteView(ip_).first(is_v4() ? 4 : 16); }
  std::uint16_t port() const { return port_; }

  std::string ip_string() const;
  std::string to_string() const;

  // Rust's derived Ord: V4 < V6, then (ip octets, port). Unused ip bytes are always zero.
  friend auto operator<=>(const SocketAddr&, const SocketAddr&) = default;
  friend bool operator==(const SocketAddr&, const SocketAddr&) = default;

 private:
  Family family_ = Family::kV4;
  ByteArray<16> ip_{};
  std::uint16_t port_ = 0;
};

// Rust's Ipv6Addr Display: longest run (>= 2) of zero groups compressed, leftmost on ties,
// lowercase hex; `::ffff:a.b.c.d` for IPv4-mapped addresses.
std::string format_ipv6(const ByteArray<16>& ip);

}  // namespace iroh

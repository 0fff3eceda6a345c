#include "base/socket_addr.h"

#include <gtest/gtest.h>

namespace iroh {
namespace {

TEST(SocketAddr, ParsesAndPrintsLikeRust) {
  const std::pair<const char*, const char*> cases[] = {
      {"127.0.0.1:1234", "127.0.0.1:1234"},
      {"0.0.0.0:0", "0.0.0.0:0"},
      {"255.255.255.255:65535", "255.255.255.255:65535"},
      {"[::1]:4433", "[::1]:4433"},
      {"[::]:1", "[::]:1"},
      {"[2001:DB8:0:0:0:0:0:1]:443", "[2001:db8::1]:443"},
      {"[2001:db8:0:1:0:0:0:1]:1", "[2001:db8:0:1::1]:1"},  // longest run compressed
      {"[1:0:0:2:0:0:0:3]:1", "[1:0:0:2::3]:1"},
      {"[1:0:0:2:0:0:3:4]:1", "[1::2:0:0:3:4]:1"},     // leftmost on a tie
      {"[1:2:3:4:5:6:0:8]:1", "[1:2:3:4:5:6:0:8]:1"},  // single zero group kept
      {"[::ffff:1.2.3.4]:5", "[::ffff:1.2.3.4]:5"},    // IPv4-mapped
      {"[::1.2.3.4]:5", "[::102:304]:5"},              // IPv4-compatible: plain hex
      {"[fe80::1:2]:80", "[fe80::1:2]:80"},
      {"[fe80::1%2]:443", "[fe80::1]:443"},  // scope id dropped
      {"[::1%4294967295]:5", "[::1]:5"},
      {"1.2.3.4:000080", "1.2.3.4:80"},  // leading zeros in ports
      {"1.2.3.4:0000000000000000000000000000000000000000", "1.2.3.4:0"},
  };
  for (const auto& [in, out] : cases) {
    auto a = SocketAddr::parse(in);
    ASSERT_TRUE(a.ok()) << in << ": " << a.error().message;
    EXPECT_EQ(a->to_string(), out) << in;
  }
}

TEST(SocketAddr, RejectsMalformed) {
  for (const auto* in : {"",
                         "1.2.3.4",
                         "1.2.3.4:",
                         "1.2.3.4:65536",
                         "1.2.3.4:-1",
                         "1.2.3:80",
                         "1.2.3.4.5:80",
                         "01.2.3.4:80",
                         "256.0.0.1:80",
                         "::1:80",
                         "[::1]",
                         "[::1]:",
                         "[::1:80",
                         "[1:2:3:4:5:6:7:8:9]:1",
                         "[1::2::3]:1",
                         "[:1:2]:1",
                         "[1:2:3:4:5:6:7]:1",
                         "[12345::]:1",
                         "host:80",
                         "[::g]:1",
                         "1.2.3.4:80 ",
                         "[::1%]:5",
                         "[::1%4294967296]:5",
                         "[::1%-1]:5",
                         "[::1%+1]:5",
                         "[fe80::1%eth0]:5",
                         "1.2.3.4:0065536",
                         "1.2.3.4:+80"}) {
    EXPECT_FALSE(SocketAddr::parse(in).ok()) << in;
  }
}

TEST(SocketAddr, OrdersLikeRust) {
  // V4 before V6; then ip octets; then port.
  auto a = *SocketAddr::parse("9.9.9.9:9");
  auto b = *SocketAddr::parse("[::1]:1");
  auto c = *SocketAddr::parse("1.2.3.4:5");
  auto d = *SocketAddr::parse("1.2.3.4:6");
  EXPECT_LT(a, b);
  EXPECT_LT(c, a);
  EXPECT_LT(c, d);
}

}  // namespace
}  // namespace iroh

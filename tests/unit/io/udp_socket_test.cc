#include "io/udp_socket.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace iroh::io {
namespace {

SocketAddr loopback_v4() { return SocketAddr::v4({127, 0, 0, 1}, 0); }
SocketAddr loopback_v6() {
  ByteArray<16> ip{};
  ip[15] = 1;
  return SocketAddr::v6(ip, 0);
}

// Sets (or clears) the IROHLAB_NO_GSO / IROHLAB_NO_GRO switches for the scope of a test.
class EnvGuard {
 public:
  EnvGuard(bool no_gso, bool no_gro) {
    if (no_gso) ::setenv("IROHLAB_NO_GSO", "1", 1);
    if (no_gro) ::setenv("IROHLAB_NO_GRO", "1", 1);
  }
  ~EnvGuard() {
    ::unsetenv("IROHLAB_NO_GSO");
    ::unsetenv("IROHLAB_NO_GRO");
  }
};

struct Got {
  SocketAddr from;
  std::optional<SocketAddr> local;
  std::uint8_t ecn;
  Bytes data;
};

// Receives until `want` datagrams arrived or the deadline passed (bounded: never hangs).
std::vector<Got> receive_n(boost::asio::io_context& io, UdpSocket& sock, std::size_t want,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(2000)) {
  std::vector<Got> got;
  bool failed = false;
  std::function<void(Result<std::span<const ReceivedDatagram>>)> on_batch;
  on_batch = [&](Result<std::span<const ReceivedDatagram>> batch) {
    if (!batch.ok()) {
      ADD_FAILURE() << batch.error().message;
      failed = true;
      return;
    }
    for (const auto& d : *batch)
      got.push_back({d.from, d.local, d.ecn, Bytes(d.data.begin(), d.data.end())});
    if (got.size() < want) sock.async_receive(on_batch);
  };
  sock.async_receive(on_batch);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && !failed && std::chrono::steady_clock::now() < deadline) {
    io.restart();
    io.run_for(std::chrono::milliseconds(20));
  }
  // Drop any outstanding wait so the handler (which references locals) cannot run later.
  sock.cancel();
  return got;
}

Bytes pattern(std::size_t len, std::uint8_t seed) {
  Bytes b(len);
  for (std::size_t i = 0; i < len; ++i) b[i] = static_cast<std::uint8_t>(seed + i * 7);
  return b;
}

struct Mode {
  bool no_gso;
  bool no_gro;
  bool v6;
};

std::string mode_name(const ::testing::TestParamInfo<Mode>& info) {
  std::string n = info.param.v6 ? "V6" : "V4";
  n += info.param.no_gso ? "_NoGso" : "_Gso";
  n += info.param.no_gro ? "_NoGro" : "_Gro";
  return n;
}

class UdpSocketModes : public ::testing::TestWithParam<Mode> {
 protected:
  void SetUp() override {
    if (!GetParam().v6) return;
    boost::asio::io_context io;
    auto probe = UdpSocket::bind(io, loopback_v6());
    if (!probe.ok()) GTEST_SKIP() << "no IPv6 loopback here: " << probe.error().message;
  }
};

TEST_P(UdpSocketModes, SingleDatagramRoundTrip) {
  const Mode m = GetParam();
  EnvGuard env(m.no_gso, m.no_gro);
  boost::asio::io_context io;
  auto a = UdpSocket::bind(io, m.v6 ? loopback_v6() : loopback_v4());
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = UdpSocket::bind(io, m.v6 ? loopback_v6() : loopback_v4());
  ASSERT_TRUE(b.ok()) << b.error().message;
  if (m.no_gso) {
    EXPECT_FALSE(a->capabilities().gso);
  }
  if (m.no_gro) {
    EXPECT_FALSE(b->capabilities().gro);
  }
  EXPECT_NE(b->local_addr().port(), 0);
  EXPECT_EQ(b->local_addr().is_v4(), !m.v6);

  const Bytes msg = pattern(1200, 3);
  auto sent = a->send(b->local_addr(), 0, msg, 1200);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(*sent, msg.size());

  auto got = receive_n(io, *b, 1);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].data, msg);
  EXPECT_EQ(got[0].from, a->local_addr());
  ASSERT_TRUE(got[0].local.has_value());
  EXPECT_EQ(*got[0].local, b->local_addr());
  EXPECT_EQ(got[0].ecn, 0);
}

// 64 segments, the last one shorter, in one send call: 64 datagrams of the right sizes and
// contents, whichever of GSO / GRO is in play (GRO super-buffers are split again).
TEST_P(UdpSocketModes, SixtyFourSegmentBatchArrivesAsSixtyFourDatagrams) {
  const Mode m = GetParam();
  EnvGuard env(m.no_gso, m.no_gro);
  boost::asio::io_context io;
  auto a = UdpSocket::bind(io, m.v6 ? loopback_v6() : loopback_v4());
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = UdpSocket::bind(io, m.v6 ? loopback_v6() : loopback_v4());
  ASSERT_TRUE(b.ok()) << b.error().message;

  constexpr std::size_t kSeg = 1200;
  constexpr std::size_t kLast = 517;
  Bytes payload;
  for (std::size_t i = 0; i < 64; ++i)
    append(payload, pattern(i == 63 ? kLast : kSeg, static_cast<std::uint8_t>(i)));
  auto sent = a->send(b->local_addr(), 0, payload, kSeg);
  ASSERT_TRUE(sent.ok()) << sent.error().message;
  EXPECT_EQ(*sent, payload.size());

  auto got = receive_n(io, *b, 64);
  ASSERT_EQ(got.size(), 64u);
  for (std::size_t i = 0; i < 64; ++i) {
    EXPECT_EQ(got[i].data, pattern(i == 63 ? kLast : kSeg, static_cast<std::uint8_t>(i))) << i;
    EXPECT_EQ(got[i].from, a->local_addr());
  }
}

TEST_P(UdpSocketModes, EcnCodepointsRoundTrip) {
  const Mode m = GetParam();
  EnvGuard env(m.no_gso, m.no_gro);
  boost::asio::io_context io;
  auto a = UdpSocket::bind(io, m.v6 ? loopback_v6() : loopback_v4());
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = UdpSocket::bind(io, m.v6 ? loopback_v6() : loopback_v4());
  ASSERT_TRUE(b.ok()) << b.error().message;
  ASSERT_TRUE(b->capabilities().ecn);

  // One train per codepoint (4 segments each, so GSO carries the cmsg too).
  for (std::uint8_t ecn : {0, 1, 2, 3}) {
    const Bytes train = pattern(4 * 100, ecn);
    auto sent = a->send(b->local_addr(), ecn, train, 100);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    auto got = receive_n(io, *b, 4);
    ASSERT_EQ(got.size(), 4u);
    for (const auto& g : got) {
      EXPECT_EQ(g.ecn, ecn);
      EXPECT_EQ(g.data.size(), 100u);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(All, UdpSocketModes,
                         ::testing::Values(Mode{false, false, false}, Mode{true, false, false},
                                           Mode{false, true, false}, Mode{true, true, false},
                                           Mode{false, false, true}, Mode{true, true, true}),
                         mode_name);

TEST(UdpSocket, EnvironmentSwitchesForceFallbacks) {
  boost::asio::io_context io;
  {
    EnvGuard env(true, true);
    auto s = UdpSocket::bind(io, loopback_v4());
    ASSERT_TRUE(s.ok()) << s.error().message;
    EXPECT_FALSE(s->capabilities().gso);
    EXPECT_FALSE(s->capabilities().gro);
    EXPECT_EQ(s->capabilities().max_gso_segments, 1u);
    EXPECT_TRUE(s->capabilities().recvmmsg);
  }
  auto s = UdpSocket::bind(io, loopback_v4(), UdpSocketOptions{.allow_gso = false});
  ASSERT_TRUE(s.ok());
  EXPECT_FALSE(s->capabilities().gso);
}

TEST(UdpSocket, ManyTrainsBackToBack) {
  boost::asio::io_context io;
  auto a = UdpSocket::bind(io, loopback_v4());
  auto b = UdpSocket::bind(io, loopback_v4());
  ASSERT_TRUE(a.ok() && b.ok());
  // 200 datagrams of 1000 bytes as 10-segment trains: more than one recvmmsg batch.
  for (int t = 0; t < 20; ++t) {
    Bytes train;
    for (int i = 0; i < 10; ++i)
      append(train, pattern(1000, static_cast<std::uint8_t>(t * 10 + i)));
    auto sent = a->send(b->local_addr(), 2, train, 1000);
    ASSERT_TRUE(sent.ok()) << sent.error().message;
    ASSERT_EQ(*sent, train.size());
  }
  auto got = receive_n(io, *b, 200);
  ASSERT_EQ(got.size(), 200u);
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].data, pattern(1000, static_cast<std::uint8_t>(i)));
    EXPECT_EQ(got[i].ecn, 2);
  }
}

TEST(UdpSocket, TryReceiveIsNonBlocking) {
  boost::asio::io_context io;
  auto s = UdpSocket::bind(io, loopback_v4());
  ASSERT_TRUE(s.ok());
  auto r = s->try_receive();
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_TRUE(r->empty());
}

TEST(UdpSocket, WaitWritableFiresOnAnIdleSocket) {
  boost::asio::io_context io;
  auto s = UdpSocket::bind(io, loopback_v4());
  ASSERT_TRUE(s.ok());
  bool fired = false;
  s->async_wait_writable([&](Result<void> r) {
    EXPECT_TRUE(r.ok());
    fired = true;
  });
  io.run_for(std::chrono::milliseconds(500));
  EXPECT_TRUE(fired);
}

TEST(UdpSocket, ClearErrors) {
  boost::asio::io_context io;
  auto a = UdpSocket::bind(io, loopback_v4());
  ASSERT_TRUE(a.ok());
  // Port in use.
  auto dup = UdpSocket::bind(io, a->local_addr());
  ASSERT_FALSE(dup.ok());
  EXPECT_NE(dup.error().message.find("udp bind 127.0.0.1:"), std::string::npos)
      << dup.error().message;
  // Wrong family.
  const Bytes msg(10, 0);
  auto r = a->send(SocketAddr::v6({}, 9), 0, msg, 10);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("IPv4 socket"), std::string::npos);
  // Too big for one datagram: nothing is fragmented.
  const Bytes huge(70000, 0);
  auto big = a->send(a->local_addr(), 0, huge, huge.size());
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.error().message.find("udp send to"), std::string::npos) << big.error().message;
  // ECN out of range.
  EXPECT_FALSE(a->send(a->local_addr(), 4, msg, 10).ok());
  // Empty payload: nothing to do.
  auto none = a->send(a->local_addr(), 0, {}, 0);
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0u);
}

TEST(UdpSocket, ClosedSocketDropsPendingHandlers) {
  boost::asio::io_context io;
  bool called = false;
  {
    auto s = UdpSocket::bind(io, loopback_v4());
    ASSERT_TRUE(s.ok());
    s->async_receive([&](auto) { called = true; });
  }  // destroyed with a receive outstanding
  io.run_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(called);
}

TEST(UdpSocket, ReportsCapabilities) {
  boost::asio::io_context io;
  auto s = UdpSocket::bind(io, loopback_v4());
  ASSERT_TRUE(s.ok());
  const auto& c = s->capabilities();
  std::printf(
      "[          ] caps: gso=%d gro=%d recvmmsg=%d ecn=%d max_gso_segments=%zu sndbuf=%zu "
      "rcvbuf=%zu\n",
      c.gso, c.gro, c.recvmmsg, c.ecn, c.max_gso_segments, c.send_buffer, c.recv_buffer);
  EXPECT_GE(c.recv_buffer, std::size_t{1} << 20);
  EXPECT_GE(c.send_buffer, std::size_t{1} << 20);
}

}  // namespace
}  // namespace iroh::io

// Software checksum completion and GSO segmentation (netns/linkemu/offload.h).
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>

#include "netns/linkemu/offload.h"

namespace irohlab::linkemu {
namespace {

using iroh::Bytes;

constexpr std::uint8_t kTcp = 6, kUdp = 17;

void put16(Bytes& b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
std::uint16_t get16(const Bytes& b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
std::uint32_t get32(const Bytes& b, std::size_t at) {
  return std::uint32_t{get16(b, at)} << 16 | get16(b, at + 2);
}

Bytes pattern(std::size_t n) {
  Bytes p(n);
  for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<std::uint8_t>(i * 7 + 3);
  return p;
}

// Ethernet + IPv4 or IPv6 + TCP/UDP header + payload; lengths as the kernel writes them for a
// (super-)packet, checksum fields zero.
Bytes frame(bool v6, std::uint8_t proto, const Bytes& payload) {
  const std::size_t l4h = proto == kTcp ? 20 : 8;
  const std::size_t l3h = v6 ? 40 : 20;
  Bytes f(14 + l3h + l4h, 0);
  put16(f, 12, v6 ? 0x86dd : 0x0800);
  const std::size_t l3 = 14, l4 = 14 + l3h;
  if (v6) {
    f[l3] = 0x60;
    put16(f, l3 + 4, static_cast<std::uint16_t>(l4h + payload.size()));
    f[l3 + 6] = proto;
    f[l3 + 7] = 64;
    f[l3 + 8 + 15] = 1;   // source ::1
    f[l3 + 24 + 15] = 2;  // destination ::2
  } else {
    f[l3] = 0x45;
    put16(f, l3 + 2, static_cast<std::uint16_t>(20 + l4h + payload.size()));
    put16(f, l3 + 4, 0x1000);  // id
    f[l3 + 8] = 64;
    f[l3 + 9] = proto;
    const std::uint8_t src[4] = {10, 0, 0, 1}, dst[4] = {10, 0, 0, 2};
    std::memcpy(&f[l3 + 12], src, 4);
    std::memcpy(&f[l3 + 16], dst, 4);
    // header checksum
    std::uint32_t sum = 0;
    for (std::size_t i = 0; i < 20; i += 2) sum += get16(f, l3 + i);
    while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
    put16(f, l3 + 10, static_cast<std::uint16_t>(~sum));
  }
  put16(f, l4, 40000);
  put16(f, l4 + 2, 443);
  if (proto == kTcp) {
    put16(f, l4 + 4, 0x1234);
    put16(f, l4 + 6, 0x5678);  // seq 0x12345678
    f[l4 + 12] = 5 << 4;
    f[l4 + 13] = 0x18 | 0x01 | 0x80;  // PSH ACK FIN CWR
  } else {
    put16(f, l4 + 4, static_cast<std::uint16_t>(8 + payload.size()));
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

TEST(LinkemuOffload, FilledChecksumsVerifyAndCorruptionIsSeen) {
  for (bool v6 : {false, true}) {
    for (std::uint8_t proto : {kTcp, kUdp}) {
      Bytes f = frame(v6, proto, pattern(333));  // odd length on purpose
      ASSERT_TRUE(fill_l4_checksum(f));
      EXPECT_TRUE(l4_checksum_ok(f)) << v6 << " " << int(proto);
      f.back() ^= 0x40;
      EXPECT_FALSE(l4_checksum_ok(f));
    }
  }
}

TEST(LinkemuOffload, PartialChecksumIsCompletedLikeANic) {
  Bytes f = frame(false, kUdp, pattern(100));
  const Bytes reference = [&] {
    Bytes r = f;
    fill_l4_checksum(r);
    return r;
  }();
  // CHECKSUM_PARTIAL: the field holds the folded pseudo-header sum (not inverted).
  std::uint32_t sum = get16(f, 26) + get16(f, 28) + get16(f, 30) + get16(f, 32) + kUdp + 108;
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  put16(f, 34 + 6, static_cast<std::uint16_t>(sum));
  VnetHeader v;
  v.flags = 1;
  v.csum_start = 34;
  v.csum_offset = 6;
  OffloadCounters c;
  const auto out = wire_frames(v, f, c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], reference);
  EXPECT_EQ(c.checksums_completed, 1u);
}

TEST(LinkemuOffload, CompleteFramesPassUntouched) {
  Bytes f = frame(false, kUdp, pattern(50));
  fill_l4_checksum(f);
  OffloadCounters c;
  const auto out = wire_frames(VnetHeader{}, f, c);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0], f);
  EXPECT_EQ(c.checksums_completed + c.super_packets_split, 0u);
}

TEST(LinkemuOffload, UdpSegmentationOffloadBecomesDatagrams) {
  const Bytes payload = pattern(3500);
  VnetHeader v;
  v.gso_type = 5;  // UDP_L4
  v.gso_size = 1200;
  OffloadCounters c;
  const auto out = wire_frames(v, frame(false, kUdp, payload), c);
  ASSERT_EQ(out.size(), 3u);
  Bytes joined;
  const std::size_t sizes[] = {1200, 1200, 1100};
  for (std::size_t i = 0; i < 3; ++i) {
    const Bytes& s = out[i];
    EXPECT_TRUE(l4_checksum_ok(s)) << i;
    EXPECT_EQ(get16(s, 14 + 2), 20 + 8 + sizes[i]);  // IPv4 total length
    EXPECT_EQ(get16(s, 34 + 4), 8 + sizes[i]);       // UDP length
    EXPECT_EQ(get16(s, 14 + 4), 0x1000 + i);         // IP id advances
    joined.insert(joined.end(), s.begin() + 42, s.end());
  }
  EXPECT_EQ(joined, payload);
  EXPECT_EQ(c.super_packets_split, 1u);
  EXPECT_EQ(c.segments_made, 3u);
}

TEST(LinkemuOffload, TcpSegmentationKeepsSequenceAndFlagsRight) {
  for (bool v6 : {false, true}) {
    const Bytes payload = pattern(4000);
    VnetHeader v;
    v.gso_type = v6 ? 4 : 1;
    v.gso_size = 1448;
    OffloadCounters c;
    const auto out = wire_frames(v, frame(v6, kTcp, payload), c);
    ASSERT_EQ(out.size(), 3u);
    const std::size_t l4 = 14 + (v6 ? 40 : 20);
    Bytes joined;
    for (std::size_t i = 0; i < out.size(); ++i) {
      const Bytes& s = out[i];
      EXPECT_TRUE(l4_checksum_ok(s)) << v6 << " " << i;
      EXPECT_EQ(get32(s, l4 + 4), 0x12345678u + 1448 * i);
      const std::uint8_t flags = s[l4 + 13];
      EXPECT_EQ((flags & 0x09) != 0, i == 2) << "FIN/PSH only on the last segment";
      EXPECT_EQ((flags & 0x80) != 0, i == 0) << "CWR only on the first segment";
      EXPECT_TRUE(flags & 0x10) << "ACK on every segment";
      joined.insert(joined.end(), s.begin() + static_cast<std::ptrdiff_t>(l4 + 20), s.end());
    }
    EXPECT_EQ(joined, payload);
    if (v6) {
      EXPECT_EQ(get16(out[2], 14 + 4), 20 + (4000 - 2 * 1448));  // IPv6 payload length
    }
  }
}

TEST(LinkemuOffload, UnsupportedSegmentationIsDroppedAndCounted) {
  VnetHeader v;
  v.gso_type = 3;  // legacy UFO
  v.gso_size = 1000;
  OffloadCounters c;
  EXPECT_TRUE(wire_frames(v, frame(false, kUdp, pattern(3000)), c).empty());
  v.gso_type = 1;  // TCP GSO on a UDP frame: inconsistent
  EXPECT_TRUE(wire_frames(v, frame(false, kUdp, pattern(3000)), c).empty());
  EXPECT_EQ(c.unsupported_dropped, 2u);
}

TEST(LinkemuOffload, VnetHeaderIsLittleEndian) {
  const std::uint8_t raw[kVnetHeaderBytes] = {1, 5, 0x2a, 0, 0xb0, 0x04, 0x22, 0, 6, 0};
  const auto v = parse_vnet_header(raw);
  EXPECT_EQ(v.flags, 1);
  EXPECT_EQ(v.gso_type, 5);
  EXPECT_EQ(v.hdr_len, 42);
  EXPECT_EQ(v.gso_size, 1200);
  EXPECT_EQ(v.csum_start, 34);
  EXPECT_EQ(v.csum_offset, 6);
}

}  // namespace
}  // namespace irohlab::linkemu

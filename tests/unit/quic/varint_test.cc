// QUIC variable-length integers (RFC 9000 §16) and the bounds-checked Reader.
#include "quic/varint.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

#include "quic/reader.h"
#include "test_bytes.h"

namespace iroh::quic {
namespace {

using iroh::testing::cat;
using iroh::testing::hex;

Bytes encoded(std::uint64_t v) {
  Bytes out;
  encode_varint(out, v);
  return out;
}

std::uint64_t decoded(const Bytes& b) {
  Reader r(b);
  auto v = r.varint();
  EXPECT_TRUE(v.ok()) << (v.ok() ? "" : v.error().message);
  EXPECT_TRUE(r.empty());
  return v.ok() ? *v : ~std::uint64_t{0};
}

// RFC 9000 Appendix A.1 sample varint decodings.
TEST(Varint, Rfc9000SampleDecodings) {
  EXPECT_EQ(decoded(hex("c2197c5eff14e88c")), 151288809941952652u);
  EXPECT_EQ(decoded(hex("9d7f3e7d")), 494878333u);
  EXPECT_EQ(decoded(hex("7bbd")), 15293u);
  EXPECT_EQ(decoded(hex("25")), 37u);
  EXPECT_EQ(decoded(hex("4025")), 37u);  // non-minimal: accepted on decode
}

TEST(Varint, Rfc9000SampleEncodings) {
  EXPECT_EQ(encoded(151288809941952652u), hex("c2197c5eff14e88c"));
  EXPECT_EQ(encoded(494878333u), hex("9d7f3e7d"));
  EXPECT_EQ(encoded(15293u), hex("7bbd"));
  EXPECT_EQ(encoded(37u), hex("25"));  // minimal, never 4025
}

TEST(Varint, Boundaries) {
  struct Case {
    std::uint64_t value;
    std::size_t size;
    const char* hex;
  };
  const Case cases[] = {
      {0, 1, "00"},
      {63, 1, "3f"},
      {64, 2, "4040"},
      {16383, 2, "7fff"},
      {16384, 4, "80004000"},
      {(std::uint64_t{1} << 30) - 1, 4, "bfffffff"},
      {std::uint64_t{1} << 30, 8, "c000000040000000"},
      {kVarintMax, 8, "ffffffffffffffff"},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.value);
    EXPECT_EQ(varint_size(c.value), c.size);
    EXPECT_EQ(encoded(c.value), hex(c.hex));
    EXPECT_EQ(decoded(hex(c.hex)), c.value);
  }
  EXPECT_EQ(kVarintMax, (std::uint64_t{1} << 62) - 1);
  EXPECT_EQ(varint_size(kVarintMax + 1), 0u);
  EXPECT_EQ(varint_size(~std::uint64_t{0}), 0u);
}

TEST(Varint, RoundTripPowersOfTwoAndNeighbours) {
  for (int bit = 0; bit < 62; ++bit) {
    for (std::uint64_t v :
         {(std::uint64_t{1} << bit) - 1, std::uint64_t{1} << bit, (std::uint64_t{1} << bit) + 1}) {
      if (v > kVarintMax) continue;
      const Bytes b = encoded(v);
      EXPECT_EQ(b.size(), varint_size(v));
      EXPECT_EQ(decoded(b), v);
    }
  }
}

TEST(Varint, NonMinimalEncodingsAccepted) {
  EXPECT_EQ(decoded(hex("4000")), 0u);
  EXPECT_EQ(decoded(hex("80000000")), 0u);
  EXPECT_EQ(decoded(hex("c000000000000025")), 37u);
  EXPECT_EQ(decoded(hex("800000ff")), 255u);
}

TEST(Varint, AppendsToExistingBuffer) {
  Bytes out = {0xaa};
  encode_varint(out, 15293);
  EXPECT_EQ(out, hex("aa7bbd"));
}

TEST(Varint, TruncationIsAnError) {
  for (const char* h : {"", "40", "80", "800000", "c0", "c2197c5eff14e8", "7b", "9d7f3e"}) {
    SCOPED_TRACE(h);
    const Bytes b = hex(h);
    Reader r(b);
    auto v = r.varint("frame type");
    ASSERT_FALSE(v.ok());
    EXPECT_NE(v.error().message.find("truncated frame type"), std::string::npos)
        << v.error().message;
    EXPECT_EQ(r.position(), 0u) << "a failed read must not advance";
  }
}

TEST(Varint, ReadsSequence) {
  const Bytes b =
      hex("25"
          "7bbd"
          "9d7f3e7d"
          "c2197c5eff14e88c");
  Reader r(b);
  EXPECT_EQ(*r.varint(), 37u);
  EXPECT_EQ(*r.varint(), 15293u);
  EXPECT_EQ(*r.varint(), 494878333u);
  EXPECT_EQ(*r.varint(), 151288809941952652u);
  EXPECT_TRUE(r.empty());
  EXPECT_FALSE(r.varint().ok());
}

TEST(Reader, FixedWidthBigEndian) {
  const Bytes b =
      hex("01"
          "0203"
          "04050607"
          "08090a0b0c0d0e0f"
          "ff");
  Reader r(b);
  EXPECT_EQ(*r.u8(), 0x01);
  EXPECT_EQ(*r.u16be(), 0x0203);
  EXPECT_EQ(*r.u32be(), 0x04050607u);
  EXPECT_EQ(*r.u64be(), 0x08090a0b0c0d0e0fu);
  EXPECT_EQ(r.remaining(), 1u);
  EXPECT_FALSE(r.empty());
  EXPECT_EQ(*r.u8(), 0xff);
  EXPECT_TRUE(r.empty());
}

TEST(Reader, TruncatedFixedWidthFailsWithoutAdvancing) {
  const Bytes b = hex("010203");
  Reader r(b);
  EXPECT_FALSE(r.u32be().ok());
  EXPECT_FALSE(r.u64be().ok());
  EXPECT_EQ(r.position(), 0u);
  EXPECT_EQ(*r.u16be(), 0x0102);
  auto e = r.u16be("segment size");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "truncated segment size: need 2 bytes, have 1");
  EXPECT_EQ(*r.u8(), 0x03);
  auto e1 = r.u8("ECN");
  ASSERT_FALSE(e1.ok());
  EXPECT_EQ(e1.error().message, "truncated ECN: need 1 byte, have 0");
}

TEST(Reader, BytesArrayAndRest) {
  const Bytes b = hex("0102030405060708");
  Reader r(b);
  auto first = r.bytes(2);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(Bytes(first->begin(), first->end()), hex("0102"));
  auto arr = r.array<3>();
  ASSERT_TRUE(arr.ok());
  EXPECT_EQ(*arr, (ByteArray<3>{3, 4, 5}));
  EXPECT_FALSE(r.bytes(4).ok());
  EXPECT_FALSE(r.array<4>().ok());
  EXPECT_EQ(r.remaining(), 3u);
  EXPECT_EQ(Bytes(r.peek_rest().begin(), r.peek_rest().end()), hex("060708"));
  ByteView rest = r.rest();
  EXPECT_EQ(Bytes(rest.begin(), rest.end()), hex("060708"));
  EXPECT_TRUE(r.empty());
  EXPECT_TRUE(r.rest().empty());
  auto zero = r.bytes(0);
  ASSERT_TRUE(zero.ok());
  EXPECT_TRUE(zero->empty());
}

TEST(Reader, HugeLengthRequestIsAnError) {
  const Bytes b = hex("00");
  Reader r(b);
  EXPECT_FALSE(r.bytes(~std::size_t{0}).ok());
  EXPECT_EQ(r.remaining(), 1u);
}

}  // namespace
}  // namespace iroh::quic

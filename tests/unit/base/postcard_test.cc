#include "base/postcard.h"

#include <gtest/gtest.h>

namespace iroh::postcard {
namespace {

Bytes varint(std::uint64_t v) {
  Bytes b;
  encode_varint(b, v);
  return b;
}

TEST(Postcard, VarintEncoding) {
  EXPECT_EQ(varint(0), (Bytes{0x00}));
  EXPECT_EQ(varint(127), (Bytes{0x7f}));
  EXPECT_EQ(varint(128), (Bytes{0x80, 0x01}));
  EXPECT_EQ(varint(1234), (Bytes{0xd2, 0x09}));  // spec §2.4 Example B's port
  EXPECT_EQ(varint(7777), (Bytes{0xe1, 0x3c}));  // Example C
  EXPECT_EQ(varint(65535), (Bytes{0xff, 0xff, 0x03}));
  EXPECT_EQ(varint(UINT64_MAX).size(), 10u);
}

TEST(Postcard, VarintRoundTrip) {
  const std::uint64_t values[] = {0,
                                  1,
                                  127,
                                  128,
                                  16383,
                                  16384,
                                  65535,
                                  std::uint64_t{1} << 32,
                                  (std::uint64_t{1} << 63) + 5,
                                  UINT64_MAX};
  for (std::uint64_t v : values) {
    const auto b = varint(v);
    Reader r(b);
    auto back = r.varint_u64();
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(*back, v);
    EXPECT_EQ(r.remaining(), 0u);
  }
}

TEST(Postcard, AcceptsOverlongWithinTypeWidth) {
  // postcard's decoder accepts non-minimal encodings (measured with Rust iroh: port 85 00 → 5).
  const Bytes b{0x85, 0x00};
  Reader r(b);
  EXPECT_EQ(*r.varint_u16(), 5);
}

TEST(Postcard, RejectsOverflowingFinalByte) {
  // u16: third byte may carry only 2 bits (measured: ff ff 03 ok, 80 80 04 rejected by Rust).
  const Bytes ok{0xff, 0xff, 0x03}, bad{0x80, 0x80, 0x04};
  EXPECT_TRUE(Reader(ok).varint_u16().ok());
  EXPECT_FALSE(Reader(bad).varint_u16().ok());
  // u32: fifth byte at most 0x0f.
  const Bytes u32ok{0xff, 0xff, 0xff, 0xff, 0x0f}, u32bad{0xff, 0xff, 0xff, 0xff, 0x10};
  EXPECT_EQ(*Reader(u32ok).varint_u32(), 0xffffffffu);
  EXPECT_FALSE(Reader(u32bad).varint_u32().ok());
  // u64: tenth byte at most 0x01; an eleventh byte never terminates.
  Bytes u64bad(9, 0xff);
  u64bad.push_back(0x02);
  EXPECT_FALSE(Reader(u64bad).varint_u64().ok());
  Bytes u64long(10, 0x80);
  u64long.push_back(0x00);
  EXPECT_FALSE(Reader(u64long).varint_u64().ok());
}

TEST(Postcard, TruncationIsAnError) {
  const Bytes b{0x80};
  EXPECT_FALSE(Reader(b).varint_u64().ok());
  EXPECT_FALSE(Reader(ByteView{}).u8().ok());
  const Bytes len_too_big{0x05, 'a', 'b'};
  auto r = Reader(len_too_big).bytes();
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("exceeds"), std::string::npos);
}

TEST(Postcard, StringsAreUtf8Checked) {
  Bytes b;
  encode_str(b, "h\xc3\xa9llo");
  EXPECT_EQ(*Reader(b).str(), "h\xc3\xa9llo");
  const Bytes bad{0x02, 0xc3, 0x28};
  EXPECT_FALSE(Reader(bad).str().ok());
}

TEST(Utf8, RejectsWhatRustRejects) {
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("\xf0\x9f\x98\x80"));   // U+1F600
  EXPECT_FALSE(is_valid_utf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(is_valid_utf8("\xed\xa0\x80"));      // surrogate U+D800
  EXPECT_FALSE(is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  EXPECT_FALSE(is_valid_utf8("\xe2\x82"));          // truncated
  EXPECT_FALSE(is_valid_utf8("\xff"));
}

}  // namespace
}  // namespace iroh::postcard

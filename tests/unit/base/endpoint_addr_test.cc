#include "base/endpoint_addr.h"

#include <gtest/gtest.h>

#include "base/text_encoding.h"

namespace iroh {
namespace {

EndpointId test_id() {
  return *EndpointId::parse("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
}

Bytes encode(const EndpointAddr& a) {
  Bytes b;
  encode_endpoint_addr(b, a);
  return b;
}

Result<EndpointAddr> decode(ByteView b) {
  postcard::Reader r(b);
  return decode_endpoint_addr(r);
}

TEST(CustomAddr, TextForm) {
  auto a = CustomAddr::parse("1_a1b2c3d4e5f6");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->id(), 1u);
  EXPECT_EQ(a->to_string(), "1_a1b2c3d4e5f6");
  EXPECT_EQ(CustomAddr::parse("deadbeef_0102")->to_string(), "deadbeef_0102");
  EXPECT_EQ(CustomAddr::parse("0_")->to_string(), "0_");
  EXPECT_EQ(CustomAddr::parse("DEADBEEF_00")->id(), 0xdeadbeefu);  // from_str_radix: any case
  EXPECT_FALSE(CustomAddr::parse("1").ok());
  EXPECT_FALSE(CustomAddr::parse("_00").ok());
  EXPECT_FALSE(CustomAddr::parse("1_0").ok());
  EXPECT_FALSE(CustomAddr::parse("1_AB").ok());
  EXPECT_FALSE(CustomAddr::parse("10000000000000000_00").ok());
}

// iroh 1.0.x's derived serde: short data inline and zero padded to 30 bytes, long data on the heap.
TEST(CustomAddr, WireFormIroh10x) {
  Bytes b;
  CustomAddr::make(1, Bytes{0xa1, 0xb2}).encode(b);
  Bytes expect{0x01, 0x00, 0x02, 0xa1, 0xb2};
  expect.resize(3 + 30, 0);
  EXPECT_EQ(b, expect);
  b.clear();
  CustomAddr::make(5, Bytes(31, 7)).encode(b);
  EXPECT_EQ(b[0], 5);
  EXPECT_EQ(b[1], 1);   // Heap
  EXPECT_EQ(b[2], 31);  // length
  EXPECT_EQ(b.size(), 3u + 31);
}

TEST(CustomAddr, OrderIsDerivedOrd) {
  // id, then variant (Inline < Heap), then inline size before inline bytes: measured from Rust,
  // which sorted {1, ffff} before {1, a1b2c3d4e5f6}.
  const auto short_hi = CustomAddr::make(1, Bytes{0xff, 0xff});
  const auto long_lo = CustomAddr::make(1, Bytes{0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6});
  const auto heap = CustomAddr::make(1, Bytes(31, 0));
  const auto id2 = CustomAddr::make(2, Bytes{});
  EXPECT_LT(short_hi, long_lo);
  EXPECT_LT(long_lo, heap);
  EXPECT_LT(heap, id2);
}

TEST(EndpointAddr, EncodesInBTreeSetOrder) {
  EndpointAddr a;
  a.id = test_id();
  a.addrs.insert(*SocketAddr::parse("[::1]:4433"));
  a.addrs.insert(CustomAddr::make(9, Bytes{1}));
  a.addrs.insert(*SocketAddr::parse("192.168.1.5:7777"));
  a.addrs.insert(*RelayUrl::parse("http://127.0.0.1:3340"));
  const auto b = encode(a);
  // id, count 4, relay, v4, v6, custom.
  ASSERT_GT(b.size(), 34u);
  EXPECT_EQ(b[32], 4);
  EXPECT_EQ(b[33], 0);  // Relay first
  auto back = decode(b);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, a);
  EXPECT_EQ(back->relay_urls().size(), 1u);
  EXPECT_EQ(back->ip_addrs().size(), 2u);
  EXPECT_EQ(back->custom_addrs().size(), 1u);
  EXPECT_EQ(transport_addr_to_string(*back->addrs.begin()), "relay:http://127.0.0.1:3340/");
}

TEST(EndpointAddr, DecodeDeduplicatesAndSorts) {
  // count 3: ip 127.0.0.1:5 twice, then 10.0.0.1:1 (out of order).
  const auto id = test_id();
  Bytes b(id.bytes().begin(), id.bytes().end());
  const Bytes tail{3, 1, 0, 127, 0, 0, 1, 5, 1, 0, 127, 0, 0, 1, 5, 1, 0, 10, 0, 0, 1, 1};
  append(b, tail);
  auto a = decode(b);
  ASSERT_TRUE(a.ok());
  ASSERT_EQ(a->addrs.size(), 2u);
  EXPECT_EQ(a->ip_addrs()[0].to_string(), "10.0.0.1:1");
}

TEST(EndpointAddr, KeepsNonCanonicalCustomBytes) {
  // Measured with Rust 1.0.2: dirty inline padding, a short Heap and inline size 31 all decode
  // and re-encode verbatim.
  const auto id = test_id();
  Bytes b(id.bytes().begin(), id.bytes().end());
  b.push_back(3);
  Bytes dirty{2, 1, 0, 2, 0xaa, 0xbb};
  dirty.resize(6 + 28, 0xff);
  Bytes short_heap{2, 1, 1, 3, 9, 9, 9};
  Bytes big_inline{2, 7, 0, 31};
  big_inline.resize(4 + 30, 0);
  append(b, dirty);
  append(b, short_heap);
  append(b, big_inline);
  auto a = decode(b);
  ASSERT_TRUE(a.ok()) << a.error().message;
  const auto customs = a->custom_addrs();
  ASSERT_EQ(customs.size(), 3u);
  EXPECT_EQ(customs[0].to_string(), "1_aabb");
  EXPECT_EQ(customs[1].storage(), CustomAddr::Storage::kHeap);
  EXPECT_TRUE(customs[2].inline_size_overflows());
  EXPECT_EQ(encode(*a), b);
}

TEST(EndpointAddr, RejectsMalformed) {
  const auto endpoint = test_id();
  const Bytes id(endpoint.bytes().begin(), endpoint.bytes().end());
  const auto with = [&](Bytes tail) {
    Bytes b = id;
    append(b, tail);
    return b;
  };
  struct Case {
    const char* name;
    Bytes bytes;
    const char* expect;
  };
  std::vector<Case> cases = {
      {"truncated id", Bytes(id.begin(), id.begin() + 10), "endpoint id"},
      {"missing count", id, "address count"},
      {"unknown transport variant", with({1, 3}), "unknown transport address variant 3"},
      {"unknown socket variant", with({1, 1, 2}), "unknown socket address variant 2"},
      {"truncated v4", with({1, 1, 0, 127, 0}), "IP"},
      {"truncated v6", with({1, 1, 1, 0, 0, 0}), "IP"},
      {"truncated port", with({1, 1, 0, 127, 0, 0, 1, 0x80}), "port"},
      {"overflowing port", with({1, 1, 0, 127, 0, 0, 1, 0x80, 0x80, 0x04}), "overflows"},
      {"count beyond data", with({0xff, 0xff, 0xff, 0xff, 0x0f}), "address 0"},
      {"relay not utf-8", with({1, 0, 2, 0xc3, 0x28}), "UTF-8"},
      {"relay not a URL", with({1, 0, 3, 'a', 'b', 'c'}), "address 0"},
      {"custom bad variant", with({1, 2, 1, 2}), "custom address data variant"},
      {"custom inline short", with({1, 2, 1, 0, 2, 1, 2}), "inline data"},
  };
  for (const auto& c : cases) {
    auto r = decode(c.bytes);
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_NE(r.error().message.find(c.expect), std::string::npos)
        << c.name << ": " << r.error().message;
  }
  // An id that is not a curve point (y = 2).
  Bytes bad_id(32, 0);
  bad_id[0] = 2;
  bad_id.push_back(0);
  EXPECT_FALSE(decode(bad_id).ok());
}

}  // namespace
}  // namespace iroh

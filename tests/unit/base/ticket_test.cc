#include "base/ticket.h"

#include <gtest/gtest.h>

#include "base/text_encoding.h"

namespace iroh {
namespace {

EndpointId spec_id() {
  return *EndpointId::parse("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
}

// spec §2.4, observed from Rust iroh 1.0.2.
constexpr const char* kExampleA = "endpointaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qaa";
constexpr const char* kExampleB =
    "endpointaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qaqadjuhi5dqom5c6l3smvwgc6jomv4gc3"
    "lqnrss4y3pnuxqcad7aaaaduqj";
constexpr const char* kExampleC =
    "endpointaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qayaczuhi5dqhixs6mjsg4xdalrqfyytum"
    "z"
    "tgqyc6aiaycuacbpbhqaqcaaaaaaaaaaaaaaaaaaaaaaaaaorei";

TEST(Ticket, ExampleA_IdOnly) {
  EndpointAddr a{spec_id(), {}};
  EXPECT_EQ(encode_ticket(a), kExampleA);
  EXPECT_EQ(encode_ticket_blob(a).size(), 34u);
  auto back = decode_ticket(kExampleA);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, a);
}

TEST(Ticket, ExampleB_RelayAndIpv4) {
  EndpointAddr a{spec_id(), {}};
  a.addrs.insert(*RelayUrl::parse("https://relay.example.com"));
  a.addrs.insert(*SocketAddr::parse("127.0.0.1:1234"));
  EXPECT_EQ(encode_ticket(a), kExampleB);
  EXPECT_EQ(to_hex(encode_ticket_blob(a)),
            "0003a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b80200"
            "1a68747470733a2f2f72656c61792e6578616d706c652e636f6d2f0100"
            "7f000001d209");
  auto back = decode_ticket(kExampleB);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, a);
  EXPECT_EQ(back->relay_urls()[0].str(), "https://relay.example.com/");
}

TEST(Ticket, ExampleC_SortedAddresses) {
  EndpointAddr a{spec_id(), {}};
  a.addrs.insert(*RelayUrl::parse("http://127.0.0.1:3340"));
  a.addrs.insert(*SocketAddr::parse("[::1]:4433"));
  a.addrs.insert(*SocketAddr::parse("192.168.1.5:7777"));
  EXPECT_EQ(encode_ticket(a), kExampleC);
  auto back = decode_ticket(kExampleC);
  ASSERT_TRUE(back.ok());
  const auto ips = back->ip_addrs();
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0].to_string(), "192.168.1.5:7777");
  EXPECT_EQ(ips[1].to_string(), "[::1]:4433");
}

TEST(Ticket, UpstreamVector) {
  // iroh-tickets endpoint.rs test: blob bytes given in spec §2.4.
  const auto blob = *parse_hex_lower(
      "00ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b602001068747470"
      "3a2f2f646572702e6d652e2f01007f0000018008");
  auto a = decode_ticket_blob(blob);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ(a->id.to_hex(), "ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6");
  EXPECT_EQ(a->relay_urls()[0].str(), "http://derp.me./");
  EXPECT_EQ(a->ip_addrs()[0].to_string(), "127.0.0.1:1024");
  EXPECT_EQ(encode_ticket_blob(*a), blob);
}

TEST(Ticket, AcceptsRustQuirks) {
  // Upper-case body, and trailing bytes after the postcard value (measured with Rust 1.0.2).
  std::string upper = std::string("endpoint") + ascii_upper(std::string(kExampleB).substr(8));
  auto a = decode_ticket(upper);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(encode_ticket(*a), kExampleB);
  auto blob = encode_ticket_blob(*a);
  blob.push_back(0xaa);
  blob.push_back(0xbb);
  const auto with_trailing =
      std::string("endpoint") + base32_encode(blob, Base32Alphabet::kRfc4648);
  auto b = decode_ticket(with_trailing);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(encode_ticket(*b), kExampleB);
}

TEST(Ticket, RejectsMalformed) {
  const std::string body = std::string(kExampleB).substr(8);
  const std::pair<std::string, const char*> cases[] = {
      {"", "must start with"},
      {"Endpoint" + body, "must start with"},
      {"node" + body, "must start with"},
      {"endpoint", "ticket format"},
      {"endpoint" + body.substr(0, body.size() - 1), "end of data"},
      {"endpoint" + body.substr(0, body.size() - 2), "length"},
      {"endpoint" + body.substr(0, 20), ""},
      {"endpoint1" + body.substr(1), "character"},
      {"endpoint" + body + "====", "character"},
      {"endpointab", "trailing bits"},  // 'b' leaves a non-zero trailing bit
      {"endpointae", "unknown ticket format variant 1"},
  };
  for (const auto& [text, expect] : cases) {
    auto r = decode_ticket(text);
    ASSERT_FALSE(r.ok()) << text;
    EXPECT_NE(r.error().message.find(expect), std::string::npos)
        << text << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace iroh

// QUIC transport parameters (impl/quic/transport_params.h), incl. the observed iroh blob (spec
// §4.2).
#include "quic/transport_params.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "quic/reader.h"
#include "test_bytes.h"

namespace iroh::quic {
namespace {

using iroh::testing::cat;
using iroh::testing::hex;

// spec §4.2: raw client TP blob observed from iroh 1.0.2 (spaces between TPs).
constexpr std::string_view kObservedClientBlob =
    "0704801312d0 20048000ffff 0604801312d0 c0000000ff04de1b0243e8 0504801312d0 "
    "e18c8e1f5ac38781 0d ca0ac77c3494f3be31d77a67af 0e0105 c0003d7f91120401 01 20 030245c0 "
    "0408ffffffffffffffff 0104 80007530 0902 4064 0802 4064 3e01 07 0f08 8cdcba3b7acd37f2";

// The ids in a blob, in order.
std::vector<std::uint64_t> ids_of(const Bytes& blob) {
  std::vector<std::uint64_t> ids;
  Reader r(blob);
  while (!r.empty()) {
    ids.push_back(*r.varint());
    auto len = *r.varint();
    (void)r.bytes(len);
  }
  return ids;
}

TEST(TransportParams, ObservedIrohClientBlob) {
  const Bytes blob = hex(kObservedClientBlob);
  ASSERT_EQ(blob.size(), 111u);
  for (Role peer : {Role::kClient, Role::kServer}) {
    auto tp = decode_transport_parameters(blob, peer);
    ASSERT_TRUE(tp.ok()) << tp.error().message;
    EXPECT_EQ(tp->max_idle_timeout, 30000u);
    EXPECT_EQ(tp->max_udp_payload_size, 1472u);
    EXPECT_EQ(tp->initial_max_data, (std::uint64_t{1} << 62) - 1);
    EXPECT_EQ(tp->initial_max_stream_data_bidi_local, 1'250'000u);
    EXPECT_EQ(tp->initial_max_stream_data_bidi_remote, 1'250'000u);
    EXPECT_EQ(tp->initial_max_stream_data_uni, 1'250'000u);
    EXPECT_EQ(tp->initial_max_streams_bidi, 100u);
    EXPECT_EQ(tp->initial_max_streams_uni, 100u);
    EXPECT_EQ(tp->active_connection_id_limit, 5u);
    EXPECT_EQ(tp->initial_source_connection_id, hex("8cdcba3b7acd37f2"));
    EXPECT_EQ(tp->max_datagram_frame_size, 65535u);
    EXPECT_EQ(tp->min_ack_delay, 1000u);
    EXPECT_EQ(tp->initial_max_path_id, 7u);
    EXPECT_EQ(tp->n0_nat_traversal, 0x20);
    // Not sent: RFC defaults / absent.
    EXPECT_EQ(tp->ack_delay_exponent, 3u);
    EXPECT_EQ(tp->max_ack_delay, 25u);
    EXPECT_FALSE(tp->disable_active_migration);
    EXPECT_FALSE(tp->grease_quic_bit);
    EXPECT_FALSE(tp->observed_address);
    EXPECT_FALSE(tp->original_destination_connection_id);
    EXPECT_FALSE(tp->stateless_reset_token);
    EXPECT_FALSE(tp->preferred_address);
    EXPECT_FALSE(tp->retry_source_connection_id);
    // The GREASE parameter is ignored, but kept for inspection.
    ASSERT_EQ(tp->unknown.size(), 1u);
    EXPECT_EQ(tp->unknown[0].id, 0x218c8e1f5ac38781u);
    EXPECT_TRUE(is_grease_id(tp->unknown[0].id));
    EXPECT_EQ(tp->unknown[0].value, hex("ca0ac77c3494f3be31d77a67af"));

    // Exactly iroh's parameter set.
    TransportParameters expected = iroh_transport_parameters(hex("8cdcba3b7acd37f2"));
    expected.unknown = tp->unknown;
    EXPECT_TRUE(*tp == expected);
  }
}

TEST(TransportParams, IrohSetReencodesToTheSameParameters) {
  const Bytes blob = hex(kObservedClientBlob);
  const TransportParameters iroh = iroh_transport_parameters(hex("8cdcba3b7acd37f2"));
  const Bytes ours = encode_transport_parameters(iroh, Role::kClient);
  // Same entries as the observed blob minus GREASE, in id order; 111 - 22 bytes of GREASE (8 id + 1
  // length + 13).
  EXPECT_EQ(ours.size(), blob.size() - 22);
  auto ids = ids_of(blob);
  ids.erase(std::remove_if(ids.begin(), ids.end(), is_grease_id), ids.end());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(ids_of(ours), ids);
  auto back = decode_transport_parameters(ours, Role::kClient);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == iroh);
}

TEST(TransportParams, N0NatTraversalIsOneRawByte) {
  TransportParameters p;
  p.n0_nat_traversal = 0x20;
  EXPECT_EQ(encode_transport_parameters(p, Role::kServer), hex("c0003d7f91120401 01 20"));
  p = TransportParameters{};
  p.n0_nat_traversal = 0xff;  // would be a 2-byte varint; must stay one raw byte
  EXPECT_EQ(encode_transport_parameters(p, Role::kClient), hex("c0003d7f91120401 01 ff"));
  auto back = decode_transport_parameters(hex("c0003d7f91120401 01 ff"), Role::kClient);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->n0_nat_traversal, 0xff);
}

TEST(TransportParams, DefaultsAreOmitted) {
  EXPECT_TRUE(encode_transport_parameters(TransportParameters{}, Role::kClient).empty());
  TransportParameters p;
  p.max_ack_delay = 26;
  p.ack_delay_exponent = 0;
  EXPECT_EQ(encode_transport_parameters(p, Role::kClient), hex("0a 01 00 0b 01 1a"));
  // A peer may send defaults explicitly.
  auto back =
      decode_transport_parameters(hex("0a 01 03 0b 01 19 0e 01 02 03 04 8000fff7"), Role::kClient);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == TransportParameters{});
}

TEST(TransportParams, GreaseQuicBitIsNeverSent) {
  auto decoded = decode_transport_parameters(hex("6ab2 00"), Role::kServer);
  ASSERT_TRUE(decoded.ok()) << decoded.error().message;
  EXPECT_TRUE(decoded->grease_quic_bit);
  EXPECT_TRUE(encode_transport_parameters(*decoded, Role::kServer).empty());
}

TEST(TransportParams, ServerRoundTripWithEveryParameter) {
  TransportParameters p;
  p.original_destination_connection_id = hex("0011223344556677");
  p.max_idle_timeout = 16384;
  p.stateless_reset_token = ByteArray<16>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  p.max_udp_payload_size = 1200;
  p.initial_max_data = 63;
  p.initial_max_stream_data_bidi_local = 64;
  p.initial_max_stream_data_bidi_remote = (std::uint64_t{1} << 30) - 1;
  p.initial_max_stream_data_uni = std::uint64_t{1} << 30;
  p.initial_max_streams_bidi = std::uint64_t{1} << 60;
  p.initial_max_streams_uni = 1;
  p.ack_delay_exponent = 20;
  p.max_ack_delay = (1 << 14) - 1;
  p.disable_active_migration = true;
  p.preferred_address = PreferredAddress{
      {10, 0, 0, 1}, 443, {0x20, 0x01, 0x0d, 0xb8}, 8443, hex("a1a2a3a4"), ByteArray<16>{9}};
  p.active_connection_id_limit = 2'000'000;
  p.initial_source_connection_id = Bytes{};  // zero-length CIDs are legal
  p.retry_source_connection_id = Bytes(20, 0x77);
  p.max_datagram_frame_size = 0;
  p.min_ack_delay = 16'383'000;  // = max_ack_delay in µs, < 2^24
  p.initial_max_path_id = 0xffffffff;
  p.n0_nat_traversal = 1;
  p.observed_address = AddressDiscoveryRole::kBoth;
  const Bytes blob = encode_transport_parameters(p, Role::kServer);
  auto back = decode_transport_parameters(blob, Role::kServer);
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_TRUE(*back == p);

  // As a client, the server-only parameters are left out and the rest survives.
  const Bytes client_blob = encode_transport_parameters(p, Role::kClient);
  auto client_back = decode_transport_parameters(client_blob, Role::kClient);
  ASSERT_TRUE(client_back.ok()) << client_back.error().message;
  TransportParameters expected = p;
  expected.original_destination_connection_id.reset();
  expected.stateless_reset_token.reset();
  expected.preferred_address.reset();
  expected.retry_source_connection_id.reset();
  EXPECT_TRUE(*client_back == expected);
}

TEST(TransportParams, ObservedAddressRoles) {
  for (auto role : {AddressDiscoveryRole::kSendOnly, AddressDiscoveryRole::kReceiveOnly,
                    AddressDiscoveryRole::kBoth}) {
    TransportParameters p;
    p.observed_address = role;
    const Bytes blob = encode_transport_parameters(p, Role::kClient);
    EXPECT_EQ(blob, (Bytes{0xc0, 0, 0, 0, 0x9f, 0x81, 0xa1, 0x76, 0x01,
                           static_cast<std::uint8_t>(role)}));
    auto back = decode_transport_parameters(blob, Role::kClient);
    ASSERT_TRUE(back.ok());
    EXPECT_EQ(back->observed_address, role);
  }
}

TEST(TransportParams, GreaseParameterFromInjectedRandomness) {
  const Bytes random = hex("0102030405060708 0d ca0ac77c3494f3be31d77a67af ffff");
  const GreaseParameter g = make_grease_parameter(random);
  EXPECT_TRUE(is_grease_id(g.id));
  EXPECT_LE(g.id, (std::uint64_t{1} << 62) - 1);
  EXPECT_EQ(g.value, hex("ca0ac77c3494f3be31d77a67af"));
  // Deterministic: same randomness, same parameter.
  EXPECT_EQ(make_grease_parameter(random).id, g.id);
  // Extreme randomness still yields a valid id.
  EXPECT_TRUE(is_grease_id(make_grease_parameter(Bytes(24, 0xff)).id));
  EXPECT_EQ(make_grease_parameter({}).id, 27u);

  const TransportParameters iroh = iroh_transport_parameters(hex("0102030405060708"));
  const Bytes blob = encode_transport_parameters(iroh, Role::kClient, g);
  auto back = decode_transport_parameters(blob, Role::kClient);
  ASSERT_TRUE(back.ok()) << back.error().message;
  ASSERT_EQ(back->unknown.size(), 1u);
  EXPECT_EQ(back->unknown[0].id, g.id);
  back->unknown.clear();
  EXPECT_TRUE(*back == iroh);
}

TEST(TransportParams, UnknownParametersIgnored) {
  auto tp = decode_transport_parameters(hex("1c 02 abcd 4042 00 01 01 05"), Role::kClient);
  ASSERT_TRUE(tp.ok()) << tp.error().message;
  EXPECT_EQ(tp->max_idle_timeout, 5u);
  ASSERT_EQ(tp->unknown.size(), 2u);
  EXPECT_EQ(tp->unknown[0].id, 0x1cu);
  EXPECT_EQ(tp->unknown[1].id, 0x42u);
  EXPECT_TRUE(tp->unknown[1].value.empty());
}

TEST(TransportParams, EmptyBlobIsAllDefaults) {
  auto tp = decode_transport_parameters({}, Role::kServer);
  ASSERT_TRUE(tp.ok());
  EXPECT_TRUE(*tp == TransportParameters{});
}

// ---- malformed blobs ----

struct Bad {
  const char* name;
  const char* hex;
  Role peer = Role::kServer;
};

constexpr const char* kPreferredOk =
    "0d 2d 0a000001 01bb 20010db8000000000000000000000000 20fb 04 a1a2a3a4 "
    "09000000000000000000000000000000";

TEST(TransportParams, MalformedBlobsRejected) {
  const std::vector<Bad> cases = {
      {"truncated id", "40"},
      {"missing length", "01"},
      {"truncated length", "01 40"},
      {"length beyond blob", "01 05 00"},
      {"duplicate known parameter", "01 01 00 01 01 00"},
      {"duplicate unknown parameter", "1b 00 1b 00"},
      {"duplicate n0_nat_traversal", "c0003d7f91120401 01 20 c0003d7f91120401 01 20"},
      {"max_udp_payload_size 1199", "03 02 44af"},
      {"ack_delay_exponent 21", "0a 01 15"},
      {"max_ack_delay 2^14", "0b 04 80004000"},
      {"active_connection_id_limit 1", "0e 01 01"},
      {"active_connection_id_limit 0", "0e 01 00"},
      {"initial_max_streams_bidi 2^60+1", "08 08 d000000000000001"},
      {"initial_max_streams_uni 2^60+1", "09 08 d000000000000001"},
      {"preferred_address from client", kPreferredOk, Role::kClient},
      {"original_destination_connection_id from client", "00 04 01020304", Role::kClient},
      {"stateless_reset_token from client", "02 10 00000000000000000000000000000000",
       Role::kClient},
      {"retry_source_connection_id from client", "10 01 00", Role::kClient},
      {"stateless_reset_token 15 bytes", "02 0f 000000000000000000000000000000"},
      {"stateless_reset_token 17 bytes", "02 11 0000000000000000000000000000000000"},
      {"initial_source_connection_id 21 bytes", "0f 15 000102030405060708090a0b0c0d0e0f1011121314"},
      {"original_destination_connection_id 21 bytes",
       "00 15 000102030405060708090a0b0c0d0e0f1011121314"},
      {"integer with trailing byte", "01 02 05 00"},
      {"integer truncated varint", "01 01 40"},
      {"integer empty", "01 00"},
      {"disable_active_migration not empty", "0c 01 00"},
      {"grease_quic_bit not empty", "6ab2 01 00"},
      {"n0_nat_traversal 2 bytes", "c0003d7f91120401 02 0020"},
      {"n0_nat_traversal empty", "c0003d7f91120401 00"},
      {"n0_nat_traversal zero", "c0003d7f91120401 01 00"},
      {"observed_address role 3", "c00000009f81a176 01 03"},
      {"observed_address empty", "c00000009f81a176 00"},
      {"initial_max_path_id 2^32", "3e 08 c000000100000000"},
      {"min_ack_delay 2^24", "c0000000ff04de1b 04 81000000"},
      {"min_ack_delay above max_ack_delay", "c0000000ff04de1b 04 800061a9"},
      {"min_ack_delay above explicit max_ack_delay", "0b 01 01 c0000000ff04de1b 02 43e9"},
      {"preferred_address zero-length cid",
       "0d 29 0a000001 01bb 20010db8000000000000000000000000 20fb 00 "
       "09000000000000000000000000000000"},
      {"preferred_address cid length 21",
       "0d 3e 0a000001 01bb 20010db8000000000000000000000000 20fb 15 "
       "000102030405060708090a0b0c0d0e0f1011121314 09000000000000000000000000000000"},
      {"preferred_address truncated", "0d 14 0a000001 01bb 20010db800000000000000000000"},
      {"preferred_address trailing byte",
       "0d 2e 0a000001 01bb 20010db8000000000000000000000000 20fb 04 a1a2a3a4 "
       "09000000000000000000000000000000 00"},
  };
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Bytes blob = hex(c.hex);
    auto r = decode_transport_parameters(blob, c.peer);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, TransportError::kTransportParameterError) << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
  }
  // The well-formed preferred_address used above decodes from a server.
  auto ok = decode_transport_parameters(hex(kPreferredOk), Role::kServer);
  ASSERT_TRUE(ok.ok()) << ok.error().message;
  ASSERT_TRUE(ok->preferred_address);
  EXPECT_EQ(ok->preferred_address->ipv4_port, 443);
  EXPECT_EQ(ok->preferred_address->ipv6_port, 8443);
  EXPECT_EQ(ok->preferred_address->connection_id, hex("a1a2a3a4"));
}

TEST(TransportParams, ToResultNamesTheCode) {
  auto r = to_result(decode_transport_parameters(hex("0a 01 15"), Role::kClient));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message.rfind("TRANSPORT_PARAMETER_ERROR: ", 0), 0u);
}

}  // namespace
}  // namespace iroh::quic

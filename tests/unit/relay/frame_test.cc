// Relay frames (spec §6.3): upstream snapshot vectors, round-trips of every frame type, and
// malformed input.
#include "relay/frame.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "base/key.h"
#include "test_bytes.h"

namespace iroh::relay {
namespace {

using iroh::testing::cat;
using iroh::testing::hex;

Bytes repeat(std::uint8_t byte, std::size_t n) { return Bytes(n, byte); }

// spec §1.2 / §6.3: sk = 0x2a×32 → id 197f…8d61 (upstream relay snapshot tests).
constexpr std::string_view kIdHex =
    "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61";

EndpointId snapshot_id() {
  ByteArray<32> seed;
  seed.fill(0x2a);
  return SecretKey::from_seed(seed).public_key();
}

Bytes hello_world() {
  return Bytes(as_bytes("Hello World!").begin(), as_bytes("Hello World!").end());
}

// The first 32-byte string of the form {y, 0, ..., 0} that is not the encoding of a curve point
// (i.e. (y² - 1) / (d·y² + 1) is not a square mod p). Found at run time with key.h's own predicate.
ByteArray<32> non_point() {
  for (int y = 2; y < 256; ++y) {
    ByteArray<32> candidate{};
    candidate[0] = static_cast<std::uint8_t>(y);
    if (!is_edwards25519_point(candidate)) return candidate;
  }
  ADD_FAILURE() << "no non-point candidate found";
  return {};
}

Bytes non_point_bytes() {
  const auto p = non_point();
  return Bytes(p.begin(), p.end());
}

std::string show(const Result<Frame>& r) {
  return r.ok() ? "ok: " + std::string(frame_name(*r)) : "error: " + r.error().message;
}

// Encode gives exactly `wire`, and decoding `wire` under `version` gives `frame` back.
void expect_vector(const Frame& frame, const Bytes& wire, ProtocolVersion version) {
  EXPECT_EQ(encode(frame), wire) << frame_name(frame);
  auto decoded = decode(wire, version);
  ASSERT_TRUE(decoded.ok()) << show(decoded);
  EXPECT_TRUE(*decoded == frame) << frame_name(frame);
}

void expect_round_trip(const Frame& frame, ProtocolVersion version) {
  const Bytes wire = encode(frame);
  auto decoded = decode(wire, version);
  ASSERT_TRUE(decoded.ok()) << frame_name(frame) << " " << show(decoded);
  EXPECT_TRUE(*decoded == frame) << frame_name(frame);
  EXPECT_EQ(encode(*decoded), wire);
}

void expect_error(const Bytes& wire, ProtocolVersion version, std::string_view needle) {
  auto decoded = decode(wire, version);
  ASSERT_FALSE(decoded.ok()) << "decoded as " << show(decoded);
  EXPECT_NE(decoded.error().message.find(needle), std::string::npos)
      << "message \"" << decoded.error().message << "\" lacks \"" << needle << "\"";
}

constexpr ProtocolVersion kBoth[] = {ProtocolVersion::V1, ProtocolVersion::V2};

// ---------------------------------------------------------------------------------------------
// Protocol version and naming helpers

TEST(RelayProtocolVersion, ParseAndPrint) {
  EXPECT_EQ(to_string(ProtocolVersion::V1), "iroh-relay-v1");
  EXPECT_EQ(to_string(ProtocolVersion::V2), "iroh-relay-v2");
  auto v1 = parse_protocol_version("iroh-relay-v1");
  auto v2 = parse_protocol_version("iroh-relay-v2");
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(v2.ok());
  EXPECT_EQ(*v1, ProtocolVersion::V1);
  EXPECT_EQ(*v2, ProtocolVersion::V2);
  for (std::string_view bad :
       {"", "iroh-relay-v3", "IROH-RELAY-V2", " iroh-relay-v2", "iroh-relay"}) {
    auto r = parse_protocol_version(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_NE(r.error().message.find("unknown relay protocol version"), std::string::npos);
  }
}

TEST(RelayFrame, SnapshotIdDerivation) { EXPECT_EQ(snapshot_id().to_hex(), kIdHex); }

TEST(RelayFrame, Names) {
  EXPECT_EQ(frame_name(ServerChallenge{}), "ServerChallenge");
  EXPECT_EQ(frame_name(ClientAuth{}), "ClientAuth");
  EXPECT_EQ(frame_name(ServerConfirmsAuth{}), "ServerConfirmsAuth");
  EXPECT_EQ(frame_name(ServerDeniesAuth{}), "ServerDeniesAuth");
  EXPECT_EQ(frame_name(ClientToRelayDatagram{}), "ClientToRelayDatagram");
  EXPECT_EQ(frame_name(ClientToRelayDatagram{{}, 0, 6, {}}), "ClientToRelayDatagramBatch");
  EXPECT_EQ(frame_name(ClientToRelayDatagram{{}, 0, 0, {}}), "ClientToRelayDatagram");
  EXPECT_EQ(frame_name(RelayToClientDatagram{}), "RelayToClientDatagram");
  EXPECT_EQ(frame_name(RelayToClientDatagram{{}, 0, 1, {}}), "RelayToClientDatagramBatch");
  EXPECT_EQ(frame_name(EndpointGone{}), "EndpointGone");
  EXPECT_EQ(frame_name(Ping{}), "Ping");
  EXPECT_EQ(frame_name(Pong{}), "Pong");
  EXPECT_EQ(frame_name(Health{}), "Health");
  EXPECT_EQ(frame_name(Restarting{}), "Restarting");
  EXPECT_EQ(frame_name(Status{}), "Status");
  EXPECT_EQ(frame_type(Status{}), FrameType::Status);
  EXPECT_EQ(frame_type(RelayToClientDatagram{{}, 0, 1, {}}), FrameType::RelayToClientDatagramBatch);
}

TEST(RelayFrame, Directions) {
  EXPECT_EQ(direction(FrameType::ServerChallenge), Direction::ServerToClient);
  EXPECT_EQ(direction(FrameType::ClientAuth), Direction::ClientToServer);
  EXPECT_EQ(direction(FrameType::ClientToRelayDatagramBatch), Direction::ClientToServer);
  EXPECT_EQ(direction(FrameType::RelayToClientDatagram), Direction::ServerToClient);
  EXPECT_EQ(direction(FrameType::Ping), Direction::Both);
  EXPECT_EQ(direction(FrameType::Pong), Direction::Both);
  EXPECT_EQ(direction(FrameType::Status), Direction::ServerToClient);
}

TEST(RelayFrame, StatusNames) {
  EXPECT_EQ(Status{Status::kHealthy}.name(), "Healthy");
  EXPECT_EQ(Status{Status::kSameEndpointIdConnected}.name(), "SameEndpointIdConnected");
  EXPECT_EQ(Status{Status::kRateLimited}.name(), "RateLimited");
  EXPECT_EQ(Status{3}.name(), "Unknown");
  EXPECT_TRUE(Status{2}.is_known());
  EXPECT_FALSE(Status{255}.is_known());
}

// ---------------------------------------------------------------------------------------------
// Upstream snapshot vectors, spec §6.3 (iroh-relay/src/protos/relay.rs:608-760)

TEST(RelayFrameVectors, RelayToClientDatagramBatch) {
  const Bytes wire = hex("07" + std::string(kIdHex) + "03 0006 48656c6c6f20576f726c6421");
  for (auto v : kBoth) {
    expect_vector(RelayToClientDatagram{snapshot_id(), ecn::kCe, 6, hello_world()}, wire, v);
  }
}

TEST(RelayFrameVectors, RelayToClientDatagramSingle) {
  const Bytes wire = hex("06" + std::string(kIdHex) + "03 48656c6c6f20576f726c6421");
  for (auto v : kBoth) {
    expect_vector(RelayToClientDatagram{snapshot_id(), ecn::kCe, std::nullopt, hello_world()}, wire,
                  v);
  }
}

TEST(RelayFrameVectors, ClientToRelayDatagramBatch) {
  const Bytes wire = hex("05" + std::string(kIdHex) + "03 0006 48656c6c6f20576f726c6421");
  for (auto v : kBoth) {
    expect_vector(ClientToRelayDatagram{snapshot_id(), ecn::kCe, 6, hello_world()}, wire, v);
  }
}

TEST(RelayFrameVectors, ClientToRelayDatagramSingle) {
  const Bytes wire = hex("04" + std::string(kIdHex) + "03 48656c6c6f20576f726c6421");
  for (auto v : kBoth) {
    expect_vector(ClientToRelayDatagram{snapshot_id(), ecn::kCe, std::nullopt, hello_world()}, wire,
                  v);
  }
}

TEST(RelayFrameVectors, EndpointGone) {
  for (auto v : kBoth)
    expect_vector(EndpointGone{snapshot_id()}, hex("08" + std::string(kIdHex)), v);
}

TEST(RelayFrameVectors, PingPong) {
  ByteArray<8> data;
  data.fill(42);
  for (auto v : kBoth) {
    expect_vector(Ping{data}, hex("09 2a2a2a2a2a2a2a2a"), v);
    expect_vector(Pong{data}, hex("0a 2a2a2a2a2a2a2a2a"), v);
  }
}

TEST(RelayFrameVectors, Restarting) {
  for (auto v : kBoth) expect_vector(Restarting{10, 20}, hex("0c 0000000a 00000014"), v);
}

TEST(RelayFrameVectors, Status) {
  expect_vector(Status{Status::kSameEndpointIdConnected}, hex("0d 01"), ProtocolVersion::V2);
  expect_vector(Status{Status::kRateLimited}, hex("0d 02"), ProtocolVersion::V2);
}

TEST(RelayFrameVectors, Health) {
  expect_vector(Health{"Hello? Yes this is dog."},
                hex("0b 48656c6c6f3f2059657320746869732069732064 6f672e"), ProtocolVersion::V1);
}

// ---------------------------------------------------------------------------------------------
// Round-trips of every frame type

TEST(RelayFrameRoundTrip, ServerChallenge) {
  ServerChallenge f;
  for (std::size_t i = 0; i < f.challenge.size(); ++i)
    f.challenge[i] = static_cast<std::uint8_t>(0xf0 + i);
  for (auto v : kBoth) expect_round_trip(f, v);
  EXPECT_EQ(encode(f).size(), 17u);
}

TEST(RelayFrameRoundTrip, ClientAuth) {
  ClientAuth f{snapshot_id(), {}};
  for (std::size_t i = 0; i < f.signature.size(); ++i)
    f.signature[i] = static_cast<std::uint8_t>(i * 7);
  for (auto v : kBoth) expect_round_trip(f, v);
  const Bytes wire = encode(f);
  ASSERT_EQ(wire.size(), 98u);
  EXPECT_EQ(wire[0], 0x01);
  EXPECT_EQ(wire[33], 0x40);
}

TEST(RelayFrameRoundTrip, ServerConfirmsAuth) {
  EXPECT_EQ(encode(ServerConfirmsAuth{}), hex("02"));
  for (auto v : kBoth) expect_round_trip(ServerConfirmsAuth{}, v);
}

TEST(RelayFrameRoundTrip, ServerDeniesAuth) {
  EXPECT_EQ(encode(ServerDeniesAuth{"signature invalid"}),
            cat({hex("03 11"), Bytes(as_bytes("signature invalid").begin(),
                                     as_bytes("signature invalid").end())}));
  EXPECT_EQ(encode(ServerDeniesAuth{""}), hex("03 00"));
  // 200 bytes → two-byte LEB128 length c8 01.
  const std::string long_reason(200, 'x');
  const Bytes long_wire = encode(ServerDeniesAuth{long_reason});
  EXPECT_EQ(long_wire[1], 0xc8);
  EXPECT_EQ(long_wire[2], 0x01);
  EXPECT_EQ(long_wire.size(), 203u);
  for (auto v : kBoth) {
    expect_round_trip(ServerDeniesAuth{"not authorized"}, v);
    expect_round_trip(ServerDeniesAuth{""}, v);
    expect_round_trip(ServerDeniesAuth{long_reason}, v);
    expect_round_trip(ServerDeniesAuth{"verweigert: \xc3\xbc \xe2\x82\xac \xf0\x9f\x94\x91"}, v);
  }
}

TEST(RelayFrameRoundTrip, Datagrams) {
  const Bytes payload = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
  for (auto v : kBoth) {
    for (std::uint8_t e = 0; e <= 3; ++e) {
      expect_round_trip(ClientToRelayDatagram{snapshot_id(), e, std::nullopt, payload}, v);
      expect_round_trip(ClientToRelayDatagram{snapshot_id(), e, 4, payload}, v);
      expect_round_trip(RelayToClientDatagram{snapshot_id(), e, std::nullopt, payload}, v);
      expect_round_trip(RelayToClientDatagram{snapshot_id(), e, 0xffff, payload}, v);
    }
    // Empty payloads are representable.
    expect_round_trip(ClientToRelayDatagram{snapshot_id(), 0, std::nullopt, {}}, v);
    expect_round_trip(RelayToClientDatagram{snapshot_id(), 0, 1200, {}}, v);
  }
}

TEST(RelayFrameRoundTrip, DatagramsAtMaximumSize) {
  // Body = 32 (id) + 1 (ECN) [+ 2 (segment size)] + payload ≤ 65536.
  const Bytes single_payload(kMaxFrameBody - 33, 0xab);
  const Bytes batch_payload(kMaxFrameBody - 35, 0xcd);
  for (auto v : kBoth) {
    expect_round_trip(ClientToRelayDatagram{snapshot_id(), 2, std::nullopt, single_payload}, v);
    expect_round_trip(RelayToClientDatagram{snapshot_id(), 1, 1452, batch_payload}, v);
  }
  EXPECT_EQ(encode(ClientToRelayDatagram{snapshot_id(), 2, std::nullopt, single_payload}).size(),
            1 + kMaxFrameBody);
}

TEST(RelayFrameRoundTrip, SegmentSizeZeroMeansNone) {
  // Decoder: a batch frame with segment_size 0 carries no segment size (spec §6.3) ...
  const Bytes batch0 = hex("05" + std::string(kIdHex) + "00 0000 aabb");
  auto decoded = decode(batch0, ProtocolVersion::V2);
  ASSERT_TRUE(decoded.ok()) << show(decoded);
  const auto& d = std::get<ClientToRelayDatagram>(*decoded);
  EXPECT_FALSE(d.segment_size.has_value());
  EXPECT_EQ(d.payload, hex("aabb"));
  // ... and so re-encodes in the single form, which is stable from then on.
  EXPECT_EQ(encode(*decoded), hex("04" + std::string(kIdHex) + "00 aabb"));
  // Encoder: an explicit 0 is treated the same.
  EXPECT_EQ(encode(RelayToClientDatagram{snapshot_id(), 0, 0, hex("aabb")}),
            hex("06" + std::string(kIdHex) + "00 aabb"));
}

TEST(RelayFrameRoundTrip, EndpointGonePingPong) {
  for (auto v : kBoth) {
    expect_round_trip(EndpointGone{snapshot_id()}, v);
    expect_round_trip(EndpointGone{EndpointId{}}, v);  // all-zero encoding is a valid point
    expect_round_trip(Ping{{0, 1, 2, 3, 4, 5, 6, 7}}, v);
    expect_round_trip(Pong{{0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0xfa, 0xf9, 0xf8}}, v);
  }
}

TEST(RelayFrameRoundTrip, Health) {
  expect_round_trip(Health{""}, ProtocolVersion::V1);
  expect_round_trip(Health{"relay overloaded \xe2\x9a\xa0"}, ProtocolVersion::V1);
  expect_round_trip(Health{std::string(kMaxFrameBody, 'h')}, ProtocolVersion::V1);
}

TEST(RelayFrameRoundTrip, Restarting) {
  for (auto v : kBoth) {
    expect_round_trip(Restarting{0, 0}, v);
    expect_round_trip(Restarting{0xffffffffu, 0x01020304u}, v);
  }
  EXPECT_EQ(encode(Restarting{0xffffffffu, 0x01020304u}), hex("0c ffffffff 01020304"));
}

TEST(RelayFrameRoundTrip, StatusAllCodes) {
  for (int code = 0; code < 256; ++code) {
    const Status s{static_cast<std::uint8_t>(code)};
    EXPECT_EQ(encode(s), (Bytes{0x0d, static_cast<std::uint8_t>(code)}));
    expect_round_trip(s, ProtocolVersion::V2);  // unknown codes are tolerated
  }
}

TEST(RelayFrameDecode, NonMinimalFrameTypeAccepted) {
  // RFC 9000 §16 permits over-long varints; the re-encoding is minimal.
  auto decoded = decode(hex("4009 2a2a2a2a2a2a2a2a"), ProtocolVersion::V2);
  ASSERT_TRUE(decoded.ok()) << show(decoded);
  EXPECT_TRUE(std::holds_alternative<Ping>(*decoded));
  EXPECT_EQ(encode(*decoded), hex("09 2a2a2a2a2a2a2a2a"));
  auto confirms = decode(hex("8000 0002"), ProtocolVersion::V1);
  ASSERT_TRUE(confirms.ok()) << show(confirms);
  EXPECT_TRUE(std::holds_alternative<ServerConfirmsAuth>(*confirms));
}

TEST(RelayFrameDecode, NonMinimalSignatureLengthAccepted) {
  // postcard accepts over-long LEB128: c0 00 = 64.
  const Bytes wire = cat({hex("01" + std::string(kIdHex) + "c000"), repeat(0x55, 64)});
  auto decoded = decode(wire, ProtocolVersion::V2);
  ASSERT_TRUE(decoded.ok()) << show(decoded);
  EXPECT_EQ(std::get<ClientAuth>(*decoded).signature[0], 0x55);
  EXPECT_EQ(encode(*decoded).size(), 98u);
}

TEST(RelayFrameDecode, AppendingEncoder) {
  Bytes out = {0xee};
  encode_to(out, ServerConfirmsAuth{});
  encode_to(out, Status{1});
  EXPECT_EQ(out, hex("ee 02 0d01"));
}

// ---------------------------------------------------------------------------------------------
// Malformed messages: every one is an Error with a clear reason.

const std::string kId(kIdHex);

TEST(RelayFrameMalformed, EmptyMessage) {
  for (auto v : kBoth) expect_error({}, v, "truncated relay frame type");
}

TEST(RelayFrameMalformed, TruncatedFrameTypeVarint) {
  expect_error(hex("40"), ProtocolVersion::V2, "truncated relay frame type");
  expect_error(hex("c0000000"), ProtocolVersion::V2, "truncated relay frame type");
}

TEST(RelayFrameMalformed, UnknownFrameType) {
  expect_error(hex("0e"), ProtocolVersion::V2, "unknown frame type 14");
  expect_error(hex("3f 00"), ProtocolVersion::V1, "unknown frame type 63");
  expect_error(hex("c000000000000100"), ProtocolVersion::V2, "unknown frame type 256");
  expect_error(hex("ffffffffffffffff"), ProtocolVersion::V2,
               "unknown frame type 4611686018427387903");
}

TEST(RelayFrameMalformed, ServerChallengeWrongLength) {
  expect_error(cat({hex("00"), repeat(1, 15)}), ProtocolVersion::V2, "exactly 16 bytes, got 15");
  expect_error(cat({hex("00"), repeat(1, 17)}), ProtocolVersion::V2, "exactly 16 bytes, got 17");
  expect_error(hex("00"), ProtocolVersion::V1, "exactly 16 bytes, got 0");
}

TEST(RelayFrameMalformed, ClientAuthTruncated) {
  expect_error(hex("01" + kId.substr(0, 62)), ProtocolVersion::V2, "ClientAuth");
  expect_error(hex("01" + kId), ProtocolVersion::V2, "signature length");
  expect_error(cat({hex("01" + kId + "40"), repeat(7, 63)}), ProtocolVersion::V2, "signature");
}

TEST(RelayFrameMalformed, ClientAuthBadSignatureLengthPrefix) {
  expect_error(cat({hex("01" + kId + "3f"), repeat(7, 63)}), ProtocolVersion::V2,
               "signature length prefix must be 64, got 63");
  expect_error(cat({hex("01" + kId + "41"), repeat(7, 65)}), ProtocolVersion::V2,
               "signature length prefix must be 64, got 65");
  expect_error(cat({hex("01" + kId + "00"), repeat(7, 64)}), ProtocolVersion::V2,
               "must be 64, got 0");
  // Unterminated LEB128 (continuation bit set on every byte).
  expect_error(cat({hex("01" + kId), repeat(0xc0, 11)}), ProtocolVersion::V2, "signature length");
}

TEST(RelayFrameMalformed, ClientAuthTrailingBytes) {
  expect_error(cat({hex("01" + kId + "40"), repeat(7, 65)}), ProtocolVersion::V2,
               "1 unexpected trailing byte");
}

TEST(RelayFrameMalformed, ClientAuthInvalidCurvePoint) {
  const Bytes bad = non_point_bytes();
  EXPECT_FALSE(EndpointId::from_bytes(bad).ok());
  expect_error(cat({hex("01"), bad, hex("40"), repeat(7, 64)}), ProtocolVersion::V2, "public key");
}

TEST(RelayFrameMalformed, ServerConfirmsAuthWithBody) {
  expect_error(hex("02 00"), ProtocolVersion::V2, "exactly 0 bytes, got 1");
}

TEST(RelayFrameMalformed, ServerDeniesAuthInvalidUtf8) {
  for (const char* bad : {"02 c328", "02 c080", "03 eda080", "01 ff", "04 f4908080", "01 80"}) {
    SCOPED_TRACE(bad);
    expect_error(cat({hex("03"), hex(bad)}), ProtocolVersion::V2, "UTF-8");
  }
}

TEST(RelayFrameMalformed, ServerDeniesAuthBadLength) {
  expect_error(hex("03"), ProtocolVersion::V2, "ServerDeniesAuth");              // no length
  expect_error(hex("03 05 6161"), ProtocolVersion::V2, "exceeds");               // length > rest
  expect_error(hex("03 ffffffffffffffffff01"), ProtocolVersion::V2, "exceeds");  // 2^64-1
  expect_error(hex("03 ffffffffffffffffff7f"), ProtocolVersion::V2, "overflow");
  expect_error(hex("03 01 61 62"), ProtocolVersion::V2, "1 unexpected trailing byte");
}

TEST(RelayFrameMalformed, DatagramBadEcn) {
  for (const char* type : {"04", "05", "06", "07"}) {
    SCOPED_TRACE(type);
    expect_error(hex(std::string(type) + kId + "04 0006 aa"), ProtocolVersion::V2,
                 "invalid ECN codepoint 4");
    expect_error(hex(std::string(type) + kId + "ff 0006 aa"), ProtocolVersion::V1,
                 "invalid ECN codepoint 255");
  }
}

TEST(RelayFrameMalformed, DatagramTruncated) {
  expect_error(hex("04" + kId.substr(0, 62)), ProtocolVersion::V2, "truncated destination id");
  expect_error(hex("06" + kId.substr(0, 2)), ProtocolVersion::V2, "truncated source id");
  expect_error(hex("04" + kId), ProtocolVersion::V2, "truncated ECN");
  expect_error(hex("07" + kId), ProtocolVersion::V2, "truncated ECN");
  expect_error(hex("05" + kId + "03"), ProtocolVersion::V2, "truncated segment size");
  expect_error(hex("07" + kId + "03 00"), ProtocolVersion::V2, "truncated segment size");
  expect_error(hex("06"), ProtocolVersion::V1, "RelayToClientDatagram (6)");
}

TEST(RelayFrameMalformed, DatagramInvalidCurvePoint) {
  const Bytes bad = non_point_bytes();
  expect_error(cat({hex("04"), bad, hex("00 aa")}), ProtocolVersion::V2, "destination id");
  expect_error(cat({hex("07"), bad, hex("00 0001 aa")}), ProtocolVersion::V2, "source id");
}

TEST(RelayFrameMalformed, EndpointGoneWrongLengthOrPoint) {
  expect_error(hex("08" + kId.substr(0, 62)), ProtocolVersion::V2, "exactly 32 bytes, got 31");
  expect_error(hex("08" + kId + "00"), ProtocolVersion::V2, "exactly 32 bytes, got 33");
  expect_error(hex("08"), ProtocolVersion::V2, "exactly 32 bytes, got 0");
  expect_error(cat({hex("08"), non_point_bytes()}), ProtocolVersion::V2, "EndpointGone (8): id");
}

TEST(RelayFrameMalformed, PingPongWrongLength) {
  expect_error(hex("09 2a2a2a2a2a2a2a"), ProtocolVersion::V2, "Ping (9): body must be exactly 8");
  expect_error(hex("09 2a2a2a2a2a2a2a2a2a"), ProtocolVersion::V2, "got 9");
  expect_error(hex("0a"), ProtocolVersion::V2, "Pong (10): body must be exactly 8 bytes, got 0");
}

TEST(RelayFrameMalformed, HealthOnlyInV1) {
  expect_error(hex("0b 6f6b"), ProtocolVersion::V2, "only valid in iroh-relay-v1");
  expect_error(hex("0b"), ProtocolVersion::V2, "Health (11)");
}

TEST(RelayFrameMalformed, HealthInvalidUtf8) {
  expect_error(hex("0b 6f6bff"), ProtocolVersion::V1, "not valid UTF-8");
  expect_error(hex("0b e282"), ProtocolVersion::V1, "not valid UTF-8");  // truncated sequence
}

TEST(RelayFrameMalformed, StatusOnlyInV2) {
  expect_error(hex("0d 00"), ProtocolVersion::V1, "only valid in iroh-relay-v2");
}

TEST(RelayFrameMalformed, StatusWrongLength) {
  expect_error(hex("0d"), ProtocolVersion::V2, "exactly 1 byte, got 0");
  expect_error(hex("0d 0102"), ProtocolVersion::V2, "exactly 1 byte, got 2");
}

TEST(RelayFrameMalformed, RestartingWrongLength) {
  expect_error(hex("0c 0000000a 000000"), ProtocolVersion::V2, "exactly 8 bytes, got 7");
  expect_error(hex("0c 0000000a 0000001400"), ProtocolVersion::V1, "exactly 8 bytes, got 9");
}

TEST(RelayFrameMalformed, PayloadOver64KiB) {
  // Body of exactly 65536 bytes is fine; 65537 is rejected, whatever the frame type.
  const Bytes at_limit = cat({hex("04" + kId + "00"), repeat(0x11, kMaxFrameBody - 33)});
  EXPECT_TRUE(decode(at_limit, ProtocolVersion::V2).ok());
  const Bytes over = cat({hex("04" + kId + "00"), repeat(0x11, kMaxFrameBody - 32)});
  expect_error(over, ProtocolVersion::V2, "body of 65537 bytes exceeds the maximum of 65536");
  const Bytes batch_over = cat({hex("07" + kId + "00 0010"), repeat(0x11, kMaxFrameBody - 34)});
  expect_error(batch_over, ProtocolVersion::V1, "exceeds the maximum");
  expect_error(cat({hex("0b"), repeat('a', kMaxFrameBody + 1)}), ProtocolVersion::V1,
               "exceeds the maximum");
  // Over-size also wins over "wrong length" for fixed-size frames.
  expect_error(cat({hex("09"), repeat(0, kMaxFrameBody + 100)}), ProtocolVersion::V2,
               "exceeds the maximum");
}

TEST(RelayFrameMalformed, EveryTruncationOfEveryVectorFailsOrDecodes) {
  // No prefix of a valid message may crash; fixed-layout frames must fail on every strict prefix.
  const std::vector<Bytes> vectors = {hex("07" + kId + "03 0006 48656c6c6f"),
                                      hex("08" + kId),
                                      hex("09 2a2a2a2a2a2a2a2a"),
                                      hex("0c 0000000a 00000014"),
                                      hex("0d 02"),
                                      cat({hex("01" + kId + "40"), repeat(9, 64)}),
                                      cat({hex("00"), repeat(3, 16)}),
                                      hex("03 03 616263")};
  for (const auto& full : vectors) {
    ASSERT_TRUE(decode(full, ProtocolVersion::V2).ok()) << show(decode(full, ProtocolVersion::V2));
    const bool fixed = full[0] != 0x07;
    for (std::size_t n = 0; n < full.size(); ++n) {
      auto r = decode(ByteView(full).first(n), ProtocolVersion::V2);
      if (fixed || n < 36) {
        EXPECT_FALSE(r.ok()) << "prefix " << n << " of type " << int(full[0]);
      }
    }
  }
}

}  // namespace
}  // namespace iroh::relay

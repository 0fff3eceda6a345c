// QUIC packet headers and protection (RFC 9000 §17, RFC 9001 §5): RFC 9001 Appendix A packets byte
// for byte, RFC 9000 Appendix A.2/A.3 packet numbers, round trips of every header type, coalesced
// datagrams and malformed input.
#include "quic/packet.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "../crypto/rfc9001_vectors.h"

namespace iroh::quic {
namespace {

using crypto::AeadAlgorithm;
using crypto::EncryptionLevel;
using crypto::PacketProtection;
using test::hex;
using test::to_hex_string;
namespace v = test::rfc9001;

ConnectionId cid(std::string_view h) { return *ConnectionId::from(hex(h)); }

crypto::InitialKeys initial_keys() {
  auto k = crypto::derive_initial_keys(hex(v::kDcid));
  if (!k) __builtin_trap();
  return std::move(*k);
}

PacketProtection chacha_keys() {
  auto k = PacketProtection::from_secret(AeadAlgorithm::kChaCha20Poly1305, hex(v::kChaChaSecret),
                                         EncryptionLevel::kOneRtt);
  if (!k) __builtin_trap();
  return std::move(*k);
}

PacketProtection keys_for(AeadAlgorithm alg, std::uint8_t fill) {
  auto k = PacketProtection::from_secret(
      alg, Bytes(crypto::hash_length(crypto::aead_hash(alg)), fill), EncryptionLevel::kOneRtt);
  if (!k) __builtin_trap();
  return std::move(*k);
}

// ---------------------------------------------------------------- packet numbers (RFC 9000 A)

TEST(PacketNumber, Rfc9000A2EncodingExamples) {
  // "if an endpoint has received an acknowledgment for packet 0xabe8b3 and is sending a packet
  // with a number of 0xac5c02, ... 16 bits are required"; for 0xace8fe, 24 bits.
  EXPECT_EQ(packet_number_length(0xac5c02, 0xabe8b3), 2u);
  EXPECT_EQ(packet_number_length(0xace8fe, 0xabe8b3), 3u);
}

TEST(PacketNumber, Rfc9000A3DecodingExample) {
  // "if the highest successfully authenticated packet had a packet number of 0xa82f30ea, then a
  // packet containing a 16-bit value of 0x9b32 will be decoded as 0xa82f9b32".
  EXPECT_EQ(decode_packet_number(0xa82f30ea, 0x9b32, 2), 0xa82f9b32u);
}

TEST(PacketNumber, LengthBoundaries) {
  EXPECT_EQ(packet_number_length(0, std::nullopt), 1u);
  EXPECT_EQ(packet_number_length(126, std::nullopt), 1u);  // 127 unacked → 7 bits + 1
  EXPECT_EQ(packet_number_length(127, std::nullopt), 2u);  // 128 unacked → needs 9 bits
  EXPECT_EQ(packet_number_length(10 + 127, 10), 1u);
  EXPECT_EQ(packet_number_length(10 + 128, 10), 2u);
  EXPECT_EQ(packet_number_length((1u << 15) + 9, 10), 2u);
  EXPECT_EQ(packet_number_length((1u << 15) + 10, 10), 3u);
  EXPECT_EQ(packet_number_length((1u << 23) + 99, 100), 3u);
  EXPECT_EQ(packet_number_length((1u << 23) + 100, 100), 4u);
  EXPECT_EQ(packet_number_length(std::uint64_t{1} << 40, 0), 4u);  // capped
  EXPECT_EQ(packet_number_length(5, 9), 1u);  // largest_acked ≥ pn (caller error): no crash
}

TEST(PacketNumber, DecodingWrapsBothWays) {
  EXPECT_EQ(decode_packet_number(std::nullopt, 0, 1), 0u);
  EXPECT_EQ(decode_packet_number(std::nullopt, 5, 4), 5u);
  EXPECT_EQ(decode_packet_number(0xff, 0x00, 1), 0x100u);  // next window
  EXPECT_EQ(decode_packet_number(0x1f0, 0x05, 1), 0x205u);
  EXPECT_EQ(decode_packet_number(0x205, 0xf0, 1), 0x1f0u);  // late packet from before the wrap
  EXPECT_EQ(decode_packet_number(10, 0xff, 1), 0xffu);      // no wrap below zero
  EXPECT_EQ(decode_packet_number(kMaxPacketNumber - 1, 0xff, 1), kMaxPacketNumber);
}

TEST(PacketNumber, EncodeDecodeRoundTrip) {
  // Whatever the sender picks with packet_number_length(), a receiver that has seen everything up
  // to largest_acked reconstructs the number exactly.
  std::uint64_t state = 0x9e3779b97f4a7c15;
  for (int i = 0; i < 20000; ++i) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    const std::uint64_t acked = state % (std::uint64_t{1} << 40);
    const std::uint64_t pn = acked + 1 + (state >> 40) % (std::uint64_t{1} << (i % 31));
    const std::size_t len = packet_number_length(pn, acked);
    const std::uint64_t truncated = pn & ((std::uint64_t{1} << (8 * len)) - 1);
    ASSERT_EQ(decode_packet_number(acked, truncated, len), pn) << "pn " << pn << " acked " << acked;
  }
}

// ------------------------------------------------------------- RFC 9001 Appendix A, byte for byte

PacketHeader a2_header() {
  PacketHeader h;
  h.type = PacketType::kInitial;
  h.version = kVersion1;
  h.dcid = cid(v::kDcid);
  h.pn_length = 4;
  h.packet_number = 2;
  return h;
}

TEST(PacketProtect, Rfc9001A2ClientInitial) {
  auto keys = initial_keys();
  auto packet = protect_packet(a2_header(), v::client_initial_payload(), keys.client);
  ASSERT_TRUE(packet.ok()) << packet.error().message;
  EXPECT_EQ(packet->size(), 1200u);
  EXPECT_EQ(to_hex_string(*packet), to_hex_string(hex(v::kClientInitialPacket)));

  // The server side opens it.
  Bytes wire = hex(v::kClientInitialPacket);
  auto opened = unprotect_packet(wire, 8, std::nullopt, keys.client);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->header.type, PacketType::kInitial);
  EXPECT_EQ(opened->header.packet_number, 2u);
  EXPECT_EQ(opened->header.pn_length, 4u);
  EXPECT_EQ(opened->header.length, 1182u);
  EXPECT_EQ(opened->header.reserved_bits, 0u);
  EXPECT_EQ(opened->header.dcid, cid(v::kDcid));
  EXPECT_TRUE(opened->header.scid.empty());
  EXPECT_TRUE(opened->header.token.empty());
  EXPECT_EQ(opened->header_length, 22u);
  EXPECT_EQ(opened->packet_length, 1200u);
  EXPECT_EQ(to_hex_string(ByteView(wire).first(22)), v::kClientInitialHeader);
  EXPECT_EQ(Bytes(opened->payload.begin(), opened->payload.end()), v::client_initial_payload());
}

TEST(PacketProtect, Rfc9001A3ServerInitial) {
  auto keys = initial_keys();
  PacketHeader h;
  h.type = PacketType::kInitial;
  h.scid = cid(v::kServerScid);
  h.pn_length = 2;
  h.packet_number = 1;
  h.length_size = 2;  // the RFC encodes Length 117 in two bytes (0x4075)
  auto packet = protect_packet(h, hex(v::kServerInitialPayload), keys.server);
  ASSERT_TRUE(packet.ok()) << packet.error().message;
  EXPECT_EQ(to_hex_string(*packet), to_hex_string(hex(v::kServerInitialPacket)));

  Bytes wire = hex(v::kServerInitialPacket);
  auto opened = unprotect_packet(wire, 0, std::nullopt, keys.server);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->header.packet_number, 1u);
  EXPECT_EQ(opened->header.scid, cid(v::kServerScid));
  EXPECT_EQ(opened->header.length_size, 2u);
  EXPECT_EQ(to_hex_string(ByteView(wire).first(20)), v::kServerInitialHeader);
  EXPECT_EQ(to_hex_string(opened->payload), v::kServerInitialPayload);
}

TEST(PacketProtect, Rfc9001A4Retry) {
  const Bytes wire = hex(v::kRetryPacket);
  auto parsed = parse_header(wire, 8);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  const PacketHeader& h = parsed->header;
  EXPECT_EQ(h.type, PacketType::kRetry);
  EXPECT_EQ(h.version, kVersion1);
  EXPECT_TRUE(h.dcid.empty());
  EXPECT_EQ(h.scid, cid(v::kServerScid));
  EXPECT_EQ(to_hex_string(h.token), to_hex_string(as_bytes("token")));
  EXPECT_EQ(to_hex_string(h.retry_integrity_tag), v::kRetryTag);
  EXPECT_EQ(h.unused_bits, 0x0f);
  EXPECT_EQ(parsed->packet_length, wire.size());
  EXPECT_TRUE(crypto::verify_retry_integrity(hex(v::kDcid), wire).ok());

  PacketHeader fresh = h;
  fresh.retry_integrity_tag = {};
  auto built = encode_retry(fresh, hex(v::kDcid));
  ASSERT_TRUE(built.ok()) << built.error().message;
  EXPECT_EQ(to_hex_string(*built), v::kRetryPacket);
}

TEST(PacketProtect, Rfc9001A5ChaChaShortHeader) {
  auto keys = chacha_keys();
  PacketHeader h;
  h.type = PacketType::kOneRtt;  // zero-length DCID
  h.pn_length = 3;
  h.packet_number = v::kChaChaPacketNumber;
  auto packet = protect_packet(h, hex(v::kChaChaPayload), keys);
  ASSERT_TRUE(packet.ok()) << packet.error().message;
  EXPECT_EQ(to_hex_string(*packet), v::kChaChaPacket);

  Bytes wire = hex(v::kChaChaPacket);
  auto opened = unprotect_packet(wire, 0, v::kChaChaPacketNumber - 1, keys);
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_EQ(opened->header.packet_number, v::kChaChaPacketNumber);
  EXPECT_EQ(opened->header.pn_length, 3u);
  EXPECT_FALSE(opened->header.key_phase);
  EXPECT_FALSE(opened->header.spin_bit);
  EXPECT_EQ(to_hex_string(ByteView(wire).first(4)), v::kChaChaHeader);
  EXPECT_EQ(to_hex_string(opened->payload), v::kChaChaPayload);
}

TEST(PacketProtect, SealPacketInPlaceMatchesA2) {
  auto keys = initial_keys();
  Bytes buf = hex(v::kClientInitialHeader);
  const std::size_t header_len = buf.size();
  append(buf, v::client_initial_payload());
  buf.resize(buf.size() + 16 + 100);  // extra room beyond the tag is left alone
  auto n = seal_packet(buf, 18, 2, v::kClientInitialPayloadLength, keys.client);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(*n, 1200u);
  EXPECT_EQ(to_hex_string(ByteView(buf).first(*n)), to_hex_string(hex(v::kClientInitialPacket)));
  EXPECT_EQ(header_len, 22u);
}

// ------------------------------------------------------------------ header round trips (§17)

// Encodes, parses back, and checks the header and the encoding agree.
void expect_header_round_trip(const PacketHeader& h, std::size_t short_dcid_length,
                              std::size_t payload_len = 0) {
  SCOPED_TRACE(packet_type_name(h.type));
  Bytes wire;
  auto pn_offset = encode_header(wire, h);
  ASSERT_TRUE(pn_offset.ok()) << pn_offset.error().message;
  wire.resize(wire.size() + payload_len, 0xaa);
  auto parsed = parse_header(wire, short_dcid_length);
  ASSERT_TRUE(parsed.ok()) << parsed.error().message;
  EXPECT_EQ(parsed->pn_offset, *pn_offset);
  PacketHeader expected = h;
  if (has_packet_number(h.type)) expected.packet_number = 0;  // not read by parse_header
  if (h.type == PacketType::kVersionNegotiation) expected.version = 0;
  PacketHeader got = parsed->header;
  if (h.length_size == 0) got.length_size = 0;  // minimal sizes are recorded
  if (h.token_length_size == 0) got.token_length_size = 0;
  EXPECT_TRUE(got == expected);
  Bytes again;
  ASSERT_TRUE(encode_header(again, parsed->header).ok());
  EXPECT_EQ(to_hex_string(ByteView(again).first(*pn_offset)),
            to_hex_string(ByteView(wire).first(*pn_offset)));
}

TEST(PacketHeaderCodec, InitialWithTokenRoundTrips) {
  PacketHeader h;
  h.type = PacketType::kInitial;
  h.dcid = cid("0102030405060708090a0b0c0d0e0f1011121314");  // 20 bytes, the maximum
  h.scid = cid("aabbccdd");
  h.token = Bytes(70, 0x5c);  // two-byte token length
  h.pn_length = 3;
  h.packet_number = 0x123456;
  h.reserved_bits = 0;
  h.length = 3 + 50;
  expect_header_round_trip(h, 8, 50);
  h.token_length_size = 4;  // non-minimal encodings round-trip too
  h.length_size = 8;
  expect_header_round_trip(h, 8, 50);
}

TEST(PacketHeaderCodec, ZeroRttAndHandshakeRoundTrip) {
  for (PacketType t : {PacketType::kZeroRtt, PacketType::kHandshake}) {
    PacketHeader h;
    h.type = t;
    h.version = kVersionDraft29;
    h.dcid = cid("1122334455667788");
    h.scid = cid("");
    h.pn_length = 1;
    h.packet_number = 7;
    h.length = 30;
    expect_header_round_trip(h, 8, 29);
  }
}

TEST(PacketHeaderCodec, ShortHeaderBitsRoundTrip) {
  for (int bits = 0; bits < 16; ++bits) {
    PacketHeader h;
    h.type = PacketType::kOneRtt;
    h.dcid = cid("c0ffee0123456789");
    h.spin_bit = bits & 1;
    h.key_phase = bits & 2;
    h.pn_length = static_cast<std::uint8_t>(1 + (bits >> 2));
    h.packet_number = 0x01020304;
    expect_header_round_trip(h, 8, 20);
    EXPECT_EQ(first_byte(h) & 0xc0, 0x40);  // short form, fixed bit set
  }
}

TEST(PacketHeaderCodec, VersionNegotiationRoundTrips) {
  PacketHeader h;
  h.type = PacketType::kVersionNegotiation;
  h.dcid = cid("0011223344556677");
  h.scid = cid("8899aabbccddeeff");
  h.supported_versions = {kVersion1, kVersionDraft29, 0x1a2a3a4a};
  h.unused_bits = 0x55;
  expect_header_round_trip(h, 8);
  Bytes wire;
  ASSERT_TRUE(encode_header(wire, h).ok());
  EXPECT_EQ(to_hex_string(wire),
            "d5000000000800112233445566770888"
            "99aabbccddeeff00000001ff00001d1a2a3a4a");
  // The fixed bit is an unused bit in VN: 0 is accepted.
  h.unused_bits = 0x00;
  expect_header_round_trip(h, 8);
  h.supported_versions.clear();
  expect_header_round_trip(h, 8);
}

TEST(PacketHeaderCodec, RetryRoundTrips) {
  PacketHeader h;
  h.type = PacketType::kRetry;
  h.dcid = cid("0102");
  h.scid = cid("0304050607080910");
  h.token = hex("deadbeef");
  h.unused_bits = 0x0a;
  for (std::size_t i = 0; i < 16; ++i) h.retry_integrity_tag[i] = static_cast<std::uint8_t>(i);
  expect_header_round_trip(h, 8);
}

TEST(PacketHeaderCodec, EncoderAlwaysSetsFixedBit) {
  for (PacketType t : {PacketType::kInitial, PacketType::kZeroRtt, PacketType::kHandshake,
                       PacketType::kRetry, PacketType::kOneRtt}) {
    PacketHeader h;
    h.type = t;
    h.unused_bits = 0;
    h.reserved_bits = 0;
    EXPECT_EQ(first_byte(h) & 0x40, 0x40) << packet_type_name(t);
  }
}

TEST(PacketHeaderCodec, EncodeRejectsOutOfRangeFields) {
  Bytes out;
  PacketHeader h;
  h.type = PacketType::kHandshake;
  h.pn_length = 0;
  EXPECT_FALSE(encode_header(out, h).ok());
  h.pn_length = 5;
  EXPECT_FALSE(encode_header(out, h).ok());
  h.pn_length = 1;
  h.token = {1};
  EXPECT_FALSE(encode_header(out, h).ok());  // only Initial and Retry carry tokens
  h.token.clear();
  h.length = 300;
  h.length_size = 1;
  EXPECT_FALSE(encode_header(out, h).ok());  // 300 needs two bytes
  h.length_size = 3;
  EXPECT_FALSE(encode_header(out, h).ok());
  h.length_size = 0;
  h.version = 0;
  EXPECT_FALSE(encode_header(out, h).ok());
  h.version = kVersion1;
  h.reserved_bits = 4;
  EXPECT_FALSE(encode_header(out, h).ok());
  EXPECT_TRUE(out.empty());  // nothing appended on error
  EXPECT_FALSE(ConnectionId::from(Bytes(21, 0)).ok());
}

TEST(PacketHeaderCodec, InvariantsOfUnknownVersion) {
  // A long header of an unknown version: parse_header refuses it, parse_invariants reads it
  // (RFC 8999), including a CID longer than v1's 20-byte limit.
  Bytes wire =
      hex("c0"
          "1a2a3a4a"
          "15");
  wire.resize(wire.size() + 21, 0x77);
  append(wire, hex("02abcd"
                   "00000000"));
  EXPECT_FALSE(parse_header(wire, 8).ok());
  auto inv = parse_invariants(wire);
  ASSERT_TRUE(inv.ok()) << inv.error().message;
  EXPECT_EQ(inv->version, 0x1a2a3a4au);
  EXPECT_EQ(inv->dcid.size(), 21u);
  EXPECT_EQ(to_hex_string(inv->scid), "abcd");
  EXPECT_FALSE(parse_invariants(hex("40")).ok());
  EXPECT_FALSE(parse_invariants(hex("c000000001ff")).ok());
}

// ------------------------------------------------------------- protection round trips

TEST(PacketProtect, EveryProtectedTypeAndAeadRoundTrips) {
  for (AeadAlgorithm alg :
       {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    for (PacketType t : {PacketType::kInitial, PacketType::kZeroRtt, PacketType::kHandshake,
                         PacketType::kOneRtt}) {
      for (std::uint8_t pn_len = 1; pn_len <= 4; ++pn_len) {
        SCOPED_TRACE(std::string(crypto::aead_name(alg)) + " " + packet_type_name(t) + " pn " +
                     std::to_string(pn_len));
        auto keys = keys_for(alg, 0x33);
        PacketHeader h;
        h.type = t;
        h.dcid = cid("0807060504030201");
        h.scid = cid("0a0b");
        if (t == PacketType::kInitial) h.token = hex("0102030405");
        h.key_phase = t == PacketType::kOneRtt && pn_len % 2 == 0;
        h.spin_bit = t == PacketType::kOneRtt && pn_len > 2;
        h.pn_length = pn_len;
        const std::uint64_t largest = 0x10000000;
        h.packet_number = largest + 1;
        const Bytes payload(static_cast<std::size_t>(4 - pn_len + 1), 0x01);  // minimal-ish
        auto packet = protect_packet(h, payload, keys);
        ASSERT_TRUE(packet.ok()) << packet.error().message;
        auto opened = unprotect_packet(*packet, 8, largest, keys);
        ASSERT_TRUE(opened.ok()) << opened.error().message;
        EXPECT_EQ(opened->header.packet_number, h.packet_number);
        EXPECT_EQ(opened->header.key_phase, h.key_phase);
        EXPECT_EQ(opened->header.spin_bit, h.spin_bit);
        EXPECT_EQ(opened->header.pn_length, pn_len);
        EXPECT_EQ(opened->header.token, h.token);
        EXPECT_EQ(Bytes(opened->payload.begin(), opened->payload.end()), payload);
      }
    }
  }
}

TEST(PacketProtect, RejectsPayloadTooShortToSample) {
  auto keys = keys_for(AeadAlgorithm::kAes128Gcm, 1);
  PacketHeader h;
  h.type = PacketType::kOneRtt;
  h.dcid = cid("0102030405060708");
  h.pn_length = 1;
  EXPECT_FALSE(protect_packet(h, hex("0000"), keys).ok());   // 1 + 2 < 4
  EXPECT_TRUE(protect_packet(h, hex("000000"), keys).ok());  // 1 + 3 = 4
  h.pn_length = 4;
  EXPECT_TRUE(protect_packet(h, {}, keys).ok());
  h.type = PacketType::kRetry;
  EXPECT_FALSE(protect_packet(h, hex("00000000"), keys).ok());
}

TEST(PacketProtect, NonZeroReservedBitsAreReportedAfterDecryption) {
  auto keys = keys_for(AeadAlgorithm::kAes128Gcm, 2);
  PacketHeader h;
  h.type = PacketType::kHandshake;
  h.dcid = cid("01");
  h.reserved_bits = 2;
  h.pn_length = 2;
  h.packet_number = 9;
  auto packet = protect_packet(h, hex("0100000000"), keys);
  ASSERT_TRUE(packet.ok());
  auto opened = unprotect_packet(*packet, 8, 8, keys);
  ASSERT_TRUE(opened.ok());
  EXPECT_EQ(opened->header.reserved_bits, 2u);  // the engine closes with PROTOCOL_VIOLATION
}

TEST(PacketProtect, TamperedOrWrongKeyFails) {
  auto keys = initial_keys();
  Bytes wire = hex(v::kClientInitialPacket);
  wire[600] ^= 0x01;
  EXPECT_FALSE(unprotect_packet(wire, 8, std::nullopt, keys.client).ok());
  Bytes wire2 = hex(v::kClientInitialPacket);
  EXPECT_FALSE(unprotect_packet(wire2, 8, std::nullopt, keys.server).ok());
  Bytes vn = hex("80000000000000");
  EXPECT_FALSE(unprotect_packet(vn, 8, std::nullopt, keys.client).ok());
  Bytes retry = hex(v::kRetryPacket);
  EXPECT_FALSE(unprotect_packet(retry, 8, std::nullopt, keys.client).ok());
}

// RFC 9001 §6.3: the receiver removes header protection with the current keys (the HP key does
// not change), reads the key phase bit, and only then picks the AEAD generation.
TEST(PacketProtect, KeyPhaseSelectsGenerationAfterHeaderProtectionRemoval) {
  auto sender0 = chacha_keys();
  auto sender1 = sender0.next_generation();
  ASSERT_TRUE(sender1.ok());
  auto receiver0 = chacha_keys();
  auto receiver1 = receiver0.next_generation();
  ASSERT_TRUE(receiver1.ok());

  PacketHeader h;
  h.type = PacketType::kOneRtt;
  h.dcid = cid("0102030405060708");
  h.key_phase = true;  // phase 1 = generation 1
  h.pn_length = 2;
  h.packet_number = 100;
  Bytes wire = *protect_packet(h, hex("0100000000"), *sender1);

  auto parsed = parse_header(wire, 8);
  ASSERT_TRUE(parsed.ok());
  auto opened = remove_header_protection(wire, *parsed, 99, receiver0.header_protection());
  ASSERT_TRUE(opened.ok()) << opened.error().message;
  EXPECT_TRUE(opened->header.key_phase);
  EXPECT_EQ(opened->header.packet_number, 100u);
  EXPECT_EQ(opened->payload.size(), 5u + 16u);  // still ciphertext || tag
  crypto::Aead& aead = opened->header.key_phase ? receiver1->aead() : receiver0.aead();
  ASSERT_TRUE(decrypt_payload(wire, *opened, aead).ok());
  EXPECT_EQ(to_hex_string(opened->payload), "0100000000");

  // A payload span that does not belong to the buffer is refused.
  Bytes other(64, 0);
  OpenedPacket bogus;
  bogus.header_length = 4;
  bogus.payload = std::span<std::uint8_t>(other).subspan(10, 20);
  EXPECT_FALSE(decrypt_payload(wire, bogus, receiver0.aead()).ok());
}

// ------------------------------------------------------------- coalesced datagrams (§12.2)

TEST(Coalesced, InitialHandshakeAndShortHeaderSplitAndOpen) {
  auto keys = initial_keys();
  auto hs_keys = keys_for(AeadAlgorithm::kAes128Gcm, 0x44);
  auto app_keys = keys_for(AeadAlgorithm::kChaCha20Poly1305, 0x55);
  PacketHeader a = a2_header();
  a.dcid = cid("8394c8f03e515708");
  Bytes datagram = *protect_packet(a, Bytes(100, 0), keys.client);
  const std::size_t first_len = datagram.size();
  PacketHeader b;
  b.type = PacketType::kHandshake;
  b.dcid = a.dcid;
  b.pn_length = 1;
  b.packet_number = 0;
  append(datagram, *protect_packet(b, Bytes(40, 1), hs_keys));
  const std::size_t second_len = datagram.size() - first_len;
  PacketHeader c;
  c.type = PacketType::kOneRtt;
  c.dcid = a.dcid;
  c.pn_length = 2;
  c.packet_number = 3;
  append(datagram, *protect_packet(c, Bytes(10, 2), app_keys));

  Datagram d = split_datagram(datagram, 8);
  EXPECT_TRUE(d.error.empty()) << d.error;
  ASSERT_EQ(d.packets.size(), 3u);
  EXPECT_EQ(d.packets[0].header.type, PacketType::kInitial);
  EXPECT_EQ(d.packets[0].offset, 0u);
  EXPECT_EQ(d.packets[0].packet_length, first_len);
  EXPECT_EQ(d.packets[1].header.type, PacketType::kHandshake);
  EXPECT_EQ(d.packets[1].offset, first_len);
  EXPECT_EQ(d.packets[1].packet_length, second_len);
  EXPECT_EQ(d.packets[2].header.type, PacketType::kOneRtt);
  EXPECT_EQ(d.packets[2].offset, first_len + second_len);

  std::span<std::uint8_t> all(datagram);
  auto o1 =
      unprotect_parsed(all.subspan(d.packets[0].offset), d.packets[0], std::nullopt, keys.client);
  auto o2 = unprotect_parsed(all.subspan(d.packets[1].offset), d.packets[1], std::nullopt, hs_keys);
  auto o3 = unprotect_parsed(all.subspan(d.packets[2].offset), d.packets[2], 2, app_keys);
  ASSERT_TRUE(o1.ok() && o2.ok() && o3.ok());
  EXPECT_EQ(o1->payload.size(), 100u);
  EXPECT_EQ(o2->payload.size(), 40u);
  EXPECT_EQ(o3->header.packet_number, 3u);
}

TEST(Coalesced, StopsAtBadTrailerOrDifferentDcid) {
  auto keys = initial_keys();
  Bytes one = *protect_packet(a2_header(), Bytes(100, 0), keys.client);
  Bytes junk = one;
  append(junk, hex("000000"));  // trailing zeros: a short header with the fixed bit cleared
  Datagram d = split_datagram(junk, 8);
  EXPECT_EQ(d.packets.size(), 1u);
  EXPECT_NE(d.error.find("fixed bit"), std::string::npos) << d.error;

  PacketHeader other = a2_header();
  other.dcid = cid("0000000000000000");
  Bytes mixed = one;
  append(mixed, *protect_packet(other, Bytes(100, 0), keys.client));
  d = split_datagram(mixed, 8);
  EXPECT_EQ(d.packets.size(), 1u);
  EXPECT_NE(d.error.find("DCID"), std::string::npos) << d.error;

  EXPECT_TRUE(split_datagram({}, 8).packets.empty());
  EXPECT_FALSE(split_datagram({}, 8).error.empty());
}

// ---------------------------------------------------------------- malformed headers

struct Malformed {
  const char* name;
  std::string hex;
  std::size_t short_dcid_length = 8;
};

TEST(PacketHeaderCodec, MalformedHeadersGiveErrors) {
  const std::vector<Malformed> cases = {
      {"empty", ""},
      {"long header, truncated version", "c00000"},
      {"long header, no DCID length", "c000000001"},
      {"DCID length 21", "c00000000115" + std::string(42, '1') + "00"},
      {"SCID length 21", "c0000000010015" + std::string(42, '1')},
      {"DCID length 255", "c000000001ff" + std::string(60, '1')},
      {"truncated DCID", "c00000000108010203"},
      {"no SCID length", "c0000000010401020304"},
      {"truncated SCID", "c000000001000801"},
      {"Initial without token length", "c0000000010000"},
      {"Initial token length > datagram", "c000000001000005010203"},
      {"Initial truncated token-length varint", "c00000000100004f"},
      {"Initial without Length", "c000000001000000"},
      {"Initial Length > datagram", "c00000000100000041000102"},
      {"Handshake Length 0",
       "e000000001000000"
       "00"},
      {"Handshake truncated Length varint",
       "e0000000010000"
       "80ff"},
      {"long header fixed bit 0", "80000000010000000401020304"},
      {"Initial fixed bit 0",
       "8000000001000000"
       "0401020304"},
      {"short header fixed bit 0", "00" + std::string(40, '1')},
      {"short header truncated DCID", "400102030405"},
      {"short header without packet number", "400102030405060708"},
      {"short header DCID length 21", "40" + std::string(80, '1'), 21},
      {"unsupported version", "c0abcdef00000000"},
      {"VN version list not a multiple of 4", "80000000000000000001"},
      {"Retry shorter than its tag", "f0000000010000" + std::string(30, 'a')},
      {"single long-header byte", "ff"},
  };
  ASSERT_GE(cases.size(), 15u);
  for (const auto& c : cases) {
    const Bytes wire = hex(c.hex);
    auto r = parse_header(wire, c.short_dcid_length);
    EXPECT_FALSE(r.ok()) << c.name;
    if (!r.ok()) {
      EXPECT_FALSE(r.error().message.empty()) << c.name;
    }
    // The protected path rejects them too, without touching anything out of bounds.
    Bytes copy = wire;
    auto keys = initial_keys();
    EXPECT_FALSE(unprotect_packet(copy, c.short_dcid_length, std::nullopt, keys.client).ok())
        << c.name;
    // And a datagram made of it yields no packets.
    EXPECT_TRUE(split_datagram(wire, c.short_dcid_length).packets.empty()) << c.name;
  }
}

TEST(PacketHeaderCodec, ParsedButTooShortToUnprotect) {
  auto keys = initial_keys();
  // A well-formed Handshake header whose Length (5) is too short for the 20-byte sample window.
  Bytes wire =
      hex("e0000000010000"
          "05"
          "0102030405");
  ASSERT_TRUE(parse_header(wire, 8).ok());
  EXPECT_FALSE(unprotect_packet(wire, 8, std::nullopt, keys.client).ok());
  // A short header with 3 bytes after the DCID.
  Bytes short_wire = hex("400102030405060708aabbcc");
  ASSERT_TRUE(parse_header(short_wire, 8).ok());
  EXPECT_FALSE(unprotect_packet(short_wire, 8, std::nullopt, keys.client).ok());
}

}  // namespace
}  // namespace iroh::quic

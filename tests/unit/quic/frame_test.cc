// QUIC frame codec: byte-exact encodings, round trips and malformed input (impl/quic/frame.h).
#include "quic/frame.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "quic/varint.h"
#include "test_bytes.h"

namespace iroh::quic {
namespace {

using iroh::testing::cat;
using iroh::testing::hex;

using namespace frame;  // NOLINT

Bytes encoded(const Frame& f) {
  Bytes out;
  encode_frame(out, f);
  return out;
}

const Bytes kText = {'h', 'i'};
const Bytes kCid8 = hex("0102030405060708");
ByteArray<16> token16(std::uint8_t b) {
  ByteArray<16> t{};
  t.fill(b);
  return t;
}
const ByteArray<8> kChallenge = {0, 1, 2, 3, 4, 5, 6, 7};
const Bytes kReasonBad = {'b', 'a', 'd'};
const Bytes kReasonFinished = {'f', 'i', 'n', 'i', 's', 'h', 'e', 'd'};

// Decodes exactly one frame from `bytes` and checks it consumed everything.
Frame decode_one(const Bytes& bytes) {
  Reader r(bytes);
  auto f = decode_frame(r);
  EXPECT_TRUE(f.ok()) << (f.ok() ? "" : f.error().message);
  if (!f.ok()) return Padding{};
  EXPECT_TRUE(r.empty()) << "left " << r.remaining() << " bytes";
  return *f;
}

struct Exact {
  const char* name;
  Frame frame;
  const char* hex;
};

// Byte-exact encodings, written by hand from RFC 9000 §19, RFC 9221, the ack-frequency and
// multipath drafts and spec §4.6/§4.7/§5.1.
std::vector<Exact> exact_cases() {
  Ack ack{10, 5, 2, {{1, 3}}, std::nullopt};
  Ack ack_ecn{10, 5, 2, {}, EcnCounts{1, 2, 3}};
  return {
      {"padding", Padding{3}, "000000"},
      {"ping", Ping{}, "01"},
      {"ack", ack, "02 0a 05 01 02 01 03"},
      {"ack_ecn", ack_ecn, "03 0a 05 00 02 01 02 03"},
      {"reset_stream", ResetStream{4, 0xff, 16}, "04 04 40ff 10"},
      {"stop_sending", StopSending{4, 7}, "05 04 07"},
      {"crypto", Crypto{0, as_bytes("abc")}, "06 00 03 616263"},
      {"new_token", NewToken{as_bytes("\xaa\xbb")}, "07 02 aabb"},
      {"stream_off_len_fin", Stream{4, 0x100, kText, true, true}, "0f 04 4100 02 6869"},
      {"stream_len", Stream{4, 0, kText, false, true}, "0a 04 02 6869"},
      {"stream_bare", Stream{4, 0, kText, false, false}, "08 04 6869"},
      {"stream_off_fin_nolen", Stream{1, 5, kText, true, false}, "0d 01 05 6869"},
      {"max_data", MaxData{1024}, "10 4400"},
      {"max_stream_data", MaxStreamData{0, 63}, "11 00 3f"},
      {"max_streams_bidi", MaxStreams{true, 100}, "12 4064"},
      {"max_streams_uni", MaxStreams{false, 1}, "13 01"},
      {"data_blocked", DataBlocked{5}, "14 05"},
      {"stream_data_blocked", StreamDataBlocked{2, 5}, "15 02 05"},
      {"streams_blocked_bidi", StreamsBlocked{true, 1}, "16 01"},
      {"streams_blocked_uni", StreamsBlocked{false, 2}, "17 02"},
      {"new_connection_id", NewConnectionId{std::nullopt, 1, 0, kCid8, token16(0xaa)},
       "18 01 00 08 0102030405060708 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
      {"retire_connection_id", RetireConnectionId{std::nullopt, 2}, "19 02"},
      {"path_challenge", PathChallenge{kChallenge}, "1a 0001020304050607"},
      {"path_response", PathResponse{kChallenge}, "1b 0001020304050607"},
      {"connection_close", ConnectionClose{false, 0x0a, 0x08, kReasonBad}, "1c 0a 08 03 626164"},
      // QAD client close: application code 1, reason "finished" (spec §6.9).
      {"connection_close_app", ConnectionClose{true, 1, 0, kReasonFinished},
       "1d 01 08 66696e6973686564"},
      {"handshake_done", HandshakeDone{}, "1e"},
      {"immediate_ack", ImmediateAck{}, "1f"},
      {"datagram", Datagram{kText, false}, "30 6869"},
      {"datagram_len", Datagram{kText, true}, "31 02 6869"},
      {"ack_frequency", AckFrequency{0, 1, 25000, 1}, "40af 00 01 800061a8 01"},
      {"path_ack", PathAck{1, Ack{10, 5, 2, {}, std::nullopt}}, "3e 01 0a 05 00 02"},
      {"path_ack_ecn", PathAck{1, ack_ecn}, "3f 01 0a 05 00 02 01 02 03"},
      {"path_abandon", PathAbandon{1, 0}, "7e75 01 00"},
      {"path_status_backup", PathStatus{false, 2, 5}, "7e76 02 05"},
      {"path_status_available", PathStatus{true, 2, 6}, "7e77 02 06"},
      {"path_new_connection_id", NewConnectionId{3, 1, 0, kCid8, token16(0xbb)},
       "7e78 03 01 00 08 0102030405060708 bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"},
      {"path_retire_connection_id", RetireConnectionId{3, 1}, "7e79 03 01"},
      {"max_path_id", MaxPathId{7}, "7e7a 07"},
      {"paths_blocked", PathsBlocked{7}, "7e7b 07"},
      {"path_cids_blocked", PathCidsBlocked{1, 5}, "7e7c 01 05"},
      // spec §5.1: ADD_ADDRESS v4 seq 0 127.0.0.1:1234.
      {"add_address_v4", AddAddress{0, SocketAddr::v4({127, 0, 0, 1}, 1234)},
       "803d7f90 00 7f000001 04d2"},
      {"add_address_v6",
       AddAddress{1, SocketAddr::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 443)},
       "803d7f91 01 00000000000000000000000000000001 01bb"},
      {"reach_out_v4", ReachOut{1, SocketAddr::v4({192, 168, 1, 2}, 5000)},
       "803d7f92 01 c0a80102 1388"},
      {"reach_out_v6",
       ReachOut{2, SocketAddr::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9}, 1)},
       "803d7f93 02 20010db8000000000000000000000009 0001"},
      {"remove_address", RemoveAddress{3}, "803d7f94 03"},
      {"observed_address_v4", ObservedAddress{0, SocketAddr::v4({1, 2, 3, 4}, 7842)},
       "809f81a6 00 01020304 1ea2"},
      {"observed_address_v6",
       ObservedAddress{
           64, SocketAddr::v6({0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 65535)},
       "809f81a7 4040 fe800000000000000000000000000001 ffff"},
  };
}

TEST(QuicFrame, ByteExactEncodings) {
  for (const auto& c : exact_cases()) {
    SCOPED_TRACE(c.name);
    EXPECT_EQ(encoded(c.frame), hex(c.hex));
    const Bytes bytes = hex(c.hex);
    const Frame back = decode_one(bytes);
    EXPECT_TRUE(back == c.frame);
    EXPECT_EQ(frame_type_of(back), frame_type_of(c.frame));
  }
}

TEST(QuicFrame, SpecAddAddressExample) {
  // spec §5.1: the frame type varint takes 4 bytes.
  EXPECT_EQ(encoded(AddAddress{0, SocketAddr::v4({127, 0, 0, 1}, 1234)}),
            (Bytes{0x80, 0x3d, 0x7f, 0x90, 0x00, 0x7f, 0x00, 0x00, 0x01, 0x04, 0xd2}));
  EXPECT_EQ(frame_name(AddAddress{}), "ADD_ADDRESS_V4");
}

TEST(QuicFrame, PaddingRunsCoalesce) {
  const Bytes payload = hex("000000 01 0000");
  auto frames = decode_frames(payload);
  ASSERT_TRUE(frames.ok()) << frames.error().message;
  ASSERT_EQ(frames->size(), 3u);
  EXPECT_TRUE((*frames)[0] == Frame{Padding{3}});
  EXPECT_TRUE((*frames)[1] == Frame{Ping{}});
  EXPECT_TRUE((*frames)[2] == Frame{Padding{2}});
}

TEST(QuicFrame, StreamDataIsZeroCopy) {
  const Bytes payload = hex("0e 04 40ff 03 616263 08 05 7879");
  auto frames = decode_frames(payload);
  ASSERT_TRUE(frames.ok()) << frames.error().message;
  ASSERT_EQ(frames->size(), 2u);
  const auto& s = std::get<Stream>((*frames)[0]);
  EXPECT_EQ(s.stream_id, 4u);
  EXPECT_EQ(s.offset, 0xffu);
  EXPECT_FALSE(s.fin);
  EXPECT_EQ(s.data.data(), payload.data() + 5);
  EXPECT_EQ(s.data.size(), 3u);
  const auto& last = std::get<Stream>((*frames)[1]);
  EXPECT_FALSE(last.has_length);
  EXPECT_EQ(last.data.data(), payload.data() + 10);
  EXPECT_EQ(last.data.size(), 2u);
}

TEST(QuicFrame, StreamOffsetZeroWithOffBitDecodes) {
  const Bytes bytes = hex("0e 00 00 01 61");  // OFF bit set, offset 0: allowed
  const Frame f = decode_one(bytes);
  EXPECT_EQ(std::get<Stream>(f).offset, 0u);
  EXPECT_EQ(encoded(f), hex("0a 00 01 61"));  // re-encoded without the OFF bit
}

TEST(QuicFrame, StreamAtMaxOffset) {
  // offset + length == 2^62 - 1 is the largest legal end.
  const Bytes bytes = hex("0e 00 fffffffffffffffe 01 61");
  const Frame f = decode_one(bytes);
  EXPECT_EQ(std::get<Stream>(f).offset, kMaxStreamOffset - 1);
  const Bytes empty_at_max = hex("0c 00 ffffffffffffffff");
  EXPECT_EQ(std::get<Stream>(decode_one(empty_at_max)).offset, kMaxStreamOffset);
}

TEST(QuicFrame, NonMinimalFieldVarintsAccepted) {
  const Bytes bytes = hex("10 c000000000000005");  // MAX_DATA 5 in 8 bytes
  EXPECT_TRUE(decode_one(bytes) == Frame{MaxData{5}});
}

TEST(QuicFrame, AckIntervals) {
  const Ack ack{10, 5, 2, {{1, 3}, {0, 0}}, std::nullopt};
  const auto iv = ack_intervals(ack);
  ASSERT_EQ(iv.size(), 3u);
  EXPECT_EQ(iv[0], (PacketInterval{8, 10}));
  EXPECT_EQ(iv[1], (PacketInterval{2, 5}));
  EXPECT_EQ(iv[2], (PacketInterval{0, 0}));
  EXPECT_TRUE(make_ack(iv, 5) == ack);
  // The deepest legal range ends exactly at packet 0.
  const Bytes bytes = hex("02 0a 05 02 02 01 03 00 00");
  EXPECT_TRUE(decode_one(bytes) == Frame{ack});
}

// ---- round trips over boundary varint values ----

const std::uint64_t kBoundaries[] = {0,
                                     1,
                                     63,
                                     64,
                                     16383,
                                     16384,
                                     (std::uint64_t{1} << 30) - 1,
                                     std::uint64_t{1} << 30,
                                     0xffffffff,
                                     std::uint64_t{1} << 60,
                                     kVarintMax};

std::vector<Frame> frames_with(std::uint64_t v, const Bytes& data, const Bytes& cid) {
  const std::uint64_t path = std::min<std::uint64_t>(v, frame::kMaxPathId);
  const std::uint64_t streams = std::min<std::uint64_t>(v, kMaxStreamCount);
  const std::uint64_t off = std::min<std::uint64_t>(v, kMaxStreamOffset - data.size());
  const auto port = static_cast<std::uint16_t>(v);
  const Ack full{v, v, v, {}, std::nullopt};  // acknowledges 0..v
  Ack ack = make_ack({{v, v}}, v);
  if (v >= 4) ack = make_ack({{v - 1, v}, {0, v - 4}}, v, EcnCounts{v, v, v});
  const auto v4 = SocketAddr::v4({1, 2, 3, static_cast<std::uint8_t>(v)}, port);
  const auto v6 = SocketAddr::v6({0xfd, static_cast<std::uint8_t>(v >> 8)}, port);
  return {
      Padding{1 + static_cast<std::size_t>(v % 7)},
      Ping{},
      ack,
      full,
      ResetStream{v, v, v},
      StopSending{v, v},
      Crypto{off, data},
      NewToken{data},
      Stream{v, off, data, (v & 1) != 0, true},
      MaxData{v},
      MaxStreamData{v, v},
      MaxStreams{true, streams},
      MaxStreams{false, streams},
      DataBlocked{v},
      StreamDataBlocked{v, v},
      StreamsBlocked{true, streams},
      StreamsBlocked{false, streams},
      NewConnectionId{std::nullopt, v, v, cid, token16(static_cast<std::uint8_t>(v))},
      NewConnectionId{path, v, v / 2, cid, token16(1)},
      RetireConnectionId{std::nullopt, v},
      RetireConnectionId{path, v},
      PathChallenge{kChallenge},
      PathResponse{kChallenge},
      ConnectionClose{false, v, v, data},
      ConnectionClose{true, v, 0, data},
      HandshakeDone{},
      Datagram{data, true},
      AckFrequency{v, v, v, v},
      ImmediateAck{},
      PathAck{path, ack},
      PathAbandon{path, v},
      PathStatus{true, path, v},
      PathStatus{false, path, v},
      MaxPathId{path},
      PathsBlocked{path},
      PathCidsBlocked{path, v},
      AddAddress{v, v4},
      AddAddress{v, v6},
      ReachOut{v, v4},
      ReachOut{v, v6},
      RemoveAddress{v},
      ObservedAddress{v, v4},
      ObservedAddress{v, v6},
      // Must be last: no length, runs to the end of the packet.
      (v & 1) ? Frame{Datagram{data, false}} : Frame{Stream{v, off, data, true, false}},
  };
}

TEST(QuicFrame, RoundTripEveryFrameAtVarintBoundaries) {
  const Bytes data(300, 0x5a);
  const Bytes cid20(20, 0xc1);
  for (std::uint64_t v : kBoundaries) {
    SCOPED_TRACE(v);
    const auto frames = frames_with(v, data, v & 1 ? cid20 : kCid8);
    Bytes payload;
    for (const auto& f : frames) encode_frame(payload, f);
    auto back = decode_frames(payload);
    ASSERT_TRUE(back.ok()) << back.error().message;
    ASSERT_EQ(back->size(), frames.size());
    for (std::size_t i = 0; i < frames.size(); ++i) {
      EXPECT_TRUE((*back)[i] == frames[i]) << "frame " << i << " " << frame_name(frames[i]);
    }
  }
}

TEST(QuicFrame, RoundTripEmptyPayloads) {
  const Bytes none;
  for (const Frame& f : {Frame{Stream{0, 0, none, true, true}}, Frame{Datagram{none, true}},
                         Frame{Crypto{7, none}}, Frame{ConnectionClose{true, 0, 0, none}}}) {
    const Bytes bytes = encoded(f);
    EXPECT_TRUE(decode_one(bytes) == f) << frame_name(f);
  }
}

// ---- malformed frames ----

struct Bad {
  const char* name;
  const char* hex;
  TransportError code;
  std::optional<PacketKind> kind = std::nullopt;
};

constexpr auto kFee = TransportError::kFrameEncodingError;
constexpr auto kPv = TransportError::kProtocolViolation;

TEST(QuicFrame, MalformedFramesRejectedWithCode) {
  const std::vector<Bad> cases = {
      {"empty payload", "", kPv},
      {"unknown type 0x21", "21", kFee},
      {"unknown type 0x3e7d", "7e7d 00", kFee},
      {"unknown type 0x3d7f95", "803d7f95 00", kFee},
      {"non-minimal frame type", "4001", kPv},
      {"non-minimal PING in 4 bytes", "80000001", kPv},
      {"truncated frame type", "40", kFee},
      {"ack first range > largest", "02 05 00 00 06", kFee},
      {"ack gap underflow", "02 05 00 01 00 04 00", kFee},
      {"ack range length underflow", "02 05 00 01 00 00 04", kFee},
      {"ack range count too large", "02 05 00 3f 00", kFee},
      {"ack_ecn truncated counts", "03 05 00 00 00 01 02", kFee},
      {"ack truncated", "02 05", kFee},
      {"path_ack path id > 2^32-1", "3e c000000100000000 05 00 00 00", kFee},
      {"path_ack_ecn first range > largest", "3f 00 01 00 00 02 00 00 00", kFee},
      {"stream offset+len > 2^62-1", "0e 00 ffffffffffffffff 01 61", kFee},
      {"stream no-len offset+len > 2^62-1", "0c 00 ffffffffffffffff 61", kFee},
      {"stream length exceeds payload", "0a 00 05 61", kFee},
      {"stream missing stream id", "08", kFee},
      {"crypto offset+len > 2^62-1", "06 fffffffffffffffe 02 6162", kFee},
      {"crypto truncated data", "06 00 05 61", kFee},
      {"new_token empty", "07 00", kFee},
      {"new_token truncated", "07 04 6162", kFee},
      {"new_connection_id length 0", "18 01 00 00 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", kFee},
      {"new_connection_id length 21",
       "18 01 00 15 000102030405060708090a0b0c0d0e0f1011121314 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       kFee},
      {"new_connection_id retire_prior_to > seq",
       "18 01 02 08 0102030405060708 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", kFee},
      {"new_connection_id truncated token", "18 01 00 08 0102030405060708 aaaa", kFee},
      {"path_new_connection_id length 0", "7e78 01 01 00 00 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
       kFee},
      {"path_new_connection_id path id > 2^32-1",
       "7e78 c000000100000000 01 00 08 0102030405060708 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", kFee},
      {"max_streams bidi > 2^60", "12 d000000000000001", kFee},
      {"max_streams uni > 2^60", "13 d000000000000001", kFee},
      {"streams_blocked uni > 2^60", "17 d000000000000001", kFee},
      {"streams_blocked bidi > 2^60", "16 ffffffffffffffff", kFee},
      {"connection_close reason beyond payload", "1c 0a 00 05 61", kFee},
      {"connection_close_app huge reason length", "1d 00 bfffffff", kFee},
      {"connection_close missing frame type", "1c 0a", kFee},
      {"path_challenge truncated", "1a 00010203040506", kFee},
      {"path_response truncated", "1b 00", kFee},
      {"datagram length beyond payload", "31 05 61", kFee},
      {"add_address v4 truncated port", "803d7f90 00 7f000001 04", kFee},
      {"add_address v6 truncated ip", "803d7f91 00 00000000000000000000", kFee},
      {"reach_out missing round", "803d7f92", kFee},
      {"remove_address missing seq", "803d7f94", kFee},
      {"observed_address v4 truncated", "809f81a6 00 0102", kFee},
      {"max_path_id > 2^32-1", "7e7a c000000100000000", kFee},
      {"paths_blocked truncated", "7e7b", kFee},
      {"path_abandon missing error code", "7e75 01", kFee},
      {"path_status missing seq", "7e77 01", kFee},
      {"path_cids_blocked path id > 2^32-1", "7e7c c000000100000000 00", kFee},
      {"ack_frequency truncated", "40af 00 01 02", kFee},
      {"reset_stream truncated", "04 00 00", kFee},
      {"valid frame then garbage", "01 21", kFee},
      // Packet-type rules (RFC 9000 Table 3, extensions 1-RTT only).
      {"handshake_done in Handshake", "1e", kPv, PacketKind::kHandshake},
      {"ack in 0-RTT", "02 00 00 00 00", kPv, PacketKind::kZeroRtt},
      {"crypto in 0-RTT", "06 00 00", kPv, PacketKind::kZeroRtt},
      {"stream in Initial", "08 00", kPv, PacketKind::kInitial},
      {"application close in Initial", "1d 00 00", kPv, PacketKind::kInitial},
      {"add_address in 0-RTT", "803d7f90 00 7f000001 04d2", kPv, PacketKind::kZeroRtt},
      {"path_ack in Handshake", "3e 00 00 00 00 00", kPv, PacketKind::kHandshake},
      {"new_token in 0-RTT", "07 01 00", kPv, PacketKind::kZeroRtt},
      {"path_response in 0-RTT", "1b 0001020304050607", kPv, PacketKind::kZeroRtt},
      {"datagram in Handshake", "31 00", kPv, PacketKind::kHandshake},
  };
  ASSERT_GE(cases.size(), 30u);
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    const Bytes bytes = hex(c.hex);
    auto r = decode_frames(bytes, c.kind);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, c.code) << r.error().message;
    EXPECT_FALSE(r.error().message.empty());
  }
}

TEST(QuicFrame, ErrorCarriesFrameType) {
  const Bytes bytes = hex("18 01 02 08 0102030405060708 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
  Reader r(bytes);
  auto f = decode_frame(r);
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.error().frame_type, frame_type::kNewConnectionId);
  EXPECT_NE(f.error().message.find("NEW_CONNECTION_ID"), std::string::npos);
  auto as_result = to_result(decode_frames(bytes));
  ASSERT_FALSE(as_result.ok());
  EXPECT_EQ(as_result.error().message.rfind("FRAME_ENCODING_ERROR: ", 0), 0u);
}

// ---- predicates ----

TEST(QuicFrame, AllowedInPacketTypes) {
  using K = PacketKind;
  const Bytes none;
  auto mask = [](const Frame& f) {
    std::string s;
    s += allowed_in(f, K::kInitial) ? 'I' : '_';
    s += allowed_in(f, K::kHandshake) ? 'H' : '_';
    s += allowed_in(f, K::kZeroRtt) ? '0' : '_';
    s += allowed_in(f, K::kOneRtt) ? '1' : '_';
    return s;
  };
  // RFC 9000 Table 3.
  EXPECT_EQ(mask(Padding{}), "IH01");
  EXPECT_EQ(mask(Ping{}), "IH01");
  EXPECT_EQ(mask(Ack{}), "IH_1");
  EXPECT_EQ(mask(ResetStream{}), "__01");
  EXPECT_EQ(mask(StopSending{}), "__01");
  EXPECT_EQ(mask(Crypto{}), "IH_1");
  EXPECT_EQ(mask(NewToken{}), "___1");
  EXPECT_EQ(mask(Stream{}), "__01");
  EXPECT_EQ(mask(MaxData{}), "__01");
  EXPECT_EQ(mask(MaxStreamData{}), "__01");
  EXPECT_EQ(mask(MaxStreams{}), "__01");
  EXPECT_EQ(mask(DataBlocked{}), "__01");
  EXPECT_EQ(mask(StreamDataBlocked{}), "__01");
  EXPECT_EQ(mask(StreamsBlocked{}), "__01");
  EXPECT_EQ(mask(NewConnectionId{}), "__01");
  EXPECT_EQ(mask(RetireConnectionId{}), "__01");
  EXPECT_EQ(mask(PathChallenge{}), "__01");
  EXPECT_EQ(mask(PathResponse{}), "___1");
  EXPECT_EQ(mask(ConnectionClose{false, 0, 0, none}), "IH01");
  EXPECT_EQ(mask(ConnectionClose{true, 0, 0, none}), "__01");
  EXPECT_EQ(mask(HandshakeDone{}), "___1");
  // Extensions.
  EXPECT_EQ(mask(Datagram{}), "__01");
  EXPECT_EQ(mask(AckFrequency{}), "__01");
  EXPECT_EQ(mask(ImmediateAck{}), "__01");
  EXPECT_EQ(mask(PathAck{}), "___1");
  EXPECT_EQ(mask(PathAbandon{}), "___1");
  EXPECT_EQ(mask(PathStatus{}), "___1");
  EXPECT_EQ(mask(NewConnectionId{0, 0, 0, kCid8, {}}), "___1");
  EXPECT_EQ(mask(RetireConnectionId{0, 0}), "___1");
  EXPECT_EQ(mask(MaxPathId{}), "___1");
  EXPECT_EQ(mask(PathsBlocked{}), "___1");
  EXPECT_EQ(mask(PathCidsBlocked{}), "___1");
  EXPECT_EQ(mask(AddAddress{}), "___1");
  EXPECT_EQ(mask(ReachOut{}), "___1");
  EXPECT_EQ(mask(RemoveAddress{}), "___1");
  EXPECT_EQ(mask(ObservedAddress{}), "___1");
}

TEST(QuicFrame, AckElicitingAndProbing) {
  const Bytes none;
  EXPECT_FALSE(is_ack_eliciting(Padding{}));
  EXPECT_FALSE(is_ack_eliciting(Ack{}));
  EXPECT_FALSE(is_ack_eliciting(PathAck{}));
  EXPECT_FALSE(is_ack_eliciting(ConnectionClose{}));
  EXPECT_TRUE(is_ack_eliciting(Ping{}));
  EXPECT_TRUE(is_ack_eliciting(Stream{}));
  EXPECT_TRUE(is_ack_eliciting(PathChallenge{}));
  EXPECT_TRUE(is_ack_eliciting(AddAddress{}));
  EXPECT_TRUE(is_ack_eliciting(ImmediateAck{}));
  EXPECT_TRUE(is_ack_eliciting(HandshakeDone{}));

  EXPECT_TRUE(is_probing(Padding{}));
  EXPECT_TRUE(is_probing(PathChallenge{}));
  EXPECT_TRUE(is_probing(PathResponse{}));
  EXPECT_TRUE(is_probing(NewConnectionId{}));
  EXPECT_TRUE(is_probing(NewConnectionId{1, 0, 0, kCid8, {}}));
  EXPECT_TRUE(is_probing(ObservedAddress{}));
  EXPECT_FALSE(is_probing(Ping{}));
  EXPECT_FALSE(is_probing(Ack{}));
  EXPECT_FALSE(is_probing(Stream{}));
  EXPECT_FALSE(is_probing(ReachOut{}));
  EXPECT_FALSE(is_probing(PathAck{}));
}

TEST(QuicFrame, QntProbePacketIsProbing) {
  // spec §5.3: a QNT probe carries only a PATH_CHALLENGE.
  const Bytes payload = hex("1a 0102030405060708");
  auto frames = decode_frames(payload, PacketKind::kOneRtt);
  ASSERT_TRUE(frames.ok());
  for (const auto& f : *frames) EXPECT_TRUE(is_probing(f));
}

}  // namespace
}  // namespace iroh::quic

// SendStream: the sending part of a stream (RFC 9000 §3.1, §3.5, §4.1, §4.5, §19.4, §19.8, §19.13).
#include "quic/send_stream.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>

namespace iroh::quic {
namespace {

constexpr std::uint64_t kUnlimited = UINT64_MAX;

Bytes pattern(std::size_t n, std::uint64_t start = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((start + i) * 7 + 3);
  return b;
}

std::string str(ByteView v) { return std::string(v.begin(), v.end()); }

TEST(SendStream, NewDataInOrderThenFinOnLastChunk) {
  SendStream s(kUnlimited);
  EXPECT_EQ(s.state(), SendState::kReady);
  EXPECT_EQ(s.write(as_bytes("hello world")), 11u);
  s.finish();
  EXPECT_EQ(s.write(as_bytes("more")), 0u);  // after finish: rejected
  auto c = s.next_chunk(5, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 0u);
  EXPECT_EQ(str(c->data), "hello");
  EXPECT_FALSE(c->fin);
  EXPECT_EQ(c->new_bytes, 5u);
  EXPECT_EQ(s.state(), SendState::kSend);
  c = s.next_chunk(100, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 5u);
  EXPECT_EQ(str(c->data), " world");
  EXPECT_TRUE(c->fin);
  EXPECT_EQ(s.state(), SendState::kDataSent);
  EXPECT_FALSE(s.has_data_to_send());
  EXPECT_FALSE(s.next_chunk(100, kUnlimited));
  s.on_acked(5, 6, true);
  EXPECT_FALSE(s.all_acked());
  s.on_acked(0, 5, false);
  EXPECT_TRUE(s.all_acked());
  EXPECT_EQ(s.state(), SendState::kDataRecvd);
  EXPECT_TRUE(s.is_closed());
}

TEST(SendStream, FinOnlyChunkAfterDataSent) {
  SendStream s(kUnlimited);
  ASSERT_EQ(s.write(as_bytes("abc")), 3u);
  auto c = s.next_chunk(100, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->fin);
  EXPECT_FALSE(s.has_data_to_send());
  s.finish();
  EXPECT_TRUE(s.has_data_to_send());
  c = s.next_chunk(0, 0);  // a FIN-only chunk needs no space and no credit
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 3u);
  EXPECT_TRUE(c->data.empty());
  EXPECT_TRUE(c->fin);
  EXPECT_EQ(c->new_bytes, 0u);
  EXPECT_FALSE(s.has_data_to_send());
  // The FIN-only frame is lost: it is sent again.
  s.on_lost(3, 0, true);
  EXPECT_TRUE(s.has_data_to_send());
  c = s.next_chunk(100, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->fin);
  EXPECT_TRUE(c->data.empty());
  s.on_acked(3, 0, true);
  s.on_lost(3, 0, true);  // late loss report after the ack: ignored
  EXPECT_FALSE(s.has_data_to_send());
  s.on_acked(0, 3, false);
  EXPECT_TRUE(s.all_acked());
}

TEST(SendStream, EmptyStreamFin) {
  SendStream s(0);  // even with no stream credit a FIN at offset 0 can go
  s.finish();
  auto c = s.next_chunk(100, 0);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 0u);
  EXPECT_TRUE(c->fin);
  s.on_acked(0, 0, true);
  EXPECT_TRUE(s.all_acked());
}

// Lost ranges go first, lowest offset first, and consume no flow-control credit.
TEST(SendStream, RetransmissionsFirstInOffsetOrder) {
  SendStream s(kUnlimited);
  const Bytes data = pattern(1000);
  ASSERT_EQ(s.write(data), 1000u);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(s.next_chunk(100, kUnlimited));
  s.on_lost(500, 100, false);
  s.on_lost(200, 100, false);
  s.on_acked(250, 20, false);  // part of a lost range acked by another copy: not resent
  ASSERT_EQ(s.write(pattern(100, 1000)), 100u);
  auto c = s.next_chunk(1000, 0);  // no connection credit: retransmission still allowed
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 200u);
  EXPECT_EQ(c->data.size(), 50u);
  EXPECT_EQ(c->new_bytes, 0u);
  EXPECT_EQ(Bytes(c->data.begin(), c->data.end()), Bytes(data.begin() + 200, data.begin() + 250));
  c = s.next_chunk(1000, 0);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 270u);
  EXPECT_EQ(c->data.size(), 30u);
  c = s.next_chunk(40, 0);  // limited by max_bytes: the rest stays queued
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 500u);
  EXPECT_EQ(c->data.size(), 40u);
  c = s.next_chunk(1000, 0);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 540u);
  EXPECT_EQ(c->data.size(), 60u);
  EXPECT_FALSE(s.next_chunk(1000, 0));  // only new data left, no credit
  EXPECT_TRUE(s.has_new_data_within_limit());
  c = s.next_chunk(1000, 60);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 1000u);
  EXPECT_EQ(c->new_bytes, 60u);
}

TEST(SendStream, LostAfterAckIgnored) {
  SendStream s(kUnlimited);
  ASSERT_EQ(s.write(pattern(300)), 300u);
  ASSERT_TRUE(s.next_chunk(300, kUnlimited));
  s.on_acked(0, 300, false);
  s.on_lost(0, 300, false);
  EXPECT_FALSE(s.has_data_to_send());
  EXPECT_FALSE(s.next_chunk(300, kUnlimited));
}

// Acknowledged prefixes release buffer space (and memory, block by block).
TEST(SendStream, AckFreesBuffer) {
  SendStream s(kUnlimited, 100 * 1024);
  const Bytes data = pattern(100 * 1024);
  EXPECT_EQ(s.write(data), 100u * 1024);
  EXPECT_EQ(s.writable(), 0u);
  EXPECT_EQ(s.write(data), 0u);
  std::uint64_t sent = 0;
  while (auto c = s.next_chunk(1200, kUnlimited)) {
    // A chunk never crosses a 16 KiB block.
    EXPECT_EQ(c->offset / SendStream::kBlockSize,
              (c->offset + c->data.size() - 1) / SendStream::kBlockSize);
    sent += c->data.size();
  }
  EXPECT_EQ(sent, 100u * 1024);
  s.on_acked(1000, 50000, false);  // not a prefix: nothing released
  EXPECT_EQ(s.writable(), 0u);
  s.on_acked(0, 1000, false);
  EXPECT_EQ(s.buffered(), 100u * 1024 - 51000);
  EXPECT_EQ(s.writable(), 51000u);
  EXPECT_EQ(s.write(data), 51000u);
  EXPECT_EQ(s.written(), 100u * 1024 + 51000);
  // The new bytes come out intact after blocks were released.
  auto c = s.next_chunk(100000, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 100u * 1024);
  EXPECT_EQ(Bytes(c->data.begin(), c->data.end()),
            Bytes(data.begin(), data.begin() + c->data.size()));
}

// Stream-level flow control (§4.1) and STREAM_DATA_BLOCKED (§19.13).
TEST(SendStream, StreamLimitAndBlocked) {
  SendStream s(100);
  ASSERT_EQ(s.write(pattern(250)), 250u);
  EXPECT_EQ(s.blocked_at(), std::nullopt);
  auto c = s.next_chunk(1000, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->data.size(), 100u);
  EXPECT_FALSE(s.has_data_to_send());
  EXPECT_EQ(s.blocked_at(), 100u);
  EXPECT_FALSE(s.next_chunk(1000, kUnlimited));
  s.on_max_stream_data(50);  // smaller: ignored
  EXPECT_EQ(s.max_stream_data(), 100u);
  s.on_max_stream_data(180);
  EXPECT_EQ(s.blocked_at(), std::nullopt);
  c = s.next_chunk(1000, 30);  // connection credit is the tighter limit
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 100u);
  EXPECT_EQ(c->new_bytes, 30u);
  c = s.next_chunk(1000, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 130u);
  EXPECT_EQ(c->data.size(), 50u);
  EXPECT_EQ(s.blocked_at(), 180u);
}

// §3.1 / §19.4: reset drops data; the final size is the highest offset sent (§4.5).
TEST(SendStream, ResetDropsDataAndReportsFinalSize) {
  SendStream s(kUnlimited);
  ASSERT_EQ(s.write(pattern(1000)), 1000u);
  ASSERT_TRUE(s.next_chunk(400, kUnlimited));
  s.on_lost(0, 400, false);
  s.reset(77);
  EXPECT_EQ(s.state(), SendState::kResetSent);
  EXPECT_FALSE(s.has_data_to_send());
  EXPECT_FALSE(s.next_chunk(1000, kUnlimited));
  EXPECT_EQ(s.write(pattern(10)), 0u);
  EXPECT_EQ(s.writable(), 0u);
  auto r = s.pending_reset();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 77u);
  EXPECT_EQ(r->final_size, 400u);
  s.on_reset_sent();
  EXPECT_FALSE(s.pending_reset());
  s.on_reset_lost();
  ASSERT_TRUE(s.pending_reset());
  s.on_reset_sent();
  s.on_reset_acked();
  EXPECT_EQ(s.state(), SendState::kResetRecvd);
  EXPECT_TRUE(s.is_closed());
  s.reset(5);  // second reset ignored
  EXPECT_EQ(s.reset_info()->code, 77u);
}

TEST(SendStream, ResetAfterAllAckedIgnored) {
  SendStream s(kUnlimited);
  ASSERT_EQ(s.write(as_bytes("x")), 1u);
  s.finish();
  ASSERT_TRUE(s.next_chunk(10, kUnlimited));
  s.on_acked(0, 1, true);
  s.reset(1);
  EXPECT_FALSE(s.is_reset());
  EXPECT_EQ(s.state(), SendState::kDataRecvd);
}

// §3.5: STOP_SENDING makes the sender reset with the peer's code.
TEST(SendStream, StopSendingResets) {
  SendStream s(kUnlimited);
  ASSERT_EQ(s.write(pattern(10)), 10u);
  s.on_stop_sending(9);
  EXPECT_EQ(s.stop_sending_code(), 9u);
  auto r = s.pending_reset();
  ASSERT_TRUE(r);
  EXPECT_EQ(r->code, 9u);
  EXPECT_EQ(r->final_size, 0u);
  EXPECT_EQ(s.write(pattern(10)), 0u);
}

TEST(SendStream, FinAttachedToRetransmissionOfLastRange) {
  SendStream s(kUnlimited);
  ASSERT_EQ(s.write(pattern(200)), 200u);
  s.finish();
  auto a = s.next_chunk(100, kUnlimited);
  auto b = s.next_chunk(100, kUnlimited);
  ASSERT_TRUE(a && b);
  EXPECT_TRUE(b->fin);
  s.on_lost(100, 100, true);
  auto c = s.next_chunk(1000, kUnlimited);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->offset, 100u);
  EXPECT_TRUE(c->fin);
  EXPECT_FALSE(s.next_chunk(1000, kUnlimited));  // no separate FIN-only chunk
}

TEST(SendStream, CryptoUsage) {
  SendStream s(kUnlimited);  // CRYPTO: no flow control
  const Bytes flight = pattern(3000);
  ASSERT_EQ(s.write(flight), 3000u);
  Bytes got;
  while (auto c = s.next_chunk(1100, kUnlimited)) {
    EXPECT_FALSE(c->fin);
    got.insert(got.end(), c->data.begin(), c->data.end());
  }
  EXPECT_EQ(got, flight);
}

}  // namespace
}  // namespace iroh::quic

// RecvStream, Reassembler and CryptoRecvBuffer (RFC 9000 §3.2, §3.5, §4.1, §4.5, §7.5, §19.4,
// §19.6, §19.8, §19.10), and a seeded SendStream → RecvStream property test.
#include "quic/recv_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "quic/flow_control.h"
#include "quic/send_stream.h"

namespace iroh::quic {
namespace {

using std::chrono::milliseconds;

Bytes pattern(std::size_t n, std::uint64_t start = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>((start + i) * 13 + 5);
  return b;
}

ByteView slice(const Bytes& b, std::size_t off, std::size_t len) {
  return ByteView(b).subspan(off, len);
}

Bytes read_all(RecvStream& s) {
  Bytes out;
  std::uint8_t buf[777];
  while (std::size_t n = s.read(buf)) out.insert(out.end(), buf, buf + n);
  return out;
}

TEST(Reassembler, OutOfOrderWithOverlapsAndDuplicates) {
  Reassembler r;
  const Bytes data = pattern(100000);
  EXPECT_EQ(r.insert(50000, slice(data, 50000, 20000)), 20000u);
  EXPECT_EQ(r.readable(), 0u);
  EXPECT_EQ(r.insert(60000, slice(data, 60000, 20000)), 10000u);  // overlap stored once
  EXPECT_EQ(r.insert(55000, slice(data, 55000, 100)), 0u);        // duplicate
  EXPECT_EQ(r.insert(0, slice(data, 0, 30000)), 30000u);
  EXPECT_EQ(r.readable(), 30000u);
  EXPECT_EQ(r.buffered(), 60000u);
  EXPECT_EQ(r.insert(20000, slice(data, 20000, 40000)), 20000u);  // fills the hole
  EXPECT_EQ(r.readable(), 80000u);
  Bytes out(100000);
  EXPECT_EQ(r.read(std::span(out).first(12345)), 12345u);
  EXPECT_EQ(r.read(std::span(out).subspan(12345)), 80000u - 12345);
  EXPECT_EQ(Bytes(out.begin(), out.begin() + 80000), Bytes(data.begin(), data.begin() + 80000));
  EXPECT_EQ(r.insert(0, slice(data, 0, 90000)), 10000u);  // already-read part ignored
  EXPECT_EQ(r.readable(), 10000u);
  EXPECT_EQ(r.read_offset(), 80000u);
}

TEST(RecvStream, InOrderDataAndFin) {
  RecvStream s(1000);
  auto r = s.on_data(0, as_bytes("hello "), false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 6u);
  r = s.on_data(6, as_bytes("world"), true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 5u);
  EXPECT_EQ(s.state(), RecvState::kDataRecvd);
  EXPECT_EQ(s.readable(), 11u);
  EXPECT_FALSE(s.finished());
  const Bytes got = read_all(s);
  EXPECT_EQ(std::string(got.begin(), got.end()), "hello world");
  EXPECT_TRUE(s.finished());
  EXPECT_EQ(s.state(), RecvState::kDataRead);
  EXPECT_TRUE(s.is_closed());
  EXPECT_EQ(s.take_freed_credit(), 11u);
  EXPECT_EQ(s.take_freed_credit(), 0u);
}

TEST(RecvStream, EmptyFinishedStream) {
  RecvStream s(1000);
  ASSERT_TRUE(s.on_data(0, {}, true).ok());
  EXPECT_EQ(s.state(), RecvState::kDataRecvd);
  std::uint8_t buf[4];
  EXPECT_EQ(s.read(buf), 0u);
  EXPECT_TRUE(s.finished());
}

TEST(RecvStream, OutOfOrderReassemblyReturnsHighestOffsetIncrease) {
  RecvStream s(10000);
  const Bytes data = pattern(3000);
  auto r = s.on_data(2000, slice(data, 2000, 1000), true);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 3000u);  // the highest offset jumped from 0 to 3000
  EXPECT_EQ(s.state(), RecvState::kSizeKnown);
  EXPECT_EQ(s.readable(), 0u);
  r = s.on_data(500, slice(data, 500, 2000), false);  // overlaps the tail
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  r = s.on_data(0, slice(data, 0, 1000), false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(s.state(), RecvState::kDataRecvd);
  EXPECT_EQ(read_all(s), data);
  EXPECT_TRUE(s.finished());
}

// §4.1: data beyond the advertised MAX_STREAM_DATA is FLOW_CONTROL_ERROR.
TEST(RecvStream, FlowControlError) {
  RecvStream s(100);
  EXPECT_TRUE(s.on_data(0, pattern(100), false).ok());
  auto r = s.on_data(100, pattern(1), false);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kFlowControlError);
  auto r2 = s.on_data((1ull << 62) - 1, pattern(2), false);
  ASSERT_FALSE(r2.ok());
  EXPECT_EQ(r2.error().code, TransportError::kFlowControlError);
}

// §4.5 final size rules.
TEST(RecvStream, FinalSizeErrors) {
  {
    RecvStream s(1000);
    ASSERT_TRUE(s.on_data(0, pattern(10), true).ok());
    auto r = s.on_data(5, pattern(10), false);  // beyond the final size
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, TransportError::kFinalSizeError);
    r = s.on_data(0, pattern(5), true);  // fin changes the final size
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, TransportError::kFinalSizeError);
    EXPECT_TRUE(s.on_data(0, pattern(10), true).ok());  // same final size: fine
  }
  {
    RecvStream s(1000);
    ASSERT_TRUE(s.on_data(50, pattern(10), false).ok());
    auto r = s.on_data(0, pattern(20), true);  // fin below data already received
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, TransportError::kFinalSizeError);
  }
  {
    RecvStream s(1000);
    ASSERT_TRUE(s.on_data(0, pattern(10), true).ok());
    auto r = s.on_reset(1, 11);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, TransportError::kFinalSizeError);
  }
  {
    RecvStream s(1000);
    ASSERT_TRUE(s.on_data(0, pattern(30), false).ok());
    auto r = s.on_reset(1, 20);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, TransportError::kFinalSizeError);
    auto r2 = s.on_reset(1, 1001);
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().code, TransportError::kFlowControlError);
  }
}

TEST(RecvStream, ResetDiscardsAndReleasesCredit) {
  RecvStream s(1000);
  ASSERT_TRUE(s.on_data(0, pattern(100), false).ok());
  ASSERT_TRUE(s.on_data(300, pattern(100), false).ok());
  std::uint8_t buf[40];
  ASSERT_EQ(s.read(buf), 40u);
  EXPECT_EQ(s.take_freed_credit(), 40u);
  auto r = s.on_reset(42, 500);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 100u);  // highest offset 400 → 500
  EXPECT_EQ(s.reset_code(), 42u);
  EXPECT_EQ(s.state(), RecvState::kResetRecvd);
  EXPECT_EQ(s.take_freed_credit(), 460u);  // everything up to the final size is released
  EXPECT_EQ(s.readable(), 0u);
  EXPECT_EQ(s.read(buf), 0u);
  EXPECT_EQ(s.state(), RecvState::kResetRead);
  EXPECT_TRUE(s.is_closed());
  // Late data and duplicate resets: checked, counted nowhere, ignored.
  auto d = s.on_data(400, pattern(100), false);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(*d, 0u);
  EXPECT_FALSE(s.on_data(450, pattern(100), false).ok());
  auto r2 = s.on_reset(42, 500);
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(*r2, 0u);
  EXPECT_EQ(s.take_freed_credit(), 0u);
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(1)), milliseconds(1)),
            std::nullopt);
}

TEST(RecvStream, ResetAfterAllDataReceivedIsIgnored) {
  RecvStream s(1000);
  ASSERT_TRUE(s.on_data(0, as_bytes("abc"), true).ok());
  auto r = s.on_reset(3, 3);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 0u);
  EXPECT_EQ(s.reset_code(), std::nullopt);
  EXPECT_EQ(std::string(read_all(s).size(), 'x'), "xxx");
  EXPECT_TRUE(s.finished());
}

// §3.5: after STOP_SENDING data is discarded but still counted for flow control.
TEST(RecvStream, StopSendingDiscardsButCounts) {
  RecvStream s(1000);
  ASSERT_TRUE(s.on_data(0, pattern(100), false).ok());
  ASSERT_TRUE(s.on_data(200, pattern(100), false).ok());
  s.stop_sending(7);
  EXPECT_EQ(s.pending_stop_sending(), 7u);
  EXPECT_EQ(s.readable(), 0u);
  EXPECT_EQ(s.take_freed_credit(), 300u);  // gap included
  s.on_stop_sending_sent();
  EXPECT_EQ(s.pending_stop_sending(), std::nullopt);
  s.on_stop_sending_lost();
  EXPECT_EQ(s.pending_stop_sending(), 7u);
  s.on_stop_sending_sent();
  auto r = s.on_data(300, pattern(200), false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, 200u);
  EXPECT_EQ(s.take_freed_credit(), 200u);
  EXPECT_FALSE(s.on_data(900, pattern(101), false).ok());  // limits still enforced
  std::uint8_t buf[10];
  EXPECT_EQ(s.read(buf), 0u);
  EXPECT_FALSE(s.is_closed());
  ASSERT_TRUE(s.on_reset(7, 600).ok());  // the peer answers with RESET_STREAM
  EXPECT_EQ(s.take_freed_credit(), 100u);
  EXPECT_TRUE(s.is_closed());
  s.on_stop_sending_lost();
  EXPECT_EQ(s.pending_stop_sending(), std::nullopt);  // no need once reset
}

TEST(RecvStream, StopSendingClosesWhenAllDataArrives) {
  RecvStream s(1000);
  ASSERT_TRUE(s.on_data(10, pattern(10), true).ok());
  s.stop_sending(1);
  EXPECT_FALSE(s.is_closed());
  ASSERT_TRUE(s.on_data(0, pattern(10), false).ok());
  EXPECT_EQ(s.state(), RecvState::kDataRecvd);
  EXPECT_TRUE(s.is_closed());
  EXPECT_EQ(s.pending_stop_sending(), std::nullopt);
  EXPECT_EQ(s.take_freed_credit(), 20u);
}

TEST(RecvStream, MaxStreamDataUpdateAndAutoTuning) {
  RecvStream s(1000, 8000);
  const Duration srtt = milliseconds(40);
  std::uint64_t off = 0;
  auto deliver = [&](std::size_t n) {
    ASSERT_TRUE(s.on_data(off, pattern(n, off), false).ok());
    off += n;
    EXPECT_EQ(read_all(s).size(), n);
  };
  deliver(500);  // exactly half: not due yet
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(0)), srtt), std::nullopt);
  deliver(10);
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(0)), srtt), 1510u);
  EXPECT_EQ(s.current_max_stream_data(), 1510u);
  deliver(600);  // next update 10 ms later (< 2·srtt): window doubles
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(10)), srtt), off + 2000);
  deliver(1100);
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(20)), srtt), off + 4000);
  deliver(2100);
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(30)), srtt), off + 8000);
  deliver(4100);
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(40)), srtt), off + 8000);  // cap
  EXPECT_EQ(s.window().window(), 8000u);
  deliver(4100);  // slow update (200 ms later): no change of window
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(240)), srtt), off + 8000);
  // Once the final size is known no update is needed (§3.2 Size Known).
  ASSERT_TRUE(s.on_data(off, pattern(10), true).ok());
  EXPECT_FALSE(s.wants_max_stream_data());
  EXPECT_EQ(s.take_max_stream_data_update(instant_at(milliseconds(250)), srtt), std::nullopt);
}

// §7.5: out-of-order CRYPTO data beyond the buffer is CRYPTO_BUFFER_EXCEEDED.
TEST(CryptoRecvBuffer, ReassemblyAndLimit) {
  CryptoRecvBuffer c;
  const Bytes data = pattern(70000);
  ASSERT_TRUE(c.on_data(1000, slice(data, 1000, 500)).ok());
  ASSERT_TRUE(c.on_data(0, slice(data, 0, 1200)).ok());
  EXPECT_EQ(c.readable(), 1500u);
  auto r = c.on_data(60000, slice(data, 60000, 6000));  // ends at 66000 > 0 + 65536
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kCryptoBufferExceeded);
  EXPECT_TRUE(c.on_data(60000, slice(data, 60000, 5536)).ok());  // ends exactly at the cap
  Bytes out(1500);
  ASSERT_EQ(c.read(out), 1500u);
  EXPECT_EQ(out, Bytes(data.begin(), data.begin() + 1500));
  EXPECT_TRUE(c.on_data(60000, slice(data, 60000, 6000)).ok());  // the cap moved with the reads
  EXPECT_TRUE(c.on_data(0, slice(data, 0, 1500)).ok());          // old data ignored
  EXPECT_EQ(c.read_offset(), 1500u);
  auto r2 = c.on_data(UINT64_MAX - 5, slice(data, 0, 10));  // overflow-safe
  ASSERT_FALSE(r2.ok());
}

// Property test: a 1 MiB stream through SendStream → lossy, reordering, duplicating channel →
// RecvStream arrives byte for byte, with both flow-control levels enforced and acks freeing the
// sender's memory. Seeded: failures reproduce.
class StreamTransfer : public ::testing::TestWithParam<std::uint32_t> {};

TEST_P(StreamTransfer, RandomChunkingLossAndAckReproducesBytes) {
  std::mt19937_64 rng(GetParam());
  auto uniform = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  const std::size_t kSize = 1 << 20;
  Bytes data(kSize);
  for (auto& b : data) b = static_cast<std::uint8_t>(rng());

  const std::uint64_t window = uniform(4000, 300000);
  SendStream tx(window, uniform(20000, 600000));
  RecvStream rx(window, 1 << 20);
  SendCredit credit(window * 2);
  RecvWindow conn(window * 2, 4 << 20);

  struct Frame {
    std::uint64_t offset;
    Bytes data;
    bool fin;
  };
  std::vector<Frame> in_flight;
  Bytes received;
  std::size_t written = 0;
  Instant now = instant_at(milliseconds(0));
  const Duration srtt = milliseconds(10);
  const double loss = static_cast<double>(uniform(0, 30)) / 100.0;
  int rounds = 0;
  std::uint64_t retransmitted = 0;

  while (!(tx.all_acked() && rx.finished())) {
    ASSERT_LT(++rounds, 200000) << "no progress";
    now += milliseconds(1);
    // The app writes.
    if (written < kSize) {
      written += tx.write(ByteView(data).subspan(
          written, std::min<std::size_t>(kSize - written, uniform(1, 70000))));
      if (written == kSize) tx.finish();
    }
    // The sender packs a few frames.
    for (int i = 0, n = static_cast<int>(uniform(0, 8)); i < n; ++i) {
      auto c = tx.next_chunk(uniform(0, 1500), credit.available());
      if (!c) break;
      credit.consume(c->new_bytes);
      retransmitted += c->data.size() - c->new_bytes;
      in_flight.push_back({c->offset, Bytes(c->data.begin(), c->data.end()), c->fin});
    }
    // The network delivers, loses, duplicates and reorders.
    std::shuffle(in_flight.begin(), in_flight.end(), rng);
    std::vector<Frame> keep;
    for (auto& f : in_flight) {
      const std::uint64_t fate = uniform(0, 99);
      if (fate < 30) {  // still in flight
        keep.push_back(std::move(f));
        continue;
      }
      if (uniform(0, 99) < loss * 100) {
        tx.on_lost(f.offset, f.data.size(), f.fin);
        continue;
      }
      auto inc = rx.on_data(f.offset, f.data, f.fin);
      ASSERT_TRUE(inc.ok()) << inc.error().message;
      ASSERT_TRUE(conn.on_received(*inc).ok());
      if (uniform(0, 9) == 0) {  // the ack is lost: a spurious retransmission follows
        tx.on_lost(f.offset, f.data.size(), f.fin);
      } else {
        tx.on_acked(f.offset, f.data.size(), f.fin);
      }
      if (uniform(0, 19) == 0) {  // a duplicate copy
        auto dup = rx.on_data(f.offset, f.data, f.fin);
        ASSERT_TRUE(dup.ok());
        EXPECT_EQ(*dup, 0u);
      }
    }
    in_flight = std::move(keep);
    // The app reads a random amount.
    Bytes buf(uniform(0, 50000));
    const std::size_t n = rx.read(buf);
    received.insert(received.end(), buf.begin(), buf.begin() + n);
    conn.on_consumed(rx.take_freed_credit());
    // Window updates (the frames themselves are assumed delivered).
    if (auto m = rx.take_max_stream_data_update(now, srtt)) tx.on_max_stream_data(*m);
    if (auto m = conn.take_max_data_update(now, srtt)) credit.on_max_data(*m);
    ASSERT_LE(tx.buffered(), kSize);
  }
  EXPECT_EQ(received.size(), kSize);
  EXPECT_TRUE(received == data);
  EXPECT_EQ(tx.buffered(), 0u);
  EXPECT_GT(retransmitted, 0u);
  EXPECT_EQ(credit.used(), kSize);  // retransmissions consumed no credit
  RecordProperty("rounds", rounds);
  RecordProperty("retransmitted", static_cast<int>(retransmitted));
  EXPECT_EQ(conn.received(), kSize);
  EXPECT_TRUE(tx.is_closed());
  EXPECT_TRUE(rx.is_closed());
}

INSTANTIATE_TEST_SUITE_P(Seeds, StreamTransfer, ::testing::Values(1u, 2u, 3u, 42u, 1234u, 99999u));

}  // namespace
}  // namespace iroh::quic

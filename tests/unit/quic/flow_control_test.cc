// Connection-level flow control and window auto-tuning (RFC 9000 §4.1, §4.2, §19.9, §19.12).
#include "quic/flow_control.h"

#include <gtest/gtest.h>

#include <chrono>

namespace iroh::quic {
namespace {

using std::chrono::milliseconds;

TEST(SendCredit, ConsumeAndBlocked) {
  SendCredit c(1000);
  EXPECT_EQ(c.available(), 1000u);
  EXPECT_EQ(c.blocked_at(), std::nullopt);
  c.consume(600);
  EXPECT_EQ(c.available(), 400u);
  c.consume(400);
  EXPECT_EQ(c.available(), 0u);
  EXPECT_EQ(c.blocked_at(), 1000u);  // DATA_BLOCKED(1000)
  c.on_max_data(900);                // reordered smaller MAX_DATA: ignored
  EXPECT_EQ(c.limit(), 1000u);
  EXPECT_EQ(c.blocked_at(), 1000u);
  c.on_max_data(1500);
  EXPECT_EQ(c.available(), 500u);
  EXPECT_EQ(c.used(), 1000u);
  EXPECT_EQ(c.blocked_at(), std::nullopt);
}

TEST(RecvWindow, FlowControlErrorBeyondLimit) {
  RecvWindow w(1000, 1 << 20);
  EXPECT_TRUE(w.on_received(600).ok());
  EXPECT_TRUE(w.on_received(400).ok());
  auto r = w.on_received(1);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, TransportError::kFlowControlError);
}

TEST(RecvWindow, UpdateAfterHalfWindowConsumed) {
  RecvWindow w(1000, 1000);
  const Instant t0 = instant_at(milliseconds(0));
  ASSERT_TRUE(w.on_received(1000).ok());
  w.on_consumed(500);  // exactly half: not more than half
  EXPECT_EQ(w.take_max_data_update(t0, milliseconds(10)), std::nullopt);
  w.on_consumed(1);
  EXPECT_EQ(w.take_max_data_update(t0, milliseconds(10)), 1501u);
  EXPECT_EQ(w.current_limit(), 1501u);
  EXPECT_EQ(w.take_max_data_update(t0, milliseconds(10)), std::nullopt);
  ASSERT_TRUE(w.on_received(501).ok());
  EXPECT_FALSE(w.on_received(1).ok());
}

// Auto-tuning: updates less than 2·srtt apart double the window, up to max_window.
TEST(RecvWindow, AutoTuningDoublesWhenUpdatesAreFrequent) {
  RecvWindow w(1000, 4000);
  const Duration srtt = milliseconds(50);
  std::uint64_t consumed = 0;
  auto consume = [&](std::uint64_t n) {
    ASSERT_TRUE(w.on_received(n).ok());
    w.on_consumed(n);
    consumed += n;
  };
  consume(600);
  EXPECT_EQ(w.take_max_data_update(instant_at(milliseconds(0)), srtt), 1600u);  // first: no history
  EXPECT_EQ(w.window().window(), 1000u);
  consume(600);  // 60 ms later < 100 ms: window was the bottleneck
  EXPECT_EQ(w.take_max_data_update(instant_at(milliseconds(60)), srtt), consumed + 2000);
  EXPECT_EQ(w.window().window(), 2000u);
  consume(1100);
  EXPECT_EQ(w.take_max_data_update(instant_at(milliseconds(120)), srtt), consumed + 4000);
  consume(2100);
  EXPECT_EQ(w.take_max_data_update(instant_at(milliseconds(130)), srtt), consumed + 4000);  // cap
  EXPECT_EQ(w.window().window(), 4000u);
}

TEST(RecvWindow, NoDoublingWhenUpdatesAreSlowOrRttUnknown) {
  RecvWindow w(1000, 1 << 20);
  ASSERT_TRUE(w.on_received(1000).ok());
  w.on_consumed(600);
  ASSERT_TRUE(w.take_max_data_update(instant_at(milliseconds(0)), milliseconds(10)));
  w.on_consumed(600);
  EXPECT_EQ(w.take_max_data_update(instant_at(milliseconds(20)), milliseconds(10)), 2200u);
  EXPECT_EQ(w.window().window(), 1000u);  // 20 ms = 2·srtt: not < 2·srtt
  ASSERT_TRUE(w.on_received(200).ok());
  w.on_consumed(600);
  EXPECT_EQ(w.take_max_data_update(instant_at(milliseconds(21)), Duration::zero()), 2800u);
  EXPECT_EQ(w.window().window(), 1000u);
}

TEST(FlowWindow, MaxWindowBelowInitialKeepsInitial) {
  FlowWindow f(5000, 100);
  EXPECT_EQ(f.limit(), 5000u);
  EXPECT_EQ(f.max_window(), 5000u);
}

}  // namespace
}  // namespace iroh::quic

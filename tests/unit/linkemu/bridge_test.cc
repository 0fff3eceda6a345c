// Frame arrival times for the model (netns/linkemu/bridge.h).
#include <gtest/gtest.h>

#include "netns/linkemu/bridge.h"

namespace irohlab::linkemu {
namespace {

using std::chrono::milliseconds;

iroh::Instant at_ms(int ms) { return iroh::instant_at(milliseconds(ms)); }
constexpr std::int64_t kRealNow = 1'700'000'000'000'000'000;  // some wall-clock "now", ns

TEST(LinkemuBridge, FramesAreOfferedAtTheirKernelArrivalTime) {
  // Read 7 ms after the kernel stamped it: the model sees it 7 ms ago.
  EXPECT_EQ(arrival_instant(kRealNow - 7'000'000, kRealNow, at_ms(100), at_ms(0)), at_ms(93));
}

TEST(LinkemuBridge, ArrivalNeverGoesBackBeforeTheLastFrameNorIntoTheFuture) {
  EXPECT_EQ(arrival_instant(kRealNow - 7'000'000, kRealNow, at_ms(100), at_ms(95)), at_ms(95));
  EXPECT_EQ(arrival_instant(kRealNow + 5'000'000, kRealNow, at_ms(100), at_ms(0)), at_ms(100));
  EXPECT_EQ(arrival_instant(0, kRealNow, at_ms(100), at_ms(0)), at_ms(100));  // no stamp
}

}  // namespace
}  // namespace irohlab::linkemu

// The emulator's JSON profiles → the simulator's LinkProfile (netns/linkemu/profile.h).
#include <gtest/gtest.h>

#include <cmath>

#include "netns/linkemu/profile.h"

namespace irohlab::linkemu {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

TEST(LinkemuProfile, LadderRungMapsLikePatchbay) {
  // iroh's "absurd" rung:
  // rate_kbit(256).rtt_ms(800).jitter_ms(150).loss_pct(25).loss_burst_pkts(40)
  const auto p = profile_from_json(json{{"rate_kbit", 256},
                                        {"delay_ms", 400},
                                        {"buffer_ms", 800},
                                        {"jitter_ms", 150},
                                        {"loss_pct", 25},
                                        {"loss_burst_pkts", 40}});
  EXPECT_EQ(p.rate_bps, 256'000u);
  EXPECT_EQ(p.delay, milliseconds(400));
  EXPECT_EQ(p.jitter, milliseconds(150));
  EXPECT_EQ(p.queue_bytes, 25'600u);  // 256 kbit/s drain 25.6 kB in 800 ms
  EXPECT_DOUBLE_EQ(p.gilbert_r, 1.0 / 40);
  EXPECT_DOUBLE_EQ(p.gilbert_p, 0.25 / (40 * 0.75));
  EXPECT_DOUBLE_EQ(p.loss_in_bad, 1.0);
  EXPECT_DOUBLE_EQ(p.loss, 0.0);
}

TEST(LinkemuProfile, BurstyLossHasTheRequestedRateAndBurstLength) {
  const auto p = profile_from_json(json{{"loss_pct", 8}, {"loss_burst_pkts", 20}});
  iroh::sim::VirtualLink link(p, 42);
  constexpr int kFrames = 1'000'000;
  int lost = 0, bursts = 0;
  bool previous_lost = false;
  for (int i = 0; i < kFrames; ++i) {
    const bool ok = link.send(iroh::instant_at(milliseconds(i)), iroh::Bytes(64));
    if (!ok) {
      ++lost;
      if (!previous_lost) ++bursts;
    }
    previous_lost = !ok;
  }
  EXPECT_NEAR(static_cast<double>(lost) / kFrames, 0.08, 0.006);
  EXPECT_NEAR(static_cast<double>(lost) / bursts, 20.0, 1.5);
}

TEST(LinkemuProfile, LossWithoutBurstIsIndependent) {
  const auto p = profile_from_json(json{{"loss_pct", 3}});
  EXPECT_DOUBLE_EQ(p.loss, 0.03);
  EXPECT_DOUBLE_EQ(p.gilbert_p, 0.0);
  const auto q = profile_from_json(json{{"loss_pct", 3}, {"loss_burst_pkts", 1}});
  EXPECT_DOUBLE_EQ(q.loss, 0.03);
  EXPECT_DOUBLE_EQ(q.gilbert_p, 0.0);
}

TEST(LinkemuProfile, MtuCountsTheIpPacketDutyCycleIsAFraction) {
  const auto p = profile_from_json(
      json{{"rate_kbit", 5.5}, {"queue_bytes", 1024}, {"mtu", 222}, {"duty_cycle_pct", 1}});
  EXPECT_EQ(p.mtu, 222u + kEthernetHeaderBytes);
  EXPECT_DOUBLE_EQ(p.duty_cycle, 0.01);
  EXPECT_EQ(p.rate_bps, 5'500u);
  EXPECT_EQ(p.queue_bytes, 1024u);
  EXPECT_EQ(profile_from_json(json::object()).mtu, 0u);  // nothing set: an ideal wire
}

TEST(LinkemuProfile, BadInputIsRejectedWithTheKeyNamed) {
  auto error_of = [](const json& j) {
    try {
      (void)profile_from_json(j);
    } catch (const ProfileError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of(json{{"dealy_ms", 5}}), "dealy_ms: unknown profile key");
  EXPECT_EQ(error_of(json{{"delay_ms", -1}}), "delay_ms: must be >= 0");
  EXPECT_EQ(error_of(json{{"delay_ms", "5"}}), "delay_ms: expected a number");
  EXPECT_EQ(error_of(json{{"loss_pct", 101}}), "loss_pct: must be <= 100");
  EXPECT_NE(error_of(json{{"buffer_ms", 10}}).find("needs rate_kbit"), std::string::npos);
  EXPECT_NE(error_of(json{{"rate_kbit", 1}, {"buffer_ms", 1}, {"queue_bytes", 1}}).find("not both"),
            std::string::npos);
  EXPECT_NE(error_of(json{{"mtu", 20}}).find(">= 68"), std::string::npos);
  EXPECT_NE(error_of(json{{"duty_cycle_pct", 1}}).find("needs rate_kbit"), std::string::npos);
  EXPECT_NE(error_of(json{{"reorder_pct", 5}}).find("reorder_delay_ms"), std::string::npos);
  EXPECT_NE(error_of(json::array()).find("object"), std::string::npos);
  EXPECT_THROW((void)profile_from_json_text("{"), ProfileError);
}

TEST(LinkemuProfile, LabelsTravelWithoutEffect) {
  const auto p = profile_from_json(
      json{{"label", "x"}, {"description", "y"}, {"source", "z"}, {"delay_ms", 1}});
  EXPECT_EQ(p.delay, milliseconds(1));
}

}  // namespace
}  // namespace irohlab::linkemu

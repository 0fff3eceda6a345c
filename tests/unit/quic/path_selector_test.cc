// Path selection (biased RTT, spec §5.6) and the hole-punch schedule (spec §5.4).
#include "quic/path_selector.h"

#include <gtest/gtest.h>

#include <vector>

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;

PathChoice path(std::uint32_t id, PathKind kind, Duration rtt) { return PathChoice{id, kind, rtt}; }

std::optional<std::uint32_t> pick(const std::vector<PathChoice>& paths,
                                  std::optional<std::uint32_t> current = std::nullopt) {
  return select_path(paths, current);
}

// ---- select_path ------------------------------------------------------------------------------

TEST(SelectPath, NoPathsNoChoice) {
  EXPECT_FALSE(pick({}).has_value());
  EXPECT_FALSE(pick({}, 3).has_value());
}

TEST(SelectPath, WithoutCurrentTheLowestRttWins) {
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 40ms), path(1, PathKind::kIpv4, 20ms),
                  path(2, PathKind::kIpv4, 30ms)}),
            1u);
}

TEST(SelectPath, AnyPrimaryPathBeatsAFasterRelay) {
  // A relay is the backup tier: even 50× faster it loses against a direct path.
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 5ms), path(1, PathKind::kIpv4, 250ms)}), 1u);
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 5ms), path(1, PathKind::kIpv6, 250ms)}), 1u);
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 5ms), path(1, PathKind::kCustom, 250ms)}), 1u);
}

TEST(SelectPath, PrimaryReplacesACurrentRelayImmediately) {
  // No hysteresis across tiers: the hole punch just succeeded, use it now.
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 30ms), path(1, PathKind::kIpv4, 31ms)}, 0), 1u);
}

TEST(SelectPath, CurrentPrimaryIsNotGivenUpForAFasterRelay) {
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 1ms), path(1, PathKind::kIpv4, 100ms)}, 1), 1u);
}

TEST(SelectPath, OnlyRelaysPicksTheFastestRelay) {
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 80ms), path(1, PathKind::kRelay, 30ms)}), 1u);
}

TEST(SelectPath, Ipv6CountsThreeMillisecondsFaster) {
  // IPv6 22 ms (biased 19) beats IPv4 20 ms.
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv6, 22ms)}), 1u);
  // IPv6 24 ms (biased 21) loses.
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv6, 24ms)}), 0u);
  // IPv6 23 ms is biased to exactly 20 ms: a tie, broken by the lower id either way round.
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv6, 23ms)}), 0u);
  EXPECT_EQ(pick({path(1, PathKind::kIpv4, 20ms), path(0, PathKind::kIpv6, 23ms)}), 0u);
}

TEST(SelectPath, EqualRttTieBreaksOnLowestIdRegardlessOfOrder) {
  EXPECT_EQ(pick({path(4, PathKind::kIpv4, 20ms), path(2, PathKind::kIpv4, 20ms),
                  path(3, PathKind::kIpv4, 20ms)}),
            2u);
}

TEST(SelectPath, WithinTierKeepsCurrentUnlessFiveMillisecondsBetter) {
  // 4.999 ms better: keep; exactly 5 ms better: switch.
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv4, 15'001us)}, 0), 0u);
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv4, 15ms)}, 0), 1u);
  // A worse candidate is never chosen over the current one.
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv4, 90ms)}, 0), 0u);
}

TEST(SelectPath, HysteresisAppliesToBiasedRtt) {
  // Current IPv6 at 20 ms counts as 17 ms: an IPv4 path must reach 12 ms to replace it.
  EXPECT_EQ(pick({path(0, PathKind::kIpv6, 20ms), path(1, PathKind::kIpv4, 13ms)}, 0), 0u);
  EXPECT_EQ(pick({path(0, PathKind::kIpv6, 20ms), path(1, PathKind::kIpv4, 12ms)}, 0), 1u);
  // Current IPv4 at 20 ms: an IPv6 path at 18 ms (biased 15) is exactly 5 ms better.
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv6, 19ms)}, 0), 0u);
  EXPECT_EQ(pick({path(0, PathKind::kIpv4, 20ms), path(1, PathKind::kIpv6, 18ms)}, 0), 1u);
}

TEST(SelectPath, HysteresisAlsoAppliesBetweenRelays) {
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 40ms), path(1, PathKind::kRelay, 36ms)}, 0), 0u);
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 40ms), path(1, PathKind::kRelay, 35ms)}, 0), 1u);
}

TEST(SelectPath, CustomIsPrimaryTierWithoutBias) {
  EXPECT_EQ(pick({path(0, PathKind::kCustom, 20ms), path(1, PathKind::kIpv4, 20ms)}, 0), 0u);
  EXPECT_EQ(pick({path(0, PathKind::kCustom, 20ms), path(1, PathKind::kIpv4, 15ms)}, 0), 1u);
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 1ms), path(1, PathKind::kCustom, 99ms)}, 0), 1u);
}

TEST(SelectPath, VanishedCurrentFallsBackToTheBest) {
  // The current path was abandoned: no hysteresis against a path that is not there.
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 30ms), path(2, PathKind::kIpv4, 20ms)}, 7), 2u);
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 30ms)}, 1), 0u);
}

TEST(SelectPath, BestAmongSeveralPrimariesBeatsACurrentRelay) {
  EXPECT_EQ(pick({path(0, PathKind::kRelay, 30ms), path(1, PathKind::kIpv4, 60ms),
                  path(2, PathKind::kIpv4, 10ms), path(3, PathKind::kRelay, 2ms)},
                 0),
            2u);
}

// ---- HolePunchSchedule ------------------------------------------------------------------------

const Instant kT0 = Instant(std::chrono::seconds(100));

TEST(HolePunchSchedule, NothingRequestedNothingDue) {
  HolePunchSchedule s;
  EXPECT_FALSE(s.next_time().has_value());
  EXPECT_FALSE(s.due(kT0 + 1h));
  EXPECT_FALSE(s.last_round().has_value());
  EXPECT_FALSE(s.next_upgrade_check().has_value());
}

TEST(HolePunchSchedule, FirstRequestIsDueImmediately) {
  // Right after the handshake there is no previous round to rate-limit against.
  HolePunchSchedule s;
  s.request(kT0, false);
  EXPECT_EQ(s.next_time(), kT0);
  EXPECT_TRUE(s.due(kT0));
  EXPECT_FALSE(s.due(kT0 - 1ns));
}

TEST(HolePunchSchedule, RoundStartedClearsTheRequestAndRecordsTheTime) {
  HolePunchSchedule s;
  s.request(kT0, true);
  s.on_round_started(kT0);
  EXPECT_FALSE(s.next_time().has_value());
  EXPECT_EQ(s.last_round(), kT0);
  EXPECT_EQ(s.next_upgrade_check(), kT0 + 60s);
}

TEST(HolePunchSchedule, WithoutNewCandidatesRoundsAreFiveSecondsApart) {
  HolePunchSchedule s;
  s.request(kT0, true);
  s.on_round_started(kT0);
  s.request(kT0 + 1s, false);
  EXPECT_EQ(s.next_time(), kT0 + 5s);
  EXPECT_FALSE(s.due(kT0 + 5s - 1ns));
  EXPECT_TRUE(s.due(kT0 + 5s));
  // A request made after the interval is due when made.
  HolePunchSchedule t;
  t.request(kT0, true);
  t.on_round_started(kT0);
  t.request(kT0 + 7s, false);
  EXPECT_EQ(t.next_time(), kT0 + 7s);
}

TEST(HolePunchSchedule, NewCandidatesBypassTheMinimumInterval) {
  HolePunchSchedule s;
  s.request(kT0, true);
  s.on_round_started(kT0);
  s.request(kT0 + 1s, true);
  EXPECT_EQ(s.next_time(), kT0 + 1s);
}

TEST(HolePunchSchedule, NewCandidatesAreStickyAndTheEarliestRequestWins) {
  HolePunchSchedule s;
  s.request(kT0, true);
  s.on_round_started(kT0);
  s.request(kT0 + 1s, false);
  s.request(kT0 + 2s, true);  // later, but with new candidates: the whole request is urgent
  EXPECT_EQ(s.next_time(), kT0 + 1s);
  // on_round_started resets the flag: the next plain request is rate-limited again.
  s.on_round_started(kT0 + 1s);
  s.request(kT0 + 2s, false);
  EXPECT_EQ(s.next_time(), kT0 + 6s);
}

TEST(HolePunchSchedule, FailedRoundIsRetriedAfterOneHundredMilliseconds) {
  HolePunchSchedule s;
  s.request(kT0, true);
  s.on_round_failed(kT0);
  EXPECT_EQ(s.next_time(), kT0 + 100ms);
  EXPECT_FALSE(s.due(kT0 + 99ms));
  EXPECT_TRUE(s.due(kT0 + 100ms));
  s.on_round_failed(kT0 + 100ms);
  EXPECT_EQ(s.next_time(), kT0 + 200ms);
  s.on_round_started(kT0 + 200ms);
  EXPECT_FALSE(s.next_time().has_value());
  EXPECT_EQ(s.last_round(), kT0 + 200ms);
}

TEST(HolePunchSchedule, FailureWithoutARequestStillRetries) {
  HolePunchSchedule s;
  s.on_round_failed(kT0);
  EXPECT_EQ(s.next_time(), kT0 + 100ms);
}

TEST(HolePunchSchedule, NoGoodIpPathRequestsAnUpgradeRoundEverySixtySeconds) {
  HolePunchSchedule s;
  // Before any round: path quality alone starts nothing (the handshake request does).
  s.on_path_quality(kT0, false);
  EXPECT_FALSE(s.next_time().has_value());
  s.request(kT0, true);
  s.on_round_started(kT0);
  s.on_path_quality(kT0 + 59s, false);
  EXPECT_FALSE(s.next_time().has_value());
  s.on_path_quality(kT0 + 60s, false);
  EXPECT_EQ(s.next_time(), kT0 + 60s);
  s.on_round_started(kT0 + 60s);
  EXPECT_EQ(s.next_upgrade_check(), kT0 + 120s);
}

TEST(HolePunchSchedule, GoodIpPathRequestsNoUpgrade) {
  HolePunchSchedule s;
  s.request(kT0, true);
  s.on_round_started(kT0);
  s.on_path_quality(kT0 + 60s, true);
  s.on_path_quality(kT0 + 600s, true);
  EXPECT_FALSE(s.next_time().has_value());
}

TEST(HolePunchSchedule, GoodEnoughLatencyConstantMatchesSpec) {
  // The schedule's callers decide "good" by this constant; pin the spec values.
  EXPECT_EQ(kGoodEnoughLatency, 10ms);
  EXPECT_EQ(kHolepunchMinInterval, 5s);
  EXPECT_EQ(kUpgradeInterval, 60s);
  EXPECT_EQ(kHolepunchRetry, 100ms);
  EXPECT_EQ(kRttSwitchingMin, 5ms);
  EXPECT_EQ(kIpv6Bias, 3ms);
}

}  // namespace
}  // namespace iroh::quic

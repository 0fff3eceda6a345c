// NatTraversal (n0 QNT, spec §5.2, §5.3): candidate bookkeeping on both roles, rounds, and the
// exact probe schedule. Pure state machine: no connection, no network, time is passed in.
#include "quic/nat_traversal.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;

const Instant kT0 = Instant(std::chrono::seconds(10));
const SocketAddr kA = SocketAddr::v4({192, 0, 2, 1}, 1000);
const SocketAddr kB = SocketAddr::v4({192, 0, 2, 2}, 2000);
const SocketAddr kC = SocketAddr::v4({198, 51, 100, 3}, 3000);
const SocketAddr kD =
    SocketAddr::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4}, 4000);

ByteArray<8> token(std::uint8_t n) {
  ByteArray<8> t{};
  t.fill(n);
  return t;
}

NatTraversal server(std::size_t max_local = 8, std::size_t max_remote = 8) {
  return NatTraversal(Role::kServer, max_local, max_remote, 333ms);
}
NatTraversal client(std::size_t max_local = 8, std::size_t max_remote = 8) {
  return NatTraversal(Role::kClient, max_local, max_remote, 333ms);
}

// ---- server: announcing candidates -------------------------------------------------------------

TEST(NatTraversal, ServerAssignsSequenceNumbersFromZeroAndIgnoresKnownAddresses) {
  auto nt = server();
  auto a = nt.add_local_address(kA);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, std::optional<std::uint64_t>(0));
  auto b = nt.add_local_address(kB);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*b, std::optional<std::uint64_t>(1));
  // Re-adding a known candidate must not produce a second ADD_ADDRESS.
  auto again = nt.add_local_address(kA);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->has_value());
  EXPECT_EQ(nt.local_address(0), kA);
  EXPECT_EQ(nt.local_address(1), kB);
  EXPECT_FALSE(nt.local_address(2).has_value());
}

TEST(NatTraversal, ServerRemovalReportsSequenceAndNumbersAreNeverReused) {
  auto nt = server();
  ASSERT_TRUE(nt.add_local_address(kA).ok());
  ASSERT_TRUE(nt.add_local_address(kB).ok());
  EXPECT_EQ(nt.remove_local_address(kA), std::optional<std::uint64_t>(0));
  EXPECT_FALSE(nt.remove_local_address(kA).has_value());  // already gone
  EXPECT_FALSE(nt.remove_local_address(kC).has_value());  // never announced
  EXPECT_TRUE(nt.local_sequence_removed(0));
  EXPECT_FALSE(nt.local_sequence_removed(1));
  EXPECT_FALSE(nt.local_address(0).has_value());  // not retransmitted once withdrawn
  // Re-announcing a withdrawn address gets a fresh number: the client may still hold seq 0's
  // REMOVE_ADDRESS in flight.
  auto again = nt.add_local_address(kA);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, std::optional<std::uint64_t>(2));
}

TEST(NatTraversal, ServerLocalLimitIsThePeersAndRemovalFreesASlot) {
  auto nt = server(/*max_local=*/2);
  ASSERT_TRUE(nt.add_local_address(kA).ok());
  ASSERT_TRUE(nt.add_local_address(kB).ok());
  EXPECT_FALSE(nt.add_local_address(kC).ok());
  // A known address is still a no-op, not an error, at the limit.
  EXPECT_TRUE(nt.add_local_address(kA).ok());
  ASSERT_TRUE(nt.remove_local_address(kA).has_value());
  auto c = nt.add_local_address(kC);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(*c, std::optional<std::uint64_t>(2));
}

TEST(NatTraversal, ClientCannotAnnounceAddresses) {
  auto nt = client();
  EXPECT_FALSE(nt.add_local_address(kA).ok());
}

// ---- server: REACH_OUT rounds
// ---------------------------------------------------------------------

TEST(NatTraversal, ServerReachOutCollectsAddressesAndProbesThemAtOnce) {
  auto nt = server();
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kA).ok());
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kB).ok());
  EXPECT_EQ(nt.round(), 1u);
  EXPECT_EQ(nt.remote_addresses(), (std::vector<SocketAddr>{kA, kB}));
  EXPECT_EQ(nt.next_probe_time(), kT0);
  std::vector<SocketAddr> probed;
  while (auto a = nt.next_probe_due(kT0)) probed.push_back(*a);
  std::sort(probed.begin(), probed.end());
  EXPECT_EQ(probed, (std::vector<SocketAddr>{kA, kB}));
}

TEST(NatTraversal, ServerIgnoresDuplicateReachOutInTheSameRound) {
  auto nt = server(8, /*max_remote=*/2);
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kA).ok());
  ASSERT_TRUE(nt.next_probe_due(kT0).has_value());
  // A retransmitted REACH_OUT neither counts against the limit nor restarts the schedule.
  ASSERT_TRUE(nt.on_reach_out(kT0 + 1ms, 1, kA).ok());
  ASSERT_TRUE(nt.on_reach_out(kT0 + 1ms, 1, kB).ok());
  EXPECT_EQ(nt.remote_addresses(), (std::vector<SocketAddr>{kA, kB}));
  EXPECT_EQ(nt.next_probe_due(kT0 + 1ms), kB);
  EXPECT_FALSE(nt.next_probe_due(kT0 + 1ms).has_value());  // kA's retry is not due yet
}

TEST(NatTraversal, ServerNewerRoundForgetsTheOldOneAndOlderRoundIsIgnored) {
  auto nt = server();
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kA).ok());
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kB).ok());
  ASSERT_EQ(nt.next_probe_due(kT0).has_value(), true);
  nt.on_probe_sent(kA, token(1));
  ASSERT_TRUE(nt.on_reach_out(kT0 + 1s, 3, kC).ok());
  EXPECT_EQ(nt.round(), 3u);
  EXPECT_EQ(nt.remote_addresses(), std::vector<SocketAddr>{kC});
  // The old round's probes are gone: only kC is probed, and old tokens no longer match.
  EXPECT_EQ(nt.next_probe_due(kT0 + 1s), kC);
  EXPECT_FALSE(nt.next_probe_due(kT0 + 1s).has_value());
  EXPECT_FALSE(nt.on_path_response(token(1), kA).has_value());
  // A late REACH_OUT of round 2 (older than 3): ignored, no error, nothing probed.
  ASSERT_TRUE(nt.on_reach_out(kT0 + 2s, 2, kD).ok());
  EXPECT_EQ(nt.round(), 3u);
  EXPECT_EQ(nt.remote_addresses(), std::vector<SocketAddr>{kC});
}

TEST(NatTraversal, ServerRejectsMoreReachOutAddressesThanItsLimit) {
  auto nt = server(8, /*max_remote=*/2);
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kA).ok());
  ASSERT_TRUE(nt.on_reach_out(kT0, 1, kB).ok());
  EXPECT_FALSE(nt.on_reach_out(kT0, 1, kC).ok());
  EXPECT_EQ(nt.remote_addresses().size(), 2u);
  // The limit is per round: a new round starts from zero.
  EXPECT_TRUE(nt.on_reach_out(kT0, 2, kC).ok());
  EXPECT_TRUE(nt.on_reach_out(kT0, 2, kD).ok());
  EXPECT_FALSE(nt.on_reach_out(kT0, 2, kA).ok());
}

// ---- client: the server's candidates -----------------------------------------------------------

TEST(NatTraversal, ClientAddAddressReportsChangesOnly) {
  auto nt = client();
  auto r = nt.on_add_address(kT0, 0, kA);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  // Retransmission of the same frame.
  r = nt.on_add_address(kT0, 0, kA);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  // Same address under a new number: the candidate set did not change.
  r = nt.on_add_address(kT0, 5, kA);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(*r);
  r = nt.on_add_address(kT0, 1, kB);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(*r);
  EXPECT_EQ(nt.remote_addresses(), (std::vector<SocketAddr>{kA, kB}));  // deduplicated
}

TEST(NatTraversal, ClientRejectsMoreCandidatesThanItsLimit) {
  auto nt = client(8, /*max_remote=*/2);
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  ASSERT_TRUE(nt.on_add_address(kT0, 1, kB).ok());
  EXPECT_FALSE(nt.on_add_address(kT0, 2, kC).ok());
  EXPECT_TRUE(nt.on_add_address(kT0, 1, kB).ok());  // a retransmission is fine at the limit
  EXPECT_EQ(nt.remote_addresses().size(), 2u);
}

TEST(NatTraversal, ClientRemoveAddressStopsProbingUnlessStillAnnounced) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  ASSERT_TRUE(nt.on_add_address(kT0, 1, kA).ok());  // kA under two numbers
  ASSERT_TRUE(nt.on_add_address(kT0, 2, kB).ok());
  nt.start_round(kT0, {kC});
  EXPECT_FALSE(nt.on_remove_address(7));  // unknown
  EXPECT_FALSE(nt.on_remove_address(0));  // kA is still announced as seq 1
  EXPECT_EQ(nt.remote_addresses(), (std::vector<SocketAddr>{kA, kB}));
  EXPECT_TRUE(nt.on_remove_address(2));
  EXPECT_EQ(nt.remote_addresses(), std::vector<SocketAddr>{kA});
  // kB is no longer probed; kA still is.
  std::vector<SocketAddr> probed;
  while (auto a = nt.next_probe_due(kT0)) probed.push_back(*a);
  EXPECT_EQ(probed, std::vector<SocketAddr>{kA});
}

TEST(NatTraversal, ClientRoundsCountUpAndProbeEveryServerCandidate) {
  auto nt = client(/*max_local=*/2);
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  ASSERT_TRUE(nt.on_add_address(kT0, 1, kB).ok());
  EXPECT_EQ(nt.round(), 0u);
  EXPECT_FALSE(nt.next_probe_time().has_value());  // nothing before the first round
  EXPECT_EQ(nt.start_round(kT0, {kC, kC, kD, kA}), 1u);
  // REACH_OUTs: deduplicated and capped at the server's limit (max_local).
  EXPECT_EQ(nt.reach_out_addresses(), (std::vector<SocketAddr>{kC, kD}));
  EXPECT_EQ(nt.next_probe_time(), kT0);
  std::vector<SocketAddr> probed;
  while (auto a = nt.next_probe_due(kT0)) probed.push_back(*a);
  EXPECT_EQ(probed, (std::vector<SocketAddr>{kA, kB}));
  EXPECT_EQ(nt.start_round(kT0 + 5s, {kC}), 2u);
  EXPECT_EQ(nt.start_round(kT0 + 10s, {kC}), 3u);
  EXPECT_EQ(nt.reach_out_addresses(), std::vector<SocketAddr>{kC});
}

// ---- the probe schedule
// ---------------------------------------------------------------------------

// The spec's schedule with iroh's 333 ms initial RTT: 9 probes, the gaps base, base, 2·base, …
// with base = 33.3 ms, the last gap capped at 2 s.
TEST(NatTraversal, ProbeScheduleIsNineProbesWithExactDoublingDelaysCappedAtTwoSeconds) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  nt.start_round(kT0, {kC});
  const std::vector<Duration> expected = {33'300us,  33'300us,  66'600us,    133'200us,
                                          266'400us, 532'800us, 1'065'600us, 2'000'000us};
  std::vector<Instant> sent;
  Instant now = kT0;
  for (int i = 0; i < 20; ++i) {
    auto t = nt.next_probe_time();
    if (!t) break;
    ASSERT_GE(*t, now);
    now = *t;
    // Not a nanosecond early.
    EXPECT_FALSE(nt.next_probe_due(now - 1ns).has_value()) << "probe " << i;
    auto a = nt.next_probe_due(now);
    ASSERT_EQ(a, kA) << "probe " << i;
    nt.on_probe_sent(kA, token(static_cast<std::uint8_t>(i)));
    sent.push_back(now);
  }
  ASSERT_EQ(sent.size(), kMaxNatProbeAttempts);
  std::vector<Duration> gaps;
  for (std::size_t i = 1; i < sent.size(); ++i) gaps.push_back(sent[i] - sent[i - 1]);
  EXPECT_EQ(gaps, expected);
  // Exhausted: nothing more, ever, in this round.
  EXPECT_FALSE(nt.next_probe_time().has_value());
  EXPECT_FALSE(nt.next_probe_due(now + 1h).has_value());
  // A new round starts a fresh schedule.
  nt.start_round(now + 1h, {kC});
  EXPECT_EQ(nt.next_probe_time(), now + 1h);
}

TEST(NatTraversal, ProbeDelaysScaleWithInitialRtt) {
  // base = initial_rtt / 10: 100 ms → gaps 10, 10, 20, 40, … ms.
  NatTraversal nt(Role::kClient, 8, 8, 100ms);
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  nt.start_round(kT0, {kC});
  ASSERT_EQ(nt.next_probe_due(kT0), kA);
  EXPECT_EQ(nt.next_probe_time(), kT0 + 10ms);
  ASSERT_EQ(nt.next_probe_due(kT0 + 10ms), kA);
  EXPECT_EQ(nt.next_probe_time(), kT0 + 20ms);
  ASSERT_EQ(nt.next_probe_due(kT0 + 20ms), kA);
  EXPECT_EQ(nt.next_probe_time(), kT0 + 40ms);
}

TEST(NatTraversal, LateProbeSchedulesTheNextRelativeToWhenItWasSent) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  nt.start_round(kT0, {kC});
  // The driver got to it 500 ms late: the following gap is still measured from the send.
  ASSERT_EQ(nt.next_probe_due(kT0 + 500ms), kA);
  EXPECT_EQ(nt.next_probe_time(), kT0 + 500ms + 33'300us);
}

TEST(NatTraversal, ProbingAnAlreadyProbedAddressDoesNotRestartItsSchedule) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  nt.start_round(kT0, {kC});
  ASSERT_EQ(nt.next_probe_due(kT0), kA);
  nt.probe(kT0 + 1ms, kA);
  EXPECT_EQ(nt.next_probe_time(), kT0 + 33'300us);
  // A new address joins the round immediately.
  nt.probe(kT0 + 1ms, kB);
  EXPECT_EQ(nt.next_probe_time(), kT0 + 1ms);
  EXPECT_EQ(nt.next_probe_due(kT0 + 1ms), kB);
}

// ---- responses
// --------------------------------------------------------------------------------------

TEST(NatTraversal, PathResponseNeedsTheTokenAndTheProbedSourceAddress) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  ASSERT_TRUE(nt.on_add_address(kT0, 1, kB).ok());
  nt.start_round(kT0, {kC});
  while (auto a = nt.next_probe_due(kT0)) nt.on_probe_sent(*a, token(*a == kA ? 1 : 2));
  // Unknown token.
  EXPECT_FALSE(nt.on_path_response(token(9), kA).has_value());
  // Right token, wrong address: it did not come back through the hole we punched.
  EXPECT_FALSE(nt.on_path_response(token(1), kB).has_value());
  EXPECT_FALSE(nt.on_path_response(token(1), kC).has_value());
  // The rejected responses did not stop probing kA.
  const Instant retry = kT0 + 33'300us;
  EXPECT_EQ(nt.next_probe_time(), retry);
  // Right token from the probed address: the hole is open, kA is no longer probed.
  EXPECT_EQ(nt.on_path_response(token(1), kA), kA);
  std::vector<SocketAddr> probed;
  while (auto a = nt.next_probe_due(retry)) probed.push_back(*a);
  EXPECT_EQ(probed, std::vector<SocketAddr>{kB});
}

TEST(NatTraversal, EveryProbeTokenOfTheRoundIsAccepted) {
  // The answer to the first probe may arrive after the second was sent.
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  nt.start_round(kT0, {kC});
  ASSERT_EQ(nt.next_probe_due(kT0), kA);
  nt.on_probe_sent(kA, token(1));
  ASSERT_EQ(nt.next_probe_due(kT0 + 33'300us), kA);
  nt.on_probe_sent(kA, token(2));
  EXPECT_EQ(nt.on_path_response(token(1), kA), kA);
  EXPECT_FALSE(nt.next_probe_time().has_value());
}

TEST(NatTraversal, TokensOfAPreviousRoundDoNotMatch) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  nt.start_round(kT0, {kC});
  ASSERT_EQ(nt.next_probe_due(kT0), kA);
  nt.on_probe_sent(kA, token(1));
  nt.start_round(kT0 + 5s, {kC});
  EXPECT_FALSE(nt.on_path_response(token(1), kA).has_value());
}

TEST(NatTraversal, StopProbingEndsTheScheduleForThatAddressOnly) {
  auto nt = client();
  ASSERT_TRUE(nt.on_add_address(kT0, 0, kA).ok());
  ASSERT_TRUE(nt.on_add_address(kT0, 1, kB).ok());
  nt.start_round(kT0, {kC});
  nt.stop_probing(kA);
  nt.stop_probing(kD);  // unknown: harmless
  std::vector<SocketAddr> probed;
  for (Instant t = kT0; t < kT0 + 10s; t += 1ms) {
    while (auto a = nt.next_probe_due(t)) probed.push_back(*a);
  }
  EXPECT_EQ(probed, std::vector<SocketAddr>(kMaxNatProbeAttempts, kB));
}

}  // namespace
}  // namespace iroh::quic

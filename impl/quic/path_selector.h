// Path selection and hole-punch scheduling: iroh's policy on top of the multipath + QNT engine
// (spec §5.4, §5.6; iroh biased_rtt_path_selector.rs and remote_state.rs). Sans-IO: the endpoint
// feeds in paths, RTTs, candidate changes and the time, and applies what comes out (path
// statuses, PATH_ABANDONs, NAT traversal rounds) to its connections.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "base/time.h"

namespace iroh::quic {

using namespace std::chrono_literals;

enum class PathKind : std::uint8_t { kIpv4, kIpv6, kRelay, kCustom };

inline constexpr Duration kRttSwitchingMin = 5ms;  // within a tier, switch only if this much better
inline constexpr Duration kIpv6Bias = 3ms;         // IPv6 counts as this much faster
inline constexpr Duration kGoodEnoughLatency = 10ms;
inline constexpr Duration kHolepunchMinInterval = 5s;  // between rounds without new candidates
inline constexpr Duration kUpgradeInterval = 60s;      // re-punch while no IP path is good enough
inline constexpr Duration kHolepunchRetry = 100ms;     // after a round could not start

struct PathChoice {
  std::uint32_t id = 0;
  PathKind kind = PathKind::kIpv4;
  Duration rtt{};  // smoothed (the initial RTT until a sample exists)
};

// Biased-RTT selection (spec §5.6): IPv4, IPv6 and custom paths are the primary tier, relay paths
// the backup tier; primary always beats backup. Within a tier the sort key is RTT + bias (IPv6
// −3 ms) and the current path is kept unless a candidate is at least 5 ms better. Returns the
// path to use (nullopt: no paths).
std::optional<std::uint32_t> select_path(std::span<const PathChoice> paths,
                                         std::optional<std::uint32_t> current);

// When the QNT client starts hole-punch rounds (spec §5.4): right after the handshake, when the
// local or remote candidates change, and every 60 s while no IP path is good enough — but without
// new candidates not more often than every 5 s.
class HolePunchSchedule {
 public:
  // Asks for a round (`new_candidates`: the candidate sets changed since the last round).
  void request(Instant now, bool new_candidates);
  // When the requested round may start (nullopt: none requested).
  std::optional<Instant> next_time() const;
  bool due(Instant now) const {
    auto t = next_time();
    return t && *t <= now;
  }
  void on_round_started(Instant now);
  // The round could not start (e.g. no CIDs yet): try again shortly.
  void on_round_failed(Instant now);
  // Called periodically with whether some IP path is good enough (RTT ≤ 10 ms): if not, a round
  // is requested every 60 s.
  void on_path_quality(Instant now, bool good_ip_path);
  std::optional<Instant> last_round() const { return last_round_; }
  std::optional<Instant> next_upgrade_check() const;

 private:
  std::optional<Instant> requested_;
  bool new_candidates_ = false;
  std::optional<Instant> last_round_;
  std::optional<Instant> retry_at_;
};

}  // namespace iroh::quic

// Path selection (spec §5.6) and hole-punch scheduling (spec §5.4).
#include "quic/path_selector.h"

#include <algorithm>

namespace iroh::quic {

namespace {

int tier(PathKind k) { return k == PathKind::kRelay ? 1 : 0; }

Duration biased(const PathChoice& p) {
  return p.kind == PathKind::kIpv6 ? p.rtt - kIpv6Bias : p.rtt;
}

bool sorts_before(const PathChoice& a, const PathChoice& b) {
  if (tier(a.kind) != tier(b.kind)) return tier(a.kind) < tier(b.kind);
  if (biased(a) != biased(b)) return biased(a) < biased(b);
  return a.id < b.id;
}

}  // namespace

std::optional<std::uint32_t> select_path(std::span<const PathChoice> paths,
                                         std::optional<std::uint32_t> current) {
  if (paths.empty()) return std::nullopt;
  const PathChoice* best = &paths.front();
  for (const auto& p : paths) {
    if (sorts_before(p, *best)) best = &p;
  }
  if (!current) return best->id;
  const PathChoice* cur = nullptr;
  for (const auto& p : paths) {
    if (p.id == *current) cur = &p;
  }
  if (!cur) return best->id;
  if (tier(best->kind) < tier(cur->kind)) return best->id;  // primary beats backup at once
  if (tier(best->kind) > tier(cur->kind)) return cur->id;
  // Same tier: only a clear improvement is worth a switch (avoids flapping between equals).
  if (biased(*best) + kRttSwitchingMin <= biased(*cur)) return best->id;
  return cur->id;
}

void HolePunchSchedule::request(Instant now, bool new_candidates) {
  if (!requested_ || now < *requested_) requested_ = now;
  new_candidates_ = new_candidates_ || new_candidates;
}

std::optional<Instant> HolePunchSchedule::next_time() const {
  if (retry_at_) return retry_at_;
  if (!requested_) return std::nullopt;
  if (!new_candidates_ && last_round_ && *requested_ < *last_round_ + kHolepunchMinInterval) {
    return *last_round_ + kHolepunchMinInterval;
  }
  return requested_;
}

void HolePunchSchedule::on_round_started(Instant now) {
  last_round_ = now;
  requested_.reset();
  retry_at_.reset();
  new_candidates_ = false;
}

void HolePunchSchedule::on_round_failed(Instant now) {
  retry_at_ = now + kHolepunchRetry;
  if (!requested_) requested_ = now;
}

void HolePunchSchedule::on_path_quality(Instant now, bool good_ip_path) {
  if (good_ip_path || !last_round_) return;
  if (now >= *last_round_ + kUpgradeInterval) request(now, false);
}

std::optional<Instant> HolePunchSchedule::next_upgrade_check() const {
  if (!last_round_) return std::nullopt;
  return *last_round_ + kUpgradeInterval;
}

}  // namespace iroh::quic

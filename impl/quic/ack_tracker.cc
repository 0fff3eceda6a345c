#include "quic/ack_tracker.h"

#include <algorithm>
#include <vector>

namespace iroh::quic {

AckTracker::AckTracker(PacketNumberSpace space, Duration max_ack_delay)
    : space_(space), max_ack_delay_(max_ack_delay) {}

bool AckTracker::is_duplicate(std::uint64_t pn) const {
  return pn < dedup_floor_ || received_.contains(pn);
}

bool AckTracker::reordered(std::uint64_t pn) const {
  if (reordering_threshold_ == 0) return false;
  if (reordering_threshold_ == 1) {
    // RFC 9000 §13.2.1: below the largest ack-eliciting packet, or above it with a gap.
    if (!largest_ack_eliciting_) return false;
    const std::uint64_t la = *largest_ack_eliciting_;
    if (pn < la) return true;
    const std::uint64_t from = std::max(la + 1, dedup_floor_);
    return from < pn && !received_.contains(from, pn);
  }
  // Ack-frequency draft §6.2 (called after pn was recorded): immediate when the smallest
  // missing packet not yet reported is at least reordering_threshold below Largest Unacked.
  if (!largest_ack_eliciting_) return false;
  const std::uint64_t largest_unacked = *largest_ack_eliciting_;
  std::uint64_t largest_reported = 0;
  if (largest_acked_by_us_ && *largest_acked_by_us_ + 1 >= reordering_threshold_) {
    largest_reported = *largest_acked_by_us_ + 1 - reordering_threshold_;
  }
  const std::uint64_t missing = received_.contiguous_end(std::max(largest_reported, dedup_floor_));
  return missing < largest_unacked && largest_unacked - missing >= reordering_threshold_;
}

void AckTracker::on_packet_received(Instant now, std::uint64_t pn, bool ack_eliciting,
                                    EcnCodepoint ecn) {
  last_receive_ = now;
  bool immediate = false;
  if (ack_eliciting && reordering_threshold_ == 1) immediate = reordered(pn);

  received_.insert(pn, pn + 1);
  while (received_.interval_count() > kMaxTrackedRanges) {
    received_.pop_first();
    dedup_floor_ = received_.first()->start;
  }
  to_ack_.insert(pn, pn + 1);
  while (to_ack_.interval_count() > kMaxTrackedRanges) to_ack_.pop_first();

  if (!largest_ || pn > *largest_) {
    largest_ = pn;
    largest_time_ = now;
  }
  if (ack_eliciting && (!largest_ack_eliciting_ || pn > *largest_ack_eliciting_)) {
    largest_ack_eliciting_ = pn;
  }
  if (ack_eliciting && reordering_threshold_ > 1) immediate = reordered(pn);

  switch (ecn) {
    case EcnCodepoint::kNotEct:
      break;
    case EcnCodepoint::kEct0:
      ++ecn_.ect0;
      ecn_seen_ = true;
      break;
    case EcnCodepoint::kEct1:
      ++ecn_.ect1;
      ecn_seen_ = true;
      break;
    case EcnCodepoint::kCe:
      ++ecn_.ce;
      ecn_seen_ = true;
      immediate = immediate || ack_eliciting;  // RFC 9000 §13.2.1: CE is acknowledged at once
      break;
  }

  if (!ack_eliciting) return;
  ++unacked_ack_eliciting_;
  if (space_ != PacketNumberSpace::kApplicationData) immediate = true;
  if (unacked_ack_eliciting_ > ack_eliciting_threshold_) immediate = true;
  if (immediate) {
    deadline_ = deadline_ ? std::min(*deadline_, now) : now;
  } else if (!deadline_) {
    deadline_ = now + max_ack_delay_;
  }
}

bool AckTracker::ack_due(Instant now) const {
  const auto d = ack_deadline();
  return d && *d <= now;
}

std::optional<Instant> AckTracker::ack_deadline() const {
  if (unacked_ack_eliciting_ == 0) return std::nullopt;
  if (immediate_) return deadline_ ? std::min(*deadline_, last_receive_) : last_receive_;
  return deadline_;
}

std::optional<frame::Ack> AckTracker::build_ack(Instant now, std::uint64_t ack_delay_exponent,
                                                std::size_t max_ranges) {
  if (to_ack_.empty() || max_ranges == 0) return std::nullopt;
  std::vector<frame::PacketInterval> intervals;
  intervals.reserve(std::min(max_ranges, to_ack_.interval_count()));
  for (auto it = to_ack_.rbegin(); it != to_ack_.rend() && intervals.size() < max_ranges; ++it) {
    intervals.push_back({it->first, it->second - 1});
  }
  std::uint64_t delay = 0;
  if (largest_ && intervals.front().largest == *largest_ && now > largest_time_) {
    const auto us = static_cast<std::uint64_t>(to_micros(now - largest_time_));
    delay = ack_delay_exponent >= 64 ? 0 : us >> ack_delay_exponent;
  }
  std::optional<frame::EcnCounts> ecn;
  if (ecn_seen_) ecn = ecn_;
  last_built_largest_ = intervals.front().largest;
  return frame::make_ack(intervals, delay, ecn);
}

void AckTracker::on_ack_sent() {
  unacked_ack_eliciting_ = 0;
  deadline_.reset();
  immediate_ = false;
  if (last_built_largest_) {
    largest_acked_by_us_ = largest_acked_by_us_
                               ? std::max(*largest_acked_by_us_, *last_built_largest_)
                               : *last_built_largest_;
  }
}

void AckTracker::on_ack_acknowledged(std::uint64_t largest_in_that_ack) {
  if (largest_in_that_ack == UINT64_MAX) {
    to_ack_.clear();
    return;
  }
  to_ack_.remove_below(largest_in_that_ack + 1);
}

void AckTracker::set_ack_frequency(std::uint64_t ack_eliciting_threshold, Duration max_ack_delay,
                                   std::uint64_t reordering_threshold) {
  ack_eliciting_threshold_ = ack_eliciting_threshold;
  max_ack_delay_ = max_ack_delay;
  reordering_threshold_ = reordering_threshold;
}

}  // namespace iroh::quic

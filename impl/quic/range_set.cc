#include "quic/range_set.h"

#include <algorithm>
#include <iterator>

namespace iroh::quic {

std::uint64_t RangeSet::insert(std::uint64_t start, std::uint64_t end) {
  if (start >= end) return 0;
  std::uint64_t added = end - start;
  // First interval that could touch [start, end): the one starting at or before start.
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second >= start) it = prev;
  }
  std::uint64_t new_start = start;
  std::uint64_t new_end = end;
  while (it != ranges_.end() && it->first <= end) {
    // Overlap (or adjacency) with [it->first, it->second).
    const std::uint64_t ov_start = std::max(it->first, start);
    const std::uint64_t ov_end = std::min(it->second, end);
    if (ov_end > ov_start) added -= ov_end - ov_start;
    new_start = std::min(new_start, it->first);
    new_end = std::max(new_end, it->second);
    it = ranges_.erase(it);
  }
  ranges_.emplace(new_start, new_end);
  return added;
}

std::uint64_t RangeSet::remove(std::uint64_t start, std::uint64_t end) {
  if (start >= end) return 0;
  std::uint64_t removed = 0;
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > start) it = prev;
  }
  while (it != ranges_.end() && it->first < end) {
    const std::uint64_t s = it->first;
    const std::uint64_t e = it->second;
    it = ranges_.erase(it);
    removed += std::min(e, end) - std::max(s, start);
    if (s < start) ranges_.emplace(s, start);
    if (e > end) {
      ranges_.emplace(end, e);
      break;
    }
  }
  return removed;
}

bool RangeSet::contains(std::uint64_t value) const {
  auto it = ranges_.upper_bound(value);
  if (it == ranges_.begin()) return false;
  --it;
  return value < it->second;
}

bool RangeSet::contains(std::uint64_t start, std::uint64_t end) const {
  if (start >= end) return true;
  auto it = ranges_.upper_bound(start);
  if (it == ranges_.begin()) return false;
  --it;
  return it->first <= start && end <= it->second;
}

std::uint64_t RangeSet::value_count() const {
  std::uint64_t n = 0;
  for (const auto& [s, e] : ranges_) n += e - s;
  return n;
}

std::optional<Range> RangeSet::first() const {
  if (ranges_.empty()) return std::nullopt;
  return Range{ranges_.begin()->first, ranges_.begin()->second};
}

std::optional<Range> RangeSet::last() const {
  if (ranges_.empty()) return std::nullopt;
  return Range{ranges_.rbegin()->first, ranges_.rbegin()->second};
}

std::optional<Range> RangeSet::first_at_or_after(std::uint64_t start) const {
  auto it = ranges_.upper_bound(start);
  if (it != ranges_.begin()) {
    auto prev = std::prev(it);
    if (prev->second > start) return Range{start, prev->second};
  }
  if (it == ranges_.end()) return std::nullopt;
  return Range{it->first, it->second};
}

std::optional<Range> RangeSet::pop_first(std::uint64_t max_len) {
  if (ranges_.empty() || max_len == 0) return std::nullopt;
  auto it = ranges_.begin();
  const std::uint64_t s = it->first;
  const std::uint64_t e = it->second;
  ranges_.erase(it);
  if (e - s > max_len) {
    ranges_.emplace(s + max_len, e);
    return Range{s, s + max_len};
  }
  return Range{s, e};
}

std::uint64_t RangeSet::contiguous_end(std::uint64_t value) const {
  auto it = ranges_.upper_bound(value);
  if (it == ranges_.begin()) return value;
  --it;
  return value < it->second ? it->second : value;
}

void RangeSet::remove_below(std::uint64_t value) {
  if (value == 0) return;
  remove(0, value);
}

}  // namespace iroh::quic

// RangeSet: a set of disjoint, non-adjacent half-open intervals [start, end) over uint64.
//
// The one data structure every part of the engine needs: received packet numbers (ACK ranges),
// received stream/CRYPTO bytes (reassembly), acknowledged and lost stream bytes (retransmission).
// Adjacent or overlapping insertions merge, so the set is always in canonical form and two sets
// with the same members compare equal.
#pragma once

#include <cstdint>
#include <map>
#include <optional>

namespace iroh::quic {

struct Range {
  std::uint64_t start = 0;
  std::uint64_t end = 0;  // exclusive
  std::uint64_t size() const { return end - start; }
  bool operator==(const Range&) const = default;
};

class RangeSet {
 public:
  using Map = std::map<std::uint64_t, std::uint64_t>;  // start -> end

  // Adds [start, end); returns how many values were not in the set before.
  std::uint64_t insert(std::uint64_t start, std::uint64_t end);
  std::uint64_t insert(Range r) { return insert(r.start, r.end); }
  // Removes [start, end); returns how many values were removed.
  std::uint64_t remove(std::uint64_t start, std::uint64_t end);

  bool contains(std::uint64_t value) const;
  // Whether all of [start, end) is in the set (true for an empty interval).
  bool contains(std::uint64_t start, std::uint64_t end) const;

  bool empty() const { return ranges_.empty(); }
  std::size_t interval_count() const { return ranges_.size(); }
  // Total number of values in the set.
  std::uint64_t value_count() const;
  std::optional<Range> first() const;
  std::optional<Range> last() const;
  // The first interval that intersects [start, ∞), clipped to start.
  std::optional<Range> first_at_or_after(std::uint64_t start) const;
  // Removes and returns the first interval, at most `max_len` values long.
  std::optional<Range> pop_first(std::uint64_t max_len = UINT64_MAX);
  // If the set contains `value`, the end of the interval holding it; else `value`. Useful for
  // "how far is the stream contiguous from offset x".
  std::uint64_t contiguous_end(std::uint64_t value) const;
  // Drops every value < `value`.
  void remove_below(std::uint64_t value);
  void clear() { ranges_.clear(); }

  // Ascending iteration over {start, end} pairs; reverse with rbegin()/rend().
  Map::const_iterator begin() const { return ranges_.begin(); }
  Map::const_iterator end() const { return ranges_.end(); }
  Map::const_reverse_iterator rbegin() const { return ranges_.rbegin(); }
  Map::const_reverse_iterator rend() const { return ranges_.rend(); }

  bool operator==(const RangeSet&) const = default;

 private:
  Map ranges_;
};

}  // namespace iroh::quic

// Time for sans-IO protocol code.
//
// Protocol code never reads a clock: drivers pass `now` in. Instant is a point on a monotonic
// timeline whose epoch the driver chooses (the Asio driver: steady_clock; the simulators: virtual
// time starting at zero). Having our own clock type, with no now(), means a protocol unit cannot
// accidentally call std::chrono::steady_clock::now() and still compile.
#pragma once

#include <chrono>
#include <cstdint>

namespace iroh {

struct MonotonicClock {
  using rep = std::int64_t;
  using period = std::nano;
  using duration = std::chrono::nanoseconds;
  using time_point = std::chrono::time_point<MonotonicClock>;
  static constexpr bool is_steady = true;
  // Deliberately no now(): see the file comment.
};

using Duration = std::chrono::nanoseconds;
using Instant = MonotonicClock::time_point;

// An Instant `d` after the epoch (virtual time, tests).
constexpr Instant instant_at(Duration d) { return Instant(d); }

// Durations in the units protocols speak.
constexpr std::int64_t to_micros(Duration d) {
  return std::chrono::duration_cast<std::chrono::microseconds>(d).count();
}
constexpr double to_millis_f(Duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

}  // namespace iroh

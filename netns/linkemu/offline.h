// --simulate: the same link model driven in virtual time, no interfaces, no root.
//
// Offers `count` frames of `frame_bytes` every `interval` to one direction of the link and reports
// what came out. Long runs (a million frames in about a second) check a profile's long-run loss,
// delay and rate where a wall-clock lab measurement can only afford a few hundred frames.
#pragma once

#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "sim/virtual_link.h"

namespace irohlab::linkemu {

struct OfflineRun {
  std::uint64_t count = 100'000;
  std::size_t frame_bytes = 200;
  iroh::Duration interval{0};  // 0 = offer everything at once (a burst)
};

nlohmann::json simulate(const iroh::sim::LinkProfile& profile, std::uint64_t seed,
                        const OfflineRun& run);

}  // namespace irohlab::linkemu

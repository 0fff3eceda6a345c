// Link profiles for the emulator: JSON in, the simulator's LinkProfile out.
//
// The JSON speaks the units people quote for links (ms, kbit/s, percent, an IP MTU); the model
// speaks nanoseconds, bit/s, probabilities and frame bytes. Every key is optional; unknown keys are
// an error so a typo cannot silently leave a link unimpaired.
//
//   delay_ms, jitter_ms         one-way propagation delay; uniform jitter ±jitter_ms
//   rate_kbit                   bottleneck rate (0 = unlimited), counted on Ethernet frames
//   queue_bytes | buffer_ms     bottleneck queue: bytes, or what rate_kbit drains in buffer_ms
//   loss_pct                    long-run loss; Gilbert–Elliott when loss_burst_pkts >= 2
//   loss_burst_pkts             mean burst B: r = 1/B, p = L/(B·(1−L)), loss in bad state 1
//                               (how patchbay maps the same pair onto netem's gemodel)
//   gilbert_p, gilbert_r,       raw Gilbert–Elliott instead of loss_burst_pkts
//     loss_in_bad_pct
//   reorder_pct,                held-back fraction and its extra hold
//     reorder_delay_ms
//   duplicate_pct
//   mtu                         largest IP packet (the Ethernet header is not counted)
//   duty_cycle_pct              radio duty cycle d: after T on air, silence for T·(100/d − 1)
//   label, description, source  ignored (documentation travelling with a profile)
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "sim/virtual_link.h"

namespace irohlab::linkemu {

// Bytes of the Ethernet header in front of the IP packet on an untagged frame.
inline constexpr std::size_t kEthernetHeaderBytes = 14;

struct ProfileError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The model profile for frames: mtu is the IP MTU plus the Ethernet header.
iroh::sim::LinkProfile profile_from_json(const nlohmann::json& j);
iroh::sim::LinkProfile profile_from_json_text(const std::string& text);

// The effective model parameters, for the stats file and --print-profile.
nlohmann::json profile_to_json(const iroh::sim::LinkProfile& p);

}  // namespace irohlab::linkemu

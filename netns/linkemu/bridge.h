// The real-time driver: two interfaces, one VirtualLink per direction, a monotonic clock.
//
// Frames read on interface A go through the a→b link and leave on B at the model's delivery time,
// and the other way round. The loop sleeps in ppoll() until a socket is readable or the earliest
// delivery is due (nanosecond timeout, timer slack set to 1 ns by main), and wakes for signals
// only inside ppoll, so a stop request is seen within one iteration.
#pragma once

#include <csignal>
#include <cstdint>
#include <nlohmann/json.hpp>

#include "netns/linkemu/offload.h"
#include "netns/linkemu/packet_socket.h"
#include "netns/linkemu/profile.h"
#include "netns/linkemu/stats.h"
#include "sim/virtual_link.h"

namespace irohlab::linkemu {

class Bridge {
 public:
  // The b→a direction draws from a seed derived from `seed`, so the directions are independent
  // but the whole link is reproducible from one number.
  Bridge(PacketSocket& a, PacketSocket& b, const iroh::sim::LinkProfile& profile,
         std::uint64_t seed);

  // Runs until *stop becomes non-zero. `wait_mask` is the signal mask to sleep with (the stop
  // signals unblocked).
  void run(const volatile std::sig_atomic_t* stop, const sigset_t& wait_mask);

  nlohmann::json stats();

 private:
  struct Direction {
    PacketSocket& in;
    PacketSocket& out;
    iroh::sim::VirtualLink link;
    std::uint64_t frames_read = 0;
    std::uint64_t send_failures = 0;
    iroh::Instant last_offered{};  // the model must never be offered a frame earlier than this
    double max_read_lag_ms = 0;    // longest wait of a frame in the socket before we read it
  };

  void read_frames(Direction& d);
  void deliver(Direction& d);

  Direction a_to_b_;
  Direction b_to_a_;
  OffloadCounters offload_;
  std::uint64_t seed_;
  double started_s_ = 0;
};

// The monotonic clock as the model's Instant (nanoseconds since boot).
iroh::Instant monotonic_now();

// When a frame stamped `arrived_realtime_ns` (CLOCK_REALTIME) arrived on the monotonic clock,
// given both clocks read now; kept within [not_before, now_mono] so the model never goes back in
// time (and a stepped wall clock cannot push a frame into the future). 0 = no stamp: now.
iroh::Instant arrival_instant(std::int64_t arrived_realtime_ns, std::int64_t now_realtime_ns,
                              iroh::Instant now_mono, iroh::Instant not_before);

}  // namespace irohlab::linkemu

// A one-way network link model for virtual-time simulation: pure, deterministic, in-process.
//
// The link has no clock and does no I/O: the caller offers datagrams at `now` and collects the
// ones whose delivery time has come. Everything random comes from a SeededRandom, so the same
// profile, seed and sequence of calls give the same deliveries, bit for bit.
//
// A datagram's path through the link, in this order:
//  1. MTU: larger than `mtu` → dropped (dropped_mtu).
//  2. Bottleneck queue: with `rate_bps` set, datagrams are serialized one after another, each
//     occupying the link for size·8/rate_bps (payload bytes only; no header overhead is added).
//     The queue holds every datagram not yet fully serialized, the one on the wire included; a
//     datagram that would push it beyond `queue_bytes` is tail-dropped (dropped_queue).
//  3. Loss on the wire (the datagram did use its serialization time): the Gilbert–Elliott chain
//     steps first (good→bad with gilbert_p, bad→good with gilbert_r, so a bad period lasts 1/r
//     datagrams on average); then it is lost with probability `loss_in_bad` in the bad state,
//     and independently with probability `loss` in either state (dropped_loss).
//  4. Propagation: arrival = end of serialization + delay + uniform[-jitter, +jitter] (never
//     before the end of serialization). Jitter can reorder datagrams by itself, as netem does.
//  5. With probability `reorder` the datagram is held back an extra `reorder_delay` (reordered).
//  6. With probability `duplicate` a second copy is delivered, with its own jitter (duplicated).
// Duty cycle (radio regulation, e.g. LoRa's 1 % in EU868): with 0 < `duty_cycle` < 1 and a rate,
// a datagram that occupied the link for T keeps the sender silent for T·(1/duty_cycle − 1)
// afterwards (99·T at 1 %); later datagrams wait in the queue. Off (0 or ≥ 1) changes nothing.
// Random draws are made only for features that are on (probability > 0), so a profile without
// jitter or loss consumes no randomness.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <queue>
#include <vector>

#include "base/bytes.h"
#include "base/random.h"
#include "base/time.h"

namespace iroh::sim {

struct LinkProfile {
  Duration delay{0};
  Duration jitter{0};
  std::uint64_t rate_bps = 0;     // 0 = unlimited (no serialization, no queue)
  std::uint64_t queue_bytes = 0;  // 0 = unlimited; otherwise tail drop
  double loss = 0;                // independent random loss probability
  // Gilbert–Elliott burst loss; gilbert_p = 0 turns it off.
  double gilbert_p = 0;    // P(good → bad) per datagram
  double gilbert_r = 0;    // P(bad → good) per datagram
  double loss_in_bad = 0;  // loss probability in the bad state
  double reorder = 0;      // probability a datagram is delayed by reorder_delay on top
  Duration reorder_delay{0};
  double duplicate = 0;  // probability a datagram is delivered twice
  std::size_t mtu = 0;   // 0 = unlimited; larger datagrams are dropped
  double duty_cycle = 0;  // fraction of time the sender may transmit; 0 or >= 1 = off
};

struct Delivered {
  Bytes data;
  std::uint8_t ecn = 0;
  Instant at;
};

class VirtualLink {
 public:
  struct Stats {
    std::uint64_t sent = 0;       // datagrams offered to send()
    std::uint64_t delivered = 0;  // copies handed out by deliver_due (duplicates included)
    std::uint64_t dropped_loss = 0;
    std::uint64_t dropped_queue = 0;
    std::uint64_t dropped_mtu = 0;
    std::uint64_t reordered = 0;   // datagrams given the extra reorder_delay
    std::uint64_t duplicated = 0;  // extra copies scheduled
    std::uint64_t bytes_delivered = 0;
  };

  VirtualLink(LinkProfile profile, std::uint64_t seed);

  // Offers a datagram at `now` (calls must not go back in time). Returns false when it was dropped
  // (MTU, queue or loss); true means it is scheduled for delivery.
  bool send(Instant now, Bytes datagram, std::uint8_t ecn = 0);
  // The earliest pending delivery time, if anything is in flight.
  std::optional<Instant> next_delivery() const;
  // Every datagram due at or before `now`, in delivery-time order (ties: in scheduling order).
  std::vector<Delivered> deliver_due(Instant now);

  Stats stats() const { return stats_; }
  const LinkProfile& profile() const { return profile_; }
  // Bytes in the bottleneck queue at `now` (not yet fully serialized).
  std::uint64_t queued_bytes(Instant now);
  std::size_t in_flight() const { return pending_.size(); }

 private:
  struct Pending {
    Instant at;
    std::uint64_t seq;
    Bytes data;
    std::uint8_t ecn;
  };
  struct Later {
    bool operator()(const Pending& a, const Pending& b) const {
      return a.at != b.at ? a.at > b.at : a.seq > b.seq;
    }
  };

  bool chance(double p);
  Duration jittered_delay();
  void drain_queue(Instant now);

  LinkProfile profile_;
  SeededRandom rng_;
  Stats stats_;
  bool bad_state_ = false;
  Instant link_free_at_{};
  // Serialization end time and size of every datagram still in the bottleneck queue.
  std::deque<std::pair<Instant, std::size_t>> queue_;
  std::uint64_t queue_bytes_ = 0;
  std::priority_queue<Pending, std::vector<Pending>, Later> pending_;
  std::uint64_t seq_ = 0;
};

}  // namespace iroh::sim

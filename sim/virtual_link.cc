// The virtual link model. See virtual_link.h for the order of the stages.
#include "sim/virtual_link.h"

#include <algorithm>
#include <utility>

namespace iroh::sim {

namespace {
__extension__ typedef unsigned __int128
    u128;  // NOLINT: GCC/Clang extension, for overflow-free math
}  // namespace

VirtualLink::VirtualLink(LinkProfile profile, std::uint64_t seed) : profile_(profile), rng_(seed) {}

bool VirtualLink::chance(double p) {
  if (p <= 0) return false;
  if (p >= 1) return true;
  return rng_.unit() < p;
}

Duration VirtualLink::jittered_delay() {
  Duration d = profile_.delay;
  const auto j = profile_.jitter.count();
  if (j > 0) {
    // Uniform over [-j, +j] nanoseconds, inclusive.
    const auto offset =
        static_cast<std::int64_t>(rng_.uniform(2 * static_cast<std::uint64_t>(j) + 1)) - j;
    d += Duration(offset);
  }
  return std::max(d, Duration(0));
}

void VirtualLink::drain_queue(Instant now) {
  while (!queue_.empty() && queue_.front().first <= now) {
    queue_bytes_ -= queue_.front().second;
    queue_.pop_front();
  }
}

std::uint64_t VirtualLink::queued_bytes(Instant now) {
  drain_queue(now);
  return queue_bytes_;
}

bool VirtualLink::send(Instant now, Bytes datagram, std::uint8_t ecn) {
  ++stats_.sent;
  const std::size_t size = datagram.size();
  if (profile_.mtu != 0 && size > profile_.mtu) {
    ++stats_.dropped_mtu;
    return false;
  }

  // Bottleneck: serialization at rate_bps behind whatever is already queued.
  Instant wire_done = now;
  if (profile_.rate_bps != 0) {
    drain_queue(now);
    if (profile_.queue_bytes != 0 && queue_bytes_ + size > profile_.queue_bytes) {
      ++stats_.dropped_queue;
      return false;
    }
    const Instant start = std::max(now, link_free_at_);
    // size·8 bits at rate_bps, in nanoseconds, rounded up (128-bit to avoid overflow).
    const u128 bits_ns = static_cast<u128>(size) * 8u * 1'000'000'000u;
    const auto ns =
        static_cast<std::int64_t>((bits_ns + profile_.rate_bps - 1) / profile_.rate_bps);
    wire_done = start + Duration(ns);
    link_free_at_ = wire_done;
    if (profile_.duty_cycle > 0 && profile_.duty_cycle < 1) {
      // The regulated silence after an airtime of `ns`: ns·(1/d − 1), e.g. 99·ns at d = 1 %.
      const double off_ns = static_cast<double>(ns) * (1.0 / profile_.duty_cycle - 1.0);
      link_free_at_ += Duration(static_cast<std::int64_t>(off_ns + 0.5));
    }
    queue_.emplace_back(wire_done, size);
    queue_bytes_ += size;
  }

  // Loss on the wire: Gilbert–Elliott state step, then the losses of the current state.
  bool lost = false;
  if (profile_.gilbert_p > 0) {
    bad_state_ = bad_state_ ? !chance(profile_.gilbert_r) : chance(profile_.gilbert_p);
    if (bad_state_ && chance(profile_.loss_in_bad)) lost = true;
  }
  if (chance(profile_.loss)) lost = true;
  if (lost) {
    ++stats_.dropped_loss;
    return false;
  }

  Instant at = wire_done + jittered_delay();
  if (chance(profile_.reorder)) {
    at += profile_.reorder_delay;
    ++stats_.reordered;
  }
  if (chance(profile_.duplicate)) {
    ++stats_.duplicated;
    pending_.push(Pending{wire_done + jittered_delay(), seq_++, datagram, ecn});
  }
  pending_.push(Pending{at, seq_++, std::move(datagram), ecn});
  return true;
}

std::optional<Instant> VirtualLink::next_delivery() const {
  if (pending_.empty()) return std::nullopt;
  return pending_.top().at;
}

std::vector<Delivered> VirtualLink::deliver_due(Instant now) {
  std::vector<Delivered> out;
  while (!pending_.empty() && pending_.top().at <= now) {
    // priority_queue::top is const; the element is popped right after, so moving is safe.
    auto& top = const_cast<Pending&>(pending_.top());
    stats_.bytes_delivered += top.data.size();
    out.push_back(Delivered{std::move(top.data), top.ecn, top.at});
    pending_.pop();
  }
  stats_.delivered += out.size();
  return out;
}

}  // namespace iroh::sim

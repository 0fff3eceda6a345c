// The real-time driver. See bridge.h.
#include "netns/linkemu/bridge.h"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

namespace irohlab::linkemu {

namespace {

// Frames read per socket per wake-up, so one busy direction cannot starve the other or the
// deliveries.
constexpr int kReadBatch = 256;
// Decorrelates the b→a stream from a→b (a 64-bit odd constant; any fixed value would do).
constexpr std::uint64_t kReverseSeedMix = 0x9e3779b97f4a7c15ULL;

double seconds(iroh::Instant t) { return static_cast<double>(t.time_since_epoch().count()) / 1e9; }

}  // namespace

iroh::Instant monotonic_now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return iroh::Instant(iroh::Duration(std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec));
}

Bridge::Bridge(PacketSocket& a, PacketSocket& b, const iroh::sim::LinkProfile& profile,
               std::uint64_t seed)
    : a_to_b_{a, b, iroh::sim::VirtualLink(profile, seed)},
      b_to_a_{b, a, iroh::sim::VirtualLink(profile, seed ^ kReverseSeedMix)},
      seed_(seed) {}

iroh::Instant arrival_instant(std::int64_t arrived_realtime_ns, std::int64_t now_realtime_ns,
                              iroh::Instant now_mono, iroh::Instant not_before) {
  iroh::Instant at = now_mono;
  if (arrived_realtime_ns > 0 && arrived_realtime_ns < now_realtime_ns) {
    at = now_mono - iroh::Duration(now_realtime_ns - arrived_realtime_ns);
  }
  return std::clamp(at, std::min(not_before, now_mono), now_mono);
}

void Bridge::read_frames(Direction& d) {
  VnetHeader vnet;
  std::span<const std::uint8_t> frame;
  std::int64_t arrived_ns = 0;
  for (int i = 0; i < kReadBatch && d.in.receive(vnet, frame, arrived_ns); ++i) {
    ++d.frames_read;
    timespec real{};
    clock_gettime(CLOCK_REALTIME, &real);
    const auto now = monotonic_now();
    const auto at = arrival_instant(
        arrived_ns, std::int64_t{real.tv_sec} * 1'000'000'000 + real.tv_nsec, now, d.last_offered);
    d.max_read_lag_ms = std::max(d.max_read_lag_ms, iroh::to_millis_f(now - at));
    d.last_offered = at;
    for (auto& wire : wire_frames(vnet, frame, offload_)) (void)d.link.send(at, std::move(wire));
  }
}

void Bridge::deliver(Direction& d) {
  for (const auto& item : d.link.deliver_due(monotonic_now())) {
    if (!d.out.send(item.data)) ++d.send_failures;
  }
}

void Bridge::run(const volatile std::sig_atomic_t* stop, const sigset_t& wait_mask) {
  started_s_ = seconds(monotonic_now());
  pollfd fds[2] = {{a_to_b_.in.fd(), POLLIN, 0}, {b_to_a_.in.fd(), POLLIN, 0}};
  while (*stop == 0) {
    read_frames(a_to_b_);
    read_frames(b_to_a_);
    deliver(a_to_b_);
    deliver(b_to_a_);

    std::optional<iroh::Instant> next;
    for (const auto* d : {&a_to_b_, &b_to_a_}) {
      if (auto t = d->link.next_delivery()) next = next ? std::min(*next, *t) : *t;
    }
    timespec timeout{};
    timespec* timeout_ptr = nullptr;  // nothing in flight: sleep until a frame or a signal
    if (next) {
      const auto wait = std::max<std::int64_t>(0, (*next - monotonic_now()).count());
      timeout.tv_sec = wait / 1'000'000'000;
      timeout.tv_nsec = wait % 1'000'000'000;
      timeout_ptr = &timeout;
    }
    if (::ppoll(fds, 2, timeout_ptr, &wait_mask) < 0 && errno != EINTR) {
      throw SocketError(std::string("ppoll: ") + std::strerror(errno));
    }
  }
}

nlohmann::json Bridge::stats() {
  auto direction = [](Direction& d) {
    auto j = link_stats_json(d.link.stats());
    j["frames_read"] = d.frames_read;
    j["send_failures"] = d.send_failures;
    j["in_flight_at_stop"] = d.link.in_flight();
    j["kernel_drops_in"] = d.in.kernel_drops();
    j["max_read_lag_ms"] = d.max_read_lag_ms;
    return j;
  };
  return {{"if_a", a_to_b_.in.interface()},
          {"if_b", b_to_a_.in.interface()},
          {"seed", seed_},
          {"a_to_b", direction(a_to_b_)},
          {"b_to_a", direction(b_to_a_)},
          {"offload", offload_json(offload_)},
          {"profile", profile_to_json(a_to_b_.link.profile())},
          {"ran_s", started_s_ == 0 ? 0.0 : seconds(monotonic_now()) - started_s_}};
}

}  // namespace irohlab::linkemu

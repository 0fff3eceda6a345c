// The model in virtual time. See offline.h.
#include "netns/linkemu/offline.h"

#include <algorithm>

#include "netns/linkemu/profile.h"
#include "netns/linkemu/stats.h"

namespace irohlab::linkemu {

nlohmann::json simulate(const iroh::sim::LinkProfile& profile, std::uint64_t seed,
                        const OfflineRun& run) {
  iroh::sim::VirtualLink link(profile, seed);
  std::vector<iroh::Instant> sent_at;  // by sequence number, read back from the first 8 bytes
  sent_at.reserve(run.count);
  double delay_sum_ms = 0;
  std::uint64_t delivered = 0;
  iroh::Instant first_delivery{}, last_delivery{};
  std::uint64_t bytes_after_first = 0;

  auto collect = [&](iroh::Instant now) {
    for (const auto& d : link.deliver_due(now)) {
      std::uint64_t seq = 0;
      std::copy_n(d.data.begin(), sizeof seq, reinterpret_cast<std::uint8_t*>(&seq));
      delay_sum_ms += iroh::to_millis_f(d.at - sent_at[seq]);
      if (delivered == 0)
        first_delivery = d.at;
      else
        bytes_after_first += d.data.size();
      last_delivery = d.at;
      ++delivered;
    }
  };

  iroh::Instant now{};
  const std::size_t size = std::max<std::size_t>(run.frame_bytes, sizeof(std::uint64_t));
  for (std::uint64_t seq = 0; seq < run.count; ++seq) {
    collect(now);
    iroh::Bytes frame(size, 0);
    std::copy_n(reinterpret_cast<const std::uint8_t*>(&seq), sizeof seq, frame.begin());
    sent_at.push_back(now);
    (void)link.send(now, std::move(frame));
    now += run.interval;
  }
  while (auto next = link.next_delivery()) collect(*next);

  const auto s = link.stats();
  const double span_s = iroh::to_millis_f(last_delivery - first_delivery) / 1000.0;
  const double lost = s.sent == 0 ? 0.0 : static_cast<double>(s.dropped_loss) / s.sent;
  return {{"profile", profile_to_json(profile)},
          {"seed", seed},
          {"frames", run.count},
          {"frame_bytes", size},
          {"interval_us", iroh::to_micros(run.interval)},
          {"link", link_stats_json(s)},
          {"loss_fraction", lost},
          {"mean_delay_ms", delivered == 0 ? 0.0 : delay_sum_ms / delivered},
          {"delivery_rate_bps",
           span_s > 0 ? static_cast<double>(bytes_after_first) * 8 / span_s : 0.0}};
}

}  // namespace irohlab::linkemu

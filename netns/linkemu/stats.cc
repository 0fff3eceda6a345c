// Counters as JSON. See stats.h.
#include "netns/linkemu/stats.h"

#include <cstdio>
#include <fstream>

namespace irohlab::linkemu {

nlohmann::json link_stats_json(const iroh::sim::VirtualLink::Stats& s) {
  return {{"sent", s.sent},
          {"delivered", s.delivered},
          {"dropped_loss", s.dropped_loss},
          {"dropped_queue", s.dropped_queue},
          {"dropped_mtu", s.dropped_mtu},
          {"reordered", s.reordered},
          {"duplicated", s.duplicated},
          {"bytes_delivered", s.bytes_delivered}};
}

nlohmann::json offload_json(const OffloadCounters& c) {
  return {{"checksums_completed", c.checksums_completed},
          {"super_packets_split", c.super_packets_split},
          {"segments_made", c.segments_made},
          {"unsupported_dropped", c.unsupported_dropped}};
}

bool write_json_file(const std::string& path, const nlohmann::json& j) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    if (!out) return false;
    out << j.dump(2) << '\n';
    if (!out.flush()) return false;
  }
  return std::rename(temporary.c_str(), path.c_str()) == 0;
}

}  // namespace irohlab::linkemu

// Counters as JSON, for --stats-json and --simulate.
#pragma once

#include <nlohmann/json.hpp>

#include "netns/linkemu/offload.h"
#include "sim/virtual_link.h"

namespace irohlab::linkemu {

nlohmann::json link_stats_json(const iroh::sim::VirtualLink::Stats& s);
nlohmann::json offload_json(const OffloadCounters& c);

// Writes `j` to `path` atomically (temporary file + rename), so a reader never sees half a file.
// Returns false (errno set) when the file cannot be written.
bool write_json_file(const std::string& path, const nlohmann::json& j);

}  // namespace irohlab::linkemu

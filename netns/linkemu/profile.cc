// JSON link profiles → the simulator's LinkProfile. See profile.h for the keys.
#include "netns/linkemu/profile.h"

#include <cmath>
#include <cstdint>
#include <set>

namespace irohlab::linkemu {

namespace {

using iroh::Duration;
using iroh::sim::LinkProfile;

// A non-negative finite number under `key`, or `fallback` when the key is absent.
double number(const nlohmann::json& j, const char* key, double fallback = 0) {
  if (!j.contains(key)) return fallback;
  const auto& v = j.at(key);
  if (!v.is_number()) throw ProfileError(std::string(key) + ": expected a number");
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < 0) throw ProfileError(std::string(key) + ": must be >= 0");
  return x;
}

double percent(const nlohmann::json& j, const char* key) {
  const double x = number(j, key);
  if (x > 100) throw ProfileError(std::string(key) + ": must be <= 100");
  return x / 100.0;
}

double probability(const nlohmann::json& j, const char* key) {
  const double x = number(j, key);
  if (x > 1) throw ProfileError(std::string(key) + ": must be <= 1");
  return x;
}

Duration millis(double ms) { return Duration(static_cast<std::int64_t>(std::llround(ms * 1e6))); }

const std::set<std::string>& known_keys() {
  static const std::set<std::string> keys = {
      "delay_ms",    "jitter_ms",        "rate_kbit",     "queue_bytes", "buffer_ms",
      "loss_pct",    "loss_burst_pkts",  "gilbert_p",     "gilbert_r",   "loss_in_bad_pct",
      "reorder_pct", "reorder_delay_ms", "duplicate_pct", "mtu",         "duty_cycle_pct",
      "label",       "description",      "source"};
  return keys;
}

}  // namespace

LinkProfile profile_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw ProfileError("profile: expected a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (!known_keys().contains(key)) throw ProfileError(key + ": unknown profile key");
  }
  LinkProfile p;
  p.delay = millis(number(j, "delay_ms"));
  p.jitter = millis(number(j, "jitter_ms"));
  p.rate_bps = static_cast<std::uint64_t>(std::llround(number(j, "rate_kbit") * 1000.0));

  if (j.contains("queue_bytes") && j.contains("buffer_ms")) {
    throw ProfileError("queue_bytes: give either queue_bytes or buffer_ms, not both");
  }
  if (j.contains("queue_bytes")) {
    p.queue_bytes = static_cast<std::uint64_t>(number(j, "queue_bytes"));
  } else if (j.contains("buffer_ms")) {
    if (p.rate_bps == 0)
      throw ProfileError("buffer_ms: needs rate_kbit (a queue drains at a rate)");
    p.queue_bytes = static_cast<std::uint64_t>(
        std::llround(static_cast<double>(p.rate_bps) * number(j, "buffer_ms") / 8000.0));
  }
  if (p.queue_bytes != 0 && p.rate_bps == 0) {
    throw ProfileError("queue_bytes: needs rate_kbit (without a rate nothing ever queues)");
  }

  const double loss = percent(j, "loss_pct");
  const bool raw_gilbert =
      j.contains("gilbert_p") || j.contains("gilbert_r") || j.contains("loss_in_bad_pct");
  if (j.contains("loss_burst_pkts")) {
    if (raw_gilbert) {
      throw ProfileError("loss_burst_pkts: give either loss_burst_pkts or gilbert_p/r, not both");
    }
    const double burst = number(j, "loss_burst_pkts");
    if (burst >= 2 && loss > 0) {
      // Two states, lossless good and always-losing bad: mean bad run 1/r = B, stationary
      // P(bad) = p/(p+r) = L. Capped below 1 so p stays a probability.
      const double l = std::min(loss, 0.999);
      p.gilbert_r = 1.0 / burst;
      p.gilbert_p = std::min(1.0, l / (burst * (1.0 - l)));
      p.loss_in_bad = 1.0;
    } else {
      p.loss = loss;  // bursts of < 2 packets are independent loss
    }
  } else {
    p.loss = loss;
    p.gilbert_p = probability(j, "gilbert_p");
    p.gilbert_r = probability(j, "gilbert_r");
    p.loss_in_bad = percent(j, "loss_in_bad_pct");
    if (p.gilbert_p > 0 && p.gilbert_r == 0) {
      throw ProfileError(
          "gilbert_r: must be > 0 when gilbert_p is set (or the link never recovers)");
    }
  }

  p.reorder = percent(j, "reorder_pct");
  p.reorder_delay = millis(number(j, "reorder_delay_ms"));
  if (p.reorder > 0 && p.reorder_delay == Duration(0)) {
    throw ProfileError("reorder_delay_ms: must be > 0 when reorder_pct is set");
  }
  p.duplicate = percent(j, "duplicate_pct");

  const double mtu = number(j, "mtu");
  if (mtu != 0) {
    if (mtu < 68) throw ProfileError("mtu: must be >= 68 (the IPv4 minimum) or 0 for none");
    p.mtu = static_cast<std::size_t>(mtu) + kEthernetHeaderBytes;
  }

  const double duty = percent(j, "duty_cycle_pct");
  if (duty > 0 && duty < 1) {
    if (p.rate_bps == 0)
      throw ProfileError("duty_cycle_pct: needs rate_kbit (airtime needs a rate)");
    p.duty_cycle = duty;
  }
  return p;
}

LinkProfile profile_from_json_text(const std::string& text) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw ProfileError(std::string("profile JSON: ") + e.what());
  }
  return profile_from_json(j);
}

nlohmann::json profile_to_json(const LinkProfile& p) {
  auto ms = [](Duration d) { return iroh::to_millis_f(d); };
  return {
      {"delay_ms", ms(p.delay)},
      {"jitter_ms", ms(p.jitter)},
      {"rate_bps", p.rate_bps},
      {"queue_bytes", p.queue_bytes},
      {"loss", p.loss},
      {"gilbert_p", p.gilbert_p},
      {"gilbert_r", p.gilbert_r},
      {"loss_in_bad", p.loss_in_bad},
      {"reorder", p.reorder},
      {"reorder_delay_ms", ms(p.reorder_delay)},
      {"duplicate", p.duplicate},
      {"frame_mtu", p.mtu},
      {"ip_mtu", p.mtu == 0 ? 0 : p.mtu - kEthernetHeaderBytes},
      {"duty_cycle", p.duty_cycle},
  };
}

}  // namespace irohlab::linkemu

// irohlab-linkemu: a userspace link emulator for the namespace lab (this kernel has no netem).
//
//   irohlab-linkemu --if-a IF --if-b IF (--profile-json '{...}' | --delay-ms ... ) [--seed N]
//                   [--stats-json FILE] [--realtime]
//   irohlab-linkemu --simulate N [--frame-bytes B] [--interval-us U] (--profile-json ...|flags)
//   irohlab-linkemu --print-profile (--profile-json ...|flags)
//
// Bridges Ethernet frames between two interfaces of the current network namespace through the
// simulator's link model, one VirtualLink per direction. Prints "ready" on stdout once both
// interfaces are open; on SIGTERM/SIGINT writes the counters to --stats-json and exits 0.
#include <sched.h>
#include <sys/prctl.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>

#include "netns/linkemu/bridge.h"
#include "netns/linkemu/offline.h"
#include "netns/linkemu/profile.h"
#include "netns/linkemu/stats.h"

namespace {

using irohlab::linkemu::Bridge;
using irohlab::linkemu::PacketSocket;

volatile std::sig_atomic_t g_stop = 0;
void request_stop(int) { g_stop = 1; }

int fail(const std::string& message, int code = 1) {
  std::cerr << "error: " << message << '\n';
  return code;
}

// The profile flags, merged over --profile-json (a flag given on the command line wins).
struct ProfileFlags {
  std::string json = "{}";
  std::optional<double> delay_ms, jitter_ms, rate_kbit, queue_bytes, buffer_ms, loss_pct,
      loss_burst_pkts, reorder_pct, reorder_delay_ms, duplicate_pct, mtu, duty_cycle_pct;

  void add_to(CLI::App& app) {
    app.add_option("--profile-json", json, "link profile as a JSON object (see profile.h)");
    app.add_option("--delay-ms", delay_ms, "one-way delay");
    app.add_option("--jitter-ms", jitter_ms, "uniform jitter, +/-");
    app.add_option("--rate-kbit", rate_kbit, "bottleneck rate (Ethernet frames)");
    app.add_option("--queue-bytes", queue_bytes, "bottleneck queue in bytes");
    app.add_option("--buffer-ms", buffer_ms, "bottleneck queue as milliseconds at the rate");
    app.add_option("--loss-pct", loss_pct, "long-run loss, percent");
    app.add_option("--loss-burst-pkts", loss_burst_pkts, "mean loss burst (>= 2: Gilbert-Elliott)");
    app.add_option("--reorder-pct", reorder_pct, "percent of frames held back");
    app.add_option("--reorder-delay-ms", reorder_delay_ms, "extra hold for reordered frames");
    app.add_option("--duplicate-pct", duplicate_pct, "percent of frames delivered twice");
    app.add_option("--mtu", mtu, "largest IP packet in bytes");
    app.add_option("--duty-cycle-pct", duty_cycle_pct, "radio duty cycle, percent");
  }

  iroh::sim::LinkProfile profile() const {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(json);
    } catch (const nlohmann::json::parse_error& e) {
      throw irohlab::linkemu::ProfileError(std::string("--profile-json: ") + e.what());
    }
    if (!j.is_object()) throw irohlab::linkemu::ProfileError("--profile-json: expected an object");
    auto set = [&](const char* key, const std::optional<double>& v) {
      if (v) j[key] = *v;
    };
    set("delay_ms", delay_ms);
    set("jitter_ms", jitter_ms);
    set("rate_kbit", rate_kbit);
    set("queue_bytes", queue_bytes);
    set("buffer_ms", buffer_ms);
    set("loss_pct", loss_pct);
    set("loss_burst_pkts", loss_burst_pkts);
    set("reorder_pct", reorder_pct);
    set("reorder_delay_ms", reorder_delay_ms);
    set("duplicate_pct", duplicate_pct);
    set("mtu", mtu);
    set("duty_cycle_pct", duty_cycle_pct);
    return irohlab::linkemu::profile_from_json(j);
  }
};

// With --realtime the emulator runs SCHED_FIFO (low priority 10): on a loaded machine a normal
// process can wait many milliseconds for a CPU, and every such wait delays deliveries. It never
// spins (it sleeps in ppoll), and the kernel's RT throttling (sched_rt_runtime_us) still keeps
// 5 % of each CPU for everything else. Returns the policy in effect, for the stats.
std::string apply_scheduling(bool realtime) {
  if (!realtime) return "normal";
  sched_param param{};
  param.sched_priority = 10;
  if (sched_setscheduler(0, SCHED_FIFO, &param) != 0) {
    std::cerr << "warning: --realtime: SCHED_FIFO refused (" << std::strerror(errno)
              << "); running with normal priority\n";
    return "normal (SCHED_FIFO refused)";
  }
  return "fifo";
}

int run_bridge(const std::string& if_a, const std::string& if_b,
               const iroh::sim::LinkProfile& profile, std::uint64_t seed,
               const std::string& stats_path, bool realtime) {
  // Deliveries are scheduled to the nanosecond; the default 50 µs timer slack would blur them.
  (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
  const std::string scheduler = apply_scheduling(realtime);

  // Stop signals stay blocked except while sleeping in ppoll, so none is lost between checking
  // the flag and going to sleep.
  sigset_t stop_signals, wait_mask;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_BLOCK, &stop_signals, &wait_mask);
  sigdelset(&wait_mask, SIGTERM);
  sigdelset(&wait_mask, SIGINT);
  struct sigaction action {};
  action.sa_handler = request_stop;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);

  PacketSocket a(if_a);
  PacketSocket b(if_b);
  Bridge bridge(a, b, profile, seed);
  std::cout << "ready" << std::endl;
  bridge.run(&g_stop, wait_mask);

  auto stats = bridge.stats();
  stats["scheduler"] = scheduler;
  if (!stats_path.empty() && !irohlab::linkemu::write_json_file(stats_path, stats)) {
    return fail("--stats-json " + stats_path + ": cannot write the file");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "irohlab-linkemu: userspace link emulator (delay, jitter, rate, queue, loss, "
      "reordering, duplication, MTU, duty cycle) between two interfaces"};
  std::string if_a, if_b, stats_path;
  std::uint64_t seed = 1;
  std::uint64_t simulate_frames = 0;
  std::size_t frame_bytes = 200;
  double interval_us = 0;
  bool print_profile = false;
  bool realtime = false;
  ProfileFlags flags;
  app.add_option("--if-a", if_a, "first interface (in this network namespace)");
  app.add_option("--if-b", if_b, "second interface");
  app.add_option("--seed", seed, "seed of the link's randomness (b->a uses a derived seed)");
  app.add_option("--stats-json", stats_path, "write counters here on SIGTERM/SIGINT");
  app.add_option("--simulate", simulate_frames, "run the model offline for N frames, print JSON");
  app.add_option("--frame-bytes", frame_bytes, "--simulate: frame size")
      ->check(CLI::Range(8, 65535));
  app.add_option("--interval-us", interval_us, "--simulate: spacing of frames (0 = one burst)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--print-profile", print_profile, "print the model parameters and exit");
  app.add_flag("--realtime", realtime, "run SCHED_FIFO (priority 10) for timing on busy hosts");
  flags.add_to(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(e.what(), 2);
  }

  try {
    const auto profile = flags.profile();
    if (print_profile) {
      std::cout << irohlab::linkemu::profile_to_json(profile).dump(2) << '\n';
      return 0;
    }
    if (simulate_frames > 0) {
      irohlab::linkemu::OfflineRun run;
      run.count = simulate_frames;
      run.frame_bytes = frame_bytes;
      run.interval = iroh::Duration(static_cast<std::int64_t>(interval_us * 1000.0));
      std::cout << irohlab::linkemu::simulate(profile, seed, run).dump(2) << '\n';
      return 0;
    }
    if (if_a.empty() || if_b.empty()) return fail("--if-a and --if-b are required", 2);
    if (if_a == if_b) return fail("--if-a and --if-b must differ", 2);
    return run_bridge(if_a, if_b, profile, seed, stats_path, realtime);
  } catch (const irohlab::linkemu::ProfileError& e) {
    return fail(std::string("profile: ") + e.what(), 2);
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Child processes for the bench commands: spawn with stdout on a pipe, read lines with a
// deadline, CPU time and RSS from /proc, always killed (SIGKILL) by PID when the handle goes away.
// Plus one throughput transfer between two `listen`/`connect` peers (docs/PEER_CLI.md).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

namespace irohlab::cli {

inline constexpr const char* kAlpn = "irohlab/bench/0";

std::string self_exe();

// A child process with its stdout on a pipe; killed (SIGKILL) when the handle goes away.
class Child {
 public:
  static Child spawn(const std::vector<std::string>& argv);
  Child() = default;
  Child(Child&& o) noexcept;
  Child& operator=(Child&&) = delete;
  ~Child() { kill(); }
  // One line of stdout (without the newline), waiting at most `timeout`.
  std::optional<std::string> read_line(std::chrono::milliseconds timeout);
  // Waits for exit (SIGKILL after `timeout`); returns the exit status or -1.
  int wait(std::chrono::milliseconds timeout);
  void kill();
  pid_t pid() const { return pid_; }
  // CPU seconds (user + system) the process has used so far.
  double cpu_seconds() const;
  // Resident set size in KiB.
  long rss_kib() const;

 private:
  pid_t pid_ = -1;
  FILE* out_ = nullptr;
};

struct ThroughputRun {
  double mb_per_s = 0;
  double cpu_s = 0;  // client + server
};

// One sink transfer: a fresh `bin connect TICKET --alpn kAlpn --bytes N --json [extra...]` client
// process against a running server. On failure: nullopt and `error` says why.
std::optional<ThroughputRun> transfer(const std::string& bin, Child& server,
                                      const std::string& ticket, std::uint64_t bytes,
                                      std::string& error,
                                      const std::vector<std::string>& extra_args = {});

}  // namespace irohlab::cli

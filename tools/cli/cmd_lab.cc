// irohlab lab run / irohlab lab cleanup / irohlab report: front doors to the Python lab driver
// (netns/runner.py, netns/cleanup.py) and the report generator (reports/report.py). The lab is
// orchestration (namespaces, nftables, processes), which Python does best; the CLI keeps one entry
// point and passes every argument through unchanged, so `--help` and errors come from the driver.
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "cli.h"

namespace irohlab::cli {

namespace {

constexpr const char* kPython = "/usr/bin/python3";  // Debian's, with apt's python3-* packages

// The source tree holding netns/ and reports/: $IROHLAB_ROOT, else the tree this binary was built
// from.
std::filesystem::path source_root() {
  if (const char* root = std::getenv("IROHLAB_ROOT"); root && *root) return root;
  return IROHLAB_SOURCE_DIR;
}

[[noreturn]] void exec_python_module(const std::string& module,
                                     const std::vector<std::string>& args) {
  const auto root = source_root();
  if (!std::filesystem::exists(root / "netns" / "runner.py")) {
    throw UsageError("cannot find the lab driver under " + root.string() +
                     " (set IROHLAB_ROOT to the irohlab source tree)");
  }
  if (::access(kPython, X_OK) != 0) {
    throw UsageError(std::string(kPython) + " is missing: run tools/setup-deps");
  }
  std::filesystem::current_path(root);
  ::setenv("PYTHONPATH", root.c_str(), 1);
  std::vector<std::string> argv_s = {kPython, "-m", module};
  argv_s.insert(argv_s.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_s) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::fflush(nullptr);
  ::execv(kPython, argv.data());
  throw UsageError(std::string("cannot run ") + kPython + ": " + std::strerror(errno));
}

// A pass-through subcommand: everything after it goes to `python3 -m module`.
void add_passthrough(CLI::App* parent, const std::string& name, const std::string& help,
                     const std::string& module) {
  auto* cmd = parent->add_subcommand(name, help);
  cmd->prefix_command();  // no parsing here: the driver owns its flags (and --help)
  cmd->set_help_flag();
  cmd->callback([cmd, module] { exec_python_module(module, cmd->remaining()); });
}

}  // namespace

void register_lab_commands(CLI::App& app) {
  auto* lab = app.add_subcommand(
      "lab", "The network-namespace NAT lab (root): run scenarios, clean up leftovers");
  lab->require_subcommand(1);
  add_passthrough(lab, "run",
                  "Run a scenario: SCENARIO [--trials N] [--seed S] [--out DIR] [--keep] "
                  "[--cells FILTER] [--jobs N] (netns/runner.py; see scenarios/README.md)",
                  "netns.runner");
  add_passthrough(lab, "cleanup", "Remove leftover lab namespaces and processes (netns/cleanup.py)",
                  "netns.cleanup");
  add_passthrough(&app, "report",
                  "Write DIR/index.html (plots, NAT grids, environment) from DIR/results.jsonl and "
                  "print the summary table (reports/report.py)",
                  "reports.report");
}

}  // namespace irohlab::cli

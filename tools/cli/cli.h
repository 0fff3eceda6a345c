// Shared pieces of the irohlab command-line tool.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "base/result.h"

namespace irohlab::cli {

// Bad user input: main() prints "irohlab: error: <message>" on one line and exits with 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A well-formed request whose answer is "no" (e.g. a signature that does not verify): exit 1.
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <class T>
T unwrap(iroh::Result<T> r) {
  if (!r.ok()) throw UsageError(r.error().message);
  return std::move(r).value();
}

void print_json(const nlohmann::json& j);

void register_key_commands(CLI::App& app);
void register_ticket_commands(CLI::App& app);
void register_relay_commands(CLI::App& app);
void register_qad_commands(CLI::App& app);
void register_quic_commands(CLI::App& app);
void register_bench_commands(CLI::App& app);
void register_lab_commands(CLI::App& app);
// `irohlab bench relay` (tools/cli/cmd_bench_relay.cc), added under `bench`.
void register_bench_relay(CLI::App* bench);

}  // namespace irohlab::cli

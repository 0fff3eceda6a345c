// irohlab: the command-line front end to irohcpp and the lab.
#include <malloc.h>

#include <iostream>

#include "cli.h"

namespace irohlab::cli {

void print_json(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

}  // namespace irohlab::cli

int main(int argc, char** argv) {
  using namespace irohlab::cli;
  // QUIC receive buffers come and go in bursts of megabytes; keep freed heap memory instead of
  // returning it to the kernel and faulting it back in on the next burst.
  mallopt(M_TRIM_THRESHOLD, 256 << 20);
  mallopt(M_TOP_PAD, 16 << 20);
  CLI::App app{
      "irohlab: a C++20 implementation of the iroh 1.x protocol and a lab that measures it.\n"
      "Bad input gives a one-line error on stderr and exit code 2."};
  app.set_version_flag("--version", std::string("irohlab ") + IROHLAB_VERSION);
  app.require_subcommand(1);
  register_key_commands(app);
  register_ticket_commands(app);
  register_relay_commands(app);
  register_qad_commands(app);
  register_quic_commands(app);
  register_bench_commands(app);
  register_lab_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "irohlab: error: " << e.what() << " (see --help)\n";
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "irohlab: error: " << e.what() << "\n";
    return 2;
  } catch (const Failure& e) {
    std::cerr << "irohlab: " << e.what() << "\n";
    return 1;
  }
  return 0;
}

// irohlab qad probe …: ask a relay's QUIC address discovery service (spec §6.9) which address our
// UDP socket has, as the relay sees it.
#include <chrono>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "base/relay_url.h"
#include "base/socket_addr.h"
#include "cli.h"
#include "crypto/tls.h"
#include "io/qad_client.h"

namespace irohlab::cli {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

struct ProbeArgs {
  std::string relay;
  std::uint64_t qad_port = iroh::io::kQadDefaultPort;
  std::string ca_file;
  std::string bind;
  double timeout = 5;
  bool json = false;
};

// One probe; the result lands in `out` (which outlives the io_context run).
iroh::io::awaitable<void> probe(std::shared_ptr<iroh::io::QuicEndpoint> endpoint,
                                iroh::RelayUrl url, iroh::io::QadProbeOptions options,
                                std::optional<iroh::io::QuicResult<iroh::SocketAddr>>& out) {
  auto r = co_await iroh::io::observe_address(*endpoint, url, options);
  out = std::move(r);
  endpoint->close();
}

void run_probe(const ProbeArgs& a) {
  auto url = iroh::RelayUrl::parse(a.relay);
  if (!url.ok()) throw UsageError("RELAY_URL: " + url.error().message);
  if (url->host().empty()) throw UsageError("RELAY_URL: no host in '" + a.relay + "'");
  if (a.qad_port == 0 || a.qad_port > 65535) throw UsageError("--qad-port: expected 1..65535");
  if (!(a.timeout > 0) || a.timeout > 3600) throw UsageError("--timeout: expected 0 < S <= 3600");

  auto trust = a.ca_file.empty() ? iroh::crypto::X509Credentials::client_trusting_system()
                                 : iroh::crypto::X509Credentials::client_trusting_file(a.ca_file);
  if (!trust.ok()) throw UsageError("--ca-file: " + trust.error().message);

  // Bind the relay's family: an IPv6 literal host → [::]:0, anything else 0.0.0.0:0.
  const std::string host = iroh::io::qad_server_name(*url);
  iroh::SocketAddr bind = host.find(':') != std::string::npos
                              ? iroh::SocketAddr::v6(iroh::ByteArray<16>{}, 0)
                              : iroh::SocketAddr::v4({0, 0, 0, 0}, 0);
  if (!a.bind.empty()) {
    auto b = iroh::SocketAddr::parse(a.bind);
    if (!b.ok()) throw UsageError("--bind: expected IP:PORT, got '" + a.bind + "'");
    bind = *b;
  }
  const auto timeout =
      std::chrono::duration_cast<iroh::Duration>(std::chrono::duration<double>(a.timeout));

  asio::io_context io;
  iroh::SystemRandom random;
  iroh::ByteArray<32> seed{};
  random.fill(seed);
  auto ep = iroh::io::QuicEndpoint::bind(
      io, iroh::SecretKey::generate(seed),
      iroh::io::qad_client_endpoint_options(*url, *trust, bind, timeout));
  if (!ep.ok()) throw UsageError("--bind: " + ep.error().message);
  auto endpoint = *ep;

  std::optional<iroh::io::QuicResult<iroh::SocketAddr>> result;
  const auto started = std::chrono::steady_clock::now();
  iroh::io::QadProbeOptions o;
  o.port = static_cast<std::uint16_t>(a.qad_port);
  o.timeout = timeout;
  asio::co_spawn(io, probe(endpoint, *url, o, result), [&io](std::exception_ptr) { io.stop(); });
  // Bounded: the probe's own timeout plus slack for DNS and the close.
  io.run_for(std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout) + 10s);
  const auto elapsed =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
  const std::string local = endpoint->local_addr().to_string();
  endpoint->close();

  if (!result || !result->ok()) {
    const std::string kind =
        result ? iroh::io::error_kind_name(result->error().kind) : std::string("timeout");
    const std::string msg = result ? result->error().message : "the probe did not finish in time";
    if (a.json) {
      print_json({{"ok", false},
                  {"relay", url->str()},
                  {"local", local},
                  {"error_kind", kind},
                  {"error", msg}});
    }
    throw Failure("error: QAD probe of " + url->str() + " failed (" + kind + "): " + msg);
  }
  const std::string observed = (*result)->to_string();
  if (a.json) {
    print_json({{"ok", true},
                {"relay", url->str()},
                {"qad_port", a.qad_port},
                {"local", local},
                {"observed", observed},
                {"elapsed_ms", elapsed}});
  } else {
    std::cout << "observed address: " << observed << " (local " << local << ")\n";
  }
}

}  // namespace

void register_qad_commands(CLI::App& app) {
  auto* qad = app.add_subcommand("qad", "QUIC address discovery against a relay (spec §6.9)");
  qad->require_subcommand(1);
  auto a = std::make_shared<ProbeArgs>();
  auto* probe = qad->add_subcommand(
      "probe", "Print our UDP address as RELAY_URL's QAD service (ALPN /iroh-qad/0) sees it");
  probe->add_option("RELAY_URL", a->relay, "The relay, e.g. https://relay.example.com/")
      ->required();
  probe->add_option("--qad-port", a->qad_port, "The relay's QAD UDP port (default 7842)");
  probe->add_option("--ca-file", a->ca_file,
                    "PEM CA certificates to verify the relay with (default: the system store)");
  probe->add_option("--bind", a->bind, "Local IP:PORT (default 0.0.0.0:0, [::]:0 for IPv6)");
  probe->add_option("--timeout", a->timeout, "Seconds until giving up (default 5)");
  probe->add_flag("--json", a->json, "One JSON object on stdout");
  probe->callback([a] { run_probe(*a); });
}

}  // namespace irohlab::cli

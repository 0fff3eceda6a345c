// irohlab bench quic: our engine against the ngtcp2 oracle, in one invocation, over loopback.
//
//   throughput   `listen --sink` + `connect --bytes N` as separate processes for both
//                implementations (ours: this binary; ngtcp2: irohlab-ngtcp2-peer next to it or
//                $IROHLAB_NGTCP2_PEER), runs interleaved, median MB/s, CPU seconds per GB of
//                payload (client + server), and the ratio ours / ngtcp2;
//   connect      in-process: fresh client endpoint, handshake, 1 byte echoed — p50/p90 over K runs;
//   idle conns   N concurrent idle connections to one `irohlab listen` process: its RSS growth
//                per connection.
// Every child process is bounded in time and killed by PID, also on failure.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "base/random.h"
#include "base/ticket.h"
#include "child_process.h"
#include "cli.h"
#include "io/quic_endpoint.h"

namespace irohlab::cli {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

std::string ngtcp2_peer_path() {
  if (const char* env = std::getenv("IROHLAB_NGTCP2_PEER")) return env;
  return (std::filesystem::path(self_exe()).parent_path() / "irohlab-ngtcp2-peer").string();
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto idx = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(idx, v.size() - 1)];
}

struct BenchOptions {
  std::uint64_t bytes = 200'000'000;
  int runs = 3;
  int connect_runs = 50;
  int idle_conns = 1000;
  bool json = false;
  bool skip_ngtcp2 = false;
};

// Connect latency: fresh client endpoints against an in-process echo server.
std::vector<double> connect_latencies(int runs) {
  asio::io_context io;
  iroh::SystemRandom rng;
  iroh::io::QuicEndpointOptions so;
  so.alpns = {kAlpn};
  auto server = iroh::io::QuicEndpoint::bind(io, iroh::SecretKey::generate(rng.array<32>()), so);
  if (!server) throw Failure("bench: " + server.error().message);
  auto srv = *server;
  asio::co_spawn(
      io,
      [srv]() -> iroh::io::awaitable<void> {
        for (;;) {
          auto conn = co_await srv->accept();
          if (!conn) co_return;
          auto spawn_ex = co_await asio::this_coro::executor;
          asio::co_spawn(
              spawn_ex,
              [conn]() -> iroh::io::awaitable<void> {
                auto id = co_await conn->accept_bi();
                if (!id) co_return;
                iroh::Bytes buf(64);
                for (;;) {
                  auto r = co_await conn->read(*id, buf);
                  if (!r) co_return;
                  if (r->bytes)
                    (void)co_await conn->write_all(*id, iroh::ByteView(buf).first(r->bytes));
                  if (r->fin) break;
                }
                (void)conn->finish(*id);
                (void)co_await conn->closed();
              },
              asio::detached);
        }
      },
      asio::detached);
  std::vector<double> out;
  asio::co_spawn(
      io,
      [&]() -> iroh::io::awaitable<void> {
        const auto addr = srv->addr();
        for (int i = 0; i < runs; ++i) {
          iroh::io::QuicEndpointOptions co;
          auto client =
              iroh::io::QuicEndpoint::bind(io, iroh::SecretKey::generate(rng.array<32>()), co);
          if (!client) co_return;
          const auto t0 = std::chrono::steady_clock::now();
          auto conn = co_await (*client)->connect(addr, kAlpn);
          if (!conn) {
            std::fprintf(stderr, "  connect run %d failed: %s\n", i, conn.error().message.c_str());
            (*client)->close();
            continue;
          }
          auto id = co_await (*conn)->open_bi();
          const std::uint8_t one = 0x2a;
          if (id && co_await (*conn)->write_all(*id, iroh::ByteView(&one, 1))) {
            (void)(*conn)->finish(*id);
            iroh::Bytes buf(8);
            auto r = co_await (*conn)->read(*id, buf);
            if (!r)
              std::fprintf(stderr, "  connect run %d: read failed: %s\n", i,
                           r.error().message.c_str());
            if (r && r->bytes == 1 && buf[0] == one) {
              out.push_back(
                  std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0)
                      .count());
            }
          }
          (*conn)->close(0, "bench");
          co_await (*conn)->drain(20ms);
          (*client)->close();
        }
        srv->close();
      },
      [](std::exception_ptr e) {
        if (!e) return;
        try {
          std::rethrow_exception(e);
        } catch (const std::exception& ex) {
          std::fprintf(stderr, "bench: connect latency run failed: %s\n", ex.what());
        }
      });
  io.run_for(std::chrono::seconds(30 + runs));
  return out;
}

// RSS growth of a `listen` process per idle connection.
std::optional<double> idle_connection_rss(int count, std::string& error) {
  auto server = Child::spawn({self_exe(), "listen", "--alpn", kAlpn});
  auto ticket = server.read_line(10s);
  if (!ticket) {
    error = "listen did not print a ticket";
    return std::nullopt;
  }
  auto addr = iroh::decode_ticket(*ticket);
  if (!addr) {
    error = addr.error().message;
    return std::nullopt;
  }
  usleep(100000);
  const long rss0 = server.rss_kib();
  asio::io_context io;
  iroh::SystemRandom rng;
  iroh::io::QuicEndpointOptions co;
  auto client = iroh::io::QuicEndpoint::bind(io, iroh::SecretKey::generate(rng.array<32>()), co);
  if (!client) {
    error = client.error().message;
    return std::nullopt;
  }
  std::vector<std::shared_ptr<iroh::io::QuicConnection>> conns;
  long rss1 = 0;
  asio::co_spawn(
      io,
      [&]() -> iroh::io::awaitable<void> {
        // In waves, so the handshakes do not all retransmit at once.
        for (int i = 0; i < count; ++i) {
          auto c = co_await (*client)->connect(*addr, kAlpn);
          if (c) conns.push_back(*c);
        }
        asio::steady_timer t(io);
        t.expires_after(500ms);  // let the server settle (ACKs, CID frames)
        co_await t.async_wait(asio::use_awaitable);
        rss1 = server.rss_kib();
        for (auto& c : conns) c->close(0, "bench");
        co_await conns.back()->drain(50ms);
        (*client)->close();
      },
      asio::detached);
  io.run_for(std::chrono::seconds(60));
  if (static_cast<int>(conns.size()) != count || rss1 == 0) {
    error = "only " + std::to_string(conns.size()) + " of " + std::to_string(count) +
            " connections came up";
    return std::nullopt;
  }
  return static_cast<double>(rss1 - rss0) / count;
}

int run_bench_quic(const BenchOptions& o) {
  nlohmann::json report;
  report["bytes"] = o.bytes;
  report["runs"] = o.runs;
  // ---- throughput ----
  struct Impl {
    std::string name, bin;
    std::vector<double> mbps, cpu_per_gb;
    std::unique_ptr<Child> server;
    std::string ticket;
  };
  std::vector<Impl> impls;
  impls.push_back({"irohlab", self_exe(), {}, {}, nullptr, ""});
  if (!o.skip_ngtcp2) {
    const auto ng = ngtcp2_peer_path();
    if (!std::filesystem::exists(ng)) {
      throw UsageError("ngtcp2 oracle not found at " + ng +
                       " (build it with tools/build, or set IROHLAB_NGTCP2_PEER)");
    }
    impls.push_back({"ngtcp2", ng, {}, {}, nullptr, ""});
  }
  for (auto& im : impls) {
    im.server =
        std::make_unique<Child>(Child::spawn({im.bin, "listen", "--alpn", kAlpn, "--sink"}));
    auto t = im.server->read_line(10s);
    if (!t) throw Failure("bench: " + im.name + " listen printed no ticket");
    im.ticket = *t;
  }
  std::string error;
  for (int run = 0; run < o.runs; ++run) {
    for (auto& im : impls) {  // interleaved: machine noise hits both alike
      auto r = transfer(im.bin, *im.server, im.ticket, o.bytes, error);
      if (!r) throw Failure("bench: transfer failed: " + error);
      im.mbps.push_back(r->mb_per_s);
      im.cpu_per_gb.push_back(r->cpu_s / (static_cast<double>(o.bytes) / 1e9));
      if (!o.json) {
        std::fprintf(stderr, "  run %d %-8s %8.1f MB/s  %6.2f CPU s/GB\n", run + 1, im.name.c_str(),
                     r->mb_per_s, im.cpu_per_gb.back());
      }
    }
  }
  for (auto& im : impls) {
    im.server->kill();
    report[im.name + "_mb_per_s"] = median(im.mbps);
    report[im.name + "_cpu_s_per_gb"] = median(im.cpu_per_gb);
  }
  if (impls.size() == 2) {
    report["ratio_vs_ngtcp2"] = median(impls[0].mbps) / median(impls[1].mbps);
  }
  // ---- connect latency ----
  if (o.connect_runs > 0) {
    auto lat = connect_latencies(o.connect_runs);
    report["connect_runs"] = lat.size();
    report["connect_p50_ms"] = percentile(lat, 0.5);
    report["connect_p90_ms"] = percentile(lat, 0.9);
  }
  // ---- idle connections ----
  if (o.idle_conns > 0) {
    auto per = idle_connection_rss(o.idle_conns, error);
    if (!per) throw Failure("bench: idle connections: " + error);
    report["idle_conns"] = o.idle_conns;
    report["rss_per_conn_kib"] = *per;
  }
  if (o.json) {
    std::cout << report.dump() << "\n";
  } else {
    std::printf("irohlab bench quic: %llu bytes, %d runs, single stream, loopback\n",
                static_cast<unsigned long long>(o.bytes), o.runs);
    for (auto& im : impls) {
      std::printf("  %-8s %8.1f MB/s (median)  %6.2f CPU s/GB\n", im.name.c_str(), median(im.mbps),
                  median(im.cpu_per_gb));
    }
    if (report.contains("ratio_vs_ngtcp2")) {
      std::printf("  ratio ours/ngtcp2: %.2f\n", report["ratio_vs_ngtcp2"].get<double>());
    }
    if (report.contains("connect_p50_ms")) {
      std::printf("  connect + 1 byte echoed: p50 %.2f ms, p90 %.2f ms (%d runs)\n",
                  report["connect_p50_ms"].get<double>(), report["connect_p90_ms"].get<double>(),
                  o.connect_runs);
    }
    if (report.contains("rss_per_conn_kib")) {
      std::printf("  %d idle connections: %.1f KiB RSS per connection (listener)\n", o.idle_conns,
                  report["rss_per_conn_kib"].get<double>());
    }
  }
  return 0;
}

}  // namespace

void register_bench_commands(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks with in-run baselines");
  bench->require_subcommand(1);
  register_bench_relay(bench);
  auto o = std::make_shared<BenchOptions>();
  auto* quic = bench->add_subcommand(
      "quic",
      "Our QUIC engine vs the ngtcp2 oracle over loopback (throughput ratio, CPU per GB, "
      "connect latency, idle-connection memory)");
  quic->add_option("--bytes", o->bytes, "bytes per transfer (default 200000000)")
      ->check(CLI::Range(std::uint64_t{1000}, std::uint64_t{100'000'000'000}));
  quic->add_option("--runs", o->runs, "transfers per implementation (default 3)")
      ->check(CLI::Range(1, 50));
  quic->add_option("--connect-runs", o->connect_runs,
                   "connect latency samples (default 50; 0 = skip)")
      ->check(CLI::Range(0, 10000));
  quic->add_option("--idle-conns", o->idle_conns,
                   "idle connections for the memory figure (default 1000; 0 = skip)")
      ->check(CLI::Range(0, 5000));
  quic->add_flag("--no-ngtcp2", o->skip_ngtcp2, "skip the ngtcp2 baseline");
  quic->add_flag("--json", o->json, "one JSON object (includes ratio_vs_ngtcp2)");
  quic->callback([o] {
    const int rc = run_bench_quic(*o);
    if (rc != 0) std::exit(rc);
  });
}

}  // namespace irohlab::cli

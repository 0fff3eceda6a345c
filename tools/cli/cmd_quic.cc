// irohlab listen / connect: the peer CLI contract of docs/PEER_CLI.md on our QUIC engine.
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>

#include "base/endpoint_addr.h"
#include "base/key.h"
#include "base/random.h"
#include "base/text_encoding.h"
#include "base/ticket.h"
#include "cli.h"
#include "io/quic_endpoint.h"

namespace irohlab::cli {

namespace asio = boost::asio;
using iroh::Bytes;
using iroh::ByteView;
using iroh::io::awaitable;
using iroh::io::QuicConnection;
using iroh::io::QuicEndpoint;
using namespace std::chrono_literals;

namespace {

constexpr std::size_t kChunk = 64 * 1024;

// docs/PEER_CLI.md: byte i of stream k.
inline std::uint8_t pattern_byte(std::uint64_t i, std::uint64_t k) {
  return static_cast<std::uint8_t>(i * 131 + (i >> 13) + k);
}
// The same bytes, fast enough not to be what a throughput run measures: within an 8 KiB block
// (i >> 13 constant) byte i is row[(i >> 13) + k][i & 8191] of a 256 × 8 KiB table (2 MiB, built
// once), so filling is memcpy.
void fill_pattern(std::uint8_t* out, std::size_t n, std::uint64_t offset, std::uint64_t k) {
  constexpr std::size_t kBlock = 8192;
  static const std::vector<std::uint8_t> table = [] {
    std::vector<std::uint8_t> t(256 * kBlock);
    for (std::size_t a = 0; a < 256; ++a) {
      for (std::size_t j = 0; j < kBlock; ++j)
        t[a * kBlock + j] = static_cast<std::uint8_t>(j * 131 + a);
    }
    return t;
  }();
  std::size_t j = 0;
  while (j < n) {
    const std::uint64_t i = offset + j;
    const std::size_t row = static_cast<std::uint8_t>((i >> 13) + k);
    const std::size_t pos = static_cast<std::size_t>(i & (kBlock - 1));
    const std::size_t run = std::min<std::size_t>(n - j, kBlock - pos);
    std::memcpy(out + j, &table[row * kBlock + pos], run);
    j += run;
  }
}

iroh::SecretKey secret_from_flag(const std::string& hex) {
  if (hex.empty()) {
    iroh::SystemRandom rng;
    return iroh::SecretKey::generate(rng.array<32>());
  }
  return unwrap(iroh::SecretKey::parse(hex));
}

std::string close_kind(const iroh::quic::CloseReason& r) {
  using K = iroh::quic::CloseReason::Kind;
  switch (r.kind) {
    case K::kIdleTimeout:
    case K::kHandshakeTimeout:
      return "idle";
    case K::kLocalApplication:
    case K::kPeerApplication:
      return "application";
    default:
      return "transport";
  }
}

std::string close_by(const iroh::quic::CloseReason& r) {
  using K = iroh::quic::CloseReason::Kind;
  if (r.by_peer() || r.kind == K::kStatelessReset) return "peer";
  if (r.kind == K::kIdleTimeout || r.kind == K::kHandshakeTimeout) return "timeout";
  return "local";
}

void emit(const nlohmann::json& j) { std::cout << j.dump() << "\n" << std::flush; }

iroh::quic::ConnectionConfig connection_config(double handshake_timeout_s) {
  iroh::quic::ConnectionConfig c;
  c.handshake_timeout = std::chrono::duration_cast<iroh::Duration>(
      std::chrono::duration<double>(handshake_timeout_s));
  return c;
}

// ---- listen ----

struct ListenOptions {
  std::vector<std::string> alpns;
  std::string secret;
  std::string bind = "127.0.0.1:0";
  bool echo = false, sink = false;
  std::optional<std::uint64_t> source;
  std::optional<std::uint64_t> close_code;
  std::string close_reason = "bye";
  std::string qlog;
  bool retry = false;
  std::string relay;  // home relay URL
  bool relay_only = false;
  std::string relay_ca;
  std::vector<std::string> external_addrs;
  bool no_holepunch = false;
};

// --relay URL / --relay-ca FILE into endpoint options (shared by listen and connect).
void apply_relay_flags(iroh::io::QuicEndpointOptions& eo, const std::string& relay,
                       const std::string& relay_ca) {
  if (relay.empty()) return;
  auto url = iroh::RelayUrl::parse(relay);
  if (!url) throw UsageError("--relay: " + url.error().message);
  eo.relay = *url;
  eo.relay_client.ca_file = relay_ca;
}

// --external-addr IP:PORT (repeatable) / --no-holepunch into endpoint options.
void apply_holepunch_flags(iroh::io::QuicEndpointOptions& eo,
                           const std::vector<std::string>& external, bool no_holepunch) {
  for (const auto& a : external) {
    auto sa = iroh::SocketAddr::parse(a);
    if (!sa) throw UsageError("--external-addr: not IP:PORT: " + a);
    eo.external_addrs.push_back(*sa);
  }
  eo.hole_punching = !no_holepunch;
  eo.interface_poll = std::chrono::seconds(1);  // notice renumbering and moves (churn)
}

awaitable<void> serve_bi(std::shared_ptr<QuicConnection> conn, std::uint64_t id,
                         const ListenOptions& o, bool first, std::shared_ptr<bool> closing) {
  Bytes buf(kChunk);
  if (o.source) {
    Bytes out(kChunk);
    for (std::uint64_t off = 0; off < *o.source;) {
      const std::size_t n =
          static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, *o.source - off));
      fill_pattern(out.data(), n, off, 0);
      if (!(co_await conn->write_all(id, ByteView(out).first(n)))) co_return;
      off += n;
    }
    (void)conn->finish(id);
    for (;;) {  // read (and drop) whatever the client sends
      auto r = co_await conn->read(id, buf);
      if (!r || r->fin) break;
    }
  } else {
    for (;;) {
      auto r = co_await conn->read(id, buf);
      if (!r) {
        if (!conn->is_closed()) {
          emit({{"event", "stream_error"},
                {"remote", conn->remote_id().to_hex()},
                {"message", r.error().message}});
        }
        co_return;
      }
      if (!o.sink && r->bytes > 0) {
        if (!(co_await conn->write_all(id, ByteView(buf).first(r->bytes)))) co_return;
      }
      if (r->fin) break;
    }
    (void)conn->finish(id);
  }
  if (first && o.close_code && !*closing) {
    // "Served completely": our side of the stream is acknowledged, then close.
    (void)co_await conn->stopped(id);
    *closing = true;
    conn->close(*o.close_code, o.close_reason);
  }
}

awaitable<void> serve_uni(std::shared_ptr<QuicConnection> conn, std::uint64_t id) {
  Bytes data;
  Bytes buf(kChunk);
  for (;;) {
    auto r = co_await conn->read(id, buf);
    if (!r) co_return;
    data.insert(data.end(), buf.begin(), buf.begin() + r->bytes);
    if (r->fin) break;
  }
  auto out = co_await conn->open_uni();
  if (!out) co_return;
  if (!(co_await conn->write_all(*out, data))) co_return;
  (void)conn->finish(*out);
}

awaitable<void> serve_connection(std::shared_ptr<QuicConnection> conn, const ListenOptions& o) {
  auto ex = co_await asio::this_coro::executor;
  emit({{"event", "accepted"},
        {"remote", conn->remote_id().to_hex()},
        {"alpn", conn->alpn()},
        {"path", conn->endpoint()->describe_path(conn->stats().path.remote)}});
  auto closing = std::make_shared<bool>(false);
  asio::co_spawn(
      ex,
      [conn, &o, closing]() -> awaitable<void> {
        bool first = true;
        for (;;) {
          auto id = co_await conn->accept_bi();
          if (!id) co_return;
          // The executor first: GCC 12 mishandles a co_await inside the argument list
          // that also builds a temporary (the lambda/awaitable) — see cmd_bench history.
          auto spawn_ex = co_await asio::this_coro::executor;
          asio::co_spawn(spawn_ex, serve_bi(conn, *id, o, first, closing), asio::detached);
          first = false;
        }
      },
      asio::detached);
  if (!o.sink && !o.source) {
    asio::co_spawn(
        ex,
        [conn]() -> awaitable<void> {
          for (;;) {
            auto id = co_await conn->accept_uni();
            if (!id) co_return;
            // The executor first: GCC 12 mishandles a co_await inside the argument list
            // that also builds a temporary (the lambda/awaitable) — see cmd_bench history.
            auto spawn_ex = co_await asio::this_coro::executor;
            asio::co_spawn(spawn_ex, serve_uni(conn, *id), asio::detached);
          }
        },
        asio::detached);
    asio::co_spawn(
        ex,
        [conn]() -> awaitable<void> {
          for (;;) {
            auto d = co_await conn->recv_datagram();
            if (!d) co_return;
            (void)conn->send_datagram(*d);
          }
        },
        asio::detached);
  }
  const auto reason = co_await conn->closed();
  emit({{"event", "closed"},
        {"remote", conn->remote_id().to_hex()},
        {"by", close_by(reason)},
        {"kind", close_kind(reason)},
        {"code", reason.code},
        {"reason", reason.reason}});
}

int run_listen(const ListenOptions& o) {
  asio::io_context io;
  const auto secret = secret_from_flag(o.secret);
  iroh::io::QuicEndpointOptions eo;
  eo.bind = unwrap(iroh::SocketAddr::parse(o.bind));
  eo.alpns = o.alpns;
  eo.connection = connection_config(10);
  eo.qlog_dir = o.qlog;
  eo.retry = o.retry;
  apply_relay_flags(eo, o.relay, o.relay_ca);
  apply_holepunch_flags(eo, o.external_addrs, o.no_holepunch);
  auto ep = QuicEndpoint::bind(io, secret, eo);
  if (!ep) throw UsageError(ep.error().message);
  auto endpoint = *ep;
  // With a relay, the ticket is only useful once the relay knows us: wait (bounded) for it.
  int rc = 0;
  asio::co_spawn(
      io,
      [endpoint, &o, &rc, &io]() -> awaitable<void> {
        if (endpoint->home_relay()) {
          const bool ready = co_await endpoint->relay_ready(std::chrono::seconds(10));
          if (!ready) {
            auto client = endpoint->home_relay_client();
            std::string why = "not reachable within 10 s";
            if (client && client->denial_reason()) why = "denied us: " + *client->denial_reason();
            std::cerr << "irohlab: error: unreachable: relay " << o.relay << " " << why << "\n";
            rc = 1;
            endpoint->close();
            io.stop();
            co_return;
          }
        }
        auto addr = endpoint->addr();
        if (o.relay_only) {
          std::erase_if(addr.addrs, [](const iroh::TransportAddr& a) {
            return !std::holds_alternative<iroh::RelayUrl>(a);
          });
        }
        std::cout << iroh::encode_ticket(addr) << "\n" << std::flush;
      },
      asio::detached);

  asio::signal_set signals(io, SIGINT, SIGTERM);
  signals.async_wait([&](boost::system::error_code ec, int) {
    if (ec) return;
    asio::co_spawn(
        io, [endpoint]() -> awaitable<void> { co_await endpoint->shutdown(0, "shutdown"); },
        [&io](std::exception_ptr) { io.stop(); });
  });
  asio::co_spawn(
      io,
      [endpoint, &o]() -> awaitable<void> {
        for (;;) {
          auto conn = co_await endpoint->accept();
          if (!conn) co_return;
          // The executor first: GCC 12 mishandles a co_await inside the argument list
          // that also builds a temporary (the lambda/awaitable) — see cmd_bench history.
          auto spawn_ex = co_await asio::this_coro::executor;
          asio::co_spawn(spawn_ex, serve_connection(conn, o), asio::detached);
        }
      },
      asio::detached);
  io.run();
  if (rc != 0) return rc;
  // Let the per-connection coroutines print their `closed` events for the shutdown.
  io.restart();
  io.run_for(100ms);
  return 0;
}

// ---- connect ----

struct ConnectOptions {
  std::string ticket;
  std::string alpn;
  std::string secret;
  std::uint64_t bytes = 0;
  bool use_stdin = false;
  bool echo = false;
  std::uint64_t streams = 1;
  bool uni = false;
  std::uint64_t datagrams = 0;
  std::uint64_t datagram_size = 1000;
  double idle = 0;
  std::uint64_t close_code = 0;
  std::string close_reason = "done";
  double timeout = 10;
  bool json = false;
  std::string qlog;
  std::string relay;  // our home relay; enables dialing through the ticket's relay
  bool relay_only = false;
  std::string relay_ca;
  std::string bind;
  double wait_direct = 0;
  double hold = 0;
  std::vector<std::string> external_addrs;
  bool no_holepunch = false;
};

struct ConnectReport {
  bool ok = false;
  std::string error_kind, error;
  std::string remote, alpn, path;
  std::uint64_t bytes = 0, echoed = 0, datagrams_sent = 0, datagrams_echoed = 0;
  double seconds = 0, connect_ms = 0, rtt_ms = 0;
  std::optional<iroh::quic::CloseReason> closed_by_peer;
  iroh::quic::ConnectionStats stats;
  // The selected path over time (ms since the start of connect).
  std::optional<bool> started_relayed;
  std::optional<double> direct_after_ms;
  std::vector<std::pair<double, std::string>> paths;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Sends N pattern bytes (or `payload`) on stream k and, for bidi streams, reads the answer back.
awaitable<iroh::io::QuicResult<void>> run_stream(std::shared_ptr<QuicConnection> conn,
                                                 const ConnectOptions& o, std::uint64_t k,
                                                 const Bytes* payload, ConnectReport& rep) {
  using R = iroh::io::QuicResult<void>;
  // (Not a ?: with a co_await in each arm: GCC 12 destroys the wrong temporary there.)
  iroh::io::QuicResult<std::uint64_t> id = iroh::io::QuicError{};
  if (o.uni) {
    id = co_await conn->open_uni();
  } else {
    id = co_await conn->open_bi();
  }
  if (!id) co_return id.error();
  const std::uint64_t total = payload ? payload->size() : o.bytes;
  Bytes chunk(kChunk);
  for (std::uint64_t off = 0; off < total;) {
    const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(kChunk, total - off));
    ByteView data;
    if (payload) {
      data = ByteView(*payload).subspan(off, n);
    } else {
      fill_pattern(chunk.data(), n, off, k);
      data = ByteView(chunk).first(n);
    }
    if (auto r = co_await conn->write_all(*id, data); !r) co_return r.error();
    off += n;
    rep.bytes += n;
  }
  if (auto r = conn->finish(*id); !r) co_return r.error();
  if (o.uni) co_return R{};
  // Bidi: read to the end; verify against what we sent when echoing.
  Bytes buf(kChunk);
  Bytes expect(kChunk);
  std::uint64_t got = 0;
  for (;;) {
    auto r = co_await conn->read(*id, buf);
    if (!r) co_return r.error();
    if (o.echo) {
      if (got + r->bytes > total) {
        co_return iroh::io::QuicError{
            iroh::io::ErrorKind::kTransport,
            "echo-mismatch: stream " + std::to_string(k) + " echoed more than was sent",
            std::nullopt};
      }
      if (payload) {
        std::memcpy(expect.data(), payload->data() + got, r->bytes);
      } else {
        fill_pattern(expect.data(), r->bytes, got, k);
      }
      for (std::size_t j = 0; j < r->bytes && std::memcmp(buf.data(), expect.data(), r->bytes) != 0;
           ++j) {
        const std::uint64_t pos = got + j;
        if (buf[j] != expect[j]) {
          co_return iroh::io::QuicError{iroh::io::ErrorKind::kTransport,
                                        "echo-mismatch: stream " + std::to_string(k) +
                                            " differs at byte " + std::to_string(pos),
                                        std::nullopt};
        }
      }
      rep.echoed += r->bytes;
    }
    got += r->bytes;
    if (r->fin) break;
  }
  if (o.echo && got != total) {
    co_return iroh::io::QuicError{iroh::io::ErrorKind::kTransport,
                                  "echo-mismatch: stream " + std::to_string(k) + " echoed " +
                                      std::to_string(got) + " of " + std::to_string(total) +
                                      " bytes",
                                  std::nullopt};
  }
  co_return R{};
}

// --uni --echo: the server answers each uni stream with one of its own; identify stream k by its
// first byte (pattern byte 0 of stream k is k) and verify.
awaitable<iroh::io::QuicResult<void>> read_uni_echoes(std::shared_ptr<QuicConnection> conn,
                                                      const ConnectOptions& o, ConnectReport& rep) {
  using R = iroh::io::QuicResult<void>;
  if (o.bytes == 0) co_return R{};
  Bytes buf(kChunk);
  for (std::uint64_t s = 0; s < o.streams; ++s) {
    auto id = co_await conn->accept_uni();
    if (!id) co_return id.error();
    Bytes data;
    for (;;) {
      auto r = co_await conn->read(*id, buf);
      if (!r) co_return r.error();
      data.insert(data.end(), buf.begin(), buf.begin() + r->bytes);
      if (r->fin) break;
    }
    if (data.size() != o.bytes) {
      co_return iroh::io::QuicError{iroh::io::ErrorKind::kTransport,
                                    "echo-mismatch: uni echo of " + std::to_string(data.size()) +
                                        " bytes, expected " + std::to_string(o.bytes),
                                    std::nullopt};
    }
    const std::uint64_t k = data[0];
    for (std::size_t i = 0; i < data.size(); ++i) {
      if (data[i] != pattern_byte(i, k)) {
        co_return iroh::io::QuicError{
            iroh::io::ErrorKind::kTransport,
            "echo-mismatch: uni echo differs at byte " + std::to_string(i), std::nullopt};
      }
    }
    rep.echoed += data.size();
  }
  co_return R{};
}

awaitable<void> sleep_for(iroh::Duration d) {
  asio::steady_timer t(co_await asio::this_coro::executor);
  t.expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(d));
  boost::system::error_code ec;
  co_await t.async_wait(asio::redirect_error(asio::use_awaitable, ec));
}

awaitable<void> run_connect(std::shared_ptr<QuicEndpoint> ep, const iroh::EndpointAddr& addr,
                            const ConnectOptions& o, const Bytes* payload, ConnectReport& rep) {
  auto fail = [&](const iroh::io::QuicError& e) {
    std::string kind = iroh::io::error_kind_name(e.kind);
    std::string msg = e.message;
    if (msg.rfind("echo-mismatch: ", 0) == 0) {
      kind = "echo-mismatch";
      msg = msg.substr(15);
    }
    rep.ok = false;
    rep.error_kind = kind;
    rep.error = msg;
  };
  const auto t0 = std::chrono::steady_clock::now();
  const auto t0_instant = ep->now();
  auto conn_r = co_await ep->connect(addr, o.alpn);
  if (!conn_r) {
    fail(conn_r.error());
    ep->close();
    co_return;
  }
  auto conn = *conn_r;
  rep.connect_ms = seconds_since(t0) * 1000;
  rep.remote = conn->remote_id().to_hex();
  rep.alpn = conn->alpn();
  // Path bookkeeping: the endpoint records every change of the selected path (relay → direct
  // when a hole is punched, back to the relay when the direct path dies) with its time.
  std::size_t paths_seen = 0;
  auto note_path = [&] {
    const auto& changes = conn->path_changes();
    for (; paths_seen < changes.size(); ++paths_seen) {
      const auto& ch = changes[paths_seen];
      if (!rep.paths.empty() && rep.paths.back().second == ch.path) continue;
      const double t = std::max(0.0, iroh::to_millis_f(ch.at - t0_instant));
      rep.paths.emplace_back(t, ch.path);
      rep.path = ch.path;
      if (!rep.started_relayed) rep.started_relayed = ch.relay;
      if (!ch.relay && !rep.direct_after_ms) rep.direct_after_ms = t;
    }
  };
  note_path();
  if (o.wait_direct > 0 && !rep.direct_after_ms) {
    // Wait for a direct path (event-driven), bounded by --wait-direct.
    const auto until = std::chrono::steady_clock::now() +
                       std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                           std::chrono::duration<double>(o.wait_direct));
    while (!rep.direct_after_ms && !conn->is_closed()) {
      const auto left = until - std::chrono::steady_clock::now();
      if (left <= std::chrono::steady_clock::duration::zero()) break;
      auto ch = co_await conn->next_path_change(paths_seen,
                                                std::chrono::duration_cast<iroh::Duration>(left));
      if (!ch || !*ch) break;
      note_path();
    }
  }
  if (o.idle > 0)
    co_await sleep_for(
        std::chrono::duration_cast<iroh::Duration>(std::chrono::duration<double>(o.idle)));

  const auto t1 = std::chrono::steady_clock::now();
  auto ex = co_await asio::this_coro::executor;
  // All streams concurrently; the first error wins.
  std::optional<iroh::io::QuicError> first_error;
  std::size_t running = 0;
  asio::steady_timer done_signal(ex);
  done_signal.expires_at(std::chrono::steady_clock::time_point::max());
  const std::uint64_t nstreams = payload ? 1 : o.streams;
  if (payload || o.bytes > 0 || o.streams > 0) {
    for (std::uint64_t k = 0; k < nstreams; ++k) {
      ++running;
      asio::co_spawn(
          ex,
          [&, k]() -> awaitable<void> {
            auto r = co_await run_stream(conn, o, k, payload, rep);
            if (!r && !first_error) first_error = r.error();
            if (--running == 0) done_signal.cancel();
          },
          asio::detached);
    }
    if (o.uni && o.echo) {
      ++running;
      asio::co_spawn(
          ex,
          [&]() -> awaitable<void> {
            auto r = co_await read_uni_echoes(conn, o, rep);
            if (!r && !first_error) first_error = r.error();
            if (--running == 0) done_signal.cancel();
          },
          asio::detached);
    }
    while (running > 0) {
      boost::system::error_code ec;
      co_await done_signal.async_wait(asio::redirect_error(asio::use_awaitable, ec));
    }
  }
  if (!first_error && o.datagrams > 0) {
    std::map<std::uint32_t, Bytes> sent;
    std::uint64_t echoed = 0;
    bool receiving = true;
    asio::co_spawn(
        ex,
        [&]() -> awaitable<void> {
          while (receiving) {
            auto d = co_await conn->recv_datagram();
            if (!d) co_return;
            if (d->size() < 4) continue;
            const std::uint32_t j =
                (std::uint32_t{(*d)[0]} << 24) | ((*d)[1] << 16) | ((*d)[2] << 8) | (*d)[3];
            auto it = sent.find(j);
            if (it != sent.end() && it->second == *d) {
              ++echoed;
              sent.erase(it);
            }
          }
        },
        asio::detached);
    const std::size_t size = std::max<std::uint64_t>(4, o.datagram_size);
    for (std::uint64_t j = 0; j < o.datagrams; ++j) {
      Bytes d(size);
      fill_pattern(d.data(), size, 0, 0);
      d[0] = static_cast<std::uint8_t>(j >> 24);
      d[1] = static_cast<std::uint8_t>(j >> 16);
      d[2] = static_cast<std::uint8_t>(j >> 8);
      d[3] = static_cast<std::uint8_t>(j);
      sent[static_cast<std::uint32_t>(j)] = d;
      if (auto r = conn->send_datagram(d); !r) {
        first_error = r.error();
        break;
      }
      ++rep.datagrams_sent;
      // Pace the burst a little so the receiver's queue is not the bottleneck being measured.
      if (j % 16 == 15) co_await sleep_for(1ms);
    }
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!first_error && echoed < rep.datagrams_sent &&
           std::chrono::steady_clock::now() < deadline) {
      co_await sleep_for(10ms);
    }
    receiving = false;
    rep.datagrams_echoed = echoed;
  }
  rep.seconds = seconds_since(t1);
  if (!first_error && o.hold > 0) {
    co_await sleep_for(
        std::chrono::duration_cast<iroh::Duration>(std::chrono::duration<double>(o.hold)));
    if (conn->is_closed()) first_error = iroh::io::error_from_close(*conn->close_reason());
  }
  note_path();
  const auto stats = conn->stats();
  rep.stats = stats;
  rep.rtt_ms = iroh::to_millis_f(stats.path.rtt);
  if (first_error) {
    fail(*first_error);
    if (auto r = conn->close_reason(); r && r->by_peer()) rep.closed_by_peer = *r;
    conn->close(1, "error");
    co_await conn->drain(200ms);
    ep->close();
    co_return;
  }
  // A server told to close after serving (--close-code) does so right after our ACK of its
  // echo: give that close a moment to arrive so it is reported, not raced.
  for (int i = 0; i < 15 && !conn->is_closed(); ++i) co_await sleep_for(10ms);
  if (auto r = conn->close_reason()) {
    if (r->by_peer()) rep.closed_by_peer = *r;
  } else {
    conn->close(o.close_code, o.close_reason);
    co_await conn->drain(1s);
  }
  rep.ok = true;
  ep->close();
}

int run_connect_cmd(const ConnectOptions& o) {
  auto addr = unwrap(iroh::decode_ticket(o.ticket));
  // Without --relay only the ticket's direct addresses are dialed (docs/PEER_CLI.md); with
  // --relay-only only its relay.
  if (o.relay_only && o.relay.empty()) throw UsageError("--relay-only needs --relay URL");
  std::erase_if(addr.addrs, [&](const iroh::TransportAddr& a) {
    return std::holds_alternative<iroh::RelayUrl>(a) ? o.relay.empty() : o.relay_only;
  });
  if (addr.ip_addrs().empty() && addr.relay_urls().empty()) {
    throw UsageError(o.relay.empty() ? "the ticket has no IP address to dial (pass --relay URL "
                                       "to dial through its relay)"
                                     : "the ticket has no address to dial");
  }
  Bytes payload;
  if (o.use_stdin) {
    payload.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  asio::io_context io;
  const auto secret = secret_from_flag(o.secret);
  iroh::io::QuicEndpointOptions eo;
  // Bind the family of the ticket's first IP address.
  const auto ips = addr.ip_addrs();
  if (!o.bind.empty()) {
    eo.bind = unwrap(iroh::SocketAddr::parse(o.bind));
  } else if (ips.empty()) {
    eo.bind = iroh::SocketAddr::v4({0, 0, 0, 0}, 0);  // relay only: any local address
  } else {
    eo.bind = ips.front().is_v4()
                  ? iroh::SocketAddr::v4({127, 0, 0, 1}, 0)
                  : iroh::SocketAddr::v6(
                        iroh::ByteArray<16>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 0);
    // Not loopback? Bind the unspecified address of that family.
    const auto& first = ips.front();
    const bool loopback = first.is_v4() ? first.ip()[0] == 127
                                        : (first.ip()[15] == 1 &&
                                           std::all_of(first.ip().begin(), first.ip().begin() + 15,
                                                       [](auto b) { return b == 0; }));
    if (!loopback) {
      eo.bind = first.is_v4() ? iroh::SocketAddr::v4({0, 0, 0, 0}, 0)
                              : iroh::SocketAddr::v6(iroh::ByteArray<16>{}, 0);
    }
  }
  apply_relay_flags(eo, o.relay, o.relay_ca);
  apply_holepunch_flags(eo, o.external_addrs, o.no_holepunch);
  eo.connection = connection_config(o.timeout);
  eo.qlog_dir = o.qlog;
  auto ep = QuicEndpoint::bind(io, secret, eo);
  if (!ep) throw UsageError(ep.error().message);
  ConnectReport rep;
  asio::co_spawn(io, run_connect(*ep, addr, o, o.use_stdin ? &payload : nullptr, rep),
                 [&io](std::exception_ptr) { io.stop(); });
  // The whole run is bounded (docs/PEER_CLI.md).
  const auto bound =
      std::chrono::duration<double>(o.timeout + o.idle + o.wait_direct + o.hold + 120);
  io.run_for(std::chrono::duration_cast<std::chrono::steady_clock::duration>(bound));
  if (!rep.ok && rep.error_kind.empty()) {
    rep.error_kind = "timeout";
    rep.error = "the run did not finish within its time bound";
  }
  if (o.json) {
    nlohmann::json j;
    j["ok"] = rep.ok;
    if (!rep.ok) {
      j["error_kind"] = rep.error_kind;
      j["error"] = rep.error;
    }
    j["remote"] = rep.remote;
    j["alpn"] = rep.alpn;
    j["bytes"] = rep.bytes;
    j["echoed"] = rep.echoed;
    j["seconds"] = rep.seconds;
    j["mb_per_s"] = rep.seconds > 0 ? static_cast<double>(rep.bytes) / rep.seconds / 1e6 : 0.0;
    j["connect_ms"] = rep.connect_ms;
    j["rtt_ms"] = rep.rtt_ms;
    j["path"] = rep.path.empty() ? nlohmann::json(nullptr) : nlohmann::json(rep.path);
    j["started_relayed"] =
        rep.started_relayed ? nlohmann::json(*rep.started_relayed) : nlohmann::json(nullptr);
    j["direct_after_ms"] =
        rep.direct_after_ms ? nlohmann::json(*rep.direct_after_ms) : nlohmann::json(nullptr);
    j["paths"] = nlohmann::json::array();
    for (const auto& [t, name] : rep.paths) j["paths"].push_back({{"t_ms", t}, {"path", name}});
    j["datagrams_sent"] = rep.datagrams_sent;
    j["datagrams_echoed"] = rep.datagrams_echoed;
    if (rep.closed_by_peer) {
      j["closed_by_peer"] = {{"code", rep.closed_by_peer->code},
                             {"reason", rep.closed_by_peer->reason},
                             {"kind", close_kind(*rep.closed_by_peer)}};
    } else {
      j["closed_by_peer"] = nullptr;
    }
    j["stats"] = {{"packets_sent", rep.stats.packets_sent},
                  {"packets_received", rep.stats.packets_received},
                  {"packets_lost", rep.stats.packets_lost},
                  {"pto_count", rep.stats.pto_count},
                  {"congestion_events", rep.stats.congestion_events},
                  {"cwnd", rep.stats.path.cwnd},
                  {"blocked_cwnd", rep.stats.blocked_cwnd},
                  {"blocked_pacing", rep.stats.blocked_pacing},
                  {"blocked_flow_control", rep.stats.blocked_flow_control},
                  {"mtu", rep.stats.path.mtu}};
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    j["cpu_s"] = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec +
                 ru.ru_stime.tv_usec / 1e6;
    std::cout << j.dump() << "\n" << std::flush;
  }
  if (!rep.ok) {
    std::cerr << "irohlab: error: " << rep.error_kind << ": " << rep.error << "\n";
    return 1;
  }
  return 0;
}

}  // namespace

void register_quic_commands(CLI::App& app) {
  {
    auto o = std::make_shared<ListenOptions>();
    auto* cmd = app.add_subcommand(
        "listen",
        "Serve QUIC on a UDP socket: prints the endpoint ticket as the first stdout line, then one "
        "JSON line per connection event, until SIGINT/SIGTERM (docs/PEER_CLI.md)");
    cmd->add_option("--alpn", o->alpns, "accepted ALPN (repeatable)")->required();
    cmd->add_option("--secret", o->secret, "32-byte ed25519 secret key, hex (default: random)");
    cmd->add_option("--bind", o->bind, "UDP address to bind (default 127.0.0.1:0)");
    auto* echo = cmd->add_flag("--echo", o->echo, "echo streams and datagrams (default)");
    auto* sink = cmd->add_flag("--sink", o->sink, "read streams to the end, answer nothing");
    auto* source = cmd->add_option("--source", o->source, "write N pattern bytes on each stream");
    echo->excludes(sink)->excludes(source);
    sink->excludes(source);
    cmd->add_option("--close-code", o->close_code,
                    "close each connection with this code after its first stream");
    cmd->add_option("--close-reason", o->close_reason, "reason for --close-code (default bye)");
    cmd->add_option("--qlog", o->qlog, "write a qlog (JSON-SEQ) per connection into DIR");
    cmd->add_flag("--retry", o->retry, "validate client addresses with a Retry");
    cmd->add_option("--relay", o->relay,
                    "home relay URL: reachable through it; the ticket carries it");
    cmd->add_flag("--relay-only", o->relay_only,
                  "the ticket carries only the relay URL (connections start relayed)");
    cmd->add_option("--relay-ca", o->relay_ca,
                    "https relay: trust this PEM CA instead of the "
                    "system roots");
    cmd->add_option("--external-addr", o->external_addrs,
                    "IP:PORT we are reachable at besides our interfaces (e.g. a NAT mapping); "
                    "announced for hole punching (repeatable)");
    cmd->add_flag("--no-holepunch", o->no_holepunch,
                  "no NAT traversal: stay on the path the connection started on");
    cmd->callback([o] {
      if (o->relay_only && o->relay.empty()) throw UsageError("--relay-only needs --relay URL");
      if (o->bind.empty()) throw UsageError("--bind needs an address");
      const int rc = run_listen(*o);
      if (rc != 0) std::exit(rc);
    });
  }
  {
    auto o = std::make_shared<ConnectOptions>();
    auto* cmd = app.add_subcommand(
        "connect",
        "Dial an endpoint ticket over QUIC, send, optionally verify the echo, report "
        "(docs/PEER_CLI.md)");
    cmd->add_option("ticket", o->ticket, "endpoint ticket")->required();
    cmd->add_option("--alpn", o->alpn, "ALPN to offer")->required();
    cmd->add_option("--secret", o->secret, "32-byte ed25519 secret key, hex (default: random)");
    auto* bytes = cmd->add_option("--bytes", o->bytes, "bytes to send on each stream");
    auto* in = cmd->add_flag("--stdin", o->use_stdin, "send standard input on one stream");
    bytes->excludes(in);
    cmd->add_flag("--echo", o->echo, "verify the echo byte for byte");
    cmd->add_option("--streams", o->streams, "concurrent streams (default 1)")
        ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{256}));
    cmd->add_flag("--uni", o->uni, "use unidirectional streams");
    cmd->add_option("--datagrams", o->datagrams, "send N datagrams and count the echoes");
    cmd->add_option("--datagram-size", o->datagram_size, "datagram size (default 1000)")
        ->check(CLI::Range(std::uint64_t{4}, std::uint64_t{1100}));
    cmd->add_option("--idle", o->idle, "stay idle for S seconds after the handshake")
        ->check(CLI::Range(0.0, 3600.0));
    cmd->add_option("--close-code", o->close_code, "application close code (default 0)");
    cmd->add_option("--close-reason", o->close_reason, "close reason (default done)");
    cmd->add_option("--timeout", o->timeout, "handshake timeout in seconds (default 10)")
        ->check(CLI::Range(0.1, 600.0));
    cmd->add_flag("--json", o->json, "print one JSON object with the results");
    cmd->add_option("--qlog", o->qlog, "write a qlog (JSON-SEQ) per connection into DIR");
    cmd->add_option("--relay", o->relay,
                    "our home relay URL; allows dialing the ticket's relay when needed");
    cmd->add_flag("--relay-only", o->relay_only, "dial only through the ticket's relay");
    cmd->add_option("--relay-ca", o->relay_ca, "https relay: trust this PEM CA");
    cmd->add_option("--bind", o->bind, "local UDP address (default: by the ticket's family)");
    cmd->add_option("--wait-direct", o->wait_direct,
                    "after the handshake, wait up to S seconds for a direct path")
        ->check(CLI::Range(0.0, 600.0));
    cmd->add_option("--hold", o->hold, "keep the connection S seconds after the transfer")
        ->check(CLI::Range(0.0, 3600.0));
    cmd->add_option("--external-addr", o->external_addrs,
                    "IP:PORT we are reachable at besides our interfaces (e.g. a NAT mapping); "
                    "announced for hole punching (repeatable)");
    cmd->add_flag("--no-holepunch", o->no_holepunch,
                  "no NAT traversal: stay on the path the connection started on");
    cmd->callback([o] {
      const int rc = run_connect_cmd(*o);
      if (rc != 0) std::exit(rc);
    });
  }
}

}  // namespace irohlab::cli

// UDP send cost on loopback: one GSO train (UDP_SEGMENT) against the fallbacks (one sendmmsg of
// per-datagram entries, and one sendmsg call per datagram). Every iteration sends 64 datagrams of
// 1200 bytes (a QUIC-sized burst). The receiver is never read: once its buffer is full the kernel
// drops at the socket, the same cost for every variant, so the numbers are the sender's path
// (syscalls, per-skb IP/UDP work, loopback) and not the receiver's.
// BM_UdpGsoSpeedup interleaves the variants in one run and prints the ratios as its counters
// (per_datagram_over_gso, sendmmsg_over_gso: how many times longer the fallback takes).
#include <benchmark/benchmark.h>

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <optional>

#include "io/udp_socket.h"

namespace {

using iroh::io::UdpSocket;
using iroh::io::UdpSocketOptions;

constexpr std::size_t kSegments = 64;
constexpr std::size_t kSegmentSize = 1200;

struct Pair {
  boost::asio::io_context io;
  std::optional<UdpSocket> gso;    // GSO on (if the kernel has it)
  std::optional<UdpSocket> plain;  // GSO off
  std::optional<UdpSocket> sink;   // GRO off: the kernel segments GSO trains before queueing
  iroh::Bytes payload = iroh::Bytes(kSegments * kSegmentSize, 0xab);

  Pair() {
    const auto lo = iroh::SocketAddr::v4({127, 0, 0, 1}, 0);
    auto a = UdpSocket::bind(io, lo);
    auto b = UdpSocket::bind(io, lo, UdpSocketOptions{.allow_gso = false});
    auto c = UdpSocket::bind(io, lo,
                             UdpSocketOptions{.allow_gro = false, .socket_buffer_bytes = 1 << 20});
    if (!a.ok() || !b.ok() || !c.ok()) {
      std::fprintf(stderr, "udp_socket_bench: bind failed\n");
      std::abort();
    }
    gso.emplace(std::move(*a));
    plain.emplace(std::move(*b));
    sink.emplace(std::move(*c));
  }

  std::size_t send_gso() { return sent(gso->send(sink->local_addr(), 0, payload, kSegmentSize)); }
  std::size_t send_mmsg() {
    return sent(plain->send(sink->local_addr(), 0, payload, kSegmentSize));
  }
  std::size_t send_each() {
    std::size_t total = 0;
    for (std::size_t i = 0; i < kSegments; ++i)
      total += sent(plain->send(sink->local_addr(), 0,
                                iroh::ByteView(payload).subspan(i * kSegmentSize, kSegmentSize),
                                kSegmentSize));
    return total;
  }

  static std::size_t sent(const iroh::Result<std::size_t>& r) {
    if (!r.ok()) {
      std::fprintf(stderr, "udp_socket_bench: %s\n", r.error().message.c_str());
      std::abort();
    }
    return *r;
  }
};

template <std::size_t (Pair::*Send)()>
void BM_UdpSend(benchmark::State& state) {
  Pair p;
  std::size_t bytes = 0;
  for (auto _ : state) bytes += (p.*Send)();
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * kSegments));
}

void BM_UdpSendGso(benchmark::State& state) { BM_UdpSend<&Pair::send_gso>(state); }
void BM_UdpSendMmsg(benchmark::State& state) { BM_UdpSend<&Pair::send_mmsg>(state); }
void BM_UdpSendPerDatagram(benchmark::State& state) { BM_UdpSend<&Pair::send_each>(state); }

// The three variants interleaved (so they see the same machine load); the ratios are the result.
void BM_UdpGsoSpeedup(benchmark::State& state) {
  Pair p;
  using Clock = std::chrono::steady_clock;
  Clock::duration t_gso{}, t_mmsg{}, t_each{};
  for (auto _ : state) {
    auto t0 = Clock::now();
    p.send_gso();
    auto t1 = Clock::now();
    p.send_mmsg();
    auto t2 = Clock::now();
    p.send_each();
    auto t3 = Clock::now();
    t_gso += t1 - t0;
    t_mmsg += t2 - t1;
    t_each += t3 - t2;
  }
  const double gso = std::chrono::duration<double>(t_gso).count();
  const double mmsg = std::chrono::duration<double>(t_mmsg).count();
  const double each = std::chrono::duration<double>(t_each).count();
  state.counters["per_datagram_over_gso"] = each / gso;
  state.counters["sendmmsg_over_gso"] = mmsg / gso;
  state.counters["gso"] = p.gso->capabilities().gso ? 1 : 0;
}

}  // namespace

BENCHMARK(BM_UdpSendGso);
BENCHMARK(BM_UdpSendMmsg);
BENCHMARK(BM_UdpSendPerDatagram);
BENCHMARK(BM_UdpGsoSpeedup);

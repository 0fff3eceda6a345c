// Helpers for the connection tests: a deterministic byte pattern and an echo transfer driven on a
// QuicPair (client writes N bytes on a bidi stream, the server echoes every byte back as it reads
// them, the client checks what comes back against the pattern without storing it).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "quic_test_pair.h"

namespace iroh::testing {

// Byte i of the test pattern for `salt`; aperiodic enough to catch misplaced data.
inline std::uint8_t pattern_byte(std::uint64_t i, std::uint64_t salt = 0) {
  std::uint64_t x = (i >> 4) * 0x9e3779b97f4a7c15ULL + salt;
  x ^= x >> 29;
  return static_cast<std::uint8_t>((x >> 8) + i);
}
inline Bytes pattern(std::size_t n, std::uint64_t salt = 0, std::uint64_t offset = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = pattern_byte(offset + i, salt);
  return b;
}

// IROHLAB_SEED=n restricts seed loops to that seed (reproduce one failure).
inline std::optional<std::uint64_t> seed_override() {
  if (const char* s = std::getenv("IROHLAB_SEED")) return std::strtoull(s, nullptr, 10);
  return std::nullopt;
}

// The seeds first, first+1, … of a seeded loop. IROHLAB_SEED=<seed> runs one seed;
// IROHLAB_SEED_COUNT=<n> caps the count (tools/test uses it for the ASan build, where 100 × 4 MiB
// would dominate the run; the release build runs them all).
inline std::vector<std::uint64_t> seeds(std::uint64_t first, std::size_t count) {
  if (auto s = seed_override()) return {*s};
  if (const char* cap = std::getenv("IROHLAB_SEED_COUNT"); cap && std::atoi(cap) > 0) {
    count = std::min<std::size_t>(count, static_cast<std::size_t>(std::atoi(cap)));
  }
  std::vector<std::uint64_t> out;
  for (std::size_t i = 0; i < count; ++i) out.push_back(first + i);
  return out;
}

// One echo exchange on an established QuicPair. Call pump() from run_until's predicate.
template <class Pair>
struct Echo {
  Echo(Pair& pair, std::size_t size, std::uint64_t salt = 0) : p(pair), n(size), salt(salt) {
    id = p.cconn()->open_stream(quic::StreamDirection::kBidi);
  }

  Pair& p;
  std::size_t n;
  std::uint64_t salt;
  std::optional<std::uint64_t> id;   // client side
  std::optional<std::uint64_t> sid;  // server side
  std::size_t written = 0;           // client → server
  std::size_t server_got = 0;
  std::size_t server_sent = 0;
  bool server_fin_in = false, server_finished = false;
  std::size_t back = 0;  // server → client, verified
  bool fin = false;
  bool corrupt = false;
  std::string error;
  Bytes chunk = Bytes(64 * 1024);
  Bytes server_buf;  // read but not yet echoed

  bool done() const { return fin || corrupt || !error.empty(); }

  // Moves the application side forward; returns done().
  bool pump() {
    auto* c = p.cconn();
    auto* s = p.sconn();
    if (!c || !id) {
      error = "no client connection/stream";
      return true;
    }
    while (written < n) {
      const std::size_t want = std::min<std::size_t>(n - written, 256 * 1024);
      Bytes data = pattern(want, salt, written);
      auto w = c->stream_write(*id, data);
      if (!w) {
        error = "client write: " + w.error().message;
        return true;
      }
      written += *w;
      if (*w < want) break;
    }
    if (written == n && !client_finished) {
      if (auto r = c->stream_finish(*id); r) client_finished = true;
    }
    if (s && !sid) sid = s->accept_stream(quic::StreamDirection::kBidi);
    if (s && sid) {
      while (!server_fin_in) {
        if (server_buf.size() > 4 * 1024 * 1024) break;  // echo back-pressure
        auto r = s->stream_read(*sid, chunk);
        if (!r) {
          error = "server read: " + r.error().message;
          return true;
        }
        server_buf.insert(server_buf.end(), chunk.begin(), chunk.begin() + r->bytes);
        server_got += r->bytes;
        if (r->fin) server_fin_in = true;
        if (r->bytes == 0) break;
      }
      if (!server_buf.empty()) {
        auto w = s->stream_write(*sid, server_buf);
        if (!w) {
          error = "server write: " + w.error().message;
          return true;
        }
        server_buf.erase(server_buf.begin(), server_buf.begin() + *w);
        server_sent += *w;
      }
      if (server_fin_in && server_buf.empty() && !server_finished) {
        if (auto r = s->stream_finish(*sid); r) server_finished = true;
      }
    }
    while (!fin) {
      auto r = c->stream_read(*id, chunk);
      if (!r) {
        error = "client read: " + r.error().message;
        return true;
      }
      for (std::size_t i = 0; i < r->bytes; ++i) {
        if (chunk[i] != pattern_byte(back + i, salt)) {
          corrupt = true;
          error = "corrupt byte at " + std::to_string(back + i);
          return true;
        }
      }
      back += r->bytes;
      if (r->fin) fin = true;
      if (r->bytes == 0) break;
    }
    if (fin && back != n)
      error = "short echo: " + std::to_string(back) + " of " + std::to_string(n);
    if (c->is_closed()) error = "client closed: " + c->close_reason()->describe();
    return done();
  }

  bool ok() const { return fin && !corrupt && error.empty() && back == n; }
  bool client_finished = false;
};

template <class Pair>
double seconds_since(const Pair& p, Instant t0) {
  return std::chrono::duration<double>(p.net.now() - t0).count();
}

// A tiny virtual-time driver like sim::VirtualNetwork, for what that one cannot do: endpoints
// that change address (migration), a tap that drops or mutates datagrams, ECN bleaching, and an
// endpoint recreated in place (stateless reset).
struct MiniNet {
  struct Node {
    quic::Endpoint* ep;
    SocketAddr addr;
  };
  explicit MiniNet(std::uint64_t seed) : seed(seed) {}

  std::uint64_t seed;
  Instant clock{std::chrono::seconds(1)};
  Instant now() const { return clock; }
  std::vector<Node> nodes;
  sim::LinkProfile profile;  // for every link created from clock on
  std::map<std::pair<SocketAddr, SocketAddr>, std::unique_ptr<sim::VirtualLink>> links;
  // Sees every datagram leaving `from` for `to`; returns false to drop it; may modify it.
  std::function<bool(const SocketAddr& from, const SocketAddr& to, Bytes& d, std::uint8_t& ecn)>
      tap;
  bool bleach_ecn = false;  // routers that clear the ECN bits
  std::uint64_t ect_delivered = 0, not_ect_delivered = 0;
  Bytes buf = Bytes(64 * 1500);
  std::uint64_t same_instant = 0;

  void attach(quic::Endpoint& ep, const SocketAddr& addr) { nodes.push_back({&ep, addr}); }
  void set_path(const SocketAddr&, const SocketAddr&, const sim::LinkProfile& p) { profile = p; }
  sim::VirtualLink& link(const SocketAddr& from, const SocketAddr& to) {
    auto& l = links[{from, to}];
    if (!l) l = std::make_unique<sim::VirtualLink>(profile, seed * 7919 + links.size());
    return *l;
  }
  void flush() {
    for (auto& n : nodes) {
      for (int i = 0; i < 10000; ++i) {
        auto t = n.ep->poll_transmit(clock, buf, 1);
        if (!t) break;
        Bytes d(buf.begin(), buf.begin() + t->size);
        std::uint8_t ecn = t->ecn;
        if (tap && !tap(n.addr, t->dest, d, ecn)) continue;
        link(n.addr, t->dest).send(clock, std::move(d), ecn);
      }
    }
  }
  bool step() {
    flush();
    std::optional<Instant> next;
    auto consider = [&](std::optional<Instant> t) {
      if (t && (!next || *t < *next)) next = t;
    };
    for (auto& [k, l] : links) consider(l->next_delivery());
    for (auto& n : nodes) consider(n.ep->next_timeout());
    if (!next) return false;
    if (*next > clock) {
      clock = *next;
      same_instant = 0;
    } else if (++same_instant > 100000) {
      // A timer in the past that handle_timeout() does not clear: the driver would spin forever.
      std::string who;
      for (std::size_t i = 0; i < nodes.size(); ++i) {
        if (auto t = nodes[i].ep->next_timeout(); t && *t <= clock) who += std::to_string(i) + " ";
      }
      throw std::runtime_error(
          "event loop live-lock at one instant; endpoints with a past timer: " + who);
    }
    for (auto& [k, l] : links) {
      for (auto& d : l->deliver_due(clock)) {
        for (auto& n : nodes) {
          if (n.addr != k.second) continue;
          std::uint8_t ecn = bleach_ecn ? 0 : d.ecn;
          (ecn ? ect_delivered : not_ect_delivered)++;
          n.ep->handle_datagram(clock, k.first, d.data, ecn);
        }
      }
    }
    for (auto& n : nodes) {
      if (auto t = n.ep->next_timeout(); t && *t <= clock) n.ep->handle_timeout(clock);
    }
    return true;
  }
  bool run_until(const std::function<bool()>& done, Duration limit) {
    const Instant deadline = clock + limit;
    if (done()) return true;
    while (clock <= deadline) {
      if (!step()) return done();
      if (done()) return true;
    }
    return false;
  }
  void run_for(Duration d) {
    const Instant deadline = clock + d;
    while (clock < deadline) {
      flush();
      std::optional<Instant> next;
      for (auto& [k, l] : links) {
        if (auto t = l->next_delivery(); t && (!next || *t < *next)) next = t;
      }
      for (auto& n : nodes) {
        if (auto t = n.ep->next_timeout(); t && (!next || *t < *next)) next = t;
      }
      if (!next || *next > deadline) {
        clock = deadline;
        return;
      }
      step();
    }
  }
};

// QuicPair's twin on a MiniNet, with full control of both EndpointConfigs.
struct FlexPair {
  static inline const SocketAddr kClientAddr = SocketAddr::v4({10, 0, 0, 1}, 4433);
  static inline const SocketAddr kServerAddr = SocketAddr::v4({10, 0, 0, 2}, 443);

  explicit FlexPair(std::uint64_t seed, quic::EndpointConfig client_cfg = {},
                    quic::EndpointConfig server_cfg = default_server())
      : rng_client(seed * 2 + 1),
        rng_server(seed * 2 + 2),
        net(seed),
        client_key(SecretKey::generate(rng_client.array<32>())),
        server_key(SecretKey::generate(rng_server.array<32>())),
        server_cfg(std::move(server_cfg)) {
    client.emplace(client_key, std::move(client_cfg), rng_client);
    server.emplace(server_key, this->server_cfg, rng_server);
    net.attach(*client, kClientAddr);
    net.attach(*server, kServerAddr);
  }
  static quic::EndpointConfig default_server() {
    quic::EndpointConfig c;
    c.alpns = {"test/echo/0"};
    return c;
  }

  quic::ConnectionHandle dial(std::string alpn = "test/echo/0") {
    auto h = client->connect(net.now(), kServerAddr, server_key.public_key(), std::move(alpn));
    if (!h) throw std::runtime_error(h.error().message);
    client_handle = *h;
    return *h;
  }
  quic::Connection* cconn() { return client->connection(client_handle); }
  quic::Connection* sconn() {
    if (!server_handle) {
      if (auto h = server->accept()) server_handle = *h;
    }
    return server_handle ? server->connection(*server_handle) : nullptr;
  }
  bool connect(Duration limit = std::chrono::seconds(5)) {
    dial();
    return net.run_until(
        [&] {
          return cconn() && cconn()->is_handshake_complete() && sconn() &&
                 sconn()->is_handshake_complete();
        },
        limit);
  }
  // The server endpoint forgets everything: a new Endpoint object in the same place (the
  // MiniNet node keeps pointing at it), same keys and config (so the same reset key).
  void recreate_server() {
    server.reset();
    server_handle.reset();
    server.emplace(server_key, server_cfg, rng_server);
  }
  // The client's UDP address changes (NAT rebinding or a new network).
  void move_client(const SocketAddr& to) { net.nodes[0].addr = to; }

  SeededRandom rng_client, rng_server;
  MiniNet net;
  SecretKey client_key, server_key;
  quic::EndpointConfig server_cfg;
  std::optional<quic::Endpoint> client, server;
  quic::ConnectionHandle client_handle = 0;
  std::optional<quic::ConnectionHandle> server_handle;
};

}  // namespace iroh::testing

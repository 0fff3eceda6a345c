// Multipath (draft-ietf-quic-multipath) and n0 NAT traversal (QNT) on real engine pairs, in
// virtual time.
//
// VirtualNetwork cannot model this: it sends every datagram of an endpoint from the one address
// the endpoint was attached at (the first node flushed drains the endpoint), so a server reached
// at two addresses would answer a probe to its second address from its first, and the client
// rightly rejects such a PATH_RESPONSE. TwoRouteNet below routes by destination instead, the
// way a relay and a hole-punched direct route look to the two peers:
//
//   relay route   client → kServerViaRelay  arrives at the server from kClientViaRelay
//                 server → kClientViaRelay  arrives at the client from kServerViaRelay
//   direct route  client → kServer          arrives at the server from kClient
//                 server → kClient          arrives at the client from kServer
//
// The handshake goes over the relay route (path 0); the server announces kServer with
// ADD_ADDRESS and the client punches the direct route. Seeds: IROHLAB_SEED=<n> replays one.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "quic_echo.h"
#include "quic_test_pair.h"
#include "sim/virtual_link.h"

namespace iroh::quic {
namespace {

using namespace std::chrono_literals;
using sim::LinkProfile;
using sim::VirtualLink;
using testing::QuicPair;

const SocketAddr kClient = SocketAddr::v4({10, 0, 0, 1}, 4433);
const SocketAddr kServer = SocketAddr::v4({10, 0, 0, 2}, 443);
const SocketAddr kServerViaRelay = SocketAddr::v4({192, 0, 2, 7}, 7001);
const SocketAddr kClientViaRelay = SocketAddr::v4({192, 0, 2, 7}, 7002);

// Two endpoints joined by a relay route and a direct route (see the file comment); the same
// step/run semantics as sim::VirtualNetwork.
class TwoRouteNet {
 public:
  TwoRouteNet(std::uint64_t seed, ConnectionConfig client_cfg, ConnectionConfig server_cfg,
              const LinkProfile& relay, const LinkProfile& direct)
      : seed_(seed),
        rng_client_(seed * 2 + 1),
        rng_server_(seed * 2 + 2),
        client_key_(SecretKey::generate(rng_client_.array<32>())),
        server_key_(SecretKey::generate(rng_server_.array<32>())),
        buf_(64 * 1500) {
    EndpointConfig cc;
    cc.connection = client_cfg;
    client = std::make_unique<Endpoint>(client_key_, cc, rng_client_);
    EndpointConfig sc;
    sc.alpns = {"test/echo/0"};
    sc.connection = server_cfg;
    server = std::make_unique<Endpoint>(server_key_, sc, rng_server_);
    set_relay(relay);
    set_direct(direct);
  }

  // Replaces a route's links (both directions); datagrams in flight on the old links are lost.
  void set_relay(const LinkProfile& p) {
    relay_c2s_ = make_link(p);
    relay_s2c_ = make_link(p);
  }
  void set_direct(const LinkProfile& p) {
    direct_c2s_ = make_link(p);
    direct_s2c_ = make_link(p);
  }
  const VirtualLink& direct_c2s() const { return *direct_c2s_; }
  const VirtualLink& relay_c2s() const { return *relay_c2s_; }

  Instant now() const { return now_; }
  std::uint64_t unroutable() const { return unroutable_; }

  // Dials over the relay and runs until both sides confirmed the handshake (open_path and
  // initiate_nat_traversal_round need a confirmed handshake).
  bool connect(Duration limit = 5s) {
    auto h = client->connect(now_, kServerViaRelay, server_key_.public_key(), "test/echo/0");
    if (!h) return false;
    client_handle_ = *h;
    return run_until(
        [&] {
          return cconn() && cconn()->is_handshake_confirmed() && sconn() &&
                 sconn()->is_handshake_complete();
        },
        limit);
  }
  Connection* cconn() { return client->connection(client_handle_); }
  Connection* sconn() {
    if (!server_handle_) {
      if (auto h = server->accept()) server_handle_ = *h;
    }
    return server_handle_ ? server->connection(*server_handle_) : nullptr;
  }

  bool step() {
    flush(*client, true);
    flush(*server, false);
    std::optional<Instant> next;
    auto consider = [&](std::optional<Instant> t) {
      if (t && (!next || *t < *next)) next = t;
    };
    for (auto* l : links()) consider(l->next_delivery());
    consider(client->next_timeout());
    consider(server->next_timeout());
    if (!next) return false;
    if (*next > now_) now_ = *next;
    deliver(*relay_c2s_, *server, kClientViaRelay);
    deliver(*direct_c2s_, *server, kClient);
    deliver(*relay_s2c_, *client, kServerViaRelay);
    deliver(*direct_s2c_, *client, kServer);
    for (auto* ep : {client.get(), server.get()}) {
      if (auto t = ep->next_timeout(); t && *t <= now_) ep->handle_timeout(now_);
    }
    collect_events();
    return true;
  }
  bool run_until(const std::function<bool()>& done, Duration limit) {
    const Instant deadline = now_ + limit;
    collect_events();
    if (done()) return true;
    while (now_ <= deadline) {
      if (!step()) return done();
      if (done()) return true;
    }
    return false;
  }
  void run_for(Duration d) {
    const Instant deadline = now_ + d;
    run_until([&] { return now_ >= deadline; }, d + 1ns);
  }

  // Every event either connection produced so far, in order.
  std::vector<ConnectionEvent> client_events, server_events;

  template <class E>
  std::vector<E> events_of(const std::vector<ConnectionEvent>& evs) const {
    std::vector<E> out;
    for (const auto& e : evs) {
      if (const auto* x = std::get_if<E>(&e)) out.push_back(*x);
    }
    return out;
  }

  std::unique_ptr<Endpoint> client, server;

 private:
  std::unique_ptr<VirtualLink> make_link(const LinkProfile& p) {
    return std::make_unique<VirtualLink>(p, seed_ * 0x9e3779b97f4a7c15ULL + ++link_count_);
  }
  std::vector<VirtualLink*> links() {
    return {relay_c2s_.get(), direct_c2s_.get(), relay_s2c_.get(), direct_s2c_.get()};
  }
  void flush(Endpoint& ep, bool is_client) {
    for (int i = 0; i < 10000; ++i) {
      auto t = ep.poll_transmit(now_, buf_, 1);
      if (!t) return;
      VirtualLink* l = nullptr;
      if (is_client) {
        l = t->dest == kServerViaRelay ? relay_c2s_.get()
            : t->dest == kServer       ? direct_c2s_.get()
                                       : nullptr;
      } else {
        l = t->dest == kClientViaRelay ? relay_s2c_.get()
            : t->dest == kClient       ? direct_s2c_.get()
                                       : nullptr;
      }
      const std::size_t seg = t->segment_size ? t->segment_size : t->size;
      for (std::size_t off = 0; off < t->size; off += seg) {
        const std::size_t n = std::min(seg, t->size - off);
        if (!l) {
          ++unroutable_;
          continue;
        }
        l->send(now_, Bytes(buf_.begin() + off, buf_.begin() + off + n), t->ecn);
      }
    }
  }
  void deliver(VirtualLink& l, Endpoint& to, const SocketAddr& from) {
    if (auto t = l.next_delivery(); !t || *t > now_) return;
    for (auto& d : l.deliver_due(now_)) to.handle_datagram(now_, from, d.data, d.ecn);
  }
  void collect_events() {
    if (auto* c = cconn()) {
      while (auto e = c->poll_event()) client_events.push_back(std::move(*e));
    }
    if (auto* s = sconn()) {
      while (auto e = s->poll_event()) server_events.push_back(std::move(*e));
    }
  }

  std::uint64_t seed_;
  SeededRandom rng_client_, rng_server_;
  SecretKey client_key_, server_key_;
  Instant now_ = Instant(std::chrono::seconds(1));
  std::unique_ptr<VirtualLink> relay_c2s_, relay_s2c_, direct_c2s_, direct_s2c_;
  std::uint64_t link_count_ = 0;
  std::uint64_t unroutable_ = 0;
  ConnectionHandle client_handle_ = 0;
  std::optional<ConnectionHandle> server_handle_;
  Bytes buf_;
};

std::optional<PathStats> path_by_id(const Connection* c, std::uint32_t id) {
  for (const auto& p : c->paths()) {
    if (p.id == id) return p;
  }
  return std::nullopt;
}

std::string describe_close(const Connection* c) {
  if (!c) return "gone";
  if (!c->is_closed()) return "open";
  return "closed: " + c->close_reason()->describe();
}

std::string dump_paths(const Connection* c) {
  std::string out;
  for (const auto& p : c->paths()) {
    out += "[id " + std::to_string(p.id) + " " + p.remote.to_string() +
           (p.validated ? " validated" : "") + (p.abandoned ? " abandoned" : "") + " sent " +
           std::to_string(p.packets_sent) + " rcvd " + std::to_string(p.packets_received) + "] ";
  }
  return out;
}

LinkProfile relay_link() {
  LinkProfile l;
  l.delay = 30ms;
  return l;
}
LinkProfile direct_link() {
  LinkProfile l;
  l.delay = 2ms;
  return l;
}

// The hole punch of test (b), shared: announce kServer, start a round from kClient, wait for the
// path to validate on both sides. Returns the path id (nullopt after a gtest failure).
std::optional<std::uint32_t> punch(TwoRouteNet& n) {
  auto* c = n.cconn();
  auto* s = n.sconn();
  EXPECT_TRUE(s->add_nat_traversal_address(kServer).ok());
  if (!n.run_until(
          [&] { return !n.events_of<event::NatTraversalUpdated>(n.client_events).empty(); }, 2s)) {
    ADD_FAILURE() << "no NatTraversalUpdated on the client";
    return std::nullopt;
  }
  EXPECT_EQ(c->nat_traversal_remote_addresses(), std::vector<SocketAddr>{kServer});
  auto round = c->initiate_nat_traversal_round(n.now(), {kClient});
  EXPECT_TRUE(round.ok());
  if (!round.ok()) return std::nullopt;
  EXPECT_EQ(*round, 1u);
  const bool opened = n.run_until(
      [&] {
        auto cp = n.events_of<event::PathOpened>(n.client_events);
        auto sp = n.events_of<event::PathOpened>(n.server_events);
        return !cp.empty() && !sp.empty();
      },
      5s);
  if (!opened) {
    ADD_FAILURE() << "no PathOpened on both sides; client probes sent "
                  << c->stats().nat_probes_sent << ", responses " << c->stats().nat_probe_responses;
    return std::nullopt;
  }
  auto cp = n.events_of<event::PathOpened>(n.client_events);
  auto sp = n.events_of<event::PathOpened>(n.server_events);
  EXPECT_EQ(cp.size(), 1u);
  EXPECT_EQ(cp.front().remote, kServer);
  EXPECT_EQ(sp.front().id, cp.front().id);
  EXPECT_EQ(sp.front().remote, kClient);
  return cp.front().id;
}

// Uploads `size` pattern bytes on a uni stream from the client; `during` runs before each step
// with the bytes the server verified so far. Returns an error text, empty on success.
struct Upload {
  Upload(std::size_t n, std::uint64_t s) : size(n), salt(s) {}
  std::size_t size;
  std::uint64_t salt;
  std::size_t written = 0, received = 0;
  bool finished_write = false;
  std::optional<std::uint64_t> cid, sid;
  std::string error;
  Bytes buf = Bytes(64 * 1024);

  // One pump; true when done (completed or failed).
  bool pump(Connection* c, Connection* s) {
    if (!c || !s || c->is_closed() || s->is_closed()) {
      error = "connection closed";
      return true;
    }
    if (!cid) cid = c->open_stream(StreamDirection::kUni);
    if (!cid) {
      error = "open_stream failed";
      return true;
    }
    while (written < size) {
      const std::size_t n = std::min<std::size_t>(size - written, 128 * 1024);
      auto w = c->stream_write(*cid, testing::pattern(n, salt, written));
      if (!w) {
        error = "write: " + w.error().message;
        return true;
      }
      written += *w;
      if (*w < n) break;
    }
    if (written == size && !finished_write) finished_write = c->stream_finish(*cid).ok();
    if (!sid) sid = s->accept_stream(StreamDirection::kUni);
    if (!sid) return false;
    for (;;) {
      auto r = s->stream_read(*sid, buf);
      if (!r) {
        error = "read: " + r.error().message;
        return true;
      }
      for (std::size_t i = 0; i < r->bytes; ++i) {
        if (buf[i] != testing::pattern_byte(received + i, salt)) {
          error = "corrupt byte at offset " + std::to_string(received + i);
          return true;
        }
      }
      received += r->bytes;
      if (r->fin) {
        if (received != size) error = "fin after " + std::to_string(received) + " bytes";
        return true;
      }
      if (r->bytes == 0) return false;
    }
  }
};

// ---- (a) negotiation
// -----------------------------------------------------------------------------

TEST(ConnectionMultipath, DefaultConfigsNegotiateMultipathAndNatTraversal) {
  QuicPair p(1);
  ASSERT_TRUE(p.connect());
  EXPECT_TRUE(p.cconn()->multipath_enabled());
  EXPECT_TRUE(p.sconn()->multipath_enabled());
  EXPECT_TRUE(p.cconn()->nat_traversal_enabled());
  EXPECT_TRUE(p.sconn()->nat_traversal_enabled());
  // One path (id 0) to start with, validated on both sides once the handshake is done.
  auto cps = p.cconn()->paths();
  ASSERT_EQ(cps.size(), 1u);
  EXPECT_EQ(cps.front().id, 0u);
  EXPECT_EQ(cps.front().remote, QuicPair::kServerAddr);
}

// Multipath needs both sides: one side with max_path_id = 0 turns off multipath and with it QNT;
// the QNT API refuses and no QNT frame reaches the wire (the peer would close the connection with
// PROTOCOL_VIOLATION on an ADD_ADDRESS/REACH_OUT it did not negotiate).
void expect_multipath_off(ConnectionConfig client_cfg, ConnectionConfig server_cfg) {
  std::vector<std::string> qlog_names;
  auto sink = [&](const QlogEvent& e) { qlog_names.push_back(e.name); };
  client_cfg.qlog = sink;
  server_cfg.qlog = sink;
  QuicPair p(2, client_cfg, server_cfg, {"test/echo/0"});
  ASSERT_TRUE(p.connect());
  ASSERT_TRUE(p.net.run_until([&] { return p.cconn()->is_handshake_confirmed(); }, 2s));
  auto* c = p.cconn();
  auto* s = p.sconn();
  EXPECT_FALSE(c->multipath_enabled());
  EXPECT_FALSE(s->multipath_enabled());
  EXPECT_FALSE(c->nat_traversal_enabled());
  EXPECT_FALSE(s->nat_traversal_enabled());
  EXPECT_FALSE(s->add_nat_traversal_address(SocketAddr::v4({10, 0, 0, 9}, 9)).ok());
  EXPECT_FALSE(c->initiate_nat_traversal_round(p.net.now(), {QuicPair::kClientAddr}).ok());
  EXPECT_FALSE(
      c->open_path(p.net.now(), SocketAddr::v4({10, 0, 0, 9}, 9), PathStatus::kAvailable).ok());
  EXPECT_FALSE(c->close_path(p.net.now(), 0, 0).ok());
  EXPECT_TRUE(c->nat_traversal_remote_addresses().empty());
  // Traffic still flows (single-path RFC 9000) and nothing QNT happened on either side.
  testing::Echo<QuicPair> echo(p, 64 * 1024, 2);
  ASSERT_TRUE(p.net.run_until([&] { return echo.pump(); }, 10s)) << echo.error;
  EXPECT_TRUE(echo.error.empty()) << echo.error;
  EXPECT_FALSE(c->is_closed());
  EXPECT_FALSE(s->is_closed());
  for (auto* conn : {c, s}) {
    EXPECT_EQ(conn->stats().nat_probes_sent, 0u);
    EXPECT_EQ(conn->stats().paths_opened, 0u);
    EXPECT_EQ(conn->paths().size(), 1u);
  }
  for (const auto& name : qlog_names) {
    EXPECT_EQ(name.find("nat_"), std::string::npos) << name;
    EXPECT_EQ(name.find("path_created"), std::string::npos) << name;
  }
  std::size_t nat_events = 0;
  while (auto e = c->poll_event())
    nat_events += std::holds_alternative<event::NatTraversalUpdated>(*e);
  EXPECT_EQ(nat_events, 0u);
}

TEST(ConnectionMultipath, ServerWithMaxPathIdZeroDisablesMultipathAndNatTraversal) {
  ConnectionConfig off;
  off.max_path_id = 0;
  expect_multipath_off(ConnectionConfig(), off);
}

TEST(ConnectionMultipath, ClientWithMaxPathIdZeroDisablesMultipathAndNatTraversal) {
  ConnectionConfig off;
  off.max_path_id = 0;
  expect_multipath_off(off, ConnectionConfig());
}

TEST(ConnectionMultipath, NatTraversalOffOnOneSideKeepsMultipath) {
  ConnectionConfig no_nat;
  no_nat.nat_traversal_addresses = 0;
  QuicPair p(3, ConnectionConfig(), no_nat, {"test/echo/0"});
  ASSERT_TRUE(p.connect());
  EXPECT_TRUE(p.cconn()->multipath_enabled());
  EXPECT_TRUE(p.sconn()->multipath_enabled());
  EXPECT_FALSE(p.cconn()->nat_traversal_enabled());
  EXPECT_FALSE(p.sconn()->nat_traversal_enabled());
  EXPECT_FALSE(p.sconn()->add_nat_traversal_address(SocketAddr::v4({10, 0, 0, 9}, 9)).ok());
}

// ---- API preconditions
// ----------------------------------------------------------------------------

TEST(ConnectionMultipath, PathApiRefusesWhatTheDraftForbids) {
  TwoRouteNet n(4, ConnectionConfig(), ConnectionConfig(), relay_link(), direct_link());
  ASSERT_TRUE(n.connect());
  auto* c = n.cconn();
  auto* s = n.sconn();
  // Servers never open paths, clients never announce addresses, servers never start rounds.
  EXPECT_FALSE(s->open_path(n.now(), kClient, PathStatus::kAvailable).ok());
  EXPECT_FALSE(c->add_nat_traversal_address(kClient).ok());
  EXPECT_FALSE(s->initiate_nat_traversal_round(n.now(), {kServer}).ok());
  EXPECT_FALSE(c->initiate_nat_traversal_round(n.now(), {}).ok());
  // The last open path cannot be abandoned; unknown paths cannot be touched.
  EXPECT_FALSE(c->close_path(n.now(), 0, 0).ok());
  EXPECT_FALSE(c->close_path(n.now(), 5, 0).ok());
  EXPECT_FALSE(c->set_path_status(5, PathStatus::kBackup).ok());
  EXPECT_FALSE(c->set_path_idle_timeout(5, 1s).ok());
  // Opening a path to an address already in use returns that path.
  auto same = c->open_path(n.now(), kServerViaRelay, PathStatus::kAvailable);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(*same, 0u);
}

// (Found a bug: ADD_ADDRESS went out before REMOVE_ADDRESS in the same packet, so the
// client is momentarily over its limit and silently drops the new candidate (ends with 1, not 2).
TEST(ConnectionMultipath, ServerAddressLimitIsTheClientsAnnouncedLimit) {
  ConnectionConfig small;
  small.nat_traversal_addresses = 2;
  TwoRouteNet n(5, small, ConnectionConfig(), relay_link(), direct_link());
  ASSERT_TRUE(n.connect());
  auto* s = n.sconn();
  EXPECT_TRUE(s->add_nat_traversal_address(SocketAddr::v4({10, 0, 1, 1}, 1)).ok());
  EXPECT_TRUE(s->add_nat_traversal_address(SocketAddr::v4({10, 0, 1, 2}, 2)).ok());
  EXPECT_TRUE(s->add_nat_traversal_address(SocketAddr::v4({10, 0, 1, 2}, 2)).ok());  // known
  EXPECT_FALSE(s->add_nat_traversal_address(SocketAddr::v4({10, 0, 1, 3}, 3)).ok());
  ASSERT_TRUE(
      n.run_until([&] { return n.cconn()->nat_traversal_remote_addresses().size() == 2; }, 2s));
  // Withdrawing reaches the client too, and frees a slot.
  EXPECT_TRUE(s->remove_nat_traversal_address(SocketAddr::v4({10, 0, 1, 1}, 1)).ok());
  EXPECT_TRUE(s->add_nat_traversal_address(SocketAddr::v4({10, 0, 1, 3}, 3)).ok());
  ASSERT_TRUE(n.run_until(
      [&] {
        auto r = n.cconn()->nat_traversal_remote_addresses();
        std::sort(r.begin(), r.end());
        return r == std::vector<SocketAddr>{SocketAddr::v4({10, 0, 1, 2}, 2),
                                            SocketAddr::v4({10, 0, 1, 3}, 3)};
      },
      2s))
      << describe_close(n.cconn()) << " / " << describe_close(n.sconn()) << " client has "
      << n.cconn()->nat_traversal_remote_addresses().size() << " candidates";
  EXPECT_FALSE(n.cconn()->is_closed());
}

// The same, with the REMOVE_ADDRESS delivered before the replacement is announced.
TEST(ConnectionMultipath, ServerAddressLimitWithRemovalDeliveredFirst) {
  ConnectionConfig small;
  small.nat_traversal_addresses = 2;
  TwoRouteNet n(5, small, ConnectionConfig(), relay_link(), direct_link());
  ASSERT_TRUE(n.connect());
  auto* s = n.sconn();
  const auto a1 = SocketAddr::v4({10, 0, 1, 1}, 1), a2 = SocketAddr::v4({10, 0, 1, 2}, 2),
             a3 = SocketAddr::v4({10, 0, 1, 3}, 3);
  EXPECT_TRUE(s->add_nat_traversal_address(a1).ok());
  EXPECT_TRUE(s->add_nat_traversal_address(a2).ok());
  EXPECT_FALSE(s->add_nat_traversal_address(a3).ok());
  ASSERT_TRUE(
      n.run_until([&] { return n.cconn()->nat_traversal_remote_addresses().size() == 2; }, 2s));
  EXPECT_TRUE(s->remove_nat_traversal_address(a1).ok());
  ASSERT_TRUE(
      n.run_until([&] { return n.cconn()->nat_traversal_remote_addresses().size() == 1; }, 2s));
  EXPECT_TRUE(s->add_nat_traversal_address(a3).ok());
  ASSERT_TRUE(n.run_until(
      [&] {
        auto r = n.cconn()->nat_traversal_remote_addresses();
        std::sort(r.begin(), r.end());
        return r == std::vector<SocketAddr>{a2, a3};
      },
      2s));
  // Three changes, three NatTraversalUpdated (a1+a2 may share one packet: at least 3).
  EXPECT_GE(n.events_of<event::NatTraversalUpdated>(n.client_events).size(), 3u);
  EXPECT_FALSE(n.cconn()->is_closed());
}

// ---- (b) hole punch
// --------------------------------------------------------------------------------

TEST(ConnectionMultipath, HolePunchOpensDirectPathAndBulkDataMovesThere) {
  TwoRouteNet n(6, ConnectionConfig(), ConnectionConfig(), relay_link(), direct_link());
  ASSERT_TRUE(n.connect());
  auto* c = n.cconn();
  auto* s = n.sconn();
  ASSERT_TRUE(c->multipath_enabled() && s->multipath_enabled());
  ASSERT_TRUE(c->nat_traversal_enabled() && s->nat_traversal_enabled());
  auto id = punch(n);
  ASSERT_TRUE(id.has_value());
  EXPECT_NE(*id, 0u);
  // The hole is open: the client probed kServer and got an answer from kServer; the server
  // learns kClient from the REACH_OUT (which travels the slower relay route, so it may arrive
  // after the direct path opened).
  EXPECT_GE(c->stats().nat_probes_sent, 1u);
  EXPECT_GE(c->stats().nat_probe_responses, 1u);
  ASSERT_TRUE(n.run_until(
      [&] { return s->nat_traversal_remote_addresses() == std::vector<SocketAddr>{kClient}; }, 2s));
  ASSERT_TRUE(n.run_until(
      [&] {
        auto cp = path_by_id(c, *id);
        auto sp = path_by_id(s, *id);
        return cp && cp->validated && sp && sp->validated;
      },
      2s));
  EXPECT_EQ(path_by_id(c, *id)->remote, kServer);
  EXPECT_EQ(path_by_id(s, *id)->remote, kClient);
  // A probe-opened path starts as Backup (the relay keeps carrying data until the endpoint's
  // selector decides otherwise).
  EXPECT_EQ(path_by_id(c, *id)->status, PathStatus::kBackup);

  // The selector's decision, applied on both sides: direct Available, relay Backup.
  for (auto* conn : {c, s}) {
    ASSERT_TRUE(conn->set_path_status(*id, PathStatus::kAvailable).ok());
    ASSERT_TRUE(conn->set_path_status(0, PathStatus::kBackup).ok());
  }
  const auto relay_before = path_by_id(c, 0)->packets_sent;
  const auto direct_before = path_by_id(c, *id)->packets_sent;
  const auto direct_link_before = n.direct_c2s().stats().bytes_delivered;
  constexpr std::size_t kSize = 1 << 20;
  Upload up(kSize, 6);
  ASSERT_TRUE(n.run_until([&] { return up.pump(c, s); }, 20s)) << "received " << up.received;
  ASSERT_TRUE(up.error.empty()) << up.error;
  EXPECT_EQ(up.received, kSize);
  const auto relay_sent = path_by_id(c, 0)->packets_sent - relay_before;
  const auto direct_sent = path_by_id(c, *id)->packets_sent - direct_before;
  // ≥ 1 MiB / 1452 B packets on the direct path; the relay sees only control traffic.
  EXPECT_GE(direct_sent, kSize / 1452) << "relay " << relay_sent;
  EXPECT_LT(relay_sent * 20, direct_sent) << "relay " << relay_sent << " direct " << direct_sent;
  EXPECT_GE(n.direct_c2s().stats().bytes_delivered - direct_link_before, kSize);
  EXPECT_EQ(c->stats().path.id, *id);
  EXPECT_EQ(n.unroutable(), 0u);
}

// ---- (c) relay → direct → direct dies → relay, 100 seeds
// -----------------------------------------

struct ScenarioResult {
  std::string error;
  std::optional<std::uint32_t> direct_id;
  std::optional<Instant> upgraded_at, died_at, abandoned_at, done_at;
  std::uint64_t direct_packets = 0;  // client packets on the direct path before it died
  std::size_t received = 0;
  std::string describe() const {
    auto at = [&](const std::optional<Instant>& t) {
      return t ? std::to_string(std::chrono::duration<double>(t->time_since_epoch()).count())
               : std::string("-");
    };
    return error + " received=" + std::to_string(received) + " upgraded=" + at(upgraded_at) +
           " died=" + at(died_at) + " abandoned=" + at(abandoned_at) + " done=" + at(done_at) +
           " direct_pkts=" + std::to_string(direct_packets);
  }
};

ScenarioResult relay_direct_relay(std::uint64_t seed, std::size_t size, Duration path_idle) {
  ScenarioResult res;
  LinkProfile relay = relay_link();
  relay.jitter = 2ms;
  relay.loss = 0.01;
  relay.reorder = 0.02;
  relay.reorder_delay = 10ms;
  LinkProfile direct = direct_link();
  direct.jitter = 500us;
  direct.loss = 0.01;
  direct.reorder = 0.02;
  direct.reorder_delay = 5ms;
  ConnectionConfig cfg;
  cfg.path_idle_timeout = path_idle;
  // Keep-alives must come faster than the path idle timeout (iroh: 5 s vs 15 s / 30 s), or the
  // relay path — quiet while data goes direct — idles out first.
  cfg.keep_alive = path_idle / 4;
  TwoRouteNet n(seed, cfg, cfg, relay, direct);
  if (!n.connect(10s)) {
    res.error = "handshake";
    return res;
  }
  auto* c = n.cconn();
  auto* s = n.sconn();
  if (!s->add_nat_traversal_address(kServer).ok()) {
    res.error = "add_nat_traversal_address";
    return res;
  }
  Upload up(size, seed);
  bool round_started = false;
  std::uint64_t direct_at_death = 0;
  const bool done = n.run_until(
      [&] {
        if (!res.error.empty()) return true;
        // A drained connection is removed by its endpoint: never hold on to stale pointers.
        c = n.cconn();
        s = n.sconn();
        if (!c || !s) {
          res.error = std::string("connection gone (") + (c ? "server" : "client") + ")";
          for (auto* ep : {n.client.get(), n.server.get()}) {
            for (const auto& r : ep->take_removed()) {
              res.error += r.reason ? " reason: " + r.reason->describe() : " no reason";
            }
          }
          res.error +=
              " at " +
              std::to_string(std::chrono::duration<double>(n.now().time_since_epoch()).count());
          return true;
        }
        if (c->is_closed() || s->is_closed()) {
          res.error = "closed: client " + describe_close(c) + ", server " + describe_close(s);
          return true;
        }
        // Upgrade a quarter into the transfer, once the candidate is known.
        if (!round_started && up.received >= size / 4 &&
            !c->nat_traversal_remote_addresses().empty()) {
          if (!c->initiate_nat_traversal_round(n.now(), {kClient}).ok()) {
            res.error = "initiate_nat_traversal_round";
            return true;
          }
          round_started = true;
        }
        if (!res.direct_id) {
          for (const auto& e : n.events_of<event::PathOpened>(n.client_events)) {
            if (e.remote == kServer) res.direct_id = e.id;
          }
          if (res.direct_id) {
            res.upgraded_at = n.now();
            for (auto* conn : {c, s}) {
              (void)conn->set_path_status(*res.direct_id, PathStatus::kAvailable);
              (void)conn->set_path_status(0, PathStatus::kBackup);
            }
          }
        }
        // The direct link dies once it carried a good share of the data.
        if (res.direct_id && !res.died_at) {
          auto ps = path_by_id(c, *res.direct_id);
          if (ps && ps->packets_sent >= 200) {
            res.direct_packets = ps->packets_sent;
            direct_at_death = ps->packets_sent;
            LinkProfile dead;
            dead.loss = 1.0;
            n.set_direct(dead);
            res.died_at = n.now();
          }
        }
        if (res.died_at && !res.abandoned_at) {
          for (const auto& e : n.events_of<event::PathAbandoned>(n.client_events)) {
            if (e.id == *res.direct_id) res.abandoned_at = n.now();
          }
        }
        if (up.pump(c, s)) {
          res.done_at = n.now();
          return true;
        }
        return false;
      },
      60s);
  (void)direct_at_death;
  res.received = up.received;
  if (res.error.empty()) res.error = up.error;
  if (!done && res.error.empty()) res.error = "not done within 60 s";
  if (res.error.empty() && up.received != size) res.error = "short";
  return res;
}

// The acceptance scenario: data starts on the relay, moves to the hole-punched direct path
// mid-transfer, the direct link dies mid-transfer, the direct path idles out after
// path_idle_timeout and the transfer completes over the relay — every byte verified.
// (Found two bugs: the path idle deadline included the PTO backoff, so a dead path was never
// abandoned; and a relay path quiet while data went direct idled out before its keep-alive.)
TEST(ConnectionMultipath, HundredSeedsRelayThenDirectThenDirectDiesCompletesOverRelay) {
  constexpr Duration kPathIdle = 2s;
  for (auto seed : testing::seeds(7000, 100)) {
    SCOPED_TRACE("IROHLAB_SEED=" + std::to_string(seed));
    const std::size_t size = (1 << 20) + (seed % 4) * (256 << 10);  // 1 … 1.75 MiB
    auto r = relay_direct_relay(seed, size, kPathIdle);
    ASSERT_TRUE(r.error.empty()) << r.describe();
    ASSERT_TRUE(r.direct_id.has_value()) << "hole punch failed: " << r.describe();
    ASSERT_TRUE(r.died_at.has_value()) << "direct path never carried data: " << r.describe();
    ASSERT_TRUE(r.abandoned_at.has_value()) << "direct path never abandoned: " << r.describe();
    // Abandoned by the path idle timer, which counts from the last packet received on the path
    // (that may precede the link's death a little): after the death, and not much later than
    // the idle timeout (3 PTO of a 4 ms path is far below 2 s).
    EXPECT_GT(*r.abandoned_at, *r.died_at) << r.describe();
    EXPECT_LE(*r.abandoned_at - *r.died_at, kPathIdle + 1s) << r.describe();
    EXPECT_GT(*r.done_at, *r.died_at) << "transfer must outlive the direct path: " << r.describe();
    if (::testing::Test::HasFailure()) break;
  }
}

// ---- (d) PATH_ABANDON exchange
// ---------------------------------------------------------------------

// The client abandons path `id` (code 0x42): it lingers abandoned, a second close is refused, and
// both sides report PathAbandoned(id, 0x42) exactly once.
void close_and_expect_abandoned(TwoRouteNet& n, Connection* c, std::uint32_t id) {
  ASSERT_TRUE(c->close_path(n.now(), id, 0x42).ok());
  EXPECT_FALSE(c->close_path(n.now(), id, 0x42).ok());  // already abandoned
  ASSERT_TRUE(path_by_id(c, id).has_value());
  EXPECT_TRUE(path_by_id(c, id)->abandoned);  // lingers for 3 PTO
  ASSERT_TRUE(n.run_until(
      [&] {
        return !n.events_of<event::PathAbandoned>(n.client_events).empty() &&
               !n.events_of<event::PathAbandoned>(n.server_events).empty();
      },
      2s));
  auto ca = n.events_of<event::PathAbandoned>(n.client_events);
  auto sa = n.events_of<event::PathAbandoned>(n.server_events);
  ASSERT_EQ(ca.size(), 1u);
  ASSERT_EQ(sa.size(), 1u);
  EXPECT_EQ(ca.front().id, id);
  EXPECT_EQ(ca.front().code, 0x42u);
  EXPECT_EQ(sa.front().id, id);
  EXPECT_EQ(sa.front().code, 0x42u);
}

// (Found a bug: a path the peer opened had no anti-amplification budget and never answered.)
TEST(ConnectionMultipath, ClosePathAbandonsOnBothSidesForgetsAfterThreePtoAndFreesAPathId) {
  // max_path_id 1: path ids 0 and 1 only, so opening another path after abandoning 1 needs the
  // MAX_PATH_ID increase both sides make for every abandoned path.
  ConnectionConfig cfg;
  cfg.max_path_id = 1;
  TwoRouteNet n(8, cfg, cfg, relay_link(), direct_link());
  ASSERT_TRUE(n.connect());
  auto* c = n.cconn();
  auto* s = n.sconn();
  ASSERT_TRUE(c->multipath_enabled());
  // Wait for the server's CIDs for path 1 (issued right after the handshake).
  Result<std::uint32_t> opened = make_error("not tried");
  ASSERT_TRUE(n.run_until(
      [&] {
        opened = c->open_path(n.now(), kServer, PathStatus::kAvailable);
        return opened.ok();
      },
      2s))
      << opened.error().message;
  const std::uint32_t id = *opened;
  EXPECT_EQ(id, 1u);
  ASSERT_TRUE(n.run_until(
      [&] {
        return !n.events_of<event::PathOpened>(n.client_events).empty() &&
               !n.events_of<event::PathOpened>(n.server_events).empty();
      },
      2s))
      << describe_close(c) << " / " << describe_close(s) << "\nclient " << dump_paths(c)
      << "\nserver " << dump_paths(s);
  // Every path id is in use: no third path.
  auto third = c->open_path(n.now(), SocketAddr::v4({10, 0, 0, 3}, 443), PathStatus::kBackup);
  EXPECT_FALSE(third.ok());

  const Instant closed_at = n.now();
  close_and_expect_abandoned(n, c, id);
  if (::testing::Test::HasFatalFailure()) return;
  // Forgotten after 3 PTO: with RTTs of 4 ms (direct) and 60 ms (relay) and 25 ms max_ack_delay,
  // 3 PTO is well under a second.
  ASSERT_TRUE(n.run_until(
      [&] { return !path_by_id(c, id).has_value() && !path_by_id(s, id).has_value(); }, 5s));
  EXPECT_LT(n.now() - closed_at, 1s);
  // Data still flows over path 0.
  Upload up(64 * 1024, 8);
  ASSERT_TRUE(n.run_until([&] { return up.pump(c, s); }, 5s));
  ASSERT_TRUE(up.error.empty()) << up.error;

  // MAX_PATH_ID was raised: a new path (id 2) can be opened and validates.
  ASSERT_TRUE(n.run_until(
      [&] {
        opened = c->open_path(n.now(), kServer, PathStatus::kAvailable);
        return opened.ok();
      },
      2s))
      << opened.error().message;
  EXPECT_EQ(*opened, 2u);
  ASSERT_TRUE(
      n.run_until([&] { return n.events_of<event::PathOpened>(n.client_events).size() == 2; }, 2s));
  EXPECT_EQ(n.events_of<event::PathOpened>(n.client_events).back().id, 2u);
  EXPECT_TRUE(path_by_id(c, 2)->validated);
  EXPECT_FALSE(c->is_closed());
  EXPECT_FALSE(s->is_closed());
}

// (d) via hole punching (which validates): close_path → PATH_ABANDON both ways, forgotten after
// 3 PTO, and with max_path_id 1 a second round can only open a path thanks to MAX_PATH_ID.
TEST(ConnectionMultipath, PunchedPathClosedIsAbandonedOnBothSidesAndAPathIdIsFreed) {
  ConnectionConfig cfg;
  cfg.max_path_id = 1;
  TwoRouteNet n(10, cfg, cfg, relay_link(), direct_link());
  ASSERT_TRUE(n.connect());
  auto* c = n.cconn();
  auto* s = n.sconn();
  auto id = punch(n);
  ASSERT_TRUE(id.has_value());
  ASSERT_EQ(*id, 1u);
  EXPECT_FALSE(c->open_path(n.now(), SocketAddr::v4({10, 0, 0, 3}, 443), PathStatus::kBackup).ok());
  const Instant closed_at = n.now();
  close_and_expect_abandoned(n, c, *id);
  if (::testing::Test::HasFatalFailure()) return;
  ASSERT_TRUE(n.run_until(
      [&] { return !path_by_id(c, *id).has_value() && !path_by_id(s, *id).has_value(); }, 5s))
      << "client " << dump_paths(c) << "\nserver " << dump_paths(s);
  EXPECT_LT(n.now() - closed_at, 1s);
  Upload up(64 * 1024, 10);
  ASSERT_TRUE(n.run_until([&] { return up.pump(c, s); }, 5s));
  ASSERT_TRUE(up.error.empty()) << up.error;
  // A second round re-opens the direct route on path id 2 (above the initial maximum of 1).
  auto round = c->initiate_nat_traversal_round(n.now(), {kClient});
  ASSERT_TRUE(round.ok());
  EXPECT_EQ(*round, 2u);
  ASSERT_TRUE(
      n.run_until([&] { return n.events_of<event::PathOpened>(n.client_events).size() == 2; }, 5s))
      << "client " << dump_paths(c) << "\nserver " << dump_paths(s);
  EXPECT_EQ(n.events_of<event::PathOpened>(n.client_events).back().id, 2u);
  EXPECT_EQ(n.events_of<event::PathOpened>(n.client_events).back().remote, kServer);
  EXPECT_FALSE(c->is_closed());
  EXPECT_FALSE(s->is_closed());
}

// A path that never validates (the address is a black hole) is given up after the path idle
// timeout; the connection carries on.
TEST(ConnectionMultipath, UnvalidatedPathIsAbandonedAfterPathIdleTimeout) {
  ConnectionConfig cfg;
  cfg.path_idle_timeout = 2s;
  LinkProfile dead;
  dead.loss = 1.0;
  TwoRouteNet n(9, cfg, cfg, relay_link(), dead);
  ASSERT_TRUE(n.connect());
  auto* c = n.cconn();
  Result<std::uint32_t> opened = make_error("not tried");
  ASSERT_TRUE(n.run_until(
      [&] {
        opened = c->open_path(n.now(), kServer, PathStatus::kAvailable);
        return opened.ok();
      },
      2s));
  const Instant t0 = n.now();
  ASSERT_TRUE(n.run_until(
      [&] { return !n.events_of<event::PathAbandoned>(n.client_events).empty(); }, 10s));
  EXPECT_GE(n.now() - t0, 2s - 1ms);
  EXPECT_LE(n.now() - t0, 3s);
  EXPECT_EQ(n.events_of<event::PathAbandoned>(n.client_events).front().id, *opened);
  EXPECT_TRUE(n.events_of<event::PathOpened>(n.client_events).empty());
  EXPECT_FALSE(c->is_closed());
}

}  // namespace
}  // namespace iroh::quic

// VirtualNetwork: sans-IO QUIC endpoints wired together by VirtualLinks, in virtual time.
//
// The deterministic simulator the engine's tests run on (as ngtcp2's examples/sim or quicly's
// test harness): no sockets, no clock, no threads. Each step drains every endpoint's
// poll_transmit() into the link towards the destination address, then jumps virtual time to the
// earliest event — a delivery or an endpoint timer — and performs it. Given the same seed and the
// same application actions, a run is identical every time, so a failing seed reproduces.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "base/socket_addr.h"
#include "base/time.h"
#include "quic/endpoint.h"
#include "sim/virtual_link.h"

namespace iroh::sim {

class VirtualNetwork {
 public:
  explicit VirtualNetwork(std::uint64_t seed, Instant start = Instant(std::chrono::seconds(1)));

  // Attaches an endpoint at `addr`. The endpoint must outlive the network.
  void attach(quic::Endpoint& endpoint, const SocketAddr& addr);
  // The link carrying datagrams from `from` to `to` (one direction). Without one, a zero-delay
  // lossless link is used.
  void set_link(const SocketAddr& from, const SocketAddr& to, const LinkProfile& profile);
  // Both directions.
  void set_path(const SocketAddr& a, const SocketAddr& b, const LinkProfile& profile);

  Instant now() const { return now_; }
  // Performs one event (after sending everything pending). False when nothing at all is left to
  // do (no datagram in flight, no timer armed).
  bool step();
  // Steps until `done()` holds (checked after every step) or `limit` of virtual time passes.
  // Returns whether done() held.
  bool run_until(const std::function<bool()>& done, Duration limit);
  // Steps through `d` of virtual time.
  void run_for(Duration d);

  const VirtualLink* link(const SocketAddr& from, const SocketAddr& to) const;
  std::uint64_t datagrams_unroutable() const { return unroutable_; }

 private:
  struct Node {
    quic::Endpoint* endpoint;
    SocketAddr addr;
  };
  VirtualLink& link_for(const SocketAddr& from, const SocketAddr& to);
  void flush(Node& node);

  std::uint64_t seed_;
  Instant now_;
  std::vector<Node> nodes_;
  std::map<std::pair<SocketAddr, SocketAddr>, std::unique_ptr<VirtualLink>> links_;
  std::uint64_t link_count_ = 0;
  std::uint64_t unroutable_ = 0;
  Bytes buf_;
};

}  // namespace iroh::sim

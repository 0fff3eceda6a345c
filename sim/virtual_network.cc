#include "sim/virtual_network.h"

namespace iroh::sim {

VirtualNetwork::VirtualNetwork(std::uint64_t seed, Instant start)
    : seed_(seed), now_(start), buf_(64 * 1500) {}

void VirtualNetwork::attach(quic::Endpoint& endpoint, const SocketAddr& addr) {
  nodes_.push_back(Node{&endpoint, addr});
}

void VirtualNetwork::set_link(const SocketAddr& from, const SocketAddr& to,
                              const LinkProfile& profile) {
  // Each link gets its own seed derived from the network's, in creation order.
  links_[{from, to}] =
      std::make_unique<VirtualLink>(profile, seed_ * 0x9e3779b97f4a7c15ULL + ++link_count_);
}

void VirtualNetwork::set_path(const SocketAddr& a, const SocketAddr& b,
                              const LinkProfile& profile) {
  set_link(a, b, profile);
  set_link(b, a, profile);
}

VirtualLink& VirtualNetwork::link_for(const SocketAddr& from, const SocketAddr& to) {
  auto it = links_.find({from, to});
  if (it == links_.end()) {
    set_link(from, to, LinkProfile{});
    it = links_.find({from, to});
  }
  return *it->second;
}

const VirtualLink* VirtualNetwork::link(const SocketAddr& from, const SocketAddr& to) const {
  auto it = links_.find({from, to});
  return it == links_.end() ? nullptr : it->second.get();
}

void VirtualNetwork::flush(Node& node) {
  // Bounded: an endpoint that always has something to send is throttled by its congestion
  // controller and pacer, which arm timers instead.
  for (int i = 0; i < 10000; ++i) {
    auto t = node.endpoint->poll_transmit(now_, buf_, 1);
    if (!t) return;
    const std::size_t seg = t->segment_size ? t->segment_size : t->size;
    for (std::size_t off = 0; off < t->size; off += seg) {
      const std::size_t n = std::min(seg, t->size - off);
      link_for(node.addr, t->dest)
          .send(now_, Bytes(buf_.begin() + off, buf_.begin() + off + n), t->ecn);
    }
  }
}

bool VirtualNetwork::step() {
  for (auto& n : nodes_) flush(n);
  std::optional<Instant> next;
  auto consider = [&](std::optional<Instant> t) {
    if (t && (!next || *t < *next)) next = t;
  };
  for (const auto& [key, l] : links_) consider(l->next_delivery());
  for (const auto& n : nodes_) consider(n.endpoint->next_timeout());
  if (!next) return false;
  if (*next > now_) now_ = *next;
  // Deliveries first, then timers that are due.
  for (auto& [key, l] : links_) {
    if (auto t = l->next_delivery(); !t || *t > now_) continue;
    for (auto& d : l->deliver_due(now_)) {
      Node* dest = nullptr;
      for (auto& n : nodes_) {
        if (n.addr == key.second) dest = &n;
      }
      if (!dest) {
        ++unroutable_;
        continue;
      }
      dest->endpoint->handle_datagram(now_, key.first, d.data, d.ecn);
    }
  }
  for (auto& n : nodes_) {
    if (auto t = n.endpoint->next_timeout(); t && *t <= now_) n.endpoint->handle_timeout(now_);
  }
  return true;
}

bool VirtualNetwork::run_until(const std::function<bool()>& done, Duration limit) {
  const Instant deadline = now_ + limit;
  if (done()) return true;
  while (now_ <= deadline) {
    if (!step()) return done();
    if (done()) return true;
  }
  return false;
}

void VirtualNetwork::run_for(Duration d) {
  const Instant deadline = now_ + d;
  while (now_ < deadline) {
    for (auto& n : nodes_) flush(n);
    std::optional<Instant> next;
    for (const auto& [key, l] : links_) {
      if (auto t = l->next_delivery(); t && (!next || *t < *next)) next = t;
    }
    for (const auto& n : nodes_) {
      if (auto t = n.endpoint->next_timeout(); t && (!next || *t < *next)) next = t;
    }
    if (!next || *next > deadline) {
      now_ = deadline;
      return;
    }
    step();
  }
}

}  // namespace iroh::sim

// io::QuicEndpoint: hole punching and path selection (spec §5.4, §5.6) — iroh's policy driving
// the engine's multipath + n0 NAT traversal mechanisms:
//
//   server  announces our candidate addresses on every connection (ADD_ADDRESS) and withdraws
//           the ones that went away (REMOVE_ADDRESS);
//   client  starts NAT traversal rounds (REACH_OUT + probes) after the handshake, when either
//           side's candidates change, and every 60 s while no IP path is good enough (≤ 10 ms),
//           at most every 5 s without new candidates; it closes redundant IP paths;
//   both    select the path by biased RTT (direct beats relay at once, 5 ms hysteresis within a
//           tier), mark it Available and every other path Backup; relay paths idle out after
//           30 s instead of 15 s. When the direct path dies the engine abandons it and the relay
//           path takes over; the next round may bring a direct path back.
#include <algorithm>

#include "io/local_addrs.h"
#include "io/quic_endpoint.h"

namespace iroh::io {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {
constexpr std::uint64_t kApplicationAbandonPath = 0x3e;  // iroh closes redundant paths with it
constexpr Duration kRelayPathIdle = 30s;
}  // namespace

std::vector<quic::PathStats> QuicConnection::paths() const {
  if (auto* c = conn()) return c->paths();
  return {};
}

awaitable<QuicResult<std::optional<PathChange>>> QuicConnection::next_path_change(std::size_t seen,
                                                                                  Duration limit) {
  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::duration_cast<std::chrono::steady_clock::duration>(limit);
  asio::steady_timer guard(endpoint_->io());
  guard.expires_at(deadline);
  guard.async_wait([this](boost::system::error_code ec) {
    if (!ec) notify();
  });
  QuicResult<std::optional<PathChange>> out = std::optional<PathChange>{};
  for (;;) {
    if (path_changes_.size() > seen) {
      out = std::optional<PathChange>(path_changes_[seen]);
      break;
    }
    if (is_closed()) {
      out = closed_error();
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    co_await wait();
  }
  guard.cancel();
  // Let the cancelled handler run before `guard` goes out of scope.
  co_await asio::post(endpoint_->io(), asio::use_awaitable);
  co_return out;
}

std::vector<SocketAddr> QuicEndpoint::direct_candidates() const { return candidates_; }

void QuicEndpoint::refresh_candidates(std::optional<std::vector<SocketAddr>> external) {
  if (external) options_.external_addrs = std::move(*external);
  auto fresh = local_candidates(socket_.local_addr());
  for (const auto& a : options_.external_addrs) {
    if (std::find(fresh.begin(), fresh.end(), a) == fresh.end()) fresh.push_back(a);
  }
  if (fresh == candidates_) return;
  const bool network_changed = !candidates_.empty() && !external;
  candidates_ = std::move(fresh);
  ++candidates_epoch_;
  // Our addresses changed: relay connections made from an old address are dead even if TCP has
  // not noticed yet (iroh reconnects its relays on a network change too).
  if (network_changed) {
    for (auto& [url, relay] : relays_) relay->reconnect("network change");
  }
  if (core_) {
    maintain_paths();
    kick();
  }
}

void QuicEndpoint::watch_interfaces() {
  // Polling getifaddrs once a second costs microseconds and needs no netlink plumbing; a change
  // re-announces (server) or re-punches (client) on every connection (spec §5.4).
  if (closed_ || !options_.hole_punching || options_.interface_poll <= Duration::zero()) return;
  interface_timer_.expires_after(
      std::chrono::duration_cast<std::chrono::steady_clock::duration>(options_.interface_poll));
  interface_timer_.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_) return;
    self->refresh_candidates();
    self->watch_interfaces();
  });
}

void QuicEndpoint::maintain_paths() {
  if (closed_) return;
  const Instant t = now();
  for (auto it = path_policies_.begin(); it != path_policies_.end();) {
    if (!conns_.count(it->first)) {
      it = path_policies_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& [handle, weak] : conns_) {
    auto c = weak.lock();
    if (!c) continue;
    auto* qc = c->conn();
    if (!qc || qc->is_closed() || !qc->is_handshake_complete()) continue;
    maintain_connection(*c, *qc, t);
  }
  arm_maintain_timer();
}

void QuicEndpoint::maintain_connection(QuicConnection& c, quic::Connection& qc, Instant now) {
  auto& pol = path_policies_[c.handle_];
  const bool client = qc.role() == quic::Role::kClient;
  bool acted = false;
  auto paths = qc.paths();

  // Relay paths live longer than IP paths (iroh: 30 s vs 15 s).
  for (const auto& p : paths) {
    if (!p.abandoned && is_relay_path(p.remote))
      (void)qc.set_path_idle_timeout(p.id, kRelayPathIdle);
  }

  if (qc.nat_traversal_enabled() && options_.hole_punching) {
    if (!pol.configured) {
      pol.configured = true;
      if (client) pol.schedule.request(now, true);
    }
    if (pol.candidates_epoch != candidates_epoch_) {
      pol.candidates_epoch = candidates_epoch_;
      if (client) {
        pol.schedule.request(now, true);
      } else {
        // Announce new candidates, withdraw gone ones.
        for (auto it = pol.announced.begin(); it != pol.announced.end();) {
          if (std::find(candidates_.begin(), candidates_.end(), *it) == candidates_.end()) {
            (void)qc.remove_nat_traversal_address(*it);
            it = pol.announced.erase(it);
            acted = true;
          } else {
            ++it;
          }
        }
        for (const auto& a : candidates_) {
          if (std::find(pol.announced.begin(), pol.announced.end(), a) != pol.announced.end()) {
            continue;
          }
          if (qc.add_nat_traversal_address(a)) {
            pol.announced.push_back(a);
            acted = true;
          }
        }
      }
    }
    if (client) {
      bool good_ip = false;
      for (const auto& p : paths) {
        if (!p.abandoned && p.validated && !is_relay_path(p.remote) && p.has_rtt &&
            p.rtt <= quic::kGoodEnoughLatency) {
          good_ip = true;
        }
      }
      pol.schedule.on_path_quality(now, good_ip);
      if (pol.schedule.due(now) && qc.is_handshake_confirmed()) {
        if (qc.initiate_nat_traversal_round(now, candidates_)) {
          pol.schedule.on_round_started(now);
          acted = true;
        } else {
          pol.schedule.on_round_failed(now);
        }
      }
    }
  }

  // Selection (both sides).
  if (qc.multipath_enabled()) {
    std::vector<quic::PathChoice> choices;
    for (const auto& p : paths) {
      if (p.abandoned || !p.validated) continue;
      quic::PathChoice ch;
      ch.id = p.id;
      ch.kind = is_relay_path(p.remote) ? quic::PathKind::kRelay
                : p.remote.is_v4()      ? quic::PathKind::kIpv4
                                        : quic::PathKind::kIpv6;
      ch.rtt = p.has_rtt ? p.rtt : options_.connection.initial_rtt;
      choices.push_back(ch);
    }
    const auto sel = quic::select_path(choices, pol.selected);
    if (sel && sel != pol.selected) {
      pol.selected = sel;
      acted = true;
      // The client keeps at most one IP path: the selected one (relay paths stay as fallback).
      const bool sel_is_ip = std::any_of(choices.begin(), choices.end(), [&](const auto& ch) {
        return ch.id == *sel && ch.kind != quic::PathKind::kRelay;
      });
      if (client && sel_is_ip) {
        for (const auto& p : paths) {
          if (p.abandoned || p.id == *sel || is_relay_path(p.remote)) continue;
          (void)qc.close_path(now, p.id, kApplicationAbandonPath);
        }
      }
    }
    if (sel) {
      for (const auto& p : qc.paths()) {
        if (p.abandoned) continue;
        const auto want = p.id == *sel ? quic::PathStatus::kAvailable : quic::PathStatus::kBackup;
        if (p.status != want) {
          (void)qc.set_path_status(p.id, want);
          acted = true;
        }
      }
    }
  }
  // The path data goes on now (what the engine does with the statuses above).
  const auto st = qc.stats();
  if (c.path_changes_.empty() || c.path_changes_.back().id != st.path.id ||
      c.path_changes_.back().remote != st.path.remote) {
    PathChange ch;
    ch.at = now;
    ch.id = st.path.id;
    ch.remote = st.path.remote;
    ch.path = describe_path(st.path.remote);
    ch.relay = is_relay_path(st.path.remote);
    c.path_changes_.push_back(std::move(ch));
    c.notify();
  }
  if (acted) kick();
}

}  // namespace iroh::io

// n0 NAT traversal state (spec §5.2, §5.3).
#include "quic/nat_traversal.h"

#include <algorithm>

namespace iroh::quic {

namespace {
constexpr Duration kMaxProbeDelay = std::chrono::seconds(2);
}

NatTraversal::NatTraversal(Role role, std::size_t max_local, std::size_t max_remote,
                           Duration initial_rtt)
    : role_(role), max_local_(max_local), max_remote_(max_remote), base_(initial_rtt / 10) {}

Duration NatTraversal::retry_delay(unsigned attempts_made) const {
  // Before retry k (k = attempts_made ≥ 1): base for k = 1, base·2^(k-2)·... — the differences of
  // base·2^k, i.e. base, base, 2·base, 4·base, … capped at 2 s (noq n0_nat_traversal.rs).
  if (attempts_made <= 1) return std::min(base_, kMaxProbeDelay);
  const unsigned shift = std::min(attempts_made - 1, 16u);
  const Duration d = base_ * (1u << shift) - base_ * (1u << (shift - 1));
  return std::min(d, kMaxProbeDelay);
}

// ---- server ----

Result<std::optional<std::uint64_t>> NatTraversal::add_local_address(const SocketAddr& address) {
  if (role_ != Role::kServer) return make_error("only the QUIC server announces addresses");
  for (const auto& [seq, a] : local_) {
    if (a == address) return std::optional<std::uint64_t>{};
  }
  if (local_.size() >= max_local_) {
    return make_error("the peer accepts at most " + std::to_string(max_local_) + " addresses");
  }
  const std::uint64_t seq = next_local_seq_++;
  local_[seq] = address;
  return std::optional<std::uint64_t>{seq};
}

std::optional<std::uint64_t> NatTraversal::remove_local_address(const SocketAddr& address) {
  for (auto it = local_.begin(); it != local_.end(); ++it) {
    if (it->second == address) {
      const auto seq = it->first;
      local_.erase(it);
      removed_.push_back(seq);
      return seq;
    }
  }
  return std::nullopt;
}

std::optional<SocketAddr> NatTraversal::local_address(std::uint64_t sequence) const {
  auto it = local_.find(sequence);
  if (it == local_.end()) return std::nullopt;
  return it->second;
}

bool NatTraversal::local_sequence_removed(std::uint64_t sequence) const {
  return std::find(removed_.begin(), removed_.end(), sequence) != removed_.end();
}

Result<void> NatTraversal::on_reach_out(Instant now, std::uint64_t round,
                                        const SocketAddr& address) {
  if (role_ != Role::kServer) return make_error("REACH_OUT is sent to the server only");
  if (round < round_) return {};  // an older round: ignored
  if (round > round_) {
    round_ = round;
    reach_out_.clear();
    probes_.clear();
    tokens_.clear();
  }
  if (std::find(reach_out_.begin(), reach_out_.end(), address) != reach_out_.end()) return {};
  if (reach_out_.size() >= max_remote_) {
    return make_error("more REACH_OUT addresses than our limit of " + std::to_string(max_remote_));
  }
  reach_out_.push_back(address);
  probe(now, address);
  return {};
}

// ---- client ----

Result<bool> NatTraversal::on_add_address(Instant now, std::uint64_t sequence,
                                          const SocketAddr& address) {
  (void)now;
  if (role_ != Role::kClient) return make_error("ADD_ADDRESS is sent to the client only");
  if (auto it = remote_.find(sequence); it != remote_.end()) return false;  // retransmission
  if (remote_.size() >= max_remote_) {
    return make_error("more ADD_ADDRESS candidates than our limit of " +
                      std::to_string(max_remote_));
  }
  for (const auto& [seq, a] : remote_) {
    if (a == address) {
      remote_[sequence] = address;
      return false;
    }
  }
  remote_[sequence] = address;
  return true;
}

bool NatTraversal::on_remove_address(std::uint64_t sequence) {
  if (role_ != Role::kClient) return false;
  auto it = remote_.find(sequence);
  if (it == remote_.end()) return false;
  const SocketAddr gone = it->second;
  remote_.erase(it);
  for (const auto& [seq, a] : remote_) {
    if (a == gone) return false;  // still announced under another number
  }
  stop_probing(gone);
  return true;
}

std::uint64_t NatTraversal::start_round(Instant now, const std::vector<SocketAddr>& local) {
  if (role_ != Role::kClient) return round_;  // servers answer rounds, they never start one
  ++round_;
  reach_out_.clear();
  for (const auto& a : local) {
    if (reach_out_.size() >= max_local_) break;
    if (std::find(reach_out_.begin(), reach_out_.end(), a) == reach_out_.end()) {
      reach_out_.push_back(a);
    }
  }
  probes_.clear();
  tokens_.clear();
  for (const auto& [seq, a] : remote_) probe(now, a);
  return round_;
}

// ---- probing ----

void NatTraversal::probe(Instant now, const SocketAddr& address) {
  if (probes_.count(address)) return;
  probes_[address] = ProbeState{0, now, false};
}

std::optional<SocketAddr> NatTraversal::next_probe_due(Instant now) {
  for (auto& [addr, st] : probes_) {
    if (st.done || st.attempts >= kMaxNatProbeAttempts || st.next > now) continue;
    ++st.attempts;
    st.next = now + retry_delay(st.attempts);
    return addr;
  }
  return std::nullopt;
}

void NatTraversal::on_probe_sent(const SocketAddr& address, const ByteArray<8>& token) {
  // Tokens of one round are kept until the next (at most 9 per address).
  tokens_[token] = address;
}

std::optional<Instant> NatTraversal::next_probe_time() const {
  std::optional<Instant> best;
  for (const auto& [addr, st] : probes_) {
    if (st.done || st.attempts >= kMaxNatProbeAttempts) continue;
    if (!best || st.next < *best) best = st.next;
  }
  return best;
}

std::optional<SocketAddr> NatTraversal::on_path_response(const ByteArray<8>& token,
                                                         const SocketAddr& from) {
  auto it = tokens_.find(token);
  if (it == tokens_.end() || it->second != from) return std::nullopt;
  stop_probing(from);
  return from;
}

void NatTraversal::stop_probing(const SocketAddr& address) {
  if (auto it = probes_.find(address); it != probes_.end()) it->second.done = true;
}

std::vector<SocketAddr> NatTraversal::remote_addresses() const {
  std::vector<SocketAddr> out;
  if (role_ == Role::kClient) {
    for (const auto& [seq, a] : remote_) {
      if (std::find(out.begin(), out.end(), a) == out.end()) out.push_back(a);
    }
  } else {
    out = reach_out_;
  }
  return out;
}

}  // namespace iroh::quic

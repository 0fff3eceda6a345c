// libFuzzer target: n0 NAT traversal state (impl/quic/nat_traversal.h), driven by an arbitrary
// sequence of peer frames (ADD_ADDRESS / REMOVE_ADDRESS / REACH_OUT with input-chosen numbers and
// addresses), local calls (add / remove / start_round / probe / stop_probing), PATH_RESPONSEs
// (matching or not) and time steps, for both roles.
//
// Invariants (__builtin_trap):
//   - at most kMaxNatProbeAttempts probes per address per round, never before next_probe_time();
//   - the remote candidate set never exceeds our limit, the local one never the peer's;
//   - sequence numbers of announced addresses are unique and never reused after removal;
//   - rounds never decrease; a PATH_RESPONSE only matches a token we sent to that very address;
//   - the wrong role's calls fail (server-only / client-only), errors carry a message.
// Each input is bounded to 400 operations.
#include "quic/nat_traversal.h"

#include <fuzzer/FuzzedDataProvider.h>

#include <map>
#include <set>
#include <vector>

namespace {

using namespace iroh;
using namespace iroh::quic;

SocketAddr pick_addr(FuzzedDataProvider& in) {
  // A small address space so that repeats (and matches) are common.
  const auto host = in.ConsumeIntegralInRange<std::uint8_t>(1, 6);
  const auto port = in.ConsumeIntegralInRange<std::uint16_t>(1, 3);
  if (in.ConsumeBool()) return SocketAddr::v4({10, 0, 0, host}, port);
  ByteArray<16> ip{};
  ip[0] = 0xfd;
  ip[15] = host;
  return SocketAddr::v6(ip, port);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  const Role role = in.ConsumeBool() ? Role::kClient : Role::kServer;
  const std::size_t max_local = in.ConsumeIntegralInRange<std::size_t>(1, 8);
  const std::size_t max_remote = in.ConsumeIntegralInRange<std::size_t>(1, 8);
  NatTraversal nat(role, max_local, max_remote, std::chrono::milliseconds(333));
  Instant now{std::chrono::seconds(1)};
  std::map<SocketAddr, unsigned> sent_this_round;
  std::map<ByteArray<8>, SocketAddr> tokens;
  std::set<std::uint64_t> used_seqs;
  std::uint64_t last_round = 0;
  std::uint64_t token_counter = 0;

  for (int op = 0; op < 400 && in.remaining_bytes() > 0; ++op) {
    const std::uint64_t round_before = nat.round();
    switch (in.ConsumeIntegralInRange<int>(0, 9)) {
      case 0: {  // server: announce
        auto r = nat.add_local_address(pick_addr(in));
        if (role == Role::kClient && r.ok()) __builtin_trap();
        if (!r.ok() && r.error().message.empty()) __builtin_trap();
        if (r.ok() && *r) {
          if (used_seqs.count(**r)) __builtin_trap();  // sequence numbers are never reused
          used_seqs.insert(**r);
        }
        break;
      }
      case 1:
        (void)nat.remove_local_address(pick_addr(in));
        break;
      case 2: {  // client: the server's ADD_ADDRESS
        const auto seq = in.ConsumeIntegralInRange<std::uint64_t>(0, 12);
        auto r = nat.on_add_address(now, seq, pick_addr(in));
        if (role == Role::kServer && r.ok()) __builtin_trap();
        if (!r.ok() && r.error().message.empty()) __builtin_trap();
        break;
      }
      case 3:
        (void)nat.on_remove_address(in.ConsumeIntegralInRange<std::uint64_t>(0, 12));
        break;
      case 4: {  // server: the client's REACH_OUT
        const auto round = in.ConsumeIntegralInRange<std::uint64_t>(0, 6);
        if (round > nat.round()) sent_this_round.clear();
        auto r = nat.on_reach_out(now, round, pick_addr(in));
        if (role == Role::kClient && r.ok()) __builtin_trap();
        if (!r.ok() && r.error().message.empty()) __builtin_trap();
        break;
      }
      case 5: {  // client: a new round
        std::vector<SocketAddr> local;
        const int n = in.ConsumeIntegralInRange<int>(0, 10);
        for (int i = 0; i < n; ++i) local.push_back(pick_addr(in));
        const auto before = nat.round();
        nat.start_round(now, local);
        if (role == Role::kServer && nat.round() != before) __builtin_trap();
        if (role == Role::kClient) sent_this_round.clear();
        if (role == Role::kClient && nat.reach_out_addresses().size() > max_local) __builtin_trap();
        break;
      }
      case 6: {  // probes due now
        const auto next = nat.next_probe_time();
        if (auto to = nat.next_probe_due(now)) {
          if (!next || *next > now) __builtin_trap();  // nothing is due before its time
          if (++sent_this_round[*to] > kMaxNatProbeAttempts) __builtin_trap();
          ByteArray<8> token{};
          ++token_counter;
          for (int i = 0; i < 8; ++i)
            token[i] = static_cast<std::uint8_t>(token_counter >> (8 * i));
          nat.on_probe_sent(*to, token);
          tokens[token] = *to;
        }
        break;
      }
      case 7: {  // a PATH_RESPONSE: one of our tokens or garbage, from some address
        ByteArray<8> token{};
        if (!tokens.empty() && in.ConsumeBool()) {
          auto it = tokens.begin();
          std::advance(it, in.ConsumeIntegralInRange<std::size_t>(0, tokens.size() - 1));
          token = it->first;
        } else {
          for (auto& b : token) b = in.ConsumeIntegral<std::uint8_t>();
        }
        const SocketAddr from = pick_addr(in);
        if (auto hit = nat.on_path_response(token, from)) {
          auto it = tokens.find(token);
          if (it == tokens.end() || it->second != from || *hit != from) __builtin_trap();
        }
        break;
      }
      case 8:
        if (in.ConsumeBool()) {
          nat.probe(now, pick_addr(in));
        } else {
          nat.stop_probing(pick_addr(in));
        }
        break;
      case 9:
        now += std::chrono::milliseconds(in.ConsumeIntegralInRange<int>(0, 3000));
        break;
    }
    if (nat.round() < round_before || nat.round() < last_round) __builtin_trap();
    last_round = nat.round();
    if (role == Role::kClient && nat.remote_addresses().size() > max_remote) __builtin_trap();
    if (role == Role::kServer && nat.remote_addresses().size() > max_remote) __builtin_trap();
  }
  return 0;
}

// n0 NAT traversal ("QNT", spec §5): the per-connection state of n0's QUIC extension that lets
// two iroh peers punch holes through NATs — candidate addresses, rounds and the probe schedule.
// Sans-IO and frame-free: the connection turns what this decides into ADD_ADDRESS / REACH_OUT /
// REMOVE_ADDRESS frames and PATH_CHALLENGE probes, and feeds received frames and PATH_RESPONSEs
// back.
//
// Roles are asymmetric (spec §5.2, noq n0_nat_traversal.rs):
//   server  announces its candidates (ADD_ADDRESS, sequence numbers 0, 1, 2 … per connection),
//           withdraws them (REMOVE_ADDRESS); on a REACH_OUT of a newer round it forgets the old
//           round and probes every address the client reaches out from.
//   client  learns the server's candidates; each round sends one REACH_OUT per local candidate
//           (round = previous + 1) and probes every server candidate. A PATH_RESPONSE that
//           matches a probe's token *and* arrives from the probed address means the hole is
//           open: the client opens a multipath path there. Servers never open paths.
//
// Probes (spec §5.3): up to 9 per remote address per round; after the first, the k-th retry
// waits base·2^(k-1) (base·1 for the first retry), base = initial_rtt / 10, capped at 2 s — with
// iroh's 333 ms initial RTT: 33, 33, 67, 133, 267, 533, 1067, 2000 ms.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "base/socket_addr.h"
#include "base/time.h"
#include "quic/transport_params.h"  // Role

namespace iroh::quic {

inline constexpr unsigned kMaxNatProbeAttempts = 9;

class NatTraversal {
 public:
  // `max_local`: how many addresses we may announce (the peer's TP value); `max_remote`: how many
  // we accept (ours).
  NatTraversal(Role role, std::size_t max_local, std::size_t max_remote, Duration initial_rtt);

  Role role() const { return role_; }

  // ---- server ----
  // A new candidate: its sequence number, to be sent in ADD_ADDRESS (nullopt: already known).
  Result<std::optional<std::uint64_t>> add_local_address(const SocketAddr& address);
  // Withdraws a candidate: the sequence number for REMOVE_ADDRESS (nullopt: unknown).
  std::optional<std::uint64_t> remove_local_address(const SocketAddr& address);
  // The address announced under `sequence`, if still current (for retransmission).
  std::optional<SocketAddr> local_address(std::uint64_t sequence) const;
  bool local_sequence_removed(std::uint64_t sequence) const;
  // A REACH_OUT arrived. Newer round: old probes are dropped. Errors: too many addresses.
  Result<void> on_reach_out(Instant now, std::uint64_t round, const SocketAddr& address);

  // ---- client ----
  // ADD_ADDRESS / REMOVE_ADDRESS arrived; true when the candidate set changed.
  Result<bool> on_add_address(Instant now, std::uint64_t sequence, const SocketAddr& address);
  bool on_remove_address(std::uint64_t sequence);
  // Starts round previous + 1: returns it; probes every known server candidate. (Server: no-op.)
  std::uint64_t start_round(Instant now, const std::vector<SocketAddr>& local);
  std::uint64_t round() const { return round_; }
  // The local candidates of the current round (REACH_OUT contents).
  const std::vector<SocketAddr>& reach_out_addresses() const { return reach_out_; }

  // ---- probing (both) ----
  // Adds `address` to the current round's probe set (e.g. the client answering a server probe
  // with its own challenge). No-op if it is already being probed.
  void probe(Instant now, const SocketAddr& address);
  // The next probe due at `now`, if any: where to, and the attempt counter is advanced. The
  // caller supplies the challenge token and reports it with on_probe_sent().
  std::optional<SocketAddr> next_probe_due(Instant now);
  void on_probe_sent(const SocketAddr& address, const ByteArray<8>& token);
  std::optional<Instant> next_probe_time() const;
  // A PATH_RESPONSE: the probed address if it answers one of our probes from that address
  // (probing that address stops).
  std::optional<SocketAddr> on_path_response(const ByteArray<8>& token, const SocketAddr& from);
  // Stop probing an address (a path to it exists).
  void stop_probing(const SocketAddr& address);

  // The other side's candidates (client: the server's; server: this round's REACH_OUTs).
  std::vector<SocketAddr> remote_addresses() const;

 private:
  struct ProbeState {
    unsigned attempts = 0;
    Instant next{};
    bool done = false;
  };
  Duration retry_delay(unsigned attempts_made) const;

  Role role_;
  std::size_t max_local_;
  std::size_t max_remote_;
  Duration base_;
  // server: our announced addresses by sequence; removed sequences are remembered.
  std::map<std::uint64_t, SocketAddr> local_;
  std::vector<std::uint64_t> removed_;
  std::uint64_t next_local_seq_ = 0;
  // client: the server's candidates by sequence. server: the client's REACH_OUTs this round.
  std::map<std::uint64_t, SocketAddr> remote_;
  std::vector<SocketAddr> reach_out_;
  std::uint64_t round_ = 0;
  std::map<SocketAddr, ProbeState> probes_;
  std::map<ByteArray<8>, SocketAddr> tokens_;
};

}  // namespace iroh::quic

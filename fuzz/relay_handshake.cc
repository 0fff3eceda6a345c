// libFuzzer target: the relay server's sans-IO state machine, relay::ServerCore (spec §6.4-§6.8).
//
// FuzzedDataProvider picks a ServerConfig (queue limit, access policy, rate limit, timeouts) and
// then drives the core like a WebSocket driver would, through an arbitrary interleaving of:
//   connect (version, challenge and token from the input) / a message on a connection (arbitrary
//   bytes; a valid ClientAuth signed by one of 8 keys derived from input bytes, so clients
//   authenticate and forwarding, same-id replacement and EndpointGone are reached; a forged
//   ClientAuth; datagrams (single or batch) to one of those keys or to a random id; Ping; a Pong
//   echoing the server's last Ping, or a random one; a server-to-client frame) / a message for an
//   unknown or closed id / disconnect / on_sent for frames handed out / time advance + on_timeout /
//   shutdown.
// The harness models what a driver knows (live connections, frames handed out and not yet
// confirmed with on_sent) and checks after every call:
//   - nothing crashes (sanitizers catch memory errors and UB);
//   - every action targets a live connection (connected, not yet closed by a Close action or
//     on_disconnected), and nothing follows a connection's Close;
//   - every Send is a frame allowed server→client that decodes under the connection's version
//     (forwarded datagrams and EndpointGone: shape only, their id was validated on the way in);
//     ServerConfirmsAuth at most once per connection, no ServerChallenge / ServerDeniesAuth after
//     it, datagrams / EndpointGone / server Pings only to authenticated connections;
//   - datagrams are only forwarded to a connection with fewer than queue_limit frames in flight
//     (the core's per-client queue bound), so queues never grow past the limit;
//   - PauseReads is for the future; after on_timeout(now), next_timeout() is later than now (no
//     busy loop);
//   - the core's view agrees with the model: connection_count, is_connected, endpoint_of, and the
//     clients / connections_pending gauges;
//   - after shutdown() no connection is left.
// Per exec at most kMaxOps operations, kMaxMessages messages and kMaxAuths ClientAuth messages.
// Build with -DIROHLAB_FUZZ_DEBUG to print what an input does (ops and the core's actions).
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>
#ifdef IROHLAB_FUZZ_DEBUG
#include <cstdio>
#define TRACE(...) std::printf(__VA_ARGS__)
#else
#define TRACE(...) (void)0
#endif

#include "base/key.h"
#include "relay/frame.h"
#include "relay/handshake.h"
#include "relay/server_core.h"

namespace {

using namespace iroh;
using namespace iroh::relay;

constexpr std::size_t kKeys = 8;
constexpr std::size_t kMaxLive = 12;
constexpr int kMaxOps = 64;
// Every ClientAuth / datagram decode checks a point on edwards25519 (a modular exponentiation that
// dominates the exec time once instrumented): the budgets keep an exec around 1 ms under ASan.
constexpr int kMaxMessages = 24;
constexpr int kMaxAuths = 6;  // ClientAuth messages (the costliest decode) per exec

// Secret keys derived from an input byte; Ed25519 key generation is cached to keep execs fast.
const SecretKey& key_for(std::uint8_t slot) {
  static std::array<std::optional<SecretKey>, kKeys> cache;
  auto& k = cache[slot % kKeys];
  if (!k) {
    ByteArray<32> seed{};
    for (std::size_t i = 0; i < seed.size(); ++i) {
      seed[i] = static_cast<std::uint8_t>(0xa5 ^ (slot % kKeys) ^ (i * 7));
    }
    k = SecretKey::from_seed(seed);
  }
  return *k;
}

// sign_challenge, memoised (re-deriving the key pair per signature would dominate the exec time).
ClientAuth signed_auth(std::uint8_t slot, const ByteArray<kChallengeSize>& challenge) {
  static std::map<std::pair<std::uint8_t, ByteArray<kChallengeSize>>, ClientAuth> cache;
  const auto key = std::make_pair(static_cast<std::uint8_t>(slot % kKeys), challenge);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  if (cache.size() >= 4096) cache.clear();
  return cache[key] = sign_challenge(key_for(slot), challenge);
}

template <std::size_t N>
ByteArray<N> consume_array(FuzzedDataProvider& p) {
  ByteArray<N> out{};
  for (auto& b : out) b = p.ConsumeIntegral<std::uint8_t>();
  return out;
}

struct ModelConn {
  ProtocolVersion version = ProtocolVersion::V2;
  ByteArray<kChallengeSize> challenge{};
  bool authenticated = false;
  std::optional<EndpointId> endpoint;  // claimed in the last ClientAuth sent
  std::size_t in_flight = 0;           // Sends not yet confirmed with on_sent
  std::optional<ByteArray<kPingSize>> last_server_ping;
};

class Harness {
 public:
  Harness(FuzzedDataProvider& p, ServerConfig config)
      : p_(p), limit_(config.queue_limit == 0 ? 1 : config.queue_limit), core_(std::move(config)) {}

  void run() {
    for (int op = 0; op < kMaxOps && p_.remaining_bytes() > 0; ++op) {
      step();
      check_consistency();
      if (shut_down_) return;
    }
  }

 private:
  // Applies the core's actions to the model, checking each one.
  void apply(const Actions& actions) {
    for (const Action& action : actions) {
      if (const auto* s = std::get_if<Send>(&action)) {
        auto it = live_.find(s->conn);
        if (it == live_.end()) __builtin_trap();  // Send to a dead / unknown connection
        ModelConn& c = it->second;
        if (s->frame.empty()) __builtin_trap();
        FrameType type = static_cast<FrameType>(s->frame[0]);
        std::optional<Frame> frame;
        if (type == FrameType::RelayToClientDatagram ||
            type == FrameType::RelayToClientDatagramBatch || type == FrameType::EndpointGone) {
          // Carry an id that was validated when it came in; re-decoding would re-check the curve
          // point, the most expensive thing in an exec. Check the shape only.
          if (s->frame.size() < 1 + EndpointId::kSize || s->frame.size() > 1 + kMaxFrameBody) {
            __builtin_trap();
          }
        } else {
          auto decoded = decode(s->frame, c.version);
          if (!decoded.ok()) __builtin_trap();  // the server must send valid frames
          frame = std::move(*decoded);
          type = frame_type(*frame);
        }
        TRACE("  -> conn %llu: %s\n", static_cast<unsigned long long>(s->conn),
              std::string(frame_type_name(type)).c_str());
        if (direction(type) == Direction::ClientToServer) __builtin_trap();
        switch (type) {
          case FrameType::ServerConfirmsAuth:
            if (c.authenticated) __builtin_trap();
            c.authenticated = true;
            break;
          case FrameType::ServerChallenge:
          case FrameType::ServerDeniesAuth:
            if (c.authenticated) __builtin_trap();
            break;
          case FrameType::RelayToClientDatagram:
          case FrameType::RelayToClientDatagramBatch:
          case FrameType::EndpointGone:
            if (!c.authenticated) __builtin_trap();
            if (type != FrameType::EndpointGone && c.in_flight >= limit_) __builtin_trap();
            break;
          case FrameType::Ping:
            if (!c.authenticated) __builtin_trap();
            c.last_server_ping = std::get<Ping>(*frame).data;  // decoded above
            break;
          default:
            break;
        }
        ++c.in_flight;
      } else if (const auto* cl = std::get_if<Close>(&action)) {
        TRACE("  -> close %llu: %s\n", static_cast<unsigned long long>(cl->conn),
              cl->reason.c_str());
        if (live_.erase(cl->conn) == 0) __builtin_trap();  // Close for a dead connection
        closed_.push_back(cl->conn);
      } else if (const auto* pr = std::get_if<PauseReads>(&action)) {
        TRACE("  -> pause %llu\n", static_cast<unsigned long long>(pr->conn));
        if (live_.count(pr->conn) == 0) __builtin_trap();
        if (pr->until <= now_) __builtin_trap();
      }
    }
  }

  void check_consistency() {
    if (core_.connection_count() != live_.size()) __builtin_trap();
    std::uint64_t authenticated = 0;
    for (const auto& [id, c] : live_) {
      if (!core_.is_connected(id)) __builtin_trap();
      const auto endpoint = core_.endpoint_of(id);
      if (endpoint.has_value() != c.authenticated) __builtin_trap();
      if (endpoint && c.endpoint && *endpoint != *c.endpoint) __builtin_trap();
      authenticated += c.authenticated ? 1 : 0;
    }
    for (ConnId id : closed_) {
      if (core_.is_connected(id)) __builtin_trap();
    }
    const auto& m = core_.metrics();
    if (m.clients != authenticated) __builtin_trap();
    if (m.connections_pending != live_.size() - authenticated) __builtin_trap();
  }

  // A live connection id, or sometimes one the core does not (or no longer) know.
  std::optional<ConnId> pick_conn() {
    const int choice = p_.ConsumeIntegralInRange(0, 15);
    if (choice == 15) return next_id_ + 3;  // never connected
    if (choice == 14 && !closed_.empty()) {
      return closed_[p_.ConsumeIntegralInRange<std::size_t>(0, closed_.size() - 1)];
    }
    if (live_.empty()) return std::nullopt;
    auto it = live_.begin();
    std::advance(it, p_.ConsumeIntegralInRange<std::size_t>(0, live_.size() - 1));
    return it->first;
  }

  void message(ConnId id, const Bytes& bytes) {
    if (++messages_ > kMaxMessages) return;
    TRACE("  message to %llu, %zu bytes\n", static_cast<unsigned long long>(id), bytes.size());
    auto it = live_.find(id);
    Actions out = core_.on_message(id, bytes, now_);
    if (it == live_.end() && !out.empty()) __builtin_trap();  // unknown ids are ignored
    apply(out);
  }

  EndpointId random_or_known_id() {
    if (p_.ConsumeIntegralInRange(0, 4) == 0) {
      // Arbitrary 32 bytes: usually not a point on the curve, so the frame may not even decode.
      auto raw = consume_array<32>(p_);
      if (auto id = EndpointId::from_bytes(raw); id.ok()) return *id;
    }
    return key_for(p_.ConsumeIntegral<std::uint8_t>()).public_key();
  }

  Bytes datagram_frame() {
    ClientToRelayDatagram d;
    d.dst = random_or_known_id();
    d.ecn = p_.ConsumeIntegralInRange<std::uint8_t>(0, 3);
    if (p_.ConsumeBool()) d.segment_size = p_.ConsumeIntegralInRange<std::uint16_t>(1, 1500);
    d.payload = p_.ConsumeBytes<std::uint8_t>(p_.ConsumeIntegralInRange<std::size_t>(0, 256));
    return encode(d);
  }

  Bytes server_frame(ProtocolVersion v) {
    switch (p_.ConsumeIntegralInRange(0, 6)) {
      case 0:
        return encode(ServerChallenge{consume_array<kChallengeSize>(p_)});
      case 1:
        return encode(ServerConfirmsAuth{});
      case 2:
        return encode(ServerDeniesAuth{p_.ConsumeRandomLengthString(32)});
      case 3:
        return encode(EndpointGone{random_or_known_id()});
      case 4:
        return encode(
            Restarting{p_.ConsumeIntegral<std::uint32_t>(), p_.ConsumeIntegral<std::uint32_t>()});
      case 5:
        return v == ProtocolVersion::V1 ? encode(Health{p_.ConsumeRandomLengthString(32)})
                                        : encode(Status{p_.ConsumeIntegral<std::uint8_t>()});
      default: {
        RelayToClientDatagram d;
        d.src = random_or_known_id();
        d.payload = p_.ConsumeBytes<std::uint8_t>(16);
        return encode(d);
      }
    }
  }

  void step() {
    const int op = p_.ConsumeIntegralInRange(0, 13);
    TRACE("op %d (live %zu)\n", op, live_.size());
    switch (op) {
      case 0: {  // connect
        if (live_.size() >= kMaxLive) return;
        const ConnId id = next_id_++;
        ModelConn c;
        c.version = p_.ConsumeBool() ? ProtocolVersion::V2 : ProtocolVersion::V1;
        c.challenge = consume_array<kChallengeSize>(p_);
        std::optional<std::string> token;
        switch (p_.ConsumeIntegralInRange(0, 2)) {
          case 0:
            break;
          case 1:
            token = token_;
            break;
          default:
            token = p_.ConsumeRandomLengthString(16);
            break;
        }
        live_[id] = c;
        Actions out = core_.on_connected(id, c.version, now_, c.challenge, std::move(token));
        if (out.size() != 1) __builtin_trap();  // exactly the ServerChallenge
        const auto* s = std::get_if<Send>(&out[0]);
        if (s == nullptr || s->frame != encode(ServerChallenge{c.challenge})) __builtin_trap();
        apply(out);
        return;
      }
      case 1: {  // arbitrary bytes
        auto id = pick_conn();
        if (!id) return;
        message(*id, p_.ConsumeBytes<std::uint8_t>(p_.ConsumeIntegralInRange<std::size_t>(0, 80)));
        return;
      }
      case 2:
      case 3: {  // valid ClientAuth from a derived key
        auto id = pick_conn();
        if (!id || ++auths_ > kMaxAuths) return;
        const std::uint8_t slot = p_.ConsumeIntegral<std::uint8_t>();
        auto it = live_.find(*id);
        const ByteArray<kChallengeSize> challenge =
            it != live_.end() ? it->second.challenge : ByteArray<kChallengeSize>{};
        if (it != live_.end() && !it->second.authenticated) {
          it->second.endpoint = key_for(slot).public_key();
        }
        message(*id, encode(signed_auth(slot, challenge)));
        return;
      }
      case 4: {  // forged ClientAuth: signature over another challenge, or a flipped bit
        auto id = pick_conn();
        if (!id || ++auths_ > kMaxAuths) return;
        const std::uint8_t slot = p_.ConsumeIntegral<std::uint8_t>();
        ClientAuth auth = signed_auth(slot, consume_array<kChallengeSize>(p_));
        if (p_.ConsumeBool()) {
          auth.signature[p_.ConsumeIntegralInRange<std::size_t>(0, auth.signature.size() - 1)] ^=
              static_cast<std::uint8_t>(1 + p_.ConsumeIntegralInRange(0, 254));
        }
        message(*id, encode(auth));
        return;
      }
      case 5:
      case 6: {  // datagram(s)
        auto id = pick_conn();
        if (!id) return;
        Bytes frame = datagram_frame();
        const int repeat = p_.ConsumeIntegralInRange(1, 3);
        for (int i = 0; i < repeat; ++i) message(*id, frame);
        return;
      }
      case 7: {  // client Ping
        auto id = pick_conn();
        if (!id) return;
        message(*id, encode(Ping{consume_array<kPingSize>(p_)}));
        return;
      }
      case 8: {  // Pong: echo of the server's last Ping, or random
        auto id = pick_conn();
        if (!id) return;
        auto it = live_.find(*id);
        Pong pong{};
        const bool echo = p_.ConsumeBool();
        if (echo && it != live_.end() && it->second.last_server_ping) {
          pong.data = *it->second.last_server_ping;
        } else {
          pong.data = consume_array<kPingSize>(p_);
        }
        message(*id, encode(pong));
        return;
      }
      case 9: {  // a frame only the server may send
        auto id = pick_conn();
        if (!id) return;
        auto it = live_.find(*id);
        message(*id, server_frame(it != live_.end() ? it->second.version : ProtocolVersion::V2));
        return;
      }
      case 10: {  // the transport went away
        auto id = pick_conn();
        if (!id) return;
        const bool was_live = live_.erase(*id) != 0;
        if (was_live) closed_.push_back(*id);
        apply(core_.on_disconnected(*id, now_));
        return;
      }
      case 11: {  // frames handed out get written
        auto id = pick_conn();
        if (!id) return;
        auto it = live_.find(*id);
        std::size_t n = p_.ConsumeIntegralInRange<std::size_t>(0, 600);
        if (it != live_.end()) n = std::min(n, it->second.in_flight);
        for (std::size_t i = 0; i < n; ++i) core_.on_sent(*id);
        if (it != live_.end()) it->second.in_flight -= n;
        return;
      }
      case 12: {  // time passes; timers fire when due
        const int unit = p_.ConsumeIntegralInRange(0, 2);
        const std::int64_t amount = p_.ConsumeIntegralInRange<std::int64_t>(0, 1000);
        now_ += unit == 0   ? Duration(amount)
                : unit == 1 ? Duration(amount * 1'000'000)
                            : Duration(amount * 100'000'000);
        const bool anyway = p_.ConsumeBool();  // also when nothing is due (must be harmless)
        const auto due = core_.next_timeout();
        if ((due && *due <= now_) || anyway) {
          apply(core_.on_timeout(now_));
          if (auto next = core_.next_timeout(); next && *next <= now_) __builtin_trap();
        }
        return;
      }
      default: {  // graceful shutdown, rarely
        if (p_.ConsumeIntegralInRange(0, 7) != 0) return;
        apply(core_.shutdown(now_));
        if (!live_.empty() || core_.connection_count() != 0) __builtin_trap();
        shut_down_ = true;
        return;
      }
    }
  }

 public:
  std::string token_;

 private:
  FuzzedDataProvider& p_;
  std::size_t limit_;
  ServerCore core_;
  Instant now_{std::chrono::seconds(1'000'000)};
  ConnId next_id_ = 1;
  std::map<ConnId, ModelConn> live_;
  std::vector<ConnId> closed_;
  bool shut_down_ = false;
  int messages_ = 0;
  int auths_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider p(data, size);

  ServerConfig config;
  config.queue_limit = p.ConsumeIntegralInRange<std::size_t>(0, 6);
  const std::uint8_t mode = p.ConsumeIntegralInRange<std::uint8_t>(0, 3);
  config.access.mode = static_cast<AccessPolicy::Mode>(mode);
  const std::uint8_t id_mask = p.ConsumeIntegral<std::uint8_t>();
  for (std::uint8_t slot = 0; slot < kKeys; ++slot) {
    if ((id_mask >> slot) & 1) config.access.ids.insert(key_for(slot).public_key());
  }
  config.access.token = "s3cret";
  config.ping_interval = std::chrono::milliseconds(p.ConsumeIntegralInRange(1, 20000));
  config.ping_timeout = std::chrono::milliseconds(p.ConsumeIntegralInRange(1, 6000));
  config.handshake_timeout = std::chrono::milliseconds(p.ConsumeIntegralInRange(1, 30000));
  const std::int64_t jitter_ns = p.ConsumeIntegralInRange<std::int64_t>(0, 5'000'000'000);
  if (p.ConsumeBool()) config.ping_jitter = [jitter_ns] { return Duration(jitter_ns); };
  if (p.ConsumeBool()) {
    RateLimit rl;
    rl.bytes_per_second = p.ConsumeIntegralInRange<std::uint64_t>(1, 1'000'000);
    rl.burst_bytes = p.ConsumeIntegralInRange<std::uint64_t>(1, std::uint64_t{1} << 32);
    config.rate_limit = rl;
  }

  Harness h(p, std::move(config));
  h.token_ = "s3cret";
  h.run();
  return 0;
}

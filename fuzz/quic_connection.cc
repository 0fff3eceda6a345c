// libFuzzer target: a whole QUIC connection (impl/quic/endpoint.h, impl/quic/connection.h).
//
// Structure-aware: a deterministic in-process client endpoint dials a server endpoint (fixed keys,
// SeededRandom, ALPN "test/echo/0") in virtual time, and the input decides, step by step, what the
// network and an attacker do with the client's datagrams:
//   - deliver one as-is (one of the first four queued: reordering), drop it, duplicate it;
//   - mutate it (flip/set/insert/erase/truncate bytes at chosen positions);
//   - inject raw bytes, alone or behind a valid short or long header (routable garbage);
//   - forge a packet with input-chosen frames at the Initial, Handshake or 1-RTT level, protected
//     with the client's real keys (Initial keys are public; the Handshake and 1-RTT secrets come
//     from the client's keylog callback), or the Initial of a new connection (a ClientHello of the
//     input's choice, optionally with the real client's SCID);
//   - let the client application act (open/write/finish/reset/stop streams, priorities,
//     datagrams, key update, close), or advance time (by an amount or to the next timer).
// Each delivery also picks a source address (NAT rebinding, migration), an ECN codepoint and a
// time step; server output goes back to the client unless the input drops it. The server
// application echoes bidi streams and datagrams and reads uni streams.
//
// Every choice defaults to the benign one and the input is consumed lazily, so an empty input
// already runs a clean handshake plus a stream and datagram echo.
//
// Invariants (__builtin_trap; ASan/UBSan/LSan catch memory errors and leaks):
//   - every server datagram is 21..1452 bytes (max_mtu) and splits into packets without leftover
//     (Version Negotiation, whose CIDs may be 255 bytes, is checked by hand); it goes to an address
//     the server heard from; Transmit batches are well-formed; Retry only when enabled;
//   - a server datagram carrying an ack-eliciting Initial is ≥ 1200 bytes (RFC 9000 §14.1; see
//     kStrictInitialPadding), and every server Initial decrypts with the keys of a DCID that some
//     client Initial used (and its frames decode and are allowed in Initial packets);
//   - anti-amplification (RFC 9000 §8.1): until something that could validate the address
//     reached the server, it sends at most 3× the bytes it received from that address;
//   - bounded state: server connections ≤ 1 + Initial-sized long-header datagrams delivered;
//   - stream and datagram data are intact end to end (what the server reads is the client's
//     pattern at that offset, what comes back too), unless the input forged 1-RTT packets;
//   - with a benign network (only drops, duplicates, reordering, ECN marks and delays) neither
//     side closes with a transport error, and every client packet decrypts with the keys its
//     keylog reported (or is the client endpoint's stateless reset).
// Each input is bounded: ≤ 200 steps and ≤ 120 s of virtual time.
//
// Seeds: `IROHLAB_FUZZ_WRITE_SEEDS=DIR fuzz_quic_connection` writes the scripted scenarios of
// write_seeds() (fuzz/corpus/quic_connection/) and exits. IROHLAB_FUZZ_DEBUG=1 prints what a run
// did (close reasons, stream progress) to stderr.
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "base/key.h"
#include "base/random.h"
#include "base/socket_addr.h"
#include "base/time.h"
#include "crypto/packet_protection.h"
#include "quic/endpoint.h"
#include "quic/frame.h"
#include "quic/packet.h"

namespace {

using namespace iroh;
using namespace iroh::quic;
using namespace std::chrono_literals;

constexpr std::size_t kCidLen = 8;
constexpr std::size_t kMaxSteps = 200;
constexpr Duration kMaxTime = 120s;
constexpr std::size_t kMaxDatagram = 1452;  // ConnectionConfig::max_mtu
constexpr std::size_t kQueueCap = 64;
constexpr ByteArray<32> kClientResetKey = {0x42, 0x42, 0x42, 0x42};
const char* const kAlpn = "test/echo/0";
// RFC 9000 §14.1 says a server MUST pad every datagram with an ack-eliciting Initial to 1200 bytes;
// when the anti-amplification budget has less than that left, the engine waits (found by this
// target; the seed amplification_limited_pto is the regression input). Checked strictly.
constexpr bool kStrictInitialPadding = true;
// RFC 9000 §8.1 limits every datagram to an unvalidated address, CONNECTION_CLOSE included (found
// by this target; seed close_while_amplification_limited). Checked strictly.
constexpr bool kStrictCloseAmplification = true;

#define CHECK(cond)                \
  do {                             \
    if (!(cond)) __builtin_trap(); \
  } while (0)

const SocketAddr& server_addr() {
  static const SocketAddr a = SocketAddr::v4({10, 0, 0, 2}, 443);
  return a;
}
const SocketAddr& client_addr(std::size_t i) {
  static const SocketAddr a[4] = {
      SocketAddr::v4({10, 0, 0, 1}, 4433),   // the client's real address
      SocketAddr::v4({10, 0, 0, 1}, 50000),  // NAT rebinding
      SocketAddr::v4({10, 0, 0, 3}, 4433),
      SocketAddr::v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 4433),
  };
  return a[i % 4];
}

const SecretKey& server_key() {
  static const SecretKey k = SecretKey::generate(SeededRandom(0x5e12).array<32>());
  return k;
}
const SecretKey& client_key() {
  static const SecretKey k = SecretKey::generate(SeededRandom(0xc11e).array<32>());
  return k;
}

// The stream data pattern. These byte loops are kept out of coverage instrumentation: they carry
// no protocol logic and would otherwise dominate the run time (comparison tracing).
#define IROHLAB_NO_COVERAGE __attribute__((no_sanitize("coverage")))

IROHLAB_NO_COVERAGE std::uint8_t pattern(std::uint64_t stream, std::uint64_t offset) {
  return static_cast<std::uint8_t>(offset * 131 + stream * 17 + (offset >> 8));
}
IROHLAB_NO_COVERAGE Bytes pattern_bytes(std::uint64_t stream, std::uint64_t offset,
                                        std::size_t len) {
  Bytes b(len);
  for (std::size_t i = 0; i < len; ++i) b[i] = pattern(stream, offset + i);
  return b;
}
IROHLAB_NO_COVERAGE bool is_pattern(std::uint64_t stream, std::uint64_t offset, ByteView data) {
  bool ok = true;
  for (std::size_t i = 0; i < data.size(); ++i) ok &= data[i] == pattern(stream, offset + i);
  return ok;
}

template <std::size_t N>
ByteArray<N> to_array(ByteView v) {
  ByteArray<N> a{};
  std::copy_n(v.begin(), N, a.begin());
  return a;
}

IROHLAB_NO_COVERAGE Bytes make_datagram(std::uint16_t seq, std::size_t len) {
  Bytes d(std::max<std::size_t>(len, 2));
  d[0] = static_cast<std::uint8_t>(seq);
  d[1] = static_cast<std::uint8_t>(seq >> 8);
  for (std::size_t j = 2; j < d.size(); ++j) d[j] = static_cast<std::uint8_t>(seq * 7 + j);
  return d;
}
IROHLAB_NO_COVERAGE bool datagram_ok(ByteView d) {
  if (d.size() < 2) return false;
  const std::uint16_t seq = static_cast<std::uint16_t>(d[0] | (d[1] << 8));
  for (std::size_t j = 2; j < d.size(); ++j) {
    if (d[j] != static_cast<std::uint8_t>(seq * 7 + j)) return false;
  }
  return true;
}

// Keys of one encryption level as the client's keylog reported them (client → server direction),
// plus what we learned from decrypting the client's own packets with them.
struct LevelKeys {
  std::optional<crypto::PacketProtection> keys;  // the generation in use
  std::optional<PacketHeader> last_header;       // last real client packet (unprotected)
  std::optional<std::uint64_t> largest_pn;
};

// Where the choices come from: the fuzzer's bytes (FuzzedDataProvider), or — to write seeds — a
// script of tagged choices that is recorded into bytes the provider will replay identically
// (integers are read from the end of the input, byte strings from the front).
enum class Tag : std::uint8_t {
  kSetup,
  kGso,
  kDropReply,
  kOp,
  kMeta,
  kIndex,
  kAddr,
  kEcn,
  kMutCount,
  kMutKind,
  kMutPos,
  kMutArg,
  kMutLen,
  kMutBytes,
  kRawHow,
  kRawFirst,
  kRawLen,
  kRawBytes,
  kPad,
  kLevel,
  kPayloadLen,
  kPayload,
  kPnGap,
  kMigrate,
  kRealScid,
  kApp,
  kAppStream,
  kAppLen,
  kAppCode,
  kAppClose,
  kTime,
  kTimeSecs,
};

struct ScriptStep {
  Tag tag;
  std::uint64_t value = 0;
  Bytes bytes;
};

class Input {
 public:
  Input(const std::uint8_t* data, std::size_t size) : fdp_(std::in_place, data, size) {}
  explicit Input(std::vector<ScriptStep> script) : script_(std::move(script)) {}

  bool more() {
    if (fdp_) return fdp_->remaining_bytes() > 0;
    // A script is over once no operation is left (trailing parameters are dropped).
    for (std::size_t i = pos_; i < script_.size(); ++i) {
      if (script_[i].tag == Tag::kOp) return true;
    }
    return false;
  }
  std::uint64_t range(Tag tag, std::uint64_t lo, std::uint64_t hi) {
    if (!more()) return lo;
    if (fdp_) return fdp_->ConsumeIntegralInRange<std::uint64_t>(lo, hi);
    if (tag == Tag::kOp) {
      while (script_[pos_].tag != Tag::kOp) ++pos_;
    }
    std::uint64_t v = lo;
    if (pos_ < script_.size() && script_[pos_].tag == tag) {
      v = std::clamp(script_[pos_++].value, lo, hi);
    }
    // FuzzedDataProvider: the most significant byte is the last one of the input.
    std::size_t nbytes = 0;
    for (std::uint64_t r = hi - lo; r > 0 && nbytes < 8; r >>= 8) ++nbytes;
    for (std::size_t i = nbytes; i-- > 0;)
      back_.push_back(static_cast<std::uint8_t>((v - lo) >> (8 * i)));
    return v;
  }
  Bytes take(Tag tag, std::size_t n) {
    if (!more()) return {};
    if (fdp_) return fdp_->ConsumeBytes<std::uint8_t>(n);
    Bytes b;
    if (pos_ < script_.size() && script_[pos_].tag == tag) b = script_[pos_++].bytes;
    b.resize(n);
    front_.insert(front_.end(), b.begin(), b.end());
    return b;
  }
  // The recorded input (script mode).
  Bytes recorded() const {
    Bytes out = front_;
    out.insert(out.end(), back_.rbegin(), back_.rend());
    return out;
  }

 private:
  std::optional<FuzzedDataProvider> fdp_;
  std::vector<ScriptStep> script_;
  std::size_t pos_ = 0;
  Bytes front_, back_;
};

struct ClientStream {
  std::uint64_t id = 0;
  bool bidi = true;
  std::uint64_t written = 0;  // bytes accepted by stream_write
  std::uint64_t echoed = 0;   // bytes read back (bidi)
  bool finished = false, reset = false, stopped = false, echo_done = false;
};

struct ServerStream {
  std::uint64_t id = 0;
  bool bidi = true;
  std::uint64_t read = 0;
  Bytes pending;  // read but not yet echoed
  bool fin = false, finished = false, dead = false;
};

struct QueuedDatagram {
  Bytes bytes;
  std::uint8_t ecn = 0;
};

class Harness {
 public:
  explicit Harness(Input& in) : in_(in), rng_client_(2), rng_server_(1) {}

  void run();
  // The decrypted payload of the client's first Initial (its ClientHello), for seeds.
  const Bytes& first_initial_payload() const { return first_initial_payload_; }

 private:
  // Every choice is benign (0 / false / lo) once the input is exhausted.
  bool more() { return in_.more(); }
  std::uint8_t byte(Tag t) { return static_cast<std::uint8_t>(in_.range(t, 0, 255)); }
  bool flag(Tag t) { return in_.range(t, 0, 1) != 0; }
  std::size_t range(Tag t, std::size_t lo, std::size_t hi) { return in_.range(t, lo, hi); }
  Bytes take(Tag t, std::size_t n) { return in_.take(t, n); }

  void advance(Duration d);
  void run_timers();
  void flush();
  void check_server_datagram(ByteView d, const SocketAddr& dest);
  void deliver_to_server(Bytes bytes, const SocketAddr& from, std::uint8_t ecn);
  void learn_client_datagram(Bytes bytes);
  void serve();
  void client_app_auto();
  void client_app_action();
  void mutate(Bytes& d);
  void inject_raw();
  void forge();
  void check_closes();
  bool amplification_limited();
  bool some_server_closed();
  void on_closed(const char* who, const CloseReason& reason);
  void report();
  Connection* cconn() { return client_->connection(client_handle_); }

  Input& in_;
  SeededRandom rng_client_, rng_server_;
  Instant start_ = instant_at(1s), now_ = start_;
  std::unique_ptr<Endpoint> client_, server_;
  ConnectionHandle client_handle_ = 0;
  std::deque<QueuedDatagram> to_server_;
  bool retry_ = false;
  const bool debug_ = std::getenv("IROHLAB_FUZZ_DEBUG") != nullptr;
  bool forged_app_ = false;  // forged 1-RTT packets can carry any stream/datagram data
  std::uint8_t new_conns_ = 0;
  bool benign_ = true;  // nothing but drops, duplicates, reordering, ECN marks and delays
  bool addr_validated_maybe_ = false;
  std::map<Bytes, std::uint64_t> received_from_, sent_to_;  // by address bytes
  std::set<Bytes> heard_from_;
  std::size_t initial_like_ = 0;
  // Initial keys per client DCID seen in Initial packets delivered to the server.
  std::vector<std::pair<Bytes, crypto::InitialKeys>> initial_keys_;
  bool too_many_dcids_ = false;
  // Client → server keys per level from the keylog (Initial from the first DCID).
  LevelKeys level_[3];  // 0 Initial, 1 Handshake, 2 1-RTT
  std::optional<Bytes> hs_secret_, app_secret_;
  Bytes first_initial_payload_;
  std::set<ByteArray<16>> reset_tokens_;
  std::vector<ClientStream> cstreams_;
  bool auto_done_ = false;
  std::uint16_t dgram_seq_ = 0;
  std::map<ConnectionHandle, std::vector<ServerStream>> sstreams_;
};

Bytes addr_key(const SocketAddr& a) {
  Bytes b(a.ip().begin(), a.ip().end());
  b.push_back(static_cast<std::uint8_t>(a.port() >> 8));
  b.push_back(static_cast<std::uint8_t>(a.port()));
  return b;
}

void Harness::advance(Duration d) {
  if (d <= Duration::zero()) return;
  now_ += d;
  if (now_ > start_ + kMaxTime) now_ = start_ + kMaxTime;
  run_timers();
}

void Harness::run_timers() {
  client_->handle_timeout(now_);
  server_->handle_timeout(now_);
}

// Poll both endpoints: client output is queued for the input to decide on, server output is
// checked and delivered to the client (or dropped).
void Harness::flush() {
  std::uint8_t buf[4 * 1500];
  for (int rounds = 0; rounds < 64; ++rounds) {
    bool any = false;
    while (auto t = client_->poll_transmit(now_, std::span<std::uint8_t>(buf, 1500), 1)) {
      any = true;
      CHECK(t->size > 0 && t->size <= 1500);
      CHECK(t->dest == server_addr());
      CHECK(t->size <= kMaxDatagram);
      Bytes d(buf, buf + t->size);
      learn_client_datagram(d);
      if (to_server_.size() >= kQueueCap) to_server_.pop_front();
      to_server_.push_back({std::move(d), t->ecn});
    }
    const std::size_t max_dg = flag(Tag::kGso) ? 4 : 1;
    while (auto t =
               server_->poll_transmit(now_, std::span<std::uint8_t>(buf, sizeof buf), max_dg)) {
      any = true;
      CHECK(t->size > 0 && t->size <= sizeof buf);
      CHECK(t->segment_size > 0 && t->segment_size <= kMaxDatagram);
      CHECK(t->size <= t->segment_size * max_dg);
      CHECK(heard_from_.count(addr_key(t->dest)) == 1);
      for (std::size_t off = 0; off < t->size; off += t->segment_size) {
        const std::size_t n = std::min(t->segment_size, t->size - off);
        Bytes d(buf + off, buf + off + n);
        check_server_datagram(d, t->dest);
        if (!flag(Tag::kDropReply)) {
          // If this is unroutable at the client, its endpoint answers with a stateless reset
          // carrying this token (the client's reset key is ours).
          if (d.size() > kCidLen && !(d[0] & 0x80)) {
            reset_tokens_.insert(
                stateless_reset_token(kClientResetKey, ByteView(d).subspan(1, kCidLen)));
          }
          client_->handle_datagram(now_, server_addr(), d, t->ecn);
        }
      }
    }
    serve();
    client_app_auto();
    if (!any) break;
  }
  check_closes();
}

// Whether the server could be amplification-limited: some connection's path is not validated.
// (Its budget is per connection and per address — 3 × what arrived from the path's current
// address — which the harness cannot see exactly, hence this over-approximation.)
bool Harness::some_server_closed() {
  for (ConnectionHandle h : server_->handles()) {
    const Connection* c = server_->connection(h);
    if (c && c->is_closed()) return true;
  }
  return false;
}

bool Harness::amplification_limited() {
  for (ConnectionHandle h : server_->handles()) {
    const Connection* c = server_->connection(h);
    if (c && !c->stats().path.validated) return true;
  }
  return false;
}

void Harness::check_server_datagram(ByteView d, const SocketAddr& dest) {
  if (auto inv = parse_invariants(d); inv && inv->version == 0) {
    // Version Negotiation echoes the CIDs of whatever arrived, up to 255 bytes each (RFC 8999),
    // which the v1 parser rightly refuses: check it by hand. Only answers to ≥ 1200-byte
    // datagrams, so never larger than what triggered it.
    const std::size_t list = 7 + inv->dcid.size() + inv->scid.size();
    CHECK(d.size() > list && (d.size() - list) % 4 == 0 && d.size() <= 1500);
    sent_to_[addr_key(dest)] += d.size();
    return;
  }
  const Datagram split = split_datagram(d, kCidLen);
  if ((split.packets.empty() || !split.error.empty()) && std::getenv("IROHLAB_FUZZ_DEBUG")) {
    std::fprintf(stderr, "server datagram %zu bytes does not split: %s (%zu packets)\n", d.size(),
                 split.error.c_str(), split.packets.size());
    for (std::size_t i = 0; i < std::min<std::size_t>(d.size(), 64); ++i) {
      std::fprintf(stderr, "%02x", d[i]);
    }
    std::fprintf(stderr, "\n");
  }
  CHECK(!split.packets.empty() && split.error.empty());
  CHECK(d.size() >= 21);
  CHECK(split.packets[0].header.type != PacketType::kRetry || retry_);

  const std::uint64_t received = received_from_[addr_key(dest)];
  auto& sent = sent_to_[addr_key(dest)];
  sent += d.size();
  if (!addr_validated_maybe_ && sent > 3 * received && std::getenv("IROHLAB_FUZZ_DEBUG")) {
    std::fprintf(stderr, "amplification: %llu bytes sent to %s, %llu received; this %s (%zu)\n",
                 static_cast<unsigned long long>(sent), dest.to_string().c_str(),
                 static_cast<unsigned long long>(received),
                 packet_type_name(split.packets[0].header.type), d.size());
  }
  const bool amplification_ok = addr_validated_maybe_ || sent <= 3 * received ||
                                (!kStrictCloseAmplification && some_server_closed());

  for (const ParsedHeader& p : split.packets) {
    if (p.header.type != PacketType::kInitial) continue;
    if (too_many_dcids_) continue;
    bool opened_any = false;
    for (auto& [dcid, keys] : initial_keys_) {
      Bytes work(d.begin() + p.offset, d.begin() + p.offset + p.packet_length);
      auto opened = unprotect_parsed(work, p, std::nullopt, keys.server);
      if (!opened) continue;
      opened_any = true;
      auto frames = decode_frames(opened->payload);
      CHECK(frames.ok());  // we produced it: it must decode
      if (!addr_validated_maybe_ && sent > 3 * received && std::getenv("IROHLAB_FUZZ_DEBUG")) {
        std::fprintf(stderr, "  Initial frames:");
        for (const auto& f : *frames)
          std::fprintf(stderr, " %s", std::string(frame_name(f)).c_str());
        std::fprintf(stderr, "\n");
      }
      bool eliciting = false;
      for (const auto& f : *frames) {
        CHECK(allowed_in(f, PacketKind::kInitial));
        eliciting = eliciting || is_ack_eliciting(f);
      }
      if (eliciting && d.size() < 1200 && std::getenv("IROHLAB_FUZZ_DEBUG")) {
        std::fprintf(stderr, "server datagram %zu bytes, %zu packets; Initial frames:", d.size(),
                     split.packets.size());
        for (const auto& f : *frames)
          std::fprintf(stderr, " %s", std::string(frame_name(f)).c_str());
        std::fprintf(stderr, "\n");
      }
      CHECK(!eliciting || d.size() >= 1200 || (!kStrictInitialPadding && amplification_limited()));
      break;
    }
    CHECK(opened_any);
  }
  CHECK(amplification_ok);
}

// Tracks what the real client sends: its Initial DCID and, decrypting with the keylog keys, the
// last header and packet number per level (templates for forged packets).
void Harness::learn_client_datagram(Bytes bytes) {
  const Datagram split = split_datagram(bytes, kCidLen);
  CHECK(!split.packets.empty() && split.error.empty());
  for (const ParsedHeader& p : split.packets) {
    int lvl = -1;
    if (p.header.type == PacketType::kInitial) lvl = 0;
    if (p.header.type == PacketType::kHandshake) lvl = 1;
    if (p.header.type == PacketType::kOneRtt) lvl = 2;
    if (lvl < 0) continue;
    LevelKeys& lk = level_[lvl];
    if (lvl == 0 && !lk.keys) {
      auto k = crypto::derive_initial_keys(p.header.dcid.view());
      CHECK(k.ok());
      lk.keys.emplace(std::move(k->client));
    }
    if (lvl > 0 && !lk.keys) {
      // The keylog gives the secret, not the cipher suite: keep the AEAD that opens the packet.
      const std::optional<Bytes>& secret = lvl == 1 ? hs_secret_ : app_secret_;
      if (!secret) continue;
      const auto level =
          lvl == 1 ? crypto::EncryptionLevel::kHandshake : crypto::EncryptionLevel::kOneRtt;
      for (auto alg : {crypto::AeadAlgorithm::kAes128Gcm, crypto::AeadAlgorithm::kChaCha20Poly1305,
                       crypto::AeadAlgorithm::kAes256Gcm}) {
        auto k = crypto::PacketProtection::from_secret(alg, *secret, level);
        if (!k) continue;
        Bytes work(bytes.begin() + p.offset, bytes.begin() + p.offset + p.packet_length);
        if (unprotect_parsed(work, p, lk.largest_pn, *k)) {
          lk.keys.emplace(std::move(*k));
          break;
        }
      }
      // Our own client's packets decrypt with the keys its keylog reported.
      CHECK(lk.keys || !benign_);
      if (!lk.keys) continue;
    }
    if (!lk.keys) continue;
    Bytes work(bytes.begin() + p.offset, bytes.begin() + p.offset + p.packet_length);
    auto opened = unprotect_parsed(work, p, lk.largest_pn, *lk.keys);
    if (!opened && lvl == 2) {
      // Key update: the next generation.
      if (auto next = lk.keys->next_generation()) {
        Bytes again(bytes.begin() + p.offset, bytes.begin() + p.offset + p.packet_length);
        if (auto reopened = unprotect_parsed(again, p, lk.largest_pn, *next)) {
          lk.keys.emplace(std::move(*next));
          opened = std::move(reopened);
        }
      }
    }
    if (!opened && lvl == 0) {
      // After a Retry the Initial keys come from the new DCID (RFC 9001 §5.2).
      auto k = crypto::derive_initial_keys(p.header.dcid.view());
      CHECK(k.ok());
      Bytes again(bytes.begin() + p.offset, bytes.begin() + p.offset + p.packet_length);
      if (auto reopened = unprotect_parsed(again, p, lk.largest_pn, k->client)) {
        lk.keys.emplace(std::move(k->client));
        opened = std::move(reopened);
      }
    }
    if (!opened && lvl == 2 && p.packet_length >= 21 &&
        reset_tokens_.count(
            to_array<16>(ByteView(bytes).subspan(p.offset + p.packet_length - 16)))) {
      if (std::getenv("IROHLAB_FUZZ_DEBUG"))
        std::fprintf(stderr, "client sent a stateless reset\n");
      continue;  // the client endpoint's stateless reset
    }
    if (!opened) {
      if (benign_ && std::getenv("IROHLAB_FUZZ_DEBUG")) {
        std::fprintf(stderr, "client packet at level %d (%zu bytes) does not open: %s\n", lvl,
                     p.packet_length, opened.error().message.c_str());
      }
      CHECK(!benign_);
      continue;
    }
    if (lvl == 0 && first_initial_payload_.empty()) {
      first_initial_payload_.assign(opened->payload.begin(), opened->payload.end());
    }
    lk.last_header = opened->header;
    lk.largest_pn = std::max(lk.largest_pn.value_or(0), opened->header.packet_number);
  }
}

void Harness::deliver_to_server(Bytes bytes, const SocketAddr& from, std::uint8_t ecn) {
  const Bytes key = addr_key(from);
  received_from_[key] += bytes.size();
  heard_from_.insert(key);
  if (!bytes.empty() && (bytes[0] & 0xb0) == 0x80 && bytes.size() >= 1200) ++initial_like_;
  const Datagram split = split_datagram(bytes, kCidLen);
  for (const ParsedHeader& p : split.packets) {
    const auto t = p.header.type;
    if (t == PacketType::kHandshake || t == PacketType::kOneRtt) addr_validated_maybe_ = true;
    if (t == PacketType::kInitial && !p.header.token.empty()) addr_validated_maybe_ = true;
    if (t == PacketType::kInitial) {
      const Bytes dcid(p.header.dcid.view().begin(), p.header.dcid.view().end());
      const bool known = std::any_of(initial_keys_.begin(), initial_keys_.end(),
                                     [&](const auto& e) { return e.first == dcid; });
      if (!known) {
        if (initial_keys_.size() >= 16) {
          too_many_dcids_ = true;
        } else if (auto k = crypto::derive_initial_keys(dcid)) {
          initial_keys_.emplace_back(dcid, std::move(*k));
        }
      }
    }
  }
  // Malformed datagrams can still carry something that validates (the endpoint parses on its
  // own); only trust the split if it covered everything.
  if (!split.error.empty()) addr_validated_maybe_ = true;
  server_->handle_datagram(now_, from, bytes, ecn);
  CHECK(server_->connection_count() <= 1 + initial_like_);
}

void Harness::serve() {
  while (auto h = server_->accept()) sstreams_[*h];
  std::uint8_t buf[4096];
  for (auto& [h, streams] : sstreams_) {
    Connection* c = server_->connection(h);
    if (!c) continue;
    while (auto ev = c->poll_event()) {
      if (const auto* closed = std::get_if<event::Closed>(&*ev))
        on_closed("server", closed->reason);
    }
    for (auto dir : {StreamDirection::kBidi, StreamDirection::kUni}) {
      while (auto id = c->accept_stream(dir)) {
        ServerStream s;
        s.id = *id;
        s.bidi = dir == StreamDirection::kBidi;
        streams.push_back(s);
      }
    }
    for (auto& s : streams) {
      while (!s.dead && !s.fin) {
        auto r = c->stream_read(s.id, buf);
        if (!r) {
          s.dead = true;
          break;
        }
        CHECK(forged_app_ || is_pattern(s.id, s.read, ByteView(buf, r->bytes)));
        s.read += r->bytes;
        if (s.bidi) s.pending.insert(s.pending.end(), buf, buf + r->bytes);
        if (r->fin) s.fin = true;
        if (r->bytes == 0) break;
      }
      if (s.bidi && !s.pending.empty()) {
        auto n = c->stream_write(s.id, s.pending);
        if (n) {
          s.pending.erase(s.pending.begin(), s.pending.begin() + static_cast<long>(*n));
        } else {
          s.pending.clear();
          s.dead = true;
        }
      }
      if (s.bidi && s.fin && s.pending.empty() && !s.finished) {
        s.finished = true;
        (void)c->stream_finish(s.id);
      }
    }
    std::erase_if(streams, [](const ServerStream& s) {
      return s.dead || (s.fin && (!s.bidi || s.finished));
    });
    for (int i = 0; i < 64; ++i) {
      auto d = c->recv_datagram();
      if (!d) break;
      CHECK(forged_app_ || datagram_ok(*d));
      (void)c->send_datagram(*d);
    }
  }
}

// The client application: on handshake completion one bidi stream with 3000 bytes + FIN and one
// datagram; afterwards reads echoes back and verifies them.
void Harness::client_app_auto() {
  Connection* c = cconn();
  if (!c) return;
  while (auto ev = c->poll_event()) {
    if (const auto* closed = std::get_if<event::Closed>(&*ev)) on_closed("client", closed->reason);
  }
  if (!c->is_handshake_complete() || c->is_closed()) return;
  if (!auto_done_) {
    auto_done_ = true;
    if (auto id = c->open_stream(StreamDirection::kBidi)) {
      ClientStream s;
      s.id = *id;
      const Bytes data = pattern_bytes(s.id, 0, 3000);
      if (auto n = c->stream_write(s.id, data)) s.written = *n;
      if (s.written == data.size() && c->stream_finish(s.id).ok()) s.finished = true;
      cstreams_.push_back(s);
    }
    (void)c->send_datagram(make_datagram(dgram_seq_++, 100));
  }
  std::uint8_t buf[4096];
  for (auto& s : cstreams_) {
    while (s.bidi && !s.echo_done && !s.stopped) {
      auto r = c->stream_read(s.id, buf);
      if (!r) {
        s.echo_done = true;
        break;
      }
      CHECK(forged_app_ || is_pattern(s.id, s.echoed, ByteView(buf, r->bytes)));
      s.echoed += r->bytes;
      CHECK(forged_app_ || s.echoed <= s.written);
      if (r->fin) {
        // The server finishes only after reading our FIN: everything came back.
        CHECK(forged_app_ || s.reset || (s.finished && s.echoed == s.written));
        s.echo_done = true;
      }
      if (r->bytes == 0) break;
    }
  }
  for (int i = 0; i < 64; ++i) {
    auto d = c->recv_datagram();
    if (!d) break;
    CHECK(forged_app_ || datagram_ok(*d));
  }
}

void Harness::client_app_action() {
  Connection* c = cconn();
  const std::uint8_t what = byte(Tag::kApp);
  if (!c || !c->is_handshake_complete() || c->is_closed()) return;
  ClientStream* s =
      cstreams_.empty() ? nullptr : &cstreams_[range(Tag::kAppStream, 0, cstreams_.size() - 1)];
  auto write = [&](ClientStream& st, std::size_t len) {
    const Bytes data = pattern_bytes(st.id, st.written, len);
    if (auto n = c->stream_write(st.id, data)) st.written += *n;
  };
  switch (what % 10) {
    case 0:
    case 1: {
      const bool bidi = what % 10 == 0;
      auto id = c->open_stream(bidi ? StreamDirection::kBidi : StreamDirection::kUni);
      if (!id || cstreams_.size() >= 32) break;
      ClientStream st;
      st.id = *id;
      st.bidi = bidi;
      write(st, range(Tag::kAppLen, 0, 20000));
      cstreams_.push_back(st);
      break;
    }
    case 2:
      if (s && !s->finished && !s->reset) write(*s, range(Tag::kAppLen, 0, 20000));
      break;
    case 3:
      if (s && !s->finished && !s->reset && c->stream_finish(s->id).ok()) s->finished = true;
      break;
    case 4:
      if (s && c->stream_reset(s->id, range(Tag::kAppCode, 0, 100)).ok()) s->reset = true;
      break;
    case 5:
      if (s && s->bidi && c->stream_stop_sending(s->id, range(Tag::kAppCode, 0, 100)).ok())
        s->stopped = true;
      break;
    case 6:
      (void)c->send_datagram(make_datagram(dgram_seq_++, range(Tag::kAppLen, 0, 1500)));
      break;
    case 7:
      (void)c->initiate_key_update();
      break;
    case 8:
      if (s) (void)c->stream_set_priority(s->id, static_cast<int>(range(Tag::kAppCode, 0, 4)) - 2);
      break;
    case 9:
      if (flag(Tag::kAppClose)) c->close(now_, range(Tag::kAppCode, 0, 10), "bye");
      break;
  }
}

void Harness::mutate(Bytes& d) {
  const std::size_t n = range(Tag::kMutCount, 1, 4);
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t kind = byte(Tag::kMutKind) % 5;
    const std::size_t pos = d.empty() ? 0 : range(Tag::kMutPos, 0, d.size() - 1);
    switch (kind) {
      case 0:
        if (!d.empty()) d[pos] ^= static_cast<std::uint8_t>(1u << (byte(Tag::kMutArg) % 8));
        break;
      case 1:
        if (!d.empty()) d[pos] = byte(Tag::kMutArg);
        break;
      case 2: {
        const std::size_t len = range(Tag::kMutLen, 1, 16);
        const Bytes ins = take(Tag::kMutBytes, len);
        d.insert(d.begin() + static_cast<long>(std::min(pos, d.size())), ins.begin(), ins.end());
        break;
      }
      case 3: {
        const std::size_t len =
            std::min(range(Tag::kMutLen, 1, 64), d.size() - std::min(pos, d.size()));
        d.erase(d.begin() + static_cast<long>(pos), d.begin() + static_cast<long>(pos + len));
        break;
      }
      case 4:
        d.resize(pos);
        break;
    }
  }
}

void Harness::inject_raw() {
  const std::uint8_t how = byte(Tag::kRawHow) % 3;
  Bytes d;
  if (how == 1 && level_[2].last_header) {
    // Behind a valid short header (routable): first byte and DCID of the client's last 1-RTT.
    d.push_back(static_cast<std::uint8_t>(0x40 | (byte(Tag::kRawFirst) & 0x3f)));
    const auto dcid = level_[2].last_header->dcid.view();
    d.insert(d.end(), dcid.begin(), dcid.end());
  } else if (how == 2 && level_[0].last_header) {
    // A long header with the client's current Initial/Handshake DCID and SCID.
    const auto& h = *level_[0].last_header;
    d.push_back(static_cast<std::uint8_t>(0xc0 | (byte(Tag::kRawFirst) & 0x3f)));
    d.insert(d.end(), {0, 0, 0, 1});
    d.push_back(static_cast<std::uint8_t>(h.dcid.size()));
    d.insert(d.end(), h.dcid.view().begin(), h.dcid.view().end());
    d.push_back(static_cast<std::uint8_t>(h.scid.size()));
    d.insert(d.end(), h.scid.view().begin(), h.scid.view().end());
  }
  const std::size_t tail_len = range(Tag::kRawLen, 0, 1500);
  const Bytes tail = take(Tag::kRawBytes, tail_len);
  d.insert(d.end(), tail.begin(), tail.end());
  if (flag(Tag::kPad) && d.size() < 1200) d.resize(1200);
  if (d.size() > 1500) d.resize(1500);
  benign_ = false;
  const std::uint8_t from = byte(Tag::kAddr);
  const std::uint8_t ecn = byte(Tag::kEcn) & 3;
  deliver_to_server(std::move(d), client_addr(from), ecn);
}

// A packet with input-chosen frames, protected with the client's real keys at some level.
// A packet with input-chosen frames, protected with the client's real keys at some level, or
// (level 3) the Initial of a new connection with an input-chosen DCID (Initial keys are public).
void Harness::forge() {
  const std::size_t lvl = byte(Tag::kLevel) % 4;
  std::size_t payload_len = range(Tag::kPayloadLen, 0, 1200);
  Bytes payload = take(Tag::kPayload, payload_len);
  const bool pad = flag(Tag::kPad);
  const std::size_t pn_gap = range(Tag::kPnGap, 0, 3);
  const bool migrate = flag(Tag::kMigrate);
  const bool real_scid = flag(Tag::kRealScid);
  const std::uint8_t from = migrate ? byte(Tag::kAddr) : 0;
  PacketHeader h;
  std::optional<crypto::InitialKeys> fresh;
  crypto::PacketProtection* keys = nullptr;
  if (lvl == 3) {
    const std::uint8_t n = new_conns_++;
    h.type = PacketType::kInitial;
    h.dcid = ConnectionId::from(Bytes{0xd0, n, 0, 0, 0, 0, 0, static_cast<std::uint8_t>(pn_gap)})
                 .value();
    h.scid = ConnectionId::from(Bytes{0x5c, n, 1, 2, 3, 4, 5, 6}).value();
    // The real client's SCID makes its ClientHello's initial_source_connection_id match.
    if (real_scid && level_[0].last_header) h.scid = level_[0].last_header->scid;
    auto k = crypto::derive_initial_keys(h.dcid.view());
    if (!k) return;
    fresh.emplace(std::move(*k));
    keys = &fresh->client;
  } else {
    LevelKeys& lk = level_[lvl];
    if (!lk.keys || !lk.last_header) return;
    h = *lk.last_header;
    h.packet_number = lk.largest_pn.value_or(0) + 1 + pn_gap;
    lk.largest_pn = h.packet_number;
    keys = &*lk.keys;
  }
  h.pn_length = 4;
  h.length = 0;
  h.length_size = 0;
  h.reserved_bits = 0;
  if (pad && (lvl == 0 || lvl == 3) && payload.size() < 1200) payload.resize(1200, 0);
  if (payload.size() < 4) payload.resize(4, 0);
  auto packet = protect_packet(h, payload, *keys);
  if (!packet) return;
  benign_ = false;
  if (lvl == 2) forged_app_ = true;
  Bytes d = std::move(*packet);
  if (d.size() > 1500) d.resize(1500);
  deliver_to_server(std::move(d), client_addr(from), 0);
}

bool transport_error(const std::optional<CloseReason>& r) {
  return r &&
         (r->kind == CloseReason::Kind::kLocalTransport ||
          r->kind == CloseReason::Kind::kPeerTransport) &&
         r->code != 0 &&
         r->code != 0x0c;  // APPLICATION_ERROR: an application close before 1-RTT (§10.2.3)
}

void Harness::on_closed(const char* who, const CloseReason& reason) {
  if (std::getenv("IROHLAB_FUZZ_DEBUG")) {
    std::fprintf(stderr, "%s closed: %s\n", who, reason.describe().c_str());
  }
  CHECK(!benign_ || !transport_error(reason));
}

void Harness::check_closes() {
  if (!benign_) return;
  if (Connection* c = cconn()) CHECK(!transport_error(c->close_reason()));
  for (auto& [h, streams] : sstreams_) {
    if (Connection* c = server_->connection(h)) CHECK(!transport_error(c->close_reason()));
  }
}

void Harness::run() {
  const std::uint8_t setup = byte(Tag::kSetup);
  retry_ = setup & 1;

  EndpointConfig sc;
  sc.alpns = {kAlpn};
  sc.retry = retry_;
  server_ = std::make_unique<Endpoint>(server_key(), sc, rng_server_);

  EndpointConfig cc;
  cc.connection.reset_key = kClientResetKey;
  cc.connection.keylog = [this](std::string_view label, ByteView, ByteView secret) {
    if (label == "CLIENT_HANDSHAKE_TRAFFIC_SECRET")
      hs_secret_ = Bytes(secret.begin(), secret.end());
    if (label == "CLIENT_TRAFFIC_SECRET_0") app_secret_ = Bytes(secret.begin(), secret.end());
  };
  client_ = std::make_unique<Endpoint>(client_key(), cc, rng_client_);
  auto h = client_->connect(now_, server_addr(), server_key().public_key(), kAlpn);
  CHECK(h.ok());
  client_handle_ = *h;
  flush();

  std::size_t idle_after_input = 0;
  for (std::size_t step = 0; step < kMaxSteps && now_ < start_ + kMaxTime; ++step) {
    if (!more()) {
      // Input exhausted: a benign network until things settle.
      if (!to_server_.empty()) {
        QueuedDatagram q = std::move(to_server_.front());
        to_server_.pop_front();
        deliver_to_server(std::move(q.bytes), client_addr(0), q.ecn);
      } else {
        std::optional<Instant> t = client_->next_timeout();
        if (auto s = server_->next_timeout(); s && (!t || *s < *t)) t = s;
        if (!t || *t > now_ + 1s || ++idle_after_input > 20) break;
        advance(std::max<Duration>(*t - now_, Duration::zero()));
        run_timers();
      }
      flush();
      continue;
    }
    const std::uint8_t op = byte(Tag::kOp);
    if (debug_) {
      std::fprintf(stderr, "step %zu t=%.3fs op %u (%zu queued)\n", step,
                   std::chrono::duration<double>(now_ - start_).count(), op % 16,
                   to_server_.size());
    }
    switch (op % 16) {
      default: {  // 0..6: deliver one of the first few queued datagrams
        if (to_server_.empty()) {
          std::optional<Instant> t = client_->next_timeout();
          if (auto s = server_->next_timeout(); s && (!t || *s < *t)) t = s;
          if (t) advance(std::max<Duration>(*t - now_, Duration::zero()));
          run_timers();
          break;
        }
        const std::uint8_t meta = byte(Tag::kMeta);
        static constexpr int kStepMs[16] = {0,  0,   1,   2,   5,   10,   20,   30,
                                            50, 100, 200, 333, 500, 1000, 3000, 10000};
        advance(std::chrono::milliseconds(kStepMs[meta >> 4]));
        const std::size_t idx =
            range(Tag::kIndex, 0, std::min<std::size_t>(to_server_.size() - 1, 3));
        QueuedDatagram q = to_server_[idx];
        to_server_.erase(to_server_.begin() + static_cast<long>(idx));
        const std::size_t a = meta & 3;
        if (a != 0) benign_ = false;
        static constexpr std::uint8_t kEcn[4] = {0xff, 0, 3, 1};  // as sent, bleached, CE, ECT(1)
        const std::uint8_t ecn = kEcn[(meta >> 2) & 3] == 0xff ? q.ecn : kEcn[(meta >> 2) & 3];
        deliver_to_server(std::move(q.bytes), client_addr(a), ecn);
        break;
      }
      case 7:  // drop
        if (!to_server_.empty()) to_server_.pop_front();
        break;
      case 8:  // duplicate: deliver a copy, keep the original queued
        if (!to_server_.empty()) {
          deliver_to_server(to_server_.front().bytes, client_addr(0), to_server_.front().ecn);
        }
        break;
      case 9:  // mutate and deliver
        if (!to_server_.empty()) {
          QueuedDatagram q = std::move(to_server_.front());
          to_server_.pop_front();
          mutate(q.bytes);
          benign_ = false;
          deliver_to_server(std::move(q.bytes), client_addr(byte(Tag::kAddr)), q.ecn);
        }
        break;
      case 10:
        inject_raw();
        break;
      case 11:
      case 12:
        forge();
        break;
      case 13:
      case 14:
        client_app_action();
        break;
      case 15: {  // advance time
        const std::uint8_t t = byte(Tag::kTime);
        if (t < 128) {
          advance(std::chrono::milliseconds(t * 4));
        } else {
          std::optional<Instant> n = client_->next_timeout();
          if (auto s = server_->next_timeout(); s && (!n || *s < *n)) n = s;
          if (n) advance(std::max<Duration>(*n - now_, Duration::zero()));
          if (t == 255) advance(std::chrono::seconds(range(Tag::kTimeSecs, 1, 40)));
        }
        run_timers();
        break;
      }
    }
    flush();
  }
  if (std::getenv("IROHLAB_FUZZ_DEBUG")) report();
}

void Harness::report() {
  Connection* c = cconn();
  std::fprintf(stderr, "retry=%d benign=%d t=%.3fs server_conns=%zu client_hs=%d closed=%s\n",
               retry_, benign_, std::chrono::duration<double>(now_ - start_).count(),
               server_->connection_count(), c && c->is_handshake_complete(),
               c && c->close_reason() ? c->close_reason()->describe().c_str() : "-");
  for (const auto& s : cstreams_) {
    std::fprintf(stderr, "  stream %llu bidi=%d written=%llu echoed=%llu done=%d\n",
                 static_cast<unsigned long long>(s.id), s.bidi,
                 static_cast<unsigned long long>(s.written),
                 static_cast<unsigned long long>(s.echoed), s.echo_done);
  }
  for (int l = 0; l < 3; ++l) {
    std::fprintf(stderr, "  level %d keys=%d largest_pn=%lld\n", l, level_[l].keys.has_value(),
                 level_[l].largest_pn ? static_cast<long long>(*level_[l].largest_pn) : -1LL);
  }
}

// ---- seeds: IROHLAB_FUZZ_WRITE_SEEDS=DIR fuzz_quic_connection writes fuzz/corpus/quic_connection
// ----

using Script = std::vector<ScriptStep>;

void op(Script& s, std::uint8_t o) { s.push_back({Tag::kOp, o, {}}); }
void deliver(Script& s, int n, std::uint8_t meta = 0) {
  for (int i = 0; i < n; ++i) {
    op(s, 0);
    s.push_back({Tag::kMeta, meta, {}});
  }
}
void forge(Script& s, std::uint8_t level, Bytes payload, bool pad = false) {
  op(s, 11);
  s.push_back({Tag::kLevel, level, {}});
  s.push_back({Tag::kPayloadLen, payload.size(), {}});
  s.push_back({Tag::kPayload, 0, std::move(payload)});
  s.push_back({Tag::kPad, pad ? 1u : 0u, {}});
  s.push_back({Tag::kPnGap, 0, {}});
  s.push_back({Tag::kMigrate, 0, {}});
}
void app(Script& s, std::uint8_t what, std::uint64_t len = 0, std::uint64_t code = 0) {
  op(s, 13);
  s.push_back({Tag::kApp, what, {}});
  s.push_back({Tag::kAppLen, len, {}});
  s.push_back({Tag::kAppCode, code, {}});
  s.push_back({Tag::kAppClose, 1, {}});
}
void wait(Script& s, std::uint8_t t) {
  op(s, 15);
  s.push_back({Tag::kTime, t, {}});
}
Script handshake(std::uint8_t setup = 0) {
  Script s{{Tag::kSetup, setup, {}}};
  deliver(s, 12);
  return s;
}
Bytes cat(std::initializer_list<Bytes> parts) {
  Bytes out;
  for (const auto& p : parts) out.insert(out.end(), p.begin(), p.end());
  return out;
}

void write_seeds(const char* dir) {
  Bytes client_hello;
  {
    Input in(Script{{Tag::kSetup, 0, {}}, {Tag::kOp, 0, {}}});
    Harness h(in);
    h.run();
    client_hello = h.first_initial_payload();
    while (!client_hello.empty() && client_hello.back() == 0) client_hello.pop_back();  // PADDING
  }
  std::vector<std::pair<std::string, Script>> seeds;
  auto add = [&](std::string name, Script s) {
    op(s, 0);  // scripts end at their last operation (see Input::more)
    seeds.emplace_back(std::move(name), std::move(s));
  };
  const Bytes cid8{1, 2, 3, 4, 5, 6, 7, 8}, token16(16, 0xab);
  add("clean_handshake_echo", handshake());
  add("retry_handshake_echo", handshake(1));
  {
    Script s{{Tag::kSetup, 0, {}}};
    op(s, 7);  // drop the first Initial: the client's PTO resends it
    wait(s, 200);
    deliver(s, 8);
    add("drop_first_initial", s);
  }
  {
    Script s{{Tag::kSetup, 0, {}}};
    for (int i = 0; i < 6; ++i) {
      op(s, 8);             // duplicate
      deliver(s, 1, 0x78);  // 30 ms later (meta bits 4-7), marked CE (bits 2-3)
    }
    add("duplicates_ecn_ce", s);
  }
  {
    Script s = handshake();
    app(s, 0, 20000);  // a bidi stream with 20000 bytes
    app(s, 1, 5000);   // a uni stream
    app(s, 6, 1000);   // a datagram
    app(s, 7);         // key update
    deliver(s, 10);
    app(s, 3);  // finish
    deliver(s, 10);
    add("streams_datagram_key_update", s);
  }
  {
    Script s = handshake();
    app(s, 0, 20000);
    deliver(s, 2);
    deliver(s, 6, 0x01);  // NAT rebinding: same IP, new port
    add("nat_rebinding", s);
  }
  {
    Script s = handshake();
    app(s, 0, 8000);
    app(s, 4, 0, 7);  // reset
    app(s, 0, 100);
    app(s, 5, 0, 9);  // stop sending
    deliver(s, 8);
    add("reset_stop_sending", s);
  }
  {
    Script s = handshake();
    wait(s, 255);  // to the next timer, then +N s
    s.push_back({Tag::kTimeSecs, 40, {}});
    wait(s, 255);
    s.push_back({Tag::kTimeSecs, 40, {}});
    add("idle_timeout", s);
  }
  {
    Script s{{Tag::kSetup, 0, {}}};
    deliver(s, 1);
    op(s, 9);  // mutate the next datagram: flip a bit in its header
    s.push_back({Tag::kMutCount, 1, {}});
    s.push_back({Tag::kMutKind, 0, {}});
    s.push_back({Tag::kMutPos, 0, {}});
    deliver(s, 8);
    add("mutate_flip", s);
  }
  {
    Script s = handshake();
    op(s, 10);  // a short header with the server's CID and garbage: fails AEAD
    s.push_back({Tag::kRawHow, 1, {}});
    s.push_back({Tag::kRawLen, 60, {}});
    s.push_back({Tag::kRawBytes, 0, Bytes(60, 0x5a)});
    op(s, 10);  // an unroutable short header: stateless reset
    s.push_back({Tag::kRawHow, 0, {}});
    s.push_back({Tag::kRawLen, 60, {}});
    s.push_back({Tag::kRawBytes, 0, cat({{0x41}, Bytes(59, 0x33)})});
    op(s, 10);  // an unknown version: Version Negotiation
    s.push_back({Tag::kRawHow, 0, {}});
    s.push_back({Tag::kRawLen, 30, {}});
    s.push_back({Tag::kRawBytes, 0, cat({{0xc0, 0x1a, 0x2a, 0x3a, 0x4a, 8}, cid8, {8}, cid8})});
    s.push_back({Tag::kPad, 1, {}});
    add("raw_injection", s);
  }
  {
    Script s{{Tag::kSetup, 0, {}}};
    deliver(s, 1);
    // Initial-level frames: PING, ACK of a packet never sent, a CRYPTO frame far ahead.
    forge(s, 0, {0x01});
    forge(s, 0, {0x02, 0x40, 0x64, 0x00, 0x00, 0x00});
    forge(s, 0, cat({{0x06, 0x80, 0x01, 0x00, 0x00, 0x04}, {1, 2, 3, 4}}));
    deliver(s, 8);
    add("forged_initial_frames", s);
  }
  {
    Script s{{Tag::kSetup, 0, {}}};
    deliver(s, 1);
    forge(s, 3, client_hello, true);  // a second connection with the real ClientHello
    s.push_back({Tag::kRealScid, 1, {}});
    forge(s, 3, cat({{0x06, 0x00, 0x40, 0x40}, Bytes(64, 0x16)}), true);  // garbage TLS
    deliver(s, 8);
    add("forged_new_connections", s);
  }
  {
    Script s{{Tag::kSetup, 0, {}}};
    deliver(s, 3);
    forge(s, 1, {0x06, 0x00, 0x04, 0x14, 0x00, 0x00, 0x00});  // Handshake CRYPTO: bad Finished
    deliver(s, 6);
    add("forged_handshake_crypto", s);
  }
  {
    Script s = handshake();
    forge(s, 2,
          cat({{0x0f, 0x08, 0x00, 0x05},
               {'h', 'e', 'l', 'l', 'o'},                               // STREAM 8 FIN
               {0x10, 0x44, 0x00},                                      // MAX_DATA
               {0x11, 0x00, 0x80, 0x10, 0x00, 0x00},                    // MAX_STREAM_DATA
               {0x12, 0x40, 0x64, 0x13, 0x40, 0x64},                    // MAX_STREAMS
               {0x14, 0x00, 0x15, 0x00, 0x00, 0x16, 0x00, 0x17, 0x00},  // *_BLOCKED
               {0x31, 0x05, 1, 0, 9, 10, 11},                           // DATAGRAM
               {0x1a, 1, 2, 3, 4, 5, 6, 7, 8},                          // PATH_CHALLENGE
               {0x40, 0xaf, 0x00, 0x02, 0x40, 0x19, 0x00, 0x1f}}));     // ACK_FREQ, IMM_ACK
    deliver(s, 8);
    add("forged_1rtt_frames", s);
  }
  {
    Script s = handshake();
    forge(s, 2, cat({{0x18, 0x07, 0x06, 0x08}, cid8, token16}));  // NEW_CONNECTION_ID 7, retire < 6
    forge(s, 2, {0x19, 0x00});                                    // RETIRE_CONNECTION_ID 0
    deliver(s, 4, 0x01);                                          // then migrate
    forge(s, 2, {0x1b, 9, 9, 9, 9, 9, 9, 9, 9});                  // unsolicited PATH_RESPONSE
    deliver(s, 4);
    add("forged_cids_migration", s);
  }
  {
    Script s = handshake();
    app(s, 0, 4000);
    deliver(s, 2);
    forge(s, 2, {0x04, 0x00, 0x07, 0x00});  // RESET_STREAM 0 with final size 0 (too small)
    add("forged_reset_final_size", s);
  }
  {
    Script s = handshake();
    forge(s, 2, {0x1e});  // HANDSHAKE_DONE from a client: PROTOCOL_VIOLATION
    add("forged_handshake_done", s);
  }
  {
    Script s = handshake();
    forge(s, 2, cat({{0x0e, 0x04, 0xc0, 0x3f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xf0, 0x01}, {'a'}}));
    forge(s, 2, {0x02, 0x80, 0x00, 0x10, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00});  // ACK ranges
    forge(s, 2, {0x06, 0x00, 0x04, 0x04, 0x00, 0x00, 0x00});                    // CRYPTO at 1-RTT
    forge(s, 2, {0x07, 0x04, 'a', 'b', 'c', 'd'});         // NEW_TOKEN from a client
    forge(s, 2, {0x1c, 0x0a, 0x00, 0x03, 'b', 'a', 'd'});  // CONNECTION_CLOSE
    add("forged_errors_close", s);
  }
  {
    Script s = handshake();
    forge(s, 2, {0x1d, 0x07, 0x03, 'b', 'y', 'e'});  // APPLICATION CLOSE
    deliver(s, 4);
    wait(s, 255);
    add("forged_app_close_draining", s);
  }
  for (auto& [name, script] : seeds) {
    Input in(std::move(script));
    Harness h(in);
    h.run();
    const Bytes data = in.recorded();
    const std::string path = std::string(dir) + "/" + name;
    if (FILE* f = std::fopen(path.c_str(), "wb")) {
      std::fwrite(data.data(), 1, data.size(), f);
      std::fclose(f);
    }
    std::fprintf(stderr, "wrote %s (%zu bytes)\n", path.c_str(), data.size());
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("IROHLAB_FUZZ_WRITE_SEEDS")) {
    write_seeds(dir);
    std::exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in(data, size);
  Harness h(in);
  h.run();
  return 0;
}

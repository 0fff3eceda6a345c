// `connect`: dial a ticket, move pattern bytes over K streams, verify echoes, send datagrams,
// close, and report (PEER_CLI.md).
//
// Choices the contract leaves open (the same as interop/rust_quic_peer.mjs):
//   * datagram j: bytes 0..3 = j (u32 big-endian), byte p >= 4 = pattern(p, stream 0).
//   * seconds: from opening the first stream to the end of the last stream (echo verified, or the
//     peer's FIN; uni without --echo: all data acknowledged); mb_per_s = bytes / 1e6 / seconds.
//   * after the work, wait up to 500 ms for the server to close first (--close-code servers wait
//     for our ACKs), so that close is reported as closed_by_peer rather than racing ours.
//   * --stdin sends one stream whatever --streams says; echoed uni streams are matched to the
//     stream k that sent them by their first byte (pattern byte 0 of stream k is k).
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "base/endpoint_addr.h"
#include "base/key.h"
#include "base/ticket.h"
#include "cli_args.h"
#include "peer.h"

namespace ngpeer {
namespace {

struct ConnectOptions {
  std::string ticket;
  std::string alpn;
  std::uint64_t bytes = 0;
  bool use_stdin = false;
  bool echo = false;
  std::uint64_t streams = 1;
  bool uni = false;
  std::uint64_t datagrams = 0;
  std::uint64_t datagram_size = 1000;
  double idle_s = 0;
  std::uint64_t close_code = 0;
  std::string close_reason = "done";
  double timeout_s = 10;
  bool json = false;
};

ConnectOptions parse_connect(int argc, char** argv) {
  ConnectOptions o;
  ArgReader args(argc, argv);
  bool have_alpn = false, have_bytes = false;
  while (args.next()) {
    const std::string& f = args.flag();
    if (f == "--alpn") {
      if (have_alpn) usage_error("connect: --alpn may be given once (a client offers one ALPN)");
      have_alpn = true;
      o.alpn = args.value();
      if (o.alpn.empty() || o.alpn.size() > 255) usage_error("--alpn: 1..255 bytes");
    } else if (f == "--bytes") {
      o.bytes = args.u64();
      have_bytes = true;
    } else if (f == "--stdin") {
      args.no_value();
      o.use_stdin = true;
    } else if (f == "--echo") {
      args.no_value();
      o.echo = true;
    } else if (f == "--streams") {
      o.streams = args.u64(1 << 20);
      if (o.streams == 0) usage_error("--streams: must be at least 1");
    } else if (f == "--uni") {
      args.no_value();
      o.uni = true;
    } else if (f == "--datagrams") {
      o.datagrams = args.u64(UINT32_MAX);
    } else if (f == "--datagram-size") {
      o.datagram_size = args.u64(65535);
      if (o.datagram_size < 4) usage_error("--datagram-size: at least 4 (the u32 sequence number)");
    } else if (f == "--idle") {
      o.idle_s = args.seconds();
    } else if (f == "--close-code") {
      o.close_code = args.u64(kMaxVarint);
    } else if (f == "--close-reason") {
      o.close_reason = args.value();
    } else if (f == "--timeout") {
      o.timeout_s = args.seconds();
      if (o.timeout_s <= 0) usage_error("--timeout: must be positive");
    } else if (f == "--json") {
      args.no_value();
      o.json = true;
    } else {
      args.unknown();
    }
  }
  if (args.positionals().size() != 1) usage_error("connect: expected exactly one TICKET argument");
  o.ticket = args.positionals()[0];
  if (!have_alpn) usage_error("connect: --alpn is required");
  if (have_bytes && o.use_stdin) usage_error("connect: --bytes and --stdin are exclusive");
  if (o.use_stdin) o.streams = 1;
  return o;
}

class Client : public ConnHandler {
 public:
  explicit Client(const ConnectOptions& o) : opts_(o) {}
  int run();

  // ConnHandler
  void on_stream_data(Conn&, Stream& s, std::uint64_t offset, const std::uint8_t* data,
                      std::size_t len, bool fin) override {
    bool local = s.tag != kRemoteTag;
    if (!ngtcp2_is_bidi_stream(s.id) && local) return;
    if (opts_.echo) verify(s, offset, data, len, fin);
    if (fin) {
      if (opts_.echo && failed_.empty() && s.received != expected_len()) {
        fail("echo-mismatch", "stream " + std::to_string(s.id) + ": echoed " +
                                  std::to_string(s.received) + " bytes, sent " +
                                  std::to_string(expected_len()));
      }
      if (ngtcp2_is_bidi_stream(s.id))
        bidi_done_++;
      else
        uni_echo_done_++;
    }
  }
  void on_stream_opened(Conn&, Stream& s) override { s.tag = kRemoteTag; }
  void on_stream_closed(Conn&, Stream& s, bool app_error, std::uint64_t code) override {
    if (app_error && s.has_pending() && failed_.empty())
      fail("transport",
           "stream " + std::to_string(s.id) + " reset by peer with code " + std::to_string(code));
    if (s.tag != kRemoteTag && !ngtcp2_is_bidi_stream(s.id)) uni_local_done_++;
  }
  void on_stream_reset(Conn&, Stream& s, std::uint64_t code, bool stop_sending) override {
    if (failed_.empty())
      fail("transport", "stream " + std::to_string(s.id) + (stop_sending ? " stopped" : " reset") +
                            " by peer with code " + std::to_string(code));
  }
  void on_datagram(Conn&, const std::uint8_t* data, std::size_t len) override {
    if (len != opts_.datagram_size || len < 4) return;
    std::uint32_t j = (std::uint32_t(data[0]) << 24) | (std::uint32_t(data[1]) << 16) |
                      (std::uint32_t(data[2]) << 8) | data[3];
    if (j >= opts_.datagrams || dgram_seen_[j]) return;
    if (pattern_mismatch(data + 4, len - 4, 4, 0) != len - 4) return;  // corrupted: not counted
    dgram_seen_[j] = true;
    dgram_echoed_++;
  }

 private:
  static constexpr std::uint64_t kRemoteTag = UINT64_MAX;

  std::uint64_t expected_len() const { return opts_.use_stdin ? stdin_data_.size() : opts_.bytes; }

  void verify(Stream& s, std::uint64_t offset, const std::uint8_t* data, std::size_t len,
              bool fin) {
    if (!failed_.empty() || len == 0) return;
    std::uint64_t k = s.tag;
    if (s.tag == kRemoteTag) {
      // An echoed uni stream: its first byte (pattern byte 0 of stream k is k) names k.
      if (offset == 0) s.pattern_k = data[0];
      k = s.pattern_k;
    }
    std::uint64_t total = expected_len();
    std::size_t usable =
        offset >= total ? 0 : std::size_t(std::min<std::uint64_t>(len, total - offset));
    std::size_t bad;
    if (opts_.use_stdin) {
      bad = usable;
      if (usable && std::memcmp(data, stdin_data_.data() + offset, usable) != 0)
        for (bad = 0; bad < usable && data[bad] == stdin_data_[offset + bad]; bad++) {
        }
    } else {
      bad = pattern_mismatch(data, usable, offset, k);
    }
    if (bad < usable) {
      std::uint8_t want =
          opts_.use_stdin ? stdin_data_[offset + bad] : pattern_byte(offset + bad, k);
      fail("echo-mismatch", "stream " + std::to_string(s.id) + " offset " +
                                std::to_string(offset + bad) + ": expected 0x" + hex(&want, 1) +
                                ", got 0x" + hex(data + bad, 1));
      return;
    }
    if (usable < len) {
      fail("echo-mismatch", "stream " + std::to_string(s.id) + ": echo longer than the " +
                                std::to_string(total) + " bytes sent");
      return;
    }
    echoed_ += len;
    (void)fin;
  }

  void fail(std::string kind, std::string detail) {
    if (!failed_.empty()) return;
    failed_ = std::move(kind);
    fail_detail_ = std::move(detail);
  }

  bool streams_done() const {
    if (!opts_.uni) return opened_ == opts_.streams && bidi_done_ >= opts_.streams;
    return uni_local_done_ >= opts_.streams && (!opts_.echo || uni_echo_done_ >= opts_.streams);
  }

  void open_streams();
  void feed_datagrams();
  void classify_finish();
  int report(int rc);

  const ConnectOptions& opts_;
  std::vector<std::uint8_t> stdin_data_;
  std::unique_ptr<TlsContext> tls_;
  UdpSocket socket_;
  std::unique_ptr<Conn> conn_;
  std::string remote_hex_, path_;

  enum class Phase {
    kHandshake,
    kIdle,
    kStreams,
    kDatagrams,
    kLinger,
    kDone
  } phase_ = Phase::kHandshake;
  std::uint64_t opened_ = 0, bidi_done_ = 0, uni_local_done_ = 0, uni_echo_done_ = 0;
  std::uint64_t echoed_ = 0;
  std::uint64_t dgram_fed_ = 0, dgram_echoed_ = 0;
  std::vector<bool> dgram_seen_;
  std::uint64_t t_start_ = 0, t_hs_ = 0, t_xfer_ = 0, t_xfer_end_ = 0, idle_end_ = 0;
  std::uint64_t dgram_last_send_ = 0, linger_end_ = 0;
  std::string failed_, fail_detail_;
  bool closed_by_peer_ = false;
  CloseInfo peer_close_;
  double rtt_ms_ = 0;
};

void Client::open_streams() {
  while (opened_ < opts_.streams) {
    std::string error;
    bool blocked = false;
    Stream* s = conn_->open_stream(!opts_.uni, error, blocked);
    if (!s) {
      if (!blocked) fail("transport", "open stream: " + error);
      return;  // more credit arrives via MAX_STREAMS (on_streams_available is implicit: retried)
    }
    s->tag = opened_;
    if (opts_.use_stdin) {
      s->source = Stream::Source::kExternal;
      s->external = stdin_data_.data();
      s->send_end = stdin_data_.size();
    } else {
      s->source = Stream::Source::kPattern;
      s->pattern_k = opened_;
      s->send_end = opts_.bytes;
    }
    s->fin_wanted = true;
    conn_->mark_ready(*s);
    opened_++;
  }
}

void Client::feed_datagrams() {
  // Keep a small queue so sequence numbers go out in order and memory stays flat.
  std::vector<std::uint8_t> d(opts_.datagram_size);
  for (std::size_t p = 4; p < d.size(); p++) d[p] = pattern_byte(p, 0);
  while (dgram_fed_ < opts_.datagrams && conn_->queued_datagrams() < 64) {
    std::uint32_t j = std::uint32_t(dgram_fed_);
    d[0] = std::uint8_t(j >> 24);
    d[1] = std::uint8_t(j >> 16);
    d[2] = std::uint8_t(j >> 8);
    d[3] = std::uint8_t(j);
    if (!conn_->queue_datagram(d.data(), d.size())) break;
    dgram_fed_++;
  }
}

// The connection ended before we closed it: say why.
void Client::classify_finish() {
  const CloseInfo& ci = conn_->close_info();
  if (!failed_.empty()) return;
  if (conn_->key_mismatch()) {
    fail("key-mismatch", "expected " + remote_hex_ + ", presented " + conn_->presented_id_hex());
    return;
  }
  if (ci.by == CloseInfo::By::kPeer) {
    bool work_done = phase_ == Phase::kDone || phase_ == Phase::kLinger ||
                     (phase_ == Phase::kDatagrams && dgram_fed_ == opts_.datagrams &&
                      conn_->queued_datagrams() == 0 && dgram_echoed_ == opts_.datagrams) ||
                     (phase_ == Phase::kStreams && streams_done() && opts_.datagrams == 0);
    if (!conn_->handshake_completed()) {
      // CRYPTO_ERROR 0x100 + no_application_protocol(120)
      if (ci.kind == "transport" && ci.code == 0x178)
        fail("alpn", "peer rejected ALPN " + opts_.alpn + " (CRYPTO_ERROR 0x178)");
      else
        fail("transport", "peer closed during handshake: " + ci.kind + " code " +
                              std::to_string(ci.code) + " reason \"" + ci.reason + "\"");
      return;
    }
    if (work_done) {
      closed_by_peer_ = true;
      peer_close_ = ci;
      if (t_xfer_end_ == 0) t_xfer_end_ = now_ns();
      phase_ = Phase::kDone;
      return;
    }
    // Closed by the peer before our work was done: still report who closed and how.
    closed_by_peer_ = true;
    peer_close_ = ci;
    fail(ci.kind == "application" ? "closed" : "transport",
         "peer closed the connection: " + ci.kind + " code " + std::to_string(ci.code) +
             " reason \"" + ci.reason + "\"");
    return;
  }
  if (ci.by == CloseInfo::By::kTimeout) {
    char secs[32];
    std::snprintf(secs, sizeof secs, "%g", opts_.timeout_s);
    fail("timeout", conn_->handshake_completed()
                        ? std::string("idle timeout (no packets for 30 s)")
                        : std::string("handshake did not complete within ") + secs + " s");
    return;
  }
  // Local transport error.
  std::uint8_t alert = conn_->tls_alert();
  if (!conn_->handshake_completed() && alert == 120)
    fail("alpn", "server selected no application protocol for " + opts_.alpn);
  else if (!conn_->handshake_completed() && conn_->last_liberr() == NGTCP2_ERR_CRYPTO)
    fail("transport", "TLS handshake failed (alert " + std::to_string(alert) + ")");
  else
    fail("transport", ci.reason.empty() ? std::string("connection failed") : ci.reason);
}

int Client::run() {
  auto addr = iroh::decode_ticket(opts_.ticket);
  if (!addr.ok()) usage_error("bad ticket: " + addr.error().message);
  remote_hex_ = addr->id.to_hex();
  std::optional<Address> target;
  for (const auto& ip : addr->ip_addrs()) {
    target = parse_address(ip.to_string());
    if (target && ip.is_v4()) break;  // prefer IPv4 on loopback tests
  }
  if (opts_.use_stdin) {
    std::uint8_t buf[65536];
    for (;;) {
      ssize_t n = ::read(0, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      stdin_data_.insert(stdin_data_.end(), buf, buf + n);
    }
  }
  dgram_seen_.assign(opts_.datagrams, false);
  t_start_ = now_ns();
  if (!target) {
    fail("unreachable", "ticket has no direct IP address");
    return report(1);
  }
  path_ = "udp:" + target->to_string();

  Identity id{};
  random_bytes(id.seed, 32);
  iroh::ByteArray<32> seed;
  std::memcpy(seed.data(), id.seed, 32);
  auto sk = iroh::SecretKey::from_seed(seed);
  std::memcpy(id.public_key, sk.public_key().bytes().data(), 32);
  tls_ = std::make_unique<TlsContext>(id);

  std::string error;
  if (!socket_.connect_to(*target, error)) {
    fail("unreachable", error);
    return report(1);
  }
  ConnConfig cfg;
  cfg.alpns = {opts_.alpn};
  std::array<std::uint8_t, 32> expected;
  std::memcpy(expected.data(), addr->id.bytes().data(), 32);
  cfg.expected_peer = expected;
  cfg.handshake_timeout_s = opts_.timeout_s;
  conn_ = std::make_unique<Conn>(socket_, *tls_, *this, cfg);
  if (!conn_->start_client(*target, error)) {
    fail("transport", error);
    return report(1);
  }
  const std::uint64_t hs_deadline = t_start_ + std::uint64_t(opts_.timeout_s * 1e9);
  const std::uint64_t run_deadline =
      t_start_ + std::uint64_t((opts_.timeout_s + opts_.idle_s + 120) * 1e9);

  while (failed_.empty() && phase_ != Phase::kDone) {
    conn_->write();
    if (conn_->finished()) {
      classify_finish();
      break;
    }
    std::uint64_t now = now_ns();
    std::uint64_t next = std::min(conn_->expiry(), now + 200 * NGTCP2_MILLISECONDS);
    if (phase_ == Phase::kIdle) next = std::min(next, idle_end_);
    if (phase_ == Phase::kLinger && linger_end_) next = std::min(next, linger_end_);
    if (phase_ == Phase::kDatagrams && dgram_last_send_)
      next = std::min(next, dgram_last_send_ + 2 * NGTCP2_SECONDS);
    int timeout_ms = next <= now ? 0 : int((next - now + 999999) / 1000000);
    pollfd pfd{socket_.fd(), POLLIN, 0};
    poll(&pfd, 1, timeout_ms);
    if (pfd.revents & (POLLIN | POLLERR)) {
      for (int round = 0; round < 16 && !conn_->finished(); round++) {
        int n = socket_.recv_batch();
        if (n < 0) {
          if (errno == ECONNREFUSED)
            fail("unreachable", "ICMP port unreachable from " + target->to_string());
          else
            fail("transport", std::string("recv: ") + std::strerror(errno));
          break;
        }
        if (n == 0) break;
        for (int i = 0; i < n && !conn_->finished(); i++)
          conn_->read_packet(socket_.rx_from(i), socket_.rx_data(i), socket_.rx_len(i));
        if (!conn_->finished()) conn_->write();  // ACKs and echo credit between rounds
        if (!socket_.batch_was_full()) break;
      }
    }
    if (!failed_.empty()) break;
    if (!conn_->finished()) conn_->handle_expiry();
    if (conn_->finished()) {
      classify_finish();
      break;
    }
    now = now_ns();
    switch (phase_) {
      case Phase::kHandshake:
        if (conn_->handshake_completed()) {
          t_hs_ = now;
          if (opts_.idle_s > 0) {
            phase_ = Phase::kIdle;
            idle_end_ = now + std::uint64_t(opts_.idle_s * 1e9);
          } else {
            phase_ = Phase::kStreams;
            t_xfer_ = now;
          }
        } else if (now >= hs_deadline) {
          fail("timeout",
               "handshake did not complete within " + std::to_string(opts_.timeout_s) + " s");
        }
        break;
      case Phase::kIdle:
        if (now >= idle_end_) {
          phase_ = Phase::kStreams;
          t_xfer_ = now;
        }
        break;
      default:
        break;
    }
    if (phase_ == Phase::kStreams) {
      open_streams();
      if (streams_done()) {
        t_xfer_end_ = now_ns();
        phase_ = opts_.datagrams ? Phase::kDatagrams : Phase::kLinger;
        if (opts_.datagrams) {
          std::size_t room =
              ngtcp2_conn_get_remote_transport_params(conn_->raw())->max_datagram_frame_size;
          if (room == 0)
            fail("transport", "peer does not accept DATAGRAM frames");
          else if (opts_.datagram_size + 64 >
                       ngtcp2_conn_get_max_tx_udp_payload_size(conn_->raw()) ||
                   opts_.datagram_size + 4 > room)
            fail("transport", "--datagram-size " + std::to_string(opts_.datagram_size) +
                                  " does not fit one QUIC packet");
        }
      }
    }
    if (phase_ == Phase::kDatagrams && failed_.empty()) {
      feed_datagrams();
      if (dgram_fed_ == opts_.datagrams && conn_->queued_datagrams() == 0 && !dgram_last_send_)
        dgram_last_send_ = now_ns();
      if (dgram_echoed_ == opts_.datagrams ||
          (dgram_last_send_ && now_ns() >= dgram_last_send_ + 2 * NGTCP2_SECONDS))
        phase_ = Phase::kLinger;
    }
    // Like rust_quic_peer: give a server with --close-code up to 500 ms to close first (it waits
    // for our ACKs), so its close is reported as closed_by_peer instead of racing ours.
    if (phase_ == Phase::kLinger && failed_.empty()) {
      if (!linger_end_) linger_end_ = now_ns() + 500 * NGTCP2_MILLISECONDS;
      if (now_ns() >= linger_end_) phase_ = Phase::kDone;
    }
    if (now_ns() >= run_deadline && phase_ != Phase::kDone)
      fail("timeout", "run exceeded timeout + idle + 120 s");
  }
  if (!conn_->finished()) {
    if (conn_->handshake_completed()) rtt_ms_ = conn_->smoothed_rtt_ms();
    conn_->write();  // last ACKs before the close
    if (failed_ == "echo-mismatch")
      conn_->close_application(1, "echo mismatch");
    else if (failed_.empty())
      conn_->close_application(opts_.close_code, opts_.close_reason);
    else if (conn_->handshake_completed())
      conn_->close_application(1, failed_);
  } else if (conn_->handshake_completed()) {
    rtt_ms_ = conn_->smoothed_rtt_ms();
  }
  return report(failed_.empty() ? 0 : 1);
}

int Client::report(int rc) {
  std::uint64_t bytes = streams_done() || phase_ == Phase::kDone
                            ? (opts_.use_stdin ? stdin_data_.size() : opts_.bytes * opts_.streams)
                            : 0;
  double seconds = t_xfer_ && t_xfer_end_ ? double(t_xfer_end_ - t_xfer_) / 1e9 : 0;
  double connect_ms = t_hs_ ? double(t_hs_ - t_start_) / 1e6 : 0;
  double mbps = seconds > 0 ? double(bytes) / seconds / 1e6 : 0;
  if (rc != 0) {
    std::fprintf(stderr, "%s: error: %s: %s\n", kProgName, failed_.c_str(), fail_detail_.c_str());
    std::fflush(stderr);
  }
  if (opts_.json) {
    auto num = [](const char* fmt, double v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, fmt, v);
      return std::string(buf);
    };
    std::string remote = conn_ && !conn_->peer_id_hex().empty() && !conn_->key_mismatch()
                             ? conn_->peer_id_hex()
                             : remote_hex_;
    std::string line = std::string("{\"ok\":") + (rc == 0 ? "true" : "false");
    if (rc != 0)
      line += R"(,"error_kind":")" + json_escape(failed_) + R"(","error":")" +
              json_escape(fail_detail_) + "\"";
    line += R"(,"remote":")" + remote + R"(","alpn":")" + json_escape(opts_.alpn) +
            R"(","bytes":)" + std::to_string(bytes) + R"(,"echoed":)" + std::to_string(echoed_) +
            R"(,"seconds":)" + num("%.6f", seconds) + R"(,"mb_per_s":)" + num("%.3f", mbps) +
            R"(,"connect_ms":)" + num("%.3f", connect_ms) + R"(,"rtt_ms":)" + num("%.3f", rtt_ms_) +
            R"(,"path":")" + json_escape(path_) + R"(","datagrams_sent":)" +
            std::to_string(dgram_fed_) + R"(,"datagrams_echoed":)" + std::to_string(dgram_echoed_) +
            R"(,"closed_by_peer":)";
    if (closed_by_peer_)
      line += R"({"code":)" + std::to_string(peer_close_.code) + R"(,"reason":")" +
              json_escape(peer_close_.reason) + R"(","kind":")" + peer_close_.kind + R"("})";
    else
      line += "null";
    line += R"(,"cpu_s":)" + num("%.3f", cpu_seconds()) + "}";
    emit_line(line);
  }
  return rc;
}

}  // namespace

int run_connect(int argc, char** argv) {
  ConnectOptions opts = parse_connect(argc, argv);
  Client client(opts);
  return client.run();
}

}  // namespace ngpeer

// `listen`: serve many sequential and concurrent connections on one UDP socket (PEER_CLI.md).
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "base/endpoint_addr.h"
#include "base/key.h"
#include "base/ticket.h"
#include "cli_args.h"
#include "peer.h"

namespace ngpeer {
namespace {

enum class Mode { kEcho, kSink, kSource };

struct ListenOptions {
  std::vector<std::string> alpns;
  std::optional<std::string> secret;
  std::string bind = "127.0.0.1:0";
  Mode mode = Mode::kEcho;
  std::uint64_t source_bytes = 0;
  std::optional<std::uint64_t> close_code;
  std::string close_reason = "bye";
};

ListenOptions parse_listen(int argc, char** argv) {
  ListenOptions o;
  ArgReader args(argc, argv);
  int modes = 0;
  while (args.next()) {
    const std::string& f = args.flag();
    if (f == "--alpn") {
      o.alpns.push_back(args.value());
      if (o.alpns.back().empty() || o.alpns.back().size() > 255)
        usage_error("--alpn: 1..255 bytes");
    } else if (f == "--secret") {
      o.secret = args.value();
    } else if (f == "--bind") {
      o.bind = args.value();
    } else if (f == "--echo") {
      args.no_value();
      o.mode = Mode::kEcho;
      modes++;
    } else if (f == "--sink") {
      args.no_value();
      o.mode = Mode::kSink;
      modes++;
    } else if (f == "--source") {
      o.mode = Mode::kSource;
      o.source_bytes = args.u64();
      modes++;
    } else if (f == "--close-code") {
      o.close_code = args.u64(kMaxVarint);
    } else if (f == "--close-reason") {
      o.close_reason = args.value();
    } else {
      args.unknown();
    }
  }
  if (!args.positionals().empty())
    usage_error("listen: unexpected argument " + args.positionals()[0]);
  if (o.alpns.empty()) usage_error("listen: --alpn is required");
  if (modes > 1) usage_error("listen: --echo, --sink and --source are exclusive");
  return o;
}

std::string cid_key(const std::uint8_t* data, std::size_t len) {
  return std::string(reinterpret_cast<const char*>(data), len);
}

struct Served {
  std::unique_ptr<Conn> conn;
  std::vector<std::string> cids;  // routing keys in Listener::by_cid_
  bool accepted = false;
  bool reported = false;
  bool first_bidi_served = false;
  bool close_requested = false;
  std::deque<std::unique_ptr<ChunkQueue>> pending_uni_echo;  // waiting for uni stream credit
};

class Listener : public ConnHandler {
 public:
  explicit Listener(const ListenOptions& opts, const Identity& id) : opts_(opts), tls_(id) {}

  int run(const iroh::EndpointId& endpoint_id);

  // ConnHandler
  void on_handshake_completed(Conn& c) override {
    Served& sv = served(c);
    sv.accepted = true;
    emit_line(R"({"event":"accepted","remote":")" + c.peer_id_hex() + R"(","alpn":")" +
              json_escape(c.alpn()) + R"("})");
  }
  void on_stream_opened(Conn& c, Stream& s) override {
    if (!ngtcp2_is_bidi_stream(s.id)) return;
    switch (opts_.mode) {
      case Mode::kEcho:
        s.source = Stream::Source::kChunks;
        s.credit_on_send = true;  // the peer may only send as fast as we echo
        break;
      case Mode::kSink:
        break;
      case Mode::kSource:
        s.source = Stream::Source::kPattern;
        s.pattern_k = 0;
        s.send_end = opts_.source_bytes;
        s.fin_wanted = true;
        c.mark_ready(s);
        break;
    }
  }
  void on_stream_data(Conn& c, Stream& s, std::uint64_t, const std::uint8_t* data, std::size_t len,
                      bool fin) override {
    if (!ngtcp2_is_bidi_stream(s.id)) {
      if (opts_.mode != Mode::kEcho) return;
      s.chunks.append(data, len);  // whole stream first, then one uni stream back
      if (fin) {
        auto q = std::make_unique<ChunkQueue>();
        q->swap(s.chunks);
        served(c).pending_uni_echo.push_back(std::move(q));
        open_uni_echoes(c);
      }
      return;
    }
    if (opts_.mode == Mode::kEcho) {
      s.chunks.append(data, len);
      s.send_end = s.chunks.end();
    }
    if (fin && opts_.mode != Mode::kSource) s.fin_wanted = true;
    c.mark_ready(s);
    if (fin) maybe_served(c, s);
  }
  void on_fin_written(Conn& c, Stream& s) override { maybe_served(c, s); }
  void on_stream_reset(Conn& c, Stream& s, std::uint64_t code, bool stop_sending) override {
    emit_line(R"({"event":"stream_error","remote":")" + c.peer_id_hex() +
              R"(","message":"stream )" + std::to_string(s.id) +
              (stop_sending ? " stopped" : " reset") + " by peer with code " +
              std::to_string(code) + R"("})");
    c.shutdown_stream_later(s.id, 0);
  }
  void on_datagram(Conn& c, const std::uint8_t* data, std::size_t len) override {
    if (opts_.mode == Mode::kEcho) c.queue_datagram(data, len);
  }
  void on_streams_available(Conn& c) override { open_uni_echoes(c); }
  void on_new_cid(Conn& c, const ngtcp2_cid& cid) override {
    auto key = cid_key(cid.data, cid.datalen);
    by_cid_[key] = &served(c);
    served(c).cids.push_back(key);
  }
  void on_retire_cid(Conn&, const ngtcp2_cid& cid) override {
    by_cid_.erase(cid_key(cid.data, cid.datalen));
  }

 private:
  Served& served(Conn& c) { return *by_conn_.at(&c); }

  // "After the first bidi stream of a connection has been served completely": our FIN is out
  // and the peer's side has ended. Closing right behind the FIN keeps the peer's view
  // deterministic (stream end, then CONNECTION_CLOSE).
  void maybe_served(Conn& c, Stream& s) {
    if (!opts_.close_code || !ngtcp2_is_bidi_stream(s.id)) return;
    Served& sv = served(c);
    if (sv.first_bidi_served || !s.fin_written || !s.recv_fin) return;
    sv.first_bidi_served = true;
    sv.close_requested = true;
  }

  void open_uni_echoes(Conn& c) {
    Served& sv = served(c);
    while (!sv.pending_uni_echo.empty()) {
      std::string error;
      bool blocked = false;
      Stream* t = c.open_stream(false, error, blocked);
      if (!t) {
        if (!blocked)
          emit_line(R"({"event":"stream_error","remote":")" + c.peer_id_hex() +
                    R"(","message":"open uni stream: )" + json_escape(error) + R"("})");
        if (!blocked) sv.pending_uni_echo.pop_front();
        if (blocked) return;
        continue;
      }
      t->chunks.swap(*sv.pending_uni_echo.front());
      sv.pending_uni_echo.pop_front();
      t->source = Stream::Source::kChunks;
      t->send_end = t->chunks.end();
      t->fin_wanted = true;
      c.mark_ready(*t);
    }
  }

  void dispatch(const Address& from, const std::uint8_t* data, std::size_t len);
  void service(Served& sv);
  void report_closed(Served& sv);
  void remove_finished();

  const ListenOptions& opts_;
  TlsContext tls_;
  UdpSocket socket_;
  std::unordered_map<std::string, Served*> by_cid_;
  std::unordered_map<Conn*, Served*> by_conn_;
  std::vector<std::unique_ptr<Served>> conns_;
};

void Listener::dispatch(const Address& from, const std::uint8_t* data, std::size_t len) {
  ngtcp2_version_cid vc;
  if (ngtcp2_pkt_decode_version_cid(&vc, data, len, 8) != 0) return;
  auto it = by_cid_.find(cid_key(vc.dcid, vc.dcidlen));
  if (it != by_cid_.end()) {
    Served& sv = *it->second;
    if (sv.conn->in_closing())
      sv.conn->resend_close();  // the peer missed our CONNECTION_CLOSE
    else
      sv.conn->read_packet(from, data, len);
    return;
  }
  ngtcp2_pkt_hd hd;
  if (ngtcp2_accept(&hd, data, len) != 0) return;  // not a client Initial: drop
  auto sv = std::make_unique<Served>();
  ConnConfig cfg;
  cfg.server = true;
  cfg.alpns = opts_.alpns;
  sv->conn = std::make_unique<Conn>(socket_, tls_, *this, cfg);
  by_conn_[sv->conn.get()] = sv.get();
  // The client keeps using its random original DCID until it hears our CID.
  auto key = cid_key(hd.dcid.data, hd.dcid.datalen);
  by_cid_[key] = sv.get();
  sv->cids.push_back(key);
  Served* raw = sv.get();
  conns_.push_back(std::move(sv));
  raw->conn->start_server(from, hd, data, len);  // failures are reported by report_closed
}

void Listener::report_closed(Served& sv) {
  if (sv.reported) return;
  sv.reported = true;
  const CloseInfo& ci = sv.conn->close_info();
  if (!sv.accepted) {
    if (ci.by == CloseInfo::By::kLocal)
      std::fprintf(stderr, "%s: handshake from %s failed: %s (TLS alert %u)\n", kProgName,
                   sv.conn->remote().to_string().c_str(), ci.reason.c_str(),
                   unsigned(sv.conn->tls_alert()));
    return;  // only accepted connections have events
  }
  const char* by = ci.by == CloseInfo::By::kPeer      ? "peer"
                   : ci.by == CloseInfo::By::kTimeout ? "timeout"
                                                      : "local";
  emit_line(R"({"event":"closed","remote":")" + sv.conn->peer_id_hex() + R"(","by":")" + by +
            R"(","kind":")" + ci.kind + R"(","code":)" + std::to_string(ci.code) +
            R"(,"reason":")" + json_escape(ci.reason) + R"("})");
}

void Listener::service(Served& sv) {
  Conn& c = *sv.conn;
  if (!c.finished()) {
    c.handle_expiry();
    c.write();
    if (sv.close_requested && !c.finished())
      c.close_application(*opts_.close_code, opts_.close_reason);
  }
  if (c.finished()) report_closed(sv);
}

void Listener::remove_finished() {
  std::uint64_t now = now_ns();
  for (std::size_t i = 0; i < conns_.size();) {
    Served& sv = *conns_[i];
    bool gone =
        sv.conn->finished() && (!sv.conn->in_closing() || sv.conn->closing_deadline() <= now);
    if (!gone) {
      i++;
      continue;
    }
    for (const auto& key : sv.cids) {
      auto it = by_cid_.find(key);
      if (it != by_cid_.end() && it->second == &sv) by_cid_.erase(it);
    }
    by_conn_.erase(sv.conn.get());
    conns_[i] = std::move(conns_.back());
    conns_.pop_back();
  }
}

int Listener::run(const iroh::EndpointId& endpoint_id) {
  auto bind_addr = parse_address(opts_.bind);
  if (!bind_addr) usage_error("--bind: not an IP:PORT address: " + opts_.bind);
  std::string error;
  if (!socket_.bind_to(*bind_addr, error)) {
    std::fprintf(stderr, "%s: error: %s\n", kProgName, error.c_str());
    return 1;
  }
  // Ticket: our id and the bound address; a wildcard bind is advertised as loopback.
  auto bound = iroh::SocketAddr::parse(socket_.local().to_string());
  if (!bound.ok()) return 1;
  iroh::SocketAddr advertised = *bound;
  bool wildcard = true;
  for (auto b : bound->ip()) wildcard = wildcard && b == 0;
  if (wildcard) {
    advertised =
        bound->is_v4()
            ? iroh::SocketAddr::v4({127, 0, 0, 1}, bound->port())
            : iroh::SocketAddr::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, bound->port());
  }
  iroh::EndpointAddr addr{endpoint_id, {advertised}};
  emit_line(iroh::encode_ticket(addr));

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGINT);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, nullptr);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  for (;;) {
    std::uint64_t now = now_ns();
    std::uint64_t next = now + 1000 * NGTCP2_MILLISECONDS;
    for (auto& sv : conns_) {
      std::uint64_t e = sv->conn->expiry();
      if (e) next = std::min(next, e);
    }
    int timeout_ms = next <= now ? 0 : int((next - now + 999999) / 1000000);
    pollfd pfds[2] = {{socket_.fd(), POLLIN, 0}, {sfd, POLLIN, 0}};
    int pr = poll(pfds, 2, timeout_ms);
    if (pr < 0 && errno != EINTR) break;
    if (pfds[1].revents & POLLIN) break;
    if (pfds[0].revents & POLLIN) {
      // Drain in rounds of one recvmmsg, writing (ACKs, echoes) between rounds.
      for (int round = 0; round < 16; round++) {
        int n = socket_.recv_batch();
        if (n <= 0) break;
        for (int i = 0; i < n; i++)
          dispatch(socket_.rx_from(i), socket_.rx_data(i), socket_.rx_len(i));
        for (std::size_t i = 0; i < conns_.size(); i++) service(*conns_[i]);
        if (!socket_.batch_was_full()) break;
      }
    }
    for (std::size_t i = 0; i < conns_.size(); i++) service(*conns_[i]);
    remove_finished();
  }
  // Shutdown: close every connection with code 0.
  for (auto& sv : conns_) {
    if (!sv->conn->finished()) sv->conn->close_application(0, "shutdown");
    if (sv->conn->finished()) report_closed(*sv);
  }
  if (sfd >= 0) close(sfd);
  return 0;
}

}  // namespace

int run_listen(int argc, char** argv) {
  ListenOptions opts = parse_listen(argc, argv);
  Identity id{};
  if (opts.secret) {
    auto sk = iroh::SecretKey::parse(*opts.secret);
    if (!sk.ok()) usage_error("--secret: " + sk.error().message);
    std::memcpy(id.seed, sk->seed().data(), 32);
  } else {
    random_bytes(id.seed, 32);
  }
  iroh::ByteArray<32> seed;
  std::memcpy(seed.data(), id.seed, 32);
  iroh::SecretKey sk = iroh::SecretKey::from_seed(seed);
  std::memcpy(id.public_key, sk.public_key().bytes().data(), 32);
  Listener listener(opts, id);
  return listener.run(sk.public_key());
}

}  // namespace ngpeer

// irohlab-ngtcp2-peer: shared declarations.
//
// The oracle peer speaks docs/PEER_CLI.md with ngtcp2 0.12.1 (QUIC v1) and GnuTLS (TLS 1.3 with
// Ed25519 raw public keys, iroh's profile). It is deliberately independent of our own QUIC engine
// and TLS code: only tickets and key derivation come from irohcpp.
#pragma once

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ngpeer {

inline constexpr const char* kProgName = "irohlab-ngtcp2-peer";

// ---- small utilities (util.cc) ----

std::uint64_t now_ns();  // CLOCK_MONOTONIC, the clock ngtcp2 is driven with
double cpu_seconds();    // user + system time of this process
void random_bytes(std::uint8_t* out, std::size_t len);
std::string hex(const std::uint8_t* data, std::size_t len);
std::string json_escape(std::string_view s);
// Writes one line to stdout and flushes: the harness reads events as they happen.
void emit_line(const std::string& line);

// The contract's pattern: byte i of stream k is (i*131 + (i>>13) + k) & 0xff. Because 8192*131 is a
// multiple of 256, the 8 KiB block b of stream k equals table row (b + k) & 0xff, so any range of
// pattern bytes is a pointer into a static 2 MiB table (no per-stream buffers, no copies).
inline constexpr std::size_t kPatternBlock = 8192;
const std::uint8_t* pattern_row(std::uint64_t stream_offset, std::uint64_t k);  // at the offset
inline std::uint8_t pattern_byte(std::uint64_t i, std::uint64_t k) {
  return std::uint8_t((i * 131 + (i >> 13) + k) & 0xff);
}
// Index of the first byte in [data, data+len) that differs from pattern k at `offset`, or len.
std::size_t pattern_mismatch(const std::uint8_t* data, std::size_t len, std::uint64_t offset,
                             std::uint64_t k);

// ---- addresses ----

struct Address {
  sockaddr_storage storage{};
  socklen_t len = 0;
  const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&storage); }
  sockaddr* sa() { return reinterpret_cast<sockaddr*>(&storage); }
  std::string to_string() const;  // "1.2.3.4:5" or "[::1]:5"
};
std::optional<Address> parse_address(std::string_view text);

// ---- TLS (tls.cc) ----

struct Identity {
  std::uint8_t seed[32];
  std::uint8_t public_key[32];
};

// GnuTLS certificate verification hook (conn.cc): checks the peer's single Ed25519 raw public key
// and, on clients, that it is the dialed id.
int verify_peer_key(gnutls_session_t session);
bool is_ed25519_spki(const gnutls_datum_t& cert);

// Process-wide GnuTLS state: our raw public key credentials and the iroh priority string.
class TlsContext {
 public:
  explicit TlsContext(const Identity& id);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  // Creates a session wired to ngtcp2 through `conn_ref`. Servers offer `alpns`, clients exactly
  // the first one. Returns nullptr (and fills `error`) on failure.
  gnutls_session_t new_session(bool server, const std::vector<std::string>& alpns,
                               ngtcp2_crypto_conn_ref* conn_ref, std::string& error);

 private:
  gnutls_certificate_credentials_t cred_ = nullptr;
  gnutls_priority_t priority_ = nullptr;
};

// ---- the UDP socket (udp.cc) ----

class UdpSocket {
 public:
  ~UdpSocket();
  // Binds (listen) or binds to the wildcard of `remote`'s family and connects (client, so ICMP
  // port-unreachable surfaces as ECONNREFUSED).
  bool bind_to(const Address& local, std::string& error);
  bool connect_to(const Address& remote, std::string& error);
  int fd() const { return fd_; }
  const Address& local() const { return local_; }

  // A batch of equally sized datagrams to one destination goes out in one sendmsg with UDP GSO
  // when the kernel allows it, otherwise with sendmmsg.
  bool send_batch(const Address* dest, const std::uint8_t* data, std::size_t segment_size,
                  std::size_t total);

  // Receives up to kRecvBatch datagrams (each possibly a UDP GRO train of equal segments) and
  // splits them into QUIC packets. Returns the packet count, 0 when drained, -1 on a hard error
  // (errno kept, e.g. ECONNREFUSED). batch_was_full() says whether more may be waiting.
  static constexpr std::size_t kRecvBatch = 8;
  static constexpr std::size_t kRecvBufSize = 65536;
  static constexpr std::size_t kMaxRxPackets = 1024;
  int recv_batch();
  bool batch_was_full() const { return batch_full_; }
  const std::uint8_t* rx_data(int i) const { return rx_pkts_[i].data; }
  std::size_t rx_len(int i) const { return rx_pkts_[i].len; }
  const Address& rx_from(int i) const { return rx_from_[rx_pkts_[i].from]; }

 private:
  struct RxPacket {
    const std::uint8_t* data;
    std::size_t len;
    std::size_t from;
  };
  bool setup(int family, std::string& error);
  int fd_ = -1;
  Address local_;
  bool connected_ = false;
  bool gso_ok_ = true;
  bool batch_full_ = false;
  std::vector<std::uint8_t> rx_bufs_ = std::vector<std::uint8_t>(kRecvBatch * kRecvBufSize);
  Address rx_from_[kRecvBatch];
  RxPacket rx_pkts_[kMaxRxPackets];
};

// ---- one QUIC connection (conn.cc) ----

// Stream bytes we own until the peer acknowledges them (ngtcp2 keeps pointers, it never copies).
// Fixed-size blocks recycled through a free list so the echo path does no per-packet allocation.
class ChunkQueue {
 public:
  static constexpr std::size_t kBlock = 64 * 1024;
  ChunkQueue() = default;
  ~ChunkQueue();
  ChunkQueue(const ChunkQueue&) = delete;
  ChunkQueue& operator=(const ChunkQueue&) = delete;
  void swap(ChunkQueue& other) noexcept {
    blocks_.swap(other.blocks_);
    std::swap(base_, other.base_);
    std::swap(end_, other.end_);
  }
  void append(const std::uint8_t* data, std::size_t len);
  std::uint64_t end() const { return end_; }
  // Up to two contiguous pieces starting at stream offset `offset` (< end()).
  std::size_t vecs_at(std::uint64_t offset, ngtcp2_vec* out, std::size_t max_len) const;
  void release_below(std::uint64_t offset);  // frees blocks that lie entirely before offset

 private:
  std::deque<std::uint8_t*> blocks_;
  std::uint64_t base_ = 0;  // stream offset of blocks_.front()
  std::uint64_t end_ = 0;
};

struct Stream {
  enum class Source { kNone, kPattern, kChunks, kExternal };
  std::int64_t id = -1;
  std::uint64_t tag = 0;  // app data: the pattern index k, etc.
  // send side
  Source source = Source::kNone;
  std::uint64_t pattern_k = 0;
  std::uint64_t send_end = 0;  // bytes available to send so far (pattern/external: the total)
  ChunkQueue chunks;
  const std::uint8_t* external = nullptr;
  std::uint64_t sent = 0;
  std::uint64_t acked = 0;
  bool fin_wanted = false;  // FIN follows send_end
  bool fin_written = false;
  bool blocked = false;   // stream-level flow control
  bool in_ready = false;  // member of Conn::ready_
  bool write_closed = false;
  bool closed = false;           // ngtcp2 closed it; erased after the current operation
  bool credit_returned = false;  // MAX_STREAMS credit already given back for this peer stream
  // receive side
  std::uint64_t received = 0;
  bool recv_fin = false;
  // echo servers hand out receive credit as they send the bytes back (backpressure)
  bool credit_on_send = false;
  std::uint64_t credit_pending = 0;
  bool has_pending() const { return sent < send_end || (fin_wanted && !fin_written); }
};

class Conn;

// Application behaviour; the Conn calls back into it.
class ConnHandler {
 public:
  virtual ~ConnHandler() = default;
  virtual void on_handshake_completed(Conn&) {}
  // A stream the peer opened (before its first data is delivered).
  virtual void on_stream_opened(Conn&, Stream&) {}
  // Called with in-order stream data.
  virtual void on_stream_data(Conn&, Stream&, std::uint64_t offset, const std::uint8_t* data,
                              std::size_t len, bool fin) {}
  virtual void on_fin_written(Conn&, Stream&) {}
  virtual void on_stream_closed(Conn&, Stream&, bool app_error, std::uint64_t code) {}
  virtual void on_stream_reset(Conn&, Stream&, std::uint64_t code, bool stop_sending) {}
  virtual void on_datagram(Conn&, const std::uint8_t* data, std::size_t len) {}
  virtual void on_streams_available(Conn&) {}
  virtual void on_new_cid(Conn&, const ngtcp2_cid&) {}
  virtual void on_retire_cid(Conn&, const ngtcp2_cid&) {}
};

struct CloseInfo {
  enum class By { kNone, kPeer, kLocal, kTimeout } by = By::kNone;
  std::string kind;  // "application" | "transport" | "idle"
  std::uint64_t code = 0;
  std::string reason;
};

struct ConnConfig {
  bool server = false;
  std::vector<std::string> alpns;
  std::optional<std::array<std::uint8_t, 32>> expected_peer;  // client: the dialed id
  double handshake_timeout_s = 10;
};

class Conn {
 public:
  Conn(UdpSocket& socket, TlsContext& tls, ConnHandler& handler, ConnConfig config);
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Client: creates the ngtcp2 connection towards `remote`.
  bool start_client(const Address& remote, std::string& error);
  // Server: creates the connection from a client's first Initial (already validated by
  // ngtcp2_accept) and feeds that packet.
  bool start_server(const Address& remote, const ngtcp2_pkt_hd& hd, const std::uint8_t* pkt,
                    std::size_t len);

  // Feeds one datagram. Returns false once the connection is finished (closed, draining, error).
  bool read_packet(const Address& from, const std::uint8_t* data, std::size_t len);
  // Writes everything ngtcp2 allows now. Returns false on a fatal error (connection finished).
  bool write();
  bool handle_expiry();  // false once finished
  std::uint64_t expiry() const;

  // Sends CONNECTION_CLOSE with an application code; the connection is finished afterwards
  // (kept briefly in a closing state by the listener so late packets are answered).
  void close_application(std::uint64_t code, std::string_view reason);
  void close_transport_error(int liberr);

  // Streams.
  Stream* open_stream(bool bidi, std::string& error, bool& blocked);
  Stream* find_stream(std::int64_t id);
  void mark_ready(Stream& s);
  void consume(Stream& s, std::size_t len);  // hand receive credit back to the peer
  bool queue_datagram(const std::uint8_t* data, std::size_t len);  // copies
  // Resets both directions of a stream; deferred to the next write (not allowed in callbacks).
  void shutdown_stream_later(std::int64_t id, std::uint64_t code);
  std::size_t queued_datagrams() const { return dgram_queue_.size(); }

  bool handshake_completed() const { return handshake_completed_; }
  bool finished() const { return finished_; }
  bool in_closing() const { return closing_; }
  const CloseInfo& close_info() const { return close_info_; }
  const std::string& peer_id_hex() const { return peer_id_hex_; }
  const std::string& alpn() const { return alpn_; }
  const Address& remote() const { return remote_; }
  ngtcp2_conn* raw() const { return conn_; }
  double smoothed_rtt_ms() const;
  // Client-side handshake failure detail.
  const std::string& presented_id_hex() const { return presented_id_hex_; }
  bool key_mismatch() const { return key_mismatch_; }
  int last_liberr() const { return last_liberr_; }
  std::uint8_t tls_alert() const;

  // Closing-period bookkeeping for listeners.
  std::uint64_t closing_deadline() const { return closing_deadline_; }
  void resend_close();

 private:
  friend struct ConnCallbacks;
  bool setup(const Address& remote, bool server, const ngtcp2_cid* dcid, const ngtcp2_pkt_hd* hd,
             std::string& error);
  void fill_vecs(Stream& s, ngtcp2_vec* vecs, std::size_t& count, std::uint64_t& len);
  bool flush_batch();
  void finish_with_peer_close();
  void apply_credit();
  void write_close_packet(const ngtcp2_connection_close_error& err);
  Stream& add_stream(std::int64_t id);
  void reap();

  UdpSocket& socket_;
  TlsContext& tls_;
  ConnHandler& handler_;
  ConnConfig config_;
  ngtcp2_conn* conn_ = nullptr;
  gnutls_session_t session_ = nullptr;
  ngtcp2_crypto_conn_ref conn_ref_{};
  Address remote_;
  ngtcp2_path path_{};
  std::unordered_map<std::int64_t, std::unique_ptr<Stream>> streams_;
  std::deque<std::int64_t> ready_;
  std::vector<std::int64_t> credit_streams_;
  std::vector<std::int64_t> graveyard_;    // closed streams, erased after the operation
  std::vector<std::int64_t> fin_written_;  // reported after the write pass (not mid-packet)
  std::vector<std::pair<std::int64_t, std::uint64_t>> shutdowns_;
  std::deque<std::vector<std::uint8_t>> dgram_queue_;
  bool handshake_completed_ = false;
  bool finished_ = false;
  bool closing_ = false;
  CloseInfo close_info_;
  std::string peer_id_hex_, presented_id_hex_, alpn_;
  bool key_mismatch_ = false;
  int last_liberr_ = 0;
  std::uint64_t closing_deadline_ = 0;
  std::vector<std::uint8_t> close_pkt_;
  // TX batch
  std::vector<std::uint8_t> batch_;
  std::size_t batch_len_ = 0, batch_seg_ = 0, batch_count_ = 0;
  Address batch_dest_;
  std::size_t max_pkt_ = 1452;
};

// ---- the commands ----
int run_listen(int argc, char** argv);
int run_connect(int argc, char** argv);

// Bad command-line input: one line, exit 2.
[[noreturn]] void usage_error(const std::string& message);

}  // namespace ngpeer

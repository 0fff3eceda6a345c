// io::QuicEndpoint: the sans-IO quic::Endpoint on a real UDP socket (Boost.Asio), with a C++20
// coroutine API for applications.
//
//   auto ep = QuicEndpoint::bind(io, secret, {.bind = addr, .alpns = {"my/alpn"}});
//   co_spawn(io, [&]() -> awaitable<void> {
//     auto conn = co_await (*ep)->connect(ticket_addr, "my/alpn");     // Result<...>
//     auto id = co_await (*conn)->open_bi();
//     co_await (*conn)->write_all(*id, data);
//     ...
//   }, detached);
//
// One thread, one io_context. The driver loop is: receive a batch (recvmmsg/GRO) → feed the
// endpoint → wake the coroutines waiting on the connections that changed → transmit everything
// the endpoint has (GSO batches) → re-arm the single timer at the endpoint's next deadline.
// Application calls change connection state synchronously and "kick" a deferred flush, so a burst
// of writes leaves in as few syscalls as possible.
//
// Waiting: each connection has one notifier (a timer that never expires, cancelled to wake every
// waiter); waiters re-check their condition after each wake-up. Simple, and fine for the tens of
// coroutines per connection this serves.
#pragma once

// clang-format off
#include <utility>  // first: Boost 1.74's awaitable.hpp uses std::exchange without including it
// clang-format on

#include <boost/asio.hpp>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/endpoint_addr.h"
#include "base/key.h"
#include "base/random.h"
#include "base/relay_url.h"
#include "base/result.h"
#include "base/socket_addr.h"
#include "io/relay_client.h"
#include "io/udp_socket.h"
#include "quic/endpoint.h"
#include "quic/path_selector.h"

namespace iroh::io {

template <class T>
using awaitable = boost::asio::awaitable<T>;

// Why an operation failed, in the categories users act on.
enum class ErrorKind : std::uint8_t {
  kTimeout,      // no handshake / no answer in time
  kKeyMismatch,  // the server presented another key than the one dialed
  kAlpn,         // no common application protocol
  kClosed,       // the peer (or we) closed the connection: see message for code and reason
  kUnreachable,  // no usable address, socket error
  kTransport,    // a QUIC protocol error
};
const char* error_kind_name(ErrorKind kind);  // "timeout", "key-mismatch", ...

struct QuicError {
  ErrorKind kind = ErrorKind::kTransport;
  std::string message;
  std::optional<quic::CloseReason> close;  // when the connection ended
};
template <class T>
using QuicResult = Result<T, QuicError>;

// Maps how a connection ended to an ErrorKind.
QuicError error_from_close(const quic::CloseReason& reason);

class QuicEndpoint;

// A change of the path a connection's data goes on (relay → direct when a hole was punched,
// direct → relay when the direct path died, …).
struct PathChange {
  Instant at;
  std::uint32_t id = 0;  // multipath path id
  SocketAddr remote;     // the engine's view (a relay-mapped address for relayed paths)
  std::string path;      // "udp:IP:PORT" or "relay:URL"
  bool relay = false;
};

class QuicConnection {
 public:
  QuicConnection(std::shared_ptr<QuicEndpoint> endpoint, quic::ConnectionHandle handle);
  ~QuicConnection();

  // Streams. open_* waits while the peer's stream limit is reached.
  awaitable<QuicResult<std::uint64_t>> open_bi();
  awaitable<QuicResult<std::uint64_t>> open_uni();
  // The next stream the peer opened; an error once the connection is closed.
  awaitable<QuicResult<std::uint64_t>> accept_bi();
  awaitable<QuicResult<std::uint64_t>> accept_uni();
  // Buffers all of `data` (waiting for buffer space as needed).
  awaitable<QuicResult<void>> write_all(std::uint64_t id, ByteView data);
  QuicResult<void> finish(std::uint64_t id);
  QuicResult<void> reset(std::uint64_t id, std::uint64_t code);
  QuicResult<void> stop_sending(std::uint64_t id, std::uint64_t code);
  // Waits until some bytes or the end of the stream are available.
  awaitable<QuicResult<quic::StreamReadResult>> read(std::uint64_t id, std::span<std::uint8_t> out);
  // Waits until everything written on the stream was acknowledged (or the connection ended).
  awaitable<QuicResult<void>> stopped(std::uint64_t id);

  QuicResult<void> send_datagram(ByteView data);
  // The next datagram; an error once the connection is closed.
  awaitable<QuicResult<Bytes>> recv_datagram();
  std::size_t max_datagram_size() const;

  // Closes with an application code; pending operations fail with kind kClosed.
  void close(std::uint64_t code, std::string_view reason);
  // Waits until the connection has ended (either side, any reason) and says how.
  awaitable<quic::CloseReason> closed();
  // Waits up to `limit` for the close to be on the wire (the closing period's first packet).
  awaitable<void> drain(Duration limit);

  // Paths (draft multipath): every open path, and the history of the selected one. The first
  // entry of path_changes() is the path the connection started on.
  std::vector<quic::PathStats> paths() const;
  const std::vector<PathChange>& path_changes() const { return path_changes_; }
  // Waits up to `limit` until path_changes() has more than `seen` entries; returns the next one,
  // nullopt on timeout, an error once the connection has ended.
  awaitable<QuicResult<std::optional<PathChange>>> next_path_change(std::size_t seen,
                                                                    Duration limit);

  EndpointId remote_id() const;
  std::string alpn() const;
  const std::shared_ptr<QuicEndpoint>& endpoint() const { return endpoint_; }
  quic::ConnectionStats stats() const;
  bool is_closed() const;
  std::optional<quic::CloseReason> close_reason() const;

 private:
  friend class QuicEndpoint;
  quic::Connection* conn() const;
  awaitable<void> wait();  // until the next notification
  void notify();
  QuicError closed_error() const;

  std::shared_ptr<QuicEndpoint> endpoint_;
  quic::ConnectionHandle handle_;
  boost::asio::steady_timer notifier_;
  std::optional<quic::CloseReason> final_reason_;  // once the core forgot the connection
  EndpointId remote_id_;
  std::string alpn_;
  quic::ConnectionStats last_stats_;
  std::vector<PathChange> path_changes_;
};

struct QuicEndpointOptions {
  SocketAddr bind = SocketAddr::v4({127, 0, 0, 1}, 0);
  std::vector<std::string> alpns;  // accepted for incoming connections; empty = client only
  quic::ConnectionConfig connection;
  bool retry = false;
  std::string qlog_dir;  // non-empty: one JSON-SEQ qlog file per connection (readable in qvis)
  // TLS secrets go to $SSLKEYLOGFILE (if set when the endpoint is bound) unless
  // connection.keylog is set.
  bool gso = true;
  bool gro = true;
  // Home relay (spec §6): connected at bind; peers that know only our id and this URL reach us
  // through it. Relays named by the peers we dial are connected on demand.
  std::optional<RelayUrl> relay;
  RelayClientOptions relay_client;  // token, CA file, timeouts (for every relay)
  // Hole punching (spec §5): our candidate addresses are the interface addresses of the bound
  // socket plus these (e.g. a NAT's public mapping learnt from address discovery or configured).
  std::vector<SocketAddr> external_addrs;
  bool hole_punching = true;  // false: announce nothing, never start rounds (relay or direct only)
  // How often the host's interface addresses are re-read for new candidates (0 = never; the
  // CLI peers use 1 s). The poll keeps the io_context busy while the endpoint is open.
  Duration interface_poll{0};
};

class QuicEndpoint : public std::enable_shared_from_this<QuicEndpoint> {
 public:
  static Result<std::shared_ptr<QuicEndpoint>> bind(boost::asio::io_context& io,
                                                    const SecretKey& secret,
                                                    QuicEndpointOptions options);
  ~QuicEndpoint();

  SocketAddr local_addr() const;
  EndpointId id() const;
  // Our address as peers dial it: id + the bound address (an unspecified bind address is
  // reported as loopback of its family).
  EndpointAddr addr() const;
  const UdpCapabilities& capabilities() const;

  // Dials `addr`, waits for the handshake: its first IP address of our socket's family, or, when
  // it has none, its relay URL (through that relay, which is connected on demand).
  awaitable<QuicResult<std::shared_ptr<QuicConnection>>> connect(const EndpointAddr& addr,
                                                                 std::string alpn);

  // Relays. A relayed path is, to the QUIC engine, an ordinary remote address: an internal IPv6
  // address (fd15:70a:510b:1::/64, port 12345, as iroh maps them) standing for "peer P through
  // relay R". It never leaves the process.
  const std::optional<RelayUrl>& home_relay() const { return options_.relay; }
  // Waits until the home relay has authenticated us (true), or `limit` passed, the relay denied
  // us, or there is no home relay (false).
  awaitable<bool> relay_ready(Duration limit);
  // The home relay's client (nullptr without one): state, metrics, denial reason.
  std::shared_ptr<RelayClient> home_relay_client() const;
  bool is_relay_path(const SocketAddr& remote) const;
  // "udp:IP:PORT" for a direct path, "relay:URL" for a relayed one.
  std::string describe_path(const SocketAddr& remote) const;
  // The next incoming connection whose handshake completed; nullptr once the endpoint closed.
  awaitable<std::shared_ptr<QuicConnection>> accept();

  // Hole punching: our current candidate addresses (spec §5.2).
  std::vector<SocketAddr> direct_candidates() const;
  // The host's addresses may have changed (network change, churn): re-read them, and announce /
  // punch again on every connection if they did. Also adds `external` to the candidates.
  void refresh_candidates(std::optional<std::vector<SocketAddr>> external = std::nullopt);

  // Closes every connection (code, reason), waits briefly for the closes to leave, stops.
  awaitable<void> shutdown(std::uint64_t code, std::string_view reason);
  void close();

  quic::Endpoint& core() { return *core_; }
  boost::asio::io_context& io() { return io_; }
  // Schedules a flush (transmit + timer re-arm) after the current handler; coalesced.
  void kick();
  Instant now() const;

 private:
  friend class QuicConnection;
  QuicEndpoint(boost::asio::io_context& io, const SecretKey& secret, QuicEndpointOptions options,
               UdpSocket socket);
  void start();
  void receive_loop();
  void on_batch(std::span<const ReceivedDatagram> batch);
  void flush();
  void arm_timer();
  void dispatch_events();
  quic::QlogSink make_qlog(quic::Role role, ByteView odcid);
  // Relays: the client for `url` (started on first use), and the mapped path addresses.
  RelayClient* relay_for(const RelayUrl& url);
  SocketAddr relay_path_addr(const RelayUrl& url, const EndpointId& peer);
  void on_relay_datagram(const RelayUrl& url, RelayDatagram d);
  void send_via_relay(const SocketAddr& dest, std::uint8_t ecn, ByteView data,
                      std::size_t segment_size);
  // Hole punching and path selection per connection (impl/io/quic_endpoint_paths.cc).
  void maintain_paths();
  void maintain_connection(QuicConnection& c, quic::Connection& qc, Instant now);
  void arm_maintain_timer();

  boost::asio::io_context& io_;
  SecretKey secret_;
  QuicEndpointOptions options_;
  UdpSocket socket_;
  SystemRandom random_;
  std::unique_ptr<quic::Endpoint> core_;
  boost::asio::steady_timer timer_;
  boost::asio::steady_timer accept_notifier_;
  std::optional<Instant> timer_at_;
  bool flush_posted_ = false;
  bool closed_ = false;
  bool send_blocked_ = false;
  Bytes send_buf_;
  std::size_t max_batch_ = 1;
  // Live connections by handle (weak: the application owns QuicConnection objects).
  std::map<quic::ConnectionHandle, std::weak_ptr<QuicConnection>> conns_;
  // Incoming connections waiting for accept() (handshake not necessarily complete yet).
  std::deque<std::shared_ptr<QuicConnection>> pending_incoming_;
  std::deque<std::shared_ptr<QuicConnection>> ready_incoming_;
  // Relays by URL, and the relayed paths both ways.
  std::map<RelayUrl, std::shared_ptr<RelayClient>> relays_;
  struct RelayPath {
    RelayUrl url;
    EndpointId peer;
  };
  std::map<SocketAddr, RelayPath> relay_paths_;
  std::map<std::pair<RelayUrl, EndpointId>, SocketAddr> relay_path_addrs_;
  std::uint64_t next_relay_path_ = 1;
  boost::asio::steady_timer relay_notifier_;  // cancelled on every home relay event
  // Hole punching: per-connection policy state, the candidates, and the timer for rounds.
  struct PathPolicy {
    quic::HolePunchSchedule schedule;
    std::optional<std::uint32_t> selected;
    bool configured = false;
    std::vector<SocketAddr> announced;  // server: our ADD_ADDRESSes
    std::uint64_t candidates_epoch = 0;
  };
  std::map<quic::ConnectionHandle, PathPolicy> path_policies_;
  std::vector<SocketAddr> candidates_;
  std::uint64_t candidates_epoch_ = 0;
  boost::asio::steady_timer maintain_timer_;
  std::optional<Instant> maintain_at_;
  // Interface addresses are re-read this often (network changes: renumbering, moves).
  boost::asio::steady_timer interface_timer_;
  void watch_interfaces();
};

}  // namespace iroh::io

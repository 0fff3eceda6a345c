// A non-blocking UDP socket for QUIC on Boost.Asio, with Linux batching offloads.
//
// Sending: `send` takes one or more equal-size segments (the last may be shorter) and hands them
// to the kernel in as few system calls as it can: one sendmsg/sendmmsg entry per up to
// `max_gso_segments` segments with a UDP_SEGMENT control message (GSO) when the kernel supports
// it, otherwise one sendmmsg entry per segment. The ECN codepoint goes out per call as an IP_TOS
// / IPV6_TCLASS control message. Datagrams are sent with DF set (IP_PMTUDISC_PROBE): the caller
// does path-MTU discovery, the kernel never fragments.
//
// Receiving: `async_receive` waits for readability, then drains up to a batch of datagrams with
// recvmmsg. With UDP_GRO the kernel may coalesce several datagrams of one flow into a single
// buffer; it is split again here using the gso_size control message, so the handler always sees
// individual datagrams. ECN comes from IP_RECVTOS / IPV6_RECVTCLASS, the local (destination)
// address from IP_PKTINFO / IPV6_RECVPKTINFO. All receive buffers belong to the socket and are
// reused; the batch passed to the handler is valid until the next receive call.
//
// Feature detection happens at bind. IROHLAB_NO_GSO=1 / IROHLAB_NO_GRO=1 in the environment (or
// UdpSocketOptions) force the fallback paths. One io_context, one thread: the socket is not
// thread-safe. Asio stays out of this header apart from a forward declaration.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>

#include "base/result.h"
#include "base/socket_addr.h"

namespace boost::asio {
class io_context;
}  // namespace boost::asio

namespace iroh::io {

struct UdpCapabilities {
  bool gso = false;                  // UDP_SEGMENT sends
  bool gro = false;                  // UDP_GRO receives
  bool recvmmsg = false;             // batched receive (always true on Linux >= 2.6.33)
  bool ecn = false;                  // received TOS / traffic class is reported
  std::size_t max_gso_segments = 1;  // segments per GSO send (1 without GSO)
  // Socket buffer sizes as the kernel reports them after our request (Linux doubles the value).
  std::size_t send_buffer = 0;
  std::size_t recv_buffer = 0;
};

struct UdpSocketOptions {
  bool allow_gso = true;  // also forced off by IROHLAB_NO_GSO=1
  bool allow_gro = true;  // also forced off by IROHLAB_NO_GRO=1
  // Requested SO_SNDBUF / SO_RCVBUF. SO_*BUFFORCE is tried first (needs CAP_NET_ADMIN), then the
  // plain option (clamped by net.core.[rw]mem_max).
  std::size_t socket_buffer_bytes = 8 << 20;
};

struct ReceivedDatagram {
  SocketAddr from;
  // The datagram's destination address (IP_PKTINFO), with the socket's port; unset if the kernel
  // did not report it.
  std::optional<SocketAddr> local;
  std::uint8_t ecn = 0;  // the two ECN bits of TOS / traffic class
  std::span<const std::uint8_t> data;
};

class UdpSocket {
 public:
  using Capabilities = UdpCapabilities;
  // The batch is valid until the handler returns (the buffers are reused by the next receive).
  using ReceiveHandler = std::function<void(Result<std::span<const ReceivedDatagram>>)>;
  using WaitHandler = std::function<void(Result<void>)>;

  // IPv4 or IPv6 according to `addr`; port 0 picks an ephemeral port. An IPv6 socket keeps the
  // system's dual-stack default (IPV6_V6ONLY is not changed).
  static Result<UdpSocket> bind(boost::asio::io_context& io, const SocketAddr& addr,
                                UdpSocketOptions options = {});

  UdpSocket(UdpSocket&&) noexcept;
  UdpSocket& operator=(UdpSocket&&) noexcept;
  ~UdpSocket();  // closes the socket; pending handlers are dropped, never called

  SocketAddr local_addr() const;
  const Capabilities& capabilities() const;

  // Sends `payload` to `dest` as datagrams of `segment_size` bytes (the last one may be shorter;
  // segment_size 0 or >= payload.size() means one datagram). Returns the number of payload bytes
  // the kernel accepted: always whole datagrams, payload.size() when everything went out, fewer
  // (possibly 0) when the send buffer filled up: then wait with async_wait_writable and send the
  // rest. Errors (EMSGSIZE, unreachable, ...) are returned only if nothing was accepted.
  // If the kernel rejects GSO at send time (EIO: no checksum offload on the route's device), GSO
  // is switched off for this socket and the send is retried without it.
  Result<std::size_t> send(const SocketAddr& dest, std::uint8_t ecn,
                           std::span<const std::uint8_t> payload, std::size_t segment_size);
  // Calls `handler` once when the socket is writable again (or with an error).
  void async_wait_writable(WaitHandler handler);

  // Calls `handler` once with a non-empty batch of datagrams (or an error). Call again from the
  // handler to keep receiving. Only one receive may be outstanding.
  void async_receive(ReceiveHandler handler);
  // Non-blocking: the datagrams queued right now (an empty batch when there are none).
  Result<std::span<const ReceivedDatagram>> try_receive();

  // Cancels the pending waits of both directions; their handlers are dropped, never called.
  void cancel();
  // Cancels pending waits (their handlers are dropped) and closes the socket.
  void close();

  int native_handle() const;

  struct Impl;  // implementation detail (udp_socket.cc)

 private:
  explicit UdpSocket(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace iroh::io

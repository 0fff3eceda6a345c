// The QUIC UDP socket driver. See udp_socket.h. Facts this relies on (Linux, udp(7), ip(7),
// ipv6(7), and the kernel's UDP GSO/GRO, v4.18+ / v5.0+):
//  - UDP_SEGMENT (SOL_UDP) as a per-call control message (u16) makes the kernel cut the payload
//    into gso_size datagrams (the last may be shorter); at most UDP_MAX_SEGMENTS (64 on every
//    kernel that has GSO; later kernels raised it) and one IP datagram's worth of bytes per call.
//  - UDP_GRO (SOL_UDP) lets the kernel deliver coalesced datagrams of one flow in one buffer with
//    a UDP_GRO control message (int) carrying the segment size. Without it, a GSO packet that
//    reaches the socket (e.g. over loopback) is segmented before delivery.
//  - IP_TOS cmsgs are a byte on receive; on send an int is accepted. IPV6_TCLASS is an int both
//    ways. A v6 socket reports IPv4 traffic with IPPROTO_IP-level cmsgs when IP_RECVTOS/IP_PKTINFO
//    are set on it too, and a v4-mapped destination takes IP_TOS, not IPV6_TCLASS.
#include "io/udp_socket.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/udp.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace iroh::io {

namespace {

namespace net = boost::asio;
using udp = net::ip::udp;

constexpr std::size_t kGsoMaxSegments = 64;      // UDP_MAX_SEGMENTS on every GSO kernel
constexpr std::size_t kMaxUdpPayloadV4 = 65507;  // 65535 - IPv4 header - UDP header
constexpr std::size_t kMaxSendMessages = 64;     // mmsghdr entries per sendmmsg
constexpr std::size_t kRecvSlots = 32;           // mmsghdr entries per recvmmsg
constexpr std::size_t kRecvSlotSize = 65536;     // a whole GRO super-buffer / any datagram
constexpr std::size_t kCmsgSpace = 256;

std::string errno_text(const char* what, int err) {
  return std::string(what) + ": " + std::strerror(err);
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && v[0] != '\0' && std::strcmp(v, "0") != 0;
}

// sockaddr for `addr` on a socket of family `family` (a v4 address on a v6 socket is mapped).
socklen_t to_sockaddr(const SocketAddr& addr, int family, sockaddr_storage& out) {
  std::memset(&out, 0, sizeof out);
  if (family == AF_INET) {
    auto* sa = reinterpret_cast<sockaddr_in*>(&out);
    sa->sin_family = AF_INET;
    sa->sin_port = htons(addr.port());
    std::memcpy(&sa->sin_addr, addr.ip().data(), 4);
    return sizeof(sockaddr_in);
  }
  auto* sa = reinterpret_cast<sockaddr_in6*>(&out);
  sa->sin6_family = AF_INET6;
  sa->sin6_port = htons(addr.port());
  if (addr.is_v4()) {
    sa->sin6_addr.s6_addr[10] = 0xff;
    sa->sin6_addr.s6_addr[11] = 0xff;
    std::memcpy(&sa->sin6_addr.s6_addr[12], addr.ip().data(), 4);
  } else {
    std::memcpy(&sa->sin6_addr, addr.ip().data(), 16);
  }
  return sizeof(sockaddr_in6);
}

std::optional<SocketAddr> from_sockaddr(const sockaddr_storage& ss) {
  if (ss.ss_family == AF_INET) {
    const auto* sa = reinterpret_cast<const sockaddr_in*>(&ss);
    ByteArray<4> ip{};
    std::memcpy(ip.data(), &sa->sin_addr, 4);
    return SocketAddr::v4(ip, ntohs(sa->sin_port));
  }
  if (ss.ss_family == AF_INET6) {
    const auto* sa = reinterpret_cast<const sockaddr_in6*>(&ss);
    ByteArray<16> ip{};
    std::memcpy(ip.data(), &sa->sin6_addr, 16);
    return SocketAddr::v6(ip, ntohs(sa->sin6_port));
  }
  return std::nullopt;
}

bool is_v4_mapped(const SocketAddr& a) {
  if (a.is_v4()) return false;
  const auto ip = a.ip();
  for (int i = 0; i < 10; ++i)
    if (ip[i] != 0) return false;
  return ip[10] == 0xff && ip[11] == 0xff;
}

template <class T>
bool set_opt(int fd, int level, int name, T value) {
  return ::setsockopt(fd, level, name, &value, sizeof value) == 0;
}

std::size_t get_int_opt(int fd, int level, int name) {
  int v = 0;
  socklen_t len = sizeof v;
  if (::getsockopt(fd, level, name, &v, &len) != 0) return 0;
  return static_cast<std::size_t>(v);
}

// SO_*BUFFORCE (root) then the plain option (clamped to net.core.*mem_max). Best effort.
void grow_buffer(int fd, int force_name, int name, std::size_t bytes) {
  const int want = static_cast<int>(std::min<std::size_t>(bytes, 1u << 30));
  if (set_opt(fd, SOL_SOCKET, force_name, want)) return;
  for (int size = want; size >= (1 << 20); size /= 2)
    if (set_opt(fd, SOL_SOCKET, name, size) &&
        get_int_opt(fd, SOL_SOCKET, name) >= static_cast<std::size_t>(size))
      return;
}

}  // namespace

struct UdpSocket::Impl {
  explicit Impl(net::io_context& io) : socket(io) {}

  udp::socket socket;
  int fd = -1;
  int family = AF_INET;
  SocketAddr local;
  Capabilities caps;
  bool closed = false;
  // Bumped by cancel(): a completion from an older generation is dropped.
  std::uint64_t generation = 0;

  // Send scratch, reused by every call.
  std::array<mmsghdr, kMaxSendMessages> send_msgs{};
  std::array<iovec, kMaxSendMessages> send_iov{};
  std::array<std::array<std::uint8_t, kCmsgSpace>, kMaxSendMessages> send_cmsg{};
  sockaddr_storage send_dest{};

  // Receive buffers, reused by every call.
  std::vector<std::uint8_t> recv_buf;
  std::array<mmsghdr, kRecvSlots> recv_msgs{};
  std::array<iovec, kRecvSlots> recv_iov{};
  std::array<sockaddr_storage, kRecvSlots> recv_from{};
  std::array<std::array<std::uint8_t, kCmsgSpace>, kRecvSlots> recv_cmsg{};
  std::vector<ReceivedDatagram> batch;

  Result<std::size_t> send(const SocketAddr& dest, std::uint8_t ecn, ByteView payload,
                           std::size_t segment_size);
  Result<std::span<const ReceivedDatagram>> receive();
  void parse_message(std::size_t slot, std::size_t len, int flags);
};

namespace {

// Appends one cmsg to the control buffer of `msg`; returns false if it does not fit.
template <class T>
bool add_cmsg(msghdr& msg, std::size_t capacity, int level, int type, T value) {
  const std::size_t used = msg.msg_controllen;
  if (used + CMSG_SPACE(sizeof(T)) > capacity) return false;
  auto* c = reinterpret_cast<cmsghdr*>(static_cast<std::uint8_t*>(msg.msg_control) + used);
  std::memset(c, 0, CMSG_SPACE(sizeof(T)));
  c->cmsg_level = level;
  c->cmsg_type = type;
  c->cmsg_len = CMSG_LEN(sizeof(T));
  std::memcpy(CMSG_DATA(c), &value, sizeof(T));
  msg.msg_controllen = used + CMSG_SPACE(sizeof(T));
  return true;
}

}  // namespace

Result<std::size_t> UdpSocket::Impl::send(const SocketAddr& dest, std::uint8_t ecn,
                                          ByteView payload, std::size_t segment_size) {
  if (closed) return make_error("udp send: socket is closed");
  if (family == AF_INET && !dest.is_v4())
    return make_error("udp send: IPv6 destination " + dest.to_string() + " on an IPv4 socket");
  if (ecn > 3) return make_error("udp send: ECN codepoint must be 0..3");
  if (payload.empty()) return std::size_t{0};
  if (segment_size == 0 || segment_size > payload.size()) segment_size = payload.size();

  const socklen_t dest_len = to_sockaddr(dest, family, send_dest);
  const bool v4_wire = dest.is_v4() || is_v4_mapped(dest);

  std::size_t sent = 0;
  for (;;) {
    if (sent >= payload.size()) return sent;
    // Datagrams per mmsghdr entry: a GSO train, or exactly one.
    std::size_t per_msg = 1;
    if (caps.gso && payload.size() - sent > segment_size) {
      per_msg = std::min(caps.max_gso_segments, kMaxUdpPayloadV4 / segment_size);
      per_msg = std::max<std::size_t>(per_msg, 1);
    }
    const bool use_gso = per_msg > 1;
    std::size_t count = 0;
    std::size_t off = sent;
    while (off < payload.size() && count < kMaxSendMessages) {
      const std::size_t len = std::min(per_msg * segment_size, payload.size() - off);
      msghdr& m = send_msgs[count].msg_hdr;
      m = msghdr{};
      m.msg_name = &send_dest;
      m.msg_namelen = dest_len;
      send_iov[count].iov_base = const_cast<std::uint8_t*>(payload.data() + off);
      send_iov[count].iov_len = len;
      m.msg_iov = &send_iov[count];
      m.msg_iovlen = 1;
      m.msg_control = send_cmsg[count].data();
      m.msg_controllen = 0;
      if (ecn != 0) {
        if (v4_wire)
          add_cmsg<int>(m, kCmsgSpace, IPPROTO_IP, IP_TOS, ecn);
        else
          add_cmsg<int>(m, kCmsgSpace, IPPROTO_IPV6, IPV6_TCLASS, ecn);
      }
      if (use_gso && len > segment_size)
        add_cmsg<std::uint16_t>(m, kCmsgSpace, SOL_UDP, UDP_SEGMENT,
                                static_cast<std::uint16_t>(segment_size));
      if (m.msg_controllen == 0) m.msg_control = nullptr;
      send_msgs[count].msg_len = 0;
      off += len;
      ++count;
    }
    const int n = ::sendmmsg(fd, send_msgs.data(), static_cast<unsigned>(count), MSG_DONTWAIT);
    if (n < 0) {
      const int err = errno;
      if (err == EINTR) continue;
      if (err == EAGAIN || err == EWOULDBLOCK) return sent;
      if (err == EIO && use_gso) {
        // The route's device cannot checksum-offload GSO trains: send datagrams one by one.
        caps.gso = false;
        caps.max_gso_segments = 1;
        continue;
      }
      if (sent > 0) return sent;
      return make_error(errno_text(("udp send to " + dest.to_string()).c_str(), err));
    }
    for (int i = 0; i < n; ++i) sent += send_iov[static_cast<std::size_t>(i)].iov_len;
    if (static_cast<std::size_t>(n) < count) {
      // Partial batch: the next call reports EAGAIN or the error of the entry that failed.
      continue;
    }
  }
}

void UdpSocket::Impl::parse_message(std::size_t slot, std::size_t len, int flags) {
  const msghdr& m = recv_msgs[slot].msg_hdr;
  if (flags & MSG_TRUNC) return;  // larger than a slot: cannot be a valid datagram for us
  std::optional<SocketAddr> from = from_sockaddr(recv_from[slot]);
  if (!from) return;
  std::uint8_t ecn = 0;
  std::optional<SocketAddr> dst;
  std::size_t gro_size = 0;
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(const_cast<msghdr*>(&m), c)) {
    const std::uint8_t* data = CMSG_DATA(c);
    const std::size_t data_len = c->cmsg_len - CMSG_LEN(0);
    if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_TOS && data_len >= 1) {
      ecn = data[0] & 3;
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_TCLASS &&
               data_len >= sizeof(int)) {
      int tclass = 0;
      std::memcpy(&tclass, data, sizeof tclass);
      ecn = static_cast<std::uint8_t>(tclass & 3);
    } else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO &&
               data_len >= sizeof(in_pktinfo)) {
      in_pktinfo pi;
      std::memcpy(&pi, data, sizeof pi);
      ByteArray<4> ip{};
      std::memcpy(ip.data(), &pi.ipi_addr, 4);
      if (family == AF_INET) {
        dst = SocketAddr::v4(ip, local.port());
      } else {
        ByteArray<16> mapped{};
        mapped[10] = mapped[11] = 0xff;
        std::copy(ip.begin(), ip.end(), mapped.begin() + 12);
        dst = SocketAddr::v6(mapped, local.port());
      }
    } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO &&
               data_len >= sizeof(in6_pktinfo)) {
      in6_pktinfo pi;
      std::memcpy(&pi, data, sizeof pi);
      ByteArray<16> ip{};
      std::memcpy(ip.data(), &pi.ipi6_addr, 16);
      dst = SocketAddr::v6(ip, local.port());
    } else if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO && data_len >= sizeof(int)) {
      int size = 0;
      std::memcpy(&size, data, sizeof size);
      if (size > 0) gro_size = static_cast<std::size_t>(size);
    }
  }
  const std::uint8_t* base = recv_buf.data() + slot * kRecvSlotSize;
  const std::size_t step = gro_size != 0 ? gro_size : std::max<std::size_t>(len, 1);
  if (len == 0) {
    batch.push_back(ReceivedDatagram{*from, dst, ecn, {base, 0}});
    return;
  }
  for (std::size_t off = 0; off < len; off += step)
    batch.push_back(ReceivedDatagram{*from, dst, ecn, {base + off, std::min(step, len - off)}});
}

Result<std::span<const ReceivedDatagram>> UdpSocket::Impl::receive() {
  batch.clear();
  if (closed) return make_error("udp receive: socket is closed");
  for (std::size_t i = 0; i < kRecvSlots; ++i) {
    recv_iov[i].iov_base = recv_buf.data() + i * kRecvSlotSize;
    recv_iov[i].iov_len = kRecvSlotSize;
    msghdr& m = recv_msgs[i].msg_hdr;
    m = msghdr{};
    m.msg_name = &recv_from[i];
    m.msg_namelen = sizeof(sockaddr_storage);
    m.msg_iov = &recv_iov[i];
    m.msg_iovlen = 1;
    m.msg_control = recv_cmsg[i].data();
    m.msg_controllen = kCmsgSpace;
    recv_msgs[i].msg_len = 0;
  }
  int n;
  for (;;) {
    if (caps.recvmmsg) {
      n = ::recvmmsg(fd, recv_msgs.data(), kRecvSlots, MSG_DONTWAIT, nullptr);
    } else {
      const ssize_t r = ::recvmsg(fd, &recv_msgs[0].msg_hdr, MSG_DONTWAIT);
      if (r >= 0) recv_msgs[0].msg_len = static_cast<unsigned>(r);
      n = r < 0 ? -1 : 1;
    }
    if (n >= 0) break;
    const int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN || err == EWOULDBLOCK) return std::span<const ReceivedDatagram>{};
    // ICMP errors are only queued for connected sockets or with IP_RECVERR, neither used here.
    return make_error(errno_text("udp receive", err));
  }
  for (int i = 0; i < n; ++i) {
    const auto slot = static_cast<std::size_t>(i);
    parse_message(slot, recv_msgs[slot].msg_len, recv_msgs[slot].msg_hdr.msg_flags);
  }
  return std::span<const ReceivedDatagram>(batch);
}

Result<UdpSocket> UdpSocket::bind(boost::asio::io_context& io, const SocketAddr& addr,
                                  UdpSocketOptions options) {
  const int family = addr.is_v4() ? AF_INET : AF_INET6;
  const int fd = ::socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
  if (fd < 0) return make_error(errno_text("udp socket", errno));

  auto impl = std::make_shared<Impl>(io);
  boost::system::error_code ec;
  impl->socket.assign(family == AF_INET ? udp::v4() : udp::v6(), fd, ec);
  if (ec) {
    ::close(fd);
    return make_error("udp socket: " + ec.message());
  }
  impl->fd = fd;
  impl->family = family;
  Capabilities& caps = impl->caps;

  grow_buffer(fd, SO_SNDBUFFORCE, SO_SNDBUF, options.socket_buffer_bytes);
  grow_buffer(fd, SO_RCVBUFFORCE, SO_RCVBUF, options.socket_buffer_bytes);
  caps.send_buffer = get_int_opt(fd, SOL_SOCKET, SO_SNDBUF);
  caps.recv_buffer = get_int_opt(fd, SOL_SOCKET, SO_RCVBUF);

  // DF on, never fragment locally, ignore the cached path MTU (the QUIC layer probes it).
  if (family == AF_INET) {
    if (!set_opt(fd, IPPROTO_IP, IP_MTU_DISCOVER, int{IP_PMTUDISC_PROBE}) &&
        !set_opt(fd, IPPROTO_IP, IP_MTU_DISCOVER, int{IP_PMTUDISC_DO}))
      return make_error(errno_text("udp socket: IP_MTU_DISCOVER", errno));
    caps.ecn = set_opt(fd, IPPROTO_IP, IP_RECVTOS, 1);
    set_opt(fd, IPPROTO_IP, IP_PKTINFO, 1);
  } else {
    if (!set_opt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, int{IPV6_PMTUDISC_PROBE}) &&
        !set_opt(fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, int{IPV6_PMTUDISC_DO}))
      return make_error(errno_text("udp socket: IPV6_MTU_DISCOVER", errno));
    caps.ecn = set_opt(fd, IPPROTO_IPV6, IPV6_RECVTCLASS, 1);
    set_opt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
    // For IPv4 traffic on a dual-stack socket (best effort).
    set_opt(fd, IPPROTO_IP, IP_MTU_DISCOVER, int{IP_PMTUDISC_PROBE});
    set_opt(fd, IPPROTO_IP, IP_RECVTOS, 1);
    set_opt(fd, IPPROTO_IP, IP_PKTINFO, 1);
  }

  // GSO: the option exists (readable) iff the kernel can segment.
  if (options.allow_gso && !env_flag("IROHLAB_NO_GSO")) {
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, SOL_UDP, UDP_SEGMENT, &v, &len) == 0) {
      caps.gso = true;
      caps.max_gso_segments = kGsoMaxSegments;
    }
  }
  if (options.allow_gro && !env_flag("IROHLAB_NO_GRO")) caps.gro = set_opt(fd, SOL_UDP, UDP_GRO, 1);

  sockaddr_storage ss{};
  const socklen_t ss_len = to_sockaddr(addr, family, ss);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), ss_len) != 0)
    return make_error(errno_text(("udp bind " + addr.to_string()).c_str(), errno));
  socklen_t got = sizeof ss;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &got) != 0)
    return make_error(errno_text("udp getsockname", errno));
  impl->local = from_sockaddr(ss).value_or(addr);

  // recvmmsg: a probe on the fresh (empty) socket answers EAGAIN, or ENOSYS without it.
  {
    mmsghdr probe{};
    caps.recvmmsg = !(::recvmmsg(fd, &probe, 1, MSG_DONTWAIT, nullptr) < 0 && errno == ENOSYS);
  }

  impl->recv_buf.resize(kRecvSlots * kRecvSlotSize);
  impl->batch.reserve(kRecvSlots * kGsoMaxSegments);
  return UdpSocket(std::move(impl));
}

UdpSocket::UdpSocket(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
UdpSocket::UdpSocket(UdpSocket&&) noexcept = default;
UdpSocket& UdpSocket::operator=(UdpSocket&& other) noexcept {
  if (this != &other) {
    close();
    impl_ = std::move(other.impl_);
  }
  return *this;
}
UdpSocket::~UdpSocket() { close(); }

void UdpSocket::close() {
  if (!impl_ || impl_->closed) return;
  impl_->closed = true;
  boost::system::error_code ec;
  impl_->socket.close(ec);  // cancels pending waits; their handlers see `closed` and return
  impl_->fd = -1;
}

SocketAddr UdpSocket::local_addr() const { return impl_->local; }
const UdpSocket::Capabilities& UdpSocket::capabilities() const { return impl_->caps; }
int UdpSocket::native_handle() const { return impl_->fd; }

Result<std::size_t> UdpSocket::send(const SocketAddr& dest, std::uint8_t ecn,
                                    std::span<const std::uint8_t> payload,
                                    std::size_t segment_size) {
  return impl_->send(dest, ecn, payload, segment_size);
}

Result<std::span<const ReceivedDatagram>> UdpSocket::try_receive() { return impl_->receive(); }

void UdpSocket::cancel() {
  if (!impl_ || impl_->closed) return;
  ++impl_->generation;
  boost::system::error_code ec;
  impl_->socket.cancel(ec);
}

void UdpSocket::async_wait_writable(WaitHandler handler) {
  if (impl_->closed) return;
  std::weak_ptr<Impl> weak = impl_;
  impl_->socket.async_wait(udp::socket::wait_write,
                           [weak, gen = impl_->generation,
                            handler = std::move(handler)](const boost::system::error_code& ec) {
                             auto impl = weak.lock();
                             if (!impl || impl->closed || impl->generation != gen) return;
                             if (ec) {
                               handler(make_error("udp wait writable: " + ec.message()));
                               return;
                             }
                             handler(Result<void>());
                           });
}

namespace {

void arm_receive(const std::shared_ptr<UdpSocket::Impl>& impl, UdpSocket::ReceiveHandler handler);

}  // namespace

void UdpSocket::async_receive(ReceiveHandler handler) {
  if (impl_->closed) return;
  arm_receive(impl_, std::move(handler));
}

namespace {

void arm_receive(const std::shared_ptr<UdpSocket::Impl>& impl, UdpSocket::ReceiveHandler handler) {
  std::weak_ptr<UdpSocket::Impl> weak = impl;
  impl->socket.async_wait(
      udp::socket::wait_read, [weak, gen = impl->generation, handler = std::move(handler)](
                                  const boost::system::error_code& ec) mutable {
        auto self = weak.lock();
        if (!self || self->closed || self->generation != gen) return;
        if (ec) {
          handler(make_error("udp wait readable: " + ec.message()));
          return;
        }
        auto batch = self->receive();
        if (batch.ok() && batch->empty()) {  // spurious wake-up (or a truncated datagram)
          arm_receive(self, std::move(handler));
          return;
        }
        handler(std::move(batch));
      });
}

}  // namespace

}  // namespace iroh::io

// AF_PACKET plumbing. See packet_socket.h.
#include "netns/linkemu/packet_socket.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace irohlab::linkemu {

namespace {

// Large enough for a 64 KiB GSO super-packet plus headers (BIG TCP is not enabled on veth).
constexpr std::size_t kReceiveBuffer = kVnetHeaderBytes + 65536 + 256;
// Socket buffers sized for a burst at 100 Mbit/s plus scheduling hiccups.
constexpr int kSocketBufferBytes = 16 << 20;

[[noreturn]] void fail(const std::string& interface, const char* what) {
  throw SocketError(interface + ": " + what + ": " + std::strerror(errno));
}

}  // namespace

PacketSocket::PacketSocket(const std::string& interface)
    : interface_(interface), buffer_(kReceiveBuffer) {
  const unsigned index = if_nametoindex(interface.c_str());
  if (index == 0) fail(interface, "no such interface in this network namespace");
  // Protocol 0 until bound, so no frame from another interface is queued before bind().
  fd_ = ::socket(AF_PACKET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) fail(interface, "socket(AF_PACKET) (needs CAP_NET_RAW)");
  const int one = 1;
  if (::setsockopt(fd_, SOL_PACKET, PACKET_VNET_HDR, &one, sizeof one) != 0) {
    fail(interface, "PACKET_VNET_HDR");
  }
  if (::setsockopt(fd_, SOL_PACKET, PACKET_IGNORE_OUTGOING, &one, sizeof one) != 0) {
    fail(interface, "PACKET_IGNORE_OUTGOING");
  }
  // FORCE variants (root) go past net.core.rmem_max; fall back to the capped ones.
  if (::setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &kSocketBufferBytes, sizeof(int)) != 0) {
    (void)::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &kSocketBufferBytes, sizeof(int));
  }
  if (::setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &kSocketBufferBytes, sizeof(int)) != 0) {
    (void)::setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &kSocketBufferBytes, sizeof(int));
  }
  // Receive timestamps let the bridge offer frames to the model at the time they arrived, not
  // the (later, under CPU contention) time it got round to reading them.
  if (::setsockopt(fd_, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) != 0) {
    fail(interface, "SO_TIMESTAMPNS");
  }
  sockaddr_ll addr{};
  addr.sll_family = AF_PACKET;
  addr.sll_protocol = htons(ETH_P_ALL);
  addr.sll_ifindex = static_cast<int>(index);
  if (::bind(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    fail(interface, "bind");
  }
  packet_mreq promisc{};
  promisc.mr_ifindex = static_cast<int>(index);
  promisc.mr_type = PACKET_MR_PROMISC;
  if (::setsockopt(fd_, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &promisc, sizeof promisc) != 0) {
    fail(interface, "promiscuous mode");
  }
}

PacketSocket::~PacketSocket() {
  if (fd_ >= 0) ::close(fd_);
}

bool PacketSocket::receive(VnetHeader& vnet, std::span<const std::uint8_t>& frame,
                           std::int64_t& arrived_realtime_ns) {
  alignas(cmsghdr) std::uint8_t control[CMSG_SPACE(sizeof(timespec))];
  for (;;) {
    sockaddr_ll from{};
    iovec data{buffer_.data(), buffer_.size()};
    msghdr msg{};
    msg.msg_name = &from;
    msg.msg_namelen = sizeof from;
    msg.msg_iov = &data;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_, &msg, MSG_TRUNC);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
      fail(interface_, "recvmsg");
    }
    const auto size = static_cast<std::size_t>(n);
    // Our own transmissions (kernels without PACKET_IGNORE_OUTGOING) and truncated giants are
    // skipped rather than forwarded.
    if (from.sll_pkttype == PACKET_OUTGOING || size > buffer_.size() || size < kVnetHeaderBytes) {
      continue;
    }
    arrived_realtime_ns = 0;
    for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
        timespec ts{};
        std::memcpy(&ts, CMSG_DATA(c), sizeof ts);
        arrived_realtime_ns = std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
      }
    }
    vnet = parse_vnet_header(std::span<const std::uint8_t>(buffer_.data(), kVnetHeaderBytes));
    frame =
        std::span<const std::uint8_t>(buffer_.data() + kVnetHeaderBytes, size - kVnetHeaderBytes);
    return true;
  }
}

bool PacketSocket::send(std::span<const std::uint8_t> frame) {
  // A zero virtio_net_hdr: the frame is complete, no offload requested.
  std::uint8_t header[kVnetHeaderBytes] = {};
  iovec parts[2] = {{header, sizeof header},
                    {const_cast<std::uint8_t*>(frame.data()), frame.size()}};
  for (;;) {
    const ssize_t n = ::writev(fd_, parts, 2);
    if (n >= 0) return true;
    if (errno == EINTR) continue;
    return false;  // ENOBUFS/EAGAIN (full), EMSGSIZE (beyond the interface MTU), ENETDOWN
  }
}

std::uint64_t PacketSocket::kernel_drops() {
  tpacket_stats st{};
  socklen_t len = sizeof st;
  // Reading the statistics resets them, so they are accumulated here.
  if (::getsockopt(fd_, SOL_PACKET, PACKET_STATISTICS, &st, &len) == 0)
    kernel_drops_ += st.tp_drops;
  return kernel_drops_;
}

}  // namespace irohlab::linkemu

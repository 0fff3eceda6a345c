// The UDP socket: batched sends (GSO, else sendmmsg) and batched receives (recvmmsg). Syscalls
// dominate loopback QUIC throughput, so both directions move up to 64 datagrams per call.
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "peer.h"

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif

namespace ngpeer {
namespace {
constexpr std::size_t kMaxSegments = 64;  // kernel limit for one GSO send (UDP_MAX_SEGMENTS)
}

UdpSocket::~UdpSocket() {
  if (fd_ >= 0) ::close(fd_);
}

bool UdpSocket::setup(int family, std::string& error) {
  fd_ = ::socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error = std::string("socket: ") + std::strerror(errno);
    return false;
  }
  // Large buffers absorb a full congestion window of 64-packet bursts; FORCE works as root and
  // ignores rmem_max, the plain option is the fallback.
  int size = 16 * 1024 * 1024;
  if (setsockopt(fd_, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  if (setsockopt(fd_, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) != 0)
    setsockopt(fd_, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  // GRO hands us a whole GSO train (up to 64 packets) per receive; the segment size comes in a
  // control message.
  int one = 1;
  setsockopt(fd_, SOL_UDP, UDP_GRO, &one, sizeof one);  // optional: recv_batch copes without
  return true;
}

bool UdpSocket::bind_to(const Address& local, std::string& error) {
  if (!setup(local.storage.ss_family, error)) return false;
  if (::bind(fd_, local.sa(), local.len) != 0) {
    error = "bind " + local.to_string() + ": " + std::strerror(errno);
    return false;
  }
  local_.len = sizeof local_.storage;
  getsockname(fd_, local_.sa(), &local_.len);
  return true;
}

bool UdpSocket::connect_to(const Address& remote, std::string& error) {
  if (!setup(remote.storage.ss_family, error)) return false;
  if (::connect(fd_, remote.sa(), remote.len) != 0) {
    error = "connect " + remote.to_string() + ": " + std::strerror(errno);
    return false;
  }
  connected_ = true;
  local_.len = sizeof local_.storage;
  getsockname(fd_, local_.sa(), &local_.len);
  return true;
}

bool UdpSocket::send_batch(const Address* dest, const std::uint8_t* data, std::size_t segment_size,
                           std::size_t total) {
  const sockaddr* name = connected_ || !dest ? nullptr : dest->sa();
  socklen_t namelen = name ? dest->len : 0;
  if (total <= segment_size || gso_ok_) {
    iovec iov{const_cast<std::uint8_t*>(data), total};
    msghdr msg{};
    msg.msg_name = const_cast<sockaddr*>(name);
    msg.msg_namelen = namelen;
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(std::uint16_t))] = {};
    if (total > segment_size) {
      msg.msg_control = control;
      msg.msg_controllen = sizeof control;
      cmsghdr* cm = CMSG_FIRSTHDR(&msg);
      cm->cmsg_level = SOL_UDP;
      cm->cmsg_type = UDP_SEGMENT;
      cm->cmsg_len = CMSG_LEN(sizeof(std::uint16_t));
      std::uint16_t seg = std::uint16_t(segment_size);
      std::memcpy(CMSG_DATA(cm), &seg, sizeof seg);
    }
    for (;;) {
      ssize_t n = ::sendmsg(fd_, &msg, 0);
      if (n >= 0) return true;
      if (errno == EINTR) continue;
      if (total > segment_size && (errno == EIO || errno == EINVAL || errno == EOPNOTSUPP)) {
        gso_ok_ = false;  // no GSO here: fall through to sendmmsg
        break;
      }
      // ECONNREFUSED from an earlier ICMP error is reported by the receive path; a lost send is
      // just packet loss to QUIC.
      return errno != EBADF;
    }
  }
  mmsghdr msgs[kMaxSegments];
  iovec iovs[kMaxSegments];
  std::size_t count = 0;
  for (std::size_t off = 0; off < total && count < kMaxSegments; off += segment_size, count++) {
    iovs[count] = {const_cast<std::uint8_t*>(data + off), std::min(segment_size, total - off)};
    msgs[count] = {};
    msgs[count].msg_hdr.msg_name = const_cast<sockaddr*>(name);
    msgs[count].msg_hdr.msg_namelen = namelen;
    msgs[count].msg_hdr.msg_iov = &iovs[count];
    msgs[count].msg_hdr.msg_iovlen = 1;
  }
  std::size_t done = 0;
  while (done < count) {
    int n = ::sendmmsg(fd_, msgs + done, unsigned(count - done), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno != EBADF;
    }
    done += std::size_t(n);
  }
  return true;
}

int UdpSocket::recv_batch() {
  mmsghdr msgs[kRecvBatch];
  iovec iovs[kRecvBatch];
  alignas(cmsghdr) char control[kRecvBatch][CMSG_SPACE(sizeof(int))];
  for (std::size_t i = 0; i < kRecvBatch; i++) {
    iovs[i] = {rx_bufs_.data() + i * kRecvBufSize, kRecvBufSize};
    msgs[i] = {};
    msgs[i].msg_hdr.msg_name = rx_from_[i].sa();
    msgs[i].msg_hdr.msg_namelen = sizeof rx_from_[i].storage;
    msgs[i].msg_hdr.msg_iov = &iovs[i];
    msgs[i].msg_hdr.msg_iovlen = 1;
    msgs[i].msg_hdr.msg_control = control[i];
    msgs[i].msg_hdr.msg_controllen = sizeof control[i];
  }
  for (;;) {
    int n = ::recvmmsg(fd_, msgs, unsigned(kRecvBatch), MSG_DONTWAIT, nullptr);
    if (n < 0) {
      batch_full_ = false;
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
      return -1;
    }
    batch_full_ = std::size_t(n) == kRecvBatch;
    int count = 0;
    for (int i = 0; i < n; i++) {
      if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) continue;
      rx_from_[i].len = msgs[i].msg_hdr.msg_namelen;
      std::size_t total = msgs[i].msg_len;
      std::size_t seg = total;
      for (cmsghdr* cm = CMSG_FIRSTHDR(&msgs[i].msg_hdr); cm;
           cm = CMSG_NXTHDR(&msgs[i].msg_hdr, cm))
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
          int gso = 0;
          std::memcpy(&gso, CMSG_DATA(cm), sizeof gso);
          if (gso > 0) seg = std::size_t(gso);
        }
      const std::uint8_t* base = rx_bufs_.data() + std::size_t(i) * kRecvBufSize;
      for (std::size_t off = 0; off < total && std::size_t(count) < kMaxRxPackets; off += seg)
        rx_pkts_[count++] = {base + off, std::min(seg, total - off), std::size_t(i)};
    }
    if (count == 0 && n > 0) continue;
    return count;
  }
}

}  // namespace ngpeer

// One AF_PACKET socket bound to one interface: every frame that arrives there in, frames out.
//
// The socket runs in promiscuous mode (frames for the far side carry the far side's MAC), ignores
// its own outgoing frames (PACKET_IGNORE_OUTGOING, or they would loop back into the link) and uses
// PACKET_VNET_HDR so partial checksums and GSO super-packets are described (see offload.h).
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "netns/linkemu/offload.h"

namespace irohlab::linkemu {

struct SocketError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class PacketSocket {
 public:
  // Opens and binds; throws SocketError naming the interface on failure.
  explicit PacketSocket(const std::string& interface);
  ~PacketSocket();
  PacketSocket(const PacketSocket&) = delete;
  PacketSocket& operator=(const PacketSocket&) = delete;

  int fd() const { return fd_; }
  const std::string& interface() const { return interface_; }

  // One received frame (false when nothing is waiting). `frame` views an internal buffer valid
  // until the next call. `arrived_realtime_ns` is the kernel's receive timestamp (CLOCK_REALTIME,
  // SO_TIMESTAMPNS), 0 if the kernel gave none.
  bool receive(VnetHeader& vnet, std::span<const std::uint8_t>& frame,
               std::int64_t& arrived_realtime_ns);
  // Sends one complete frame; false when the kernel refused it (counted by the caller).
  bool send(std::span<const std::uint8_t> frame);
  // Frames the kernel dropped before we read them (PACKET_STATISTICS, cumulative).
  std::uint64_t kernel_drops();

 private:
  std::string interface_;
  int fd_ = -1;
  std::vector<std::uint8_t> buffer_;
  std::uint64_t kernel_drops_ = 0;
};

}  // namespace irohlab::linkemu

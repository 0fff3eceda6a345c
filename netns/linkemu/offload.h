// Turning what an AF_PACKET socket hands us into frames a receiver will accept.
//
// Between network namespaces the kernel skips work it expects hardware to do: a veth peer passes
// packets whose L4 checksum is only partial (CHECKSUM_PARTIAL) and, with GSO/TSO, super-packets of
// up to 64 KiB that a NIC would have cut into segments. Forwarded as they are, the first arrive
// with bad checksums and the second exceed every MTU. With PACKET_VNET_HDR the kernel describes
// both in a virtio_net_hdr; this unit finishes the job in software: it completes partial checksums
// and segments TCP (v4/v6) and UDP (UDP_SEGMENT, as QUIC stacks use) super-packets, so each frame
// that enters the link model is what a real wire would have carried.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "base/bytes.h"

namespace irohlab::linkemu {

// The fields of struct virtio_net_hdr (host byte order, as AF_PACKET uses on little-endian hosts).
struct VnetHeader {
  std::uint8_t flags = 0;
  std::uint8_t gso_type = 0;
  std::uint16_t hdr_len = 0;
  std::uint16_t gso_size = 0;
  std::uint16_t csum_start = 0;
  std::uint16_t csum_offset = 0;
};
inline constexpr std::size_t kVnetHeaderBytes = 10;

VnetHeader parse_vnet_header(std::span<const std::uint8_t> bytes);

struct OffloadCounters {
  std::uint64_t checksums_completed = 0;
  std::uint64_t super_packets_split = 0;  // GSO packets cut into segments
  std::uint64_t segments_made = 0;
  std::uint64_t unsupported_dropped = 0;  // a GSO kind we cannot segment (counted, dropped)
};

// The wire frames for one received frame: usually just the frame itself (with its checksum
// completed if it was partial), several segments for a GSO packet, nothing if unsupported.
std::vector<iroh::Bytes> wire_frames(const VnetHeader& vnet, std::span<const std::uint8_t> frame,
                                     OffloadCounters& counters);

// The Internet checksum (RFC 1071) of an IPv4/IPv6 TCP or UDP frame's L4 segment, pseudo-header
// included, written into the frame. Returns false for frames that are not TCP/UDP over IP.
bool fill_l4_checksum(std::span<std::uint8_t> frame);

// True when the frame's IP header (v4) and TCP/UDP checksums verify (tests and diagnostics).
bool l4_checksum_ok(std::span<const std::uint8_t> frame);

}  // namespace irohlab::linkemu

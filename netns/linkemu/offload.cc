// Software checksum completion and segmentation. See offload.h for why.
#include "netns/linkemu/offload.h"

#include <algorithm>
#include <cstring>
#include <optional>

namespace irohlab::linkemu {

namespace {

// virtio_net_hdr constants (linux/virtio_net.h), spelled out so the unit tests need no kernel
// headers.
constexpr std::uint8_t kNeedsCsum = 1;
constexpr std::uint8_t kGsoNone = 0;
constexpr std::uint8_t kGsoTcpV4 = 1;
constexpr std::uint8_t kGsoTcpV6 = 4;
constexpr std::uint8_t kGsoUdpL4 = 5;
constexpr std::uint8_t kGsoEcnBit = 0x80;

constexpr std::uint8_t kProtoTcp = 6;
constexpr std::uint8_t kProtoUdp = 17;

std::uint16_t get16(std::span<const std::uint8_t> b, std::size_t at) {
  return static_cast<std::uint16_t>(b[at] << 8 | b[at + 1]);
}
void put16(std::span<std::uint8_t> b, std::size_t at, std::uint16_t v) {
  b[at] = static_cast<std::uint8_t>(v >> 8);
  b[at + 1] = static_cast<std::uint8_t>(v);
}
std::uint32_t get32(std::span<const std::uint8_t> b, std::size_t at) {
  return std::uint32_t{get16(b, at)} << 16 | get16(b, at + 2);
}
void put32(std::span<std::uint8_t> b, std::size_t at, std::uint32_t v) {
  put16(b, at, static_cast<std::uint16_t>(v >> 16));
  put16(b, at + 2, static_cast<std::uint16_t>(v));
}

// One's-complement accumulation over big-endian 16-bit words (odd tail padded with zero).
std::uint64_t add_words(std::uint64_t sum, std::span<const std::uint8_t> b) {
  std::size_t i = 0;
  for (; i + 1 < b.size(); i += 2) sum += get16(b, i);
  if (i < b.size()) sum += std::uint64_t{b[i]} << 8;
  return sum;
}
std::uint16_t fold(std::uint64_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<std::uint16_t>(sum);
}

// Where the headers of an IP frame are. Only unfragmented TCP/UDP over IPv4, or over IPv6 without
// extension headers, qualify; everything else is forwarded untouched.
struct Layout {
  std::size_t l3 = 0;
  bool v6 = false;
  std::uint8_t proto = 0;
  std::size_t l4 = 0;
  std::size_t l4_header = 0;  // bytes of the TCP/UDP header
};

std::optional<Layout> layout_of(std::span<const std::uint8_t> f) {
  Layout l;
  if (f.size() < 14) return std::nullopt;
  std::uint16_t type = get16(f, 12);
  l.l3 = 14;
  if (type == 0x8100 || type == 0x88a8) {  // one VLAN tag
    if (f.size() < 18) return std::nullopt;
    type = get16(f, 16);
    l.l3 = 18;
  }
  if (type == 0x0800) {
    if (f.size() < l.l3 + 20 || (f[l.l3] >> 4) != 4) return std::nullopt;
    const std::size_t ihl = std::size_t{f[l.l3] & 0x0fu} * 4;
    const bool fragment = (get16(f, l.l3 + 6) & 0x3fff) != 0;  // MF or an offset
    if (ihl < 20 || fragment) return std::nullopt;
    l.proto = f[l.l3 + 9];
    l.l4 = l.l3 + ihl;
  } else if (type == 0x86dd) {
    if (f.size() < l.l3 + 40 || (f[l.l3] >> 4) != 6) return std::nullopt;
    l.v6 = true;
    l.proto = f[l.l3 + 6];
    l.l4 = l.l3 + 40;
  } else {
    return std::nullopt;
  }
  if (l.proto == kProtoTcp) {
    if (f.size() < l.l4 + 20) return std::nullopt;
    l.l4_header = static_cast<std::size_t>(f[l.l4 + 12] >> 4) * 4;
    if (l.l4_header < 20) return std::nullopt;
  } else if (l.proto == kProtoUdp) {
    l.l4_header = 8;
  } else {
    return std::nullopt;
  }
  if (f.size() < l.l4 + l.l4_header) return std::nullopt;
  return l;
}

std::size_t checksum_field(const Layout& l) { return l.l4 + (l.proto == kProtoTcp ? 16 : 6); }

// Sum of the pseudo-header for an L4 segment of `l4_len` bytes.
std::uint64_t pseudo_header_sum(std::span<const std::uint8_t> f, const Layout& l,
                                std::size_t l4_len) {
  std::uint64_t sum = 0;
  if (l.v6) {
    sum = add_words(sum, f.subspan(l.l3 + 8, 32));  // source + destination
    sum += (l4_len >> 16) + (l4_len & 0xffff);
  } else {
    sum = add_words(sum, f.subspan(l.l3 + 12, 8));
    sum += l4_len;
  }
  return sum + l.proto;
}

void fill_ipv4_header_checksum(std::span<std::uint8_t> f, const Layout& l) {
  const std::size_t ihl = l.l4 - l.l3;
  put16(f, l.l3 + 10, 0);
  put16(f, l.l3 + 10, static_cast<std::uint16_t>(~fold(add_words(0, f.subspan(l.l3, ihl)))));
}

bool fill_checksum(std::span<std::uint8_t> f, const Layout& l) {
  const std::size_t l4_len = f.size() - l.l4;
  put16(f, checksum_field(l), 0);
  std::uint16_t c = static_cast<std::uint16_t>(
      ~fold(add_words(pseudo_header_sum(f, l, l4_len), f.subspan(l.l4))));
  if (c == 0 && l.proto == kProtoUdp) c = 0xffff;  // 0 means "no checksum" in UDP
  put16(f, checksum_field(l), c);
  return true;
}

// CHECKSUM_PARTIAL: the field at csum_start+csum_offset holds the pseudo-header sum; the sum over
// [csum_start, end) folded and inverted completes it (what a NIC does).
bool complete_partial_checksum(const VnetHeader& v, std::span<std::uint8_t> f) {
  const std::size_t start = v.csum_start, field = std::size_t{v.csum_start} + v.csum_offset;
  if (start >= f.size() || field + 2 > f.size()) return false;
  std::uint16_t c = static_cast<std::uint16_t>(~fold(add_words(0, f.subspan(start))));
  if (c == 0) c = 0xffff;
  put16(f, field, c);
  return true;
}

std::vector<iroh::Bytes> segment(const VnetHeader& v, std::span<const std::uint8_t> frame,
                                 OffloadCounters& counters) {
  const std::uint8_t kind = v.gso_type & static_cast<std::uint8_t>(~kGsoEcnBit);
  const auto layout = layout_of(frame);
  const bool tcp_kind = kind == kGsoTcpV4 || kind == kGsoTcpV6;
  if (!layout || v.gso_size == 0 || (kind != kGsoUdpL4 && !tcp_kind) ||
      (tcp_kind && layout->proto != kProtoTcp) ||
      (kind == kGsoUdpL4 && layout->proto != kProtoUdp)) {
    ++counters.unsupported_dropped;
    return {};
  }
  const Layout& l = *layout;
  const std::size_t headers = l.l4 + l.l4_header;
  const std::size_t payload = frame.size() - headers;
  const std::size_t mss = v.gso_size;
  const std::size_t count = std::max<std::size_t>(1, (payload + mss - 1) / mss);
  const std::uint16_t ip_id = l.v6 ? 0 : get16(frame, l.l3 + 4);
  const std::uint32_t seq = l.proto == kProtoTcp ? get32(frame, l.l4 + 4) : 0;

  std::vector<iroh::Bytes> out;
  out.reserve(count);
  for (std::size_t i = 0; i < count; ++i) {
    const std::size_t offset = i * mss;
    const std::size_t chunk = std::min(mss, payload - std::min(payload, offset));
    iroh::Bytes seg(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(headers));
    seg.insert(seg.end(), frame.begin() + static_cast<std::ptrdiff_t>(headers + offset),
               frame.begin() + static_cast<std::ptrdiff_t>(headers + offset + chunk));
    std::span<std::uint8_t> s(seg);
    const std::size_t l4_len = l.l4_header + chunk;
    if (l.v6) {
      put16(s, l.l3 + 4, static_cast<std::uint16_t>(l4_len));
    } else {
      put16(s, l.l3 + 2, static_cast<std::uint16_t>(l.l4 - l.l3 + l4_len));
      put16(s, l.l3 + 4, static_cast<std::uint16_t>(ip_id + i));
      fill_ipv4_header_checksum(s, l);
    }
    if (l.proto == kProtoTcp) {
      put32(s, l.l4 + 4, seq + static_cast<std::uint32_t>(offset));
      std::uint8_t& flags = s[l.l4 + 13];
      if (i + 1 < count) flags &= static_cast<std::uint8_t>(~0x09);  // FIN, PSH: last only
      if (i > 0) flags &= static_cast<std::uint8_t>(~0x80);          // CWR: first only
    } else {
      put16(s, l.l4 + 4, static_cast<std::uint16_t>(l4_len));
    }
    fill_checksum(s, l);
    out.push_back(std::move(seg));
  }
  ++counters.super_packets_split;
  counters.segments_made += out.size();
  return out;
}

}  // namespace

VnetHeader parse_vnet_header(std::span<const std::uint8_t> b) {
  VnetHeader v;
  if (b.size() < kVnetHeaderBytes) return v;
  auto le16 = [&](std::size_t at) { return static_cast<std::uint16_t>(b[at] | b[at + 1] << 8); };
  v.flags = b[0];
  v.gso_type = b[1];
  v.hdr_len = le16(2);
  v.gso_size = le16(4);
  v.csum_start = le16(6);
  v.csum_offset = le16(8);
  return v;
}

std::vector<iroh::Bytes> wire_frames(const VnetHeader& vnet, std::span<const std::uint8_t> frame,
                                     OffloadCounters& counters) {
  if (vnet.gso_type != kGsoNone) return segment(vnet, frame, counters);
  iroh::Bytes copy(frame.begin(), frame.end());
  if ((vnet.flags & kNeedsCsum) && complete_partial_checksum(vnet, copy)) {
    ++counters.checksums_completed;
  }
  std::vector<iroh::Bytes> out;
  out.push_back(std::move(copy));
  return out;
}

bool fill_l4_checksum(std::span<std::uint8_t> frame) {
  const auto l = layout_of(frame);
  return l && fill_checksum(frame, *l);
}

bool l4_checksum_ok(std::span<const std::uint8_t> f) {
  const auto l = layout_of(f);
  if (!l) return false;
  if (!l->v6 && fold(add_words(0, f.subspan(l->l3, l->l4 - l->l3))) != 0xffff) return false;
  if (l->proto == kProtoUdp && get16(f, checksum_field(*l)) == 0) return !l->v6;  // v4: optional
  return fold(add_words(pseudo_header_sum(f, *l, f.size() - l->l4), f.subspan(l->l4))) == 0xffff;
}

}  // namespace irohlab::linkemu

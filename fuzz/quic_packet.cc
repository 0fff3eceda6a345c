// libFuzzer target: QUIC packet headers and packet protection (RFC 9000 §17, RFC 9001 §5).
//
// Input: one UDP datagram. It is split into coalesced packets (short headers assume an 8-byte DCID,
// iroh's CID length), and every packet with a packet number is run through unprotect with fixed
// Initial keys (RFC 9001 A.1's DCID, both directions). Properties checked:
//   - nothing crashes, whatever the input (sanitizers catch memory errors), and every error has a
//     reason;
//   - a successfully parsed header re-encodes to the same bytes: up to the Packet Number field for
//     protected packets, the whole packet for Retry and Version Negotiation;
//   - packets tile the datagram: each starts where the previous one ended;
//   - a packet that unprotects re-protects, with the same keys and header, to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>

#include "crypto/packet_protection.h"
#include "quic/packet.h"

namespace {

constexpr std::size_t kShortDcidLength = 8;

iroh::crypto::InitialKeys& keys() {
  static iroh::crypto::InitialKeys k = [] {
    const std::uint8_t dcid[] = {0x83, 0x94, 0xc8, 0xf0, 0x3e, 0x51, 0x57, 0x08};
    auto r = iroh::crypto::derive_initial_keys(iroh::ByteView(dcid, sizeof dcid));
    if (!r) __builtin_trap();
    return std::move(*r);
  }();
  return k;
}

void check_reencode(iroh::ByteView packet, const iroh::quic::ParsedHeader& p) {
  iroh::Bytes again;
  auto pn_offset = iroh::quic::encode_header(again, p.header);
  if (!pn_offset) __builtin_trap();
  if (*pn_offset != p.pn_offset) __builtin_trap();
  if (again.size() < p.pn_offset || packet.size() < p.pn_offset) __builtin_trap();
  if (std::memcmp(again.data(), packet.data(), p.pn_offset) != 0) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iroh;
  using namespace iroh::quic;
  const ByteView datagram(data, size);

  // Also exercise the single-packet parser and the RFC 8999 view directly.
  if (auto one = parse_header(datagram, kShortDcidLength); !one.ok()) {
    if (one.error().message.empty()) __builtin_trap();
  }
  (void)parse_invariants(datagram);

  const Datagram d = split_datagram(datagram, kShortDcidLength);
  if (d.packets.empty() && d.error.empty()) __builtin_trap();
  std::size_t expected_offset = 0;
  for (const ParsedHeader& p : d.packets) {
    if (p.offset != expected_offset) __builtin_trap();
    if (p.packet_length == 0 || p.offset + p.packet_length > size) __builtin_trap();
    expected_offset += p.packet_length;
    const ByteView packet = datagram.subspan(p.offset, p.packet_length);
    check_reencode(packet, p);
    if (!has_packet_number(p.header.type)) continue;

    for (crypto::PacketProtection* k : {&keys().client, &keys().server}) {
      Bytes work(packet.begin(), packet.end());
      auto opened = unprotect_parsed(work, p, std::nullopt, *k);
      if (!opened) {
        if (opened.error().message.empty()) __builtin_trap();
        continue;
      }
      // Authenticated: re-protecting the same header and payload reproduces the packet.
      const Bytes payload(opened->payload.begin(), opened->payload.end());
      auto again = protect_packet(opened->header, payload, *k);
      if (!again) __builtin_trap();
      if (again->size() != packet.size() ||
          std::memcmp(again->data(), packet.data(), packet.size()) != 0) {
        __builtin_trap();
      }
    }
  }
  return 0;
}

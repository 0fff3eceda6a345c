// QUIC packet headers and packet protection. See packet.h.
#include "quic/packet.h"

#include <algorithm>
#include <bit>
#include <cstdio>

#include "crypto/initial_secrets.h"
#include "quic/reader.h"
#include "quic/varint.h"

namespace iroh::quic {
namespace {

std::string hex32(std::uint32_t v) {
  char buf[11];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

// Long packet types of QUIC v1 (RFC 9000 Table 5); draft-29 uses the same values.
std::uint8_t long_type_bits(PacketType t) {
  switch (t) {
    case PacketType::kInitial:
      return 0;
    case PacketType::kZeroRtt:
      return 1;
    case PacketType::kHandshake:
      return 2;
    default:
      return 3;  // kRetry
  }
}

bool valid_varint_size(std::uint8_t s) { return s == 0 || s == 1 || s == 2 || s == 4 || s == 8; }

// Appends `value` as a varint of exactly `size` bytes (0 = minimal). RFC 9000 §16: any length
// whose range holds the value is valid. Returns false if it does not fit.
bool put_varint(Bytes& out, std::uint64_t value, std::uint8_t size) {
  if (value > kVarintMax) return false;
  if (size == 0) {
    encode_varint(out, value);
    return true;
  }
  if (!valid_varint_size(size) || varint_size(value) > size) return false;
  const std::uint8_t prefix = size == 1 ? 0x00 : size == 2 ? 0x40 : size == 4 ? 0x80 : 0xc0;
  for (std::size_t i = 0; i < size; ++i) {
    auto byte = static_cast<std::uint8_t>(value >> (8 * (size - 1 - i)));
    if (i == 0) byte |= prefix;
    out.push_back(byte);
  }
  return true;
}

// Size of the varint starting at `b` (its two-bit prefix), or 0 if none.
std::uint8_t varint_len_at(ByteView b) {
  return b.empty() ? 0 : static_cast<std::uint8_t>(1u << (b[0] >> 6));
}

void put_u32(Bytes& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<std::uint8_t>(v >> (8 * i)));
}

void put_cid(Bytes& out, const ConnectionId& cid) {
  out.push_back(static_cast<std::uint8_t>(cid.size()));
  append(out, cid.view());
}

Result<ConnectionId> read_cid(Reader& r, const char* which) {
  auto len = r.u8(which);
  if (!len) return len.error();
  if (*len > kMaxCidLength) {
    return make_error(std::string(which) + " of " + std::to_string(*len) +
                      " bytes exceeds the QUIC v1 maximum of 20");
  }
  auto bytes = r.bytes(*len, which);
  if (!bytes) return bytes.error();
  return ConnectionId::from(*bytes);
}

}  // namespace

bool is_supported_version(std::uint32_t version) {
  return version == kVersion1 || version == kVersionDraft29;
}

Result<ConnectionId> ConnectionId::from(ByteView bytes) {
  if (bytes.size() > kMaxCidLength) {
    return make_error("connection ID of " + std::to_string(bytes.size()) +
                      " bytes exceeds the maximum of 20");
  }
  ConnectionId cid;
  std::copy(bytes.begin(), bytes.end(), cid.data_.begin());
  cid.len_ = static_cast<std::uint8_t>(bytes.size());
  return cid;
}

const char* packet_type_name(PacketType type) {
  switch (type) {
    case PacketType::kInitial:
      return "Initial";
    case PacketType::kZeroRtt:
      return "0-RTT";
    case PacketType::kHandshake:
      return "Handshake";
    case PacketType::kRetry:
      return "Retry";
    case PacketType::kVersionNegotiation:
      return "Version Negotiation";
    case PacketType::kOneRtt:
      return "1-RTT";
  }
  return "?";
}

// ---- packet numbers ----

std::size_t packet_number_length(std::uint64_t full_pn,
                                 std::optional<std::uint64_t> largest_acked) {
  // RFC 9000 A.2: num_unacked = full_pn - largest_acked (or full_pn + 1); the encoding must
  // represent at least twice that range, i.e. bit_width(num_unacked) + 1 bits.
  // (A largest_acked at or above full_pn is a caller error; treat it as distance 1.)
  const std::uint64_t num_unacked =
      largest_acked ? (*largest_acked < full_pn ? full_pn - *largest_acked : 1) : full_pn + 1;
  const std::size_t bits = static_cast<std::size_t>(std::bit_width(num_unacked)) + 1;
  return std::clamp<std::size_t>((bits + 7) / 8, 1, kMaxPacketNumberLength);
}

std::uint64_t decode_packet_number(std::optional<std::uint64_t> largest_pn,
                                   std::uint64_t truncated_pn, std::size_t pn_length) {
  // RFC 9000 Appendix A.3, with the comparisons rearranged so nothing underflows.
  pn_length = std::clamp<std::size_t>(pn_length, 1, kMaxPacketNumberLength);
  const std::uint64_t expected = largest_pn ? *largest_pn + 1 : 0;
  const std::uint64_t win = std::uint64_t{1} << (8 * pn_length);
  const std::uint64_t hwin = win / 2;
  const std::uint64_t mask = win - 1;
  const std::uint64_t candidate = (expected & ~mask) | (truncated_pn & mask);
  // candidate <= expected - hwin
  if (candidate + hwin <= expected && candidate < (std::uint64_t{1} << 62) - win) {
    return candidate + win;
  }
  // candidate > expected + hwin
  if (candidate > expected + hwin && candidate >= win) return candidate - win;
  return candidate;
}

// ---- header codec ----

std::uint8_t first_byte(const PacketHeader& h) {
  const std::uint8_t pn_bits = static_cast<std::uint8_t>((h.pn_length - 1) & 0x03);
  const std::uint8_t reserved = static_cast<std::uint8_t>(h.reserved_bits & 0x03);
  switch (h.type) {
    case PacketType::kVersionNegotiation:
      // §17.2.1: Header Form = 1, then 7 unused bits.
      return static_cast<std::uint8_t>(0x80 | (h.unused_bits & 0x7f));
    case PacketType::kRetry:
      // §17.2.5: 1, fixed 1, type 3, 4 unused bits.
      return static_cast<std::uint8_t>(0xc0 | (3 << 4) | (h.unused_bits & 0x0f));
    case PacketType::kOneRtt:
      // §17.3.1: 0, fixed 1, spin, 2 reserved, key phase, 2-bit packet number length.
      return static_cast<std::uint8_t>(0x40 | (h.spin_bit ? 0x20 : 0) | (reserved << 3) |
                                       (h.key_phase ? 0x04 : 0) | pn_bits);
    default:
      // §17.2: 1, fixed 1, 2-bit type, 2 reserved, 2-bit packet number length.
      return static_cast<std::uint8_t>(0xc0 | (long_type_bits(h.type) << 4) | (reserved << 2) |
                                       pn_bits);
  }
}

Result<std::size_t> encode_header(Bytes& out, const PacketHeader& h) {
  if (has_packet_number(h.type)) {
    if (h.pn_length < 1 || h.pn_length > kMaxPacketNumberLength) {
      return make_error("packet number length must be 1..4, got " + std::to_string(h.pn_length));
    }
    if (h.reserved_bits > 3) return make_error("reserved bits must fit in 2 bits");
  }
  if (is_long_header(h.type) && h.type != PacketType::kVersionNegotiation &&
      h.version == kVersionNegotiationVersion) {
    return make_error("version 0 is reserved for Version Negotiation");
  }
  if (!h.token.empty() && h.type != PacketType::kInitial && h.type != PacketType::kRetry) {
    return make_error(std::string(packet_type_name(h.type)) + " packets carry no token");
  }
  if (!valid_varint_size(h.length_size) || !valid_varint_size(h.token_length_size)) {
    return make_error("varint field size must be 0, 1, 2, 4 or 8");
  }

  Bytes tmp;  // built aside so that nothing is appended on error
  tmp.reserve(64 + h.token.size() + 4 * h.supported_versions.size());
  tmp.push_back(first_byte(h));
  if (h.type == PacketType::kOneRtt) {
    // §17.3.1: the DCID length is implicit.
    append(tmp, h.dcid.view());
  } else {
    put_u32(tmp, h.type == PacketType::kVersionNegotiation ? 0 : h.version);
    put_cid(tmp, h.dcid);
    put_cid(tmp, h.scid);
    if (h.type == PacketType::kVersionNegotiation) {
      for (std::uint32_t v : h.supported_versions) put_u32(tmp, v);
      append(out, tmp);
      return tmp.size();
    }
    if (h.type == PacketType::kRetry) {
      append(tmp, h.token);
      append(tmp, h.retry_integrity_tag);
      append(out, tmp);
      return tmp.size();
    }
    if (h.type == PacketType::kInitial) {
      if (!put_varint(tmp, h.token.size(), h.token_length_size)) {
        return make_error("token length does not fit its varint size");
      }
      append(tmp, h.token);
    }
    if (!put_varint(tmp, h.length, h.length_size)) {
      return make_error("Length " + std::to_string(h.length) + " does not fit its varint size");
    }
  }
  const std::size_t pn_offset = tmp.size();
  for (std::size_t i = h.pn_length; i-- > 0;) {
    tmp.push_back(static_cast<std::uint8_t>(h.packet_number >> (8 * i)));
  }
  append(out, tmp);
  return pn_offset;
}

Result<LongHeaderInvariants> parse_invariants(ByteView data) {
  // RFC 8999 §5.1: form bit, 7 version-specific bits, version, DCID len + DCID, SCID len + SCID.
  Reader r(data);
  auto first = r.u8("first byte");
  if (!first) return first.error();
  if (!(*first & 0x80)) return make_error("not a long header");
  LongHeaderInvariants inv;
  auto version = r.u32be("version");
  if (!version) return version.error();
  inv.version = *version;
  auto dlen = r.u8("DCID length");
  if (!dlen) return dlen.error();
  auto dcid = r.bytes(*dlen, "DCID");
  if (!dcid) return dcid.error();
  auto slen = r.u8("SCID length");
  if (!slen) return slen.error();
  auto scid = r.bytes(*slen, "SCID");
  if (!scid) return scid.error();
  inv.dcid = *dcid;
  inv.scid = *scid;
  return inv;
}

Result<ParsedHeader> parse_header(ByteView data, std::size_t short_dcid_length) {
  Reader r(data);
  ParsedHeader p;
  PacketHeader& h = p.header;
  auto first_r = r.u8("first byte");
  if (!first_r) return first_r.error();
  const std::uint8_t first = *first_r;

  if (!(first & 0x80)) {
    // §17.3.1 short header.
    if (!(first & 0x40)) return make_error("short header with the fixed bit cleared");
    if (short_dcid_length > kMaxCidLength) return make_error("short-header DCID length > 20");
    h.type = PacketType::kOneRtt;
    auto dcid = r.bytes(short_dcid_length, "short-header DCID");
    if (!dcid) return dcid.error();
    h.dcid = *ConnectionId::from(*dcid);
    if (r.empty()) return make_error("truncated short header: no packet number");
    h.spin_bit = (first & 0x20) != 0;
    h.reserved_bits = (first >> 3) & 0x03;
    h.key_phase = (first & 0x04) != 0;
    h.pn_length = static_cast<std::uint8_t>((first & 0x03) + 1);
    p.pn_offset = r.position();
    p.packet_length = data.size();
    return p;
  }

  // §17.2 long header.
  auto version = r.u32be("version");
  if (!version) return version.error();
  h.version = *version;
  auto dcid = read_cid(r, "DCID");
  if (!dcid) return dcid.error();
  h.dcid = *dcid;
  auto scid = read_cid(r, "SCID");
  if (!scid) return scid.error();
  h.scid = *scid;

  if (h.version == kVersionNegotiationVersion) {
    // §17.2.1. The fixed bit is not checked: it is one of the unused bits here.
    h.type = PacketType::kVersionNegotiation;
    h.unused_bits = first & 0x7f;
    if (r.remaining() % 4 != 0) {
      return make_error("Version Negotiation: " + std::to_string(r.remaining()) +
                        " trailing bytes are not a whole number of versions");
    }
    while (!r.empty()) h.supported_versions.push_back(*r.u32be());
    p.pn_offset = p.packet_length = data.size();
    return p;
  }
  if (!is_supported_version(h.version)) {
    return make_error("unsupported QUIC version " + hex32(h.version));
  }
  if (!(first & 0x40)) return make_error("long header with the fixed bit cleared");

  switch ((first >> 4) & 0x03) {
    case 0:
      h.type = PacketType::kInitial;
      break;
    case 1:
      h.type = PacketType::kZeroRtt;
      break;
    case 2:
      h.type = PacketType::kHandshake;
      break;
    default:
      h.type = PacketType::kRetry;
      break;
  }

  if (h.type == PacketType::kRetry) {
    // §17.2.5: Retry Token runs to the 16-byte Retry Integrity Tag at the end.
    h.unused_bits = first & 0x0f;
    if (r.remaining() < 16) {
      return make_error("Retry: " + std::to_string(r.remaining()) +
                        " bytes after the SCID, need at least the 16-byte integrity tag");
    }
    auto token = r.bytes(r.remaining() - 16, "Retry token");
    h.token.assign(token->begin(), token->end());
    auto tag = r.array<16>("Retry integrity tag");
    h.retry_integrity_tag = *tag;
    p.pn_offset = p.packet_length = data.size();
    return p;
  }

  if (h.type == PacketType::kInitial) {
    h.token_length_size = varint_len_at(r.peek_rest());
    auto token_len = r.varint("token length");
    if (!token_len) return token_len.error();
    if (*token_len > r.remaining()) {
      return make_error("Initial token length " + std::to_string(*token_len) + " exceeds the " +
                        std::to_string(r.remaining()) + " bytes left");
    }
    auto token = r.bytes(static_cast<std::size_t>(*token_len), "token");
    h.token.assign(token->begin(), token->end());
  }
  h.length_size = varint_len_at(r.peek_rest());
  auto length = r.varint("Length");
  if (!length) return length.error();
  if (*length > r.remaining()) {
    return make_error(std::string(packet_type_name(h.type)) + " Length " + std::to_string(*length) +
                      " exceeds the " + std::to_string(r.remaining()) +
                      " bytes left in the datagram");
  }
  if (*length == 0) return make_error("Length 0 leaves no room for a packet number");
  h.length = *length;
  h.reserved_bits = (first >> 2) & 0x03;
  h.pn_length = static_cast<std::uint8_t>((first & 0x03) + 1);
  p.pn_offset = r.position();
  p.packet_length = p.pn_offset + static_cast<std::size_t>(*length);
  return p;
}

Datagram split_datagram(ByteView datagram, std::size_t short_dcid_length) {
  Datagram d;
  std::size_t offset = 0;
  while (offset < datagram.size()) {
    auto parsed = parse_header(datagram.subspan(offset), short_dcid_length);
    if (!parsed) {
      d.error = "packet at offset " + std::to_string(offset) + ": " + parsed.error().message;
      break;
    }
    if (!d.packets.empty() && !(parsed->header.dcid == d.packets.front().header.dcid)) {
      d.error =
          "packet at offset " + std::to_string(offset) + ": DCID differs from the first packet's";
      break;
    }
    parsed->offset = offset;
    offset += parsed->packet_length;
    d.packets.push_back(std::move(*parsed));
  }
  if (datagram.empty()) d.error = "empty datagram";
  return d;
}

// ---- protection ----

Result<std::size_t> seal_packet(std::span<std::uint8_t> buf, std::size_t pn_offset,
                                std::uint64_t full_pn, std::size_t payload_length,
                                crypto::PacketProtection& keys, std::uint32_t path_id) {
  if (buf.empty() || pn_offset == 0 || pn_offset >= buf.size()) {
    return make_error("seal: packet number offset outside the buffer");
  }
  const std::size_t pn_len = (buf[0] & 0x03) + 1;
  const std::size_t header_len = pn_offset + pn_len;
  if (buf.size() < header_len || buf.size() - header_len < payload_length ||
      buf.size() - header_len - payload_length < crypto::kAeadTagLength) {
    return make_error("seal: buffer too small for header, payload and tag");
  }
  // RFC 9001 §5.4.2: the sample starts 4 bytes after the packet number field's start and is 16
  // bytes long; with the 16-byte tag that needs pn_len + payload_length >= 4.
  if (pn_len + payload_length < crypto::kHpSampleOffset) {
    return make_error("seal: payload of " + std::to_string(payload_length) +
                      " bytes too short for the header-protection sample (need " +
                      std::to_string(crypto::kHpSampleOffset - pn_len) + ")");
  }
  const std::size_t total = header_len + payload_length + crypto::kAeadTagLength;
  auto& aead = keys.aead();
  auto sealed =
      aead.seal_with_nonce(ByteView(buf.data(), header_len),
                           buf.subspan(header_len, payload_length + crypto::kAeadTagLength),
                           crypto::path_packet_nonce(aead.iv(), path_id, full_pn));
  if (!sealed) return sealed.error();
  auto hp = keys.header_protection().apply(buf.first(total), pn_offset);
  if (!hp) return hp.error();
  return total;
}

Result<Bytes> protect_packet(const PacketHeader& h, ByteView payload,
                             crypto::PacketProtection& keys, std::uint32_t path_id) {
  if (!has_packet_number(h.type)) {
    return make_error(std::string(packet_type_name(h.type)) + " packets are not protected");
  }
  if (h.packet_number > kMaxPacketNumber) return make_error("packet number exceeds 2^62 - 1");
  PacketHeader hdr = h;
  if (is_long_header(h.type)) {
    hdr.length = hdr.pn_length + payload.size() + crypto::kAeadTagLength;
  }
  Bytes out;
  out.reserve(64 + h.token.size() + payload.size() + crypto::kAeadTagLength);
  auto pn_offset = encode_header(out, hdr);
  if (!pn_offset) return pn_offset.error();
  append(out, payload);
  out.resize(out.size() + crypto::kAeadTagLength);
  auto n = seal_packet(out, *pn_offset, h.packet_number, payload.size(), keys, path_id);
  if (!n) return n.error();
  return out;
}

Result<OpenedPacket> remove_header_protection(std::span<std::uint8_t> packet,
                                              const ParsedHeader& parsed,
                                              std::optional<std::uint64_t> largest_pn,
                                              crypto::HeaderProtection& hp) {
  if (!has_packet_number(parsed.header.type)) {
    return make_error(std::string(packet_type_name(parsed.header.type)) +
                      " packets carry no protected payload");
  }
  if (packet.size() < parsed.packet_length || parsed.pn_offset >= parsed.packet_length) {
    return make_error("unprotect: packet shorter than its parsed length");
  }
  std::span<std::uint8_t> pkt = packet.first(parsed.packet_length);
  auto pn_len = hp.remove(pkt, parsed.pn_offset);
  if (!pn_len) return pn_len.error();

  OpenedPacket o;
  o.header = parsed.header;
  const std::uint8_t first = pkt[0];
  o.header.pn_length = static_cast<std::uint8_t>(*pn_len);
  if (parsed.header.type == PacketType::kOneRtt) {
    o.header.reserved_bits = (first >> 3) & 0x03;
    o.header.key_phase = (first & 0x04) != 0;
    o.header.spin_bit = (first & 0x20) != 0;
  } else {
    o.header.reserved_bits = (first >> 2) & 0x03;
  }
  std::uint64_t truncated = 0;
  for (std::size_t i = 0; i < *pn_len; ++i) {
    truncated = (truncated << 8) | pkt[parsed.pn_offset + i];
  }
  o.header.packet_number = decode_packet_number(largest_pn, truncated, *pn_len);
  o.header_length = parsed.pn_offset + *pn_len;
  o.packet_length = parsed.packet_length;
  o.payload = pkt.subspan(o.header_length);
  return o;
}

Result<void> decrypt_payload(std::span<std::uint8_t> packet, OpenedPacket& opened,
                             crypto::Aead& aead, std::uint32_t path_id) {
  if (packet.size() < opened.header_length + opened.payload.size() ||
      opened.payload.data() != packet.data() + opened.header_length) {
    return make_error("decrypt: payload is not inside the packet buffer after its header");
  }
  auto n = aead.open_with_nonce(
      ByteView(packet.data(), opened.header_length), opened.payload,
      crypto::path_packet_nonce(aead.iv(), path_id, opened.header.packet_number));
  if (!n) return n.error();
  opened.payload = opened.payload.first(*n);
  return {};
}

Result<OpenedPacket> unprotect_parsed(std::span<std::uint8_t> packet, const ParsedHeader& parsed,
                                      std::optional<std::uint64_t> largest_pn,
                                      crypto::PacketProtection& keys) {
  auto opened = remove_header_protection(packet, parsed, largest_pn, keys.header_protection());
  if (!opened) return opened.error();
  if (auto ok = decrypt_payload(packet, *opened, keys.aead()); !ok) return ok.error();
  return std::move(*opened);
}

Result<OpenedPacket> unprotect_packet(std::span<std::uint8_t> data, std::size_t short_dcid_length,
                                      std::optional<std::uint64_t> largest_pn,
                                      crypto::PacketProtection& keys) {
  auto parsed = parse_header(data, short_dcid_length);
  if (!parsed) return parsed.error();
  return unprotect_parsed(data, *parsed, largest_pn, keys);
}

Result<Bytes> encode_retry(const PacketHeader& h, ByteView original_dcid) {
  if (h.type != PacketType::kRetry) return make_error("encode_retry: not a Retry header");
  Bytes out;
  auto n = encode_header(out, h);
  if (!n) return n.error();
  const std::size_t body = out.size() - crypto::kRetryIntegrityTagLength;
  auto tag = crypto::retry_integrity_tag(original_dcid, ByteView(out).first(body));
  if (!tag) return tag.error();
  std::copy(tag->begin(), tag->end(), out.begin() + static_cast<std::ptrdiff_t>(body));
  return out;
}

}  // namespace iroh::quic

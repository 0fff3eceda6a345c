// QUIC packet headers and packet protection (RFC 9000 §17, RFC 9001 §5).
//
// Layers, bottom to top:
//   1. Packet numbers: length choice (RFC 9000 §17.1, Appendix A.2) and reconstruction from a
//      truncated value (Appendix A.3).
//   2. Header codec: encode_header() / parse_header() for every QUIC v1 packet form — long header
//      Initial (with token), 0-RTT, Handshake, Retry (§17.2.1–§17.2.5), Version Negotiation
//      (§17.2.1) and the 1-RTT short header (§17.3.1) — and split_datagram() for coalesced packets
//      (§12.2). parse_header() works on a still-protected packet: the bits under header protection
//      (reserved bits, packet number length, key phase) and the packet number are not yet readable
//      there; it finds the packet's extent and the offset of the Packet Number field.
//   3. Protection: protect_packet() / seal_packet() build a packet, encrypt its payload and apply
//      header protection; unprotect_packet() removes header protection, reconstructs the packet
//      number and decrypts (RFC 9001 §5.3–§5.4).
//
// Rules enforced on input (every violation is an Error, never a crash):
//   - connection IDs are at most 20 bytes (§17.2: "endpoints that receive a version 1 long header
//     with a value larger than 20 MUST drop the packet");
//   - the fixed bit (0x40) must be 1 on every packet except Version Negotiation (§17.2, §17.3.1).
//   iroh
//     does not negotiate grease_quic_bit and drops packets with it cleared (iroh-wire spec §4.1);
//     the encoder always sets it;
//   - long headers carry QUIC v1 (0x00000001) or draft-29 (0xff00001d, same layout); other
//     versions are reported as unsupported (parse_invariants() still reads their CIDs so a server
//     can answer with Version Negotiation, RFC 8999 §5.1);
//   - Length and Token Length must fit in the datagram.
// Reserved bits that are non-zero after removing protection are reported (header.reserved_bits),
// not rejected: RFC 9000 §17.2 makes that a connection error (PROTOCOL_VIOLATION) only after the
// packet authenticated, which is the engine's decision.
//
// Multipath: draft-ietf-quic-multipath changes only the AEAD nonce of 1-RTT packets —
// IV ⊕ (path id, 32-bit big-endian ‖ packet number, 64-bit big-endian), confirmed against rustls'
// for_path nonce and on the wire with Rust iroh (docs/ARCHITECTURE.md). seal_packet(),
// protect_packet() and decrypt_payload() take the path id; header protection is unchanged.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "crypto/packet_protection.h"

namespace iroh::quic {

inline constexpr std::uint32_t kVersion1 = 0x00000001;
inline constexpr std::uint32_t kVersionDraft29 = 0xff00001d;
inline constexpr std::uint32_t kVersionNegotiationVersion = 0;
inline constexpr std::size_t kMaxCidLength = 20;
inline constexpr std::size_t kMaxPacketNumberLength = 4;
inline constexpr std::uint64_t kMaxPacketNumber = (std::uint64_t{1} << 62) - 1;

// Is `version` one whose long-header layout we parse (v1 and draft-29)?
bool is_supported_version(std::uint32_t version);

// A connection ID of 0..20 bytes, stored inline.
class ConnectionId {
 public:
  ConnectionId() = default;
  // Error if longer than 20 bytes.
  static Result<ConnectionId> from(ByteView bytes);

  ByteView view() const { return {data_.data(), len_}; }
  std::size_t size() const { return len_; }
  bool empty() const { return len_ == 0; }
  bool operator==(const ConnectionId&) const = default;

 private:
  ByteArray<kMaxCidLength> data_{};  // bytes past len_ stay zero, so == can compare the arrays
  std::uint8_t len_ = 0;
};

enum class PacketType : std::uint8_t {
  kInitial,             // long, type 0x0 (§17.2.2)
  kZeroRtt,             // long, type 0x1 (§17.2.3)
  kHandshake,           // long, type 0x2 (§17.2.4)
  kRetry,               // long, type 0x3 (§17.2.5)
  kVersionNegotiation,  // long, version 0 (§17.2.1)
  kOneRtt,              // short header (§17.3.1)
};
const char* packet_type_name(PacketType type);
inline bool is_long_header(PacketType t) { return t != PacketType::kOneRtt; }
// Initial, 0-RTT, Handshake and 1-RTT packets carry a packet number and a protected payload.
inline bool has_packet_number(PacketType t) {
  return t != PacketType::kRetry && t != PacketType::kVersionNegotiation;
}

struct PacketHeader {
  PacketType type = PacketType::kOneRtt;
  std::uint32_t version = kVersion1;  // long headers (VN: always 0 on the wire)
  ConnectionId dcid;
  ConnectionId scid;  // long headers only
  // Initial: Token (§17.2.2). Retry: Retry Token (§17.2.5). Must be empty for other types.
  Bytes token;
  // Version Negotiation: the Supported Version list (§17.2.1).
  std::vector<std::uint32_t> supported_versions;
  // Retry: the Retry Integrity Tag (RFC 9001 §5.8).
  ByteArray<16> retry_integrity_tag{};
  // Unused bits of the first byte: 7 for Version Negotiation (0x40 SHOULD be set, §17.2.1), 4 for
  // Retry (§17.2.5). Ignored for other types.
  std::uint8_t unused_bits = 0;
  // Initial/0-RTT/Handshake: the Length field = packet number + payload (incl. AEAD tag) bytes.
  // protect_packet() computes it.
  std::uint64_t length = 0;
  // Encoded sizes of the Token Length and Length varints: 0 = minimal, else 1, 2, 4 or 8. RFC 9000
  // §16 allows longer encodings (RFC 9001 A.3 sends Length 117 in two bytes); a parse records what
  // it saw so that re-encoding reproduces the input byte for byte.
  std::uint8_t token_length_size = 0;
  std::uint8_t length_size = 0;
  // Fields under header protection (RFC 9001 §5.4.1). When encoding they are written as given.
  // parse_header() copies whatever (still masked) bits it finds; unprotect_packet() returns the
  // real values.
  std::uint8_t reserved_bits = 0;  // 2 bits; MUST be 0 (RFC 9000 §17.2, §17.3.1)
  std::uint8_t pn_length = 1;      // 1..4 bytes
  bool spin_bit = false;           // short header (§17.4)
  bool key_phase = false;          // short header (RFC 9001 §6)
  // Encoding: the full packet number (its low pn_length bytes are written).
  // unprotect_packet(): the reconstructed full packet number. parse_header(): 0 (still protected).
  std::uint64_t packet_number = 0;

  bool operator==(const PacketHeader&) const = default;
};

// ---- packet numbers (RFC 9000 §17.1, Appendix A) ----

// Bytes needed to send `full_pn` (RFC 9000 Appendix A.2): enough bits to represent more than twice
// the distance to the largest acknowledged packet (or full_pn + 1 if nothing was acknowledged yet),
// i.e. the distance must be < 2^(8·len − 1). Capped at 4 (callers must keep fewer than 2^31
// packets in flight).
std::size_t packet_number_length(std::uint64_t full_pn, std::optional<std::uint64_t> largest_acked);

// Reconstructs a packet number from its `pn_length`-byte truncation (RFC 9000 Appendix A.3): the
// value closest to largest_pn + 1 whose low bits match. `largest_pn` is the largest packet number
// successfully processed in this space (nullopt before the first: expected = 0).
std::uint64_t decode_packet_number(std::optional<std::uint64_t> largest_pn,
                                   std::uint64_t truncated_pn, std::size_t pn_length);

// ---- header codec (RFC 9000 §17) ----

// The first byte of the header as encode_header() writes it.
std::uint8_t first_byte(const PacketHeader& h);

// Appends the header to `out` and returns the offset (from the start of this header) of the
// Packet Number field. For Initial/0-RTT/Handshake/1-RTT the header ends with the packet number
// (low pn_length bytes of h.packet_number); for Version Negotiation and Retry the whole packet is
// written (Retry with h.retry_integrity_tag as given; see encode_retry()) and the returned offset
// is its size. Errors (nothing appended) on out-of-range fields.
Result<std::size_t> encode_header(Bytes& out, const PacketHeader& h);

struct ParsedHeader {
  PacketHeader header;
  std::size_t offset = 0;         // where the packet starts in the datagram (split_datagram)
  std::size_t pn_offset = 0;      // offset of the Packet Number field from the packet start;
                                  // = packet_length for Retry and Version Negotiation
  std::size_t packet_length = 0;  // bytes the packet occupies: long headers with a Length field
                                  // end there; the others run to the end of the datagram
};

// Parses the header of the (protected) packet at the start of `data`. A short header's DCID
// length is not on the wire: it is `short_dcid_length`, the length of the CIDs this endpoint
// issues (iroh: 8).
Result<ParsedHeader> parse_header(ByteView data, std::size_t short_dcid_length);

// RFC 8999 §5.1 version-independent view of a long header: any version, CIDs up to 255 bytes.
struct LongHeaderInvariants {
  std::uint32_t version = 0;
  ByteView dcid;
  ByteView scid;
};
Result<LongHeaderInvariants> parse_invariants(ByteView data);

// The packets of a UDP datagram (RFC 9000 §12.2). Packets are parsed until the datagram ends, a
// packet without a Length field (short header, Retry, VN) consumes the rest, or a packet fails to
// parse or has a different DCID from the first (RFC 9000 §12.2: such packets SHOULD be ignored).
// The packets before that point are returned; `error` says why the rest was dropped (empty if
// nothing was).
struct Datagram {
  std::vector<ParsedHeader> packets;
  std::string error;
};
Datagram split_datagram(ByteView datagram, std::size_t short_dcid_length);

// ---- protection (RFC 9001 §5) ----

// Builds a whole protected packet: header (with Length computed for long headers), payload
// encrypted with keys.aead() under the nonce of h.packet_number, header protection applied.
// h.type must carry a packet number. The payload plus the packet number must be at least 4 bytes
// so that the header-protection sample exists (RFC 9001 §5.4.2); callers pad with PADDING frames.
// `path_id`: the multipath path of a 1-RTT packet, mixed into the AEAD nonce (draft multipath;
// path 0 gives RFC 9001's nonce, so it is the default and the value for long headers).
Result<Bytes> protect_packet(const PacketHeader& h, ByteView payload,
                             crypto::PacketProtection& keys, std::uint32_t path_id = 0);

// In-place variant for the send path. `buf` holds the unprotected header ending with its packet
// number field (which starts at `pn_offset`; its length is read from buf[0]), then
// `payload_length` bytes of payload, then at least 16 bytes of room for the tag. A long header's
// Length field must already be correct. Returns the protected packet's size.
Result<std::size_t> seal_packet(std::span<std::uint8_t> buf, std::size_t pn_offset,
                                std::uint64_t full_pn, std::size_t payload_length,
                                crypto::PacketProtection& keys, std::uint32_t path_id = 0);

struct OpenedPacket {
  PacketHeader header;              // HP removed; packet_number reconstructed
  std::size_t header_length = 0;    // pn_offset + pn_length (the AEAD associated data)
  std::size_t packet_length = 0;    // bytes consumed, as in ParsedHeader
  std::span<std::uint8_t> payload;  // decrypted in place, tag stripped
};

// Parses, removes header protection, reconstructs the packet number against `largest_pn` and
// decrypts the packet at the start of `data` in place. On any failure the packet's bytes in `data`
// may have been modified (header protection removed, ciphertext overwritten): keep a copy if a
// second attempt (e.g. with the next key phase) is wanted.
Result<OpenedPacket> unprotect_packet(std::span<std::uint8_t> data, std::size_t short_dcid_length,
                                      std::optional<std::uint64_t> largest_pn,
                                      crypto::PacketProtection& keys);
// The same, for a packet already parsed (e.g. by split_datagram()); `packet` starts at the packet
// and is at least parsed.packet_length bytes.
Result<OpenedPacket> unprotect_parsed(std::span<std::uint8_t> packet, const ParsedHeader& parsed,
                                      std::optional<std::uint64_t> largest_pn,
                                      crypto::PacketProtection& keys);

// The two halves of unprotect_parsed(), for callers that must see the unprotected header before
// choosing the AEAD key. The 1-RTT key phase bit is under header protection and the header
// protection key does not change on key update (RFC 9001 §6.1), so a receiver removes it with the
// current keys' HeaderProtection, reads header.key_phase, and then decrypts with the current or
// the next generation's Aead (RFC 9001 §6.3) — no trial decryption needed.
//
// remove_header_protection(): removes header protection in place and reconstructs the packet
// number; the returned payload span is still ciphertext || tag.
Result<OpenedPacket> remove_header_protection(std::span<std::uint8_t> packet,
                                              const ParsedHeader& parsed,
                                              std::optional<std::uint64_t> largest_pn,
                                              crypto::HeaderProtection& hp);
// decrypt_payload(): opens `opened.payload` in place (AAD = the `opened.header_length` bytes
// before it, which must be the same buffer) and shrinks it to the plaintext.
Result<void> decrypt_payload(std::span<std::uint8_t> packet, OpenedPacket& opened,
                             crypto::Aead& aead, std::uint32_t path_id = 0);

// A Retry packet with its integrity tag computed for `original_dcid` (RFC 9001 §5.8).
Result<Bytes> encode_retry(const PacketHeader& h, ByteView original_dcid);

}  // namespace iroh::quic

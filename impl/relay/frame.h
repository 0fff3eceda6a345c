// Relay protocol frames (spec §6.3): one frame per binary WebSocket message.
//
// Wire layout of every frame: a QUIC varint frame type (RFC 9000 §16; all current codes fit in one
// byte), then a body of at most kMaxFrameBody (65536) bytes. Bodies are either postcard
// (ServerChallenge, ClientAuth, ServerDeniesAuth) or a fixed big-endian layout (everything else).
//
//   code  frame                        body
//   0     ServerChallenge              16 raw bytes (postcard [u8;16])
//   1     ClientAuth                   public key 32 B | 0x40 | signature 64 B (postcard bytes)
//   2     ServerConfirmsAuth           empty
//   3     ServerDeniesAuth             postcard String: LEB128 length | UTF-8
//   4/5   ClientToRelayDatagram[Batch] dst id 32 B | ECN u8 | [segment_size u16be] | payload
//   6/7   RelayToClientDatagram[Batch] src id 32 B | ECN u8 | [segment_size u16be] | payload
//   8     EndpointGone                 id 32 B
//   9/10  Ping / Pong                  8 bytes
//   11    Health                       UTF-8 text            (iroh-relay-v1 only)
//   12    Restarting                   reconnect_in u32be ms | try_for u32be ms
//   13    Status                       u8 code               (iroh-relay-v2 only)
//
// The single and batch datagram forms share one struct each; which one goes on the wire is decided
// by whether `segment_size` is set (the spec's invariant: a single datagram never uses the batch
// form). The decoder maps a batch frame's segment_size 0 to "none".
//
// Decoding is strict and total: any input yields a Frame or an Error, never a crash. Besides the
// per-frame rules the decoder rejects trailing bytes after a fixed-size or postcard body, bodies
// over 65536 bytes, unknown frame types, frame types not valid in the negotiated protocol version,
// and public keys that are not points on edwards25519 (spec §1.1).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include "base/bytes.h"
#include "base/key.h"
#include "base/result.h"

namespace iroh::relay {

// ---- protocol version (spec §6.2: WebSocket subprotocol) ----

enum class ProtocolVersion { V1, V2 };

inline constexpr std::string_view kSubprotocolV1 = "iroh-relay-v1";
inline constexpr std::string_view kSubprotocolV2 = "iroh-relay-v2";

// "iroh-relay-v1" / "iroh-relay-v2".
std::string_view to_string(ProtocolVersion version);
// Exact, case-sensitive match of one subprotocol token.
Result<ProtocolVersion> parse_protocol_version(std::string_view subprotocol);

// ---- frame type codes (spec §6.3) ----

enum class FrameType : std::uint8_t {
  ServerChallenge = 0,
  ClientAuth = 1,
  ServerConfirmsAuth = 2,
  ServerDeniesAuth = 3,
  ClientToRelayDatagram = 4,
  ClientToRelayDatagramBatch = 5,
  RelayToClientDatagram = 6,
  RelayToClientDatagramBatch = 7,
  EndpointGone = 8,
  Ping = 9,
  Pong = 10,
  Health = 11,
  Restarting = 12,
  Status = 13,
};

enum class Direction { ServerToClient, ClientToServer, Both };

std::string_view frame_type_name(FrameType type);
Direction direction(FrameType type);

// MAX_PACKET_SIZE: the largest body (bytes after the frame type) a decoder accepts.
inline constexpr std::size_t kMaxFrameBody = 65536;
inline constexpr std::size_t kChallengeSize = 16;
inline constexpr std::size_t kPingSize = 8;

// ECN codepoints carried in datagram frames (the 2-bit IP ECN field; 0 = not ECN-capable).
namespace ecn {
inline constexpr std::uint8_t kNotEct = 0;
inline constexpr std::uint8_t kEct1 = 1;
inline constexpr std::uint8_t kEct0 = 2;
inline constexpr std::uint8_t kCe = 3;
}  // namespace ecn

// ---- frames ----

// 0, S→C. Random bytes the client must sign (spec §6.4).
struct ServerChallenge {
  ByteArray<kChallengeSize> challenge{};
  friend bool operator==(const ServerChallenge&, const ServerChallenge&) = default;
};

// 1, C→S. Signature over blake3::derive_key(challenge context, challenge); see relay/handshake.h.
struct ClientAuth {
  EndpointId public_key;
  Signature signature{};
  friend bool operator==(const ClientAuth&, const ClientAuth&) = default;
};

// 2, S→C.
struct ServerConfirmsAuth {
  friend bool operator==(const ServerConfirmsAuth&, const ServerConfirmsAuth&) = default;
};

// 3, S→C. E.g. "signature invalid", "not authorized".
struct ServerDeniesAuth {
  std::string reason;  // UTF-8
  friend bool operator==(const ServerDeniesAuth&, const ServerDeniesAuth&) = default;
};

// 4 (single) / 5 (batch), C→S. `payload` is one QUIC UDP payload, or with segment_size several
// concatenated ones of segment_size bytes each (the last may be shorter).
struct ClientToRelayDatagram {
  EndpointId dst;
  std::uint8_t ecn = ecn::kNotEct;            // 0..3
  std::optional<std::uint16_t> segment_size;  // set (and non-zero) → batch form
  Bytes payload;
  friend bool operator==(const ClientToRelayDatagram&, const ClientToRelayDatagram&) = default;
};

// 6 (single) / 7 (batch), S→C. Same layout as ClientToRelayDatagram, keyed by the sender.
struct RelayToClientDatagram {
  EndpointId src;
  std::uint8_t ecn = ecn::kNotEct;
  std::optional<std::uint16_t> segment_size;
  Bytes payload;
  friend bool operator==(const RelayToClientDatagram&, const RelayToClientDatagram&) = default;
};

// 8, S→C. A peer that sent to us has disconnected.
struct EndpointGone {
  EndpointId id;
  friend bool operator==(const EndpointGone&, const EndpointGone&) = default;
};

// 9, both directions.
struct Ping {
  ByteArray<kPingSize> data{};
  friend bool operator==(const Ping&, const Ping&) = default;
};

// 10, both directions. Echoes a Ping's data.
struct Pong {
  ByteArray<kPingSize> data{};
  friend bool operator==(const Pong&, const Pong&) = default;
};

// 11, S→C, iroh-relay-v1 only.
struct Health {
  std::string problem;  // UTF-8
  friend bool operator==(const Health&, const Health&) = default;
};

// 12, S→C. The server is going away: reconnect after reconnect_in_ms, keep trying for try_for_ms.
struct Restarting {
  std::uint32_t reconnect_in_ms = 0;
  std::uint32_t try_for_ms = 0;
  friend bool operator==(const Restarting&, const Restarting&) = default;
};

// 13, S→C, iroh-relay-v2 only. Unknown codes are carried through unchanged.
struct Status {
  static constexpr std::uint8_t kHealthy = 0;
  static constexpr std::uint8_t kSameEndpointIdConnected = 1;
  static constexpr std::uint8_t kRateLimited = 2;

  std::uint8_t code = kHealthy;

  bool is_known() const { return code <= kRateLimited; }
  // "Healthy", "SameEndpointIdConnected", "RateLimited" or "Unknown".
  std::string_view name() const;
  friend bool operator==(const Status&, const Status&) = default;
};

using Frame = std::variant<ServerChallenge, ClientAuth, ServerConfirmsAuth, ServerDeniesAuth,
                           ClientToRelayDatagram, RelayToClientDatagram, EndpointGone, Ping, Pong,
                           Health, Restarting, Status>;

// The wire frame type `encode` uses for this frame (single vs batch chosen by segment_size).
FrameType frame_type(const Frame& frame);
// frame_type_name(frame_type(frame)).
std::string_view frame_name(const Frame& frame);

// ---- codec ----

// Serialises one frame (spec §6.3), frame type first. Does not enforce kMaxFrameBody or the
// protocol-version restrictions: a datagram whose 32 + 1 (+ 2) + payload bytes exceed 65536, a
// Health sent on v2 or a Status sent on v1 is encoded as given and rejected by the peer's decoder.
// A segment_size of 0 is treated as unset (single form). An ECN value > 3 is a caller bug
// (asserted).
Bytes encode(const Frame& frame);
// Appends the encoding of `frame` to `out`.
void encode_to(Bytes& out, const Frame& frame);

// Parses one complete relay message (one WebSocket binary message) received on a connection that
// negotiated `version`.
Result<Frame> decode(ByteView message, ProtocolVersion version);

}  // namespace iroh::relay

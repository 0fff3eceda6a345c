// QUIC frames: RFC 9000 §19, RFC 9221 DATAGRAM, the ack-frequency draft, draft multipath
// (spec §4.6), n0's NAT-traversal frames (QNT, spec §5.1) and QUIC address discovery (spec §4.7).
//
// Every frame is a plain struct in namespace iroh::quic::frame (frame::Stream, frame::Ack, ...);
// `iroh::quic::Frame` is the variant of all of them. Errors are QuicError (quic/error.h): the
// transport error code to close with, the offending frame type and a reason;
// to_result(QuicResult) gives a plain iroh::Result. Frames that differ only by a flag in their
// type share one struct (ACK/ACK_ECN → Ack::ecn, MAX_STREAMS bidi/uni → MaxStreams::bidi, ...).
// Payload-carrying frames (STREAM, CRYPTO, DATAGRAM, NEW_TOKEN, CONNECTION_CLOSE reason, connection
// IDs) hold ByteViews into the decoded packet: zero copy, so the packet buffer must outlive the
// frames.
//
//   type            frame                    body (varints unless noted)
//   0x00            PADDING                  a run of 0x00 bytes, coalesced (Padding::count)
//   0x01            PING
//   0x02/0x03       ACK / ACK_ECN            largest, delay, range_count, first_range,
//                                            (gap, len)*, [ect0, ect1, ce]
//   0x04            RESET_STREAM             stream_id, error_code, final_size
//   0x05            STOP_SENDING             stream_id, error_code
//   0x06            CRYPTO                   offset, len, data
//   0x07            NEW_TOKEN                len (>0), token
//   0x08..0x0f      STREAM                   stream_id, [offset: OFF 0x04], [len: LEN 0x02], data;
//                                            FIN 0x01
//   0x10            MAX_DATA                 max
//   0x11            MAX_STREAM_DATA          stream_id, max
//   0x12/0x13       MAX_STREAMS bidi/uni     max (≤ 2^60)
//   0x14            DATA_BLOCKED             limit
//   0x15            STREAM_DATA_BLOCKED      stream_id, limit
//   0x16/0x17       STREAMS_BLOCKED bidi/uni limit (≤ 2^60)
//   0x18            NEW_CONNECTION_ID        seq, retire_prior_to, len u8 (1..20), cid, token 16 B
//   0x19            RETIRE_CONNECTION_ID     seq
//   0x1a/0x1b       PATH_CHALLENGE/RESPONSE  8 bytes
//   0x1c/0x1d       CONNECTION_CLOSE         error_code, [frame_type: 0x1c only], len, reason
//   0x1e            HANDSHAKE_DONE
//   0x1f            IMMEDIATE_ACK            (ack-frequency draft)
//   0x30/0x31       DATAGRAM                 [len: 0x31], data                       (RFC 9221)
//   0xaf            ACK_FREQUENCY            seq, ack_eliciting_threshold,
//                                            request_max_ack_delay (µs), reordering_threshold
//   0x3e/0x3f       PATH_ACK / PATH_ACK_ECN  path_id, then as ACK / ACK_ECN
//   0x3e75          PATH_ABANDON             path_id, error_code
//   0x3e76/0x3e77   PATH_STATUS_BACKUP/AVAILABLE  path_id, status_seq_no
//   0x3e78          PATH_NEW_CONNECTION_ID   path_id, then as NEW_CONNECTION_ID
//   0x3e79          PATH_RETIRE_CONNECTION_ID path_id, seq
//   0x3e7a          MAX_PATH_ID              max_path_id
//   0x3e7b          PATHS_BLOCKED            max_path_id
//   0x3e7c          PATH_CIDS_BLOCKED        path_id, next_seq
//   0x3d7f90/91     ADD_ADDRESS v4/v6        seq, ip 4|16 B, port u16be       (QNT, server only)
//   0x3d7f92/93     REACH_OUT v4/v6          round, ip 4|16 B, port u16be     (QNT, client only)
//   0x3d7f94        REMOVE_ADDRESS           seq                              (QNT, server only)
//   0x9f81a6/a7     OBSERVED_ADDRESS v4/v6   seq, ip 4|16 B, port u16be       (QAD)
//
// Decoding is strict and total: any input yields frames or a QuicError with the RFC error code,
// never a crash. Unknown frame types and every malformed body are FRAME_ENCODING_ERROR; a frame
// type varint that is not minimally encoded is PROTOCOL_VIOLATION (RFC 9000 §12.4 allows this).
// Path IDs are u32 (draft multipath); larger values are FRAME_ENCODING_ERROR. Checks that need
// connection state (stream direction, limits, which side may send QNT frames) are the connection's
// job.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/socket_addr.h"
#include "quic/error.h"
#include "quic/reader.h"

namespace iroh::quic {

// ---- frame type codepoints ----

namespace frame_type {
inline constexpr std::uint64_t kPadding = 0x00;
inline constexpr std::uint64_t kPing = 0x01;
inline constexpr std::uint64_t kAck = 0x02;
inline constexpr std::uint64_t kAckEcn = 0x03;
inline constexpr std::uint64_t kResetStream = 0x04;
inline constexpr std::uint64_t kStopSending = 0x05;
inline constexpr std::uint64_t kCrypto = 0x06;
inline constexpr std::uint64_t kNewToken = 0x07;
inline constexpr std::uint64_t kStream = 0x08;  // 0x08..0x0f
inline constexpr std::uint64_t kStreamFin = 0x01;
inline constexpr std::uint64_t kStreamLen = 0x02;
inline constexpr std::uint64_t kStreamOff = 0x04;
inline constexpr std::uint64_t kMaxData = 0x10;
inline constexpr std::uint64_t kMaxStreamData = 0x11;
inline constexpr std::uint64_t kMaxStreamsBidi = 0x12;
inline constexpr std::uint64_t kMaxStreamsUni = 0x13;
inline constexpr std::uint64_t kDataBlocked = 0x14;
inline constexpr std::uint64_t kStreamDataBlocked = 0x15;
inline constexpr std::uint64_t kStreamsBlockedBidi = 0x16;
inline constexpr std::uint64_t kStreamsBlockedUni = 0x17;
inline constexpr std::uint64_t kNewConnectionId = 0x18;
inline constexpr std::uint64_t kRetireConnectionId = 0x19;
inline constexpr std::uint64_t kPathChallenge = 0x1a;
inline constexpr std::uint64_t kPathResponse = 0x1b;
inline constexpr std::uint64_t kConnectionClose = 0x1c;
inline constexpr std::uint64_t kConnectionCloseApp = 0x1d;
inline constexpr std::uint64_t kHandshakeDone = 0x1e;
inline constexpr std::uint64_t kImmediateAck = 0x1f;
inline constexpr std::uint64_t kDatagram = 0x30;
inline constexpr std::uint64_t kDatagramLen = 0x31;
inline constexpr std::uint64_t kAckFrequency = 0xaf;
inline constexpr std::uint64_t kPathAck = 0x3e;
inline constexpr std::uint64_t kPathAckEcn = 0x3f;
inline constexpr std::uint64_t kPathAbandon = 0x3e75;
inline constexpr std::uint64_t kPathStatusBackup = 0x3e76;
inline constexpr std::uint64_t kPathStatusAvailable = 0x3e77;
inline constexpr std::uint64_t kPathNewConnectionId = 0x3e78;
inline constexpr std::uint64_t kPathRetireConnectionId = 0x3e79;
inline constexpr std::uint64_t kMaxPathId = 0x3e7a;
inline constexpr std::uint64_t kPathsBlocked = 0x3e7b;
inline constexpr std::uint64_t kPathCidsBlocked = 0x3e7c;
inline constexpr std::uint64_t kAddAddressV4 = 0x3d7f90;
inline constexpr std::uint64_t kAddAddressV6 = 0x3d7f91;
inline constexpr std::uint64_t kReachOutV4 = 0x3d7f92;
inline constexpr std::uint64_t kReachOutV6 = 0x3d7f93;
inline constexpr std::uint64_t kRemoveAddress = 0x3d7f94;
inline constexpr std::uint64_t kObservedAddressV4 = 0x9f81a6;
inline constexpr std::uint64_t kObservedAddressV6 = 0x9f81a7;
}  // namespace frame_type

// ---- frames ----

// Frame structs and limits live in their own namespace: names like Stream, Datagram and Ack are
// too common to claim in iroh::quic (packet.h already has a Datagram).
namespace frame {

// Limits from RFC 9000.
inline constexpr std::uint64_t kMaxStreamOffset = (std::uint64_t{1} << 62) - 1;  // §19.8
inline constexpr std::uint64_t kMaxStreamCount = std::uint64_t{1} << 60;         // §19.11
inline constexpr std::size_t kMaxCidLength = 20;                                 // §17.2
inline constexpr std::uint64_t kMaxPathId = 0xffffffff;  // draft multipath: path IDs are u32

// Equality of two views by content.
inline bool same_bytes(ByteView a, ByteView b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

struct Padding {
  std::size_t count = 1;  // number of 0x00 bytes, ≥ 1
  friend bool operator==(const Padding&, const Padding&) = default;
};

struct Ping {
  friend bool operator==(const Ping&, const Ping&) = default;
};

// One additional ACK range in wire form (RFC 9000 §19.3.1).
struct AckRange {
  std::uint64_t gap = 0;     // unacknowledged packets before this range, minus one
  std::uint64_t length = 0;  // acknowledged packets in this range, minus one
  friend bool operator==(const AckRange&, const AckRange&) = default;
};

struct EcnCounts {
  std::uint64_t ect0 = 0;
  std::uint64_t ect1 = 0;
  std::uint64_t ce = 0;
  friend bool operator==(const EcnCounts&, const EcnCounts&) = default;
};

// An inclusive packet-number interval [smallest, largest].
struct PacketInterval {
  std::uint64_t smallest = 0;
  std::uint64_t largest = 0;
  friend bool operator==(const PacketInterval&, const PacketInterval&) = default;
};

// ACK (0x02) or, with ecn set, ACK_ECN (0x03). Kept in wire form; see ack_intervals().
struct Ack {
  std::uint64_t largest = 0;
  std::uint64_t ack_delay = 0;  // encoded: scaled by 2^ack_delay_exponent
  std::uint64_t first_range = 0;
  std::vector<AckRange> ranges;
  std::optional<EcnCounts> ecn;
  friend bool operator==(const Ack&, const Ack&) = default;
};

// The acknowledged intervals of a (validated) ACK, largest first.
std::vector<PacketInterval> ack_intervals(const Ack& ack);
// Builds an ACK from disjoint, non-adjacent intervals sorted largest first (non-empty).
Ack make_ack(const std::vector<PacketInterval>& intervals, std::uint64_t ack_delay,
             std::optional<EcnCounts> ecn = std::nullopt);

struct ResetStream {
  std::uint64_t stream_id = 0;
  std::uint64_t error_code = 0;
  std::uint64_t final_size = 0;
  friend bool operator==(const ResetStream&, const ResetStream&) = default;
};

struct StopSending {
  std::uint64_t stream_id = 0;
  std::uint64_t error_code = 0;
  friend bool operator==(const StopSending&, const StopSending&) = default;
};

struct Crypto {
  std::uint64_t offset = 0;
  ByteView data;
  friend bool operator==(const Crypto& a, const Crypto& b) {
    return a.offset == b.offset && same_bytes(a.data, b.data);
  }
};

struct NewToken {
  ByteView token;  // non-empty
  friend bool operator==(const NewToken& a, const NewToken& b) {
    return same_bytes(a.token, b.token);
  }
};

// STREAM 0x08..0x0f. The OFF bit is sent iff offset != 0. Without `has_length` the data runs to the
// end of the packet, so such a frame must be the last one encoded into a packet.
struct Stream {
  std::uint64_t stream_id = 0;
  std::uint64_t offset = 0;
  ByteView data;
  bool fin = false;
  bool has_length = true;
  friend bool operator==(const Stream& a, const Stream& b) {
    return a.stream_id == b.stream_id && a.offset == b.offset && same_bytes(a.data, b.data) &&
           a.fin == b.fin && a.has_length == b.has_length;
  }
};

struct MaxData {
  std::uint64_t max = 0;
  friend bool operator==(const MaxData&, const MaxData&) = default;
};

struct MaxStreamData {
  std::uint64_t stream_id = 0;
  std::uint64_t max = 0;
  friend bool operator==(const MaxStreamData&, const MaxStreamData&) = default;
};

struct MaxStreams {
  bool bidi = true;
  std::uint64_t max = 0;  // ≤ 2^60
  friend bool operator==(const MaxStreams&, const MaxStreams&) = default;
};

struct DataBlocked {
  std::uint64_t limit = 0;
  friend bool operator==(const DataBlocked&, const DataBlocked&) = default;
};

struct StreamDataBlocked {
  std::uint64_t stream_id = 0;
  std::uint64_t limit = 0;
  friend bool operator==(const StreamDataBlocked&, const StreamDataBlocked&) = default;
};

struct StreamsBlocked {
  bool bidi = true;
  std::uint64_t limit = 0;  // ≤ 2^60
  friend bool operator==(const StreamsBlocked&, const StreamsBlocked&) = default;
};

// NEW_CONNECTION_ID (0x18), or with path_id set PATH_NEW_CONNECTION_ID (0x3e78).
struct NewConnectionId {
  std::optional<std::uint64_t> path_id;
  std::uint64_t sequence = 0;
  std::uint64_t retire_prior_to = 0;  // ≤ sequence
  ByteView cid;                       // 1..20 bytes
  ByteArray<16> reset_token{};
  friend bool operator==(const NewConnectionId& a, const NewConnectionId& b) {
    return a.path_id == b.path_id && a.sequence == b.sequence &&
           a.retire_prior_to == b.retire_prior_to && same_bytes(a.cid, b.cid) &&
           a.reset_token == b.reset_token;
  }
};

// RETIRE_CONNECTION_ID (0x19), or with path_id set PATH_RETIRE_CONNECTION_ID (0x3e79).
struct RetireConnectionId {
  std::optional<std::uint64_t> path_id;
  std::uint64_t sequence = 0;
  friend bool operator==(const RetireConnectionId&, const RetireConnectionId&) = default;
};

struct PathChallenge {
  ByteArray<8> data{};
  friend bool operator==(const PathChallenge&, const PathChallenge&) = default;
};

struct PathResponse {
  ByteArray<8> data{};
  friend bool operator==(const PathResponse&, const PathResponse&) = default;
};

// CONNECTION_CLOSE: transport (0x1c, with frame_type) or application (0x1d).
struct ConnectionClose {
  bool application = false;
  std::uint64_t error_code = 0;
  std::uint64_t frame_type = 0;  // transport close only
  ByteView reason;
  friend bool operator==(const ConnectionClose& a, const ConnectionClose& b) {
    return a.application == b.application && a.error_code == b.error_code &&
           a.frame_type == b.frame_type && same_bytes(a.reason, b.reason);
  }
};

struct HandshakeDone {
  friend bool operator==(const HandshakeDone&, const HandshakeDone&) = default;
};

// DATAGRAM: 0x31 with a length, 0x30 without (data runs to the end of the packet).
struct Datagram {
  ByteView data;
  bool has_length = true;
  friend bool operator==(const Datagram& a, const Datagram& b) {
    return same_bytes(a.data, b.data) && a.has_length == b.has_length;
  }
};

struct AckFrequency {
  std::uint64_t sequence = 0;
  std::uint64_t ack_eliciting_threshold = 0;
  std::uint64_t request_max_ack_delay = 0;  // microseconds
  std::uint64_t reordering_threshold = 0;
  friend bool operator==(const AckFrequency&, const AckFrequency&) = default;
};

struct ImmediateAck {
  friend bool operator==(const ImmediateAck&, const ImmediateAck&) = default;
};

// PATH_ACK (0x3e) / PATH_ACK_ECN (0x3f, when ack.ecn is set).
struct PathAck {
  std::uint64_t path_id = 0;
  Ack ack;
  friend bool operator==(const PathAck&, const PathAck&) = default;
};

struct PathAbandon {
  std::uint64_t path_id = 0;
  std::uint64_t error_code = 0;
  friend bool operator==(const PathAbandon&, const PathAbandon&) = default;
};

// PATH_STATUS_AVAILABLE (0x3e77) or PATH_STATUS_BACKUP (0x3e76).
struct PathStatus {
  bool available = true;
  std::uint64_t path_id = 0;
  std::uint64_t sequence = 0;
  friend bool operator==(const PathStatus&, const PathStatus&) = default;
};

struct MaxPathId {
  std::uint64_t max_path_id = 0;
  friend bool operator==(const MaxPathId&, const MaxPathId&) = default;
};

struct PathsBlocked {
  std::uint64_t max_path_id = 0;
  friend bool operator==(const PathsBlocked&, const PathsBlocked&) = default;
};

struct PathCidsBlocked {
  std::uint64_t path_id = 0;
  std::uint64_t next_sequence = 0;
  friend bool operator==(const PathCidsBlocked&, const PathCidsBlocked&) = default;
};

// QNT ADD_ADDRESS; the v4/v6 frame type follows address.family().
struct AddAddress {
  std::uint64_t sequence = 0;
  SocketAddr address;
  friend bool operator==(const AddAddress&, const AddAddress&) = default;
};

// QNT REACH_OUT; the v4/v6 frame type follows address.family().
struct ReachOut {
  std::uint64_t round = 0;
  SocketAddr address;
  friend bool operator==(const ReachOut&, const ReachOut&) = default;
};

struct RemoveAddress {
  std::uint64_t sequence = 0;
  friend bool operator==(const RemoveAddress&, const RemoveAddress&) = default;
};

// QAD OBSERVED_ADDRESS; the v4/v6 frame type follows address.family().
struct ObservedAddress {
  std::uint64_t sequence = 0;
  SocketAddr address;
  friend bool operator==(const ObservedAddress&, const ObservedAddress&) = default;
};

}  // namespace frame

using Frame =
    std::variant<frame::Padding, frame::Ping, frame::Ack, frame::ResetStream, frame::StopSending,
                 frame::Crypto, frame::NewToken, frame::Stream, frame::MaxData,
                 frame::MaxStreamData, frame::MaxStreams, frame::DataBlocked,
                 frame::StreamDataBlocked, frame::StreamsBlocked, frame::NewConnectionId,
                 frame::RetireConnectionId, frame::PathChallenge, frame::PathResponse,
                 frame::ConnectionClose, frame::HandshakeDone, frame::Datagram, frame::AckFrequency,
                 frame::ImmediateAck, frame::PathAck, frame::PathAbandon, frame::PathStatus,
                 frame::MaxPathId, frame::PathsBlocked, frame::PathCidsBlocked, frame::AddAddress,
                 frame::ReachOut, frame::RemoveAddress, frame::ObservedAddress>;

// ---- codec ----

// The wire frame type of `frame` (for STREAM including the OFF/LEN/FIN bits).
std::uint64_t frame_type_of(const Frame& frame);
// "STREAM", "PATH_ACK_ECN", "ADD_ADDRESS", ... for logs.
std::string_view frame_name(const Frame& frame);

// Appends the encoding of `frame`. Preconditions (asserted, like encode_varint): every varint
// field ≤ 2^62-1, cid 1..20 bytes, path IDs ≤ 2^32-1 — i.e. the frame would pass decode_frame.
void encode_frame(Bytes& out, const Frame& frame);

// Decodes one frame at the reader's position. On success the reader is past the frame; on error
// its position is unspecified. Views in the result point into the reader's buffer.
QuicResult<Frame> decode_frame(Reader& reader);

// ---- packet-level rules ----

// The packet types of RFC 9000 Table 3 (long-header Initial / 0-RTT / Handshake, short 1-RTT).
enum class PacketKind : std::uint8_t { kInitial, kZeroRtt, kHandshake, kOneRtt };

// RFC 9000 Table 3 plus the extensions: DATAGRAM, ACK_FREQUENCY and IMMEDIATE_ACK in 0-RTT/1-RTT;
// multipath, QNT and QAD frames in 1-RTT only.
bool allowed_in(const Frame& frame, PacketKind kind);
// Everything except PADDING, ACK/ACK_ECN, PATH_ACK/PATH_ACK_ECN and CONNECTION_CLOSE (RFC 9000 §2).
bool is_ack_eliciting(const Frame& frame);
// PADDING, PATH_CHALLENGE, PATH_RESPONSE, NEW_CONNECTION_ID (RFC 9000 §9.1), plus — as noq —
// PATH_NEW_CONNECTION_ID and OBSERVED_ADDRESS. A packet is probing iff all its frames are.
bool is_probing(const Frame& frame);

// Decodes a whole packet payload. Rejects an empty payload (PROTOCOL_VIOLATION, RFC 9000 §12.4)
// and, when `kind` is given, frames not allowed in that packet type (PROTOCOL_VIOLATION).
QuicResult<std::vector<Frame>> decode_frames(ByteView payload,
                                             std::optional<PacketKind> kind = std::nullopt);

}  // namespace iroh::quic

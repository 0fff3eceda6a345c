// QUIC frame codec. See frame.h.
#include "quic/frame.h"

#include <cassert>
#include <string>
#include <type_traits>
#include <utility>

#include "quic/varint.h"

namespace iroh::quic {

using namespace frame;  // NOLINT: the frame structs, in this file only

namespace {

namespace ft = frame_type;

template <class... Ts>
struct Overloaded : Ts... {
  using Ts::operator()...;
};
template <class... Ts>
Overloaded(Ts...) -> Overloaded<Ts...>;

std::string_view type_name(std::uint64_t type) {
  if (type >= ft::kStream && type <= ft::kStream + 7) return "STREAM";
  switch (type) {
    case ft::kPadding:
      return "PADDING";
    case ft::kPing:
      return "PING";
    case ft::kAck:
      return "ACK";
    case ft::kAckEcn:
      return "ACK_ECN";
    case ft::kResetStream:
      return "RESET_STREAM";
    case ft::kStopSending:
      return "STOP_SENDING";
    case ft::kCrypto:
      return "CRYPTO";
    case ft::kNewToken:
      return "NEW_TOKEN";
    case ft::kMaxData:
      return "MAX_DATA";
    case ft::kMaxStreamData:
      return "MAX_STREAM_DATA";
    case ft::kMaxStreamsBidi:
      return "MAX_STREAMS_BIDI";
    case ft::kMaxStreamsUni:
      return "MAX_STREAMS_UNI";
    case ft::kDataBlocked:
      return "DATA_BLOCKED";
    case ft::kStreamDataBlocked:
      return "STREAM_DATA_BLOCKED";
    case ft::kStreamsBlockedBidi:
      return "STREAMS_BLOCKED_BIDI";
    case ft::kStreamsBlockedUni:
      return "STREAMS_BLOCKED_UNI";
    case ft::kNewConnectionId:
      return "NEW_CONNECTION_ID";
    case ft::kRetireConnectionId:
      return "RETIRE_CONNECTION_ID";
    case ft::kPathChallenge:
      return "PATH_CHALLENGE";
    case ft::kPathResponse:
      return "PATH_RESPONSE";
    case ft::kConnectionClose:
      return "CONNECTION_CLOSE";
    case ft::kConnectionCloseApp:
      return "CONNECTION_CLOSE_APP";
    case ft::kHandshakeDone:
      return "HANDSHAKE_DONE";
    case ft::kImmediateAck:
      return "IMMEDIATE_ACK";
    case ft::kDatagram:
      return "DATAGRAM";
    case ft::kDatagramLen:
      return "DATAGRAM_LEN";
    case ft::kAckFrequency:
      return "ACK_FREQUENCY";
    case ft::kPathAck:
      return "PATH_ACK";
    case ft::kPathAckEcn:
      return "PATH_ACK_ECN";
    case ft::kPathAbandon:
      return "PATH_ABANDON";
    case ft::kPathStatusBackup:
      return "PATH_STATUS_BACKUP";
    case ft::kPathStatusAvailable:
      return "PATH_STATUS_AVAILABLE";
    case ft::kPathNewConnectionId:
      return "PATH_NEW_CONNECTION_ID";
    case ft::kPathRetireConnectionId:
      return "PATH_RETIRE_CONNECTION_ID";
    case ft::kMaxPathId:
      return "MAX_PATH_ID";
    case ft::kPathsBlocked:
      return "PATHS_BLOCKED";
    case ft::kPathCidsBlocked:
      return "PATH_CIDS_BLOCKED";
    case ft::kAddAddressV4:
      return "ADD_ADDRESS_V4";
    case ft::kAddAddressV6:
      return "ADD_ADDRESS_V6";
    case ft::kReachOutV4:
      return "REACH_OUT_V4";
    case ft::kReachOutV6:
      return "REACH_OUT_V6";
    case ft::kRemoveAddress:
      return "REMOVE_ADDRESS";
    case ft::kObservedAddressV4:
      return "OBSERVED_ADDRESS_V4";
    case ft::kObservedAddressV6:
      return "OBSERVED_ADDRESS_V6";
    default:
      return "UNKNOWN";
  }
}

// Field reader for one frame body: every helper returns false after recording the first error
// (FRAME_ENCODING_ERROR unless stated), tagged with the frame type.
class Body {
 public:
  Body(Reader& r, std::uint64_t type) : r_(r), type_(type) {}

  bool fail(TransportError code, const std::string& message) {
    if (!error_) {
      error_ = quic_error(code, std::string(type_name(type_)) + ": " + message, type_);
    }
    return false;
  }
  bool fail(const std::string& message) {
    return fail(TransportError::kFrameEncodingError, message);
  }
  QuicError take_error() {
    if (!error_) fail("malformed frame");
    return std::move(*error_);
  }

  bool varint(std::uint64_t& out, std::string_view what) {
    auto v = r_.varint(what);
    if (!v) return fail(v.error().message);
    out = *v;
    return true;
  }
  bool path_id(std::uint64_t& out, std::string_view what = "path id") {
    if (!varint(out, what)) return false;
    if (out > frame::kMaxPathId) return fail(std::string(what) + " exceeds 2^32-1");
    return true;
  }
  bool u8(std::uint8_t& out, std::string_view what) {
    auto v = r_.u8(what);
    if (!v) return fail(v.error().message);
    out = *v;
    return true;
  }
  bool u16(std::uint16_t& out, std::string_view what) {
    auto v = r_.u16be(what);
    if (!v) return fail(v.error().message);
    out = *v;
    return true;
  }
  bool bytes(ByteView& out, std::uint64_t n, std::string_view what) {
    if (n > r_.remaining()) {
      return fail(std::string(what) + " length " + std::to_string(n) + " exceeds the " +
                  std::to_string(r_.remaining()) + " remaining bytes");
    }
    auto v = r_.bytes(static_cast<std::size_t>(n), what);
    if (!v) return fail(v.error().message);
    out = *v;
    return true;
  }
  template <std::size_t N>
  bool array(ByteArray<N>& out, std::string_view what) {
    auto v = r_.array<N>(what);
    if (!v) return fail(v.error().message);
    out = *v;
    return true;
  }
  // varint length, then that many bytes.
  bool length_prefixed(ByteView& out, std::string_view what) {
    std::uint64_t len = 0;
    if (!varint(len, std::string(what) + " length")) return false;
    return bytes(out, len, what);
  }
  bool socket_addr(SocketAddr& out, bool v6) {
    std::uint16_t port = 0;
    if (v6) {
      ByteArray<16> ip{};
      if (!array(ip, "IPv6 address") || !u16(port, "port")) return false;
      out = SocketAddr::v6(ip, port);
    } else {
      ByteArray<4> ip{};
      if (!array(ip, "IPv4 address") || !u16(port, "port")) return false;
      out = SocketAddr::v4(ip, port);
    }
    return true;
  }

  // RFC 9000 §19.3.1: range arithmetic must not go below packet number 0.
  bool ack(Ack& a) {
    std::uint64_t count = 0;
    if (!varint(a.largest, "largest acknowledged") || !varint(a.ack_delay, "ack delay") ||
        !varint(count, "ack range count") || !varint(a.first_range, "first ack range")) {
      return false;
    }
    if (a.first_range > a.largest) return fail("first ACK range exceeds largest acknowledged");
    // Each range takes at least two bytes: bound the count before allocating.
    if (count > r_.remaining() / 2) return fail("ACK range count exceeds the frame");
    a.ranges.reserve(static_cast<std::size_t>(count));
    std::uint64_t smallest = a.largest - a.first_range;
    for (std::uint64_t i = 0; i < count; ++i) {
      AckRange range;
      if (!varint(range.gap, "ack gap") || !varint(range.length, "ack range length")) return false;
      if (smallest < 2 || range.gap > smallest - 2) return fail("ACK gap below packet number 0");
      const std::uint64_t largest = smallest - range.gap - 2;
      if (range.length > largest) return fail("ACK range below packet number 0");
      smallest = largest - range.length;
      a.ranges.push_back(range);
    }
    if (type_ == ft::kAckEcn || type_ == ft::kPathAckEcn) {
      EcnCounts ecn;
      if (!varint(ecn.ect0, "ECT(0) count") || !varint(ecn.ect1, "ECT(1) count") ||
          !varint(ecn.ce, "ECN-CE count")) {
        return false;
      }
      a.ecn = ecn;
    }
    return true;
  }

  bool new_connection_id(NewConnectionId& f) {
    std::uint8_t len = 0;
    if (!varint(f.sequence, "sequence number") || !varint(f.retire_prior_to, "retire prior to")) {
      return false;
    }
    if (f.retire_prior_to > f.sequence) return fail("retire_prior_to exceeds sequence number");
    if (!u8(len, "connection id length")) return false;
    if (len < 1 || len > kMaxCidLength) {
      return fail("connection id length " + std::to_string(len) + " not in 1..20");
    }
    return bytes(f.cid, len, "connection id") && array(f.reset_token, "stateless reset token");
  }

  std::size_t remaining() const { return r_.remaining(); }
  ByteView rest() { return r_.rest(); }

 private:
  Reader& r_;
  std::uint64_t type_;
  std::optional<QuicError> error_;
};

void put_bytes(Bytes& out, ByteView b) { append(out, b); }
void put_u16(Bytes& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v >> 8));
  out.push_back(static_cast<std::uint8_t>(v));
}
void put_addr(Bytes& out, const SocketAddr& a) {
  put_bytes(out, a.ip());
  put_u16(out, a.port());
}
void put_ack_body(Bytes& out, const Ack& a) {
  encode_varint(out, a.largest);
  encode_varint(out, a.ack_delay);
  encode_varint(out, a.ranges.size());
  encode_varint(out, a.first_range);
  for (const auto& r : a.ranges) {
    encode_varint(out, r.gap);
    encode_varint(out, r.length);
  }
  if (a.ecn) {
    encode_varint(out, a.ecn->ect0);
    encode_varint(out, a.ecn->ect1);
    encode_varint(out, a.ecn->ce);
  }
}
void put_cid_body(Bytes& out, const NewConnectionId& f) {
  assert(f.cid.size() >= 1 && f.cid.size() <= kMaxCidLength);
  encode_varint(out, f.sequence);
  encode_varint(out, f.retire_prior_to);
  out.push_back(static_cast<std::uint8_t>(f.cid.size()));
  put_bytes(out, f.cid);
  put_bytes(out, f.reset_token);
}

}  // namespace

// ---- ACK helpers ----

namespace frame {

std::vector<PacketInterval> ack_intervals(const Ack& ack) {
  std::vector<PacketInterval> out;
  out.reserve(ack.ranges.size() + 1);
  std::uint64_t largest = ack.largest;
  std::uint64_t smallest = largest - ack.first_range;
  out.push_back({smallest, largest});
  for (const auto& r : ack.ranges) {
    largest = smallest - r.gap - 2;
    smallest = largest - r.length;
    out.push_back({smallest, largest});
  }
  return out;
}

Ack make_ack(const std::vector<PacketInterval>& intervals, std::uint64_t ack_delay,
             std::optional<EcnCounts> ecn) {
  assert(!intervals.empty());
  Ack ack;
  ack.ack_delay = ack_delay;
  ack.ecn = ecn;
  ack.largest = intervals.front().largest;
  ack.first_range = intervals.front().largest - intervals.front().smallest;
  for (std::size_t i = 1; i < intervals.size(); ++i) {
    assert(intervals[i].largest + 2 <= intervals[i - 1].smallest);
    ack.ranges.push_back({intervals[i - 1].smallest - intervals[i].largest - 2,
                          intervals[i].largest - intervals[i].smallest});
  }
  return ack;
}

}  // namespace frame

// ---- frame type / name ----

std::uint64_t frame_type_of(const Frame& frame) {
  return std::visit(
      Overloaded{
          [](const Padding&) { return ft::kPadding; },
          [](const Ping&) { return ft::kPing; },
          [](const Ack& f) { return f.ecn ? ft::kAckEcn : ft::kAck; },
          [](const ResetStream&) { return ft::kResetStream; },
          [](const StopSending&) { return ft::kStopSending; },
          [](const Crypto&) { return ft::kCrypto; },
          [](const NewToken&) { return ft::kNewToken; },
          [](const Stream& f) {
            return ft::kStream | (f.offset != 0 ? ft::kStreamOff : 0) |
                   (f.has_length ? ft::kStreamLen : 0) | (f.fin ? ft::kStreamFin : 0);
          },
          [](const MaxData&) { return ft::kMaxData; },
          [](const MaxStreamData&) { return ft::kMaxStreamData; },
          [](const MaxStreams& f) { return f.bidi ? ft::kMaxStreamsBidi : ft::kMaxStreamsUni; },
          [](const DataBlocked&) { return ft::kDataBlocked; },
          [](const StreamDataBlocked&) { return ft::kStreamDataBlocked; },
          [](const StreamsBlocked& f) {
            return f.bidi ? ft::kStreamsBlockedBidi : ft::kStreamsBlockedUni;
          },
          [](const NewConnectionId& f) {
            return f.path_id ? ft::kPathNewConnectionId : ft::kNewConnectionId;
          },
          [](const RetireConnectionId& f) {
            return f.path_id ? ft::kPathRetireConnectionId : ft::kRetireConnectionId;
          },
          [](const PathChallenge&) { return ft::kPathChallenge; },
          [](const PathResponse&) { return ft::kPathResponse; },
          [](const ConnectionClose& f) {
            return f.application ? ft::kConnectionCloseApp : ft::kConnectionClose;
          },
          [](const HandshakeDone&) { return ft::kHandshakeDone; },
          [](const Datagram& f) { return f.has_length ? ft::kDatagramLen : ft::kDatagram; },
          [](const AckFrequency&) { return ft::kAckFrequency; },
          [](const ImmediateAck&) { return ft::kImmediateAck; },
          [](const PathAck& f) { return f.ack.ecn ? ft::kPathAckEcn : ft::kPathAck; },
          [](const PathAbandon&) { return ft::kPathAbandon; },
          [](const PathStatus& f) {
            return f.available ? ft::kPathStatusAvailable : ft::kPathStatusBackup;
          },
          [](const MaxPathId&) { return ft::kMaxPathId; },
          [](const PathsBlocked&) { return ft::kPathsBlocked; },
          [](const PathCidsBlocked&) { return ft::kPathCidsBlocked; },
          [](const AddAddress& f) {
            return f.address.is_v4() ? ft::kAddAddressV4 : ft::kAddAddressV6;
          },
          [](const ReachOut& f) { return f.address.is_v4() ? ft::kReachOutV4 : ft::kReachOutV6; },
          [](const RemoveAddress&) { return ft::kRemoveAddress; },
          [](const ObservedAddress& f) {
            return f.address.is_v4() ? ft::kObservedAddressV4 : ft::kObservedAddressV6;
          },
      },
      frame);
}

std::string_view frame_name(const Frame& frame) { return type_name(frame_type_of(frame)); }

// ---- encoding ----

void encode_frame(Bytes& out, const Frame& frame) {
  const std::uint64_t type = frame_type_of(frame);
  if (const auto* p = std::get_if<Padding>(&frame)) {
    out.insert(out.end(), p->count, std::uint8_t{0});
    return;
  }
  encode_varint(out, type);
  std::visit(Overloaded{
                 [](const Padding&) {},
                 [](const Ping&) {},
                 [&](const Ack& f) { put_ack_body(out, f); },
                 [&](const ResetStream& f) {
                   encode_varint(out, f.stream_id);
                   encode_varint(out, f.error_code);
                   encode_varint(out, f.final_size);
                 },
                 [&](const StopSending& f) {
                   encode_varint(out, f.stream_id);
                   encode_varint(out, f.error_code);
                 },
                 [&](const Crypto& f) {
                   encode_varint(out, f.offset);
                   encode_varint(out, f.data.size());
                   put_bytes(out, f.data);
                 },
                 [&](const NewToken& f) {
                   encode_varint(out, f.token.size());
                   put_bytes(out, f.token);
                 },
                 [&](const Stream& f) {
                   encode_varint(out, f.stream_id);
                   if (f.offset != 0) encode_varint(out, f.offset);
                   if (f.has_length) encode_varint(out, f.data.size());
                   put_bytes(out, f.data);
                 },
                 [&](const MaxData& f) { encode_varint(out, f.max); },
                 [&](const MaxStreamData& f) {
                   encode_varint(out, f.stream_id);
                   encode_varint(out, f.max);
                 },
                 [&](const MaxStreams& f) { encode_varint(out, f.max); },
                 [&](const DataBlocked& f) { encode_varint(out, f.limit); },
                 [&](const StreamDataBlocked& f) {
                   encode_varint(out, f.stream_id);
                   encode_varint(out, f.limit);
                 },
                 [&](const StreamsBlocked& f) { encode_varint(out, f.limit); },
                 [&](const NewConnectionId& f) {
                   if (f.path_id) encode_varint(out, *f.path_id);
                   put_cid_body(out, f);
                 },
                 [&](const RetireConnectionId& f) {
                   if (f.path_id) encode_varint(out, *f.path_id);
                   encode_varint(out, f.sequence);
                 },
                 [&](const PathChallenge& f) { put_bytes(out, f.data); },
                 [&](const PathResponse& f) { put_bytes(out, f.data); },
                 [&](const ConnectionClose& f) {
                   encode_varint(out, f.error_code);
                   if (!f.application) encode_varint(out, f.frame_type);
                   encode_varint(out, f.reason.size());
                   put_bytes(out, f.reason);
                 },
                 [](const HandshakeDone&) {},
                 [&](const Datagram& f) {
                   if (f.has_length) encode_varint(out, f.data.size());
                   put_bytes(out, f.data);
                 },
                 [&](const AckFrequency& f) {
                   encode_varint(out, f.sequence);
                   encode_varint(out, f.ack_eliciting_threshold);
                   encode_varint(out, f.request_max_ack_delay);
                   encode_varint(out, f.reordering_threshold);
                 },
                 [](const ImmediateAck&) {},
                 [&](const PathAck& f) {
                   encode_varint(out, f.path_id);
                   put_ack_body(out, f.ack);
                 },
                 [&](const PathAbandon& f) {
                   encode_varint(out, f.path_id);
                   encode_varint(out, f.error_code);
                 },
                 [&](const PathStatus& f) {
                   encode_varint(out, f.path_id);
                   encode_varint(out, f.sequence);
                 },
                 [&](const MaxPathId& f) { encode_varint(out, f.max_path_id); },
                 [&](const PathsBlocked& f) { encode_varint(out, f.max_path_id); },
                 [&](const PathCidsBlocked& f) {
                   encode_varint(out, f.path_id);
                   encode_varint(out, f.next_sequence);
                 },
                 [&](const AddAddress& f) {
                   encode_varint(out, f.sequence);
                   put_addr(out, f.address);
                 },
                 [&](const ReachOut& f) {
                   encode_varint(out, f.round);
                   put_addr(out, f.address);
                 },
                 [&](const RemoveAddress& f) { encode_varint(out, f.sequence); },
                 [&](const ObservedAddress& f) {
                   encode_varint(out, f.sequence);
                   put_addr(out, f.address);
                 },
             },
             frame);
}

// ---- decoding ----

QuicResult<Frame> decode_frame(Reader& reader) {
  const std::size_t start = reader.position();
  auto type_r = reader.varint("frame type");
  if (!type_r) return quic_error(TransportError::kFrameEncodingError, type_r.error().message);
  const std::uint64_t type = *type_r;
  // RFC 9000 §12.4: frame types use the shortest encoding; MAY be a PROTOCOL_VIOLATION.
  if (reader.position() - start != varint_size(type)) {
    return quic_error(TransportError::kProtocolViolation,
                      "frame type " + std::to_string(type) + " not minimally encoded", type);
  }

  Body b(reader, type);
  // Helper: return the recorded error unless `ok`.
#define IROH_FRAME_TRY(ok) \
  if (!(ok)) return b.take_error()

  if (type >= ft::kStream && type <= ft::kStream + 7) {
    Stream f;
    f.fin = (type & ft::kStreamFin) != 0;
    f.has_length = (type & ft::kStreamLen) != 0;
    IROH_FRAME_TRY(b.varint(f.stream_id, "stream id"));
    if (type & ft::kStreamOff) IROH_FRAME_TRY(b.varint(f.offset, "offset"));
    if (f.has_length) {
      IROH_FRAME_TRY(b.length_prefixed(f.data, "stream data"));
    } else {
      f.data = b.rest();
    }
    if (f.data.size() > kMaxStreamOffset - f.offset) {
      IROH_FRAME_TRY(b.fail("offset + length exceeds 2^62-1"));
    }
    return Frame{f};
  }

  switch (type) {
    case ft::kPadding: {
      Padding f;
      const ByteView rest = reader.peek_rest();
      std::size_t n = 0;
      while (n < rest.size() && rest[n] == 0) ++n;
      (void)reader.bytes(n);
      f.count = 1 + n;
      return Frame{f};
    }
    case ft::kPing:
      return Frame{Ping{}};
    case ft::kAck:
    case ft::kAckEcn: {
      Ack f;
      IROH_FRAME_TRY(b.ack(f));
      return Frame{std::move(f)};
    }
    case ft::kPathAck:
    case ft::kPathAckEcn: {
      PathAck f;
      IROH_FRAME_TRY(b.path_id(f.path_id));
      IROH_FRAME_TRY(b.ack(f.ack));
      return Frame{std::move(f)};
    }
    case ft::kResetStream: {
      ResetStream f;
      IROH_FRAME_TRY(b.varint(f.stream_id, "stream id") &&
                     b.varint(f.error_code, "application error code") &&
                     b.varint(f.final_size, "final size"));
      return Frame{f};
    }
    case ft::kStopSending: {
      StopSending f;
      IROH_FRAME_TRY(b.varint(f.stream_id, "stream id") &&
                     b.varint(f.error_code, "application error code"));
      return Frame{f};
    }
    case ft::kCrypto: {
      Crypto f;
      IROH_FRAME_TRY(b.varint(f.offset, "offset") && b.length_prefixed(f.data, "crypto data"));
      if (f.data.size() > kMaxStreamOffset - f.offset) {
        IROH_FRAME_TRY(b.fail("offset + length exceeds 2^62-1"));
      }
      return Frame{f};
    }
    case ft::kNewToken: {
      NewToken f;
      IROH_FRAME_TRY(b.length_prefixed(f.token, "token"));
      if (f.token.empty()) IROH_FRAME_TRY(b.fail("empty token"));
      return Frame{f};
    }
    case ft::kMaxData: {
      MaxData f;
      IROH_FRAME_TRY(b.varint(f.max, "maximum data"));
      return Frame{f};
    }
    case ft::kMaxStreamData: {
      MaxStreamData f;
      IROH_FRAME_TRY(b.varint(f.stream_id, "stream id") && b.varint(f.max, "maximum stream data"));
      return Frame{f};
    }
    case ft::kMaxStreamsBidi:
    case ft::kMaxStreamsUni: {
      MaxStreams f;
      f.bidi = type == ft::kMaxStreamsBidi;
      IROH_FRAME_TRY(b.varint(f.max, "maximum streams"));
      if (f.max > kMaxStreamCount) IROH_FRAME_TRY(b.fail("maximum streams exceeds 2^60"));
      return Frame{f};
    }
    case ft::kDataBlocked: {
      DataBlocked f;
      IROH_FRAME_TRY(b.varint(f.limit, "maximum data"));
      return Frame{f};
    }
    case ft::kStreamDataBlocked: {
      StreamDataBlocked f;
      IROH_FRAME_TRY(b.varint(f.stream_id, "stream id") &&
                     b.varint(f.limit, "maximum stream data"));
      return Frame{f};
    }
    case ft::kStreamsBlockedBidi:
    case ft::kStreamsBlockedUni: {
      StreamsBlocked f;
      f.bidi = type == ft::kStreamsBlockedBidi;
      IROH_FRAME_TRY(b.varint(f.limit, "maximum streams"));
      if (f.limit > kMaxStreamCount) IROH_FRAME_TRY(b.fail("maximum streams exceeds 2^60"));
      return Frame{f};
    }
    case ft::kNewConnectionId:
    case ft::kPathNewConnectionId: {
      NewConnectionId f;
      if (type == ft::kPathNewConnectionId) {
        std::uint64_t path = 0;
        IROH_FRAME_TRY(b.path_id(path));
        f.path_id = path;
      }
      IROH_FRAME_TRY(b.new_connection_id(f));
      return Frame{f};
    }
    case ft::kRetireConnectionId:
    case ft::kPathRetireConnectionId: {
      RetireConnectionId f;
      if (type == ft::kPathRetireConnectionId) {
        std::uint64_t path = 0;
        IROH_FRAME_TRY(b.path_id(path));
        f.path_id = path;
      }
      IROH_FRAME_TRY(b.varint(f.sequence, "sequence number"));
      return Frame{f};
    }
    case ft::kPathChallenge: {
      PathChallenge f;
      IROH_FRAME_TRY(b.array(f.data, "data"));
      return Frame{f};
    }
    case ft::kPathResponse: {
      PathResponse f;
      IROH_FRAME_TRY(b.array(f.data, "data"));
      return Frame{f};
    }
    case ft::kConnectionClose:
    case ft::kConnectionCloseApp: {
      ConnectionClose f;
      f.application = type == ft::kConnectionCloseApp;
      IROH_FRAME_TRY(b.varint(f.error_code, "error code"));
      if (!f.application) IROH_FRAME_TRY(b.varint(f.frame_type, "frame type"));
      IROH_FRAME_TRY(b.length_prefixed(f.reason, "reason phrase"));
      return Frame{f};
    }
    case ft::kHandshakeDone:
      return Frame{HandshakeDone{}};
    case ft::kImmediateAck:
      return Frame{ImmediateAck{}};
    case ft::kDatagram:
    case ft::kDatagramLen: {
      Datagram f;
      f.has_length = type == ft::kDatagramLen;
      if (f.has_length) {
        IROH_FRAME_TRY(b.length_prefixed(f.data, "datagram data"));
      } else {
        f.data = b.rest();
      }
      return Frame{f};
    }
    case ft::kAckFrequency: {
      AckFrequency f;
      IROH_FRAME_TRY(b.varint(f.sequence, "sequence number") &&
                     b.varint(f.ack_eliciting_threshold, "ack-eliciting threshold") &&
                     b.varint(f.request_max_ack_delay, "request max ack delay") &&
                     b.varint(f.reordering_threshold, "reordering threshold"));
      return Frame{f};
    }
    case ft::kPathAbandon: {
      PathAbandon f;
      IROH_FRAME_TRY(b.path_id(f.path_id) && b.varint(f.error_code, "error code"));
      return Frame{f};
    }
    case ft::kPathStatusBackup:
    case ft::kPathStatusAvailable: {
      PathStatus f;
      f.available = type == ft::kPathStatusAvailable;
      IROH_FRAME_TRY(b.path_id(f.path_id) && b.varint(f.sequence, "status sequence number"));
      return Frame{f};
    }
    case ft::kMaxPathId: {
      MaxPathId f;
      IROH_FRAME_TRY(b.path_id(f.max_path_id, "maximum path id"));
      return Frame{f};
    }
    case ft::kPathsBlocked: {
      PathsBlocked f;
      IROH_FRAME_TRY(b.path_id(f.max_path_id, "maximum path id"));
      return Frame{f};
    }
    case ft::kPathCidsBlocked: {
      PathCidsBlocked f;
      IROH_FRAME_TRY(b.path_id(f.path_id) && b.varint(f.next_sequence, "next sequence number"));
      return Frame{f};
    }
    case ft::kAddAddressV4:
    case ft::kAddAddressV6: {
      AddAddress f;
      IROH_FRAME_TRY(b.varint(f.sequence, "sequence number") &&
                     b.socket_addr(f.address, type == ft::kAddAddressV6));
      return Frame{f};
    }
    case ft::kReachOutV4:
    case ft::kReachOutV6: {
      ReachOut f;
      IROH_FRAME_TRY(b.varint(f.round, "round") &&
                     b.socket_addr(f.address, type == ft::kReachOutV6));
      return Frame{f};
    }
    case ft::kRemoveAddress: {
      RemoveAddress f;
      IROH_FRAME_TRY(b.varint(f.sequence, "sequence number"));
      return Frame{f};
    }
    case ft::kObservedAddressV4:
    case ft::kObservedAddressV6: {
      ObservedAddress f;
      IROH_FRAME_TRY(b.varint(f.sequence, "sequence number") &&
                     b.socket_addr(f.address, type == ft::kObservedAddressV6));
      return Frame{f};
    }
    default:
      break;
  }
#undef IROH_FRAME_TRY
  return quic_error(
      TransportError::kFrameEncodingError,
      "unknown frame type 0x" +
          [&] {
            static const char* kHex = "0123456789abcdef";
            std::string s;
            std::uint64_t v = type;
            do {
              s.insert(s.begin(), kHex[v & 0xf]);
              v >>= 4;
            } while (v != 0);
            return s;
          }(),
      type);
}

// ---- packet-level rules ----

namespace {
constexpr unsigned kI = 1u << static_cast<unsigned>(PacketKind::kInitial);
constexpr unsigned kZ = 1u << static_cast<unsigned>(PacketKind::kZeroRtt);
constexpr unsigned kH = 1u << static_cast<unsigned>(PacketKind::kHandshake);
constexpr unsigned kO = 1u << static_cast<unsigned>(PacketKind::kOneRtt);

unsigned allowed_mask(const Frame& frame) {
  return std::visit(
      Overloaded{
          [](const Padding&) { return kI | kZ | kH | kO; },
          [](const Ping&) { return kI | kZ | kH | kO; },
          [](const Ack&) { return kI | kH | kO; },
          [](const Crypto&) { return kI | kH | kO; },
          [](const ConnectionClose& f) { return f.application ? kZ | kO : kI | kZ | kH | kO; },
          [](const NewToken&) { return kO; },
          [](const PathResponse&) { return kO; },
          [](const HandshakeDone&) { return kO; },
          [](const NewConnectionId& f) { return f.path_id ? kO : kZ | kO; },
          [](const RetireConnectionId& f) { return f.path_id ? kO : kZ | kO; },
          [](const PathAck&) { return kO; },
          [](const PathAbandon&) { return kO; },
          [](const PathStatus&) { return kO; },
          [](const MaxPathId&) { return kO; },
          [](const PathsBlocked&) { return kO; },
          [](const PathCidsBlocked&) { return kO; },
          [](const AddAddress&) { return kO; },
          [](const ReachOut&) { return kO; },
          [](const RemoveAddress&) { return kO; },
          [](const ObservedAddress&) { return kO; },
          [](const auto&) { return kZ | kO; },
      },
      frame);
}
}  // namespace

bool allowed_in(const Frame& frame, PacketKind kind) {
  return (allowed_mask(frame) & (1u << static_cast<unsigned>(kind))) != 0;
}

bool is_ack_eliciting(const Frame& frame) {
  return !(std::holds_alternative<Padding>(frame) || std::holds_alternative<Ack>(frame) ||
           std::holds_alternative<PathAck>(frame) ||
           std::holds_alternative<ConnectionClose>(frame));
}

bool is_probing(const Frame& frame) {
  return std::holds_alternative<Padding>(frame) || std::holds_alternative<PathChallenge>(frame) ||
         std::holds_alternative<PathResponse>(frame) ||
         std::holds_alternative<NewConnectionId>(frame) ||
         std::holds_alternative<ObservedAddress>(frame);
}

QuicResult<std::vector<Frame>> decode_frames(ByteView payload, std::optional<PacketKind> kind) {
  if (payload.empty()) {
    return quic_error(TransportError::kProtocolViolation, "packet payload contains no frames");
  }
  std::vector<Frame> frames;
  Reader reader(payload);
  while (!reader.empty()) {
    auto frame = decode_frame(reader);
    if (!frame) return frame.error();
    if (kind && !allowed_in(*frame, *kind)) {
      static constexpr std::string_view kKindNames[] = {"Initial", "0-RTT", "Handshake", "1-RTT"};
      return quic_error(TransportError::kProtocolViolation,
                        std::string(frame_name(*frame)) + " not allowed in " +
                            std::string(kKindNames[static_cast<unsigned>(*kind)]) + " packets",
                        frame_type_of(*frame));
    }
    frames.push_back(std::move(*frame));
  }
  return frames;
}

}  // namespace iroh::quic

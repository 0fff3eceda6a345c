// Relay protocol frames (spec §6.3). See frame.h.
#include "relay/frame.h"

#include <algorithm>
#include <cassert>
#include <tuple>
#include <type_traits>

#include "base/postcard.h"
#include "quic/reader.h"
#include "quic/varint.h"

namespace iroh::relay {
namespace {

using quic::Reader;

constexpr std::size_t kIdSize = EndpointId::kSize;
constexpr std::size_t kSignatureSize = std::tuple_size_v<Signature>;  // 64
constexpr std::size_t kRestartingSize = 8;
constexpr std::size_t kStatusSize = 1;

// ---- helpers ----

std::string describe(FrameType type) {
  return "relay frame " + std::string(frame_type_name(type)) + " (" +
         std::to_string(static_cast<unsigned>(type)) + ")";
}

Error frame_error(FrameType type, std::string_view problem) {
  return make_error(describe(type) + ": " + std::string(problem));
}

std::string bytes_to_string(ByteView bytes) { return std::string(bytes.begin(), bytes.end()); }

Result<EndpointId> read_id(Reader& r, FrameType type, std::string_view what) {
  auto raw = r.bytes(kIdSize, what);
  if (!raw) return frame_error(type, raw.error().message);
  auto id = EndpointId::from_bytes(*raw);
  if (!id) return frame_error(type, std::string(what) + ": " + id.error().message);
  return id;
}

Error trailing_error(FrameType type, std::size_t n) {
  return frame_error(type, std::to_string(n) + " unexpected trailing byte" + (n == 1 ? "" : "s"));
}

Result<void> expect_size(ByteView body, std::size_t size, FrameType type) {
  if (body.size() != size) {
    return frame_error(type, "body must be exactly " + std::to_string(size) + " byte" +
                                 (size == 1 ? "" : "s") + ", got " + std::to_string(body.size()));
  }
  return {};
}

// ---- per-frame encode/decode pairs ----
// Each pair implements one row of the table in spec §6.3; `body` is everything after the frame type
// and is already known to be at most kMaxFrameBody bytes.

// §6.3 code 0 ServerChallenge (S→C): postcard [u8;16] = exactly 16 raw bytes. §6.4 step 2.
void encode_body(Bytes& out, const ServerChallenge& f) { append(out, f.challenge); }

Result<Frame> decode_challenge(ByteView body) {
  if (auto ok = expect_size(body, kChallengeSize, FrameType::ServerChallenge); !ok) {
    return ok.error();
  }
  ServerChallenge f;
  std::copy(body.begin(), body.end(), f.challenge.begin());
  return Frame{f};
}

// §6.3 code 1 ClientAuth (C→S): postcard { public_key: [u8;32] raw, signature: bytes } where the
// signature is LEB128 length 64 (0x40) + 64 bytes — 97 bytes in all. The key must be a curve point
// (§1.1); any other length prefix is rejected. §6.4 step 3.
void encode_body(Bytes& out, const ClientAuth& f) {
  append(out, f.public_key.bytes());
  postcard::encode_bytes(out, f.signature);
}

Result<Frame> decode_client_auth(ByteView body) {
  constexpr auto kType = FrameType::ClientAuth;
  Reader r(body);
  auto id = read_id(r, kType, "public key");
  if (!id) return id.error();
  // The signature is postcard bytes: LEB128 length (postcard accepts over-long forms) + bytes.
  postcard::Reader pr(r.rest());
  auto len = pr.varint_u64();
  if (!len) return frame_error(kType, "signature length: " + len.error().message);
  if (*len != kSignatureSize) {
    return frame_error(kType, "signature length prefix must be 64, got " + std::to_string(*len));
  }
  auto sig = pr.fixed(kSignatureSize);
  if (!sig) return frame_error(kType, "signature: " + sig.error().message);
  if (pr.remaining() != 0) return trailing_error(kType, pr.remaining());
  ClientAuth f{*id, {}};
  std::copy(sig->begin(), sig->end(), f.signature.begin());
  return Frame{f};
}

// §6.3 code 2 ServerConfirmsAuth (S→C): empty body. §6.4 step 4.
void encode_body(Bytes&, const ServerConfirmsAuth&) {}

Result<Frame> decode_confirms_auth(ByteView body) {
  if (auto ok = expect_size(body, 0, FrameType::ServerConfirmsAuth); !ok) return ok.error();
  return Frame{ServerConfirmsAuth{}};
}

// §6.3 code 3 ServerDeniesAuth (S→C): postcard String = LEB128 length + that many bytes of UTF-8,
// nothing after. §6.4 steps 3-4.
void encode_body(Bytes& out, const ServerDeniesAuth& f) { postcard::encode_str(out, f.reason); }

Result<Frame> decode_denies_auth(ByteView body) {
  constexpr auto kType = FrameType::ServerDeniesAuth;
  postcard::Reader pr(body);
  auto reason = pr.str();  // LEB128 length, bounds check, strict UTF-8 check
  if (!reason) return frame_error(kType, "reason: " + reason.error().message);
  if (pr.remaining() != 0) return trailing_error(kType, pr.remaining());
  return Frame{ServerDeniesAuth{std::move(*reason)}};
}

// §6.3 codes 4/5 ClientToRelayDatagram[Batch] (C→S) and 6/7 RelayToClientDatagram[Batch] (S→C):
// id 32 B | ECN u8 (0..3) | segment_size u16be (batch form only) | payload (rest of the message).
// The batch form is used iff segment_size is set and non-zero; on decode a batch segment_size of 0
// means "none" (and re-encodes in the single form).
void encode_datagram(Bytes& out, const EndpointId& id, std::uint8_t ecn,
                     std::optional<std::uint16_t> segment_size, const Bytes& payload) {
  assert(ecn <= ecn::kCe && "ECN codepoint must be 0..3");
  append(out, id.bytes());
  out.push_back(ecn);
  if (segment_size.value_or(0) != 0) {
    out.push_back(static_cast<std::uint8_t>(*segment_size >> 8));
    out.push_back(static_cast<std::uint8_t>(*segment_size));
  }
  append(out, payload);
}
void encode_body(Bytes& out, const ClientToRelayDatagram& f) {
  encode_datagram(out, f.dst, f.ecn, f.segment_size, f.payload);
}
void encode_body(Bytes& out, const RelayToClientDatagram& f) {
  encode_datagram(out, f.src, f.ecn, f.segment_size, f.payload);
}

template <class Datagram>
Result<Frame> decode_datagram(ByteView body, FrameType type, bool batch) {
  constexpr bool kToRelay = std::is_same_v<Datagram, ClientToRelayDatagram>;
  Reader r(body);
  auto id = read_id(r, type, kToRelay ? "destination id" : "source id");
  if (!id) return id.error();
  auto ecn = r.u8("ECN");
  if (!ecn) return frame_error(type, ecn.error().message);
  if (*ecn > ecn::kCe) {
    return frame_error(type, "invalid ECN codepoint " + std::to_string(*ecn) + " (must be 0..3)");
  }
  std::optional<std::uint16_t> segment_size;
  if (batch) {
    auto seg = r.u16be("segment size");
    if (!seg) return frame_error(type, seg.error().message);
    if (*seg != 0) segment_size = *seg;
  }
  ByteView payload = r.rest();
  Datagram d;
  if constexpr (kToRelay) {
    d.dst = *id;
  } else {
    d.src = *id;
  }
  d.ecn = *ecn;
  d.segment_size = segment_size;
  d.payload.assign(payload.begin(), payload.end());
  return Frame{std::move(d)};
}

// §6.3 code 8 EndpointGone (S→C): exactly one 32-byte id, a curve point. §6.5.
void encode_body(Bytes& out, const EndpointGone& f) { append(out, f.id.bytes()); }

Result<Frame> decode_endpoint_gone(ByteView body) {
  constexpr auto kType = FrameType::EndpointGone;
  if (auto ok = expect_size(body, kIdSize, kType); !ok) return ok.error();
  Reader r(body);
  auto id = read_id(r, kType, "id");
  if (!id) return id.error();
  return Frame{EndpointGone{*id}};
}

// §6.3 codes 9/10 Ping / Pong (both directions): exactly 8 bytes. §6.5.
void encode_body(Bytes& out, const Ping& f) { append(out, f.data); }
void encode_body(Bytes& out, const Pong& f) { append(out, f.data); }

template <class PingOrPong>
Result<Frame> decode_ping(ByteView body, FrameType type) {
  if (auto ok = expect_size(body, kPingSize, type); !ok) return ok.error();
  PingOrPong f;
  std::copy(body.begin(), body.end(), f.data.begin());
  return Frame{f};
}

// §6.3 code 11 Health (S→C, iroh-relay-v1 only): the rest of the message as UTF-8 text, no length
// prefix. The version check is in decode().
void encode_body(Bytes& out, const Health& f) { append(out, as_bytes(f.problem)); }

Result<Frame> decode_health(ByteView body) {
  std::string text = bytes_to_string(body);
  if (!postcard::is_valid_utf8(text)) {
    return frame_error(FrameType::Health, "text is not valid UTF-8");
  }
  return Frame{Health{std::move(text)}};
}

// §6.3 code 12 Restarting (S→C): reconnect_in u32be ms | try_for u32be ms, exactly 8 bytes. §6.8.
void put_u32be(Bytes& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}
void encode_body(Bytes& out, const Restarting& f) {
  put_u32be(out, f.reconnect_in_ms);
  put_u32be(out, f.try_for_ms);
}

Result<Frame> decode_restarting(ByteView body) {
  if (auto ok = expect_size(body, kRestartingSize, FrameType::Restarting); !ok) return ok.error();
  Reader r(body);
  Restarting f;
  f.reconnect_in_ms = *r.u32be();  // cannot fail: size checked above
  f.try_for_ms = *r.u32be();
  return Frame{f};
}

// §6.3 code 13 Status (S→C, iroh-relay-v2 only): exactly 1 byte; unknown codes are kept as-is.
// The version check is in decode().
void encode_body(Bytes& out, const Status& f) { out.push_back(f.code); }

Result<Frame> decode_status(ByteView body) {
  if (auto ok = expect_size(body, kStatusSize, FrameType::Status); !ok) return ok.error();
  return Frame{Status{body[0]}};
}

}  // namespace

// ---- protocol version ----

std::string_view to_string(ProtocolVersion version) {
  return version == ProtocolVersion::V1 ? kSubprotocolV1 : kSubprotocolV2;
}

Result<ProtocolVersion> parse_protocol_version(std::string_view subprotocol) {
  if (subprotocol == kSubprotocolV1) return ProtocolVersion::V1;
  if (subprotocol == kSubprotocolV2) return ProtocolVersion::V2;
  return make_error("unknown relay protocol version \"" + std::string(subprotocol) +
                    "\" (expected iroh-relay-v1 or iroh-relay-v2)");
}

// ---- frame types ----

std::string_view frame_type_name(FrameType type) {
  switch (type) {
    case FrameType::ServerChallenge:
      return "ServerChallenge";
    case FrameType::ClientAuth:
      return "ClientAuth";
    case FrameType::ServerConfirmsAuth:
      return "ServerConfirmsAuth";
    case FrameType::ServerDeniesAuth:
      return "ServerDeniesAuth";
    case FrameType::ClientToRelayDatagram:
      return "ClientToRelayDatagram";
    case FrameType::ClientToRelayDatagramBatch:
      return "ClientToRelayDatagramBatch";
    case FrameType::RelayToClientDatagram:
      return "RelayToClientDatagram";
    case FrameType::RelayToClientDatagramBatch:
      return "RelayToClientDatagramBatch";
    case FrameType::EndpointGone:
      return "EndpointGone";
    case FrameType::Ping:
      return "Ping";
    case FrameType::Pong:
      return "Pong";
    case FrameType::Health:
      return "Health";
    case FrameType::Restarting:
      return "Restarting";
    case FrameType::Status:
      return "Status";
  }
  return "Unknown";
}

Direction direction(FrameType type) {
  switch (type) {
    case FrameType::ClientAuth:
    case FrameType::ClientToRelayDatagram:
    case FrameType::ClientToRelayDatagramBatch:
      return Direction::ClientToServer;
    case FrameType::Ping:
    case FrameType::Pong:
      return Direction::Both;
    default:
      return Direction::ServerToClient;
  }
}

std::string_view Status::name() const {
  switch (code) {
    case kHealthy:
      return "Healthy";
    case kSameEndpointIdConnected:
      return "SameEndpointIdConnected";
    case kRateLimited:
      return "RateLimited";
    default:
      return "Unknown";
  }
}

FrameType frame_type(const Frame& frame) {
  struct Visitor {
    FrameType operator()(const ServerChallenge&) const { return FrameType::ServerChallenge; }
    FrameType operator()(const ClientAuth&) const { return FrameType::ClientAuth; }
    FrameType operator()(const ServerConfirmsAuth&) const { return FrameType::ServerConfirmsAuth; }
    FrameType operator()(const ServerDeniesAuth&) const { return FrameType::ServerDeniesAuth; }
    FrameType operator()(const ClientToRelayDatagram& f) const {
      return f.segment_size.value_or(0) != 0 ? FrameType::ClientToRelayDatagramBatch
                                             : FrameType::ClientToRelayDatagram;
    }
    FrameType operator()(const RelayToClientDatagram& f) const {
      return f.segment_size.value_or(0) != 0 ? FrameType::RelayToClientDatagramBatch
                                             : FrameType::RelayToClientDatagram;
    }
    FrameType operator()(const EndpointGone&) const { return FrameType::EndpointGone; }
    FrameType operator()(const Ping&) const { return FrameType::Ping; }
    FrameType operator()(const Pong&) const { return FrameType::Pong; }
    FrameType operator()(const Health&) const { return FrameType::Health; }
    FrameType operator()(const Restarting&) const { return FrameType::Restarting; }
    FrameType operator()(const Status&) const { return FrameType::Status; }
  };
  return std::visit(Visitor{}, frame);
}

std::string_view frame_name(const Frame& frame) { return frame_type_name(frame_type(frame)); }

// ---- codec ----

void encode_to(Bytes& out, const Frame& frame) {
  quic::encode_varint(out, static_cast<std::uint64_t>(frame_type(frame)));
  std::visit([&out](const auto& f) { encode_body(out, f); }, frame);
}

Bytes encode(const Frame& frame) {
  Bytes out;
  encode_to(out, frame);
  return out;
}

Result<Frame> decode(ByteView message, ProtocolVersion version) {
  Reader r(message);
  auto code = r.varint("relay frame type");
  if (!code) return make_error("relay frame: " + code.error().message);
  ByteView body = r.rest();
  if (*code > static_cast<std::uint64_t>(FrameType::Status)) {
    return make_error("relay frame: unknown frame type " + std::to_string(*code));
  }
  const auto type = static_cast<FrameType>(*code);
  if (body.size() > kMaxFrameBody) {
    return frame_error(type, "body of " + std::to_string(body.size()) +
                                 " bytes exceeds the maximum of " + std::to_string(kMaxFrameBody));
  }
  switch (type) {
    case FrameType::ServerChallenge:
      return decode_challenge(body);
    case FrameType::ClientAuth:
      return decode_client_auth(body);
    case FrameType::ServerConfirmsAuth:
      return decode_confirms_auth(body);
    case FrameType::ServerDeniesAuth:
      return decode_denies_auth(body);
    case FrameType::ClientToRelayDatagram:
      return decode_datagram<ClientToRelayDatagram>(body, type, false);
    case FrameType::ClientToRelayDatagramBatch:
      return decode_datagram<ClientToRelayDatagram>(body, type, true);
    case FrameType::RelayToClientDatagram:
      return decode_datagram<RelayToClientDatagram>(body, type, false);
    case FrameType::RelayToClientDatagramBatch:
      return decode_datagram<RelayToClientDatagram>(body, type, true);
    case FrameType::EndpointGone:
      return decode_endpoint_gone(body);
    case FrameType::Ping:
      return decode_ping<Ping>(body, type);
    case FrameType::Pong:
      return decode_ping<Pong>(body, type);
    case FrameType::Health:
      if (version != ProtocolVersion::V1) {
        return frame_error(type, "only valid in iroh-relay-v1, this connection uses " +
                                     std::string(to_string(version)));
      }
      return decode_health(body);
    case FrameType::Restarting:
      return decode_restarting(body);
    case FrameType::Status:
      if (version != ProtocolVersion::V2) {
        return frame_error(type, "only valid in iroh-relay-v2, this connection uses " +
                                     std::string(to_string(version)));
      }
      return decode_status(body);
  }
  return make_error("relay frame: unknown frame type " + std::to_string(*code));  // unreachable
}

}  // namespace iroh::relay

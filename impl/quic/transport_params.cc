// QUIC transport parameters. See transport_params.h.
#include "quic/transport_params.h"

#include <algorithm>
#include <string>

#include "quic/reader.h"
#include "quic/varint.h"

namespace iroh::quic {
namespace {

std::string hex_id(std::uint64_t id) {
  static const char* kHex = "0123456789abcdef";
  std::string s;
  do {
    s.insert(s.begin(), kHex[id & 0xf]);
    id >>= 4;
  } while (id != 0);
  return "0x" + s;
}

QuicError tp_error(const std::string& message) {
  return quic_error(TransportError::kTransportParameterError, message);
}

constexpr std::uint64_t kMaxStreams = std::uint64_t{1} << 60;
constexpr std::uint64_t kMaxPathId = 0xffffffff;
constexpr std::uint64_t kMinAckDelayLimit = std::uint64_t{1} << 24;
constexpr std::size_t kMaxCid = 20;

bool server_only(std::uint64_t id) {
  return id == tp_id::kOriginalDestinationConnectionId || id == tp_id::kStatelessResetToken ||
         id == tp_id::kPreferredAddress || id == tp_id::kRetrySourceConnectionId;
}

void put_param(Bytes& out, std::uint64_t id, ByteView value) {
  encode_varint(out, id);
  encode_varint(out, value.size());
  append(out, value);
}
void put_varint_param(Bytes& out, std::uint64_t id, std::uint64_t value) {
  encode_varint(out, id);
  encode_varint(out, varint_size(value));
  encode_varint(out, value);
}
void put_int_unless_default(Bytes& out, std::uint64_t id, std::uint64_t value, std::uint64_t def) {
  if (value != def) put_varint_param(out, id, value);
}

}  // namespace

TransportParameters iroh_transport_parameters(ByteView initial_source_connection_id) {
  TransportParameters p;
  p.max_idle_timeout = 30000;
  p.max_udp_payload_size = 1472;
  p.initial_max_data = (std::uint64_t{1} << 62) - 1;
  p.initial_max_stream_data_bidi_local = 1'250'000;
  p.initial_max_stream_data_bidi_remote = 1'250'000;
  p.initial_max_stream_data_uni = 1'250'000;
  p.initial_max_streams_bidi = 100;
  p.initial_max_streams_uni = 100;
  p.active_connection_id_limit = 5;
  p.initial_source_connection_id =
      Bytes(initial_source_connection_id.begin(), initial_source_connection_id.end());
  p.max_datagram_frame_size = 65535;
  p.min_ack_delay = 1000;
  p.initial_max_path_id = 7;
  p.n0_nat_traversal = 0x20;
  return p;
}

bool is_grease_id(std::uint64_t id) { return id >= 27 && (id - 27) % 31 == 0; }

GreaseParameter make_grease_parameter(ByteView random) {
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < 8 && i < random.size(); ++i) n = (n << 8) | random[i];
  // Largest N with 31·N + 27 ≤ 2^62 - 1.
  constexpr std::uint64_t kMaxN = (kVarintMax - 27) / 31;
  n %= kMaxN + 1;
  GreaseParameter g;
  g.id = 31 * n + 27;
  const std::size_t len = random.size() > 8 ? random[8] % 16 : 0;
  for (std::size_t i = 0; i < len && 9 + i < random.size(); ++i) g.value.push_back(random[9 + i]);
  return g;
}

Bytes encode_transport_parameters(const TransportParameters& p, Role role,
                                  const std::optional<GreaseParameter>& grease) {
  const bool server = role == Role::kServer;
  Bytes out;
  if (server && p.original_destination_connection_id) {
    put_param(out, tp_id::kOriginalDestinationConnectionId, *p.original_destination_connection_id);
  }
  put_int_unless_default(out, tp_id::kMaxIdleTimeout, p.max_idle_timeout, 0);
  if (server && p.stateless_reset_token) {
    put_param(out, tp_id::kStatelessResetToken, *p.stateless_reset_token);
  }
  put_int_unless_default(out, tp_id::kMaxUdpPayloadSize, p.max_udp_payload_size,
                         kDefaultMaxUdpPayloadSize);
  put_int_unless_default(out, tp_id::kInitialMaxData, p.initial_max_data, 0);
  put_int_unless_default(out, tp_id::kInitialMaxStreamDataBidiLocal,
                         p.initial_max_stream_data_bidi_local, 0);
  put_int_unless_default(out, tp_id::kInitialMaxStreamDataBidiRemote,
                         p.initial_max_stream_data_bidi_remote, 0);
  put_int_unless_default(out, tp_id::kInitialMaxStreamDataUni, p.initial_max_stream_data_uni, 0);
  put_int_unless_default(out, tp_id::kInitialMaxStreamsBidi, p.initial_max_streams_bidi, 0);
  put_int_unless_default(out, tp_id::kInitialMaxStreamsUni, p.initial_max_streams_uni, 0);
  put_int_unless_default(out, tp_id::kAckDelayExponent, p.ack_delay_exponent,
                         kDefaultAckDelayExponent);
  put_int_unless_default(out, tp_id::kMaxAckDelay, p.max_ack_delay, kDefaultMaxAckDelayMs);
  if (p.disable_active_migration) put_param(out, tp_id::kDisableActiveMigration, {});
  if (server && p.preferred_address) {
    const PreferredAddress& a = *p.preferred_address;
    Bytes v;
    append(v, a.ipv4);
    v.push_back(static_cast<std::uint8_t>(a.ipv4_port >> 8));
    v.push_back(static_cast<std::uint8_t>(a.ipv4_port));
    append(v, a.ipv6);
    v.push_back(static_cast<std::uint8_t>(a.ipv6_port >> 8));
    v.push_back(static_cast<std::uint8_t>(a.ipv6_port));
    v.push_back(static_cast<std::uint8_t>(a.connection_id.size()));
    append(v, a.connection_id);
    append(v, a.stateless_reset_token);
    put_param(out, tp_id::kPreferredAddress, v);
  }
  put_int_unless_default(out, tp_id::kActiveConnectionIdLimit, p.active_connection_id_limit,
                         kDefaultActiveConnectionIdLimit);
  if (p.initial_source_connection_id) {
    put_param(out, tp_id::kInitialSourceConnectionId, *p.initial_source_connection_id);
  }
  if (server && p.retry_source_connection_id) {
    put_param(out, tp_id::kRetrySourceConnectionId, *p.retry_source_connection_id);
  }
  if (p.max_datagram_frame_size) {
    put_varint_param(out, tp_id::kMaxDatagramFrameSize, *p.max_datagram_frame_size);
  }
  if (p.initial_max_path_id)
    put_varint_param(out, tp_id::kInitialMaxPathId, *p.initial_max_path_id);
  if (p.min_ack_delay) put_varint_param(out, tp_id::kMinAckDelay, *p.min_ack_delay);
  if (p.observed_address) {
    put_varint_param(out, tp_id::kObservedAddress, static_cast<std::uint64_t>(*p.observed_address));
  }
  if (p.n0_nat_traversal) {
    const std::uint8_t v = *p.n0_nat_traversal;
    put_param(out, tp_id::kN0NatTraversal, ByteView(&v, 1));
  }
  if (grease) put_param(out, grease->id, grease->value);
  return out;
}

QuicResult<TransportParameters> decode_transport_parameters(ByteView data, Role peer) {
  TransportParameters p;
  std::vector<std::uint64_t> seen;
  Reader r(data);
  while (!r.empty()) {
    auto id_r = r.varint("transport parameter id");
    if (!id_r) return tp_error(id_r.error().message);
    const std::uint64_t id = *id_r;
    const std::string name = "transport parameter " + hex_id(id);
    auto len_r = r.varint("transport parameter length");
    if (!len_r) return tp_error(name + ": " + len_r.error().message);
    if (*len_r > r.remaining()) {
      return tp_error(name + ": length " + std::to_string(*len_r) + " exceeds the " +
                      std::to_string(r.remaining()) + " remaining bytes");
    }
    const ByteView value = *r.bytes(static_cast<std::size_t>(*len_r));
    seen.push_back(id);

    if (peer == Role::kClient && server_only(id)) {
      return tp_error(name + " is server-only but was sent by a client");
    }

    // A varint filling the whole value.
    auto integer = [&]() -> QuicResult<std::uint64_t> {
      Reader vr(value);
      auto v = vr.varint("value");
      if (!v) return tp_error(name + ": " + v.error().message);
      if (!vr.empty()) return tp_error(name + ": trailing bytes after varint value");
      return *v;
    };
    auto cid = [&]() -> QuicResult<Bytes> {
      if (value.size() > kMaxCid) {
        return tp_error(name + ": connection id of " + std::to_string(value.size()) +
                        " bytes exceeds 20");
      }
      return Bytes(value.begin(), value.end());
    };
#define IROH_TP_INT(field)    \
  {                           \
    auto v = integer();       \
    if (!v) return v.error(); \
    p.field = *v;             \
  }
#define IROH_TP_CID(field)    \
  {                           \
    auto v = cid();           \
    if (!v) return v.error(); \
    p.field = std::move(*v);  \
  }

    switch (id) {
      case tp_id::kOriginalDestinationConnectionId:
        IROH_TP_CID(original_destination_connection_id);
        break;
      case tp_id::kMaxIdleTimeout:
        IROH_TP_INT(max_idle_timeout);
        break;
      case tp_id::kStatelessResetToken: {
        if (value.size() != 16) {
          return tp_error(name + ": stateless_reset_token must be 16 bytes, got " +
                          std::to_string(value.size()));
        }
        ByteArray<16> token{};
        std::copy(value.begin(), value.end(), token.begin());
        p.stateless_reset_token = token;
        break;
      }
      case tp_id::kMaxUdpPayloadSize:
        IROH_TP_INT(max_udp_payload_size);
        if (p.max_udp_payload_size < 1200) {
          return tp_error(name + ": max_udp_payload_size " +
                          std::to_string(p.max_udp_payload_size) + " below 1200");
        }
        break;
      case tp_id::kInitialMaxData:
        IROH_TP_INT(initial_max_data);
        break;
      case tp_id::kInitialMaxStreamDataBidiLocal:
        IROH_TP_INT(initial_max_stream_data_bidi_local);
        break;
      case tp_id::kInitialMaxStreamDataBidiRemote:
        IROH_TP_INT(initial_max_stream_data_bidi_remote);
        break;
      case tp_id::kInitialMaxStreamDataUni:
        IROH_TP_INT(initial_max_stream_data_uni);
        break;
      case tp_id::kInitialMaxStreamsBidi:
        IROH_TP_INT(initial_max_streams_bidi);
        if (p.initial_max_streams_bidi > kMaxStreams) {
          return tp_error(name + ": initial_max_streams_bidi exceeds 2^60");
        }
        break;
      case tp_id::kInitialMaxStreamsUni:
        IROH_TP_INT(initial_max_streams_uni);
        if (p.initial_max_streams_uni > kMaxStreams) {
          return tp_error(name + ": initial_max_streams_uni exceeds 2^60");
        }
        break;
      case tp_id::kAckDelayExponent:
        IROH_TP_INT(ack_delay_exponent);
        if (p.ack_delay_exponent > 20) {
          return tp_error(name + ": ack_delay_exponent " + std::to_string(p.ack_delay_exponent) +
                          " exceeds 20");
        }
        break;
      case tp_id::kMaxAckDelay:
        IROH_TP_INT(max_ack_delay);
        if (p.max_ack_delay >= (std::uint64_t{1} << 14)) {
          return tp_error(name + ": max_ack_delay " + std::to_string(p.max_ack_delay) +
                          " is 2^14 or more");
        }
        break;
      case tp_id::kDisableActiveMigration:
        if (!value.empty()) return tp_error(name + ": disable_active_migration must be empty");
        p.disable_active_migration = true;
        break;
      case tp_id::kPreferredAddress: {
        Reader vr(value);
        PreferredAddress a;
        auto v4 = vr.array<4>("IPv4 address");
        auto v4port = vr.u16be("IPv4 port");
        auto v6 = vr.array<16>("IPv6 address");
        auto v6port = vr.u16be("IPv6 port");
        auto cid_len = vr.u8("connection id length");
        if (!v4 || !v4port || !v6 || !v6port || !cid_len) {
          return tp_error(name + ": truncated preferred_address");
        }
        if (*cid_len < 1 || *cid_len > kMaxCid) {
          return tp_error(name + ": preferred_address connection id length " +
                          std::to_string(*cid_len) + " not in 1..20");
        }
        auto cid_bytes = vr.bytes(*cid_len, "connection id");
        auto token = vr.array<16>("stateless reset token");
        if (!cid_bytes || !token) return tp_error(name + ": truncated preferred_address");
        if (!vr.empty()) return tp_error(name + ": trailing bytes in preferred_address");
        a.ipv4 = *v4;
        a.ipv4_port = *v4port;
        a.ipv6 = *v6;
        a.ipv6_port = *v6port;
        a.connection_id.assign(cid_bytes->begin(), cid_bytes->end());
        a.stateless_reset_token = *token;
        p.preferred_address = std::move(a);
        break;
      }
      case tp_id::kActiveConnectionIdLimit:
        IROH_TP_INT(active_connection_id_limit);
        if (p.active_connection_id_limit < 2) {
          return tp_error(name + ": active_connection_id_limit " +
                          std::to_string(p.active_connection_id_limit) + " below 2");
        }
        break;
      case tp_id::kInitialSourceConnectionId:
        IROH_TP_CID(initial_source_connection_id);
        break;
      case tp_id::kRetrySourceConnectionId:
        IROH_TP_CID(retry_source_connection_id);
        break;
      case tp_id::kMaxDatagramFrameSize:
        IROH_TP_INT(max_datagram_frame_size);
        break;
      case tp_id::kGreaseQuicBit:
        if (!value.empty()) return tp_error(name + ": grease_quic_bit must be empty");
        p.grease_quic_bit = true;
        break;
      case tp_id::kInitialMaxPathId:
        IROH_TP_INT(initial_max_path_id);
        if (*p.initial_max_path_id > kMaxPathId) {
          return tp_error(name + ": initial_max_path_id exceeds 2^32-1");
        }
        break;
      case tp_id::kMinAckDelay:
        IROH_TP_INT(min_ack_delay);
        if (*p.min_ack_delay >= kMinAckDelayLimit) {
          return tp_error(name + ": min_ack_delay is 2^24 or more");
        }
        break;
      case tp_id::kObservedAddress: {
        auto v = integer();
        if (!v) return v.error();
        if (*v > 2) return tp_error(name + ": observed_address role " + std::to_string(*v));
        p.observed_address = static_cast<AddressDiscoveryRole>(*v);
        break;
      }
      case tp_id::kN0NatTraversal:
        if (value.size() != 1) {
          return tp_error(name + ": n0_nat_traversal must be 1 byte, got " +
                          std::to_string(value.size()));
        }
        if (value[0] == 0) return tp_error(name + ": n0_nat_traversal must be non-zero");
        p.n0_nat_traversal = value[0];
        break;
      default:
        p.unknown.push_back({id, Bytes(value.begin(), value.end())});
        break;
    }
#undef IROH_TP_INT
#undef IROH_TP_CID
  }

  std::sort(seen.begin(), seen.end());
  if (auto dup = std::adjacent_find(seen.begin(), seen.end()); dup != seen.end()) {
    return tp_error("duplicate transport parameter " + hex_id(*dup));
  }
  // ack-frequency draft §3: min_ack_delay (µs) must not exceed max_ack_delay (ms).
  if (p.min_ack_delay && *p.min_ack_delay > p.max_ack_delay * 1000) {
    return tp_error("min_ack_delay " + std::to_string(*p.min_ack_delay) +
                    " µs exceeds max_ack_delay " + std::to_string(p.max_ack_delay) + " ms");
  }
  return p;
}

}  // namespace iroh::quic

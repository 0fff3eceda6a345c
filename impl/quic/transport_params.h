// QUIC transport parameters (RFC 9000 §18) with the extensions iroh uses (spec §4.2):
// max_datagram_frame_size (RFC 9221), min_ack_delay (ack-frequency draft), initial_max_path_id
// (draft multipath), n0_nat_traversal (n0 QNT) and observed_address (QAD).
//
// Wire form: a sequence of (id varint, length varint, value) entries, in any order.
//
//   id              name                                  value
//   0x00            original_destination_connection_id    CID ≤ 20 B       (server only)
//   0x01            max_idle_timeout                      varint ms        default 0
//   0x02            stateless_reset_token                 16 B             (server only)
//   0x03            max_udp_payload_size                  varint ≥ 1200    default 65527
//   0x04            initial_max_data                      varint           default 0
//   0x05/06/07      initial_max_stream_data_bidi_local/bidi_remote/uni     default 0
//   0x08/0x09       initial_max_streams_bidi/uni          varint ≤ 2^60    default 0
//   0x0a            ack_delay_exponent                    varint ≤ 20      default 3
//   0x0b            max_ack_delay                         varint < 2^14 ms default 25
//   0x0c            disable_active_migration              empty
//   0x0d            preferred_address                     v4 4 B, port u16be, v6 16 B, port u16be,
//                                                         cid len u8 (1..20), cid, token 16 B
//                                                         (server only)
//   0x0e            active_connection_id_limit            varint ≥ 2       default 2
//   0x0f            initial_source_connection_id          CID ≤ 20 B
//   0x10            retry_source_connection_id            CID ≤ 20 B       (server only)
//   0x20            max_datagram_frame_size               varint
//   0x2ab2          grease_quic_bit (RFC 9287)            empty            (decoded, never sent)
//   0x3e            initial_max_path_id                   varint ≤ 2^32-1
//   0xff04de1b      min_ack_delay                         varint µs < 2^24, ≤ max_ack_delay·1000
//   0x9f81a176      observed_address                      varint role 0/1/2
//   0x3d7f91120401  n0_nat_traversal                      exactly 1 raw byte, non-zero
//   31·N+27         GREASE (reserved)                     anything, ignored
//
// decode() ignores unknown (incl. GREASE) ids but keeps them in `unknown` for inspection; every
// other problem — truncation, duplicate ids, malformed lengths, values out of range, server-only
// parameters from a client — is a TRANSPORT_PARAMETER_ERROR with a reason. Varint values need not
// be minimally encoded (RFC 9000 §16) but must fill the parameter's length exactly.
//
// Not checked here (they need the handshake's context, RFC 9000 §7.3): presence and values of the
// initial/original/retry source connection IDs.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "base/bytes.h"
#include "base/result.h"
#include "quic/error.h"

namespace iroh::quic {

// Which side of the connection sent (or sends) the parameters.
enum class Role : std::uint8_t { kClient, kServer };

namespace tp_id {
inline constexpr std::uint64_t kOriginalDestinationConnectionId = 0x00;
inline constexpr std::uint64_t kMaxIdleTimeout = 0x01;
inline constexpr std::uint64_t kStatelessResetToken = 0x02;
inline constexpr std::uint64_t kMaxUdpPayloadSize = 0x03;
inline constexpr std::uint64_t kInitialMaxData = 0x04;
inline constexpr std::uint64_t kInitialMaxStreamDataBidiLocal = 0x05;
inline constexpr std::uint64_t kInitialMaxStreamDataBidiRemote = 0x06;
inline constexpr std::uint64_t kInitialMaxStreamDataUni = 0x07;
inline constexpr std::uint64_t kInitialMaxStreamsBidi = 0x08;
inline constexpr std::uint64_t kInitialMaxStreamsUni = 0x09;
inline constexpr std::uint64_t kAckDelayExponent = 0x0a;
inline constexpr std::uint64_t kMaxAckDelay = 0x0b;
inline constexpr std::uint64_t kDisableActiveMigration = 0x0c;
inline constexpr std::uint64_t kPreferredAddress = 0x0d;
inline constexpr std::uint64_t kActiveConnectionIdLimit = 0x0e;
inline constexpr std::uint64_t kInitialSourceConnectionId = 0x0f;
inline constexpr std::uint64_t kRetrySourceConnectionId = 0x10;
inline constexpr std::uint64_t kMaxDatagramFrameSize = 0x20;
inline constexpr std::uint64_t kGreaseQuicBit = 0x2ab2;
inline constexpr std::uint64_t kInitialMaxPathId = 0x3e;
inline constexpr std::uint64_t kMinAckDelay = 0xff04de1b;
inline constexpr std::uint64_t kObservedAddress = 0x9f81a176;
inline constexpr std::uint64_t kN0NatTraversal = 0x3d7f91120401;
}  // namespace tp_id

// RFC 9000 §18.2 defaults.
inline constexpr std::uint64_t kDefaultMaxUdpPayloadSize = 65527;
inline constexpr std::uint64_t kDefaultAckDelayExponent = 3;
inline constexpr std::uint64_t kDefaultMaxAckDelayMs = 25;
inline constexpr std::uint64_t kDefaultActiveConnectionIdLimit = 2;

// QAD role (draft-seemann-quic-address-discovery), as noq numbers it.
enum class AddressDiscoveryRole : std::uint8_t { kSendOnly = 0, kReceiveOnly = 1, kBoth = 2 };

struct PreferredAddress {
  ByteArray<4> ipv4{};
  std::uint16_t ipv4_port = 0;
  ByteArray<16> ipv6{};
  std::uint16_t ipv6_port = 0;
  Bytes connection_id;  // 1..20 bytes
  ByteArray<16> stateless_reset_token{};
  friend bool operator==(const PreferredAddress&, const PreferredAddress&) = default;
};

// A parameter decode() did not recognise (including GREASE ids), kept for inspection.
struct UnknownParameter {
  std::uint64_t id = 0;
  Bytes value;
  friend bool operator==(const UnknownParameter&, const UnknownParameter&) = default;
};

struct TransportParameters {
  std::optional<Bytes> original_destination_connection_id;  // server only
  std::uint64_t max_idle_timeout = 0;                       // ms, 0 = none
  std::optional<ByteArray<16>> stateless_reset_token;       // server only
  std::uint64_t max_udp_payload_size = kDefaultMaxUdpPayloadSize;
  std::uint64_t initial_max_data = 0;
  std::uint64_t initial_max_stream_data_bidi_local = 0;
  std::uint64_t initial_max_stream_data_bidi_remote = 0;
  std::uint64_t initial_max_stream_data_uni = 0;
  std::uint64_t initial_max_streams_bidi = 0;
  std::uint64_t initial_max_streams_uni = 0;
  std::uint64_t ack_delay_exponent = kDefaultAckDelayExponent;
  std::uint64_t max_ack_delay = kDefaultMaxAckDelayMs;  // ms
  bool disable_active_migration = false;
  std::optional<PreferredAddress> preferred_address;  // server only
  std::uint64_t active_connection_id_limit = kDefaultActiveConnectionIdLimit;
  std::optional<Bytes> initial_source_connection_id;
  std::optional<Bytes> retry_source_connection_id;  // server only
  std::optional<std::uint64_t> max_datagram_frame_size;
  bool grease_quic_bit = false;                // peer sent 0x2ab2; we never send it (spec §4.1)
  std::optional<std::uint64_t> min_ack_delay;  // µs
  std::optional<std::uint64_t> initial_max_path_id;  // multipath on iff both sides send it
  std::optional<std::uint8_t> n0_nat_traversal;      // non-zero: max QNT addresses
  std::optional<AddressDiscoveryRole> observed_address;
  std::vector<UnknownParameter> unknown;  // decode only; never encoded

  friend bool operator==(const TransportParameters&, const TransportParameters&) = default;
};

// iroh's parameter set (spec §4.2): idle 30000 ms, max_udp_payload_size 1472, max_data 2^62-1,
// stream data 1 250 000 ×3, streams 100/100, active_connection_id_limit 5,
// max_datagram_frame_size 65535, min_ack_delay 1000 µs, initial_max_path_id 7, n0_nat_traversal 32.
TransportParameters iroh_transport_parameters(ByteView initial_source_connection_id);

// A reserved GREASE parameter (id 31·N+27, RFC 9000 §18.1).
struct GreaseParameter {
  std::uint64_t id = 27;
  Bytes value;
};
bool is_grease_id(std::uint64_t id);
// Builds one from caller-supplied randomness (no global RNG): bytes 0..7 pick N, byte 8 the value
// length (0..15), the following bytes the value (fewer if `random` is short). Pass 24 bytes.
GreaseParameter make_grease_parameter(ByteView random);

// Encodes `params` as sent by `role`, in id order. Integer parameters equal to their RFC default
// are omitted, grease_quic_bit and `unknown` are never sent, and server-only parameters are
// omitted when role is Client. `grease`, if given, is appended last.
Bytes encode_transport_parameters(const TransportParameters& params, Role role,
                                  const std::optional<GreaseParameter>& grease = std::nullopt);

// Decodes the parameters sent by `peer`. See the header comment for the rules.
QuicResult<TransportParameters> decode_transport_parameters(ByteView data, Role peer);

// Short names.
inline Bytes encode(const TransportParameters& params, Role role,
                    const std::optional<GreaseParameter>& grease = std::nullopt) {
  return encode_transport_parameters(params, role, grease);
}
inline QuicResult<TransportParameters> decode(ByteView data, Role peer) {
  return decode_transport_parameters(data, peer);
}

}  // namespace iroh::quic

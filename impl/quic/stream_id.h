// Stream IDs (RFC 9000 §2.1) and stream-count limits (RFC 9000 §4.6, §19.11, §19.14).
//
// A stream ID's two low bits say who opened it and in which direction:
//   bit 0: 0 client-initiated, 1 server-initiated; bit 1: 0 bidirectional, 1 unidirectional.
// The rest is the stream's index within its type (id >> 2); each type counts up from 0 and a
// stream of index n implicitly opens every lower index of the same type (RFC 9000 §3.2).
//
// StreamLimits tracks one direction (bidi or uni) of one connection, both sides of the limit:
//   - streams WE open: the peer grants a cumulative count (initial_max_streams_* transport
//     parameter, then MAX_STREAMS §19.11); open_next() hands out IDs while under it and
//     blocked_at() gives the value for STREAMS_BLOCKED (§19.14) after an open was refused;
//   - streams the PEER opens: we advertise a cumulative count; check_peer_stream() enforces it
//     (STREAM_LIMIT_ERROR, §4.6) and take_max_streams_update() raises it as peer streams close,
//     keeping `initial` peer streams concurrently open (iroh: 100).
#pragma once

#include <cstdint>
#include <optional>

#include "quic/error.h"
#include "quic/transport_params.h"

namespace iroh::quic {

enum class StreamDirection : std::uint8_t { kBidi, kUni };

// Largest stream count MAX_STREAMS / STREAMS_BLOCKED can carry (RFC 9000 §4.6, §19.11).
inline constexpr std::uint64_t kMaxStreamCount = std::uint64_t{1} << 60;

constexpr bool is_client_initiated(std::uint64_t id) { return (id & 0x1) == 0; }
constexpr bool is_server_initiated(std::uint64_t id) { return (id & 0x1) != 0; }
constexpr bool is_uni(std::uint64_t id) { return (id & 0x2) != 0; }
constexpr bool is_bidi(std::uint64_t id) { return (id & 0x2) == 0; }
constexpr Role stream_initiator(std::uint64_t id) {
  return is_client_initiated(id) ? Role::kClient : Role::kServer;
}
constexpr StreamDirection stream_direction(std::uint64_t id) {
  return is_uni(id) ? StreamDirection::kUni : StreamDirection::kBidi;
}
// Whether `local` opened stream `id`.
constexpr bool is_local(std::uint64_t id, Role local) { return stream_initiator(id) == local; }
// Whether `local` may send on / receive from stream `id` (unidirectional streams go one way).
constexpr bool can_send(std::uint64_t id, Role local) { return is_bidi(id) || is_local(id, local); }
constexpr bool can_receive(std::uint64_t id, Role local) {
  return is_bidi(id) || !is_local(id, local);
}

// The `index`-th stream (0-based) of the given type. index < 2^62.
constexpr std::uint64_t stream_id_of(Role initiator, StreamDirection dir, std::uint64_t index) {
  return (index << 2) | (dir == StreamDirection::kUni ? 0x2 : 0x0) |
         (initiator == Role::kServer ? 0x1 : 0x0);
}
constexpr std::uint64_t stream_index(std::uint64_t id) { return id >> 2; }

class StreamLimits {
 public:
  // `local`: our role. `our_max_streams`: the count we advertise for peer-initiated streams of
  // this direction (our initial_max_streams_bidi/uni). `peer_max_streams`: the peer's grant for
  // our streams, usually 0 until its transport parameters arrive (then call on_max_streams).
  StreamLimits(Role local, StreamDirection dir, std::uint64_t our_max_streams,
               std::uint64_t peer_max_streams = 0);

  Role local_role() const { return local_; }
  StreamDirection direction() const { return dir_; }

  // ---- streams we open ----

  // The peer's initial_max_streams_* parameter or a MAX_STREAMS frame (§19.11). Only increases;
  // smaller values (reordered frames) are ignored. Values above 2^60 are the frame decoder's
  // FRAME_ENCODING_ERROR; here they are clamped.
  void on_max_streams(std::uint64_t max_streams);
  std::uint64_t peer_max_streams() const { return peer_max_; }
  bool can_open() const { return local_opened_ < peer_max_; }
  // The ID of a newly opened stream, or nullopt at the peer's limit (then blocked_at() is set).
  std::optional<std::uint64_t> open_next();
  // STREAMS_BLOCKED value (§19.14): the peer's limit, when an open_next() was refused at it and
  // the limit has not been raised since. The connection sends it once per value.
  std::optional<std::uint64_t> blocked_at() const;
  // How many of our streams have been opened (the next index).
  std::uint64_t local_opened() const { return local_opened_; }
  // A frame for one of our streams (of this type) that we have not opened yet is
  // STREAM_STATE_ERROR (RFC 9000 §19.8, §19.10, §19.13).
  QuicResult<void> check_local_stream(std::uint64_t id) const;

  // ---- streams the peer opens ----

  // Checks a peer-initiated stream ID of this direction against our advertised limit:
  // STREAM_LIMIT_ERROR when its index is ≥ the limit (§4.6). On success records it as opened:
  // peer_opened() grows to index + 1, and every index in [old peer_opened(), new peer_opened())
  // is newly open (§3.2) — the connection creates those streams. IDs below the old
  // peer_opened() are streams that exist or were closed; the connection looks them up.
  // Precondition: `id` is peer-initiated and of this direction (the connection routes by type).
  QuicResult<void> check_peer_stream(std::uint64_t id);
  std::uint64_t peer_opened() const { return peer_opened_; }
  // A peer-initiated stream is fully closed (both directions done, state released): grants the
  // peer one more. Call once per stream.
  void on_peer_stream_closed();
  // The new MAX_STREAMS value to send, when it exceeds the last one advertised. Call when
  // building a packet: several closes coalesce into one frame.
  std::optional<std::uint64_t> take_max_streams_update();
  // Our current advertised limit: re-send it if the MAX_STREAMS frame carrying it was lost and
  // it is still the latest.
  std::uint64_t current_max_streams() const { return our_advertised_; }

 private:
  Role local_;
  StreamDirection dir_;
  std::uint64_t peer_max_ = 0;
  std::uint64_t local_opened_ = 0;
  std::optional<std::uint64_t> blocked_at_;
  std::uint64_t our_initial_ = 0;
  std::uint64_t our_advertised_ = 0;
  std::uint64_t peer_opened_ = 0;
  std::uint64_t peer_closed_ = 0;
};

}  // namespace iroh::quic

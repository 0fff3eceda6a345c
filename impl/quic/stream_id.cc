#include "quic/stream_id.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace iroh::quic {

StreamLimits::StreamLimits(Role local, StreamDirection dir, std::uint64_t our_max_streams,
                           std::uint64_t peer_max_streams)
    : local_(local),
      dir_(dir),
      peer_max_(std::min(peer_max_streams, kMaxStreamCount)),
      our_initial_(std::min(our_max_streams, kMaxStreamCount)),
      our_advertised_(our_initial_) {}

void StreamLimits::on_max_streams(std::uint64_t max_streams) {
  max_streams = std::min(max_streams, kMaxStreamCount);
  if (max_streams <= peer_max_) return;
  peer_max_ = max_streams;
  blocked_at_.reset();
}

std::optional<std::uint64_t> StreamLimits::open_next() {
  if (!can_open()) {
    blocked_at_ = peer_max_;
    return std::nullopt;
  }
  return stream_id_of(local_, dir_, local_opened_++);
}

std::optional<std::uint64_t> StreamLimits::blocked_at() const {
  if (blocked_at_ && *blocked_at_ == peer_max_ && !can_open()) return blocked_at_;
  return std::nullopt;
}

QuicResult<void> StreamLimits::check_local_stream(std::uint64_t id) const {
  assert(is_local(id, local_) && stream_direction(id) == dir_);
  if (stream_index(id) >= local_opened_) {
    return quic_error(
        TransportError::kStreamStateError,
        "frame for locally initiated stream " + std::to_string(id) + " that has not been opened");
  }
  return {};
}

QuicResult<void> StreamLimits::check_peer_stream(std::uint64_t id) {
  assert(!is_local(id, local_) && stream_direction(id) == dir_);
  const std::uint64_t index = stream_index(id);
  if (index >= our_advertised_) {
    return quic_error(TransportError::kStreamLimitError,
                      "peer opened stream " + std::to_string(id) + " beyond the limit of " +
                          std::to_string(our_advertised_) + " streams");
  }
  peer_opened_ = std::max(peer_opened_, index + 1);
  return {};
}

void StreamLimits::on_peer_stream_closed() {
  assert(peer_closed_ < peer_opened_);
  if (peer_closed_ < peer_opened_) ++peer_closed_;
}

std::optional<std::uint64_t> StreamLimits::take_max_streams_update() {
  const std::uint64_t want = std::min(our_initial_ + peer_closed_, kMaxStreamCount);
  if (want <= our_advertised_) return std::nullopt;
  our_advertised_ = want;
  return want;
}

}  // namespace iroh::quic

// Flow control (RFC 9000 §4): credit we may use when sending, windows we advertise when
// receiving, and the receive-window auto-tuning shared by connection and stream level.
//
// Limits are cumulative byte offsets (§4.1): MAX_DATA (§19.9) bounds the sum over all streams of
// the highest offset received, MAX_STREAM_DATA (§19.10) one stream's highest offset. A sender
// that has data but no credit sends DATA_BLOCKED / STREAM_DATA_BLOCKED (§19.12, §19.13) with
// the limit it hit. A receiver sends a larger limit as the application consumes data (§4.2).
//
// Auto-tuning (FlowWindow): the advertised limit is `consumed + window`. An update is due when
// the application has consumed more than half the window since the previous update; if that
// previous update was less than 2·smoothed_rtt ago, the window was the bottleneck (the peer could
// not keep a full RTT of data in flight), so it doubles, up to max_window. A 16 MiB window at
// 50 ms RTT is what lets a single stream run at hundreds of MB/s.
#pragma once

#include <cstdint>
#include <optional>

#include "base/time.h"
#include "quic/error.h"

namespace iroh::quic {

// Largest value a flow-control limit can take (RFC 9000 §4.1, §19.9: offsets < 2^62).
inline constexpr std::uint64_t kMaxFlowLimit = (std::uint64_t{1} << 62) - 1;

// The advertised limit and the auto-tuned window behind it (connection or stream level).
class FlowWindow {
 public:
  // `initial` is the limit advertised in the transport parameters; the window starts there and
  // may grow to max(initial, max_window).
  FlowWindow(std::uint64_t initial, std::uint64_t max_window);

  // The limit currently advertised (the last value returned by take_update, or `initial`).
  std::uint64_t limit() const { return limit_; }
  std::uint64_t window() const { return window_; }
  std::uint64_t max_window() const { return max_window_; }
  std::uint64_t consumed() const { return consumed_; }

  // The application consumed (read or discarded) `n` more bytes.
  void on_consumed(std::uint64_t n);
  // A new, larger limit to advertise, or nullopt when no update is due (see the file comment).
  // smoothed_rtt == 0 (no sample yet) never doubles.
  std::optional<std::uint64_t> take_update(Instant now, Duration smoothed_rtt);

 private:
  std::uint64_t limit_;
  std::uint64_t window_;
  std::uint64_t max_window_;
  std::uint64_t consumed_ = 0;
  std::uint64_t consumed_at_update_ = 0;
  std::optional<Instant> last_update_;
};

// Connection-level send credit: the peer's MAX_DATA minus the new stream bytes we have sent.
// Retransmissions do not consume credit (§4.1: credit is by offset, not by bytes sent).
class SendCredit {
 public:
  explicit SendCredit(std::uint64_t initial_max_data = 0) : limit_(initial_max_data) {}

  // The peer's initial_max_data or a MAX_DATA frame: only increases (§19.9, reordered frames).
  void on_max_data(std::uint64_t max_data) {
    if (max_data > limit_) limit_ = max_data;
  }
  std::uint64_t limit() const { return limit_; }
  std::uint64_t used() const { return used_; }
  std::uint64_t available() const { return limit_ - used_; }
  // First-time stream bytes were sent (SendStream::Chunk::new_bytes). n ≤ available().
  void consume(std::uint64_t n);
  // DATA_BLOCKED value (§19.12): the limit, when all credit is used. Only meaningful when some
  // stream has new data waiting; the connection sends it once per value.
  std::optional<std::uint64_t> blocked_at() const {
    if (available() == 0) return limit_;
    return std::nullopt;
  }

 private:
  std::uint64_t limit_;
  std::uint64_t used_ = 0;
};

// Connection-level receive window: enforces MAX_DATA and auto-tunes it.
class RecvWindow {
 public:
  RecvWindow(std::uint64_t initial, std::uint64_t max_window) : window_(initial, max_window) {}

  // A stream's highest received offset grew by `increase` (RecvStream::on_data/on_reset
  // results). FLOW_CONTROL_ERROR when the total exceeds the advertised limit (§4.1).
  QuicResult<void> on_received(std::uint64_t increase);
  // Stream bytes were consumed (RecvStream::take_freed_credit()).
  void on_consumed(std::uint64_t n) { window_.on_consumed(n); }
  // The new MAX_DATA to send, if due (see FlowWindow).
  std::optional<std::uint64_t> take_max_data_update(Instant now, Duration smoothed_rtt) {
    return window_.take_update(now, smoothed_rtt);
  }
  // The advertised limit: re-send this if a MAX_DATA frame was lost.
  std::uint64_t current_limit() const { return window_.limit(); }
  std::uint64_t received() const { return received_; }
  const FlowWindow& window() const { return window_; }

 private:
  FlowWindow window_;
  std::uint64_t received_ = 0;
};

}  // namespace iroh::quic

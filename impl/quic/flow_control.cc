#include "quic/flow_control.h"

#include <algorithm>
#include <cassert>
#include <string>

namespace iroh::quic {

FlowWindow::FlowWindow(std::uint64_t initial, std::uint64_t max_window)
    : limit_(std::min(initial, kMaxFlowLimit)),
      window_(limit_),
      max_window_(std::min(std::max(max_window, limit_), kMaxFlowLimit)) {}

void FlowWindow::on_consumed(std::uint64_t n) {
  consumed_ += n;
  assert(consumed_ <= limit_);
}

std::optional<std::uint64_t> FlowWindow::take_update(Instant now, Duration smoothed_rtt) {
  const std::uint64_t since = consumed_ - consumed_at_update_;
  // "More than half the window consumed since the last update" (and something consumed at all).
  if (since == 0 || since <= window_ / 2) return std::nullopt;
  if (last_update_ && smoothed_rtt > Duration::zero() && now - *last_update_ < 2 * smoothed_rtt) {
    window_ = std::min(window_ * 2, max_window_);  // window_ < 2^62: no overflow
  }
  const std::uint64_t new_limit = std::min(consumed_ + window_, kMaxFlowLimit);
  consumed_at_update_ = consumed_;
  last_update_ = now;
  if (new_limit <= limit_) return std::nullopt;
  limit_ = new_limit;
  return new_limit;
}

void SendCredit::consume(std::uint64_t n) {
  assert(n <= available());
  used_ += std::min(n, available());
}

QuicResult<void> RecvWindow::on_received(std::uint64_t increase) {
  received_ += increase;
  if (received_ > window_.limit()) {
    return quic_error(TransportError::kFlowControlError,
                      "peer sent " + std::to_string(received_) +
                          " bytes, beyond the connection limit " + std::to_string(window_.limit()));
  }
  return {};
}

}  // namespace iroh::quic

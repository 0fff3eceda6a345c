#include "quic/recv_stream.h"

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string>

namespace iroh::quic {

// ---- Reassembler ----

std::uint8_t* Reassembler::block_for(std::uint64_t offset) {
  assert(offset >= base_);
  const std::uint64_t rel = offset - base_;
  const std::size_t index = static_cast<std::size_t>(rel / kBlockSize);
  if (index >= blocks_.size()) blocks_.resize(index + 1);
  auto& block = blocks_[index];
  if (!block) {
    block = spare_ ? std::move(spare_) : std::make_unique_for_overwrite<std::uint8_t[]>(kBlockSize);
  }
  return block.get() + rel % kBlockSize;
}

std::uint64_t Reassembler::insert(std::uint64_t offset, ByteView data) {
  std::uint64_t end = offset + data.size();
  std::uint64_t pos = std::max(offset, read_offset_);
  if (pos >= end) return 0;
  std::uint64_t added = 0;
  while (pos < end) {
    if (received_.contains(pos)) {
      pos = received_.contiguous_end(pos);
      continue;
    }
    const auto next = received_.first_at_or_after(pos);
    const std::uint64_t gap_end = next ? std::min(next->start, end) : end;
    // Copy [pos, gap_end) block by block.
    for (std::uint64_t p = pos; p < gap_end;) {
      const std::uint64_t block_end = (p / kBlockSize + 1) * kBlockSize;
      const std::uint64_t len = std::min(gap_end, block_end) - p;
      std::memcpy(block_for(p), data.data() + (p - offset), static_cast<std::size_t>(len));
      p += len;
    }
    added += gap_end - pos;
    pos = gap_end;
  }
  received_.insert(std::max(offset, read_offset_), end);
  return added;
}

void Reassembler::advance_to(std::uint64_t offset) {
  assert(offset >= read_offset_ && offset <= contiguous_end());
  if (offset <= read_offset_) return;
  read_offset_ = offset;
  received_.remove_below(read_offset_);
  while (read_offset_ - base_ >= kBlockSize) {
    if (!blocks_.empty()) {
      if (!spare_ && blocks_.front()) spare_ = std::move(blocks_.front());
      blocks_.pop_front();
    }
    base_ += kBlockSize;
  }
}

std::size_t Reassembler::read(std::span<std::uint8_t> out) {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(out.size(), readable()));
  std::size_t done = 0;
  std::uint64_t pos = read_offset_;
  while (done < n) {
    const std::uint64_t rel = pos - base_;
    const std::size_t in_block = static_cast<std::size_t>(rel % kBlockSize);
    const std::size_t len = std::min(kBlockSize - in_block, n - done);
    std::memcpy(out.data() + done, blocks_[rel / kBlockSize].get() + in_block, len);
    done += len;
    pos += len;
  }
  advance_to(pos);
  return n;
}

void Reassembler::clear_to(std::uint64_t offset) {
  blocks_.clear();
  received_.clear();
  read_offset_ = std::max(read_offset_, offset);
  base_ = read_offset_ / kBlockSize * kBlockSize;
}

// ---- RecvStream ----

RecvStream::RecvStream(std::uint64_t initial_window, std::uint64_t max_window)
    : window_(initial_window, max_window) {}

namespace {

QuicError final_size_error(std::string what) {
  return quic_error(TransportError::kFinalSizeError, std::move(what));
}

}  // namespace

QuicResult<std::uint64_t> RecvStream::on_data(std::uint64_t offset, ByteView data, bool fin) {
  if (offset > kMaxFlowLimit || data.size() > kMaxFlowLimit - offset) {
    return quic_error(TransportError::kFlowControlError, "stream data beyond 2^62-1");
  }
  const std::uint64_t end = offset + data.size();
  if (final_size_) {
    if (end > *final_size_) {
      return final_size_error("stream data ends at " + std::to_string(end) +
                              ", beyond the final size " + std::to_string(*final_size_));
    }
    if (fin && end != *final_size_) {
      return final_size_error("fin at " + std::to_string(end) + " changes the final size " +
                              std::to_string(*final_size_));
    }
  } else if (fin && end < highest_) {
    return final_size_error("fin at " + std::to_string(end) + " below data received up to " +
                            std::to_string(highest_));
  }
  if (end > window_.limit()) {
    return quic_error(TransportError::kFlowControlError,
                      "stream data ends at " + std::to_string(end) + ", beyond the limit " +
                          std::to_string(window_.limit()));
  }
  const std::uint64_t increase = end > highest_ ? end - highest_ : 0;
  highest_ += increase;
  if (fin && !final_size_) {
    final_size_ = end;
    if (state_ == RecvState::kRecv) state_ = RecvState::kSizeKnown;
  }
  if (state_ == RecvState::kRecv || state_ == RecvState::kSizeKnown) {
    buf_.insert(offset, data);
    if (stop_code_) buf_.advance_to(buf_.contiguous_end());
    if (final_size_ && buf_.contiguous_end() == *final_size_) state_ = RecvState::kDataRecvd;
  }
  if (discarding()) release(highest_);
  return increase;
}

void RecvStream::release(std::uint64_t to) {
  if (to <= consumed_) return;
  window_.on_consumed(to - consumed_);
  freed_ += to - consumed_;
  consumed_ = to;
}

QuicResult<std::uint64_t> RecvStream::on_reset(std::uint64_t code, std::uint64_t final_size) {
  if (final_size_ && *final_size_ != final_size) {
    return final_size_error("RESET_STREAM final size " + std::to_string(final_size) +
                            " differs from " + std::to_string(*final_size_));
  }
  if (final_size < highest_) {
    return final_size_error("RESET_STREAM final size " + std::to_string(final_size) +
                            " below data received up to " + std::to_string(highest_));
  }
  if (final_size > window_.limit()) {
    return quic_error(TransportError::kFlowControlError,
                      "RESET_STREAM final size " + std::to_string(final_size) +
                          " beyond the limit " + std::to_string(window_.limit()));
  }
  const std::uint64_t increase = final_size - highest_;
  highest_ = final_size;
  final_size_ = final_size;
  if (state_ == RecvState::kRecv || state_ == RecvState::kSizeKnown) {
    reset_code_ = code;
    state_ = RecvState::kResetRecvd;
    buf_.clear_to(final_size);
    release(final_size);
  }
  return increase;
}

std::size_t RecvStream::read(std::span<std::uint8_t> out) {
  if (state_ == RecvState::kResetRecvd) state_ = RecvState::kResetRead;
  if (discarding()) return 0;
  const std::size_t n = buf_.read(out);
  release(buf_.read_offset());
  if (state_ == RecvState::kDataRecvd && buf_.read_offset() == *final_size_) {
    state_ = RecvState::kDataRead;
  }
  return n;
}

std::uint64_t RecvStream::readable() const { return discarding() ? 0 : buf_.readable(); }

bool RecvStream::is_closed() const {
  switch (state_) {
    case RecvState::kDataRead:
    case RecvState::kResetRead:
      return true;
    case RecvState::kDataRecvd:
    case RecvState::kResetRecvd:
      return stop_code_.has_value();
    default:
      return false;
  }
}

void RecvStream::stop_sending(std::uint64_t code) {
  if (stop_code_ || state_ == RecvState::kDataRead || state_ == RecvState::kResetRead) return;
  stop_code_ = code;
  if (state_ == RecvState::kRecv || state_ == RecvState::kSizeKnown) stop_tx_ = StopTx::kPending;
  buf_.advance_to(buf_.contiguous_end());
  release(highest_);
}

std::optional<std::uint64_t> RecvStream::pending_stop_sending() const {
  if (stop_tx_ == StopTx::kPending &&
      (state_ == RecvState::kRecv || state_ == RecvState::kSizeKnown)) {
    return stop_code_;
  }
  return std::nullopt;
}

void RecvStream::on_stop_sending_sent() {
  if (stop_tx_ == StopTx::kPending) stop_tx_ = StopTx::kInFlight;
}

void RecvStream::on_stop_sending_lost() {
  if (stop_tx_ == StopTx::kInFlight) stop_tx_ = StopTx::kPending;
}

std::uint64_t RecvStream::take_freed_credit() { return std::exchange(freed_, 0); }

std::optional<std::uint64_t> RecvStream::take_max_stream_data_update(Instant now,
                                                                     Duration smoothed_rtt) {
  if (!wants_max_stream_data()) return std::nullopt;
  return window_.take_update(now, smoothed_rtt);
}

// ---- CryptoRecvBuffer ----

QuicResult<void> CryptoRecvBuffer::on_data(std::uint64_t offset, ByteView data) {
  const std::uint64_t max_end = buf_.read_offset() + limit_;
  if (offset > max_end || data.size() > max_end - offset) {
    return quic_error(TransportError::kCryptoBufferExceeded,
                      "CRYPTO data at offset " + std::to_string(offset) + " exceeds the " +
                          std::to_string(limit_) + "-byte reassembly buffer");
  }
  buf_.insert(offset, data);
  return {};
}

}  // namespace iroh::quic

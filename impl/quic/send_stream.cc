#include "quic/send_stream.h"

#include <algorithm>
#include <cassert>
#include <cstring>

namespace iroh::quic {

SendStream::SendStream(std::uint64_t max_stream_data, std::size_t buffer_limit)
    : buffer_limit_(buffer_limit), max_stream_data_(max_stream_data) {}

std::uint64_t SendStream::writable() const {
  if (fin_ || reset_) return 0;
  const std::uint64_t held = written_ - acked_prefix_;
  return held >= buffer_limit_ ? 0 : buffer_limit_ - held;
}

std::uint8_t* SendStream::block_at(std::uint64_t offset) const {
  assert(offset >= base_);
  const std::uint64_t rel = offset - base_;
  return blocks_[rel / kBlockSize].get() + rel % kBlockSize;
}

std::uint64_t SendStream::block_end(std::uint64_t offset) const {
  return (offset / kBlockSize + 1) * kBlockSize;
}

std::size_t SendStream::write(ByteView data) {
  const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(data.size(), writable()));
  std::size_t done = 0;
  while (done < n) {
    if (written_ - base_ == blocks_.size() * kBlockSize) {
      blocks_.push_back(spare_ ? std::move(spare_)
                               : std::make_unique_for_overwrite<std::uint8_t[]>(kBlockSize));
    }
    const std::size_t room = static_cast<std::size_t>(block_end(written_) - written_);
    const std::size_t len = std::min(room, n - done);
    std::memcpy(block_at(written_), data.data() + done, len);
    written_ += len;
    done += len;
  }
  return n;
}

void SendStream::finish() {
  if (reset_) return;
  fin_ = true;
}

void SendStream::reset(std::uint64_t code) {
  if (reset_ || all_acked()) return;
  reset_ = Reset{code, sent_end_};
  reset_tx_ = ResetTx::kPending;
  drop_buffers();
}

void SendStream::on_stop_sending(std::uint64_t code) {
  if (!stop_sending_code_) stop_sending_code_ = code;
  reset(code);
}

void SendStream::drop_buffers() {
  blocks_.clear();
  spare_.reset();
  lost_.clear();
  base_ = block_end(written_) - kBlockSize;
}

void SendStream::on_max_stream_data(std::uint64_t max_stream_data) {
  max_stream_data_ = std::max(max_stream_data_, max_stream_data);
}

std::optional<SendStream::Chunk> SendStream::next_chunk(std::uint64_t max_bytes,
                                                        std::uint64_t connection_credit) {
  if (reset_) return std::nullopt;
  // 1. Retransmissions, lowest offset first; they consume no credit.
  if (auto r = lost_.first()) {
    if (max_bytes == 0) return std::nullopt;
    const std::uint64_t end = std::min({r->end, r->start + max_bytes, block_end(r->start)});
    lost_.remove(r->start, end);
    Chunk c;
    c.offset = r->start;
    c.data = ByteView(block_at(r->start), static_cast<std::size_t>(end - r->start));
    if (fin_ && !fin_acked_ && end == written_) {
      c.fin = true;
      fin_sent_ = true;
      fin_lost_ = false;
    }
    return c;
  }
  // 2. New data within the stream limit and the connection credit.
  if (sent_end_ < written_) {
    if (sent_end_ >= max_stream_data_) return std::nullopt;
    std::uint64_t len = std::min({written_ - sent_end_, max_bytes, max_stream_data_ - sent_end_,
                                  connection_credit, block_end(sent_end_) - sent_end_});
    if (len == 0) return std::nullopt;
    Chunk c;
    c.offset = sent_end_;
    c.data = ByteView(block_at(sent_end_), static_cast<std::size_t>(len));
    c.new_bytes = len;
    sent_end_ += len;
    if (fin_ && sent_end_ == written_) {
      c.fin = true;
      fin_sent_ = true;
      fin_lost_ = false;
    }
    return c;
  }
  // 3. Everything sent: a FIN-only chunk if the fin still has to go (out).
  if (fin_ && !fin_acked_ && (!fin_sent_ || fin_lost_)) {
    fin_sent_ = true;
    fin_lost_ = false;
    Chunk c;
    c.offset = written_;
    c.fin = true;
    return c;
  }
  return std::nullopt;
}

void SendStream::release_acked_blocks() {
  while (!blocks_.empty() && base_ + kBlockSize <= acked_prefix_) {
    if (!spare_) spare_ = std::move(blocks_.front());
    blocks_.pop_front();
    base_ += kBlockSize;
  }
}

void SendStream::on_acked(std::uint64_t offset, std::uint64_t len, bool fin) {
  if (reset_) return;
  const std::uint64_t end = std::min(offset + len, sent_end_);
  if (offset < end) {
    acked_.insert(offset, end);
    lost_.remove(offset, end);
    acked_prefix_ = acked_.contiguous_end(0);
    release_acked_blocks();
  }
  if (fin && fin_sent_) {
    fin_acked_ = true;
    fin_lost_ = false;
  }
}

void SendStream::on_lost(std::uint64_t offset, std::uint64_t len, bool fin) {
  if (reset_) return;
  const std::uint64_t end = std::min(offset + len, sent_end_);
  // Queue the parts of [offset, end) that are not acknowledged.
  std::uint64_t pos = std::max(offset, acked_prefix_);
  while (pos < end) {
    if (acked_.contains(pos)) {
      pos = acked_.contiguous_end(pos);
      continue;
    }
    const auto next = acked_.first_at_or_after(pos);
    const std::uint64_t gap_end = next ? std::min(next->start, end) : end;
    lost_.insert(pos, gap_end);
    pos = gap_end;
  }
  if (fin && fin_sent_ && !fin_acked_) fin_lost_ = true;
}

bool SendStream::has_new_data_within_limit() const {
  return !reset_ && sent_end_ < written_ && sent_end_ < max_stream_data_;
}

bool SendStream::has_data_to_send() const {
  if (reset_) return false;
  if (!lost_.empty() || has_new_data_within_limit()) return true;
  return fin_ && !fin_acked_ && sent_end_ == written_ && (!fin_sent_ || fin_lost_);
}

std::optional<std::uint64_t> SendStream::blocked_at() const {
  if (!reset_ && sent_end_ < written_ && sent_end_ >= max_stream_data_) return max_stream_data_;
  return std::nullopt;
}

bool SendStream::all_acked() const {
  return !reset_ && fin_ && fin_acked_ && acked_prefix_ == written_;
}

std::optional<SendStream::Reset> SendStream::pending_reset() const {
  if (reset_ && reset_tx_ == ResetTx::kPending) return reset_;
  return std::nullopt;
}

std::optional<SendStream::Reset> SendStream::reset_info() const { return reset_; }

void SendStream::on_reset_sent() {
  if (reset_ && reset_tx_ == ResetTx::kPending) reset_tx_ = ResetTx::kInFlight;
}

void SendStream::on_reset_lost() {
  if (reset_ && reset_tx_ == ResetTx::kInFlight) reset_tx_ = ResetTx::kPending;
}

void SendStream::on_reset_acked() {
  if (reset_) reset_tx_ = ResetTx::kAcked;
}

SendState SendStream::state() const {
  if (reset_) return reset_tx_ == ResetTx::kAcked ? SendState::kResetRecvd : SendState::kResetSent;
  if (all_acked()) return SendState::kDataRecvd;
  if (fin_ && fin_sent_ && sent_end_ == written_) return SendState::kDataSent;
  if (sent_end_ == 0 && !fin_sent_) return SendState::kReady;
  return SendState::kSend;
}

bool SendStream::is_closed() const {
  const SendState s = state();
  return s == SendState::kDataRecvd || s == SendState::kResetRecvd;
}

}  // namespace iroh::quic

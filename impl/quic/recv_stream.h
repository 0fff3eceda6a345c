// The receiving side of streams (RFC 9000 §3.2, §4) and of CRYPTO data (§7.5, §19.6).
//
// Reassembler puts possibly out-of-order, overlapping, duplicated byte ranges back in order:
// each byte is stored once (later copies of received bytes are ignored, not compared), in fixed
// 16 KiB blocks that are released as the reader passes them. Memory is bounded by what the caller
// lets in: RecvStream admits offsets below its flow-control limit only (FLOW_CONTROL_ERROR
// otherwise), CryptoRecvBuffer at most kCryptoBufferLimit bytes past the read offset
// (CRYPTO_BUFFER_EXCEEDED otherwise).
//
// RecvStream states (§3.2):
//   Recv        receiving                       SizeKnown   fin (final size) received
//   DataRecvd   fin received and all bytes in   DataRead    the app read everything (finished())
//   ResetRecvd  RESET_STREAM received           ResetRead   the app saw the reset (read() after it)
// Final size rules (§4.5): once known it cannot change, no data may lie beyond it, and a final
// size below the highest byte received is FINAL_SIZE_ERROR. A RESET_STREAM arriving when all data
// is already in (DataRecvd/DataRead) is validated and then ignored: the app still reads the data.
//
// Connection-level flow control is the caller's: feed on_data()/on_reset() results to
// RecvWindow::on_received() and take_freed_credit() to RecvWindow::on_consumed().
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <span>
#include <utility>

#include "base/bytes.h"
#include "base/time.h"
#include "quic/error.h"
#include "quic/flow_control.h"
#include "quic/range_set.h"

namespace iroh::quic {

class Reassembler {
 public:
  static constexpr std::size_t kBlockSize = 16 * 1024;

  Reassembler() = default;
  Reassembler(Reassembler&&) noexcept = default;
  Reassembler& operator=(Reassembler&&) noexcept = default;

  // Stores the bytes of [offset, offset + data.size()) not stored before and not already read.
  // Returns how many bytes were new. The caller bounds offsets (memory grows up to the highest
  // offset inserted minus read_offset()).
  std::uint64_t insert(std::uint64_t offset, ByteView data);
  // Copies in-order bytes into `out`; returns how many.
  std::size_t read(std::span<std::uint8_t> out);
  // In-order bytes available to read().
  std::uint64_t readable() const { return contiguous_end() - read_offset_; }
  std::uint64_t read_offset() const { return read_offset_; }
  // End of the contiguous run of received bytes starting at 0.
  std::uint64_t contiguous_end() const { return received_.contiguous_end(read_offset_); }
  // Received bytes not yet read (in order or not). O(number of gaps).
  std::uint64_t buffered() const { return received_.value_count(); }
  // Skips in-order bytes without copying them: read_offset() moves to `offset`
  // (read_offset() ≤ offset ≤ contiguous_end()). Out-of-order bytes above stay.
  void advance_to(std::uint64_t offset);
  // Drops everything; read_offset() moves to max(read_offset(), offset) and later inserts below it
  // are ignored.
  void clear_to(std::uint64_t offset);

 private:
  std::uint8_t* block_for(std::uint64_t offset);  // allocates on demand

  std::deque<std::unique_ptr<std::uint8_t[]>> blocks_;  // blocks_[i] holds [base_+i·B, +B)
  std::unique_ptr<std::uint8_t[]> spare_;
  std::uint64_t base_ = 0;  // read_offset_ rounded down to a block
  std::uint64_t read_offset_ = 0;
  RangeSet received_;  // received bytes at or above read_offset_
};

enum class RecvState : std::uint8_t {
  kRecv,
  kSizeKnown,
  kDataRecvd,
  kDataRead,
  kResetRecvd,
  kResetRead,
};

class RecvStream {
 public:
  static constexpr std::uint64_t kDefaultMaxWindow = 16 * 1024 * 1024;

  // initial_window: the initial_max_stream_data_* we advertised for this stream.
  // max_window: how far auto-tuning may grow the window.
  explicit RecvStream(std::uint64_t initial_window, std::uint64_t max_window = kDefaultMaxWindow);
  RecvStream(RecvStream&&) noexcept = default;
  RecvStream& operator=(RecvStream&&) noexcept = default;

  // A STREAM frame (§19.8). Returns how much the stream's highest received offset grew (feed it
  // to RecvWindow::on_received). Errors: FLOW_CONTROL_ERROR past the advertised limit (§4.1);
  // FINAL_SIZE_ERROR when a fin changes the final size, data lies beyond it, or a fin is below
  // data already received (§4.5). Duplicates and overlaps are fine. After stop_sending() or a
  // reset, data is still checked and counted but discarded.
  QuicResult<std::uint64_t> on_data(std::uint64_t offset, ByteView data, bool fin);
  // RESET_STREAM (§19.4). Returns the growth of the highest received offset (final_size −
  // previous highest; feed to RecvWindow::on_received). Errors: FINAL_SIZE_ERROR if it
  // contradicts a known final size or data already received, FLOW_CONTROL_ERROR past the limit.
  // Buffered data is dropped (unless DataRecvd, see the file comment).
  QuicResult<std::uint64_t> on_reset(std::uint64_t code, std::uint64_t final_size);

  // Copies in-order bytes into `out`; returns the count (0 when nothing is readable, after
  // stop_sending(), or after a reset — which the first such read moves to ResetRead).
  std::size_t read(std::span<std::uint8_t> out);
  std::uint64_t readable() const;
  // The fin arrived and the app read everything (DataRead).
  bool finished() const { return state_ == RecvState::kDataRead; }
  std::optional<std::uint64_t> reset_code() const { return reset_code_; }
  RecvState state() const { return state_; }
  // Terminal state reached (DataRead or ResetRead, or stop_sending with all data accounted):
  // the stream's receive side can be freed.
  bool is_closed() const;

  // The app wants no more data (§3.5): buffered and future data are discarded (still counted for
  // flow control) and pending_stop_sending() asks for a STOP_SENDING frame — unless all data
  // was already received or the stream was reset (then no frame is needed).
  void stop_sending(std::uint64_t code);
  // STOP_SENDING code to send now (§19.5); repeat after on_stop_sending_lost() while the stream
  // is still in Recv/SizeKnown (§13.3).
  std::optional<std::uint64_t> pending_stop_sending() const;
  void on_stop_sending_sent();
  void on_stop_sending_lost();
  bool is_stopped() const { return stop_code_.has_value(); }

  // Connection-level credit released since the last call: bytes read by the app, plus bytes
  // discarded (stop_sending, reset; gaps included, since the peer counts them as sent). Feed to
  // RecvWindow::on_consumed. This, not read()'s result, is the number to use.
  std::uint64_t take_freed_credit();

  // A new MAX_STREAM_DATA (§19.10) to send when the app consumed more than half the window since
  // the last update (auto-tuned: see flow_control.h). Only in the Recv state: once the final
  // size is known or the stream is reset/stopped no more credit is needed (§3.2).
  std::optional<std::uint64_t> take_max_stream_data_update(Instant now, Duration smoothed_rtt);
  // The advertised limit: re-send it if a MAX_STREAM_DATA frame was lost and
  // wants_max_stream_data() still holds.
  std::uint64_t current_max_stream_data() const { return window_.limit(); }
  bool wants_max_stream_data() const { return state_ == RecvState::kRecv && !stop_code_; }

  std::uint64_t highest_received() const { return highest_; }
  std::optional<std::uint64_t> final_size() const { return final_size_; }
  const FlowWindow& window() const { return window_; }

 private:
  enum class StopTx : std::uint8_t { kNone, kPending, kInFlight };

  void release(std::uint64_t to);  // credit released up to offset `to`
  bool discarding() const { return stop_code_.has_value() || reset_code_.has_value(); }

  Reassembler buf_;
  FlowWindow window_;
  RecvState state_ = RecvState::kRecv;
  std::uint64_t highest_ = 0;
  std::optional<std::uint64_t> final_size_;
  std::optional<std::uint64_t> reset_code_;
  std::optional<std::uint64_t> stop_code_;
  StopTx stop_tx_ = StopTx::kNone;
  std::uint64_t consumed_ = 0;  // credit released up to this offset
  std::uint64_t freed_ = 0;     // released, not yet taken
};

// CRYPTO frame reassembly for one packet number space (§7.5, §19.6): no flow control, but at
// most kCryptoBufferLimit bytes beyond the read offset are accepted.
class CryptoRecvBuffer {
 public:
  static constexpr std::uint64_t kCryptoBufferLimit = 64 * 1024;

  explicit CryptoRecvBuffer(std::uint64_t limit = kCryptoBufferLimit) : limit_(limit) {}

  // CRYPTO_BUFFER_EXCEEDED when the frame ends more than limit bytes past read_offset(); data
  // already read is ignored.
  QuicResult<void> on_data(std::uint64_t offset, ByteView data);
  std::size_t read(std::span<std::uint8_t> out) { return buf_.read(out); }
  std::uint64_t readable() const { return buf_.readable(); }
  std::uint64_t read_offset() const { return buf_.read_offset(); }
  std::uint64_t buffered() const { return buf_.buffered(); }

 private:
  Reassembler buf_;
  std::uint64_t limit_;
};

}  // namespace iroh::quic

// SendStream: the sending part of one stream (RFC 9000 §3.1), also used for CRYPTO data.
//
// The application write()s bytes into a buffer (bounded by buffer_limit unacknowledged bytes) and
// finish()es or reset()s. The connection pulls frames with next_chunk() and reports their fate
// with on_acked()/on_lost(). Flow control (§4): new bytes may not pass the peer's
// MAX_STREAM_DATA (on_max_stream_data) nor the connection credit the caller passes in;
// retransmissions consume neither (credit is by offset). For CRYPTO frames construct with
// max_stream_data = UINT64_MAX and pass connection_credit = UINT64_MAX.
//
// States (§3.1), derived from the buffers:
//   Ready      nothing sent yet          Send       data being sent, fin not yet sent
//   DataSent   all data and the fin sent, not all acked
//   DataRecvd  everything incl. fin acked (all_acked())
//   ResetSent  reset() or STOP_SENDING (§3.5); RESET_STREAM pending or in flight
//   ResetRecvd the RESET_STREAM was acked
//
// Retransmission order: next_chunk() returns lost ranges first (lowest offset first), then new
// data, then a FIN-only chunk. A fin is attached to any chunk ending at the final offset once
// finish() was called and the fin is not yet acked (re-sending a fin in flight is harmless).
//
// Memory: bytes live in fixed 16 KiB blocks; blocks entirely below the acknowledged prefix are
// released (O(1) per block), so a stream holds at most written − acked-prefix bytes (rounded to
// blocks). write() and the chunk views cost one memcpy per byte, nothing else per byte. A chunk
// never spans two blocks, so it can be shorter than max_bytes while more data is sendable: call
// next_chunk() again to fill the rest of the packet.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>

#include "base/bytes.h"
#include "quic/range_set.h"

namespace iroh::quic {

enum class SendState : std::uint8_t {
  kReady,
  kSend,
  kDataSent,
  kResetSent,
  kDataRecvd,
  kResetRecvd,
};

class SendStream {
 public:
  static constexpr std::size_t kDefaultBufferLimit = 16 * 1024 * 1024;
  static constexpr std::size_t kBlockSize = 16 * 1024;

  // max_stream_data: the peer's initial limit for this stream (initial_max_stream_data_*;
  // UINT64_MAX for CRYPTO). buffer_limit: most unacknowledged bytes write() will hold.
  explicit SendStream(std::uint64_t max_stream_data,
                      std::size_t buffer_limit = kDefaultBufferLimit);
  SendStream(SendStream&&) noexcept = default;
  SendStream& operator=(SendStream&&) noexcept = default;

  // ---- application side ----

  // Buffers up to writable() bytes of `data`; returns how many were accepted. 0 after finish(),
  // reset() or STOP_SENDING.
  std::size_t write(ByteView data);
  // No more data: the stream ends at written() (a fin will be sent). Idempotent; ignored after a
  // reset.
  void finish();
  // Abandons the stream with an application error code (§3.1 → ResetSent): buffered data is
  // dropped, nothing more is (re)transmitted, and pending_reset() asks the connection to send
  // RESET_STREAM. Ignored once reset or once everything was acknowledged (DataRecvd).
  void reset(std::uint64_t code);
  // The peer sent STOP_SENDING (§3.5): resets the stream with the peer's code (unless already
  // reset or DataRecvd) and remembers the code for the application.
  void on_stop_sending(std::uint64_t code);

  std::uint64_t written() const { return written_; }
  // Buffer space left for write(): buffer_limit minus bytes written but not yet released by
  // acknowledgement. 0 once finished or reset.
  std::uint64_t writable() const;
  bool finished() const { return fin_; }  // finish() was called

  // ---- connection side ----

  struct Chunk {
    std::uint64_t offset = 0;
    // Points into the stream's buffer: valid until the next call that mutates this SendStream
    // (write, finish, reset, on_acked, on_lost, on_stop_sending, next_chunk, moving it). Copy it
    // into the packet before then.
    ByteView data;
    bool fin = false;
    // How many bytes of `data` are sent for the first time: charge these to the connection's
    // SendCredit (SendCredit::consume). 0 for retransmissions and FIN-only chunks.
    std::uint64_t new_bytes = 0;
  };

  // The next STREAM (or CRYPTO) frame payload, at most max_bytes long, or nullopt when there is
  // nothing to send: lost ranges first, then new data within min(max_stream_data, connection
  // credit), then a FIN-only chunk (empty data) when all data was sent but the fin was not (or
  // its frame was lost). A FIN-only chunk is returned even when max_bytes == 0. The returned
  // range counts as in flight until on_acked/on_lost.
  std::optional<Chunk> next_chunk(std::uint64_t max_bytes, std::uint64_t connection_credit);

  // The peer's MAX_STREAM_DATA (§19.10): only increases.
  void on_max_stream_data(std::uint64_t max_stream_data);
  std::uint64_t max_stream_data() const { return max_stream_data_; }

  // A frame carrying [offset, offset+len) (+fin) was acknowledged / declared lost. Lost bytes that
  // are already acknowledged (e.g. by another copy) are not retransmitted. Both are no-ops after
  // a reset.
  void on_acked(std::uint64_t offset, std::uint64_t len, bool fin);
  void on_lost(std::uint64_t offset, std::uint64_t len, bool fin);

  // Whether next_chunk() would return something given enough packet space and connection credit:
  // lost data, new data within the stream limit, or a pending fin. False after a reset
  // (RESET_STREAM is signalled by pending_reset()) and when only blocked by MAX_STREAM_DATA.
  bool has_data_to_send() const;
  // Whether new (first-time) data is waiting and within the stream limit, i.e. needs connection
  // credit: when it is true and the SendCredit is exhausted, the connection is DATA_BLOCKED.
  bool has_new_data_within_limit() const;
  // STREAM_DATA_BLOCKED value (§19.13): max_stream_data, when unsent data waits on it.
  std::optional<std::uint64_t> blocked_at() const;

  // Everything written and the fin were acknowledged (DataRecvd).
  bool all_acked() const;
  // Bytes sent at least once: the highest offset sent (also the final size after a reset).
  std::uint64_t sent_offset() const { return sent_end_; }
  // Bytes not yet acknowledged by a contiguous prefix and still held in memory.
  std::uint64_t buffered() const { return written_ - acked_prefix_; }

  // ---- reset (RESET_STREAM, §19.4) ----

  struct Reset {
    std::uint64_t code = 0;
    // §4.5: the final size is the flow-control credit the stream consumed, i.e. the highest
    // offset sent (data written but never sent is not part of the stream).
    std::uint64_t final_size = 0;
  };
  // RESET_STREAM to send now (after reset()/on_stop_sending(), or after it was lost).
  std::optional<Reset> pending_reset() const;
  // The reset (code, final size) once reset, whether pending, in flight or acked.
  std::optional<Reset> reset_info() const;
  void on_reset_sent();   // a RESET_STREAM was put in a packet
  void on_reset_lost();   // that packet was lost: pending_reset() again (until acked)
  void on_reset_acked();  // → ResetRecvd
  // The code from the peer's STOP_SENDING, if one arrived.
  std::optional<std::uint64_t> stop_sending_code() const { return stop_sending_code_; }

  SendState state() const;
  bool is_reset() const { return reset_.has_value(); }
  // Terminal state reached (DataRecvd or ResetRecvd): the stream's send side can be freed.
  bool is_closed() const;

 private:
  enum class ResetTx : std::uint8_t { kPending, kInFlight, kAcked };

  std::uint8_t* block_at(std::uint64_t offset) const;
  std::uint64_t block_end(std::uint64_t offset) const;
  void release_acked_blocks();
  void drop_buffers();

  std::size_t buffer_limit_;
  std::deque<std::unique_ptr<std::uint8_t[]>> blocks_;  // blocks_[i] holds [base_+i·B, +B)
  std::unique_ptr<std::uint8_t[]> spare_;               // one released block kept for reuse
  std::uint64_t base_ = 0;                              // multiple of kBlockSize
  std::uint64_t written_ = 0;
  std::uint64_t sent_end_ = 0;      // [0, sent_end_) was sent at least once
  std::uint64_t acked_prefix_ = 0;  // [0, acked_prefix_) acknowledged
  std::uint64_t max_stream_data_;
  RangeSet acked_;  // acknowledged bytes (includes the prefix interval)
  RangeSet lost_;   // bytes to retransmit: ⊆ [0, sent_end_) \ acked_
  bool fin_ = false;
  bool fin_sent_ = false;
  bool fin_lost_ = false;
  bool fin_acked_ = false;
  std::optional<Reset> reset_;
  ResetTx reset_tx_ = ResetTx::kPending;
  std::optional<std::uint64_t> stop_sending_code_;
};

}  // namespace iroh::quic

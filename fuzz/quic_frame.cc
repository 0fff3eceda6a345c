// libFuzzer target: QUIC frame decoder (impl/quic/frame.h).
//
// Input: one packet payload. Properties checked:
//   - decode_frames never crashes, whatever the input (sanitizers catch memory errors);
//   - every error has a reason and is FRAME_ENCODING_ERROR or PROTOCOL_VIOLATION;
//   - if decoding succeeds, the frames re-encode to a payload no longer than the input that decodes
//     to equal frames, and re-encoding those gives the same bytes (a fixed point after one step);
//   - the predicates and ACK interval arithmetic are total on decoded frames.
#include <cstddef>
#include <cstdint>
#include <variant>

#include "quic/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iroh;
  using namespace iroh::quic;
  using namespace iroh::quic::frame;
  const ByteView payload(data, size);

  auto first = decode_frames(payload);
  if (!first.ok()) {
    const QuicError& e = first.error();
    if (e.message.empty()) __builtin_trap();
    if (e.code != TransportError::kFrameEncodingError &&
        e.code != TransportError::kProtocolViolation) {
      __builtin_trap();
    }
    return 0;
  }

  Bytes encoded;
  for (const Frame& f : *first) {
    encode_frame(encoded, f);
    (void)frame_name(f);
    (void)is_ack_eliciting(f);
    (void)is_probing(f);
    for (auto kind : {PacketKind::kInitial, PacketKind::kZeroRtt, PacketKind::kHandshake,
                      PacketKind::kOneRtt}) {
      (void)allowed_in(f, kind);
    }
    const Ack* ack = std::get_if<Ack>(&f);
    if (const auto* p = std::get_if<PathAck>(&f)) ack = &p->ack;
    if (ack) {
      const auto intervals = ack_intervals(*ack);
      for (std::size_t i = 0; i < intervals.size(); ++i) {
        if (intervals[i].smallest > intervals[i].largest) __builtin_trap();
        if (i > 0 && intervals[i].largest + 2 > intervals[i - 1].smallest) __builtin_trap();
      }
      if (!(make_ack(intervals, ack->ack_delay, ack->ecn) == *ack)) __builtin_trap();
    }
  }
  if (encoded.size() > size) __builtin_trap();

  auto second = decode_frames(encoded);
  if (!second.ok()) __builtin_trap();
  if (second->size() != first->size()) __builtin_trap();
  for (std::size_t i = 0; i < first->size(); ++i) {
    if (!((*second)[i] == (*first)[i])) __builtin_trap();
  }
  Bytes again;
  for (const Frame& f : *second) encode_frame(again, f);
  if (again != encoded) __builtin_trap();
  return 0;
}

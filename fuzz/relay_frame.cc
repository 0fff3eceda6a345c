// libFuzzer target: relay frame decoder (spec §6.3).
//
// Input: first byte selects the protocol version (even → iroh-relay-v1, odd → iroh-relay-v2), the
// rest is one relay message. Properties checked:
//   - decode never crashes, whatever the input (sanitizers catch memory errors);
//   - if decode succeeds, the frame re-encodes to something that decodes (same version) to an equal
//     frame whose encoding is byte-identical (encode ∘ decode is a fixed point after one step);
//   - the re-encoding is never longer than the input (decode only accepts minimal-or-longer forms).
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "relay/frame.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iroh;
  using namespace iroh::relay;
  if (size < 1) return 0;
  const ProtocolVersion version = (data[0] & 1) ? ProtocolVersion::V2 : ProtocolVersion::V1;
  const ByteView message(data + 1, size - 1);

  auto first = decode(message, version);
  if (!first.ok()) {
    if (first.error().message.empty()) __builtin_trap();  // every error must have a reason
    return 0;
  }
  const Bytes encoded = encode(*first);
  if (encoded.size() > message.size()) __builtin_trap();

  auto second = decode(encoded, version);
  if (!second.ok()) __builtin_trap();
  if (!(*second == *first)) __builtin_trap();
  if (encode(*second) != encoded) __builtin_trap();
  if (frame_name(*second) != frame_name(*first)) __builtin_trap();
  return 0;
}

// Fuzz target: postcard EndpointAddr decoding (spec §2.2), the binary heart of tickets.
// Property: decode → encode → decode gives the same value and the same bytes.
#include "base/endpoint_addr.h"

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  iroh::postcard::Reader in(iroh::ByteView(data, size));
  auto addr = iroh::decode_endpoint_addr(in);
  if (!addr.ok()) {
    if (addr.error().message.empty()) std::abort();
    return 0;
  }
  iroh::Bytes encoded;
  iroh::encode_endpoint_addr(encoded, *addr);
  iroh::postcard::Reader again_in(encoded);
  auto again = iroh::decode_endpoint_addr(again_in);
  if (!again.ok() || !(*again == *addr) || again_in.remaining() != 0) std::abort();
  iroh::Bytes reencoded;
  iroh::encode_endpoint_addr(reencoded, *again);
  if (reencoded != encoded) std::abort();
  return 0;
}

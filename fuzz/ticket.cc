// Fuzz target: EndpointTicket string decoding (spec §2.3).
// Property: whatever decodes re-encodes to a canonical ticket that decodes to the same value and
// re-encodes to the same string (decode → encode → decode is stable).
#include "base/ticket.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto addr = iroh::decode_ticket(text);
  if (!addr.ok()) {
    if (addr.error().message.empty()) std::abort();  // every rejection carries a reason
    return 0;
  }
  const std::string canonical = iroh::encode_ticket(*addr);
  auto again = iroh::decode_ticket(canonical);
  if (!again.ok() || !(*again == *addr)) std::abort();
  if (iroh::encode_ticket(*again) != canonical) std::abort();
  return 0;
}

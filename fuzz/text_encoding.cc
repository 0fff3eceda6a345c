// Fuzz target: hex, base32, z-base-32 and base32hex decoding, and the key text parsers (spec §1.2).
// Property: anything that decodes re-encodes to the same text (in the alphabet's canonical case),
// i.e. the decoders accept exactly one spelling per value.
#include "base/text_encoding.h"

#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "base/key.h"

using iroh::Base32Alphabet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  if (auto hex = iroh::parse_hex_lower(text); hex.ok()) {
    if (iroh::to_hex(*hex) != text) std::abort();
  }
  for (auto alphabet :
       {Base32Alphabet::kRfc4648, Base32Alphabet::kZBase32, Base32Alphabet::kBase32Hex}) {
    auto bytes = iroh::base32_decode(text, alphabet);
    if (!bytes.ok()) continue;
    std::string again = iroh::base32_encode(*bytes, alphabet);
    if (alphabet == Base32Alphabet::kRfc4648) again = iroh::ascii_upper(again);
    if (again != text) std::abort();
  }
  if (auto id = iroh::EndpointId::parse(text); id.ok()) {
    auto via_hex = iroh::EndpointId::parse(id->to_hex());
    auto via_b32 = iroh::EndpointId::parse(id->to_base32());
    if (!via_hex.ok() || !via_b32.ok() || !(*via_hex == *id) || !(*via_b32 == *id)) std::abort();
  }
  return 0;
}

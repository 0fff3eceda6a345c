// libFuzzer target for RelayUrl::parse (impl/base/relay_url.h).
//
// Parses arbitrary bytes. On success:
//   * the normalised form is printable ASCII (spaces only survive in opaque paths);
//   * the accessors are consistent with it;
//   * it parses again to itself (idempotence). The one tolerated exception is the one Rust has
//     too: a label of up to 1000 scattered non-ASCII code points can encode to more than the 2000
//     Punycode characters the idna crate agrees to decode, so the normalised form is rejected.
// Seeds: fuzz/corpus/relay_url/.
#include "base/relay_url.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  auto url = iroh::RelayUrl::parse(input);
  if (!url.ok()) {
    if (url.error().message.rfind("invalid relay URL \"", 0) != 0) __builtin_trap();
    return 0;
  }
  const std::string& s = url->str();
  for (unsigned char c : s) {
    if (c < 0x20 || c >= 0x7f) __builtin_trap();
  }
  if (s.rfind(std::string(url->scheme()) + ":", 0) != 0) __builtin_trap();
  if (s.find(url->host()) == std::string::npos) __builtin_trap();
  if (s.find(url->path()) == std::string::npos) __builtin_trap();
  if (url->is_special() && (url->path().empty() || url->path()[0] != '/')) __builtin_trap();
  if (url->port() && url->port_or_default() != *url->port()) __builtin_trap();

  auto again = iroh::RelayUrl::parse(s);
  if (!again.ok()) {
    if (again.error().message.find("Punycode label too long") == std::string::npos) {
      __builtin_trap();
    }
    return 0;
  }
  if (again->str() != s || !(*again == *url)) __builtin_trap();
  return 0;
}

// libFuzzer target: the TLS-exporter relay auth header codec (spec §6.4,
// `x-iroh-relay-client-auth-v1`: base64url-nopad(postcard{public_key, signature, suffix})).
//
// Checks on arbitrary input:
//   - decode_client_auth_header (text) and decode_key_material_auth (raw postcard) never crash;
//   - the decoders are strict, so an accepted input is canonical: encode(decode(x)) == x, and
//     the header is exactly 151 characters;
//   - base64url_nopad_decode likewise round-trips whatever it accepts;
//   - verify_key_material_auth on an accepted header never crashes, and a header signed here with
//     a key derived from the input verifies against its own key material and not against another.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/key.h"
#include "relay/handshake.h"

using namespace iroh;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const ByteView bytes(data, size);

  if (auto b = relay::base64url_nopad_decode(text); b.ok()) {
    if (relay::base64url_nopad_encode(*b) != text) std::abort();
  }
  if (auto h = relay::decode_client_auth_header(text); h.ok()) {
    if (text.size() != relay::kClientAuthHeaderLength) std::abort();
    if (relay::encode_client_auth_header(*h) != text) std::abort();
    ByteArray<relay::kKeyMaterialSize> ekm{};
    (void)relay::verify_key_material_auth(*h, ekm);
  }
  if (auto k = relay::decode_key_material_auth(bytes); k.ok()) {
    const Bytes again = relay::encode_key_material_auth(*k);
    if (again.size() != size || !std::equal(again.begin(), again.end(), data)) std::abort();
  }

  // Sign with a key and key material taken from the input; the result must verify and decode.
  if (size >= 64) {
    ByteArray<32> seed{};
    ByteArray<relay::kKeyMaterialSize> ekm{};
    std::copy(data, data + 32, seed.begin());
    std::copy(data + 32, data + 64, ekm.begin());
    const SecretKey sk = SecretKey::from_seed(seed);
    const auto auth = relay::sign_key_material(sk, ekm);
    const std::string header = relay::encode_client_auth_header(auth);
    if (header.size() != relay::kClientAuthHeaderLength) std::abort();
    auto back = relay::decode_client_auth_header(header);
    if (!back.ok() || !(*back == auth)) std::abort();
    if (!relay::verify_key_material_auth(*back, ekm).ok()) std::abort();
    ekm[0] ^= 1;
    if (relay::verify_key_material_auth(*back, ekm).ok()) std::abort();
  }
  return 0;
}

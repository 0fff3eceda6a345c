// libFuzzer target: the TLS server handshake driver (impl/crypto/tls.h).
//
// Input: arbitrary bytes delivered as Initial-level CRYPTO data to a fresh server session, split
// at a point chosen by the first input byte (so partial-message buffering is exercised too).
// Properties checked:
//   - no crash, no leak (sanitizers; GnuTLS itself is not instrumented);
//   - a failure carries a reason and a CRYPTO_ERROR code (0x100..0x1ff), is sticky, and leaves
//     nothing to send;
//   - a garbage-fed server never completes the handshake (it needs the client's Finished, which
//     requires keys the input cannot have).
#include <cstddef>
#include <cstdint>

#include "crypto/tls.h"

namespace {

const iroh::SecretKey& server_key() {
  static const iroh::SecretKey key = [] {
    iroh::ByteArray<32> seed;
    seed.fill(0x42);
    return iroh::SecretKey::from_seed(seed);
  }();
  return key;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iroh;
  using namespace iroh::crypto;
  if (size == 0) return 0;
  const std::size_t split = data[0] % (size);
  const ByteView input(data + 1, size - 1);
  const Bytes tp = {0x0f, 0x04, 0x01, 0x02, 0x03, 0x04};  // initial_source_connection_id
  auto server = TlsSession::server(server_key(), {"test/echo/0", "n0/iroh/1"}, tp);
  if (!server.ok()) __builtin_trap();
  TlsSession& s = *server;

  const ByteView parts[2] = {input.first(split < input.size() ? split : input.size()),
                             input.subspan(split < input.size() ? split : input.size())};
  for (const ByteView part : parts) {
    auto r = s.provide_data(EncryptionLevel::kInitial, part);
    if (!r.ok()) {
      const TlsError& e = r.error();
      if (e.message.empty()) __builtin_trap();
      if (e.quic_error_code() < 0x100 || e.quic_error_code() > 0x1ff) __builtin_trap();
      if (s.has_outgoing()) __builtin_trap();
      if (!s.error()) __builtin_trap();
      if (s.provide_data(EncryptionLevel::kInitial, part).ok()) __builtin_trap();
      break;
    }
  }
  if (s.handshake_complete()) __builtin_trap();
  while (auto ev = s.next_event()) {
    if (std::holds_alternative<HandshakeCompleteEvent>(*ev)) __builtin_trap();
  }
  (void)s.take_outgoing(EncryptionLevel::kInitial);
  (void)s.take_outgoing(EncryptionLevel::kHandshake);
  return 0;
}

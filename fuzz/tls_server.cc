// libFuzzer target: the TLS server handshake driver (impl/crypto/tls.h).
//
// Input: byte 0 is a control byte, the rest is CRYPTO data for a fresh server session.
//   - control bit 7 clear: the data is Initial-level CRYPTO data (a ClientHello, or garbage);
//   - control bit 7 set: a real ClientHello from our client is delivered first, then the data is
//     Handshake-level CRYPTO data (where the client's Certificate, CertificateVerify and Finished
//     belong), reaching the server's parsing of the client's flight.
//   Control bits 0-6 choose where the data is split into two provide_data() calls (partial-message
//   buffering).
// Properties checked:
//   - no crash, no leak (sanitizers; GnuTLS itself is not instrumented);
//   - a failure carries a reason and a CRYPTO_ERROR code (0x100..0x1ff), is sticky, and leaves
//     nothing to send;
//   - the server never completes the handshake (that needs a Finished MAC over a transcript
//     including the server's fresh random) and never reports a peer id without a valid
//     CertificateVerify from a key the input cannot own.
#include <cstddef>
#include <cstdint>

#include "crypto/tls.h"

namespace {

iroh::SecretKey key_from_byte(std::uint8_t b) {
  iroh::ByteArray<32> seed;
  seed.fill(b);
  return iroh::SecretKey::from_seed(seed);
}

const iroh::SecretKey& server_key() {
  static const iroh::SecretKey key = key_from_byte(0x42);
  return key;
}

const iroh::Bytes& transport_params() {
  static const iroh::Bytes tp = {0x0f, 0x04, 0x01, 0x02, 0x03, 0x04};  // initial_source_cid
  return tp;
}

const iroh::Bytes& real_client_hello() {
  static const iroh::Bytes ch = [] {
    auto c = iroh::crypto::TlsSession::client(key_from_byte(0x07), server_key().public_key(),
                                              "test/echo/0", transport_params());
    if (!c.ok() || !c->start().ok()) __builtin_trap();
    return c->take_outgoing(iroh::crypto::EncryptionLevel::kInitial);
  }();
  return ch;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace iroh;
  using namespace iroh::crypto;
  if (size == 0) return 0;
  const bool after_client_hello = (data[0] & 0x80) != 0;
  const ByteView input(data + 1, size - 1);
  const std::size_t split = input.empty() ? 0 : (data[0] & 0x7f) % (input.size() + 1);

  auto server = TlsSession::server(server_key(), {"test/echo/0", "n0/iroh/1"}, transport_params());
  if (!server.ok()) __builtin_trap();
  TlsSession& s = *server;

  EncryptionLevel level = EncryptionLevel::kInitial;
  if (after_client_hello) {
    if (!s.provide_data(EncryptionLevel::kInitial, real_client_hello()).ok()) __builtin_trap();
    if (!s.has_outgoing()) __builtin_trap();
    (void)s.take_outgoing(EncryptionLevel::kInitial);
    (void)s.take_outgoing(EncryptionLevel::kHandshake);
    level = EncryptionLevel::kHandshake;
  }

  for (const ByteView part : {input.first(split), input.subspan(split)}) {
    auto r = s.provide_data(level, part);
    if (!r.ok()) {
      const TlsError& e = r.error();
      if (e.message.empty()) __builtin_trap();
      if (e.quic_error_code() < 0x100 || e.quic_error_code() > 0x1ff) __builtin_trap();
      if (s.has_outgoing()) __builtin_trap();
      if (!s.error()) __builtin_trap();
      if (s.provide_data(level, part).ok()) __builtin_trap();
      break;
    }
  }
  if (s.handshake_complete()) __builtin_trap();
  if (after_client_hello && s.peer_id()) __builtin_trap();
  while (auto ev = s.next_event()) {
    if (std::holds_alternative<HandshakeCompleteEvent>(*ev)) __builtin_trap();
  }
  return 0;
}

// Relay challenge/response authentication (spec §6.4), the sans-IO crypto half of it.
//
// The server sends ServerChallenge{16 random bytes}; the client answers ClientAuth{its EndpointId,
// Ed25519 signature over blake3::derive_key(kChallengeSignatureContext, challenge)}. The signed
// message is the 32-byte derive_key output, not the challenge itself. The server verifies strictly
// and on failure replies ServerDeniesAuth{kReasonSignatureInvalid}.
//
// TLS-exporter variant (spec §6.4, iroh-relay `KeyMaterialClientAuth`): over TLS the client may
// skip the challenge round trip. Both ends compute ekm = TLS-Exporter(label kTlsExporterLabel,
// context = client public key, 32 bytes); the client signs ekm[0..16] and sends
// {public_key, signature, ekm[16..32]} postcard-encoded, base64url without padding, in the
// upgrade request header kClientAuthHeader. The server recomputes ekm with its own TLS session,
// compares the suffix, verifies the signature and, if all is well, skips ServerChallenge. Anything
// malformed or invalid makes the server fall back to the challenge (as iroh does), never fail.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/key.h"
#include "base/result.h"
#include "relay/frame.h"

namespace iroh::relay {

// BLAKE3 derive_key context for the challenge signature (spec §6.4 step 3).
inline constexpr std::string_view kChallengeSignatureContext =
    "iroh-relay handshake v1 challenge signature";

// ServerDeniesAuth reasons the Rust server sends (spec §6.4 steps 3-4).
inline constexpr std::string_view kReasonSignatureInvalid = "signature invalid";
inline constexpr std::string_view kReasonNotAuthorized = "not authorized";

// The 32-byte message the client signs: blake3::derive_key(kChallengeSignatureContext, challenge).
ByteArray<32> client_auth_message(const ByteArray<kChallengeSize>& challenge);

// The client's reply to ServerChallenge. Deterministic (RFC 8032 Ed25519).
ClientAuth sign_challenge(const SecretKey& secret_key, const ByteArray<kChallengeSize>& challenge);

// Server side: strict Ed25519 verification of `auth` against the challenge this server sent.
// Error message on failure: exactly kReasonSignatureInvalid, ready to put in ServerDeniesAuth.
Result<void> verify_client_auth(const ClientAuth& auth, const ByteArray<kChallengeSize>& challenge);

// ---- TLS-exporter header (x-iroh-relay-client-auth-v1) ----

inline constexpr std::string_view kClientAuthHeader = "x-iroh-relay-client-auth-v1";
inline constexpr std::string_view kTlsExporterLabel = "iroh-relay handshake v1";
inline constexpr std::size_t kKeyMaterialSize = 32;
inline constexpr std::size_t kKeyMaterialSuffixSize = 16;
// postcard{public_key 32 | 0x40 | signature 64 | suffix 16} = 113 bytes → 151 base64url chars.
inline constexpr std::size_t kKeyMaterialAuthSize = 32 + 1 + 64 + kKeyMaterialSuffixSize;
inline constexpr std::size_t kClientAuthHeaderLength = 151;

struct KeyMaterialClientAuth {
  EndpointId public_key;
  Signature signature{};
  ByteArray<kKeyMaterialSuffixSize> key_material_suffix{};
  friend bool operator==(const KeyMaterialClientAuth&, const KeyMaterialClientAuth&) = default;
};

// Client side: `ekm` is the 32-byte TLS exporter output for (kTlsExporterLabel, context = the
// client's public key). Signs ekm[0..16], carries ekm[16..32]. Deterministic.
KeyMaterialClientAuth sign_key_material(const SecretKey& secret_key,
                                        const ByteArray<kKeyMaterialSize>& ekm);

// postcard bytes (113) and the header value (base64url, no padding, 151 chars).
Bytes encode_key_material_auth(const KeyMaterialClientAuth& auth);
std::string encode_client_auth_header(const KeyMaterialClientAuth& auth);

// Strict decoders: exact length, canonical base64url without padding (no '=', no '+' '/', zero
// trailing bits), signature length prefix exactly 0x40, public key on the curve, no trailing bytes.
// Errors name the offending field.
Result<KeyMaterialClientAuth> decode_key_material_auth(ByteView bytes);
Result<KeyMaterialClientAuth> decode_client_auth_header(std::string_view value);

// Server side: `server_ekm` is the server's own exporter output for (kTlsExporterLabel, context =
// auth.public_key). Checks the suffix, then strict Ed25519 over ekm[0..16].
Result<void> verify_key_material_auth(const KeyMaterialClientAuth& auth,
                                      const ByteArray<kKeyMaterialSize>& server_ekm);

// RFC 4648 §5 base64url without padding (what iroh's header uses). The decoder is strict (see
// above); exposed for tests.
std::string base64url_nopad_encode(ByteView bytes);
Result<Bytes> base64url_nopad_decode(std::string_view text);

}  // namespace iroh::relay

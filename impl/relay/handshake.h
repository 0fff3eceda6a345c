// Relay challenge/response authentication (spec §6.4), the sans-IO crypto half of it.
//
// The server sends ServerChallenge{16 random bytes}; the client answers ClientAuth{its EndpointId,
// Ed25519 signature over blake3::derive_key(kChallengeSignatureContext, challenge)}. The signed
// message is the 32-byte derive_key output, not the challenge itself. The server verifies strictly
// and on failure replies ServerDeniesAuth{kReasonSignatureInvalid}.
//
// (The TLS-exporter header variant `x-iroh-relay-client-auth-v1` is not covered here.)
#pragma once

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

}  // namespace iroh::relay

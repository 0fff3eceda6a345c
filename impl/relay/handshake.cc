// Relay challenge/response authentication (spec §6.4). See handshake.h.
#include "relay/handshake.h"

#include <string>

#include "base/blake3.h"

namespace iroh::relay {

ByteArray<32> client_auth_message(const ByteArray<kChallengeSize>& challenge) {
  return blake3::derive_key(kChallengeSignatureContext, challenge);
}

ClientAuth sign_challenge(const SecretKey& secret_key, const ByteArray<kChallengeSize>& challenge) {
  const ByteArray<32> message = client_auth_message(challenge);
  return ClientAuth{secret_key.public_key(), secret_key.sign(message)};
}

Result<void> verify_client_auth(const ClientAuth& auth,
                                const ByteArray<kChallengeSize>& challenge) {
  const ByteArray<32> message = client_auth_message(challenge);
  if (!auth.public_key.verify(message, auth.signature)) {
    return make_error(std::string(kReasonSignatureInvalid));
  }
  return {};
}

}  // namespace iroh::relay

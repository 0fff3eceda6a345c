// Relay challenge/response authentication (spec §6.4). See handshake.h.
#include "relay/handshake.h"

#include <algorithm>
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

namespace iroh::relay {
namespace {

constexpr char kB64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int b64url_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

}  // namespace

std::string base64url_nopad_encode(ByteView bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t v = (std::uint32_t(bytes[i]) << 16) | (std::uint32_t(bytes[i + 1]) << 8) |
                            std::uint32_t(bytes[i + 2]);
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
    out.push_back(kB64Url[(v >> 6) & 63]);
    out.push_back(kB64Url[v & 63]);
  }
  const std::size_t rest = bytes.size() - i;
  if (rest == 1) {
    const std::uint32_t v = std::uint32_t(bytes[i]) << 16;
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
  } else if (rest == 2) {
    const std::uint32_t v = (std::uint32_t(bytes[i]) << 16) | (std::uint32_t(bytes[i + 1]) << 8);
    out.push_back(kB64Url[(v >> 18) & 63]);
    out.push_back(kB64Url[(v >> 12) & 63]);
    out.push_back(kB64Url[(v >> 6) & 63]);
  }
  return out;
}

Result<Bytes> base64url_nopad_decode(std::string_view text) {
  if (text.size() % 4 == 1) {
    return make_error("base64url: invalid length " + std::to_string(text.size()));
  }
  Bytes out;
  out.reserve(text.size() * 3 / 4);
  std::uint32_t acc = 0;
  int bits = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const int v = b64url_value(text[i]);
    if (v < 0) {
      return make_error("base64url: invalid character at offset " + std::to_string(i) +
                        (text[i] == '=' ? " (padding is not allowed)" : ""));
    }
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<std::uint8_t>(acc >> bits));
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) return make_error("base64url: non-zero trailing bits");
  return out;
}

KeyMaterialClientAuth sign_key_material(const SecretKey& secret_key,
                                        const ByteArray<kKeyMaterialSize>& ekm) {
  KeyMaterialClientAuth auth;
  auth.public_key = secret_key.public_key();
  auth.signature = secret_key.sign(ByteView(ekm.data(), kKeyMaterialSize - kKeyMaterialSuffixSize));
  std::copy(ekm.begin() + (kKeyMaterialSize - kKeyMaterialSuffixSize), ekm.end(),
            auth.key_material_suffix.begin());
  return auth;
}

Bytes encode_key_material_auth(const KeyMaterialClientAuth& auth) {
  Bytes out;
  out.reserve(kKeyMaterialAuthSize);
  const auto& pk = auth.public_key.bytes();
  out.insert(out.end(), pk.begin(), pk.end());
  out.push_back(0x40);  // serde_bytes: postcard varint length 64
  out.insert(out.end(), auth.signature.begin(), auth.signature.end());
  out.insert(out.end(), auth.key_material_suffix.begin(), auth.key_material_suffix.end());
  return out;
}

std::string encode_client_auth_header(const KeyMaterialClientAuth& auth) {
  return base64url_nopad_encode(encode_key_material_auth(auth));
}

Result<KeyMaterialClientAuth> decode_key_material_auth(ByteView bytes) {
  if (bytes.size() < 32) {
    return make_error("client auth header: public_key truncated (" + std::to_string(bytes.size()) +
                      " of 32 bytes)");
  }
  auto pk = EndpointId::from_bytes(bytes.subspan(0, 32));
  if (!pk.ok()) return make_error("client auth header: public_key: " + pk.error().message);
  if (bytes.size() < 33) return make_error("client auth header: signature length missing at 32");
  if (bytes[32] != 0x40) {
    return make_error("client auth header: signature length at 32 must be 64 (0x40), got " +
                      std::to_string(bytes[32]));
  }
  if (bytes.size() < 33 + 64) return make_error("client auth header: signature truncated at 33");
  if (bytes.size() < kKeyMaterialAuthSize) {
    return make_error("client auth header: key_material_suffix truncated at 97");
  }
  if (bytes.size() > kKeyMaterialAuthSize) {
    return make_error("client auth header: " + std::to_string(bytes.size() - kKeyMaterialAuthSize) +
                      " trailing bytes at 113");
  }
  KeyMaterialClientAuth auth;
  auth.public_key = *pk;
  std::copy(bytes.begin() + 33, bytes.begin() + 97, auth.signature.begin());
  std::copy(bytes.begin() + 97, bytes.begin() + 113, auth.key_material_suffix.begin());
  return auth;
}

Result<KeyMaterialClientAuth> decode_client_auth_header(std::string_view value) {
  if (value.size() != kClientAuthHeaderLength) {
    return make_error("client auth header: expected " + std::to_string(kClientAuthHeaderLength) +
                      " base64url characters, got " + std::to_string(value.size()));
  }
  auto bytes = base64url_nopad_decode(value);
  if (!bytes.ok()) return make_error("client auth header: " + bytes.error().message);
  return decode_key_material_auth(*bytes);
}

Result<void> verify_key_material_auth(const KeyMaterialClientAuth& auth,
                                      const ByteArray<kKeyMaterialSize>& server_ekm) {
  if (!std::equal(auth.key_material_suffix.begin(), auth.key_material_suffix.end(),
                  server_ekm.begin() + (kKeyMaterialSize - kKeyMaterialSuffixSize))) {
    return make_error("key material suffix mismatch");
  }
  if (!auth.public_key.verify(
          ByteView(server_ekm.data(), kKeyMaterialSize - kKeyMaterialSuffixSize), auth.signature)) {
    return make_error(std::string(kReasonSignatureInvalid));
  }
  return {};
}

}  // namespace iroh::relay

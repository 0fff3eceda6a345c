// PacketProtection. See packet_protection.h.
#include "crypto/packet_protection.h"

#include <utility>

namespace iroh::crypto {

PacketProtection::PacketProtection(Aead aead, HeaderProtection hp, Bytes secret, Bytes hp_key,
                                   EncryptionLevel level, std::uint64_t generation)
    : aead_(std::move(aead)),
      hp_(std::move(hp)),
      secret_(std::move(secret)),
      hp_key_(std::move(hp_key)),
      level_(level),
      generation_(generation) {}

Result<PacketProtection> PacketProtection::from_secret(AeadAlgorithm alg, ByteView secret,
                                                       EncryptionLevel level) {
  auto material = derive_packet_key_material(alg, secret);
  if (!material) return material.error();
  auto aead = Aead::create(alg, material->key, material->iv);
  if (!aead) return aead.error();
  auto hp = HeaderProtection::create(alg, material->hp);
  if (!hp) return hp.error();
  return PacketProtection(std::move(*aead), std::move(*hp), Bytes(secret.begin(), secret.end()),
                          std::move(material->hp), level, 0);
}

Result<PacketProtection> PacketProtection::next_generation() const {
  const AeadAlgorithm alg = aead_.algorithm();
  auto next = derive_next_secret(alg, secret_);
  if (!next) return next.error();
  auto material = derive_packet_key_material(alg, *next);
  if (!material) return material.error();
  auto aead = Aead::create(alg, material->key, material->iv);
  if (!aead) return aead.error();
  // §6.1: the header protection key is not updated.
  auto hp = HeaderProtection::create(alg, hp_key_);
  if (!hp) return hp.error();
  return PacketProtection(std::move(*aead), std::move(*hp), std::move(*next), hp_key_, level_,
                          generation_ + 1);
}

Result<InitialKeys> derive_initial_keys(ByteView client_dcid) {
  auto secrets = derive_initial_secrets(client_dcid);
  if (!secrets) return secrets.error();
  auto client =
      PacketProtection::from_secret(kInitialAead, secrets->client, EncryptionLevel::kInitial);
  if (!client) return client.error();
  auto server =
      PacketProtection::from_secret(kInitialAead, secrets->server, EncryptionLevel::kInitial);
  if (!server) return server.error();
  return InitialKeys{std::move(*client), std::move(*server)};
}

}  // namespace iroh::crypto

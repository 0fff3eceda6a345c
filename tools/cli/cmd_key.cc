// irohlab key … / irohlab id …: identities and signatures (spec §1).
#include <sodium.h>

#include <iostream>
#include <memory>

#include "base/key.h"
#include "base/text_encoding.h"
#include "cli.h"

namespace irohlab::cli {
namespace {

nlohmann::json id_json(const iroh::EndpointId& id) {
  return {{"id", id.to_hex()},
          {"base32", id.to_base32()},
          {"z32", id.to_z32()},
          {"tls_name", id.to_tls_name()},
          {"short", id.fmt_short()}};
}

void print_id(const iroh::EndpointId& id, bool json) {
  if (json) return print_json(id_json(id));
  std::cout << "id:       " << id.to_hex() << "\n"
            << "base32:   " << id.to_base32() << "\n"
            << "z32:      " << id.to_z32() << "\n"
            << "tls_name: " << id.to_tls_name() << "\n"
            << "short:    " << id.fmt_short() << "\n";
}

iroh::Bytes message_bytes(const std::string& hex) {
  auto r = iroh::parse_hex_lower(hex);
  if (!r.ok()) throw UsageError("--message-hex: " + r.error().message);
  return std::move(r).value();
}

}  // namespace

void register_key_commands(CLI::App& app) {
  auto* key = app.add_subcommand("key", "Endpoint identities: ed25519 secret keys and their ids");
  key->require_subcommand(1);

  {
    auto* cmd = key->add_subcommand("generate", "Generate a new secret key (OS randomness)");
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print JSON");
    cmd->callback([json] {
      if (sodium_init() < 0) throw Failure("libsodium failed to initialise");
      iroh::ByteArray<32> seed{};
      randombytes_buf(seed.data(), seed.size());
      const auto sk = iroh::SecretKey::generate(seed);
      sodium_memzero(seed.data(), seed.size());
      if (*json) {
        auto j = id_json(sk.public_key());
        j["secret"] = sk.to_hex();
        print_json(j);
      } else {
        std::cout << "secret:   " << sk.to_hex() << "\n";
        print_id(sk.public_key(), false);
      }
    });
  }
  {
    auto* cmd =
        key->add_subcommand("show", "Show the endpoint id of a secret key in every text form");
    auto secret = std::make_shared<std::string>();
    cmd->add_option("SECRET", *secret, "Secret key: 64 lowercase hex chars or base32")->required();
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print JSON (keys id, base32, z32, tls_name, short)");
    cmd->callback(
        [secret, json] { print_id(unwrap(iroh::SecretKey::parse(*secret)).public_key(), *json); });
  }
  {
    auto* cmd = key->add_subcommand("sign", "Sign a message with a secret key (ed25519, RFC 8032)");
    auto secret = std::make_shared<std::string>();
    auto message = std::make_shared<std::string>();
    cmd->add_option("SECRET", *secret, "Secret key: 64 lowercase hex chars or base32")->required();
    cmd->add_option("--message-hex", *message, "The message, lowercase hex")->required();
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print JSON (keys id, signature)");
    cmd->callback([secret, message, json] {
      const auto sk = unwrap(iroh::SecretKey::parse(*secret));
      const auto sig = sk.sign(message_bytes(*message));
      if (*json) {
        print_json({{"id", sk.public_key().to_hex()}, {"signature", iroh::to_hex(sig)}});
      } else {
        std::cout << iroh::to_hex(sig) << "\n";
      }
    });
  }
  {
    auto* cmd = key->add_subcommand(
        "verify", "Verify an ed25519 signature strictly (exit 0 valid, 1 invalid, 2 bad input)");
    auto id = std::make_shared<std::string>();
    auto sig = std::make_shared<std::string>();
    auto message = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Endpoint id (hex or base32)")->required();
    cmd->add_option("SIGNATURE", *sig, "Signature, 128 lowercase hex chars")->required();
    cmd->add_option("--message-hex", *message, "The message, lowercase hex")->required();
    cmd->callback([id, sig, message] {
      const auto endpoint = unwrap(iroh::EndpointId::parse(*id));
      const auto raw = iroh::parse_hex_lower(*sig);
      if (!raw.ok()) throw UsageError("signature: " + raw.error().message);
      if (raw->size() != 64) {
        throw UsageError("signature must be 64 bytes, got " + std::to_string(raw->size()));
      }
      iroh::Signature signature{};
      std::copy(raw->begin(), raw->end(), signature.begin());
      if (!endpoint.verify(message_bytes(*message), signature)) throw Failure("invalid signature");
      std::cout << "valid\n";
    });
  }

  auto* idcmd = app.add_subcommand("id", "Endpoint ids (public keys)");
  idcmd->require_subcommand(1);
  {
    auto* cmd = idcmd->add_subcommand("show", "Parse an endpoint id and show every text form");
    auto id = std::make_shared<std::string>();
    cmd->add_option("ID", *id, "Endpoint id: 64 lowercase hex chars or base32 (any case)")
        ->required();
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print JSON (keys id, base32, z32, tls_name, short)");
    cmd->callback([id, json] { print_id(unwrap(iroh::EndpointId::parse(*id)), *json); });
  }
}

}  // namespace irohlab::cli

// irohlab ticket …: EndpointTicket encode/decode (spec §2).
#include <iostream>
#include <memory>

#include "base/endpoint_addr.h"
#include "base/ticket.h"
#include "cli.h"

namespace irohlab::cli {

void register_ticket_commands(CLI::App& app) {
  auto* ticket = app.add_subcommand("ticket", "Endpoint tickets (\"endpoint…\" strings)");
  ticket->require_subcommand(1);

  {
    auto* cmd = ticket->add_subcommand("decode", "Decode a ticket and list what it holds");
    auto text = std::make_shared<std::string>();
    cmd->add_option("TICKET", *text, "The ticket string")->required();
    auto json = std::make_shared<bool>(false);
    cmd->add_flag("--json", *json, "Print JSON (keys id, relays, addrs, custom, ticket)");
    cmd->callback([text, json] {
      const auto addr = unwrap(iroh::decode_ticket(*text));
      nlohmann::json relays = nlohmann::json::array();
      nlohmann::json addrs = nlohmann::json::array();
      nlohmann::json custom = nlohmann::json::array();
      for (const auto& r : addr.relay_urls()) relays.push_back(r.str());
      for (const auto& s : addr.ip_addrs()) addrs.push_back(s.to_string());
      for (const auto& c : addr.custom_addrs()) custom.push_back(c.to_string());
      const std::string canonical = iroh::encode_ticket(addr);
      if (*json) {
        print_json({{"id", addr.id.to_hex()},
                    {"relays", relays},
                    {"addrs", addrs},
                    {"custom", custom},
                    {"ticket", canonical}});
        return;
      }
      std::cout << "id:     " << addr.id.to_hex() << "\n";
      for (const auto& r : relays) std::cout << "relay:  " << r.get<std::string>() << "\n";
      for (const auto& s : addrs) std::cout << "addr:   " << s.get<std::string>() << "\n";
      for (const auto& c : custom) std::cout << "custom: " << c.get<std::string>() << "\n";
    });
  }
  {
    auto* cmd = ticket->add_subcommand(
        "encode", "Build a ticket from an id and addresses; prints the ticket alone");
    auto id = std::make_shared<std::string>();
    auto relays = std::make_shared<std::vector<std::string>>();
    auto addrs = std::make_shared<std::vector<std::string>>();
    auto customs = std::make_shared<std::vector<std::string>>();
    cmd->add_option("--id", *id, "Endpoint id (hex or base32)")->required();
    cmd->add_option("--relay", *relays, "Relay URL (repeatable)");
    cmd->add_option("--addr", *addrs, "Direct address IP:PORT, IPv6 as [IP]:PORT (repeatable)");
    cmd->add_option("--custom", *customs, "Custom transport address ID_DATA in hex (repeatable)");
    cmd->callback([id, relays, addrs, customs] {
      iroh::EndpointAddr addr;
      addr.id = unwrap(iroh::EndpointId::parse(*id));
      for (const auto& r : *relays) addr.addrs.insert(unwrap(iroh::RelayUrl::parse(r)));
      for (const auto& a : *addrs) addr.addrs.insert(unwrap(iroh::SocketAddr::parse(a)));
      for (const auto& c : *customs) addr.addrs.insert(unwrap(iroh::CustomAddr::parse(c)));
      std::cout << iroh::encode_ticket(addr) << "\n";
    });
  }
}

}  // namespace irohlab::cli

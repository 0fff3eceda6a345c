// Access mode `http` (spec §6.7), the I/O half: asynchronous POST callouts on the relay server's
// io_context (never blocks the event loop). Decisions come from relay/access_http.h.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "base/key.h"
#include "relay/access_http.h"

namespace boost::asio {
class io_context;
}

namespace iroh::io {

class AccessHttpClient {
 public:
  // nullopt = allowed, else the ServerDeniesAuth reason.
  using Done = std::function<void(std::optional<std::string> denial)>;

  AccessHttpClient(boost::asio::io_context& ioc, relay::AccessHttpTarget target, std::string token);
  ~AccessHttpClient();
  AccessHttpClient(const AccessHttpClient&) = delete;
  AccessHttpClient& operator=(const AccessHttpClient&) = delete;

  // Starts one callout for `id`; `done` runs exactly once on the io_context (after at most
  // relay::kAccessHttpTimeout), unless cancel_all() comes first.
  void check(const EndpointId& id, Done done);
  // Aborts every callout in flight; their `done` never runs (server shutdown).
  void cancel_all();
  std::size_t in_flight() const;

  struct Op;

 private:
  boost::asio::io_context& ioc_;
  relay::AccessHttpTarget target_;
  std::string token_;
  std::uint64_t next_id_ = 1;
  struct Registry;
  std::shared_ptr<Registry> ops_;
};

}  // namespace iroh::io

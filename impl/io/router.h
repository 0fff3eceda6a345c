// io::Router: dispatches incoming connections to a handler per ALPN.
//
//   Router router;
//   router.add("my/echo/0", [](std::shared_ptr<QuicConnection> c) -> awaitable<void> { ... });
//   auto ep = QuicEndpoint::bind(io, secret, {.alpns = router.alpns()});
//   co_spawn(io, router.serve(*ep), detached);
//
// TLS has already refused clients whose ALPN is not in the endpoint's list (alert 120), so every
// accepted connection has a handler; serve() runs each in its own coroutine and returns when the
// endpoint closes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/quic_endpoint.h"

namespace iroh::io {

class Router {
 public:
  using Handler = std::function<awaitable<void>(std::shared_ptr<QuicConnection>)>;

  // Registers `handler` for `alpn`; replaces an earlier one for the same ALPN.
  Router& add(std::string alpn, Handler handler);
  // The ALPNs to give QuicEndpointOptions::alpns, in registration order.
  std::vector<std::string> alpns() const;
  awaitable<void> serve(std::shared_ptr<QuicEndpoint> endpoint);
  // Connections handled so far, per ALPN (diagnostics, tests).
  std::size_t handled(const std::string& alpn) const;

 private:
  std::vector<std::string> order_;
  std::map<std::string, Handler> handlers_;
  std::map<std::string, std::size_t> handled_;
};

}  // namespace iroh::io

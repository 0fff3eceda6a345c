#include "io/router.h"

namespace iroh::io {

Router& Router::add(std::string alpn, Handler handler) {
  if (!handlers_.count(alpn)) order_.push_back(alpn);
  handlers_[std::move(alpn)] = std::move(handler);
  return *this;
}

std::vector<std::string> Router::alpns() const { return order_; }

std::size_t Router::handled(const std::string& alpn) const {
  auto it = handled_.find(alpn);
  return it == handled_.end() ? 0 : it->second;
}

awaitable<void> Router::serve(std::shared_ptr<QuicEndpoint> endpoint) {
  auto ex = co_await boost::asio::this_coro::executor;
  for (;;) {
    auto conn = co_await endpoint->accept();
    if (!conn) co_return;
    auto it = handlers_.find(conn->alpn());
    if (it == handlers_.end()) {
      // Only possible if the endpoint accepts ALPNs the router does not know.
      conn->close(0x78, "no handler for this ALPN");
      continue;
    }
    ++handled_[it->first];
    boost::asio::co_spawn(ex, it->second(conn), boost::asio::detached);
  }
}

}  // namespace iroh::io

// Access mode `http`, I/O half. See access_http_client.h.
#include "io/access_http_client.h"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <unordered_map>
#include <utility>

namespace iroh::io {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct AccessHttpClient::Registry {
  std::unordered_map<std::uint64_t, std::weak_ptr<Op>> ops;
};

struct AccessHttpClient::Op : std::enable_shared_from_this<AccessHttpClient::Op> {
  Op(net::io_context& ioc, std::weak_ptr<Registry> reg, std::uint64_t id, Done done)
      : resolver(ioc), stream(ioc), registry(std::move(reg)), id(id), done(std::move(done)) {}

  void finish(std::optional<std::string> denial) {
    if (finished) return;
    finished = true;
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    if (auto r = registry.lock()) r->ops.erase(id);
    auto d = std::move(done);
    if (!cancelled && d) d(std::move(denial));
  }
  void fail(std::string_view what, const beast::error_code& ec) {
    const std::string msg = ec == beast::error::timeout || ec == net::error::timed_out
                                ? std::string("timeout")
                                : std::string(what) + ": " + ec.message();
    finish(relay::access_http_failure_reason(msg));
  }
  void cancel() {
    cancelled = true;
    resolver.cancel();
    finish(std::nullopt);
  }

  tcp::resolver resolver;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  http::request<http::empty_body> req;
  http::response_parser<http::string_body> parser;
  std::weak_ptr<Registry> registry;
  std::uint64_t id;
  Done done;
  bool finished = false;
  bool cancelled = false;
};

AccessHttpClient::AccessHttpClient(net::io_context& ioc, relay::AccessHttpTarget target,
                                   std::string token)
    : ioc_(ioc),
      target_(std::move(target)),
      token_(std::move(token)),
      ops_(std::make_shared<Registry>()) {}

AccessHttpClient::~AccessHttpClient() { cancel_all(); }

std::size_t AccessHttpClient::in_flight() const { return ops_->ops.size(); }

void AccessHttpClient::cancel_all() {
  std::vector<std::shared_ptr<Op>> all;
  for (auto& [id, w] : ops_->ops) {
    if (auto op = w.lock()) all.push_back(std::move(op));
  }
  for (auto& op : all) op->cancel();
  ops_->ops.clear();
}

void AccessHttpClient::check(const EndpointId& id, Done done) {
  const std::uint64_t op_id = next_id_++;
  auto op = std::make_shared<Op>(ioc_, ops_, op_id, std::move(done));
  ops_->ops[op_id] = op;

  const relay::AccessHttpRequest r = relay::make_access_http_request(target_, id, token_);
  op->req.method(http::verb::post);
  op->req.target(r.target);
  op->req.version(11);
  for (const auto& [k, v] : r.headers) op->req.set(k, v);
  op->req.keep_alive(false);
  op->parser.body_limit(64 * 1024);
  op->parser.header_limit(16 * 1024);

  // One deadline for the whole exchange (resolve included).
  auto deadline = std::make_shared<net::steady_timer>(ioc_);
  deadline->expires_after(relay::kAccessHttpTimeout);
  deadline->async_wait([w = std::weak_ptr<Op>(op)](beast::error_code ec) {
    if (ec) return;
    if (auto o = w.lock()) {
      o->resolver.cancel();
      o->finish(relay::access_http_failure_reason("timeout"));
    }
  });
  op->stream.expires_after(relay::kAccessHttpTimeout);
  op->resolver.async_resolve(
      target_.host, std::to_string(target_.port),
      [op, deadline](beast::error_code ec, tcp::resolver::results_type results) {
        if (op->finished) return;
        if (ec) {
          deadline->cancel();
          return op->fail("resolve", ec);
        }
        op->stream.async_connect(results, [op, deadline](beast::error_code ec,
                                                         const tcp::endpoint&) {
          if (op->finished) return;
          if (ec) {
            deadline->cancel();
            return op->fail("connect", ec);
          }
          http::async_write(op->stream, op->req, [op, deadline](beast::error_code ec, std::size_t) {
            if (op->finished) return;
            if (ec) {
              deadline->cancel();
              return op->fail("write", ec);
            }
            http::async_read(
                op->stream, op->buffer, op->parser,
                [op, deadline](beast::error_code ec, std::size_t) {
                  deadline->cancel();
                  if (op->finished) return;
                  if (ec) return op->fail("read", ec);
                  const auto& res = op->parser.get();
                  op->finish(relay::decide_access_http_response(res.result_int(), res.body()));
                });
          });
        });
      });
}

}  // namespace iroh::io

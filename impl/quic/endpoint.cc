#include "quic/endpoint.h"

#include <algorithm>
#include <cstring>

#include "base/blake3.h"
#include "quic/connection_internal.h"

namespace iroh::quic {

namespace {
constexpr std::size_t kCidLength = detail::kLocalCidLength;
constexpr Duration kRetryTokenLifetime = 10s;
constexpr std::size_t kMinStatelessResetSize = 21;  // RFC 9000 §10.3

Bytes addr_bytes(const SocketAddr& a) {
  Bytes b(a.ip().begin(), a.ip().end());
  b.push_back(static_cast<std::uint8_t>(a.port() >> 8));
  b.push_back(static_cast<std::uint8_t>(a.port()));
  return b;
}
}  // namespace

Endpoint::Endpoint(const SecretKey& secret_key, EndpointConfig config, Random& random)
    : secret_key_(secret_key),
      config_(std::move(config)),
      random_(random),
      id_(secret_key.public_key()) {
  random_.fill(token_key_);
  // Connections share the endpoint's reset key so it can reset connections it no longer has.
  if (config_.connection.reset_key == ByteArray<32>{}) random_.fill(config_.connection.reset_key);
}

Endpoint::~Endpoint() = default;

EndpointId Endpoint::id() const { return id_; }

ConnectionId Endpoint::random_cid() {
  for (;;) {
    ByteArray<kCidLength> raw{};
    random_.fill(raw);
    if (!routes_.count(Bytes(raw.begin(), raw.end()))) return ConnectionId::from(raw).value();
  }
}

Result<ConnectionHandle> Endpoint::connect(Instant now, const SocketAddr& remote,
                                           const EndpointId& server, std::string alpn) {
  if (conns_.size() >= config_.max_connections) return make_error("too many connections");
  ConnectionConfig cc = config_.connection;
  cc.role = Role::kClient;
  cc.secret_key = secret_key_;
  cc.expected_server = server;
  cc.alpn = std::move(alpn);
  ByteArray<16> dcid_raw{};
  random_.fill(dcid_raw);
  const auto dcid = ConnectionId::from(dcid_raw).value();
  if (config_.qlog_factory) cc.qlog = config_.qlog_factory(Role::kClient, dcid.view());
  const auto scid = random_cid();
  auto conn = Connection::connect(std::move(cc), now, random_, remote, dcid, scid);
  if (!conn) return conn.error();
  const ConnectionHandle h = next_handle_++;
  Entry e;
  e.conn = std::move(conn).value();
  auto& entry = conns_.emplace(h, std::move(e)).first->second;
  sync_cids(h, entry);
  return h;
}

void Endpoint::sync_cids(ConnectionHandle h, Entry& e) {
  const std::uint64_t epoch = e.conn->cid_epoch();
  if (e.synced_epoch && *e.synced_epoch == epoch) return;
  e.synced_epoch = epoch;
  auto now_cids = e.conn->local_cids();
  if (now_cids == e.cids) return;
  for (const auto& c : e.cids) {
    if (std::find(now_cids.begin(), now_cids.end(), c) == now_cids.end()) {
      routes_.erase(Bytes(c.view().begin(), c.view().end()));
    }
  }
  for (const auto& c : now_cids) routes_[Bytes(c.view().begin(), c.view().end())] = h;
  e.cids = std::move(now_cids);
}

void Endpoint::remove(ConnectionHandle h) {
  auto it = conns_.find(h);
  if (it == conns_.end()) return;
  for (const auto& c : it->second.cids) routes_.erase(Bytes(c.view().begin(), c.view().end()));
  if (it->second.initial_dcid) routes_.erase(*it->second.initial_dcid);
  removed_.push_back(Removed{h, it->second.conn->close_reason(), it->second.conn->stats()});
  conns_.erase(it);
}

void Endpoint::handle_datagram(Instant now, const SocketAddr& from,
                               std::span<std::uint8_t> datagram, std::uint8_t ecn) {
  ++stats_.datagrams_in;
  if (datagram.empty()) return;
  const bool long_header = datagram[0] & 0x80;
  Bytes dcid;
  if (long_header) {
    auto inv = parse_invariants(datagram);
    if (!inv) return;
    if (inv->version != kVersion1 && inv->version != 0) {
      // RFC 9000 §6.1: answer an unknown version with Version Negotiation, only for datagrams
      // that could be a client's first (≥ 1200 bytes), never for VN itself.
      if (datagram.size() >= 1200 && inv->dcid.size() <= 255 && inv->scid.size() <= 255) {
        Bytes vn;
        std::uint8_t first = 0x80;
        random_.fill(std::span<std::uint8_t>(&first, 1));
        vn.push_back(static_cast<std::uint8_t>(first | 0x80 | 0x40));
        vn.insert(vn.end(), {0, 0, 0, 0});
        vn.push_back(static_cast<std::uint8_t>(inv->scid.size()));
        vn.insert(vn.end(), inv->scid.begin(), inv->scid.end());
        vn.push_back(static_cast<std::uint8_t>(inv->dcid.size()));
        vn.insert(vn.end(), inv->dcid.begin(), inv->dcid.end());
        vn.insert(vn.end(), {0, 0, 0, 1});
        stateless_out_.emplace_back(std::move(vn), from);
        ++stats_.version_negotiations;
      }
      return;
    }
    dcid.assign(inv->dcid.begin(), inv->dcid.end());
  } else {
    if (datagram.size() < 1 + kCidLength) return;
    dcid.assign(datagram.begin() + 1, datagram.begin() + 1 + kCidLength);
  }
  if (auto r = routes_.find(dcid); r != routes_.end()) {
    auto it = conns_.find(r->second);
    if (it != conns_.end()) {
      it->second.conn->handle_datagram(now, from, datagram, ecn);
      if (it->second.conn->is_drained()) {
        remove(it->first);
      } else {
        sync_cids(it->first, it->second);
      }
      return;
    }
  }
  // Not routable.
  if (long_header) {
    auto split = split_datagram(datagram, kCidLength);
    if (!split.packets.empty() && split.packets[0].header.type == PacketType::kInitial) {
      on_new_initial(now, from, datagram, split.packets[0], ecn);
      return;
    }
    ++stats_.datagrams_unroutable;
    return;
  }
  ++stats_.datagrams_unroutable;
  // A stateless reset for one of our connections? (Its DCID is random, so it is unroutable.)
  for (auto& [h, e] : conns_) {
    if (e.conn->matches_reset_token(datagram)) {
      e.conn->handle_stateless_reset(now);
      return;
    }
  }
  // RFC 9000 §10.3: reset the sender; smaller than what triggered it (no amplification, no
  // reset loops), at least 21 bytes, looking like a short-header packet.
  if (datagram.size() > kMinStatelessResetSize + 1) {
    const std::size_t size = std::min<std::size_t>(datagram.size() - 1, 43);
    Bytes reset(size);
    random_.fill(reset);
    reset[0] = static_cast<std::uint8_t>((reset[0] & 0x3f) | 0x40);
    const auto token = stateless_reset_token(config_.connection.reset_key, dcid);
    std::memcpy(reset.data() + size - 16, token.data(), 16);
    stateless_out_.emplace_back(std::move(reset), from);
    ++stats_.stateless_resets_sent;
  }
}

Bytes Endpoint::make_retry_token(Instant now, const SocketAddr& client,
                                 const ConnectionId& odcid) {
  // token = issued_at_ns (8, big endian) || odcid_len (1) || odcid || mac (16)
  // mac = BLAKE3-keyed(token_key, issued_at || odcid || client address)[:16]
  Bytes t;
  const auto ns = static_cast<std::uint64_t>(now.time_since_epoch().count());
  for (int i = 7; i >= 0; --i) t.push_back(static_cast<std::uint8_t>(ns >> (8 * i)));
  t.push_back(static_cast<std::uint8_t>(odcid.size()));
  t.insert(t.end(), odcid.view().begin(), odcid.view().end());
  auto h = blake3::Hasher::keyed(token_key_);
  h.update(t);
  h.update(addr_bytes(client));
  const auto mac = h.finalize();
  t.insert(t.end(), mac.begin(), mac.begin() + 16);
  return t;
}

std::optional<ConnectionId> Endpoint::check_retry_token(Instant now, const SocketAddr& client,
                                                        ByteView token) {
  if (token.size() < 8 + 1 + 16) return std::nullopt;
  const std::size_t odcid_len = token[8];
  if (odcid_len > 20 || token.size() != 8 + 1 + odcid_len + 16) return std::nullopt;
  auto h = blake3::Hasher::keyed(token_key_);
  h.update(token.first(9 + odcid_len));
  h.update(addr_bytes(client));
  const auto mac = h.finalize();
  if (!std::equal(mac.begin(), mac.begin() + 16, token.begin() + 9 + odcid_len)) {
    return std::nullopt;
  }
  std::uint64_t ns = 0;
  for (int i = 0; i < 8; ++i) ns = (ns << 8) | token[i];
  const Instant issued{Duration(static_cast<std::int64_t>(ns))};
  if (now < issued || now - issued > kRetryTokenLifetime) return std::nullopt;
  auto cid = ConnectionId::from(token.subspan(9, odcid_len));
  if (!cid) return std::nullopt;
  return *cid;
}

void Endpoint::on_new_initial(Instant now, const SocketAddr& from,
                              std::span<std::uint8_t> datagram, const ParsedHeader& parsed,
                              std::uint8_t ecn) {
  // RFC 9000 §14.1: a client's first Initial datagram is at least 1200 bytes.
  if (datagram.size() < 1200) return;
  if (config_.alpns.empty() || conns_.size() >= config_.max_connections) {
    ++stats_.refused;
    return;  // not accepting: let the client time out (a CONNECTION_CLOSE needs keys; later)
  }
  const auto& h = parsed.header;
  if (h.dcid.size() < 8) return;  // RFC 9000 §7.2
  ConnectionId original_dcid = h.dcid;
  std::optional<ConnectionId> retry_scid;
  if (config_.retry) {
    if (h.token.empty()) {
      PacketHeader r;
      r.type = PacketType::kRetry;
      r.dcid = h.scid;
      r.scid = random_cid();
      r.token = make_retry_token(now, from, h.dcid);
      auto pkt = encode_retry(r, h.dcid.view());
      if (pkt) {
        stateless_out_.emplace_back(std::move(pkt).value(), from);
        ++stats_.retries_sent;
      }
      return;
    }
    auto odcid = check_retry_token(now, from, h.token);
    if (!odcid) {
      ++stats_.invalid_tokens;
      return;  // RFC 9000 §8.1.3: may drop (INVALID_TOKEN needs Initial keys of the new DCID)
    }
    original_dcid = *odcid;
    retry_scid = h.dcid;
  }
  ConnectionConfig cc = config_.connection;
  cc.role = Role::kServer;
  cc.secret_key = secret_key_;
  cc.alpns = config_.alpns;
  if (config_.qlog_factory) cc.qlog = config_.qlog_factory(Role::kServer, original_dcid.view());
  auto conn =
      Connection::accept(std::move(cc), now, random_, from, original_dcid, h.scid, random_cid(),
                         retry_scid);
  if (!conn) return;
  const ConnectionHandle handle = next_handle_++;
  Entry e;
  e.conn = std::move(conn).value();
  // Route the client's further Initials (same DCID) here until it learns our CID.
  e.initial_dcid = Bytes(h.dcid.view().begin(), h.dcid.view().end());
  routes_[*e.initial_dcid] = handle;
  auto& entry = conns_.emplace(handle, std::move(e)).first->second;
  sync_cids(handle, entry);
  entry.conn->handle_datagram(now, from, datagram, ecn);
  if (entry.conn->stats().packets_received == 0) {
    // Nothing in the datagram decrypted (RFC 9001 §5.5: such packets are discarded). Keeping the
    // connection would hand the application a half-open connection made from 1200 bytes of
    // garbage. (Fix: it was queued for accept() before its first packet was even processed.)
    for (const auto& c : entry.cids) routes_.erase(Bytes(c.view().begin(), c.view().end()));
    routes_.erase(*entry.initial_dcid);
    conns_.erase(handle);
    return;
  }
  incoming_.push_back(handle);
  sync_cids(handle, entry);
}

std::optional<Transmit> Endpoint::poll_transmit(Instant now, std::span<std::uint8_t> buf,
                                                std::size_t max_datagrams) {
  if (!stateless_out_.empty()) {
    auto [bytes, dest] = std::move(stateless_out_.front());
    stateless_out_.pop_front();
    if (bytes.size() <= buf.size()) {
      std::memcpy(buf.data(), bytes.data(), bytes.size());
      return Transmit{dest, 0, bytes.size(), bytes.size()};
    }
  }
  if (conns_.empty()) return std::nullopt;
  // Round-robin: start after the connection that sent last.
  auto it = conns_.upper_bound(rr_next_);
  for (std::size_t i = 0; i < conns_.size(); ++i, ++it) {
    if (it == conns_.end()) it = conns_.begin();
    auto t = it->second.conn->poll_transmit(now, buf, max_datagrams);
    if (t) {
      rr_next_ = it->first;
      return t;
    }
  }
  return std::nullopt;
}

std::optional<Instant> Endpoint::next_timeout() const {
  std::optional<Instant> best;
  for (const auto& [h, e] : conns_) {
    auto t = e.conn->next_timeout();
    if (t && (!best || *t < *best)) best = t;
  }
  return best;
}

void Endpoint::handle_timeout(Instant now) {
  std::vector<ConnectionHandle> drained;
  for (auto& [h, e] : conns_) {
    auto t = e.conn->next_timeout();
    if (t && *t <= now) e.conn->handle_timeout(now);
    if (e.conn->is_drained()) {
      drained.push_back(h);
    } else {
      sync_cids(h, e);
    }
  }
  for (auto h : drained) remove(h);
}

std::optional<ConnectionHandle> Endpoint::accept() {
  while (!incoming_.empty()) {
    const auto h = incoming_.front();
    incoming_.pop_front();
    if (conns_.count(h)) return h;
  }
  return std::nullopt;
}

Connection* Endpoint::connection(ConnectionHandle h) {
  auto it = conns_.find(h);
  return it == conns_.end() ? nullptr : it->second.conn.get();
}

std::vector<ConnectionHandle> Endpoint::handles() const {
  std::vector<ConnectionHandle> out;
  out.reserve(conns_.size());
  for (const auto& [h, e] : conns_) out.push_back(h);
  return out;
}

std::vector<Endpoint::Removed> Endpoint::take_removed() {
  std::vector<Removed> out;
  out.swap(removed_);
  return out;
}

std::size_t Endpoint::connection_count() const { return conns_.size(); }

}  // namespace iroh::quic

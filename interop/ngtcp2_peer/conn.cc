// One QUIC connection driven by ngtcp2: callbacks, the batched write loop, stream bookkeeping.
#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "peer.h"

namespace ngpeer {
namespace {

constexpr std::size_t kCidLen = 8;     // iroh's local CID length
constexpr std::size_t kMaxBatch = 64;  // datagrams per GSO send
constexpr std::uint64_t kStreamWindow = 16 << 20;
constexpr std::uint64_t kConnWindow = 64 << 20;

std::vector<std::uint8_t*>& block_free_list() {
  static std::vector<std::uint8_t*> list;
  return list;
}

void ngtcp2_log(void*, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  std::vfprintf(stderr, fmt, ap);
  std::fputc('\n', stderr);
  va_end(ap);
}

}  // namespace

// ---- ChunkQueue ----

ChunkQueue::~ChunkQueue() {
  for (auto* b : blocks_) block_free_list().push_back(b);
}

void ChunkQueue::append(const std::uint8_t* data, std::size_t len) {
  while (len > 0) {
    std::size_t used = std::size_t((end_ - base_) % kBlock);
    if (used == 0 && end_ - base_ == blocks_.size() * kBlock) {
      auto& free = block_free_list();
      if (free.empty()) {
        blocks_.push_back(new std::uint8_t[kBlock]);
      } else {
        blocks_.push_back(free.back());
        free.pop_back();
      }
    }
    std::size_t n = std::min(len, kBlock - used);
    std::memcpy(blocks_.back() + used, data, n);
    data += n;
    len -= n;
    end_ += n;
  }
}

std::size_t ChunkQueue::vecs_at(std::uint64_t offset, ngtcp2_vec* out, std::size_t max_len) const {
  std::size_t count = 0;
  while (count < 2 && offset < end_ && max_len > 0) {
    std::size_t idx = std::size_t((offset - base_) / kBlock);
    std::size_t within = std::size_t((offset - base_) % kBlock);
    std::size_t n = std::min<std::uint64_t>({kBlock - within, end_ - offset, max_len});
    out[count++] = {blocks_[idx] + within, n};
    offset += n;
    max_len -= n;
  }
  return count;
}

void ChunkQueue::release_below(std::uint64_t offset) {
  while (!blocks_.empty() && base_ + kBlock <= offset) {
    block_free_list().push_back(blocks_.front());
    blocks_.pop_front();
    base_ += kBlock;
  }
}

// ---- ngtcp2 callbacks ----

struct ConnCallbacks {
  static Conn* self(void* user_data) { return static_cast<Conn*>(user_data); }

  static int recv_stream_data(ngtcp2_conn* conn, std::uint32_t flags, std::int64_t id,
                              std::uint64_t offset, const std::uint8_t* data, std::size_t len,
                              void* user_data, void*) {
    Conn* c = self(user_data);
    Stream* s = c->find_stream(id);
    if (!s) s = &c->add_stream(id);
    bool fin = flags & NGTCP2_STREAM_DATA_FLAG_FIN;
    s->received = offset + len;
    if (fin) s->recv_fin = true;
    c->handler_.on_stream_data(*c, *s, offset, data, len, fin);
    // ngtcp2 0.12.1 never reports a peer's uni stream as closed (stream_close does not fire after
    // its FIN), so its credit would never come back: return it when the FIN is in.
    if (fin && !ngtcp2_is_bidi_stream(id) && !ngtcp2_conn_is_local_stream(conn, id) &&
        !s->credit_returned) {
      s->credit_returned = true;
      ngtcp2_conn_extend_max_streams_uni(conn, 1);
    }
    if (!s->credit_on_send && len > 0) {
      ngtcp2_conn_extend_max_stream_offset(conn, id, len);
      ngtcp2_conn_extend_max_offset(conn, len);
    }
    return 0;
  }
  static int stream_open(ngtcp2_conn*, std::int64_t id, void* user_data) {
    Conn* c = self(user_data);
    if (!c->find_stream(id)) c->handler_.on_stream_opened(*c, c->add_stream(id));
    return 0;
  }
  static int acked(ngtcp2_conn*, std::int64_t id, std::uint64_t offset, std::uint64_t len,
                   void* user_data, void*) {
    Stream* s = self(user_data)->find_stream(id);
    if (!s) return 0;
    s->acked = std::max(s->acked, offset + len);
    if (s->source == Stream::Source::kChunks) s->chunks.release_below(s->acked);
    return 0;
  }
  static int stream_close(ngtcp2_conn* conn, std::uint32_t flags, std::int64_t id,
                          std::uint64_t code, void* user_data, void*) {
    Conn* c = self(user_data);
    Stream* s = c->find_stream(id);
    if (s && !s->closed) {
      s->closed = true;
      c->handler_.on_stream_closed(*c, *s, flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET,
                                   code);
      c->graveyard_.push_back(id);
    }
    // ngtcp2 does not hand out stream credit by itself: let the peer open another one.
    if (!ngtcp2_conn_is_local_stream(conn, id) && !(s && s->credit_returned)) {
      if (ngtcp2_is_bidi_stream(id))
        ngtcp2_conn_extend_max_streams_bidi(conn, 1);
      else
        ngtcp2_conn_extend_max_streams_uni(conn, 1);
    }
    return 0;
  }
  static int stream_reset(ngtcp2_conn*, std::int64_t id, std::uint64_t, std::uint64_t code,
                          void* user_data, void*) {
    Conn* c = self(user_data);
    if (Stream* s = c->find_stream(id)) c->handler_.on_stream_reset(*c, *s, code, false);
    return 0;
  }
  static int stop_sending(ngtcp2_conn*, std::int64_t id, std::uint64_t code, void* user_data,
                          void*) {
    Conn* c = self(user_data);
    if (Stream* s = c->find_stream(id)) {
      s->write_closed = true;  // ngtcp2 answers STOP_SENDING with RESET_STREAM itself
      c->handler_.on_stream_reset(*c, *s, code, true);
    }
    return 0;
  }
  static int extend_streams(ngtcp2_conn*, std::uint64_t, void* user_data) {
    Conn* c = self(user_data);
    c->handler_.on_streams_available(*c);
    return 0;
  }
  static int extend_stream_data(ngtcp2_conn*, std::int64_t id, std::uint64_t, void* user_data,
                                void*) {
    Conn* c = self(user_data);
    if (Stream* s = c->find_stream(id)) {
      s->blocked = false;
      c->mark_ready(*s);
    }
    return 0;
  }
  static int recv_datagram(ngtcp2_conn*, std::uint32_t, const std::uint8_t* data, std::size_t len,
                           void* user_data) {
    Conn* c = self(user_data);
    c->handler_.on_datagram(*c, data, len);
    return 0;
  }
  static void rand(std::uint8_t* dest, std::size_t len, const ngtcp2_rand_ctx*) {
    random_bytes(dest, len);
  }
  static int new_cid(ngtcp2_conn*, ngtcp2_cid* cid, std::uint8_t* token, std::size_t cidlen,
                     void* user_data) {
    random_bytes(cid->data, cidlen);
    cid->datalen = cidlen;
    random_bytes(token, NGTCP2_STATELESS_RESET_TOKENLEN);
    Conn* c = self(user_data);
    c->handler_.on_new_cid(*c, *cid);
    return 0;
  }
  static int remove_cid(ngtcp2_conn*, const ngtcp2_cid* cid, void* user_data) {
    Conn* c = self(user_data);
    c->handler_.on_retire_cid(*c, *cid);
    return 0;
  }
  static int handshake_completed(ngtcp2_conn*, void* user_data) {
    Conn* c = self(user_data);
    c->handshake_completed_ = true;
    gnutls_datum_t proto{};
    if (gnutls_alpn_get_selected_protocol(c->session_, &proto) == 0)
      c->alpn_.assign(reinterpret_cast<const char*>(proto.data), proto.size);
    c->handler_.on_handshake_completed(*c);
    return 0;
  }
  static ngtcp2_conn* get_conn(ngtcp2_crypto_conn_ref* ref) {
    return static_cast<Conn*>(ref->user_data)->conn_;
  }
  static int verify(gnutls_session_t session) {
    auto* ref = static_cast<ngtcp2_crypto_conn_ref*>(gnutls_session_get_ptr(session));
    Conn* c = static_cast<Conn*>(ref->user_data);
    unsigned n = 0;
    const gnutls_datum_t* certs = gnutls_certificate_get_peers(session, &n);
    // iroh: exactly one certificate, an Ed25519 SubjectPublicKeyInfo (spec §3).
    if (gnutls_certificate_type_get2(session, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK || n != 1 ||
        !is_ed25519_spki(certs[0]))
      return -1;
    const std::uint8_t* key = certs[0].data + 12;
    c->peer_id_hex_ = hex(key, 32);
    if (c->config_.expected_peer && std::memcmp(key, c->config_.expected_peer->data(), 32) != 0) {
      c->key_mismatch_ = true;
      c->presented_id_hex_ = c->peer_id_hex_;
      return -1;
    }
    return 0;
  }
};

int verify_peer_key(gnutls_session_t session) { return ConnCallbacks::verify(session); }

// ---- Conn ----

Conn::Conn(UdpSocket& socket, TlsContext& tls, ConnHandler& handler, ConnConfig config)
    : socket_(socket), tls_(tls), handler_(handler), config_(std::move(config)) {
  conn_ref_.get_conn = ConnCallbacks::get_conn;
  conn_ref_.user_data = this;
  batch_.resize(kMaxBatch * max_pkt_);
}

Conn::~Conn() {
  streams_.clear();
  if (conn_) ngtcp2_conn_del(conn_);
  if (session_) gnutls_deinit(session_);
}

Stream& Conn::add_stream(std::int64_t id) {
  auto& slot = streams_[id];
  slot = std::make_unique<Stream>();
  slot->id = id;
  return *slot;
}

Stream* Conn::find_stream(std::int64_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Conn::reap() {
  for (auto id : graveyard_) streams_.erase(id);
  graveyard_.clear();
}

bool Conn::setup(const Address& remote, bool server, const ngtcp2_cid* dcid,
                 const ngtcp2_pkt_hd* hd, std::string& error) {
  remote_ = remote;
  session_ = tls_.new_session(server, config_.alpns, &conn_ref_, error);
  if (!session_) return false;
  path_.local = {const_cast<sockaddr*>(socket_.local().sa()), socket_.local().len};
  path_.remote = {remote_.sa(), remote_.len};

  ngtcp2_callbacks cb{};
  if (server) {
    cb.recv_client_initial = ngtcp2_crypto_recv_client_initial_cb;
  } else {
    cb.client_initial = ngtcp2_crypto_client_initial_cb;
    cb.recv_retry = ngtcp2_crypto_recv_retry_cb;
  }
  cb.recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb;
  cb.encrypt = ngtcp2_crypto_encrypt_cb;
  cb.decrypt = ngtcp2_crypto_decrypt_cb;
  cb.hp_mask = ngtcp2_crypto_hp_mask_cb;
  cb.update_key = ngtcp2_crypto_update_key_cb;
  cb.delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb;
  cb.delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb;
  cb.get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb;
  cb.version_negotiation = ngtcp2_crypto_version_negotiation_cb;
  cb.rand = ConnCallbacks::rand;
  cb.get_new_connection_id = ConnCallbacks::new_cid;
  cb.remove_connection_id = ConnCallbacks::remove_cid;
  cb.recv_stream_data = ConnCallbacks::recv_stream_data;
  cb.stream_open = ConnCallbacks::stream_open;
  cb.acked_stream_data_offset = ConnCallbacks::acked;
  cb.stream_close = ConnCallbacks::stream_close;
  cb.stream_reset = ConnCallbacks::stream_reset;
  cb.stream_stop_sending = ConnCallbacks::stop_sending;
  cb.extend_max_local_streams_bidi = ConnCallbacks::extend_streams;
  cb.extend_max_local_streams_uni = ConnCallbacks::extend_streams;
  cb.extend_max_stream_data = ConnCallbacks::extend_stream_data;
  cb.recv_datagram = ConnCallbacks::recv_datagram;
  cb.handshake_completed = ConnCallbacks::handshake_completed;

  ngtcp2_settings settings;
  ngtcp2_settings_default(&settings);
  settings.initial_ts = now_ns();
  settings.max_tx_udp_payload_size = max_pkt_;  // noq's MTU discovery upper bound
  settings.max_window = kConnWindow;
  settings.max_stream_window = kStreamWindow;
  settings.handshake_timeout = std::uint64_t(config_.handshake_timeout_s * 1e9);
  settings.cc_algo = NGTCP2_CC_ALGO_CUBIC;
  if (std::getenv("NGPEER_LOG")) settings.log_printf = ngtcp2_log;

  // iroh-like transport parameters (spec §4.2), with larger flow-control windows so this peer
  // can serve as a throughput baseline. ngtcp2 cannot do multipath/QNT, so those TPs are absent.
  ngtcp2_transport_params tp;
  ngtcp2_transport_params_default(&tp);
  tp.initial_max_stream_data_bidi_local = kStreamWindow;
  tp.initial_max_stream_data_bidi_remote = kStreamWindow;
  tp.initial_max_stream_data_uni = kStreamWindow;
  tp.initial_max_data = kConnWindow;
  tp.initial_max_streams_bidi = 100;
  tp.initial_max_streams_uni = 100;
  tp.max_idle_timeout = 30 * NGTCP2_SECONDS;
  tp.max_udp_payload_size = 1472;
  tp.active_connection_id_limit = 5;
  tp.max_datagram_frame_size = 65535;
  tp.grease_quic_bit = 0;  // iroh drops packets with the fixed bit cleared

  ngtcp2_cid own_scid;
  own_scid.datalen = kCidLen;
  random_bytes(own_scid.data, kCidLen);
  int rv;
  if (server) {
    tp.original_dcid = hd->dcid;
    tp.stateless_reset_token_present = 1;
    random_bytes(tp.stateless_reset_token, sizeof tp.stateless_reset_token);
    rv = ngtcp2_conn_server_new(&conn_, &hd->scid, &own_scid, &path_, hd->version, &cb, &settings,
                                &tp, nullptr, this);
  } else {
    rv = ngtcp2_conn_client_new(&conn_, dcid, &own_scid, &path_, NGTCP2_PROTO_VER_V1, &cb,
                                &settings, &tp, nullptr, this);
  }
  if (rv != 0) {
    error = std::string("ngtcp2_conn_new: ") + ngtcp2_strerror(rv);
    return false;
  }
  ngtcp2_conn_set_tls_native_handle(conn_, session_);
  // iroh's HEARTBEAT_INTERVAL: a PING after 5 s of silence keeps the 30 s idle timer from firing.
  ngtcp2_conn_set_keep_alive_timeout(conn_, 5 * NGTCP2_SECONDS);
  if (server) handler_.on_new_cid(*this, own_scid);
  return true;
}

bool Conn::start_client(const Address& remote, std::string& error) {
  ngtcp2_cid dcid;
  dcid.datalen = 16;
  random_bytes(dcid.data, dcid.datalen);
  return setup(remote, false, &dcid, nullptr, error);
}

bool Conn::start_server(const Address& remote, const ngtcp2_pkt_hd& hd, const std::uint8_t* pkt,
                        std::size_t len) {
  std::string error;
  if (!setup(remote, true, nullptr, &hd, error)) {
    std::fprintf(stderr, "%s: connection setup failed: %s\n", kProgName, error.c_str());
    finished_ = true;
    return false;
  }
  return read_packet(remote, pkt, len);
}

void Conn::finish_with_peer_close() {
  ngtcp2_connection_close_error err;
  ngtcp2_conn_get_connection_close_error(conn_, &err);
  close_info_.by = CloseInfo::By::kPeer;
  close_info_.kind =
      err.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION ? "application" : "transport";
  close_info_.code = err.error_code;
  close_info_.reason.assign(reinterpret_cast<const char*>(err.reason), err.reasonlen);
  finished_ = true;
}

bool Conn::read_packet(const Address& from, const std::uint8_t* data, std::size_t len) {
  if (finished_) return false;
  ngtcp2_path path{path_.local, {const_cast<sockaddr*>(from.sa()), from.len}, nullptr};
  ngtcp2_pkt_info pi{};
  int rv = ngtcp2_conn_read_pkt(conn_, &path, &pi, data, len, now_ns());
  reap();
  if (rv == 0) return true;
  switch (rv) {
    case NGTCP2_ERR_DRAINING:
      finish_with_peer_close();
      return false;
    case NGTCP2_ERR_DISCARD_PKT:
    case NGTCP2_ERR_RETRY:
    case NGTCP2_ERR_VERSION_NEGOTIATION:
      return true;
    case NGTCP2_ERR_DROP_CONN:
      last_liberr_ = rv;
      close_info_ = {CloseInfo::By::kLocal, "transport", 0, "dropped"};
      finished_ = true;
      return false;
    default:
      last_liberr_ = rv;
      close_transport_error(rv);
      return false;
  }
}

std::uint64_t Conn::expiry() const {
  if (finished_) return closing_ ? closing_deadline_ : 0;
  return ngtcp2_conn_get_expiry(conn_);
}

bool Conn::handle_expiry() {
  if (finished_) return false;
  std::uint64_t now = now_ns();
  if (ngtcp2_conn_get_expiry(conn_) > now) return true;
  int rv = ngtcp2_conn_handle_expiry(conn_, now);
  reap();
  if (rv == 0) return true;
  last_liberr_ = rv;
  if (rv == NGTCP2_ERR_IDLE_CLOSE) {
    close_info_ = {CloseInfo::By::kTimeout, "idle", 0, ""};
    finished_ = true;
  } else if (rv == NGTCP2_ERR_HANDSHAKE_TIMEOUT) {
    close_info_ = {CloseInfo::By::kTimeout, "transport", 0, "handshake timeout"};
    finished_ = true;
  } else {
    close_transport_error(rv);
  }
  return false;
}

std::uint8_t Conn::tls_alert() const { return conn_ ? ngtcp2_conn_get_tls_alert(conn_) : 0; }

double Conn::smoothed_rtt_ms() const {
  ngtcp2_conn_stat st;
  ngtcp2_conn_get_conn_stat(conn_, &st);
  return double(st.smoothed_rtt) / 1e6;
}

void Conn::write_close_packet(const ngtcp2_connection_close_error& err) {
  flush_batch();  // everything queued before the close goes first
  close_pkt_.resize(max_pkt_);
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  ngtcp2_ssize n = ngtcp2_conn_write_connection_close(conn_, &ps.path, &pi, close_pkt_.data(),
                                                      close_pkt_.size(), &err, now_ns());
  if (n > 0) {
    close_pkt_.resize(std::size_t(n));
    socket_.send_batch(&remote_, close_pkt_.data(), close_pkt_.size(), close_pkt_.size());
    closing_ = true;
    closing_deadline_ = now_ns() + 3 * ngtcp2_conn_get_pto(conn_);
  } else {
    close_pkt_.clear();
  }
  finished_ = true;
}

void Conn::close_application(std::uint64_t code, std::string_view reason) {
  if (finished_) return;
  ngtcp2_connection_close_error err;
  ngtcp2_connection_close_error_set_application_error(
      &err, code, reinterpret_cast<const std::uint8_t*>(reason.data()), reason.size());
  close_info_ = {CloseInfo::By::kLocal, "application", code, std::string(reason)};
  write_close_packet(err);
}

void Conn::close_transport_error(int liberr) {
  if (finished_) return;
  ngtcp2_connection_close_error err;
  if (liberr == NGTCP2_ERR_CRYPTO)
    ngtcp2_connection_close_error_set_transport_error_tls_alert(&err, tls_alert(), nullptr, 0);
  else
    ngtcp2_connection_close_error_set_transport_error_liberr(&err, liberr, nullptr, 0);
  close_info_ = {CloseInfo::By::kLocal, "transport", err.error_code, ngtcp2_strerror(liberr)};
  write_close_packet(err);
}

void Conn::resend_close() {
  if (!close_pkt_.empty())
    socket_.send_batch(&remote_, close_pkt_.data(), close_pkt_.size(), close_pkt_.size());
}

Stream* Conn::open_stream(bool bidi, std::string& error, bool& blocked) {
  blocked = false;
  std::int64_t id = -1;
  int rv = bidi ? ngtcp2_conn_open_bidi_stream(conn_, &id, nullptr)
                : ngtcp2_conn_open_uni_stream(conn_, &id, nullptr);
  if (rv == NGTCP2_ERR_STREAM_ID_BLOCKED) {
    blocked = true;
    return nullptr;
  }
  if (rv != 0) {
    error = ngtcp2_strerror(rv);
    return nullptr;
  }
  return &add_stream(id);
}

void Conn::mark_ready(Stream& s) {
  if (!s.in_ready && !s.blocked && !s.write_closed && !s.closed && s.has_pending()) {
    s.in_ready = true;
    ready_.push_back(s.id);
  }
}

void Conn::consume(Stream& s, std::size_t len) {
  if (len == 0 || finished_) return;
  ngtcp2_conn_extend_max_stream_offset(conn_, s.id, len);
  ngtcp2_conn_extend_max_offset(conn_, len);
}

bool Conn::queue_datagram(const std::uint8_t* data, std::size_t len) {
  if (dgram_queue_.size() >= 8192) return false;  // a slow peer must not grow us without bound
  dgram_queue_.emplace_back(data, data + len);
  return true;
}

void Conn::fill_vecs(Stream& s, ngtcp2_vec* vecs, std::size_t& count, std::uint64_t& len) {
  count = 0;
  len = 0;
  if (s.sent >= s.send_end) return;
  // More than one packet's worth so ngtcp2 can fill the packet; it takes what fits.
  std::uint64_t want = std::min<std::uint64_t>(s.send_end - s.sent, 16384);
  switch (s.source) {
    case Stream::Source::kPattern: {
      std::uint64_t off = s.sent;
      while (count < 2 && len < want) {
        std::uint64_t n =
            std::min<std::uint64_t>(want - len, kPatternBlock - (off & (kPatternBlock - 1)));
        vecs[count++] = {const_cast<std::uint8_t*>(pattern_row(off, s.pattern_k)), std::size_t(n)};
        off += n;
        len += n;
      }
      break;
    }
    case Stream::Source::kExternal:
      vecs[count++] = {const_cast<std::uint8_t*>(s.external + s.sent), std::size_t(want)};
      len = want;
      break;
    case Stream::Source::kChunks:
      count = s.chunks.vecs_at(s.sent, vecs, std::size_t(want));
      for (std::size_t i = 0; i < count; i++) len += vecs[i].len;
      break;
    case Stream::Source::kNone:
      break;
  }
}

bool Conn::flush_batch() {
  if (batch_len_ == 0) return true;
  bool ok = socket_.send_batch(&batch_dest_, batch_.data(), batch_seg_, batch_len_);
  batch_len_ = batch_seg_ = batch_count_ = 0;
  return ok;
}

void Conn::apply_credit() {
  for (auto id : credit_streams_) {
    Stream* s = find_stream(id);
    if (!s || s->credit_pending == 0) continue;
    ngtcp2_conn_extend_max_stream_offset(conn_, id, s->credit_pending);
    ngtcp2_conn_extend_max_offset(conn_, s->credit_pending);
    s->credit_pending = 0;
  }
  credit_streams_.clear();
}

void Conn::shutdown_stream_later(std::int64_t id, std::uint64_t code) {
  shutdowns_.emplace_back(id, code);
}

bool Conn::write() {
  if (finished_) return false;
  for (auto [id, code] : shutdowns_) ngtcp2_conn_shutdown_stream(conn_, id, code);
  shutdowns_.clear();
  apply_credit();
  ngtcp2_path_storage ps;
  ngtcp2_path_storage_zero(&ps);
  ngtcp2_pkt_info pi{};
  std::uint64_t ts = now_ns();
  std::size_t max_pkts =
      std::clamp<std::size_t>(ngtcp2_conn_get_send_quantum(conn_) / max_pkt_, 1, kMaxBatch * 4);
  std::size_t pkts = 0;
  bool ok = true;
  for (;;) {
    std::uint8_t* dest = batch_.data() + batch_len_;
    ngtcp2_ssize nwrite;
    // Datagrams first: they are latency-sensitive and small.
    if (!dgram_queue_.empty() && handshake_completed_) {
      auto& d = dgram_queue_.front();
      ngtcp2_vec v{d.data(), d.size()};
      int accepted = 0;
      nwrite = ngtcp2_conn_writev_datagram(conn_, &ps.path, &pi, dest, max_pkt_, &accepted,
                                           NGTCP2_WRITE_DATAGRAM_FLAG_MORE, 0, &v, 1, ts);
      if (accepted) dgram_queue_.pop_front();
      if (nwrite == NGTCP2_ERR_WRITE_MORE) continue;
      if (nwrite == NGTCP2_ERR_INVALID_ARGUMENT || nwrite == NGTCP2_ERR_INVALID_STATE) {
        dgram_queue_.pop_front();  // larger than the peer accepts, or the peer has no DATAGRAM
        continue;
      }
      if (nwrite == 0 && !accepted && d.size() + 64 > max_pkt_) {
        dgram_queue_.pop_front();  // can never fit a packet
        continue;
      }
    } else {
      Stream* s = nullptr;
      while (!ready_.empty()) {
        Stream* cand = find_stream(ready_.front());
        ready_.pop_front();
        if (!cand) continue;
        cand->in_ready = false;
        if (cand->blocked || cand->write_closed || cand->closed || !cand->has_pending()) continue;
        s = cand;
        break;
      }
      ngtcp2_vec vecs[2];
      std::size_t count = 0;
      std::uint64_t len = 0;
      std::uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
      std::int64_t id = -1;
      if (s) {
        id = s->id;
        fill_vecs(*s, vecs, count, len);
        if (s->fin_wanted && s->sent + len == s->send_end) flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
      }
      ngtcp2_ssize ndatalen = -1;
      nwrite = ngtcp2_conn_writev_stream(conn_, &ps.path, &pi, dest, max_pkt_, &ndatalen, flags, id,
                                         count ? vecs : nullptr, count, ts);
      if (s) {
        if (nwrite == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
          s->blocked = true;
          continue;
        }
        if (nwrite == NGTCP2_ERR_STREAM_SHUT_WR || nwrite == NGTCP2_ERR_STREAM_NOT_FOUND) {
          s->write_closed = true;
          continue;
        }
        if (ndatalen >= 0) {
          s->sent += std::uint64_t(ndatalen);
          if (s->credit_on_send && ndatalen > 0) {
            if (s->credit_pending == 0) credit_streams_.push_back(s->id);
            s->credit_pending += std::uint64_t(ndatalen);
          }
          if ((flags & NGTCP2_WRITE_STREAM_FLAG_FIN) && s->sent == s->send_end) {
            s->fin_written = true;
            fin_written_.push_back(s->id);
          }
        }
        mark_ready(*s);  // round robin: back of the queue if it has more
      }
      if (nwrite == NGTCP2_ERR_WRITE_MORE) continue;
    }
    if (nwrite < 0) {
      last_liberr_ = int(nwrite);
      close_transport_error(int(nwrite));
      ok = false;
      break;
    }
    if (nwrite == 0) break;  // congestion window, pacing, or nothing left
    std::size_t n = std::size_t(nwrite);
    Address dest_addr;
    std::memcpy(&dest_addr.storage, ps.path.remote.addr, ps.path.remote.addrlen);
    dest_addr.len = ps.path.remote.addrlen;
    // GSO sends equal segments with a possibly shorter last one, all to one destination.
    bool same_dest = batch_count_ == 0 ||
                     (dest_addr.len == batch_dest_.len &&
                      std::memcmp(&dest_addr.storage, &batch_dest_.storage, dest_addr.len) == 0);
    if (batch_count_ > 0 && (!same_dest || n > batch_seg_)) {
      // Rare (MTU growth, path change): send what is batched, move the new packet to the front.
      std::uint8_t tmp[2048];
      std::memcpy(tmp, dest, n);
      flush_batch();
      std::memcpy(batch_.data(), tmp, n);
    }
    if (batch_count_ == 0) {
      batch_seg_ = n;
      batch_dest_ = dest_addr;
    }
    batch_len_ += n;
    batch_count_++;
    if (n < batch_seg_ || batch_count_ == kMaxBatch) flush_batch();
    if (++pkts >= max_pkts) break;
  }
  flush_batch();
  // ngtcp2 0.12.1 paces from initial_rtt (333 ms) before the first RTT sample, delaying the first
  // 1-RTT flight by tens of ms; pace only once the handshake is done.
  if (handshake_completed_ && !finished_) ngtcp2_conn_update_pkt_tx_time(conn_, ts);
  if (!finished_) apply_credit();
  if (!fin_written_.empty()) {
    auto ids = std::move(fin_written_);
    fin_written_.clear();
    for (auto id : ids)
      if (Stream* s = find_stream(id)) handler_.on_fin_written(*this, *s);
  }
  reap();
  return ok && !finished_;
}

}  // namespace ngpeer

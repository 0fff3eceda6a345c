// TlsSession on GnuTLS 3.7's QUIC interface. See tls.h.
//
// How GnuTLS's QUIC mode works (3.7.x), as used here:
//   - gnutls_handshake_set_read_function(): GnuTLS hands every handshake message it *sends* to this
//     callback (tagged with the encryption level) instead of writing TLS records. We queue those
//     bytes per level; the engine sends them in CRYPTO frames.
//   - gnutls_handshake_write(): the engine's received CRYPTO bytes go in here, per level; GnuTLS
//     buffers partial messages. gnutls_handshake() then processes what is buffered and returns
//     GNUTLS_E_AGAIN while it needs more.
//   - gnutls_handshake_set_secret_function(): called whenever traffic secrets are installed, with
//     the read and/or write secret of a level (either may be NULL).
//   - gnutls_alert_set_read_function(): called with the alert GnuTLS *would send*; in QUIC alerts
//     are never sent as records, the engine closes with CRYPTO_ERROR instead.
//   - the quic_transport_parameters extension (0x39) is a session-registered extension allowed in
//     ClientHello and EncryptedExtensions.
//
// Pitfalls found on the way (GnuTLS 3.7.9):
//   - the post-ClientHello callback runs *before* GNUTLS_EXT_TLS extensions are parsed, so the
//     transport-parameter extension is registered at GNUTLS_EXT_APPLICATION to be visible there;
//   - a send callback that appends nothing makes GnuTLS omit the extension (empty TPs = none);
//   - GnuTLS accepts a TLS KeyUpdate in QUIC mode and installs new 1-RTT secrets; RFC 9001 §6
//     forbids it, so messages are framed here and KeyUpdate is refused before GnuTLS sees it;
//   - GnuTLS does not check which level handshake bytes arrive at; that is checked here too;
//   - the certificate verify callback runs after CertificateVerify has been checked, so a peer id
//     is only reported for a key whose possession was proven;
//   - installing a key-log function replaces GnuTLS's SSLKEYLOGFILE writer, so it is only
//     installed when the application asks for one;
//   - alerts are never sent by GnuTLS on its own in QUIC mode when gnutls_handshake() fails: the
//     alert is derived here (our callback's reason, else gnutls_error_to_alert()).
#include "crypto/tls.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <sodium.h>

#include <algorithm>
#include <cstring>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <utility>

namespace iroh::crypto {
namespace {

// iroh's profile (spec §3). Cipher suites are those QUIC may use (no CCM_8, RFC 9001 §5.3).
constexpr const char* kPriority =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
    "-SIGN-ALL:+SIGN-EDDSA-ED25519:"
    "-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK";

// The WebPKI profile (relay QAD, spec §6.9): the same versions, ciphers and groups, X.509
// certificates, and every signature scheme GnuTLS accepts by default (WebPKI chains use RSA,
// RSA-PSS and ECDSA).
constexpr const char* kX509Priority =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1";

constexpr std::uint8_t kSpkiPrefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
// PKCS#8 OneAsymmetricKey for an Ed25519 seed (RFC 8410 §7).
constexpr std::uint8_t kPkcs8Prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                           0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

void global_init() {
  // gnutls_global_init is reference counted and thread-safe; one reference for the process
  // lifetime (never released, so no deinit races with other users).
  static std::once_flag once;
  std::call_once(once, [] { (void)gnutls_global_init(); });
}

std::optional<EncryptionLevel> from_gnutls(gnutls_record_encryption_level_t level) {
  switch (level) {
    case GNUTLS_ENCRYPTION_LEVEL_INITIAL:
      return EncryptionLevel::kInitial;
    case GNUTLS_ENCRYPTION_LEVEL_EARLY:
      return EncryptionLevel::kZeroRtt;
    case GNUTLS_ENCRYPTION_LEVEL_HANDSHAKE:
      return EncryptionLevel::kHandshake;
    case GNUTLS_ENCRYPTION_LEVEL_APPLICATION:
      return EncryptionLevel::kOneRtt;
  }
  return std::nullopt;
}

gnutls_record_encryption_level_t to_gnutls(EncryptionLevel level) {
  switch (level) {
    case EncryptionLevel::kInitial:
      return GNUTLS_ENCRYPTION_LEVEL_INITIAL;
    case EncryptionLevel::kZeroRtt:
      return GNUTLS_ENCRYPTION_LEVEL_EARLY;
    case EncryptionLevel::kHandshake:
      return GNUTLS_ENCRYPTION_LEVEL_HANDSHAKE;
    case EncryptionLevel::kOneRtt:
      break;
  }
  return GNUTLS_ENCRYPTION_LEVEL_APPLICATION;
}

std::optional<AeadAlgorithm> aead_from_gnutls(gnutls_cipher_algorithm_t c) {
  switch (c) {
    case GNUTLS_CIPHER_AES_128_GCM:
      return AeadAlgorithm::kAes128Gcm;
    case GNUTLS_CIPHER_AES_256_GCM:
      return AeadAlgorithm::kAes256Gcm;
    case GNUTLS_CIPHER_CHACHA20_POLY1305:
      return AeadAlgorithm::kChaCha20Poly1305;
    default:
      return std::nullopt;
  }
}

std::size_t level_index(EncryptionLevel level) { return static_cast<std::size_t>(level); }

gnutls_datum_t datum(ByteView b) {
  return gnutls_datum_t{const_cast<unsigned char*>(b.data()), static_cast<unsigned>(b.size())};
}

// Largest handshake message accepted. With raw public keys every message is small (the
// ClientHello is a few hundred bytes); this bounds buffering per level.
constexpr std::size_t kMaxHandshakeMessage = 65536;

std::string gnutls_reason(const char* what, int rv) {
  return std::string(what) + ": " + gnutls_strerror(rv) + " (" + std::to_string(rv) + ")";
}

// An IPv4 or IPv6 address literal (no brackets): its raw bytes, else nullopt (a DNS name).
std::optional<Bytes> ip_literal_bytes(const std::string& name) {
  unsigned char buf[16];
  if (inet_pton(AF_INET, name.c_str(), buf) == 1) return Bytes(buf, buf + 4);
  if (inet_pton(AF_INET6, name.c_str(), buf) == 1) return Bytes(buf, buf + 16);
  return std::nullopt;
}
bool is_ip_literal(const std::string& name) { return ip_literal_bytes(name).has_value(); }

// The alert for a failed X.509 verification, from GnuTLS's status bits (RFC 8446 §6.2).
std::uint8_t x509_status_alert(unsigned status) {
  if (status & (GNUTLS_CERT_SIGNER_NOT_FOUND | GNUTLS_CERT_SIGNER_NOT_CA)) {
    return tls_alert::kUnknownCa;
  }
  if (status & (GNUTLS_CERT_EXPIRED | GNUTLS_CERT_NOT_ACTIVATED)) {
    return tls_alert::kCertificateExpired;
  }
  if (status & GNUTLS_CERT_REVOKED) return tls_alert::kCertificateRevoked;
  if (status & (GNUTLS_CERT_UNEXPECTED_OWNER | GNUTLS_CERT_PURPOSE_MISMATCH)) {
    return tls_alert::kBadCertificate;
  }
  return tls_alert::kCertificateUnknown;
}

TlsError credentials_error(const std::string& what, int rv) {
  return TlsError{tls_alert::kInternalError, gnutls_reason(what.c_str(), rv)};
}

}  // namespace

// ---- X509Credentials -------------------------------------------------------------------------

X509Credentials::~X509Credentials() {
  if (cred_ != nullptr) {
    gnutls_certificate_free_credentials(static_cast<gnutls_certificate_credentials_t>(cred_));
  }
}

TlsResult<std::shared_ptr<const X509Credentials>> X509Credentials::server_from_pem(
    std::string_view chain_pem, std::string_view key_pem) {
  global_init();
  gnutls_certificate_credentials_t cred = nullptr;
  int rv = gnutls_certificate_allocate_credentials(&cred);
  if (rv < 0) return credentials_error("gnutls_certificate_allocate_credentials", rv);
  std::shared_ptr<const X509Credentials> out(new X509Credentials(cred, true));
  const gnutls_datum_t c = datum(as_bytes(chain_pem));
  const gnutls_datum_t k = datum(as_bytes(key_pem));
  rv = gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM);
  if (rv < 0) return credentials_error("certificate chain / private key (PEM)", rv);
  return out;
}

namespace {
TlsResult<std::string> read_text_file(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return TlsError{tls_alert::kInternalError, std::string("cannot read ") + what + " " + path};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

TlsResult<std::shared_ptr<const X509Credentials>> X509Credentials::server_from_files(
    const std::string& chain_file, const std::string& key_file) {
  auto chain = read_text_file(chain_file, "certificate file");
  if (!chain) return chain.error();
  auto key = read_text_file(key_file, "key file");
  if (!key) return key.error();
  auto r = server_from_pem(*chain, *key);
  sodium_memzero(key->data(), key->size());
  if (!r) {
    return TlsError{r.error().alert, chain_file + " / " + key_file + ": " + r.error().message};
  }
  return r;
}

TlsResult<std::shared_ptr<const X509Credentials>> X509Credentials::client_trusting_pem(
    std::string_view ca_pem) {
  global_init();
  gnutls_certificate_credentials_t cred = nullptr;
  int rv = gnutls_certificate_allocate_credentials(&cred);
  if (rv < 0) return credentials_error("gnutls_certificate_allocate_credentials", rv);
  std::shared_ptr<const X509Credentials> out(new X509Credentials(cred, false));
  const gnutls_datum_t ca = datum(as_bytes(ca_pem));
  rv = gnutls_certificate_set_x509_trust_mem(cred, &ca, GNUTLS_X509_FMT_PEM);
  if (rv < 0) return credentials_error("CA certificates (PEM)", rv);
  if (rv == 0) return TlsError{tls_alert::kInternalError, "no CA certificate in the PEM input"};
  return out;
}

TlsResult<std::shared_ptr<const X509Credentials>> X509Credentials::client_trusting_file(
    const std::string& ca_file) {
  auto pem = read_text_file(ca_file, "CA file");
  if (!pem) return pem.error();
  auto r = client_trusting_pem(*pem);
  if (!r) return TlsError{r.error().alert, ca_file + ": " + r.error().message};
  return r;
}

TlsResult<std::shared_ptr<const X509Credentials>> X509Credentials::client_trusting_system() {
  global_init();
  gnutls_certificate_credentials_t cred = nullptr;
  int rv = gnutls_certificate_allocate_credentials(&cred);
  if (rv < 0) return credentials_error("gnutls_certificate_allocate_credentials", rv);
  std::shared_ptr<const X509Credentials> out(new X509Credentials(cred, false));
  rv = gnutls_certificate_set_x509_system_trust(cred);
  if (rv < 0) return credentials_error("system trust store", rv);
  if (rv == 0) return TlsError{tls_alert::kInternalError, "the system trust store is empty"};
  return out;
}

Bytes ed25519_spki(const EndpointId& id) {
  Bytes out(std::begin(kSpkiPrefix), std::end(kSpkiPrefix));
  append(out, id.bytes());
  return out;
}

Result<EndpointId> endpoint_id_from_spki(ByteView spki) {
  if (spki.size() != sizeof(kSpkiPrefix) + EndpointId::kSize ||
      std::memcmp(spki.data(), kSpkiPrefix, sizeof(kSpkiPrefix)) != 0) {
    return make_error("raw public key is not a 44-byte Ed25519 SubjectPublicKeyInfo (got " +
                      std::to_string(spki.size()) + " bytes)");
  }
  auto id = EndpointId::from_bytes(spki.subspan(sizeof(kSpkiPrefix)));
  if (!id) return make_error("raw public key: " + id.error().message);
  return *id;
}

struct TlsSession::Impl {
  bool client = false;
  gnutls_session_t session = nullptr;
  gnutls_certificate_credentials_t cred = nullptr;  // owned (raw-public-key profile)
  // WebPKI profile: shared credentials (not owned by cred) and the name the server must carry.
  std::shared_ptr<const X509Credentials> x509;
  std::string server_name;
  bool server_verified = false;
  EndpointId expected_server;
  std::string client_alpn;
  std::vector<std::string> server_alpns;
  Bytes local_tp;

  bool started = false;
  bool complete = false;
  std::deque<TlsEvent> events;
  Bytes outgoing[4];
  // Received CRYPTO bytes not yet forming a whole handshake message, per level.
  Bytes incoming[4];
  // The level the peer's next handshake message must arrive at: advances when GnuTLS installs a
  // read secret (Initial → Handshake → 1-RTT; 0-RTT carries no CRYPTO data).
  EncryptionLevel read_level = EncryptionLevel::kInitial;
  std::optional<TlsError> error;
  std::optional<TlsError> callback_error;  // set by a callback that made GnuTLS fail
  std::optional<std::uint8_t> alert;       // the alert GnuTLS wanted to send
  std::optional<Bytes> peer_tp;
  std::optional<std::string> alpn;
  std::optional<EndpointId> peer_id;
  std::optional<AeadAlgorithm> aead;
  KeylogCallback keylog;
  gnutls_keylog_func default_keylog = nullptr;

  Impl() = default;
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    if (session != nullptr) gnutls_deinit(session);
    if (cred != nullptr) gnutls_certificate_free_credentials(cred);
    for (auto& ev : events) {
      if (auto* s = std::get_if<SecretEvent>(&ev))
        sodium_memzero(s->secret.data(), s->secret.size());
    }
  }

  static Impl* of(gnutls_session_t s) { return static_cast<Impl*>(gnutls_session_get_ptr(s)); }

  // Records why a callback fails; the first reason wins.
  int callback_fail(std::uint8_t alert_code, std::string message) {
    if (!callback_error) callback_error = TlsError{alert_code, std::move(message)};
    return -1;
  }

  TlsResult<void> fail(TlsError e) {
    for (auto& o : outgoing) o.clear();
    for (auto& i : incoming) i.clear();
    error = std::move(e);
    return *error;
  }

  // A fatal GnuTLS error: pick the alert (our callback's, else the one GnuTLS produced, else the
  // standard mapping) and make the session sticky-failed.
  TlsResult<void> fail_gnutls(const char* what, int rv) {
    if (callback_error) return fail(*callback_error);
    std::uint8_t a;
    if (alert) {
      a = *alert;
    } else {
      int lvl = 0;
      const int mapped = gnutls_error_to_alert(rv, &lvl);
      a = mapped >= 0 ? static_cast<std::uint8_t>(mapped) : tls_alert::kInternalError;
    }
    std::string msg = gnutls_reason(what, rv);
    msg += "; alert " + std::to_string(a) + " (" +
           (gnutls_alert_get_strname(static_cast<gnutls_alert_description_t>(a))
                ? gnutls_alert_get_strname(static_cast<gnutls_alert_description_t>(a))
                : "?") +
           ")";
    return fail(TlsError{a, std::move(msg)});
  }

  TlsResult<void> setup(const SecretKey& key);
  TlsResult<void> setup_x509();
  TlsResult<void> setup_common(unsigned extra_flags, const char* priority,
                               gnutls_certificate_credentials_t credentials);
  TlsResult<void> receive(EncryptionLevel level, ByteView bytes);
  TlsResult<void> drive();
  TlsResult<void> on_complete();

  // ---- GnuTLS callbacks (C linkage not required: plain function pointers) ----
  static int secret_cb(gnutls_session_t s, gnutls_record_encryption_level_t glevel,
                       const void* read_secret, const void* write_secret, std::size_t size);
  static int handshake_out_cb(gnutls_session_t s, gnutls_record_encryption_level_t glevel,
                              gnutls_handshake_description_t htype, const void* data,
                              std::size_t size);
  static int alert_cb(gnutls_session_t s, gnutls_record_encryption_level_t glevel,
                      gnutls_alert_level_t alert_level, gnutls_alert_description_t desc);
  static int tp_recv_cb(gnutls_session_t s, const unsigned char* data, std::size_t size);
  static int tp_send_cb(gnutls_session_t s, gnutls_buffer_t buf);
  static int verify_cb(gnutls_session_t s);
  static int verify_x509_cb(gnutls_session_t s);
  static int post_client_hello_cb(gnutls_session_t s);
  static int keylog_cb(gnutls_session_t s, const char* label, const gnutls_datum_t* secret);
};

int TlsSession::Impl::secret_cb(gnutls_session_t s, gnutls_record_encryption_level_t glevel,
                                const void* read_secret, const void* write_secret,
                                std::size_t size) {
  Impl* self = of(s);
  const auto level = from_gnutls(glevel);
  if (!level || *level == EncryptionLevel::kInitial) {
    return self->callback_fail(tls_alert::kInternalError, "TLS installed secrets at a bad level");
  }
  const gnutls_cipher_algorithm_t c =
      *level == EncryptionLevel::kZeroRtt ? gnutls_early_cipher_get(s) : gnutls_cipher_get(s);
  const auto aead = aead_from_gnutls(c);
  if (!aead) {
    return self->callback_fail(tls_alert::kHandshakeFailure,
                               std::string("negotiated cipher not usable with QUIC: ") +
                                   (gnutls_cipher_get_name(c) ? gnutls_cipher_get_name(c) : "?"));
  }
  if (size != hash_length(aead_hash(*aead))) {
    return self->callback_fail(tls_alert::kInternalError, "TLS secret has unexpected length");
  }
  if (*level != EncryptionLevel::kZeroRtt) self->aead = aead;
  if (read_secret != nullptr && *level != EncryptionLevel::kZeroRtt) self->read_level = *level;
  const auto* r = static_cast<const std::uint8_t*>(read_secret);
  const auto* w = static_cast<const std::uint8_t*>(write_secret);
  if (r != nullptr) {
    self->events.emplace_back(SecretEvent{*level, Direction::kRead, *aead, Bytes(r, r + size)});
  }
  if (w != nullptr) {
    self->events.emplace_back(SecretEvent{*level, Direction::kWrite, *aead, Bytes(w, w + size)});
  }
  return 0;
}

int TlsSession::Impl::handshake_out_cb(gnutls_session_t s, gnutls_record_encryption_level_t glevel,
                                       gnutls_handshake_description_t htype, const void* data,
                                       std::size_t size) {
  Impl* self = of(s);
  // GnuTLS reports a ChangeCipherSpec here in compat mode; QUIC has none (and compat mode is off).
  if (htype == GNUTLS_HANDSHAKE_CHANGE_CIPHER_SPEC) return 0;
  const auto level = from_gnutls(glevel);
  if (!level || *level == EncryptionLevel::kZeroRtt) {
    return self->callback_fail(tls_alert::kInternalError, "TLS sent a message at a bad level");
  }
  const auto* p = static_cast<const std::uint8_t*>(data);
  append(self->outgoing[level_index(*level)], ByteView(p, size));
  return 0;
}

int TlsSession::Impl::alert_cb(gnutls_session_t s, gnutls_record_encryption_level_t,
                               gnutls_alert_level_t, gnutls_alert_description_t desc) {
  Impl* self = of(s);
  if (!self->alert) self->alert = static_cast<std::uint8_t>(desc);
  return 0;
}

int TlsSession::Impl::tp_recv_cb(gnutls_session_t s, const unsigned char* data, std::size_t size) {
  Impl* self = of(s);
  if (self->peer_tp) {
    return self->callback_fail(tls_alert::kDecodeError, "duplicate quic_transport_parameters");
  }
  self->peer_tp = Bytes(data, data + size);
  self->events.emplace_back(PeerTransportParamsEvent{*self->peer_tp});
  return 0;
}

int TlsSession::Impl::tp_send_cb(gnutls_session_t s, gnutls_buffer_t buf) {
  Impl* self = of(s);
  const int rv = gnutls_buffer_append_data(buf, self->local_tp.data(), self->local_tp.size());
  if (rv < 0) return self->callback_fail(tls_alert::kInternalError, "appending transport params");
  return 0;
}

int TlsSession::Impl::verify_cb(gnutls_session_t s) {
  Impl* self = of(s);
  const char* who = self->client ? "server" : "client";
  if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK) {
    return self->callback_fail(tls_alert::kUnsupportedCertificate,
                               std::string(who) + " did not present a raw public key");
  }
  unsigned n = 0;
  const gnutls_datum_t* certs = gnutls_certificate_get_peers(s, &n);
  if (certs == nullptr || n != 1) {
    return self->callback_fail(tls_alert::kBadCertificate,
                               std::string(who) + " presented " + std::to_string(n) +
                                   " certificates, expected exactly one raw public key");
  }
  auto id = endpoint_id_from_spki(ByteView(certs[0].data, certs[0].size));
  if (!id) {
    return self->callback_fail(tls_alert::kBadCertificate,
                               std::string(who) + " key rejected: " + id.error().message);
  }
  if (self->client && !(*id == self->expected_server)) {
    return self->callback_fail(tls_alert::kBadCertificate,
                               "server key mismatch: expected EndpointId " +
                                   self->expected_server.to_hex() + ", server presented " +
                                   id->to_hex());
  }
  self->peer_id = *id;
  return 0;
}

// WebPKI profile, client: runs after the server's CertificateVerify was checked. Verifies the
// chain against the trust anchors, the name (DNS or IP SAN) and the TLS server purpose.
int TlsSession::Impl::verify_x509_cb(gnutls_session_t s) {
  Impl* self = of(s);
  if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_X509) {
    return self->callback_fail(tls_alert::kUnsupportedCertificate,
                               "server did not present an X.509 certificate");
  }
  const auto ip = ip_literal_bytes(self->server_name);
  gnutls_typed_vdata_st data[2] = {};
  if (ip) {
    data[0].type = GNUTLS_DT_IP_ADDRESS;
    data[0].data = const_cast<unsigned char*>(ip->data());
    data[0].size = static_cast<unsigned>(ip->size());
  } else {
    data[0].type = GNUTLS_DT_DNS_HOSTNAME;
    data[0].data = reinterpret_cast<unsigned char*>(self->server_name.data());
  }
  data[1].type = GNUTLS_DT_KEY_PURPOSE_OID;
  data[1].data = reinterpret_cast<unsigned char*>(const_cast<char*>(GNUTLS_KP_TLS_WWW_SERVER));
  unsigned status = 0;
  const int rv = gnutls_certificate_verify_peers(s, data, 2, &status);
  if (rv < 0) {
    return self->callback_fail(tls_alert::kBadCertificate, gnutls_reason("server certificate", rv));
  }
  if (status != 0) {
    gnutls_datum_t text{};
    std::string why = "verification failed";
    if (gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &text, 0) == 0) {
      why.assign(reinterpret_cast<const char*>(text.data), text.size);
      gnutls_free(text.data);
      while (!why.empty() && (why.back() == ' ' || why.back() == '\n')) why.pop_back();
    }
    return self->callback_fail(
        x509_status_alert(status),
        "server certificate for '" + self->server_name + "' rejected: " + why);
  }
  self->server_verified = true;
  return 0;
}

int TlsSession::Impl::post_client_hello_cb(gnutls_session_t s) {
  Impl* self = of(s);
  if (!self->peer_tp) {
    self->callback_fail(tls_alert::kMissingExtension,
                        "ClientHello lacks quic_transport_parameters (0x39)");
    return GNUTLS_E_MISSING_EXTENSION;
  }
  gnutls_datum_t p{};
  if (gnutls_alpn_get_selected_protocol(s, &p) != 0) {
    self->callback_fail(tls_alert::kNoApplicationProtocol,
                        "no ALPN in common with the client (or client sent none)");
    return GNUTLS_E_NO_APPLICATION_PROTOCOL;
  }
  return 0;
}

int TlsSession::Impl::keylog_cb(gnutls_session_t s, const char* label,
                                const gnutls_datum_t* secret) {
  Impl* self = of(s);
  if (!self->keylog) return 0;
  gnutls_datum_t client_random{}, server_random{};
  gnutls_session_get_random(s, &client_random, &server_random);
  self->keylog(label, ByteView(client_random.data, client_random.size),
               ByteView(secret->data, secret->size));
  return 0;
}

TlsResult<void> TlsSession::Impl::setup(const SecretKey& key) {
  global_init();
  int rv = gnutls_certificate_allocate_credentials(&cred);
  if (rv < 0) return fail_gnutls("gnutls_certificate_allocate_credentials", rv);

  const Bytes spki = ed25519_spki(key.public_key());
  Bytes pkcs8(std::begin(kPkcs8Prefix), std::end(kPkcs8Prefix));
  append(pkcs8, key.seed());
  const gnutls_datum_t dspki = datum(spki);
  const gnutls_datum_t dkey = datum(pkcs8);
  rv = gnutls_certificate_set_rawpk_key_mem(cred, &dspki, &dkey, GNUTLS_X509_FMT_DER, nullptr, 0,
                                            nullptr, 0, 0);
  sodium_memzero(pkcs8.data(), pkcs8.size());
  if (rv < 0) return fail_gnutls("gnutls_certificate_set_rawpk_key_mem", rv);
  gnutls_certificate_set_verify_function(cred, &Impl::verify_cb);
  if (auto r = setup_common(GNUTLS_ENABLE_RAWPK, kPriority, cred); !r) return r;
  if (!client) {
    gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
  }
  return {};
}

TlsResult<void> TlsSession::Impl::setup_x509() {
  global_init();
  auto* shared = static_cast<gnutls_certificate_credentials_t>(x509->gnutls_credentials());
  if (auto r = setup_common(0, kX509Priority, shared); !r) return r;
  if (client) {
    // Per session (the shared credentials carry no callback): chain + name check.
    gnutls_session_set_verify_function(session, &Impl::verify_x509_cb);
    if (!is_ip_literal(server_name)) {
      const int rv =
          gnutls_server_name_set(session, GNUTLS_NAME_DNS, server_name.data(), server_name.size());
      if (rv < 0) return fail_gnutls("gnutls_server_name_set", rv);
    }
  }
  // Server: GnuTLS's default is not to request a client certificate.
  return {};
}

// Everything both profiles share: the session in QUIC mode, the priority string, the callbacks,
// the transport-parameter extension and ALPN.
TlsResult<void> TlsSession::Impl::setup_common(unsigned extra_flags, const char* priority,
                                               gnutls_certificate_credentials_t credentials) {
  const unsigned flags = (client ? GNUTLS_CLIENT : GNUTLS_SERVER) | extra_flags |
                         GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_NO_TICKETS;
  int rv = gnutls_init(&session, flags);
  if (rv < 0) {
    session = nullptr;
    return fail_gnutls("gnutls_init", rv);
  }
  gnutls_session_set_ptr(session, this);

  const char* err_pos = nullptr;
  rv = gnutls_priority_set_direct(session, priority, &err_pos);
  if (rv < 0) return fail_gnutls("gnutls_priority_set_direct", rv);
  rv = gnutls_credentials_set(session, GNUTLS_CRD_CERTIFICATE, credentials);
  if (rv < 0) return fail_gnutls("gnutls_credentials_set", rv);

  gnutls_handshake_set_secret_function(session, &Impl::secret_cb);
  gnutls_handshake_set_read_function(session, &Impl::handshake_out_cb);
  gnutls_alert_set_read_function(session, &Impl::alert_cb);
  rv = gnutls_session_ext_register(
      session, "quic_transport_parameters", kQuicTransportParametersExtension,
      GNUTLS_EXT_APPLICATION, &Impl::tp_recv_cb, &Impl::tp_send_cb, nullptr, nullptr, nullptr,
      GNUTLS_EXT_FLAG_TLS | GNUTLS_EXT_FLAG_CLIENT_HELLO | GNUTLS_EXT_FLAG_EE);
  if (rv < 0) return fail_gnutls("gnutls_session_ext_register", rv);

  if (client) {
    const gnutls_datum_t proto = datum(as_bytes(client_alpn));
    rv = gnutls_alpn_set_protocols(session, &proto, 1, GNUTLS_ALPN_MANDATORY);
    if (rv < 0) return fail_gnutls("gnutls_alpn_set_protocols", rv);
  } else {
    std::vector<gnutls_datum_t> protos;
    protos.reserve(server_alpns.size());
    for (const auto& a : server_alpns) protos.push_back(datum(as_bytes(a)));
    rv = gnutls_alpn_set_protocols(session, protos.data(), static_cast<unsigned>(protos.size()),
                                   GNUTLS_ALPN_MANDATORY | GNUTLS_ALPN_SERVER_PRECEDENCE);
    if (rv < 0) return fail_gnutls("gnutls_alpn_set_protocols", rv);
    gnutls_handshake_set_post_client_hello_function(session, &Impl::post_client_hello_cb);
  }
  // GnuTLS's default key-log function honours SSLKEYLOGFILE; ours replaces it only when the
  // application installs a callback.
  default_keylog = gnutls_session_get_keylog_function(session);
  return {};
}

TlsResult<void> TlsSession::Impl::on_complete() {
  if (x509) {
    if (client && !server_verified) {
      return fail(TlsError{tls_alert::kBadCertificate, "server certificate was not verified"});
    }
  } else if (!peer_id) {
    return fail(TlsError{client ? tls_alert::kBadCertificate : tls_alert::kCertificateRequired,
                         std::string(client ? "server" : "client") +
                             " was not authenticated with a raw public key"});
  }
  if (!peer_tp) {
    return fail(TlsError{
        tls_alert::kMissingExtension,
        std::string(client ? "server" : "client") + " sent no quic_transport_parameters (0x39)"});
  }
  gnutls_datum_t p{};
  if (gnutls_alpn_get_selected_protocol(session, &p) != 0) {
    return fail(TlsError{tls_alert::kNoApplicationProtocol, "no ALPN negotiated"});
  }
  alpn = std::string(reinterpret_cast<const char*>(p.data), p.size);
  if (client && *alpn != client_alpn) {
    return fail(TlsError{tls_alert::kNoApplicationProtocol,
                         "server selected ALPN '" + *alpn + "', offered '" + client_alpn + "'"});
  }
  if (gnutls_protocol_get_version(session) != GNUTLS_TLS1_3) {
    return fail(TlsError{tls_alert::kHandshakeFailure, "negotiated a TLS version other than 1.3"});
  }
  complete = true;
  events.emplace_back(HandshakeCompleteEvent{});
  return {};
}

TlsResult<void> TlsSession::Impl::drive() {
  if (complete) return {};
  const int rv = gnutls_handshake(session);
  if (rv == 0) return on_complete();
  if (callback_error) return fail(*callback_error);
  if (rv == GNUTLS_E_AGAIN || rv == GNUTLS_E_INTERRUPTED || !gnutls_error_is_fatal(rv)) return {};
  return fail_gnutls("TLS handshake", rv);
}

static const char* level_name(EncryptionLevel level) {
  switch (level) {
    case EncryptionLevel::kInitial:
      return "Initial";
    case EncryptionLevel::kZeroRtt:
      return "0-RTT";
    case EncryptionLevel::kHandshake:
      return "Handshake";
    case EncryptionLevel::kOneRtt:
      break;
  }
  return "1-RTT";
}

// Frames the CRYPTO stream of `level` into handshake messages (RFC 8446 §4: type u8, length u24)
// and hands GnuTLS one whole message at a time, checking before each one that it arrives at the
// level TLS is reading at (RFC 9001 §4.1.3) and that it is not a KeyUpdate (RFC 9001 §6: QUIC
// has its own key update; GnuTLS would otherwise happily rotate the 1-RTT secrets).
TlsResult<void> TlsSession::Impl::receive(EncryptionLevel level, ByteView bytes) {
  Bytes& buf = incoming[level_index(level)];
  append(buf, bytes);
  std::size_t off = 0;
  while (buf.size() - off >= 4) {
    const std::uint8_t type = buf[off];
    const std::size_t len = (std::size_t{buf[off + 1]} << 16) | (std::size_t{buf[off + 2]} << 8) |
                            std::size_t{buf[off + 3]};
    if (len > kMaxHandshakeMessage) {
      return fail(TlsError{tls_alert::kDecodeError, "handshake message of " + std::to_string(len) +
                                                        " bytes exceeds the limit"});
    }
    if (buf.size() - off < 4 + len) break;
    if (level != read_level) {
      return fail(TlsError{tls_alert::kUnexpectedMessage, std::string("handshake message at the ") +
                                                              level_name(level) +
                                                              " level while TLS reads at the " +
                                                              level_name(read_level) + " level"});
    }
    if (type == GNUTLS_HANDSHAKE_KEY_UPDATE) {
      return fail(TlsError{tls_alert::kUnexpectedMessage, "TLS KeyUpdate is forbidden in QUIC"});
    }
    const int rv = gnutls_handshake_write(session, to_gnutls(level), buf.data() + off, 4 + len);
    off += 4 + len;
    if (callback_error) return fail(*callback_error);
    if (rv < 0 && gnutls_error_is_fatal(rv)) return fail_gnutls("processing CRYPTO data", rv);
    if (auto r = drive(); !r) return r;
  }
  buf.erase(buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(off));
  if (!buf.empty() && level != read_level) {
    return fail(TlsError{tls_alert::kUnexpectedMessage,
                         std::string("CRYPTO data at the ") + level_name(level) +
                             " level while TLS reads at the " + level_name(read_level) + " level"});
  }
  return {};
}

// ---- TlsSession ------------------------------------------------------------------------------

TlsSession::TlsSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TlsSession::TlsSession(TlsSession&&) noexcept = default;
TlsSession& TlsSession::operator=(TlsSession&&) noexcept = default;
TlsSession::~TlsSession() = default;

TlsResult<TlsSession> TlsSession::client(const SecretKey& key, const EndpointId& expected_server,
                                         std::string alpn, Bytes local_transport_params) {
  if (alpn.empty() || alpn.size() > 255) {
    return TlsError{tls_alert::kInternalError, "client ALPN must be 1..255 bytes"};
  }
  auto impl = std::make_unique<Impl>();
  impl->client = true;
  impl->expected_server = expected_server;
  impl->client_alpn = std::move(alpn);
  impl->local_tp = std::move(local_transport_params);
  if (auto r = impl->setup(key); !r) return r.error();
  return TlsSession(std::move(impl));
}

TlsResult<TlsSession> TlsSession::server(const SecretKey& key, std::vector<std::string> alpns,
                                         Bytes local_transport_params) {
  if (alpns.empty()) return TlsError{tls_alert::kInternalError, "server needs at least one ALPN"};
  for (const auto& a : alpns) {
    if (a.empty() || a.size() > 255) {
      return TlsError{tls_alert::kInternalError, "server ALPNs must be 1..255 bytes"};
    }
  }
  auto impl = std::make_unique<Impl>();
  impl->client = false;
  impl->server_alpns = std::move(alpns);
  impl->local_tp = std::move(local_transport_params);
  if (auto r = impl->setup(key); !r) return r.error();
  return TlsSession(std::move(impl));
}

TlsResult<TlsSession> TlsSession::x509_client(std::shared_ptr<const X509Credentials> trust,
                                              std::string server_name, std::string alpn,
                                              Bytes local_transport_params) {
  if (alpn.empty() || alpn.size() > 255) {
    return TlsError{tls_alert::kInternalError, "client ALPN must be 1..255 bytes"};
  }
  if (!trust || trust->is_server()) {
    return TlsError{tls_alert::kInternalError, "x509_client needs client trust credentials"};
  }
  if (server_name.empty()) return TlsError{tls_alert::kInternalError, "empty server name"};
  auto impl = std::make_unique<Impl>();
  impl->client = true;
  impl->x509 = std::move(trust);
  impl->server_name = std::move(server_name);
  impl->client_alpn = std::move(alpn);
  impl->local_tp = std::move(local_transport_params);
  if (auto r = impl->setup_x509(); !r) return r.error();
  return TlsSession(std::move(impl));
}

TlsResult<TlsSession> TlsSession::x509_server(std::shared_ptr<const X509Credentials> identity,
                                              std::vector<std::string> alpns,
                                              Bytes local_transport_params) {
  if (alpns.empty()) return TlsError{tls_alert::kInternalError, "server needs at least one ALPN"};
  for (const auto& a : alpns) {
    if (a.empty() || a.size() > 255) {
      return TlsError{tls_alert::kInternalError, "server ALPNs must be 1..255 bytes"};
    }
  }
  if (!identity || !identity->is_server()) {
    return TlsError{tls_alert::kInternalError, "x509_server needs a certificate and key"};
  }
  auto impl = std::make_unique<Impl>();
  impl->client = false;
  impl->x509 = std::move(identity);
  impl->server_alpns = std::move(alpns);
  impl->local_tp = std::move(local_transport_params);
  if (auto r = impl->setup_x509(); !r) return r.error();
  return TlsSession(std::move(impl));
}

bool TlsSession::is_client() const { return impl_->client; }
bool TlsSession::is_x509() const { return impl_->x509 != nullptr; }

TlsResult<void> TlsSession::start() {
  if (impl_->error) return *impl_->error;
  if (!impl_->client) return TlsError{tls_alert::kInternalError, "start() is for clients"};
  if (impl_->started) return TlsError{tls_alert::kInternalError, "start() called twice"};
  impl_->started = true;
  return impl_->drive();
}

TlsResult<void> TlsSession::provide_data(EncryptionLevel level, ByteView crypto_bytes) {
  Impl& s = *impl_;
  if (s.error) return *s.error;
  if (s.client && !s.started) {
    return TlsError{tls_alert::kInternalError, "provide_data() before start()"};
  }
  if (level == EncryptionLevel::kZeroRtt) {
    // RFC 9001 §4.1.3: CRYPTO frames never travel in 0-RTT packets.
    return s.fail(TlsError{tls_alert::kUnexpectedMessage, "CRYPTO data at the 0-RTT level"});
  }
  s.started = true;
  return s.receive(level, crypto_bytes);
}

std::optional<TlsEvent> TlsSession::next_event() {
  if (impl_->events.empty()) return std::nullopt;
  TlsEvent ev = std::move(impl_->events.front());
  impl_->events.pop_front();
  return ev;
}

Bytes TlsSession::take_outgoing(EncryptionLevel level) {
  return std::exchange(impl_->outgoing[level_index(level)], Bytes{});
}

bool TlsSession::has_outgoing() const {
  return std::any_of(std::begin(impl_->outgoing), std::end(impl_->outgoing),
                     [](const Bytes& b) { return !b.empty(); });
}

bool TlsSession::handshake_complete() const { return impl_->complete; }
const std::optional<TlsError>& TlsSession::error() const { return impl_->error; }
const std::optional<Bytes>& TlsSession::peer_transport_params() const { return impl_->peer_tp; }
const std::optional<std::string>& TlsSession::alpn() const { return impl_->alpn; }
const std::optional<EndpointId>& TlsSession::peer_id() const { return impl_->peer_id; }
std::optional<AeadAlgorithm> TlsSession::aead() const { return impl_->aead; }

void TlsSession::set_keylog_callback(KeylogCallback cb) {
  impl_->keylog = std::move(cb);
  gnutls_session_set_keylog_function(impl_->session,
                                     impl_->keylog ? &Impl::keylog_cb : impl_->default_keylog);
}

TlsResult<void> TlsSession::set_server_name_for_testing(std::string_view name) {
  if (!impl_->client || impl_->started) {
    return TlsError{tls_alert::kInternalError, "SNI: client only, before start()"};
  }
  const int rv = gnutls_server_name_set(impl_->session, GNUTLS_NAME_DNS, name.data(), name.size());
  if (rv < 0)
    return TlsError{tls_alert::kInternalError, gnutls_reason("gnutls_server_name_set", rv)};
  return {};
}

}  // namespace iroh::crypto

namespace iroh::crypto {

void warm_up() {
  static bool done = false;
  if (done) return;
  done = true;
  // Every AEAD and hash the handshake can pick, through the same paths packets use.
  const Bytes dcid(8, 0x42);
  (void)derive_initial_keys(dcid);
  for (auto alg :
       {AeadAlgorithm::kAes128Gcm, AeadAlgorithm::kAes256Gcm, AeadAlgorithm::kChaCha20Poly1305}) {
    const Bytes secret(alg == AeadAlgorithm::kAes256Gcm ? 48 : 32, 0x17);
    auto keys = PacketProtection::from_secret(alg, secret, EncryptionLevel::kOneRtt);
    if (!keys) continue;
    Bytes buf(64 + 16, 0);
    (void)keys->aead().seal(ByteView(dcid), buf, 0);
    (void)keys->aead().open(ByteView(dcid), buf, 0);
  }
  // One in-memory handshake (fixed keys; nothing leaves the process).
  ByteArray<32> a{}, b{};
  a[0] = 1;
  b[0] = 2;
  const auto ck = SecretKey::from_seed(a);
  const auto sk = SecretKey::from_seed(b);
  const Bytes tp = {0x01, 0x01, 0x00};  // max_idle_timeout = 0: a minimal valid blob
  auto c = TlsSession::client(ck, sk.public_key(), "warm-up", tp);
  auto s = TlsSession::server(sk, {"warm-up"}, tp);
  if (!c || !s || !c->start()) return;
  for (int round = 0; round < 4; ++round) {
    for (auto level :
         {EncryptionLevel::kInitial, EncryptionLevel::kHandshake, EncryptionLevel::kOneRtt}) {
      if (auto out = c->take_outgoing(level); !out.empty()) (void)s->provide_data(level, out);
      if (auto out = s->take_outgoing(level); !out.empty()) (void)c->provide_data(level, out);
    }
    while (c->next_event()) {
    }
    while (s->next_event()) {
    }
  }
}

}  // namespace iroh::crypto

// GnuTLS configured for iroh's TLS profile (spec §3, DESIGN.md key decision 2): TLS 1.3 only,
// Ed25519 raw public keys (RFC 7250) both ways, client authentication required, ALPN mandatory,
// no SNI.
#include <ngtcp2/ngtcp2_crypto_gnutls.h>

#include <cstring>

#include "peer.h"

namespace ngpeer {
namespace {

// Compat mode must be off for QUIC (no fake ChangeCipherSpec); the RAWPK certificate types are
// opt-in; iroh signs only with ed25519 and offers X25519 first.
constexpr const char* kPriority =
    "%DISABLE_TLS13_COMPAT_MODE:NORMAL:-VERS-ALL:+VERS-TLS1.3:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:+GROUP-SECP384R1:"
    "-SIGN-ALL:+SIGN-EDDSA-ED25519:"
    "-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK";

constexpr std::uint8_t kSpkiPrefix[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                          0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};
constexpr std::uint8_t kPkcs8Prefix[16] = {0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06,
                                           0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20};

[[noreturn]] void fatal(const char* what, int rv) {
  std::fprintf(stderr, "%s: error: transport: %s: %s\n", kProgName, what, gnutls_strerror(rv));
  std::exit(1);
}

}  // namespace

TlsContext::TlsContext(const Identity& id) {
  int rv = gnutls_certificate_allocate_credentials(&cred_);
  if (rv != 0) fatal("gnutls_certificate_allocate_credentials", rv);
  std::uint8_t spki[44], pkcs8[48];
  std::memcpy(spki, kSpkiPrefix, 12);
  std::memcpy(spki + 12, id.public_key, 32);
  std::memcpy(pkcs8, kPkcs8Prefix, 16);
  std::memcpy(pkcs8 + 16, id.seed, 32);
  gnutls_datum_t dspki{spki, sizeof spki};
  gnutls_datum_t dkey{pkcs8, sizeof pkcs8};
  // Without a loaded raw key GnuTLS silently stops offering RAWPK, so failure here is fatal.
  rv = gnutls_certificate_set_rawpk_key_mem(cred_, &dspki, &dkey, GNUTLS_X509_FMT_DER, nullptr, 0,
                                            nullptr, 0, 0);
  if (rv < 0) fatal("gnutls_certificate_set_rawpk_key_mem", rv);
  gnutls_certificate_set_verify_function(cred_, verify_peer_key);
  const char* err_pos = nullptr;
  rv = gnutls_priority_init(&priority_, kPriority, &err_pos);
  if (rv != 0) fatal("gnutls_priority_init", rv);
}

TlsContext::~TlsContext() {
  if (priority_) gnutls_priority_deinit(priority_);
  if (cred_) gnutls_certificate_free_credentials(cred_);
}

gnutls_session_t TlsContext::new_session(bool server, const std::vector<std::string>& alpns,
                                         ngtcp2_crypto_conn_ref* conn_ref, std::string& error) {
  gnutls_session_t s = nullptr;
  unsigned flags =
      (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_ENABLE_RAWPK | GNUTLS_NO_END_OF_EARLY_DATA;
  int rv = gnutls_init(&s, flags);
  if (rv != 0) {
    error = std::string("gnutls_init: ") + gnutls_strerror(rv);
    return nullptr;
  }
  auto fail = [&](const char* what, int code) {
    error = std::string(what) + ": " + gnutls_strerror(code);
    gnutls_deinit(s);
    return nullptr;
  };
  rv = server ? ngtcp2_crypto_gnutls_configure_server_session(s)
              : ngtcp2_crypto_gnutls_configure_client_session(s);
  if (rv != 0) return fail("ngtcp2_crypto_gnutls_configure_session", GNUTLS_E_INTERNAL_ERROR);
  if ((rv = gnutls_priority_set(s, priority_)) != 0) return fail("gnutls_priority_set", rv);
  if ((rv = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, cred_)) != 0)
    return fail("gnutls_credentials_set", rv);
  gnutls_session_set_ptr(s, conn_ref);
  std::vector<gnutls_datum_t> protos;
  for (const auto& a : alpns) {
    protos.push_back(
        {reinterpret_cast<unsigned char*>(const_cast<char*>(a.data())), unsigned(a.size())});
    if (!server) break;  // iroh clients offer exactly one ALPN
  }
  if ((rv = gnutls_alpn_set_protocols(s, protos.data(), unsigned(protos.size()),
                                      GNUTLS_ALPN_MANDATORY)) != 0)
    return fail("gnutls_alpn_set_protocols", rv);
  // iroh requires the client to prove its key; no SNI is sent (iroh HEAD), servers ignore it.
  if (server) gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
  return s;
}

bool is_ed25519_spki(const gnutls_datum_t& cert) {
  return cert.size == 44 && std::memcmp(cert.data, kSpkiPrefix, 12) == 0;
}

}  // namespace ngpeer

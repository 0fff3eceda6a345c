// TlsSession: a sans-IO TLS 1.3 handshake driver for QUIC (RFC 9001 §4) on GnuTLS 3.7's QUIC
// interface, speaking iroh's TLS profile (spec §3):
//   - TLS 1.3 only, no middlebox-compatibility mode (RFC 9001 §8.4);
//   - Ed25519 signatures only; RFC 7250 raw public keys in both directions, the certificate being
//     the 44-byte SubjectPublicKeyInfo `302a300506032b6570032100 || key`;
//   - mutual authentication: the server requires a client key; the client requires the server's
//     key to equal the EndpointId it dialed;
//   - ALPN mandatory: the client offers exactly one protocol, the server picks from its list, no
//     overlap fails with alert no_application_protocol (120);
//   - the client sends no SNI, the server ignores SNI;
//   - QUIC transport parameters travel in extension 0x39 (ClientHello, EncryptedExtensions).
//
// No sockets, no threads, no clocks. The QUIC engine drives it:
//   1. client(...) / server(...);
//   2. client: start() produces the ClientHello;
//   3. for every CRYPTO frame payload received (in order, per encryption level), provide_data();
//   4. after start()/provide_data(), drain next_event() (new secrets, peer transport parameters,
//      handshake completion — in the order TLS produced them), then take_outgoing(level) for each
//      level and send those bytes in CRYPTO frames at that level.
// Secrets come out as raw traffic secrets plus the negotiated AEAD, ready for
// PacketProtection::from_secret(event.aead, event.secret, event.level).
//
// Errors: every failure is a TlsError carrying the TLS alert that QUIC turns into CRYPTO_ERROR
// (0x100 + alert, RFC 9001 §4.8) and a reason. Once failed, the session stays failed: further
// calls return the same error.
//
// Out of scope for now: 0-RTT / session resumption (tickets the peer sends after the handshake are
// accepted and ignored by GnuTLS), key updates (crypto::PacketProtection::next_generation).
//
// A second, separate profile exists for the relay's QUIC address discovery service (spec §6.9):
// X.509 (WebPKI) certificates instead of raw public keys. The server presents a PEM certificate
// chain and requests no client certificate; the client verifies the chain against trust anchors
// (a CA PEM or the system store), checks the server name (DNS name or IP address, as rustls does
// for IP-literal relay URLs) and sends SNI for DNS names only (RFC 6066 §3). Everything else
// (TLS 1.3, QUIC mode, ALPN, transport parameters, level checks) is shared. The raw-public-key
// profile is unchanged by it.
//
// Thread-safety: none; one session per connection, used from one thread at a time.
// X509Credentials are immutable after creation and may be shared by sessions on one thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/bytes.h"
#include "base/key.h"
#include "base/result.h"
#include "crypto/aead.h"
#include "crypto/packet_protection.h"

namespace iroh::crypto {

// TLS alert descriptions this module produces itself (RFC 8446 §6).
namespace tls_alert {
inline constexpr std::uint8_t kUnexpectedMessage = 10;
inline constexpr std::uint8_t kHandshakeFailure = 40;
inline constexpr std::uint8_t kBadCertificate = 42;
inline constexpr std::uint8_t kUnsupportedCertificate = 43;
inline constexpr std::uint8_t kCertificateRevoked = 44;
inline constexpr std::uint8_t kCertificateExpired = 45;
inline constexpr std::uint8_t kCertificateUnknown = 46;
inline constexpr std::uint8_t kUnknownCa = 48;
inline constexpr std::uint8_t kDecodeError = 50;
inline constexpr std::uint8_t kInternalError = 80;
inline constexpr std::uint8_t kMissingExtension = 109;
inline constexpr std::uint8_t kCertificateRequired = 116;
inline constexpr std::uint8_t kNoApplicationProtocol = 120;
}  // namespace tls_alert

// The QUIC transport parameters extension codepoint (RFC 9001 §8.2).
inline constexpr std::uint16_t kQuicTransportParametersExtension = 0x39;

struct TlsError {
  std::uint8_t alert = tls_alert::kInternalError;  // the TLS alert description
  std::string message;
  // CRYPTO_ERROR (RFC 9001 §4.8): the transport error code for CONNECTION_CLOSE.
  std::uint64_t quic_error_code() const { return 0x100u + alert; }
};

template <class T>
using TlsResult = Result<T, TlsError>;

enum class Direction : std::uint8_t { kRead, kWrite };

// A traffic secret was installed. For the client, kWrite secrets protect what it sends and kRead
// what it receives; likewise for the server. So client kWrite at a level equals server kRead.
struct SecretEvent {
  EncryptionLevel level;  // kZeroRtt, kHandshake or kOneRtt (Initial keys come from the DCID)
  Direction direction;
  AeadAlgorithm aead;  // the negotiated cipher suite's AEAD (its hash is aead_hash(aead))
  Bytes secret;
};

// The peer's quic_transport_parameters extension, raw (decode with
// quic::decode_transport_parameters).
struct PeerTransportParamsEvent {
  Bytes raw;
};

// The handshake finished: peer authenticated, ALPN negotiated. For the client this happens on
// receiving the server's Finished (it then sends its own Finished at the Handshake level); for the
// server on receiving the client's Finished.
struct HandshakeCompleteEvent {};

using TlsEvent = std::variant<SecretEvent, PeerTransportParamsEvent, HandshakeCompleteEvent>;

// SSLKEYLOGFILE hook: called with an NSS key-log label ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", ...),
// the client random and the secret. Write "label hex(client_random) hex(secret)\n" to a file to
// decrypt captures with Wireshark.
using KeylogCallback =
    std::function<void(std::string_view label, ByteView client_random, ByteView secret)>;

// X.509 material for the WebPKI profile, loaded once and shared by many sessions: either a
// server identity (certificate chain + private key) or a client's trust anchors.
class X509Credentials {
 public:
  // Server: a PEM certificate chain (leaf first) and the leaf's PEM private key.
  static TlsResult<std::shared_ptr<const X509Credentials>> server_from_pem(
      std::string_view chain_pem, std::string_view key_pem);
  static TlsResult<std::shared_ptr<const X509Credentials>> server_from_files(
      const std::string& chain_file, const std::string& key_file);
  // Client: trust the CA certificates in PEM text / a PEM file (at least one), or the system
  // store. Errors say which input was unusable.
  static TlsResult<std::shared_ptr<const X509Credentials>> client_trusting_pem(
      std::string_view ca_pem);
  static TlsResult<std::shared_ptr<const X509Credentials>> client_trusting_file(
      const std::string& ca_file);
  static TlsResult<std::shared_ptr<const X509Credentials>> client_trusting_system();

  ~X509Credentials();
  X509Credentials(const X509Credentials&) = delete;
  X509Credentials& operator=(const X509Credentials&) = delete;

  bool is_server() const { return server_; }
  // The gnutls_certificate_credentials_t (opaque here to keep GnuTLS out of this header).
  void* gnutls_credentials() const { return cred_; }

 private:
  X509Credentials(void* cred, bool server) : cred_(cred), server_(server) {}
  void* cred_;
  bool server_;
};

class TlsSession {
 public:
  // A client that dials `expected_server`, offering exactly `alpn` and sending
  // `local_transport_params` (an encoded quic transport parameter blob) in its ClientHello.
  // (An empty blob makes GnuTLS omit the extension altogether — the peer then fails the
  // handshake with missing_extension; only useful in tests. QUIC always has parameters.)
  static TlsResult<TlsSession> client(const SecretKey& key, const EndpointId& expected_server,
                                      std::string alpn, Bytes local_transport_params);
  // A server accepting any of `alpns` (in order of preference; must be non-empty) and any client
  // that proves possession of an Ed25519 key.
  static TlsResult<TlsSession> server(const SecretKey& key, std::vector<std::string> alpns,
                                      Bytes local_transport_params);

  // WebPKI profile (see the header comment). Client: verifies the server's chain against
  // `trust` (client credentials) and that it names `server_name` — a DNS name, or an IPv4/IPv6
  // literal (no brackets) matched against the certificate's IP SANs; failures are alerts
  // unknown_ca (48), bad_certificate (42), certificate_expired (45) or certificate_unknown (46).
  static TlsResult<TlsSession> x509_client(std::shared_ptr<const X509Credentials> trust,
                                           std::string server_name, std::string alpn,
                                           Bytes local_transport_params);
  // Server: presents `identity` (server credentials), accepts any of `alpns`, asks for no client
  // certificate.
  static TlsResult<TlsSession> x509_server(std::shared_ptr<const X509Credentials> identity,
                                           std::vector<std::string> alpns,
                                           Bytes local_transport_params);

  // Movable (GnuTLS callbacks point at the heap-allocated Impl, never at this handle). A
  // moved-from session may only be destroyed or assigned to.
  TlsSession(TlsSession&&) noexcept;
  TlsSession& operator=(TlsSession&&) noexcept;
  ~TlsSession();
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

  bool is_client() const;

  // Client: produce the ClientHello (Initial level). Calling it twice, or on a server, is an
  // error (kInternalError, state unchanged).
  TlsResult<void> start();

  // Feed CRYPTO frame bytes received at `level`, in stream order, each byte once (the caller
  // reassembles CRYPTO frames by offset and drops retransmitted data). Any split is fine: partial
  // handshake messages are buffered (at most 64 KiB per message). Bytes arriving after the
  // handshake at kOneRtt (NewSessionTicket) are accepted and ignored. Errors (RFC 9001 §4.1.3,
  // §6): a message at a level other than the one TLS currently reads at, or leftover bytes at a
  // level TLS has moved past, → unexpected_message (10); a TLS KeyUpdate → unexpected_message.
  TlsResult<void> provide_data(EncryptionLevel level, ByteView crypto_bytes);

  // The next pending event, or nullopt.
  std::optional<TlsEvent> next_event();

  // Outgoing CRYPTO bytes produced at `level` since the last call (moved out). Never kZeroRtt.
  Bytes take_outgoing(EncryptionLevel level);
  bool has_outgoing() const;

  bool handshake_complete() const;
  // The sticky error, if the session failed.
  const std::optional<TlsError>& error() const;

  // Available once known (peer transport parameters: after ClientHello / EncryptedExtensions;
  // ALPN, cipher and peer id: at the latest when the handshake completes).
  const std::optional<Bytes>& peer_transport_params() const;
  const std::optional<std::string>& alpn() const;
  const std::optional<EndpointId>& peer_id() const;  // raw-public-key profile only
  std::optional<AeadAlgorithm> aead() const;
  // WebPKI profile: this session uses X.509 certificates. For a client, handshake_complete()
  // implies the server's chain and name were verified.
  bool is_x509() const;

  // Installs an SSLKEYLOGFILE-style hook (call before start()/the first provide_data()). Without
  // one, GnuTLS's own default applies: it appends to $SSLKEYLOGFILE if that is set. An empty
  // callback restores that default.
  void set_keylog_callback(KeylogCallback cb);

  // Offer / expect SNI: not part of iroh's profile (≤ 1.0.3 sent `<id>.iroh.invalid`); only for
  // tests that must look like old clients. Client only, call before start().
  TlsResult<void> set_server_name_for_testing(std::string_view name);

  struct Impl;

 private:
  explicit TlsSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The 44-byte Ed25519 SubjectPublicKeyInfo DER that is iroh's raw public key certificate.
Bytes ed25519_spki(const EndpointId& id);
// The EndpointId inside such an SPKI (exact prefix, 44 bytes, a valid curve point).
Result<EndpointId> endpoint_id_from_spki(ByteView spki);

}  // namespace iroh::crypto

namespace iroh::crypto {
// Pays the one-time costs of the crypto libraries up front: OpenSSL 3 fetches its algorithm
// implementations lazily (~7 ms for the first HKDF/AEAD use in a process) and GnuTLS initialises
// state on its first handshake. Drivers call this once at startup so that no connection's
// handshake time includes it. Idempotent and cheap after the first call.
void warm_up();
}  // namespace iroh::crypto

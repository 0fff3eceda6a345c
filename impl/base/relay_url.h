// RelayUrl: a relay server URL, parsed and normalised exactly as Rust iroh does.
//
// iroh-base's `RelayUrl` wraps the Rust `url` crate (2.5.8, with `idna` 1.1.0), which implements
// the WHATWG URL Standard "basic URL parser" (no base URL). The normalised serialization (str()) is
// what goes on the wire inside tickets (spec/iroh-wire.md §2.1–2.4), so it must be byte-identical
// to Rust's `Url::to_string()`:
//
//   "https://relay.example.com"      -> "https://relay.example.com/"
//   "HTTPS://Relay.Example.COM:443"  -> "https://relay.example.com/"
//   "http://127.0.0.1:3340"          -> "http://127.0.0.1:3340/"
//   "http://derp.me."                -> "http://derp.me./"        (trailing-dot FQDN kept)
//   "http://0x7f.1"                  -> "http://127.0.0.1/"       (WHATWG IPv4 number forms)
//   "http://bücher.de"               -> "http://xn--bcher-kva.de/"
//
// What is implemented (checked against the real Rust iroh 1.0.2 with interop/relay_url_oracle.mjs):
//   * Input: must be valid UTF-8; leading/trailing C0-control-or-space stripped; ASCII tab/LF/CR
//     removed everywhere.
//   * Schemes: the special schemes http, https, ws, wss (default ports 80/443/80/443) and ftp (21,
//     special too), and every non-special scheme ("foo://bar", "mailto:x@y"): opaque hosts,
//     opaque ("cannot-be-a-base") paths, the "/." path prefix, no default-port elision. Rust accepts
//     all of these, and a ticket from Rust may carry any of them, so we accept them too.
//     The one scheme we reject is "file": its parser branch (Windows drive letters, "localhost")
//     is where the url crate deviates from the WHATWG standard, and a relay cannot be a file.
//   * Userinfo kept (percent-encoded with the userinfo set), "\" as "/" for special schemes,
//     host percent-decoding, forbidden domain/host code points, IPv4 number forms (hex, octal,
//     fewer than four parts, overflow), IPv6 incl. compression and embedded IPv4, ports (digits
//     only, <= 65535, default elided), dot segments incl. "%2e" forms, path/query/special-query/
//     fragment/C0-control percent-encode sets as in url 2.5.8 (which does not yet encode "^" in
//     paths), query and fragment kept.
//   * url-crate behaviours that differ from today's WHATWG text, reproduced on purpose:
//       - "^" is not percent-encoded in paths;
//       - a space in an opaque path is kept as is (no "%20" before "?"/"#");
//       - non-special URLs: the port ends at "\" too ("foo://h:1\x" -> "foo://h:1/\x");
//       - non-special URLs: an empty userinfo before an empty host is accepted ("foo://@" ->
//         "foo://", "foo://:@" -> "foo://").
//   * IDNA (UTS #46 ToASCII, nontransitional, CheckHyphens=false, VerifyDnsLength=false, as the
//     url crate calls it): Punycode (RFC 3492) encode/decode, "xn--" labels are decoded and
//     validated, the idna crate's length limits (2000 Punycode digits in, 1000 code points out)
//     are applied. UTS #46 mapping/validity needs Unicode tables; we carry a small table of code
//     points (see relay_url.cc, `idna_map`) whose behaviour was verified one by one against the
//     Rust oracle: lowercase letters of Latin-1, Latin Extended-A, Greek, Cyrillic, plus
//     Hiragana, Katakana, CJK Unified Ideographs, Hangul syllables, and the simple
//     uppercase->lowercase mappings of those alphabets. A host with any other non-ASCII code point
//     (or an "xn--" label decoding to one) is rejected with
//     "non-ASCII host needs IDNA mapping not supported" — Rust may accept it.
//
// Known residual differences from Rust: only the IDNA limitation above (we reject some hosts Rust
// accepts, never the other way round, and never produce different bytes), "file:" URLs, and
// input that is not valid UTF-8 (Rust's &str cannot hold it; we reject it).
//
// Sans-IO, no exceptions, no globals (the tables are constexpr data).
#pragma once

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace iroh {

class RelayUrl {
 public:
  // Parses and normalises `input`. Errors read `invalid relay URL "<input>": <reason>`.
  static Result<RelayUrl> parse(std::string_view input);

  // The normalised serialization: exactly Rust's `Url::to_string()`. Always ASCII.
  const std::string& str() const { return serialization_; }

  // Lower-case scheme without the ":" ("https").
  std::string_view scheme() const { return std::string_view(serialization_).substr(0, scheme_end_); }
  // True for http, https, ws, wss, ftp.
  bool is_special() const { return default_port_.has_value(); }

  // Percent-encoded userinfo ("" if none).
  std::string_view username() const;
  std::string_view password() const;

  // Serialized host: a domain (ASCII, lower-case, Punycode), a dotted IPv4 address, "[ipv6]", or
  // for non-special schemes a percent-encoded opaque host. "" if the URL has no host.
  const std::string& host() const { return host_; }

  // The explicit port, if it is not the scheme's default port.
  std::optional<uint16_t> port() const { return port_; }
  // port(), else the scheme's default port (80 http/ws, 443 https/wss, 21 ftp), else 0.
  uint16_t port_or_default() const { return port_ ? *port_ : default_port_.value_or(0); }

  // The serialized path ("/" at least for special schemes; may be "" or opaque otherwise).
  std::string_view path() const;
  // The serialized query / fragment without "?" / "#", if present.
  std::optional<std::string_view> query() const;
  std::optional<std::string_view> fragment() const;

  // Ordered and compared by str() bytes: Rust's `Ord for Url`, hence the BTreeSet order of
  // TransportAddr::Relay entries in tickets.
  friend std::strong_ordering operator<=>(const RelayUrl& a, const RelayUrl& b) {
    return a.serialization_.compare(b.serialization_) <=> 0;
  }
  friend bool operator==(const RelayUrl& a, const RelayUrl& b) {
    return a.serialization_ == b.serialization_;
  }

 private:
  friend class RelayUrlParser;
  RelayUrl() = default;

  std::string serialization_;
  std::string host_;
  std::optional<uint16_t> port_;
  std::optional<uint16_t> default_port_;  // set iff the scheme is special
  uint32_t scheme_end_ = 0;               // index of ':'
  uint32_t username_begin_ = 0, username_end_ = 0;
  uint32_t password_begin_ = 0, password_end_ = 0;
  uint32_t path_begin_ = 0, path_end_ = 0;
  std::optional<uint32_t> query_begin_;     // index after '?'
  std::optional<uint32_t> fragment_begin_;  // index after '#'
};

}  // namespace iroh

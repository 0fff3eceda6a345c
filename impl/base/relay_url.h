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
// What is implemented (checked against the real Rust iroh 1.0.2 with interop/relay_url_oracle.mjs:
// a 153-case unit table, ~100k random/fuzzer-found URLs, and every code point as a host):
//   * Input: must be valid UTF-8; leading/trailing C0-control-or-space stripped; ASCII tab/LF/CR
//     removed everywhere.
//   * Schemes: the special schemes http, https, ws, wss (default ports 80/443/80/443) and ftp (21,
//     special too), and every non-special scheme ("foo://bar", "mailto:x@y"): opaque hosts,
//     opaque paths, the "/." path prefix, no default-port elision. Rust accepts all of these and a
//     ticket from Rust may carry any of them, so we accept them too (the relay client, not the
//     parser, decides which schemes it can connect to). The one scheme we reject is "file": its
//     parser branch (Windows drive letters, "localhost", host-less paths) is where the url crate
//     deviates most from the WHATWG standard, and a relay cannot be a file.
//   * Userinfo kept (percent-encoded with the userinfo set), "\" as "/" for special schemes, host
//     percent-decoding, forbidden domain/host code points, IPv4 number forms (hex, octal, fewer
//     than four parts, overflow), IPv6 incl. "::" compression and embedded IPv4, ports (digits
//     only, <= 65535, default elided), dot segments incl. "%2e" forms, the C0-control, fragment,
//     path, userinfo, query and special-query percent-encode sets, query and fragment kept.
//   * url-crate behaviours that differ from today's WHATWG text, reproduced on purpose because the
//     bytes must match Rust:
//       - "^" is not percent-encoded in paths (url 2.5.8 predates that spec change);
//       - a space in an opaque path stays a space ("foo:a b ?c");
//       - ".." never removes a segment that looks like a Windows drive letter, for every scheme
//         ("http://h/x/C:/.." -> "http://h/x/C:/");
//       - non-special URLs: "\" also ends the port ("foo://h:1\x" -> "foo://h:1/\x");
//       - non-special URLs: an empty userinfo before an empty host is accepted ("foo://@" and
//         "foo://:@" -> "foo://").
//   * IDNA (UTS #46 ToASCII, nontransitional, CheckHyphens=false, VerifyDnsLength=false, as the
//     url crate calls it): Punycode (RFC 3492) encoding and decoding, "xn--" labels decoded and
//     validated, the idna crate's limits (at most 2000 Punycode characters decoded, 1000 code
//     points encoded). Instead of the full Unicode tables we carry:
//       - relay_url_idna_table.h, generated from the Rust oracle by
//         interop/relay_url_idna_table.mjs: the ~148k code points UTS #46 keeps unchanged that are
//         "inert" (no combining marks, no composing Hangul jamo, NFC-stable, no ZWJ/ZWNJ, no
//         right-to-left), so labels made of them need no normalisation, CheckJoiners or CheckBidi;
//       - the upper->lower case mappings of Latin-1, Latin Extended-A, Greek and Cyrillic.
//     Any other non-ASCII code point in a host is rejected with "non-ASCII host needs IDNA mapping
//     not supported (U+XXXX)", and an "xn--" label that decodes to one with "Punycode label ...
//     decodes to U+XXXX, which is invalid in a domain or not supported".
//
// Known residual differences from Rust (we reject, never produce different bytes):
//   * hosts needing more UTS #46 than the above: other mapped code points (fullwidth forms,
//     compatibility characters, "。" as a dot, ...), combining marks (so also NFD input like
//     "e\u0301"), Hangul conjoining jamo, ZWJ/ZWNJ, right-to-left scripts — both as Unicode
//     input and as the "xn--" labels Rust makes of them;
//   * "file:" URLs;
//   * input that is not valid UTF-8 (a Rust &str cannot hold it).
// Like Rust, a label of up to 1000 scattered non-ASCII code points can encode to more than 2000
// Punycode characters; the normalised form of such a URL then does not parse again (in Rust
// neither).
//
// Sans-IO, no exceptions, no mutable globals.
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
  std::string_view scheme() const {
    return std::string_view(serialization_).substr(0, scheme_end_);
  }
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

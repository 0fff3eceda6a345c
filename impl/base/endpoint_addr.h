// EndpointAddr: an endpoint's id plus the transport addresses it can be reached at.   spec §2.1-2.2
//
// Wire form (postcard, iroh 1.0.x): id as 32 raw bytes, then BTreeSet<TransportAddr> as a varint
// count and the elements in set order. TransportAddr is the enum { Relay(RelayUrl) = 0,
// Ip(SocketAddr) = 1, Custom(CustomAddr) = 2 }; std::variant's index and ordering (index first,
// then value) are exactly Rust's derived enum order, so std::set<TransportAddr> iterates in the
// BTreeSet's serialization order.
#pragma once

#include <compare>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <variant>

#include "base/bytes.h"
#include "base/key.h"
#include "base/postcard.h"
#include "base/relay_url.h"
#include "base/result.h"
#include "base/socket_addr.h"

namespace iroh {

// A custom-transport address (spec §10): a transport id and opaque data. Stored exactly as iroh
// 1.0.x serializes it (derived serde of `CustomAddrBytes`): data of up to 30 bytes inline as
// {size: u8, data: [u8; 30]}, longer data on the heap as a byte string. iroh 1.0.2 decodes both
// forms without normalising them (a short Heap stays Heap, inline padding is kept verbatim, an
// inline size above 30 is accepted), so we keep every decoded byte to re-encode identically.
// Note: iroh after 1.0.3 (HEAD) uses another encoding (spec §2.2 [VERSION NOTE]); we speak 1.0.x.
class CustomAddr {
 public:
  static constexpr std::size_t kInlineCapacity = 30;
  enum class Storage : std::uint8_t { kInline = 0, kHeap = 1 };  // postcard variant indices

  CustomAddr() = default;
  // The form Rust's constructors produce: inline iff data fits, zero padded.
  static CustomAddr make(std::uint64_t id, ByteView data);
  // "<id lowercase hex>_<data lowercase hex>", e.g. "1_a1b2c3d4e5f6" (Rust's FromStr).
  static Result<CustomAddr> parse(std::string_view text);

  std::uint64_t id() const { return id_; }
  Storage storage() const { return storage_; }
  // The address bytes. For a (malformed but accepted) inline size above 30, the 30 stored bytes.
  ByteView data() const;
  // True for an inline size above 30: Rust decodes it but would panic on reading the data.
  bool inline_size_overflows() const {
    return storage_ == Storage::kInline && inline_size_ > kInlineCapacity;
  }
  std::string to_string() const;

  void encode(Bytes& out) const;
  static Result<CustomAddr> decode(postcard::Reader& in);

  // Rust's derived Ord on {id, data: CustomAddrBytes}: id, then variant, then Inline's (size,
  // 30-byte array) or Heap's byte string.
  friend auto operator<=>(const CustomAddr&, const CustomAddr&) = default;
  friend bool operator==(const CustomAddr&, const CustomAddr&) = default;

 private:
  std::uint64_t id_ = 0;
  Storage storage_ = Storage::kInline;
  std::uint8_t inline_size_ = 0;
  ByteArray<kInlineCapacity> inline_data_{};
  Bytes heap_data_;
};

using TransportAddr = std::variant<RelayUrl, SocketAddr, CustomAddr>;

std::string transport_addr_to_string(const TransportAddr& addr);  // "relay:…", "ip:…", "custom:…"

struct EndpointAddr {
  EndpointId id;
  std::set<TransportAddr> addrs;

  std::vector<RelayUrl> relay_urls() const;
  std::vector<SocketAddr> ip_addrs() const;
  std::vector<CustomAddr> custom_addrs() const;

  friend bool operator==(const EndpointAddr&, const EndpointAddr&) = default;
};

// postcard form of EndpointAddr (also the non-human-readable serde of EndpointTicket).
void encode_endpoint_addr(Bytes& out, const EndpointAddr& addr);
// Accepts any element order and duplicates (BTreeSet semantics), as Rust does.
Result<EndpointAddr> decode_endpoint_addr(postcard::Reader& in);

}  // namespace iroh

#include "base/endpoint_addr.h"

#include <algorithm>
#include <charconv>

#include "base/text_encoding.h"

namespace iroh {
namespace {

enum TransportVariant : std::uint32_t { kRelay = 0, kIp = 1, kCustom = 2 };

std::string hex_u64(std::uint64_t v) {
  char buf[17];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, 16);
  return std::string(buf, end);
}

Error at(std::string_view what, const Error& inner) {
  return make_error(std::string(what) + ": " + inner.message);
}

}  // namespace

CustomAddr CustomAddr::make(std::uint64_t id, ByteView data) {
  CustomAddr a;
  a.id_ = id;
  if (data.size() <= kInlineCapacity) {
    a.storage_ = Storage::kInline;
    a.inline_size_ = static_cast<std::uint8_t>(data.size());
    std::copy(data.begin(), data.end(), a.inline_data_.begin());
  } else {
    a.storage_ = Storage::kHeap;
    a.heap_data_.assign(data.begin(), data.end());
  }
  return a;
}

Result<CustomAddr> CustomAddr::parse(std::string_view text) {
  const auto bad = [&](std::string_view why) {
    return make_error("invalid custom address \"" + std::string(text) + "\": " + std::string(why));
  };
  const std::size_t sep = text.find('_');
  if (sep == std::string_view::npos) return bad("missing '_' separator (ID_DATA)");
  const std::string_view id_text = text.substr(0, sep);
  std::uint64_t id = 0;
  // Rust's u64::from_str_radix(_, 16): hex digits of either case, an optional leading '+'.
  std::string_view digits = id_text.starts_with('+') ? id_text.substr(1) : id_text;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id, 16);
  if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) {
    return bad("invalid transport id (hex u64)");
  }
  auto data = parse_hex_lower(text.substr(sep + 1));
  if (!data.ok()) return bad(data.error().message);
  return make(id, *data);
}

ByteView CustomAddr::data() const {
  if (storage_ == Storage::kHeap) return heap_data_;
  return ByteView(inline_data_).first(std::min<std::size_t>(inline_size_, kInlineCapacity));
}

std::string CustomAddr::to_string() const { return hex_u64(id_) + "_" + to_hex(data()); }

void CustomAddr::encode(Bytes& out) const {
  postcard::encode_varint(out, id_);
  postcard::encode_varint(out, static_cast<std::uint32_t>(storage_));
  if (storage_ == Storage::kInline) {
    out.push_back(inline_size_);
    append(out, inline_data_);
  } else {
    postcard::encode_bytes(out, heap_data_);
  }
}

Result<CustomAddr> CustomAddr::decode(postcard::Reader& in) {
  CustomAddr a;
  auto id = in.varint_u64();
  if (!id.ok()) return at("custom address id", id.error());
  a.id_ = *id;
  auto variant = in.varint_u32();
  if (!variant.ok()) return at("custom address data", variant.error());
  if (*variant == static_cast<std::uint32_t>(Storage::kInline)) {
    auto size = in.u8();
    if (!size.ok()) return at("custom address inline size", size.error());
    auto data = in.fixed(kInlineCapacity);
    if (!data.ok()) return at("custom address inline data", data.error());
    a.storage_ = Storage::kInline;
    a.inline_size_ = *size;
    std::copy(data->begin(), data->end(), a.inline_data_.begin());
  } else if (*variant == static_cast<std::uint32_t>(Storage::kHeap)) {
    auto data = in.bytes();
    if (!data.ok()) return at("custom address heap data", data.error());
    a.storage_ = Storage::kHeap;
    a.heap_data_.assign(data->begin(), data->end());
  } else {
    return make_error("unknown custom address data variant " + std::to_string(*variant));
  }
  return a;
}

std::string transport_addr_to_string(const TransportAddr& addr) {
  switch (addr.index()) {
    case kRelay:
      return "relay:" + std::get<RelayUrl>(addr).str();
    case kIp:
      return "ip:" + std::get<SocketAddr>(addr).to_string();
    default:
      return "custom:" + std::get<CustomAddr>(addr).to_string();
  }
}

std::vector<RelayUrl> EndpointAddr::relay_urls() const {
  std::vector<RelayUrl> out;
  for (const auto& a : addrs) {
    if (const auto* r = std::get_if<RelayUrl>(&a)) out.push_back(*r);
  }
  return out;
}

std::vector<SocketAddr> EndpointAddr::ip_addrs() const {
  std::vector<SocketAddr> out;
  for (const auto& a : addrs) {
    if (const auto* s = std::get_if<SocketAddr>(&a)) out.push_back(*s);
  }
  return out;
}

std::vector<CustomAddr> EndpointAddr::custom_addrs() const {
  std::vector<CustomAddr> out;
  for (const auto& a : addrs) {
    if (const auto* c = std::get_if<CustomAddr>(&a)) out.push_back(*c);
  }
  return out;
}

void encode_endpoint_addr(Bytes& out, const EndpointAddr& addr) {
  append(out, addr.id.bytes());
  postcard::encode_varint(out, addr.addrs.size());
  for (const auto& a : addr.addrs) {
    postcard::encode_varint(out, a.index());
    switch (a.index()) {
      case kRelay:
        postcard::encode_str(out, std::get<RelayUrl>(a).str());
        break;
      case kIp: {
        const auto& s = std::get<SocketAddr>(a);
        postcard::encode_varint(out, static_cast<std::uint32_t>(s.family()));
        append(out, s.ip());
        postcard::encode_varint(out, s.port());
        break;
      }
      default:
        std::get<CustomAddr>(a).encode(out);
        break;
    }
  }
}

Result<EndpointAddr> decode_endpoint_addr(postcard::Reader& in) {
  EndpointAddr addr;
  auto id_bytes = in.fixed(EndpointId::kSize);
  if (!id_bytes.ok()) return at("endpoint id", id_bytes.error());
  auto id = EndpointId::from_bytes(*id_bytes);
  if (!id.ok()) return id.error();
  addr.id = *id;

  auto count = in.varint_u64();
  if (!count.ok()) return at("address count", count.error());
  // Never trust the count for allocation: each element is read (and bounds-checked) in turn, so an
  // absurd count fails at the end of the data.
  for (std::uint64_t i = 0; i < *count; ++i) {
    const std::string where = "address " + std::to_string(i);
    auto variant = in.varint_u32();
    if (!variant.ok()) return at(where, variant.error());
    switch (*variant) {
      case kRelay: {
        auto text = in.str();
        if (!text.ok()) return at(where + " (relay URL)", text.error());
        auto url = RelayUrl::parse(*text);
        if (!url.ok()) return at(where, url.error());
        addr.addrs.insert(*url);
        break;
      }
      case kIp: {
        auto family = in.varint_u32();
        if (!family.ok()) return at(where + " (socket address)", family.error());
        if (*family > 1) {
          return make_error(where + ": unknown socket address variant " + std::to_string(*family));
        }
        const bool v4 = *family == 0;
        auto ip = in.fixed(v4 ? 4 : 16);
        if (!ip.ok()) return at(where + " (IP)", ip.error());
        auto port = in.varint_u16();
        if (!port.ok()) return at(where + " (port)", port.error());
        if (v4) {
          ByteArray<4> raw{};
          std::copy(ip->begin(), ip->end(), raw.begin());
          addr.addrs.insert(SocketAddr::v4(raw, *port));
        } else {
          ByteArray<16> raw{};
          std::copy(ip->begin(), ip->end(), raw.begin());
          addr.addrs.insert(SocketAddr::v6(raw, *port));
        }
        break;
      }
      case kCustom: {
        auto custom = CustomAddr::decode(in);
        if (!custom.ok()) return at(where, custom.error());
        addr.addrs.insert(std::move(*custom));
        break;
      }
      default:
        return make_error(where + ": unknown transport address variant " +
                          std::to_string(*variant));
    }
  }
  return addr;
}

}  // namespace iroh

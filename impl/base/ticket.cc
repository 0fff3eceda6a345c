#include "base/ticket.h"

#include "base/text_encoding.h"

namespace iroh {

Bytes encode_ticket_blob(const EndpointAddr& addr) {
  Bytes out;
  postcard::encode_varint(out, 0);  // TicketWireFormat::Variant1
  encode_endpoint_addr(out, addr);
  return out;
}

Result<EndpointAddr> decode_ticket_blob(ByteView blob) {
  postcard::Reader in(blob);
  auto variant = in.varint_u32();
  if (!variant.ok()) return make_error("ticket format: " + variant.error().message);
  if (*variant != 0) {
    return make_error("unknown ticket format variant " + std::to_string(*variant) +
                      " (only 0, Variant1, exists)");
  }
  return decode_endpoint_addr(in);
}

std::string encode_ticket(const EndpointAddr& addr) {
  return std::string(kEndpointTicketPrefix) +
         base32_encode(encode_ticket_blob(addr), Base32Alphabet::kRfc4648);
}

Result<EndpointAddr> decode_ticket(std::string_view ticket) {
  if (!ticket.starts_with(kEndpointTicketPrefix)) {
    return make_error("not an endpoint ticket: it must start with \"endpoint\"");
  }
  auto blob = base32_decode(ascii_upper(ticket.substr(kEndpointTicketPrefix.size())),
                            Base32Alphabet::kRfc4648);
  if (!blob.ok()) return make_error("ticket body: " + blob.error().message);
  auto addr = decode_ticket_blob(*blob);
  if (!addr.ok()) return make_error("ticket: " + addr.error().message);
  return addr;
}

}  // namespace iroh

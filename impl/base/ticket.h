// EndpointTicket: an EndpointAddr as a copy-pasteable string.   spec §2.3
//
//   "endpoint" + lowercase RFC 4648 base32 (no padding) of postcard(TicketWireFormat)
//   TicketWireFormat::Variant1 (varint 0) = EndpointAddr postcard form
//
// Decoding accepts what iroh-tickets 1.0 accepts: the body in any letter case, addresses in any
// order and duplicated, and bytes after the postcard value (postcard::from_bytes ignores them).
#pragma once

#include <string>
#include <string_view>

#include "base/bytes.h"
#include "base/endpoint_addr.h"
#include "base/result.h"

namespace iroh {

inline constexpr std::string_view kEndpointTicketPrefix = "endpoint";

// The postcard blob: 00 | id | addrs.
Bytes encode_ticket_blob(const EndpointAddr& addr);
Result<EndpointAddr> decode_ticket_blob(ByteView blob);

std::string encode_ticket(const EndpointAddr& addr);
Result<EndpointAddr> decode_ticket(std::string_view ticket);

}  // namespace iroh

// The host's interface addresses (getifaddrs), for hole-punch candidates (spec §5.2: "local
// interface addresses"). I/O, so it lives in the driver.
#pragma once

#include <vector>

#include "base/socket_addr.h"

namespace iroh::io {

// Candidate addresses for a socket bound to `bound`: the bound address itself if it is
// specific, else every up interface address of its family (IPv6 link-local excluded: it needs a
// scope the wire format cannot carry), each with the bound port. Loopback is included: peers on
// the same host punch through it, as iroh's do.
std::vector<SocketAddr> local_candidates(const SocketAddr& bound);

}  // namespace iroh::io

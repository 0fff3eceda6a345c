#include "io/local_addrs.h"

#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace iroh::io {

std::vector<SocketAddr> local_candidates(const SocketAddr& bound) {
  std::vector<SocketAddr> out;
  const auto ip = bound.ip();
  const bool unspecified = std::all_of(ip.begin(), ip.end(), [](std::uint8_t b) { return b == 0; });
  if (!unspecified) {
    out.push_back(bound);
    return out;
  }
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i; i = i->ifa_next) {
    if (!i->ifa_addr || !(i->ifa_flags & IFF_UP)) continue;
    if (bound.is_v4() && i->ifa_addr->sa_family == AF_INET) {
      const auto* sin = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
      ByteArray<4> a{};
      std::memcpy(a.data(), &sin->sin_addr, 4);
      out.push_back(SocketAddr::v4(a, bound.port()));
    } else if (!bound.is_v4() && i->ifa_addr->sa_family == AF_INET6) {
      const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(i->ifa_addr);
      if (IN6_IS_ADDR_LINKLOCAL(&sin6->sin6_addr)) continue;
      ByteArray<16> a{};
      std::memcpy(a.data(), &sin6->sin6_addr, 16);
      out.push_back(SocketAddr::v6(a, bound.port()));
    }
  }
  freeifaddrs(list);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

}  // namespace iroh::io

#include "base/random.h"

#include <sodium.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace iroh {

std::uint64_t Random::next_u64() {
  std::uint8_t b[8];
  fill(b);
  std::uint64_t v = 0;
  std::memcpy(&v, b, 8);
  return v;
}

std::uint64_t Random::uniform(std::uint64_t bound) {
  if (bound <= 1) return 0;
  // Rejection sampling: discard the top partial bucket.
  const std::uint64_t limit = UINT64_MAX - (UINT64_MAX % bound);
  for (;;) {
    const std::uint64_t v = next_u64();
    if (v < limit) return v % bound;
  }
}

double Random::unit() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

void SystemRandom::fill(std::span<std::uint8_t> out) {
  if (sodium_init() < 0) std::abort();  // cannot happen after the first successful call
  randombytes_buf(out.data(), out.size());
}

namespace {
std::uint64_t splitmix64(std::uint64_t& x) {
  std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}
std::uint64_t rotl(std::uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
}  // namespace

SeededRandom::SeededRandom(std::uint64_t seed) {
  for (auto& s : s_) s = splitmix64(seed);
}

std::uint64_t SeededRandom::next() {
  const std::uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const std::uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

void SeededRandom::fill(std::span<std::uint8_t> out) {
  std::size_t i = 0;
  while (i < out.size()) {
    const std::uint64_t v = next();
    const std::size_t n = std::min<std::size_t>(8, out.size() - i);
    std::memcpy(out.data() + i, &v, n);
    i += n;
  }
}

}  // namespace iroh

// Randomness for sans-IO protocol code.
//
// Protocol code takes a Random& and never calls a global RNG, so that simulations and fuzzers are
// reproducible from a seed. Drivers pass SystemRandom (libsodium's CSPRNG); tests and simulators
// pass SeededRandom. Connection IDs, stateless-reset tokens and PATH_CHALLENGE data are the
// protocol's uses; only SystemRandom is suitable outside tests.
#pragma once

#include <cstdint>
#include <span>

#include "base/bytes.h"

namespace iroh {

class Random {
 public:
  virtual ~Random() = default;
  virtual void fill(std::span<std::uint8_t> out) = 0;

  std::uint64_t next_u64();
  // Uniform in [0, bound) (bound > 0), without modulo bias.
  std::uint64_t uniform(std::uint64_t bound);
  // Uniform in [0, 1).
  double unit();
  template <std::size_t N>
  ByteArray<N> array() {
    ByteArray<N> a{};
    fill(a);
    return a;
  }
};

// libsodium's randombytes_buf (the OS CSPRNG).
class SystemRandom final : public Random {
 public:
  void fill(std::span<std::uint8_t> out) override;
};

// xoshiro256** seeded through splitmix64: fast, deterministic, NOT cryptographic.
class SeededRandom final : public Random {
 public:
  explicit SeededRandom(std::uint64_t seed);
  void fill(std::span<std::uint8_t> out) override;
  std::uint64_t next();

 private:
  std::uint64_t s_[4];
};

}  // namespace iroh

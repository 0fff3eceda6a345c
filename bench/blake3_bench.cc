// Throughput of our portable BLAKE3 against OpenSSL's SHA-256 in the same run, so the ratio can be
// read off directly regardless of the machine (OpenSSL's SHA-256 uses SHA-NI/assembly where
// available, so it is a demanding baseline for scalar code).
#include <benchmark/benchmark.h>
#include <openssl/evp.h>

#include <cstdint>

#include "base/blake3.h"

namespace {

iroh::Bytes make_input(std::size_t len) {
  iroh::Bytes in(len);
  for (std::size_t i = 0; i < len; ++i) in[i] = static_cast<std::uint8_t>(i % 251);
  return in;
}

void BM_Blake3Hash(benchmark::State& state) {
  const iroh::Bytes input = make_input(static_cast<std::size_t>(state.range(0)));
  for (auto _ : state) {
    auto digest = iroh::blake3::hash(input);
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

void BM_OpenSslSha256(benchmark::State& state) {
  const iroh::Bytes input = make_input(static_cast<std::size_t>(state.range(0)));
  const EVP_MD* sha256 = EVP_sha256();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  for (auto _ : state) {
    if (EVP_Digest(input.data(), input.size(), digest, &digest_len, sha256, nullptr) != 1) {
      state.SkipWithError("EVP_Digest failed");
      break;
    }
    benchmark::DoNotOptimize(digest);
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations()) * state.range(0));
}

// 64 B: one compression; 1 KiB: one chunk; 64 KiB and 1 MiB: tree hashing.
BENCHMARK(BM_Blake3Hash)->Arg(64)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);
BENCHMARK(BM_OpenSslSha256)->Arg(64)->Arg(1 << 10)->Arg(64 << 10)->Arg(1 << 20);

}  // namespace

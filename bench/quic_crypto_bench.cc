// QUIC packet protection throughput: seal + header protection (the send path) and header
// protection removal + open (the receive path) of full-size 1-RTT packets, per AEAD.
//
// Packets are built in place the way the engine will: a short header (8-byte DCID, 2-byte packet
// number) followed by the payload, sealed with quic::seal_packet(). Sizes are whole UDP payloads
// including the 16-byte tag: 1200 (QUIC's minimum / iroh's initial MTU) and 1452 (iroh's MTU
// discovery ceiling). items/s = packets/s; bytes/s counts the whole packet.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstring>

#include "crypto/packet_protection.h"
#include "quic/packet.h"

namespace {

using iroh::Bytes;
using iroh::crypto::AeadAlgorithm;
using iroh::crypto::PacketProtection;

constexpr std::size_t kDcidLength = 8;
constexpr std::size_t kPnOffset = 1 + kDcidLength;
constexpr std::size_t kPnLength = 2;
constexpr std::size_t kHeaderLength = kPnOffset + kPnLength;

PacketProtection make_keys(AeadAlgorithm alg) {
  const Bytes secret(iroh::crypto::hash_length(iroh::crypto::aead_hash(alg)), 0x42);
  auto keys = PacketProtection::from_secret(alg, secret, iroh::crypto::EncryptionLevel::kOneRtt);
  if (!keys) __builtin_trap();
  return std::move(*keys);
}

// Writes an unprotected short header for packet number `pn` at the front of `buf`.
void write_header(Bytes& buf, std::uint64_t pn) {
  buf[0] = 0x40 | (kPnLength - 1);  // fixed bit, 2-byte packet number
  std::memset(buf.data() + 1, 0xab, kDcidLength);
  buf[kPnOffset] = static_cast<std::uint8_t>(pn >> 8);
  buf[kPnOffset + 1] = static_cast<std::uint8_t>(pn);
}

void BM_SealPacket(benchmark::State& state, AeadAlgorithm alg) {
  const auto packet_size = static_cast<std::size_t>(state.range(0));
  const std::size_t payload = packet_size - kHeaderLength - iroh::crypto::kAeadTagLength;
  PacketProtection keys = make_keys(alg);
  Bytes buf(packet_size, 0x5a);
  std::uint64_t pn = 0;
  for (auto _ : state) {
    write_header(buf, pn);
    auto n = iroh::quic::seal_packet(buf, kPnOffset, pn, payload, keys);
    if (!n) {
      state.SkipWithError(n.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(buf.data());
    ++pn;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * packet_size));
}

void BM_OpenPacket(benchmark::State& state, AeadAlgorithm alg) {
  const auto packet_size = static_cast<std::size_t>(state.range(0));
  const std::size_t payload = packet_size - kHeaderLength - iroh::crypto::kAeadTagLength;
  PacketProtection keys = make_keys(alg);
  Bytes sealed(packet_size, 0x5a);
  write_header(sealed, 1);
  if (!iroh::quic::seal_packet(sealed, kPnOffset, 1, payload, keys)) __builtin_trap();
  Bytes work(packet_size);
  for (auto _ : state) {
    std::memcpy(work.data(), sealed.data(), packet_size);  // opening is destructive
    auto opened = iroh::quic::unprotect_packet(work, kDcidLength, 0, keys);
    if (!opened) {
      state.SkipWithError(opened.error().message.c_str());
      break;
    }
    benchmark::DoNotOptimize(opened->payload.data());
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * packet_size));
}

BENCHMARK_CAPTURE(BM_SealPacket, aes128gcm, AeadAlgorithm::kAes128Gcm)->Arg(1200)->Arg(1452);
BENCHMARK_CAPTURE(BM_SealPacket, chacha20poly1305, AeadAlgorithm::kChaCha20Poly1305)
    ->Arg(1200)
    ->Arg(1452);
BENCHMARK_CAPTURE(BM_SealPacket, aes256gcm, AeadAlgorithm::kAes256Gcm)->Arg(1452);
BENCHMARK_CAPTURE(BM_OpenPacket, aes128gcm, AeadAlgorithm::kAes128Gcm)->Arg(1200)->Arg(1452);
BENCHMARK_CAPTURE(BM_OpenPacket, chacha20poly1305, AeadAlgorithm::kChaCha20Poly1305)
    ->Arg(1200)
    ->Arg(1452);

}  // namespace

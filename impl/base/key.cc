#include "base/key.h"

#include <sodium.h>

#include <array>
#include <cstdint>

#include "base/text_encoding.h"

namespace iroh {
namespace {

// libsodium selects implementations at init time; sodium_init is idempotent and thread-safe.
void ensure_sodium() {
  static const bool ready = sodium_init() >= 0;
  (void)ready;
}

// ---- Minimal arithmetic modulo p = 2^255 - 19, only what the point check needs. ----
// Four little-endian 64-bit limbs. Speed is irrelevant here (one exponentiation per parsed key).
using U256 = std::array<std::uint64_t, 4>;
__extension__ typedef unsigned __int128 U128;  // GCC/Clang builtin, exact for 64x64

constexpr U256 kP = {0xffffffffffffffedULL, 0xffffffffffffffffULL, 0xffffffffffffffffULL,
                     0x7fffffffffffffffULL};
// Edwards d = -121665/121666 mod p.
constexpr U256 kD = {0x75eb4dca135978a3ULL, 0x00700a4d4141d8abULL, 0x8cc740797779e898ULL,
                     0x52036cee2b6ffe73ULL};
constexpr U256 kOne = {1, 0, 0, 0};

bool geq(const U256& a, const U256& b) {
  for (int i = 3; i >= 0; --i) {
    if (a[i] != b[i]) return a[i] > b[i];
  }
  return true;
}

U256 sub_raw(const U256& a, const U256& b) {
  U256 r{};
  std::uint64_t borrow = 0;
  for (int i = 0; i < 4; ++i) {
    const U128 t = static_cast<U128>(a[i]) - b[i] - borrow;
    r[i] = static_cast<std::uint64_t>(t);
    borrow = (t >> 64) != 0 ? 1 : 0;
  }
  return r;
}

U256 canonical(U256 a) {
  while (geq(a, kP)) a = sub_raw(a, kP);
  return a;
}

U256 add_mod(const U256& a, const U256& b) {  // a, b < p, so a + b < 2^256
  U256 r{};
  U128 carry = 0;
  for (int i = 0; i < 4; ++i) {
    carry += static_cast<U128>(a[i]) + b[i];
    r[i] = static_cast<std::uint64_t>(carry);
    carry >>= 64;
  }
  return canonical(r);
}

U256 sub_mod(const U256& a, const U256& b) {  // a, b < p
  return geq(a, b) ? sub_raw(a, b) : sub_raw(kP, sub_raw(b, a));
}

// Adds `small` * 2^0 into r, folding any carry out of 2^256 back in as 38 (2^256 = 38 mod p).
void add_small_folding(U256& r, U128 small) {
  while (small != 0) {
    U128 carry = small;
    for (int i = 0; i < 4; ++i) {
      carry += r[i];
      r[i] = static_cast<std::uint64_t>(carry);
      carry >>= 64;
    }
    small = carry * 38;
  }
}

U256 mul_mod(const U256& a, const U256& b) {
  std::uint64_t wide[8] = {};
  for (int i = 0; i < 4; ++i) {
    U128 carry = 0;
    for (int j = 0; j < 4; ++j) {
      const U128 t = static_cast<U128>(a[i]) * b[j] + wide[i + j] + carry;
      wide[i + j] = static_cast<std::uint64_t>(t);
      carry = t >> 64;
    }
    wide[i + 4] = static_cast<std::uint64_t>(carry);
  }
  // low + 38 * high, since 2^256 = 38 (mod p).
  U256 r{};
  U128 carry = 0;
  for (int i = 0; i < 4; ++i) {
    carry += static_cast<U128>(wide[i]) + static_cast<U128>(wide[i + 4]) * 38;
    r[i] = static_cast<std::uint64_t>(carry);
    carry >>= 64;
  }
  add_small_folding(r, carry * 38);
  return canonical(r);
}

U256 square_n(U256 x, int n) {
  for (int i = 0; i < n; ++i) x = mul_mod(x, x);
  return x;
}

// z^((p-1)/2) = z^(2^254 - 10) by the usual curve25519 addition chain to z^(2^250 - 1): 254
// squarings and 13 multiplications instead of ~510 multiplications for plain square-and-multiply.
// This runs for every id a peer sends (relay frames carry one per datagram), so it is a hot path.
U256 euler_criterion_power(const U256& z) {
  const U256 z2 = mul_mod(z, z);
  const U256 z9 = mul_mod(square_n(z2, 2), z);
  const U256 z11 = mul_mod(z9, z2);
  const U256 z_5_0 = mul_mod(mul_mod(z11, z11), z9);              // 2^5 - 1
  const U256 z_10_0 = mul_mod(square_n(z_5_0, 5), z_5_0);         // 2^10 - 1
  const U256 z_20_0 = mul_mod(square_n(z_10_0, 10), z_10_0);      // 2^20 - 1
  const U256 z_40_0 = mul_mod(square_n(z_20_0, 20), z_20_0);      // 2^40 - 1
  const U256 z_50_0 = mul_mod(square_n(z_40_0, 10), z_10_0);      // 2^50 - 1
  const U256 z_100_0 = mul_mod(square_n(z_50_0, 50), z_50_0);     // 2^100 - 1
  const U256 z_200_0 = mul_mod(square_n(z_100_0, 100), z_100_0);  // 2^200 - 1
  const U256 z_250_0 = mul_mod(square_n(z_200_0, 50), z_50_0);    // 2^250 - 1
  const U256 z6 = mul_mod(z2, mul_mod(z2, z2));
  return mul_mod(square_n(z_250_0, 4), z6);  // 2^254 - 16 + 6
}

Result<ByteArray<32>> parse_32_bytes(std::string_view text, std::string_view what) {
  // Rust's rule (iroh-base key.rs): exactly 64 chars → lowercase hex; anything else → upper-case
  // it and decode RFC 4648 base32 without padding.
  Result<Bytes> decoded = text.size() == 64
                              ? parse_hex_lower(text)
                              : base32_decode(ascii_upper(text), Base32Alphabet::kRfc4648);
  if (!decoded.ok()) {
    return make_error("invalid " + std::string(what) + ": " + decoded.error().message);
  }
  if (decoded->size() != 32) {
    return make_error("invalid " + std::string(what) + ": decodes to " +
                      std::to_string(decoded->size()) + " bytes, expected 32");
  }
  ByteArray<32> out{};
  std::copy(decoded->begin(), decoded->end(), out.begin());
  return out;
}

}  // namespace

bool is_edwards25519_point(const ByteArray<32>& bytes) {
  // Mirror curve25519-dalek's decompression: y is read mod p with the sign bit masked off (so
  // non-canonical y >= p is reduced, not rejected), and the point exists iff
  // x^2 = (y^2 - 1) / (d y^2 + 1) has a solution. d y^2 + 1 is never 0 (-1/d is a non-square), so
  // solvability is Euler's criterion on u * v. The sign bit is not checked against x = 0, as in
  // dalek.
  U256 y{};
  for (int i = 0; i < 32; ++i) {
    y[i / 8] |= static_cast<std::uint64_t>(bytes[i]) << (8 * (i % 8));
  }
  y[3] &= 0x7fffffffffffffffULL;
  y = canonical(y);
  const U256 yy = mul_mod(y, y);
  const U256 u = sub_mod(yy, kOne);
  const U256 v = add_mod(mul_mod(kD, yy), kOne);
  const U256 w = mul_mod(u, v);
  if (w == U256{}) return true;  // u = 0: x = 0 (y = ±1)
  return euler_criterion_power(w) == kOne;
}

Result<EndpointId> EndpointId::from_bytes(ByteView bytes) {
  if (bytes.size() != kSize) {
    return make_error("endpoint id must be 32 bytes, got " + std::to_string(bytes.size()));
  }
  ByteArray<kSize> raw{};
  std::copy(bytes.begin(), bytes.end(), raw.begin());
  // The point check costs ~14 µs and a relay runs it for every datagram's destination id: keep a
  // small direct-mapped memo of ids that passed (a pure function's cache: same answers, per
  // thread, no locking). Failures are not cached.
  struct Slot {
    ByteArray<kSize> id;
    bool valid = false;
  };
  thread_local std::array<Slot, 1024> memo{};
  std::uint32_t h = 2166136261u;  // FNV-1a over a few bytes: ids are uniformly random
  for (std::size_t i = 0; i < 8; ++i) h = (h ^ raw[i]) * 16777619u;
  Slot& slot = memo[h % memo.size()];
  if (slot.valid && slot.id == raw) return EndpointId(raw);
  if (!is_edwards25519_point(raw)) {
    return make_error("endpoint id " + iroh::to_hex(raw) +
                      " is not a valid ed25519 public key (not a curve point)");
  }
  slot.id = raw;
  slot.valid = true;
  return EndpointId(raw);
}

Result<EndpointId> EndpointId::parse(std::string_view text) {
  auto raw = parse_32_bytes(text, "endpoint id");
  if (!raw.ok()) return raw.error();
  return from_bytes(*raw);
}

std::string EndpointId::to_hex() const { return iroh::to_hex(bytes_); }
std::string EndpointId::to_base32() const {
  return base32_encode(bytes_, Base32Alphabet::kRfc4648);
}
std::string EndpointId::to_z32() const { return base32_encode(bytes_, Base32Alphabet::kZBase32); }
std::string EndpointId::to_tls_name() const {
  return base32_encode(bytes_, Base32Alphabet::kBase32Hex) + ".iroh.invalid";
}
std::string EndpointId::fmt_short() const { return iroh::to_hex(ByteView(bytes_).first(5)); }

bool EndpointId::verify(ByteView message, const Signature& signature) const {
  ensure_sodium();
  // libsodium's verifier is strict: it rejects a non-canonical S, small-order R and A, and a
  // non-canonical A, which is what dalek's verify_strict demands of honest signatures.
  return crypto_sign_verify_detached(signature.data(), message.data(), message.size(),
                                     bytes_.data()) == 0;
}

SecretKey SecretKey::from_seed(const ByteArray<kSize>& seed) {
  ensure_sodium();
  ByteArray<crypto_sign_PUBLICKEYBYTES> pk{};
  ByteArray<crypto_sign_SECRETKEYBYTES> expanded{};
  crypto_sign_seed_keypair(pk.data(), expanded.data(), seed.data());
  sodium_memzero(expanded.data(), expanded.size());
  return SecretKey(seed, EndpointId(pk));
}

Result<SecretKey> SecretKey::from_bytes(ByteView bytes) {
  if (bytes.size() != kSize) {
    return make_error("secret key must be 32 bytes, got " + std::to_string(bytes.size()));
  }
  ByteArray<kSize> seed{};
  std::copy(bytes.begin(), bytes.end(), seed.begin());
  return from_seed(seed);
}

Result<SecretKey> SecretKey::parse(std::string_view text) {
  auto raw = parse_32_bytes(text, "secret key");
  if (!raw.ok()) return raw.error();
  return from_seed(*raw);
}

std::string SecretKey::to_hex() const { return iroh::to_hex(seed_); }

Signature SecretKey::sign(ByteView message) const {
  ensure_sodium();
  ByteArray<crypto_sign_PUBLICKEYBYTES> pk{};
  ByteArray<crypto_sign_SECRETKEYBYTES> expanded{};
  crypto_sign_seed_keypair(pk.data(), expanded.data(), seed_.data());
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), expanded.data());
  sodium_memzero(expanded.data(), expanded.size());
  return sig;
}

}  // namespace iroh

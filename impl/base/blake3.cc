// BLAKE3, portable scalar implementation. Section numbers refer to the BLAKE3 paper (see blake3.h).
#include "base/blake3.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

namespace iroh::blake3 {
namespace {

using Words = std::array<std::uint32_t, 8>;
using BlockWords = std::array<std::uint32_t, 16>;

// Domain-separation flags (§2.2, Table 3). They go into the last state word so that chunks,
// parents, the root and the three modes can never produce colliding compression inputs.
constexpr std::uint32_t kChunkStart = 1u << 0;
constexpr std::uint32_t kChunkEnd = 1u << 1;
constexpr std::uint32_t kParent = 1u << 2;
constexpr std::uint32_t kRoot = 1u << 3;
constexpr std::uint32_t kKeyedHash = 1u << 4;
constexpr std::uint32_t kDeriveKeyContext = 1u << 5;
constexpr std::uint32_t kDeriveKeyMaterial = 1u << 6;

// Same constants as SHA-256's initial hash value (§2.2, Table 1).
constexpr Words kIv = {0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
                       0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19};

constexpr int kRounds = 7;

// §2.2, Table 2: the message words are permuted between rounds.
constexpr std::array<std::uint8_t, 16> kPermutation = {2, 6,  3,  10, 7, 0,  4,  13,
                                                       1, 11, 12, 5,  9, 14, 15, 8};

// Permuting the message between rounds is equivalent to reading the original message through a
// per-round index table; precomputing the table saves the 6 x 16 word shuffles per compression and
// lets the compiler turn every message access into a constant-offset load.
constexpr auto kSchedule = [] {
  std::array<std::array<std::uint8_t, 16>, kRounds> s{};
  for (std::uint8_t i = 0; i < 16; ++i) s[0][i] = i;
  for (int r = 1; r < kRounds; ++r) {
    for (int i = 0; i < 16; ++i) s[r][i] = s[r - 1][kPermutation[i]];
  }
  return s;
}();

// Byte-wise assembly keeps the code endian-independent; GCC and Clang fold it into a single load
// (plus a byte swap on big-endian targets).
inline std::uint32_t load_le32(const std::uint8_t* p) {
  return std::uint32_t{p[0]} | std::uint32_t{p[1]} << 8 | std::uint32_t{p[2]} << 16 |
         std::uint32_t{p[3]} << 24;
}

inline void store_le32(std::uint8_t* p, std::uint32_t w) {
  p[0] = static_cast<std::uint8_t>(w);
  p[1] = static_cast<std::uint8_t>(w >> 8);
  p[2] = static_cast<std::uint8_t>(w >> 16);
  p[3] = static_cast<std::uint8_t>(w >> 24);
}

inline BlockWords load_block(const std::uint8_t* p) {
  BlockWords m;
  for (std::size_t i = 0; i < 16; ++i) m[i] = load_le32(p + 4 * i);
  return m;
}

inline Words load_key(const std::uint8_t* p) {
  Words k;
  for (std::size_t i = 0; i < 8; ++i) k[i] = load_le32(p + 4 * i);
  return k;
}

// The quarter-round G (§2.2). Rotation amounts 16, 12, 8, 7 are inherited from BLAKE2s.
inline void g(std::uint32_t* v, int a, int b, int c, int d, std::uint32_t mx, std::uint32_t my) {
  v[a] = v[a] + v[b] + mx;
  v[d] = std::rotr(v[d] ^ v[a], 16);
  v[c] = v[c] + v[d];
  v[b] = std::rotr(v[b] ^ v[c], 12);
  v[a] = v[a] + v[b] + my;
  v[d] = std::rotr(v[d] ^ v[a], 8);
  v[c] = v[c] + v[d];
  v[b] = std::rotr(v[b] ^ v[c], 7);
}

template <int R>
inline void round(std::uint32_t* v, const BlockWords& m) {
  constexpr const auto& s = kSchedule[R];
  // Columns, then diagonals: after two half-rounds every state word has touched every other.
  g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
  g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
  g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
  g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
  g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
  g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
  g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
  g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

// Runs the seven rounds; `v` receives the state before the feed-forward. The rounds are expanded
// at compile time so each one reads the message at constant indices and `v` can stay in registers.
template <int... R>
inline void permute_state(std::uint32_t* v, const BlockWords& m, std::integer_sequence<int, R...>) {
  (round<R>(v, m), ...);
}

// Returns the state after the seven rounds, before the feed-forward. The state is a local returned
// by value (not an out-parameter) so the compiler can keep it in registers across all rounds.
inline BlockWords compress_core(const Words& cv, const BlockWords& m, std::uint64_t counter,
                                std::uint32_t block_len, std::uint32_t flags) {
  // Layout per §2.2: chaining value, IV prefix, 64-bit counter (low word first), length, flags.
  const auto counter_lo = static_cast<std::uint32_t>(counter);
  const auto counter_hi = static_cast<std::uint32_t>(counter >> 32);
  std::uint32_t v[16] = {cv[0],  cv[1],  cv[2],  cv[3],  cv[4],      cv[5],      cv[6],     cv[7],
                         kIv[0], kIv[1], kIv[2], kIv[3], counter_lo, counter_hi, block_len, flags};
  permute_state(v, m, std::make_integer_sequence<int, kRounds>{});
  BlockWords out;
  for (int i = 0; i < 16; ++i) out[i] = v[i];
  return out;
}

// Truncated output: the next chaining value (§2.2, first half of the feed-forward).
inline Words compress_cv(const Words& cv, const BlockWords& m, std::uint64_t counter,
                         std::uint32_t block_len, std::uint32_t flags) {
  const BlockWords v = compress_core(cv, m, counter, block_len, flags);
  Words out;
  for (int i = 0; i < 8; ++i) out[i] = v[i] ^ v[i + 8];
  return out;
}

// Full 64-byte output, needed only for root blocks of the XOF (§2.6): the second half is fed
// forward with the input chaining value so it is not invertible either.
inline BlockWords compress_xof(const Words& cv, const BlockWords& m, std::uint64_t counter,
                               std::uint32_t block_len, std::uint32_t flags) {
  const BlockWords v = compress_core(cv, m, counter, block_len, flags);
  BlockWords out;
  for (int i = 0; i < 8; ++i) {
    out[i] = v[i] ^ v[i + 8];
    out[i + 8] = v[i + 8] ^ cv[i];
  }
  return out;
}

}  // namespace

// A node whose final compression has been deferred. Deferral is what lets the very last node be
// compressed with ROOT (and with any output counter) without knowing in advance that the input
// has ended.
struct Hasher::Output {
  Words input_cv;
  BlockWords block;
  std::uint64_t counter;
  std::uint32_t block_len;
  std::uint32_t flags;

  Words chaining_value() const { return compress_cv(input_cv, block, counter, block_len, flags); }
};

Hasher::Hasher() : Hasher(kIv, 0) {}

Hasher::Hasher(const Words& key_words, std::uint32_t flags) : key_words_(key_words), flags_(flags) {
  start_chunk(0);
}

Hasher Hasher::keyed(const ByteArray<kKeyLen>& key) {
  return Hasher(load_key(key.data()), kKeyedHash);
}

Hasher Hasher::derive_key(std::string_view context) {
  // §2.3: the context string is hashed on its own to a context key, which then keys the hashing of
  // the key material. The distinct flags keep the two stages separate from each other and from
  // the other modes.
  Hasher context_hasher(kIv, kDeriveKeyContext);
  context_hasher.update(as_bytes(context));
  const ByteArray<kOutLen> context_key = context_hasher.finalize();
  return Hasher(load_key(context_key.data()), kDeriveKeyMaterial);
}

void Hasher::start_chunk(std::uint64_t counter) {
  chunk_ = ChunkState{};
  chunk_.cv = key_words_;
  chunk_.counter = counter;
}

void Hasher::compress_chunk_block(const std::uint8_t* block) {
  const std::uint32_t flags = flags_ | (chunk_.blocks_compressed == 0 ? kChunkStart : 0);
  chunk_.cv = compress_cv(chunk_.cv, load_block(block), chunk_.counter, kBlockLen, flags);
  ++chunk_.blocks_compressed;
}

void Hasher::absorb_into_chunk(ByteView data) {
  // Callers never pass more than fits into the current chunk.
  while (!data.empty()) {
    if (chunk_.block_len == kBlockLen) {
      // More bytes follow, so the buffered block is not the chunk's last and needs no CHUNK_END.
      compress_chunk_block(chunk_.block.data());
      chunk_.block_len = 0;
    }
    // Compress whole blocks straight from the caller's buffer, skipping the copy. The final block
    // stays buffered: it may turn out to end the chunk, or even be the root.
    while (chunk_.block_len == 0 && data.size() > kBlockLen) {
      compress_chunk_block(data.data());
      data = data.subspan(kBlockLen);
    }
    const std::size_t take = std::min(kBlockLen - chunk_.block_len, data.size());
    std::memcpy(chunk_.block.data() + chunk_.block_len, data.data(), take);
    chunk_.block_len = static_cast<std::uint8_t>(chunk_.block_len + take);
    data = data.subspan(take);
  }
}

Hasher::Output Hasher::chunk_output() const {
  // §2.4: the last block of a chunk is zero-padded and its true length goes into the state.
  std::array<std::uint8_t, kBlockLen> last{};
  std::memcpy(last.data(), chunk_.block.data(), chunk_.block_len);
  std::uint32_t flags = flags_ | kChunkEnd;
  if (chunk_.blocks_compressed == 0) flags |= kChunkStart;
  return Output{chunk_.cv, load_block(last.data()), chunk_.counter, chunk_.block_len, flags};
}

// §2.5: a parent compresses the concatenated child CVs as one full block, keyed like the chunks,
// with counter 0.
Hasher::Output Hasher::parent_output(const Words& left, const Words& right) const {
  BlockWords block;
  std::copy(left.begin(), left.end(), block.begin());
  std::copy(right.begin(), right.end(), block.begin() + 8);
  return Output{key_words_, block, 0, kBlockLen, flags_ | kParent};
}

void Hasher::push_chunk_cv(Words cv, std::uint64_t total_chunks) {
  // §5.1.2: the tree's left subtrees are complete powers of two, so each trailing zero bit of the
  // chunk count marks a subtree that just became complete; its left sibling is on top of the
  // stack. Merging eagerly is safe because the caller only pushes when more input follows, so none
  // of these parents can be the root.
  while ((total_chunks & 1) == 0) {
    cv = parent_output(cv_stack_[--cv_stack_len_], cv).chaining_value();
    total_chunks >>= 1;
  }
  cv_stack_[cv_stack_len_++] = cv;
}

Hasher& Hasher::update(ByteView data) {
  while (!data.empty()) {
    if (chunk_.len() == kChunkLen) {
      // Input continues past a full chunk, so that chunk is not the root: finish it now.
      const Words cv = chunk_output().chaining_value();
      const std::uint64_t total_chunks = chunk_.counter + 1;
      push_chunk_cv(cv, total_chunks);
      start_chunk(total_chunks);
    }
    const std::size_t take = std::min(kChunkLen - chunk_.len(), data.size());
    absorb_into_chunk(data.first(take));
    data = data.subspan(take);
  }
  return *this;
}

Hasher::Output Hasher::root_output() const {
  // The stack holds the left siblings along the right edge of the tree; folding them in from the
  // top yields the root node (the current chunk itself if nothing is stacked).
  Output out = chunk_output();
  for (std::size_t i = cv_stack_len_; i-- > 0;) {
    out = parent_output(cv_stack_[i], out.chaining_value());
  }
  return out;
}

ByteArray<kOutLen> Hasher::finalize() const {
  ByteArray<kOutLen> out;
  finalize_xof(out);
  return out;
}

void Hasher::finalize_xof(std::span<std::uint8_t> out, std::uint64_t seek) const {
  // §2.6: output block i is the root compression with counter i, so any offset is reachable
  // without producing the bytes before it.
  const Output root = root_output();
  std::uint64_t counter = seek / kBlockLen;
  std::size_t offset = static_cast<std::size_t>(seek % kBlockLen);
  while (!out.empty()) {
    const BlockWords words =
        compress_xof(root.input_cv, root.block, counter, root.block_len, root.flags | kRoot);
    std::uint8_t bytes[kBlockLen];
    for (std::size_t i = 0; i < 16; ++i) store_le32(bytes + 4 * i, words[i]);
    const std::size_t take = std::min(kBlockLen - offset, out.size());
    std::memcpy(out.data(), bytes + offset, take);
    out = out.subspan(take);
    offset = 0;
    ++counter;
  }
}

void Hasher::reset() {
  start_chunk(0);
  cv_stack_len_ = 0;
}

ByteArray<kOutLen> hash(ByteView data) { return Hasher().update(data).finalize(); }

ByteArray<kOutLen> keyed_hash(const ByteArray<kKeyLen>& key, ByteView data) {
  return Hasher::keyed(key).update(data).finalize();
}

ByteArray<kOutLen> derive_key(std::string_view context, ByteView key_material) {
  return Hasher::derive_key(context).update(key_material).finalize();
}

}  // namespace iroh::blake3

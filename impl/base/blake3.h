// BLAKE3 hash function, keyed hash (MAC/PRF), key derivation and extendable output.
//
// Written from the BLAKE3 specification paper (O'Connor, Aumasson, Neves, Wilcox-O'Hearn,
// "BLAKE3: one function, fast everywhere", 2020):
//   §2.1 tree structure (1 KiB chunks, binary tree of parents, left subtrees are full powers of 2)
//   §2.2 compression function (7 rounds, message permutation of Table 2, domain flags of Table 3)
//   §2.3 modes: hash / keyed_hash / derive_key (the context string is hashed first)
//   §2.4 chunk chaining values, §2.5 parent node chaining values
//   §2.6 extendable output (root node recompressed with an incrementing output counter)
//   §5.1 incremental hashing with a chunk state plus a chaining-value stack
//
// iroh uses BLAKE3 for content addressing (iroh-blobs) and for the relay handshake, where
// derive_key binds a TLS exporter secret to a protocol-specific context. This implementation is
// portable scalar C++: one chunk at a time, no SIMD, no threads. It has no global mutable state and
// a Hasher is a plain value type (copy it to fork a running hash).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/bytes.h"

namespace iroh::blake3 {

inline constexpr std::size_t kOutLen = 32, kKeyLen = 32, kBlockLen = 64, kChunkLen = 1024;

class Hasher {
 public:
  Hasher();  // hash mode
  static Hasher keyed(const ByteArray<kKeyLen>& key);
  // The context string should be a hardcoded, globally unique, application-specific constant.
  static Hasher derive_key(std::string_view context);

  // Any split of the input across calls yields the same result.
  Hasher& update(ByteView data);
  // Does not consume the state: more input may follow, and finalize may be called again.
  ByteArray<kOutLen> finalize() const;
  // Writes out.size() bytes of the output stream starting at byte offset `seek`. The first kOutLen
  // bytes at seek 0 equal finalize().
  void finalize_xof(std::span<std::uint8_t> out, std::uint64_t seek = 0) const;
  // Back to the empty input, keeping the mode and key.
  void reset();

 private:
  // Tree height bound: inputs are < 2^64 bytes, i.e. < 2^54 chunks, so at most 54 pending subtrees.
  static constexpr std::size_t kMaxDepth = 54;
  using Words = std::array<std::uint32_t, 8>;

  Hasher(const Words& key_words, std::uint32_t flags);

  // Everything about the chunk currently being absorbed (§5.1.1).
  struct ChunkState {
    Words cv{};
    std::uint64_t counter = 0;  // index of this chunk within the input
    std::array<std::uint8_t, kBlockLen> block{};
    std::uint8_t block_len = 0;
    std::uint8_t blocks_compressed = 0;

    std::size_t len() const { return std::size_t{blocks_compressed} * kBlockLen + block_len; }
  };

  struct Output;  // a node whose compression is still pending (defined in blake3.cc)

  void start_chunk(std::uint64_t counter);
  void absorb_into_chunk(ByteView data);
  void compress_chunk_block(const std::uint8_t* block);
  Output chunk_output() const;
  Output parent_output(const Words& left, const Words& right) const;
  Output root_output() const;
  void push_chunk_cv(Words cv, std::uint64_t total_chunks);

  Words key_words_;
  std::uint32_t flags_;
  ChunkState chunk_;
  std::array<Words, kMaxDepth> cv_stack_{};
  std::uint8_t cv_stack_len_ = 0;
};

ByteArray<kOutLen> hash(ByteView data);
ByteArray<kOutLen> keyed_hash(const ByteArray<kKeyLen>& key, ByteView data);
ByteArray<kOutLen> derive_key(std::string_view context, ByteView key_material);

}  // namespace iroh::blake3

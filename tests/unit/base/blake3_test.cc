// BLAKE3 against the official test vectors (all three modes, extended output), plus the API
// properties the vectors alone do not pin down: split-independence of update(), seekable XOF,
// non-consuming finalize() and reset().
#include "base/blake3.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

namespace iroh::blake3 {
namespace {

struct Case {
  std::size_t input_len;
  Bytes hash, keyed_hash, derive_key;  // extended outputs
};

struct Vectors {
  ByteArray<kKeyLen> key;
  std::string context;
  std::vector<Case> cases;
};

Bytes from_hex(const std::string& hex) {
  Bytes out(hex.size() / 2);
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

const Vectors& vectors() {
  static const Vectors v = [] {
    std::ifstream in(IROHLAB_SOURCE_DIR "/tests/vectors/blake3_test_vectors.json");
    EXPECT_TRUE(in.good()) << "cannot open blake3_test_vectors.json";
    const auto j = nlohmann::json::parse(in);
    Vectors out;
    const auto key = j.at("key").get<std::string>();
    EXPECT_EQ(key.size(), kKeyLen);
    std::copy_n(key.begin(), kKeyLen, out.key.begin());
    out.context = j.at("context_string").get<std::string>();
    for (const auto& c : j.at("cases")) {
      out.cases.push_back(Case{c.at("input_len").get<std::size_t>(),
                               from_hex(c.at("hash").get<std::string>()),
                               from_hex(c.at("keyed_hash").get<std::string>()),
                               from_hex(c.at("derive_key").get<std::string>())});
    }
    return out;
  }();
  return v;
}

// The vectors' input: the byte sequence 0, 1, ..., 250 repeated.
Bytes make_input(std::size_t len) {
  Bytes in(len);
  for (std::size_t i = 0; i < len; ++i) in[i] = static_cast<std::uint8_t>(i % 251);
  return in;
}

Bytes xof(const Hasher& h, std::size_t len, std::uint64_t seek = 0) {
  Bytes out(len);
  h.finalize_xof(out, seek);
  return out;
}

Bytes first32(const Bytes& b) { return Bytes(b.begin(), b.begin() + kOutLen); }
Bytes to_bytes(const ByteArray<kOutLen>& a) { return Bytes(a.begin(), a.end()); }

// One hasher per mode, fresh, for a vector case.
struct ModeHashers {
  const char* name;
  Hasher (*make)(const Vectors&);
  Bytes Case::*expected;
};

const ModeHashers kModes[] = {
    {"hash", [](const Vectors&) { return Hasher(); }, &Case::hash},
    {"keyed_hash", [](const Vectors& v) { return Hasher::keyed(v.key); }, &Case::keyed_hash},
    {"derive_key", [](const Vectors& v) { return Hasher::derive_key(v.context); },
     &Case::derive_key},
};

TEST(Blake3, VectorFileLoads) {
  const auto& v = vectors();
  ASSERT_EQ(v.cases.size(), 35u);
  for (const auto& c : v.cases) {
    EXPECT_EQ(c.hash.size(), 131u);
    EXPECT_EQ(c.keyed_hash.size(), 131u);
    EXPECT_EQ(c.derive_key.size(), 131u);
  }
}

TEST(Blake3, OfficialVectorsAllModes) {
  const auto& v = vectors();
  for (const auto& c : v.cases) {
    const Bytes input = make_input(c.input_len);
    for (const auto& mode : kModes) {
      SCOPED_TRACE(testing::Message() << mode.name << " input_len=" << c.input_len);
      const Bytes& expected = c.*mode.expected;
      Hasher h = mode.make(v);
      h.update(input);
      EXPECT_EQ(xof(h, expected.size()), expected);
      EXPECT_EQ(to_bytes(h.finalize()), first32(expected));
    }
  }
}

TEST(Blake3, OneShotFunctionsMatchVectors) {
  const auto& v = vectors();
  for (const auto& c : v.cases) {
    SCOPED_TRACE(testing::Message() << "input_len=" << c.input_len);
    const Bytes input = make_input(c.input_len);
    EXPECT_EQ(to_bytes(hash(input)), first32(c.hash));
    EXPECT_EQ(to_bytes(keyed_hash(v.key, input)), first32(c.keyed_hash));
    EXPECT_EQ(to_bytes(derive_key(v.context, input)), first32(c.derive_key));
  }
}

TEST(Blake3, XofSeekMatchesVectorSlices) {
  const auto& v = vectors();
  for (const auto& c : v.cases) {
    const Bytes input = make_input(c.input_len);
    for (const auto& mode : kModes) {
      const Bytes& expected = c.*mode.expected;
      Hasher h = mode.make(v);
      h.update(input);
      // Every seek position, with lengths crossing 0, 1 and 2 output-block boundaries.
      for (std::size_t seek = 0; seek < expected.size(); ++seek) {
        for (std::size_t len : {std::size_t{0}, std::size_t{1}, std::size_t{7}, std::size_t{64},
                                expected.size() - seek}) {
          len = std::min(len, expected.size() - seek);
          SCOPED_TRACE(testing::Message() << mode.name << " input_len=" << c.input_len
                                          << " seek=" << seek << " len=" << len);
          const Bytes want(expected.begin() + static_cast<std::ptrdiff_t>(seek),
                           expected.begin() + static_cast<std::ptrdiff_t>(seek + len));
          ASSERT_EQ(xof(h, len, seek), want);
        }
      }
    }
  }
}

TEST(Blake3, XofIsConsistentFarIntoTheStream) {
  // Beyond the vectors' 131 bytes: a long read must agree with reads seeked into its middle.
  Hasher h;
  h.update(make_input(5000));
  const Bytes all = xof(h, 4096);
  for (std::uint64_t seek : {63u, 64u, 65u, 1000u, 4000u}) {
    const Bytes part = xof(h, 96, seek);
    EXPECT_TRUE(
        std::equal(part.begin(), part.end(), all.begin() + static_cast<std::ptrdiff_t>(seek)))
        << "seek=" << seek;
  }
}

// Feeds `input` to `h` in pieces ending at the given (sorted, in-range) cut positions.
void feed_split(Hasher& h, const Bytes& input, const std::vector<std::size_t>& cuts) {
  std::size_t pos = 0;
  for (std::size_t cut : cuts) {
    h.update(ByteView(input).subspan(pos, cut - pos));
    pos = cut;
  }
  h.update(ByteView(input).subspan(pos));
}

TEST(Blake3, IncrementalOneByteUpdates) {
  const auto& v = vectors();
  for (const auto& c : v.cases) {
    if (c.input_len > 16384) continue;  // enough to cover several tree levels quickly
    const Bytes input = make_input(c.input_len);
    for (const auto& mode : kModes) {
      SCOPED_TRACE(testing::Message() << mode.name << " input_len=" << c.input_len);
      Hasher h = mode.make(v);
      for (std::uint8_t b : input) h.update(ByteView(&b, 1));
      EXPECT_EQ(xof(h, 131), c.*mode.expected);
    }
  }
}

TEST(Blake3, IncrementalBlockAndChunkBoundarySplits) {
  const auto& v = vectors();
  for (const auto& c : v.cases) {
    const Bytes input = make_input(c.input_len);
    // Split at every multiple of a boundary size, and one byte either side of it.
    for (std::size_t unit : {kBlockLen, kChunkLen, 2 * kChunkLen}) {
      for (int delta : {-1, 0, 1}) {
        std::vector<std::size_t> cuts;
        for (std::size_t k = unit; k <= c.input_len + 1; k += unit) {
          const std::size_t cut = k + static_cast<std::size_t>(delta);
          if (cut > 0 && cut <= c.input_len && (cuts.empty() || cut > cuts.back())) {
            cuts.push_back(cut);
          }
        }
        for (const auto& mode : kModes) {
          SCOPED_TRACE(testing::Message() << mode.name << " input_len=" << c.input_len
                                          << " unit=" << unit << " delta=" << delta);
          Hasher h = mode.make(v);
          feed_split(h, input, cuts);
          EXPECT_EQ(xof(h, 131), c.*mode.expected);
        }
      }
    }
  }
}

TEST(Blake3, IncrementalRandomSplits) {
  const auto& v = vectors();
  std::mt19937_64 rng(0xb1a4e3);  // fixed seed: failures must be reproducible
  for (const auto& c : v.cases) {
    const Bytes input = make_input(c.input_len);
    for (int trial = 0; trial < 8; ++trial) {
      std::vector<std::size_t> cuts;
      if (c.input_len > 0) {
        std::uniform_int_distribution<std::size_t> pos(0, c.input_len);
        std::uniform_int_distribution<int> count(1, 40);
        for (int i = count(rng); i > 0; --i) cuts.push_back(pos(rng));
        std::sort(cuts.begin(), cuts.end());  // duplicates give empty updates, also worth testing
      }
      for (const auto& mode : kModes) {
        SCOPED_TRACE(testing::Message()
                     << mode.name << " input_len=" << c.input_len << " trial=" << trial);
        Hasher h = mode.make(v);
        feed_split(h, input, cuts);
        EXPECT_EQ(xof(h, 131), c.*mode.expected);
      }
    }
  }
}

TEST(Blake3, EmptyUpdatesAreNoOps) {
  const auto& v = vectors();
  Hasher h;
  h.update({}).update({}).update(make_input(1024)).update({});
  const auto it = std::find_if(v.cases.begin(), v.cases.end(),
                               [](const Case& c) { return c.input_len == 1024; });
  ASSERT_NE(it, v.cases.end());
  EXPECT_EQ(xof(h, 131), it->hash);
}

TEST(Blake3, FinalizeDoesNotConsume) {
  // Finalizing mid-stream (including exactly at chunk boundaries, where the pending chunk must not
  // be folded into the tree prematurely) must not disturb later updates.
  const auto& v = vectors();
  for (const auto& c : v.cases) {
    SCOPED_TRACE(testing::Message() << "input_len=" << c.input_len);
    const Bytes input = make_input(c.input_len);
    Hasher h;
    for (std::size_t pos = 0; pos < input.size(); pos += 512) {
      const std::size_t n = std::min<std::size_t>(512, input.size() - pos);
      h.update(ByteView(input).subspan(pos, n));
      const auto mid = h.finalize();
      EXPECT_EQ(mid, hash(ByteView(input).first(pos + n)));
      EXPECT_EQ(h.finalize(), mid);  // repeatable
    }
    EXPECT_EQ(xof(h, 131), c.hash);
  }
}

TEST(Blake3, ResetKeepsModeAndForgetsInput) {
  const auto& v = vectors();
  for (const auto& mode : kModes) {
    SCOPED_TRACE(mode.name);
    Hasher h = mode.make(v);
    h.update(make_input(102400));  // deep CV stack, to check it is cleared too
    h.reset();
    EXPECT_EQ(xof(h, 131), v.cases.front().*mode.expected);  // the empty input
    h.update(make_input(8193));
    const auto it = std::find_if(v.cases.begin(), v.cases.end(),
                                 [](const Case& c) { return c.input_len == 8193; });
    ASSERT_NE(it, v.cases.end());
    EXPECT_EQ(xof(h, 131), (*it).*mode.expected);
  }
}

TEST(Blake3, CopiedHasherForksIndependently) {
  Hasher a;
  a.update(as_bytes("common prefix "));
  Hasher b = a;
  a.update(as_bytes("left"));
  b.update(as_bytes("right"));
  EXPECT_EQ(a.finalize(), hash(as_bytes("common prefix left")));
  EXPECT_EQ(b.finalize(), hash(as_bytes("common prefix right")));
}

TEST(Blake3, RelayHandshakeContextIsDeterministic) {
  // The exact value is checked by the relay handshake tests; here only the mode's mechanics.
  constexpr std::string_view kContext = "iroh-relay handshake v1 challenge signature";
  Bytes material(16);
  for (std::size_t i = 0; i < material.size(); ++i)
    material[i] = static_cast<std::uint8_t>(0x10 + i);

  const ByteArray<kOutLen> a = derive_key(kContext, material);
  const ByteArray<kOutLen> b = derive_key(kContext, material);
  static_assert(std::tuple_size_v<decltype(a)> == 32);
  EXPECT_EQ(a, b);
  EXPECT_EQ(Hasher::derive_key(kContext).update(material).finalize(), a);
  // Domain separation: neither plain hashing nor a different context gives the same key.
  EXPECT_NE(a, hash(material));
  EXPECT_NE(a, derive_key("iroh-relay handshake v1 challenge signaturE", material));
}

}  // namespace
}  // namespace iroh::blake3

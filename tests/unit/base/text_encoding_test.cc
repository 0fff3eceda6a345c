#include "base/text_encoding.h"

#include <gtest/gtest.h>

#include <random>

namespace iroh {
namespace {

Bytes seq_bytes(std::size_t n, std::uint8_t start = 0) {
  Bytes b(n);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<std::uint8_t>(start + i);
  return b;
}

TEST(Hex, EncodesLowercase) {
  EXPECT_EQ(to_hex(Bytes{0x00, 0xab, 0xff}), "00abff");
  EXPECT_EQ(to_hex(Bytes{}), "");
}

TEST(Hex, ParsesLowercaseOnly) {
  EXPECT_EQ(*parse_hex_lower("00abff"), (Bytes{0x00, 0xab, 0xff}));
  EXPECT_FALSE(parse_hex_lower("00ABFF").ok());  // Rust's HEXLOWER rejects upper case
  EXPECT_FALSE(parse_hex_lower("abc").ok());
  EXPECT_FALSE(parse_hex_lower("zz").ok());
  EXPECT_NE(parse_hex_lower("0g").error().message.find("position 1"), std::string::npos);
}

// RFC 4648 §10 test vectors (padding stripped, lower-cased output).
TEST(Base32, Rfc4648Vectors) {
  const std::pair<const char*, const char*> cases[] = {{"", ""},
                                                       {"f", "my"},
                                                       {"fo", "mzxq"},
                                                       {"foo", "mzxw6"},
                                                       {"foob", "mzxw6yq"},
                                                       {"fooba", "mzxw6ytb"},
                                                       {"foobar", "mzxw6ytboi"}};
  for (const auto& [plain, encoded] : cases) {
    EXPECT_EQ(base32_encode(as_bytes(plain), Base32Alphabet::kRfc4648), encoded);
    auto back = base32_decode(ascii_upper(encoded), Base32Alphabet::kRfc4648);
    ASSERT_TRUE(back.ok()) << encoded;
    EXPECT_EQ(std::string(back->begin(), back->end()), plain);
  }
}

// RFC 4648 §10 base32hex vectors.
TEST(Base32, HexAlphabetVectors) {
  EXPECT_EQ(base32_encode(as_bytes("foobar"), Base32Alphabet::kBase32Hex), "cpnmuoj1e8");
  EXPECT_EQ(base32_encode(as_bytes("f"), Base32Alphabet::kBase32Hex), "co");
  EXPECT_EQ(*base32_decode("cpnmuoj1e8", Base32Alphabet::kBase32Hex),
            Bytes(as_bytes("foobar").begin(), as_bytes("foobar").end()));
}

TEST(Base32, DecodeRejectsBadInput) {
  // Lower case is not the canonical case for RFC 4648 decoding (callers upper-case first).
  EXPECT_FALSE(base32_decode("mzxw6", Base32Alphabet::kRfc4648).ok());
  EXPECT_FALSE(base32_decode("MZXW6===", Base32Alphabet::kRfc4648).ok());  // padding
  EXPECT_FALSE(base32_decode("M", Base32Alphabet::kRfc4648).ok());         // length 1
  EXPECT_FALSE(base32_decode("MZX", Base32Alphabet::kRfc4648).ok());       // length 3
  EXPECT_FALSE(base32_decode("MZXW6Y", Base32Alphabet::kRfc4648).ok());    // length 6
  EXPECT_FALSE(base32_decode("MZ1W6", Base32Alphabet::kRfc4648).ok());     // '1' not in alphabet
  // "MZ" carries 10 bits for 8: the last two must be zero. "MZ" = 01100 11001 → trailing "01".
  EXPECT_FALSE(base32_decode("MZ", Base32Alphabet::kRfc4648).ok());
  EXPECT_TRUE(base32_decode("MY", Base32Alphabet::kRfc4648).ok());
  EXPECT_NE(base32_decode("MZ", Base32Alphabet::kRfc4648).error().message.find("trailing bits"),
            std::string::npos);
}

TEST(Base32, RoundTripsEveryLengthAndAlphabet) {
  std::mt19937 rng(7);
  for (auto alphabet :
       {Base32Alphabet::kRfc4648, Base32Alphabet::kZBase32, Base32Alphabet::kBase32Hex}) {
    for (std::size_t n = 0; n < 70; ++n) {
      Bytes b(n);
      for (auto& x : b) x = static_cast<std::uint8_t>(rng());
      auto text = base32_encode(b, alphabet);
      EXPECT_EQ(text.size(), (n * 8 + 4) / 5);
      if (alphabet == Base32Alphabet::kRfc4648) text = ascii_upper(text);
      auto back = base32_decode(text, alphabet);
      ASSERT_TRUE(back.ok()) << back.error().message;
      EXPECT_EQ(*back, b);
    }
  }
}

TEST(Base32, ZBase32KnownValue) {
  // spec §1.2: the id of sk = 00..1f.
  auto id = parse_hex_lower("03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8");
  EXPECT_EQ(base32_encode(*id, Base32Alphabet::kZBase32),
            "yqooxx9u3aemh8mo5wcqq16yufu6jitouq1o4za751dger1igghy");
  EXPECT_EQ(*base32_decode("yqooxx9u3aemh8mo5wcqq16yufu6jitouq1o4za751dger1igghy",
                           Base32Alphabet::kZBase32),
            *id);
  (void)seq_bytes;
}

TEST(Ascii, CaseMappingTouchesOnlyAsciiLetters) {
  EXPECT_EQ(ascii_upper("abZ9-\xc3\xa9"), "ABZ9-\xc3\xa9");
  EXPECT_EQ(ascii_lower("ABz9-\xc3\x89"), "abz9-\xc3\x89");
}

}  // namespace
}  // namespace iroh

// Hand-rolled flag reader for the PEER_CLI.md grammar: `--flag VALUE`, `--flag=VALUE`, bare
// switches and positionals. Every mistake is a usage error (one line, exit 2).
#pragma once

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

#include "peer.h"

namespace ngpeer {

inline constexpr std::uint64_t kMaxVarint = (std::uint64_t(1) << 62) - 1;

class ArgReader {
 public:
  ArgReader(int argc, char** argv) : args_(argv, argv + argc) {}

  // Advances to the next flag, collecting positionals on the way. False at the end.
  bool next() {
    while (pos_ < args_.size()) {
      std::string a = args_[pos_++];
      if (a.size() > 2 && a.rfind("--", 0) == 0) {
        auto eq = a.find('=');
        if (eq != std::string::npos) {
          flag_ = a.substr(0, eq);
          inline_value_ = a.substr(eq + 1);
        } else {
          flag_ = a;
          inline_value_.reset();
        }
        return true;
      }
      positionals_.push_back(a);
    }
    return false;
  }
  const std::string& flag() const { return flag_; }
  const std::vector<std::string>& positionals() const { return positionals_; }

  std::string value() {
    if (inline_value_) return *inline_value_;
    if (pos_ >= args_.size()) usage_error(flag_ + " needs a value");
    return args_[pos_++];
  }
  void no_value() {
    if (inline_value_) usage_error(flag_ + " takes no value");
  }
  std::uint64_t u64(std::uint64_t max = UINT64_MAX) {
    std::string v = value();
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
      usage_error(flag_ + ": not a non-negative integer: " + v);
    errno = 0;
    unsigned long long n = std::strtoull(v.c_str(), nullptr, 10);
    if (errno == ERANGE || n > max) usage_error(flag_ + ": out of range: " + v);
    return n;
  }
  double seconds() {
    std::string v = value();
    char* end = nullptr;
    errno = 0;
    double d = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno == ERANGE || !(d >= 0) || d > 1e7)
      usage_error(flag_ + ": not a number of seconds: " + v);
    return d;
  }
  [[noreturn]] void unknown() { usage_error("unknown option " + flag_); }

 private:
  std::vector<std::string> args_;
  std::size_t pos_ = 0;
  std::string flag_;
  std::optional<std::string> inline_value_;
  std::vector<std::string> positionals_;
};

}  // namespace ngpeer

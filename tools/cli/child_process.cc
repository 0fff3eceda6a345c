#include "child_process.h"

#include <signal.h>
#include <sys/select.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <utility>

#include "cli.h"

namespace irohlab::cli {

std::string self_exe() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

Child Child::spawn(const std::vector<std::string>& argv) {
  int out[2];
  if (pipe(out) != 0) throw Failure("bench: pipe failed");
  const pid_t pid = fork();
  if (pid < 0) throw Failure("bench: fork failed");
  if (pid == 0) {
    dup2(out[1], 1);
    close(out[0]);
    close(out[1]);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  Child c;
  c.pid_ = pid;
  c.out_ = fdopen(out[0], "r");
  return c;
}

Child::Child(Child&& o) noexcept
    : pid_(std::exchange(o.pid_, -1)), out_(std::exchange(o.out_, nullptr)) {}

std::optional<std::string> Child::read_line(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string line;
  const int fd = fileno(out_);
  while (std::chrono::steady_clock::now() < deadline) {
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd, &set);
    timeval tv{0, 20000};
    if (select(fd + 1, &set, nullptr, nullptr, &tv) <= 0) continue;
    char ch;
    const ssize_t n = ::read(fd, &ch, 1);
    if (n <= 0) return std::nullopt;
    if (ch == '\n') return line;
    line.push_back(ch);
  }
  return std::nullopt;
}

int Child::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (pid_ > 0) {
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    usleep(2000);
  }
  kill();
  return -1;
}

void Child::kill() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  if (out_) {
    fclose(out_);
    out_ = nullptr;
  }
}

double Child::cpu_seconds() const {
  std::ifstream f("/proc/" + std::to_string(pid_) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto rp = s.rfind(')');
  if (rp == std::string::npos) return 0;
  std::istringstream in(s.substr(rp + 2));
  std::string field;
  std::vector<std::string> fields;
  while (in >> field) fields.push_back(field);
  if (fields.size() < 13) return 0;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  return (std::stod(fields[11]) + std::stod(fields[12])) / ticks;
}

long Child::rss_kib() const {
  std::ifstream f("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return 0;
}

std::optional<ThroughputRun> transfer(const std::string& bin, Child& server,
                                      const std::string& ticket, std::uint64_t bytes,
                                      std::string& error,
                                      const std::vector<std::string>& extra_args) {
  using namespace std::chrono_literals;
  const double server_cpu0 = server.cpu_seconds();
  std::vector<std::string> argv = {
      bin, "connect", ticket, "--alpn", kAlpn, "--bytes", std::to_string(bytes), "--json"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  auto client = Child::spawn(argv);
  auto line = client.read_line(120s);
  client.wait(10s);
  if (!line) {
    error = bin + ": no result";
    return std::nullopt;
  }
  auto j = nlohmann::json::parse(*line, nullptr, false);
  if (j.is_discarded() || !j.value("ok", false)) {
    error = bin + ": " + *line;
    return std::nullopt;
  }
  ThroughputRun r;
  r.mb_per_s = j.value("mb_per_s", 0.0);
  r.cpu_s = j.value("cpu_s", 0.0) + (server.cpu_seconds() - server_cpu0);
  return r;
}

}  // namespace irohlab::cli

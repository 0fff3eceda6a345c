// irohlab-ngtcp2-peer: the ngtcp2 + GnuTLS oracle peer (docs/PEER_CLI.md `listen` / `connect`).
#include <gnutls/gnutls.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "peer.h"

namespace {
constexpr const char* kUsage =
    "usage: irohlab-ngtcp2-peer listen --alpn A [--alpn B ...] [--secret HEX64] [--bind IP:PORT]\n"
    "                              [--echo | --sink | --source N] [--close-code C [--close-reason "
    "R]]\n"
    "       irohlab-ngtcp2-peer connect TICKET --alpn A [--bytes N | --stdin] [--echo] [--streams "
    "K]\n"
    "                              [--uni] [--datagrams N [--datagram-size S]] [--idle SECONDS]\n"
    "                              [--close-code C [--close-reason R]] [--timeout SECONDS] "
    "[--json]\n"
    "See docs/PEER_CLI.md. Env: NGPEER_LOG=1 prints ngtcp2's log on stderr.\n";
}

int main(int argc, char** argv) {
  if (argc >= 2 && (!std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h"))) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (argc < 2) ngpeer::usage_error("missing command (listen | connect); see --help");
  for (int i = 2; i < argc; i++)
    if (!std::strcmp(argv[i], "--help")) {
      std::fputs(kUsage, stdout);
      return 0;
    }
  // A harness that stops reading our stdout must not kill a listener mid-connection.
  std::signal(SIGPIPE, SIG_IGN);
  gnutls_global_init();
  std::string cmd = argv[1];
  if (cmd == "listen") return ngpeer::run_listen(argc - 2, argv + 2);
  if (cmd == "connect") return ngpeer::run_connect(argc - 2, argv + 2);
  ngpeer::usage_error("unknown command " + cmd + " (listen | connect)");
}

"""Our endpoint's relay client against `irohlab relay`, with real Rust iroh 1.0.2 on the other side.

The peers are the docs/PEER_CLI.md programs (`irohlab` and interop/rust_quic_peer.mjs) with
`listen --relay URL --relay-only` (the ticket carries only the relay URL, so every connection
starts relayed) and `connect --relay URL`.

(a) ours ↔ Rust through our relay, both directions, and ours ↔ ours: a 4 MiB echo verified byte for
    byte. The C++ side runs with --no-holepunch (it offers no NAT traversal, so neither side can
    punch and the connection must stay on the relay); the relay's metrics must show the forwarded
    datagrams. Hole punching itself is tests/integration/test_holepunch.py.
(b) a ticket with only a relay URL and no --relay on the client: a clear `unreachable` error.
(c) graceful relay restart: a C++ server, a C++ client and a Rust client are connected through the
    relay; SIGTERM makes it send Restarting, a new relay process takes the same port, every client
    reconnects and both QUIC connections carry a verified echo afterwards.

Every process runs on 127.0.0.1 and is killed by PID in a `finally` block.
"""
from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

import test_relay_interop as R

REPO = Path(__file__).resolve().parents[2]
RUST_PEER = REPO / "interop" / "rust_quic_peer.mjs"
ALPN = "irohlab/relay-test/0"
MIB4 = 4 * 1024 * 1024


def peer_argv(impl: str, irohlab_bin: Path) -> list[str]:
    if impl == "cpp":
        return [str(irohlab_bin)]
    return [R.node(), "--no-deprecation", str(RUST_PEER)]


def start_listener(start, impl: str, irohlab_bin: Path, relay_url: str, name: str,
                   *extra: str) -> tuple[str, R.Proc]:
    p = start(name, [*peer_argv(impl, irohlab_bin), "listen", "--alpn", ALPN, "--relay", relay_url,
                     "--relay-only", "--echo", *extra])
    # a whole first line (the ticket may arrive in more than one write)
    line = R.wait_for(lambda: p.out().split("\n")[:-1][:1], 20, f"{name} ticket" + p.describe())[0]
    assert line.startswith("endpoint"), f"{name}: first line is not a ticket: {line!r}" + p.describe()
    return line, p


def relay_metric(relay: R.Relay, name: str) -> float:
    return sum(v for k, v in relay.metrics().items() if k.split("{")[0] == name)


def run_connect(impl: str, irohlab_bin: Path, ticket: str, relay_url: str, *args: str, timeout: float = 90) -> dict:
    argv = [*peer_argv(impl, irohlab_bin), "connect", ticket, "--alpn", ALPN, "--relay", relay_url, "--json",
            *args]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         cwd=str(REPO), text=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate(timeout=5)
        pytest.fail(f"connect ({impl}) did not finish in {timeout} s: {out[-2000:]} {err[-2000:]}")
    lines = [l for l in out.splitlines() if l.startswith("{")]
    assert lines, f"connect ({impl}) printed no JSON (exit {p.returncode}): {out!r} {err[-2000:]!r}"
    res = json.loads(lines[-1])
    res["_rc"] = p.returncode
    res["_stderr"] = err[-2000:]
    return res


@pytest.mark.parametrize("server,client", [("cpp", "rust"), ("rust", "cpp"), ("cpp", "cpp")],
                         ids=["cpp-server-rust-client", "rust-server-cpp-client", "cpp-cpp"])
def test_echo_4mib_through_our_relay(irohlab_bin, tmp_path, server, client):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin)
        stay = ("--no-holepunch",)
        ticket, srv = start_listener(start, server, irohlab_bin, relay.url, f"{server}-server",
                                     *(stay if server == "cpp" else ()))
        before = relay_metric(relay, "irohlab_relay_bytes_forwarded_total")
        res = run_connect(client, irohlab_bin, ticket, relay.url, "--bytes", str(MIB4), "--echo",
                          *(stay if client == "cpp" else ()))
        assert res["ok"], f"{client} → {server}: {res}" + srv.describe() + relay.proc.describe()
        assert res["echoed"] == MIB4, res
        assert res["started_relayed"] is True, res
        assert res["paths"][0]["path"] == f"relay:{relay.url}", res
        # No NAT traversal offered by the C++ side: the connection must stay relayed (and work).
        assert res["path"] == f"relay:{relay.url}", res
        forwarded = relay_metric(relay, "irohlab_relay_bytes_forwarded_total") - before
        # 4 MiB each way, in QUIC packets (plus headers, ACKs and any retransmissions)
        assert forwarded >= 2 * MIB4, f"only {forwarded} bytes forwarded"
        events = [json.loads(l) for l in srv.out().splitlines()[1:] if l.startswith("{")]
        accepted = [e for e in events if e.get("event") == "accepted"]
        assert len(accepted) == 1, events
        if server == "cpp":
            assert accepted[0]["path"] == f"relay:{relay.url}", accepted


def test_relay_only_ticket_without_relay_flag_is_unreachable(irohlab_bin, tmp_path):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin)
        ticket, _ = start_listener(start, "cpp", irohlab_bin, relay.url, "cpp-server")
        p = subprocess.run([str(irohlab_bin), "connect", ticket, "--alpn", ALPN, "--timeout", "2"],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, p
        assert "--relay" in p.stderr and p.stderr.startswith("irohlab: error:"), p.stderr


def test_listen_with_unreachable_relay_fails_clearly(irohlab_bin, tmp_path):
    # a port nobody listens on (bound then closed)
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    p = subprocess.run([str(irohlab_bin), "listen", "--alpn", ALPN, "--relay", f"http://127.0.0.1:{port}",
                        "--relay-only"], capture_output=True, text=True, timeout=40)
    assert p.returncode == 1, p
    assert p.stdout == "", "no ticket may be printed for an unreachable relay"
    assert "irohlab: error: unreachable: relay" in p.stderr, p.stderr


def test_relay_restart_clients_reconnect_and_traffic_resumes(irohlab_bin, tmp_path):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin)
        port = relay.port
        # --no-holepunch: the connections must keep using the relay across its restart.
        ticket, srv = start_listener(start, "cpp", irohlab_bin, relay.url, "cpp-server",
                                     "--no-holepunch")
        # Two clients (C++ and Rust) connect, then idle across the restart, then echo 1 MiB over
        # the same QUIC connection.
        idle = 8
        clients = {}
        for impl in ("cpp", "rust"):
            argv = [*peer_argv(impl, irohlab_bin), "connect", ticket, "--alpn", ALPN, "--relay", relay.url,
                    "--idle", str(idle), "--bytes", str(1 << 20), "--echo", "--json"]
            clients[impl] = start(f"{impl}-client", argv)
        R.wait_for(lambda: sum(1 for l in srv.out().splitlines() if '"accepted"' in l) >= 2, 20,
                   "both clients accepted" + srv.describe())
        # The relay restarts: SIGTERM → Restarting to every client → exit 0; a new one on the port.
        relay.proc.p.send_signal(signal.SIGTERM)
        assert relay.proc.p.wait(timeout=10) == 0, relay.proc.describe()
        # Every relay client (the server and both clients) was closed by the graceful shutdown,
        # which queues Restarting ahead of the close (relay_server.cc begin_shutdown).
        closed = [l for l in relay.proc.err().splitlines()
                  if "closing connection" in l and 'reason="server shutting down"' in l]
        assert len(closed) >= 3, relay.proc.describe()
        p2 = start("relay-restarted", [str(irohlab_bin), "relay", "--bind", f"127.0.0.1:{port}", "--metrics",
                                       "127.0.0.1:0", "--log-level", "debug"])
        relay2 = R.Relay(p2)
        # Server + two clients authenticate again.
        R.wait_for(lambda: p2.err().count("client authenticated") >= 3, 20,
                   "three clients re-authenticated at the restarted relay" + p2.describe())
        for impl, proc in clients.items():
            rc = proc.p.wait(timeout=idle + 60)
            lines = [l for l in proc.out().splitlines() if l.startswith("{")]
            assert lines, f"{impl} client printed no JSON (exit {rc})" + proc.describe()
            res = json.loads(lines[-1])
            assert rc == 0 and res["ok"], f"{impl} client after the restart: {res}" + proc.describe() + srv.describe()
            assert res["echoed"] == 1 << 20, res
            assert res["path"] == f"relay:{relay2.url}", res

"""QUIC interop matrix: every client program against every server program, driven ONLY by the peer
CLI contract (docs/PEER_CLI.md: `listen` / `connect`).

Programs
    rust    node interop/rust_quic_peer.mjs   (real Rust iroh 1.0.2 via npm @number0/iroh 1.1.0)
    cpp     our CLI: env IROHLAB_BIN, else build/release/bin/irohlab
    ngtcp2  the ngtcp2 oracle: env IROHLAB_NGTCP2_PEER, else build/release/bin/irohlab-ngtcp2-peer

Pairs are written CLIENT-SERVER. Default: cpp-rust, rust-cpp, cpp-ngtcp2, ngtcp2-cpp, cpp-cpp and
the oracle baselines rust-ngtcp2, ngtcp2-rust. Env IROHLAB_QUIC_PAIRS overrides it: a comma-separated
list of pairs (any of the 3x3, e.g. `rust-rust`) and/or `default` (the 7 above) / `all` (all 9):

    /usr/bin/python3 -m pytest tests/integration/test_quic_interop.py -q
    IROHLAB_QUIC_PAIRS=rust-rust /usr/bin/python3 -m pytest tests/integration/test_quic_interop.py -q
    IROHLAB_QUIC_PAIRS=default,rust-rust ... -k 'echo and rust-cpp'

A program that is missing, or that lacks `listen` / `connect`, makes its cells FAIL with the reason
(never skip). Cases per pair: echo of 1 B / 1 MiB (seeded random bytes via --stdin) / 16 MiB on one
stream, 32 concurrent bidi streams, uni streams, 100 datagrams (>= 95 echoed), application close
code + reason in both directions, wrong expected id (key-mismatch), ALPN mismatch (alpn); 45 s idle
then echo only for cpp-rust and rust-cpp (and rust-rust when selected); a Rust client against a
server that lists only other ALPNs (rust-cpp, and rust-rust when selected).

Every process has its stdout/stderr in files under the test's tmp_path, every wait is bounded, and
every process is SIGKILLed by PID at teardown even when the test fails. Failure messages carry the
command lines, exit codes and the stdout/stderr tails of the client AND the server.
"""
from __future__ import annotations

import base64
import contextlib
import ipaddress
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

import _wire as W

REPO = Path(__file__).resolve().parents[2]
RUST_PEER = REPO / "interop" / "rust_quic_peer.mjs"
IROH_PKG = REPO / "node_modules" / "@number0" / "iroh"
DEFAULT_CPP = REPO / "build" / "release" / "bin" / "irohlab"
DEFAULT_NGTCP2 = REPO / "build" / "release" / "bin" / "irohlab-ngtcp2-peer"

PROGRAMS = ("rust", "cpp", "ngtcp2")
DEFAULT_PAIRS = ("cpp-rust", "rust-cpp", "cpp-ngtcp2", "ngtcp2-cpp", "cpp-cpp", "rust-ngtcp2", "ngtcp2-rust")
ALL_PAIRS = tuple(f"{c}-{s}" for c in PROGRAMS for s in PROGRAMS)
IDLE_PAIRS = ("cpp-rust", "rust-cpp", "rust-rust")
MULTI_ALPN_PAIRS = ("rust-cpp", "rust-rust")

ALPN = "test/echo/0"
LISTEN_START_TIMEOUT_S = 20  # until stdout line 1 (node + Rust endpoint start, on a loaded machine)
EVENT_TIMEOUT_S = 10
HANDSHAKE_TIMEOUT_S = 10  # connect --timeout
RUN_SLACK_S = 150  # connect is bounded by timeout + idle + 120 s by contract; we allow a bit more
TAIL = 3000


def _selected_pairs() -> list[str]:
    env = os.environ.get("IROHLAB_QUIC_PAIRS", "").strip()
    if not env:
        return list(DEFAULT_PAIRS)
    out: list[str] = []
    for tok in (t.strip() for t in env.split(",")):
        if not tok:
            continue
        if tok == "default":
            out += DEFAULT_PAIRS
        elif tok == "all":
            out += ALL_PAIRS
        elif tok in ALL_PAIRS:
            out.append(tok)
        else:
            raise ValueError(
                f"IROHLAB_QUIC_PAIRS: unknown pair {tok!r}: use CLIENT-SERVER with programs "
                f"{'/'.join(PROGRAMS)}, or 'default' / 'all'"
            )
    return list(dict.fromkeys(out))


PAIRS = _selected_pairs()


# ------------------------------------------------------------------------------------------------
# programs
# ------------------------------------------------------------------------------------------------
def program_argv(name: str) -> list[str]:
    """The argv prefix that runs program `name`; a missing program FAILS the test with the reason."""
    if name == "rust":
        node = shutil.which("node")
        if node is None:
            pytest.fail("rust peer: node is not on PATH (install Node.js, run tools/setup-deps)", pytrace=False)
        if not (IROH_PKG / "package.json").is_file():
            pytest.fail(f"rust peer: {IROH_PKG} is missing: run tools/setup-deps", pytrace=False)
        if not RUST_PEER.is_file():
            pytest.fail(f"rust peer: {RUST_PEER} is missing", pytrace=False)
        return [node, "--no-deprecation", str(RUST_PEER)]
    if name == "cpp":
        env = os.environ.get("IROHLAB_BIN")
        path = Path(env) if env else DEFAULT_CPP
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(
                f"cpp peer: irohlab not found or not executable at {path}"
                + (" (from IROHLAB_BIN)" if env else "")
                + ": run tools/build (or point IROHLAB_BIN at a built irohlab)",
                pytrace=False,
            )
        return [str(path)]
    if name == "ngtcp2":
        env = os.environ.get("IROHLAB_NGTCP2_PEER")
        path = Path(env) if env else DEFAULT_NGTCP2
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(
                f"ngtcp2 peer: irohlab-ngtcp2-peer not found or not executable at {path}"
                + (" (from IROHLAB_NGTCP2_PEER)" if env else "")
                + ": build interop/ngtcp2_peer (tools/build) or set IROHLAB_NGTCP2_PEER",
                pytrace=False,
            )
        return [str(path)]
    raise ValueError(name)


# ------------------------------------------------------------------------------------------------
# tickets (decoded here, independently of every program under test)
# ------------------------------------------------------------------------------------------------
def _varint(b: bytes, i: int) -> tuple[int, int]:
    n = shift = 0
    while True:
        if i >= len(b):
            raise ValueError("truncated varint")
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if not c & 0x80:
            return n, i


def decode_ticket(t: str) -> dict:
    """'endpoint…' → {id, relays, addrs} (spec iroh-wire.md §2; raises ValueError on bad input)."""
    if not re.fullmatch(r"endpoint[a-z2-7]+", t):
        raise ValueError(f"not an endpoint ticket: {t!r}")
    body = t[len("endpoint"):].upper()
    data = base64.b32decode(body + "=" * (-len(body) % 8))
    version, i = _varint(data, 0)
    if version != 0:
        raise ValueError(f"ticket version {version}")
    node_id = data[i:i + 32].hex()
    i += 32
    count, i = _varint(data, i)
    relays, addrs = [], []
    for _ in range(count):
        tag = data[i]
        i += 1
        if tag == 0:
            n, i = _varint(data, i)
            relays.append(data[i:i + n].decode())
            i += n
        elif tag == 1:
            fam = data[i]
            i += 1
            size = 4 if fam == 0 else 16
            ip = ipaddress.ip_address(data[i:i + size])
            i += size
            port, i = _varint(data, i)
            addrs.append(f"{ip}:{port}" if fam == 0 else f"[{ip}]:{port}")
        else:
            raise ValueError(f"unknown address tag {tag}")
    if i != len(data):
        raise ValueError(f"{len(data) - i} trailing bytes")
    return {"id": node_id, "relays": relays, "addrs": addrs}


# ------------------------------------------------------------------------------------------------
# processes
# ------------------------------------------------------------------------------------------------
def _tail(path: Path) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "<none>"
    return text if len(text) <= TAIL else "…" + text[-TAIL:]


class Proc:
    """A child process with stdout/stderr in files (no pipe can fill up and block it)."""

    def __init__(self, role: str, prog: str, argv: list[str], tmp: Path, stdin_path: Path | None = None):
        self.role, self.prog, self.argv = role, prog, argv
        self.out_path = tmp / f"{role}.out"
        self.err_path = tmp / f"{role}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self._in = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
        self.p = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=self._in, cwd=str(REPO))

    def out(self) -> str:
        return self.out_path.read_text(errors="replace")

    def err(self) -> str:
        return self.err_path.read_text(errors="replace")

    def kill(self):
        if self.p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.p.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.p.wait(timeout=5)
        for f in (self._out, self._err, self._in):
            if hasattr(f, "close"):
                f.close()

    def describe(self) -> str:
        rc = self.p.poll()
        return (
            f"\n--- {self.role} [{self.prog}] pid {self.p.pid}, exit {'running' if rc is None else rc}\n"
            f"    $ {' '.join(shlex.quote(a) for a in self.argv)}\n"
            f"--- {self.role} stdout ---\n{_tail(self.out_path)}\n--- {self.role} stderr ---\n{_tail(self.err_path)}"
        )


class Listener:
    def __init__(self, proc: Proc):
        self.proc = proc
        self.ticket = ""
        self.info: dict = {}

    @property
    def id(self) -> str:
        return self.info["id"]

    @property
    def addr(self) -> str:
        return self.info["addrs"][0]

    def events(self) -> list[dict]:
        lines = self.proc.out().split("\n")[1:]
        out = []
        for line in lines[:-1]:  # the last element is "" or a line still being written
            try:
                ev = json.loads(line)
            except json.JSONDecodeError:
                raise AssertionError(f"server stdout line is not JSON: {line!r}") from None
            out.append(ev)
        return out


class ConnectResult:
    def __init__(self, proc: Proc, rc: int):
        self.proc, self.rc = proc, rc
        self.stdout, self.stderr = proc.out(), proc.err()
        self.json = None
        lines = self.stdout.splitlines()
        if len(lines) == 1:
            with contextlib.suppress(json.JSONDecodeError):
                self.json = json.loads(lines[0])


def _rc_hint(prog: str, rc: int) -> str:
    if rc == 2:
        return f" — exit 2 means bad command line: does {prog} implement `connect` of docs/PEER_CLI.md yet?"
    if rc < 0:
        return f" — killed by signal {-rc}"
    return ""


class Lab:
    """Starts listeners and clients; kill_all() (run at teardown) SIGKILLs every one by PID."""

    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.procs: list[Proc] = []
        self.n = 0

    def _role(self, base: str) -> str:
        self.n += 1
        return f"{base}{self.n}"

    def describe(self) -> str:
        return "".join(p.describe() for p in self.procs)

    def fail(self, msg: str):
        raise AssertionError(msg + "\n" + self.describe())

    def check(self, cond, msg: str):
        if not cond:
            self.fail(msg)

    def kill_all(self):
        for p in reversed(self.procs):
            p.kill()

    def listen(self, prog: str, *args: str, alpns=(ALPN,)) -> Listener:
        argv = program_argv(prog) + ["listen"] + [x for a in alpns for x in ("--alpn", a)] + list(args)
        proc = Proc(self._role("server"), prog, argv, self.tmp)
        self.procs.append(proc)
        srv = Listener(proc)
        deadline = time.monotonic() + LISTEN_START_TIMEOUT_S
        while True:
            out = proc.out()
            if "\n" in out:
                break
            if proc.p.poll() is not None:
                self.fail(
                    f"{prog} `listen` exited with code {proc.p.returncode} before printing its ticket "
                    f"(does {prog} implement `listen` of docs/PEER_CLI.md yet?)"
                )
            if time.monotonic() > deadline:
                self.fail(f"{prog} `listen` printed no ticket line within {LISTEN_START_TIMEOUT_S} s")
            time.sleep(0.02)
        srv.ticket = out.split("\n", 1)[0]
        try:
            srv.info = decode_ticket(srv.ticket)
        except (ValueError, IndexError) as e:
            self.fail(f"{prog} `listen` stdout line 1 is not a valid endpoint ticket alone ({e}): {srv.ticket!r}")
        self.check(srv.info["relays"] == [], f"{prog} listen ticket names a relay: {srv.info}")
        self.check(len(srv.info["addrs"]) == 1, f"{prog} listen ticket must hold exactly the bound address: {srv.info}")
        host, _, port = srv.addr.rpartition(":")
        self.check(host == "127.0.0.1" and 0 < int(port) < 65536,
                   f"{prog} listen ticket address {srv.addr} is not the bound 127.0.0.1:PORT")
        return srv

    def start_connect(self, prog: str, ticket: str, *args: str, alpn: str = ALPN,
                      stdin: bytes | None = None) -> Proc:
        argv = program_argv(prog) + ["connect", ticket, "--alpn", alpn, "--timeout", str(HANDSHAKE_TIMEOUT_S),
                                     "--json", *args]
        stdin_path = None
        if stdin is not None:
            stdin_path = self.tmp / f"stdin{self.n + 1}.bin"
            stdin_path.write_bytes(stdin)
        proc = Proc(self._role("client"), prog, argv, self.tmp, stdin_path)
        self.procs.append(proc)
        return proc

    def finish_connect(self, proc: Proc, idle: float = 0) -> ConnectResult:
        bound = HANDSHAKE_TIMEOUT_S + idle + RUN_SLACK_S
        try:
            rc = proc.p.wait(timeout=bound)
        except subprocess.TimeoutExpired:
            proc.kill()
            self.fail(f"{proc.prog} `connect` did not exit within {bound} s (killed)")
        return ConnectResult(proc, rc)

    def connect(self, prog: str, ticket: str, *args: str, alpn: str = ALPN, stdin: bytes | None = None,
                idle: float = 0) -> ConnectResult:
        return self.finish_connect(self.start_connect(prog, ticket, *args, alpn=alpn, stdin=stdin), idle)

    def wait_event(self, srv: Listener, pred, what: str, timeout: float = EVENT_TIMEOUT_S) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            for ev in srv.events():
                if pred(ev):
                    return ev
            if time.monotonic() > deadline:
                self.fail(f"server printed no {what} event within {timeout} s")
            time.sleep(0.05)

    # ---- verdicts --------------------------------------------------------------------------
    def expect_ok(self, r: ConnectResult, srv: Listener, *, alpn: str = ALPN, bytes_: int = 0,
                  echoed: int | None = None) -> dict:
        prog = r.proc.prog
        self.check(r.rc == 0, f"{prog} connect failed (exit {r.rc}){_rc_hint(prog, r.rc)}")
        self.check(r.json is not None, f"{prog} connect --json must print exactly one JSON line on stdout")
        j = r.json
        self.check(j.get("ok") is True, f"{prog} connect reported ok={j.get('ok')!r}")
        self.check(j.get("remote") == srv.id, f"remote {j.get('remote')!r} != server id {srv.id}")
        self.check(j.get("alpn") == alpn, f"alpn {j.get('alpn')!r} != {alpn!r}")
        self.check(j.get("path") == f"udp:{srv.addr}", f"path {j.get('path')!r} != 'udp:{srv.addr}'")
        self.check(isinstance(j.get("connect_ms"), (int, float)), f"connect_ms missing: {j.get('connect_ms')!r}")
        self.check(j.get("bytes") == bytes_, f"bytes {j.get('bytes')!r} != {bytes_} written")
        if echoed is not None:
            self.check(j.get("echoed") == echoed, f"echoed {j.get('echoed')!r} != {echoed} verified bytes")
        return j

    def expect_error(self, r: ConnectResult, kind: str) -> dict:
        prog = r.proc.prog
        self.check(r.rc == 1, f"{prog} connect should fail with exit 1 and kind {kind!r}, got exit {r.rc}"
                              f"{_rc_hint(prog, r.rc)}")
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        self.check(len(lines) == 1, f"{prog} connect failure must write ONE stderr line, wrote {len(lines)}")
        m = re.fullmatch(r"\S+: error: ([a-z-]+): (.*)", lines[0])
        self.check(m is not None, f"stderr line is not `PROG: error: KIND: detail`: {lines[0]!r}")
        self.check(m.group(1) == kind, f"error kind {m.group(1)!r}, expected {kind!r}")
        self.check(r.json is not None and r.json.get("ok") is False and r.json.get("error_kind") == kind,
                   f"--json stdout must be {{\"ok\":false,\"error_kind\":\"{kind}\",...}}, got {r.stdout!r}")
        return r.json


@pytest.fixture
def lab(tmp_path):
    lb = Lab(tmp_path)
    try:
        yield lb
    finally:
        lb.kill_all()


def split(pair: str) -> tuple[str, str]:
    client, server = pair.split("-")
    return client, server


def report(request, pair: str, j: dict, what: str):
    """Record the numbers (shown with -rA / in junit properties)."""
    request.node.user_properties.append((what, {k: j.get(k) for k in ("connect_ms", "seconds", "mb_per_s", "rtt_ms")}))
    print(f"[{pair}] {what}: connect_ms={j.get('connect_ms')} seconds={j.get('seconds')} "
          f"mb_per_s={j.get('mb_per_s')} rtt_ms={j.get('rtt_ms')}")


# ------------------------------------------------------------------------------------------------
# the matrix
# ------------------------------------------------------------------------------------------------
pairs = pytest.mark.parametrize("pair", PAIRS)


@pytest.mark.parametrize("size", [1, 1 << 20, 16 << 20], ids=["1B", "1MiB", "16MiB"])
@pairs
def test_echo_one_stream(lab, request, rng, pair, size):
    """One bidi stream echoed and verified byte for byte by the client (1 MiB: seeded random bytes
    sent with --stdin; otherwise the contract's pattern)."""
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    if size == 1 << 20:
        data = rng.randbytes(size)
        r = lab.connect(client, srv.ticket, "--stdin", "--echo", stdin=data)
    else:
        r = lab.connect(client, srv.ticket, "--bytes", str(size), "--echo")
    j = lab.expect_ok(r, srv, bytes_=size, echoed=size)
    ev = lab.wait_event(srv, lambda e: e.get("event") == "accepted", "accepted")
    lab.check(ev.get("alpn") == ALPN and re.fullmatch(r"[0-9a-f]{64}", str(ev.get("remote"))),
              f"bad accepted event {ev}")
    report(request, pair, j, f"echo {size} B")


@pairs
def test_concurrent_bidi_streams(lab, rng, pair):
    client, server = split(pair)
    n = rng.randrange(1, 64 * 1024)
    srv = lab.listen(server, "--echo")
    r = lab.connect(client, srv.ticket, "--streams", "32", "--bytes", str(n), "--echo")
    lab.expect_ok(r, srv, bytes_=32 * n, echoed=32 * n)


@pairs
def test_uni_streams(lab, rng, pair):
    client, server = split(pair)
    k, n = rng.randrange(1, 9), rng.randrange(1, 200 * 1024)
    srv = lab.listen(server, "--echo")
    r = lab.connect(client, srv.ticket, "--uni", "--streams", str(k), "--bytes", str(n), "--echo")
    lab.expect_ok(r, srv, bytes_=k * n, echoed=k * n)


@pairs
def test_datagrams(lab, pair):
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    r = lab.connect(client, srv.ticket, "--datagrams", "100")
    j = lab.expect_ok(r, srv)
    lab.check(j.get("datagrams_sent") == 100, f"datagrams_sent {j.get('datagrams_sent')!r} != 100")
    lab.check(isinstance(j.get("datagrams_echoed"), int) and 95 <= j["datagrams_echoed"] <= 100,
              f"datagrams_echoed {j.get('datagrams_echoed')!r}: expected >= 95 of 100 on loopback")


@pairs
def test_client_close_code(lab, pair):
    """The client closes with code 42 "bye-from-client": the server's closed event shows it."""
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    r = lab.connect(client, srv.ticket, "--bytes", "1000", "--echo", "--close-code", "42",
                    "--close-reason", "bye-from-client")
    j = lab.expect_ok(r, srv, bytes_=1000, echoed=1000)
    lab.check(j.get("closed_by_peer") is None, f"the server did not close, but closed_by_peer={j.get('closed_by_peer')!r}")
    ev = lab.wait_event(srv, lambda e: e.get("event") == "closed", "closed")
    want = {"by": "peer", "kind": "application", "code": 42, "reason": "bye-from-client"}
    got = {k: ev.get(k) for k in want}
    lab.check(got == want, f"server closed event {ev} should carry {want}")
    lab.check(ev.get("remote") == lab.wait_event(srv, lambda e: e.get("event") == "accepted", "accepted").get("remote"),
              f"closed event remote differs from the accepted one: {srv.events()}")


@pairs
def test_server_close_code(lab, pair):
    """`listen --close-code 7 --close-reason srv-bye`: the client reports closed_by_peer."""
    client, server = split(pair)
    srv = lab.listen(server, "--echo", "--close-code", "7", "--close-reason", "srv-bye")
    r = lab.connect(client, srv.ticket, "--bytes", "1000", "--echo")
    j = lab.expect_ok(r, srv, bytes_=1000, echoed=1000)
    want = {"code": 7, "reason": "srv-bye", "kind": "application"}
    lab.check(j.get("closed_by_peer") == want, f"closed_by_peer {j.get('closed_by_peer')!r} != {want}")
    ev = lab.wait_event(srv, lambda e: e.get("event") == "closed", "closed")
    got = {k: ev.get(k) for k in ("by", "kind", "code", "reason")}
    lab.check(got == {"by": "local", "kind": "application", "code": 7, "reason": "srv-bye"},
              f"server closed event {ev} should be by local, application, code 7, srv-bye")


@pytest.mark.parametrize("pair", [p for p in PAIRS if p in IDLE_PAIRS])
def test_idle_keepalive(lab, request, pair):
    """45 s without application data, then an echo: keep-alive must hold the connection (2x45 s)."""
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    r = lab.connect(client, srv.ticket, "--idle", "45", "--bytes", "4096", "--echo", idle=45)
    j = lab.expect_ok(r, srv, bytes_=4096, echoed=4096)
    lab.check(not any(e.get("event") == "closed" and e.get("by") == "timeout" for e in srv.events()),
              "the server timed the connection out")
    report(request, pair, j, "echo after 45 s idle")


@pairs
def test_wrong_expected_id(lab, rng, pair):
    """A ticket with the server's address but another id: the client must refuse (key-mismatch)."""
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    other = W.random_point_bytes(rng).hex()
    lab.check(other != srv.id, "rng produced the server's own id")
    bad = W.ticket(W.blob(other, [W.ip_entry(srv.addr)]))
    lab.check(decode_ticket(bad) == {"id": other, "relays": [], "addrs": [srv.addr]}, "ticket re-encoding broke")
    r = lab.connect(client, bad, "--bytes", "100", "--echo")
    lab.expect_error(r, "key-mismatch")
    # the server is unaffected
    lab.expect_ok(lab.connect(client, srv.ticket, "--bytes", "100", "--echo"), srv, bytes_=100, echoed=100)


@pairs
def test_alpn_mismatch(lab, pair):
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    r = lab.connect(client, srv.ticket, "--bytes", "100", "--echo", alpn="test/other/0")
    lab.expect_error(r, "alpn")
    lab.check(not any(e.get("event") == "accepted" for e in srv.events()),
              f"the server accepted a connection with an ALPN it does not list: {srv.events()}")
    lab.expect_ok(lab.connect(client, srv.ticket, "--bytes", "100", "--echo"), srv, bytes_=100, echoed=100)


@pytest.mark.parametrize("pair", [p for p in PAIRS if p in MULTI_ALPN_PAIRS])
def test_rust_refused_by_other_alpns(lab, pair):
    """A server listing several other ALPNs refuses the Rust client's test/echo/0 (kind alpn) and
    accepts the second of its own ALPNs."""
    client, server = split(pair)
    alpns = ("irohlab/a/0", "irohlab/b/1")
    srv = lab.listen(server, "--echo", alpns=alpns)
    lab.expect_error(lab.connect(client, srv.ticket, "--bytes", "10", "--echo"), "alpn")
    lab.expect_ok(lab.connect(client, srv.ticket, "--bytes", "10", "--echo", alpn=alpns[1]), srv,
                  alpn=alpns[1], bytes_=10, echoed=10)
    ev = lab.wait_event(srv, lambda e: e.get("event") == "accepted", "accepted")
    lab.check(ev.get("alpn") == alpns[1], f"accepted event alpn {ev.get('alpn')!r} != {alpns[1]!r}")


@pairs
def test_server_sigterm(lab, pair):
    """SIGTERM to `listen` closes every connection with code 0 and exits 0; the idle client sees
    the close (kind closed, closed_by_peer code 0)."""
    client, server = split(pair)
    srv = lab.listen(server, "--echo")
    cp = lab.start_connect(client, srv.ticket, "--idle", "4", "--bytes", "10", "--echo")
    lab.wait_event(srv, lambda e: e.get("event") == "accepted", "accepted")
    os.kill(srv.proc.p.pid, signal.SIGTERM)
    try:
        rc = srv.proc.p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        lab.fail(f"{server} `listen` did not exit within 10 s of SIGTERM")
    lab.check(rc == 0, f"{server} `listen` exited {rc} on SIGTERM, expected 0")
    ev = lab.wait_event(srv, lambda e: e.get("event") == "closed", "closed", timeout=1)
    lab.check((ev.get("by"), ev.get("kind"), ev.get("code")) == ("local", "application", 0),
              f"closed event after SIGTERM should be by local, application, code 0: {ev}")
    j = lab.expect_error(lab.finish_connect(cp, idle=4), "closed")
    cbp = j.get("closed_by_peer")
    lab.check(isinstance(cbp, dict) and cbp.get("code") == 0 and cbp.get("kind") == "application",
              f"client closed_by_peer should be code 0 / application, got {cbp!r}")

"""`irohlab relay` against real Rust iroh 1.0.2 endpoints (spec §6).

Every process runs on 127.0.0.1, is started with bounded waits and is killed by PID in a
`finally` block even when the test fails. Rust endpoints are driven by interop/relay_peer.mjs.

(a) two Rust endpoints echo 4 MiB both ways through our relay; the relay's metrics show forwarded
    datagrams; whether the pair then went direct is recorded (printed), never asserted.
(b) the ClientAuth a Rust endpoint sends for a fixed challenge equals spec §6.4's captured vector.
(c) allowlist access control: the listed Rust endpoint gets online, an unlisted one is denied.
(d) bad input (garbage, wrong upgrades, malformed relay frames, stalled upgrades, 200 garbage
    connections) never hurts anybody else: a Rust pair keeps working and /ping keeps answering.
(e) graceful shutdown: SIGTERM → Restarting to a connected client, exit 0.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PEER = REPO / "interop" / "relay_peer.mjs"

# spec §6.4 captured handshake: client sk = 00..1f, challenge = 10..1f.
SPEC_SECRET = bytes(range(32)).hex()
SPEC_ID = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
SPEC_CHALLENGE = bytes(range(0x10, 0x20)).hex()
SPEC_CLIENT_AUTH = (
    "01" + SPEC_ID + "40"
    "3f2532023e0d48d3871cd4f1953b128b5e155ae899a482bac8bc5bd52bb37dfccd6fa7762961684ae326f2d4"
    "0d2dea96f92e32f1a03d21006909d4af3a28f700"
)

START_TIMEOUT_S = 10
ONLINE_TIMEOUT_S = 15


def wait_for(pred, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Proc:
    """A child process whose stdout/stderr go to files (no pipe can fill up and block it)."""

    def __init__(self, name: str, argv: list[str], tmp: Path):
        self.name = name
        self.out_path = tmp / f"{name}.out"
        self.err_path = tmp / f"{name}.err"
        self._out = open(self.out_path, "wb")
        self._err = open(self.err_path, "wb")
        self.p = subprocess.Popen(argv, stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL, cwd=str(REPO))

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
        self._out.close()
        self._err.close()

    def describe(self) -> str:
        return f"\n--- {self.name} stdout ---\n{self.out()[-3000:]}\n--- {self.name} stderr ---\n{self.err()[-3000:]}"


class Relay:
    def __init__(self, proc: Proc):
        self.proc = proc
        line = wait_for(lambda: proc.out().splitlines()[:1], START_TIMEOUT_S, "relay startup line")[0]
        m = re.fullmatch(r"relay listening on (http://127\.0\.0\.1:(\d+)/)", line)
        assert m, f"unexpected startup line {line!r}" + proc.describe()
        self.url, self.port = m.group(1), int(m.group(2))
        mm = wait_for(lambda: re.search(r"metrics=(http://\S+/metrics)", proc.err()), START_TIMEOUT_S, "metrics url")
        self.metrics_url = mm.group(1)

    def metrics(self) -> dict[str, float]:
        with urllib.request.urlopen(self.metrics_url, timeout=5) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def alive(self) -> bool:
        if self.proc.p.poll() is not None:
            return False
        status, _, _ = http_get(self.port, "/ping")
        return status == 200


@contextlib.contextmanager
def processes(tmp: Path):
    """Yields a starter; every started process is SIGKILLed by PID on exit."""
    started: list[Proc] = []

    def start(name: str, argv: list[str]) -> Proc:
        p = Proc(name, argv, tmp)
        started.append(p)
        return p

    try:
        yield start
    finally:
        for p in reversed(started):
            p.kill()


def node() -> str:
    n = shutil.which("node")
    if n is None:
        pytest.fail("node is not on PATH: install Node.js and run tools/setup-deps", pytrace=False)
    return n


def start_relay(start, irohlab_bin, *args: str, name: str = "relay") -> Relay:
    p = start(name, [str(irohlab_bin), "relay", "--bind", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                     "--log-level", "debug", *args])
    return Relay(p)


def start_rust_server(start, relay: Relay, *args: str, name: str = "rust-server", online: bool = True):
    p = start(name, [node(), "--no-deprecation", str(PEER), "server", "--relay", relay.url, *args])
    m = wait_for(lambda: re.search(r"^ID ([0-9a-f]{64})$", p.out(), re.M), START_TIMEOUT_S, "rust server id")
    if online:
        try:
            wait_for(lambda: "ONLINE" in p.out(), ONLINE_TIMEOUT_S, "rust server online via our relay")
        except AssertionError as e:
            raise AssertionError(str(e) + p.describe() + relay.proc.describe()) from None
    return m.group(1), p


def rust_client(relay: Relay, peer_id: str, nbytes: int, *args: str, timeout: float = 30) -> dict:
    argv = [node(), "--no-deprecation", str(PEER), "client", "--relay", relay.url, "--peer", peer_id,
            "--bytes", str(nbytes), "--timeout", str(timeout), *args]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         cwd=str(REPO), text=True)
    try:
        out, err = p.communicate(timeout=timeout + 10)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(timeout=5)
    lines = [l for l in out.splitlines() if l.startswith("{")]
    assert lines, f"relay_peer client printed no JSON (exit {p.returncode}): {out!r} {err[-2000:]!r}"
    res = json.loads(lines[-1])
    res["_stderr"] = err[-2000:]
    return res


# ------------------------------------------------------------------------------------------------
# raw HTTP / WebSocket helpers (no third-party modules)
# ------------------------------------------------------------------------------------------------
def read_http_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError(f"connection closed before a full response: {buf!r}")
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for l in lines[1:]:
        k, v = l.split(":", 1)
        headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    while len(rest) < n:
        chunk = s.recv(4096)
        if not chunk:
            break
        rest += chunk
    return status, headers, rest


def http_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n"
        for k, v in (headers or {}).items():
            req += f"{k}: {v}\r\n"
        s.sendall((req + "\r\n").encode())
        return read_http_response(s)


def upgrade_request(port: int, *, version: str | None = "13", protocols: str | None = "iroh-relay-v2, iroh-relay-v1",
                    upgrade: str = "websocket") -> bytes:
    req = (f"GET /relay HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: {upgrade}\r\nConnection: Upgrade\r\n"
           f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n")
    if version is not None:
        req += f"Sec-WebSocket-Version: {version}\r\n"
    if protocols is not None:
        req += f"Sec-WebSocket-Protocol: {protocols}\r\n"
    return (req + "\r\n").encode()


class Ws:
    """A minimal RFC 6455 client: masked frames out, unfragmented frames in."""

    def __init__(self, port: int, protocols: str = "iroh-relay-v2, iroh-relay-v1", rcvbuf: int | None = None):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:  # before connect, so the TCP window stays small
            self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.s.settimeout(5)
        self.s.connect(("127.0.0.1", port))
        self.s.sendall(upgrade_request(port, protocols=protocols))
        self.status, self.headers, self.buf = read_http_response(self.s)

    def send(self, payload: bytes, opcode: int = 2):
        mask = os.urandom(4)
        n = len(payload)
        head = bytes([0x80 | opcode])
        if n < 126:
            head += bytes([0x80 | n])
        elif n < 65536:
            head += bytes([0x80 | 126]) + struct.pack(">H", n)
        else:
            head += bytes([0x80 | 127]) + struct.pack(">Q", n)
        self.s.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _need(self, n: int):
        while len(self.buf) < n:
            chunk = self.s.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buf += chunk

    def recv(self) -> tuple[int, bytes]:
        self._need(2)
        opcode, n = self.buf[0] & 0x0F, self.buf[1] & 0x7F
        off = 2
        if n == 126:
            self._need(4)
            n, off = struct.unpack(">H", self.buf[2:4])[0], 4
        elif n == 127:
            self._need(10)
            n, off = struct.unpack(">Q", self.buf[2:10])[0], 10
        self._need(off + n)
        payload, self.buf = self.buf[off:off + n], self.buf[off + n:]
        return opcode, payload

    def recv_until_closed(self, timeout: float) -> list[tuple[int, bytes]]:
        """Frames received until the server closes (WS close frame, answered, or EOF)."""
        self.s.settimeout(timeout)
        frames = []
        with contextlib.suppress(ConnectionError, OSError):
            while True:
                op, p = self.recv()
                frames.append((op, p))
                if op == 8:
                    self.send(p[:2], opcode=8)  # complete the closing handshake
                    break
        return frames

    def close(self):
        with contextlib.suppress(OSError):
            self.s.close()


def closed_within(s: socket.socket, timeout: float) -> bool:
    """True if the peer closes `s` (EOF/reset) within `timeout`, reading and discarding data."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if not s.recv(65536):
                return True
        except socket.timeout:
            return False
        except OSError:
            return True
    return False


# ------------------------------------------------------------------------------------------------
# tests
# ------------------------------------------------------------------------------------------------
def test_bad_flags_exit_2(irohlab_bin):
    for args in (["--bind", "nonsense"], ["--bind", "127.0.0.1:0", "--access", "bogus"],
                 ["--bind", "127.0.0.1:0", "--access", "allowlist:/nonexistent/file"],
                 ["--bind", "127.0.0.1:0", "--log-level", "loud"],
                 ["--bind", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem"],
                 ["--bind", "127.0.0.1:0", "--rate-burst", "10"],
                 ["--bind", "127.0.0.1:0", "--fixed-challenge", "abc"], []):
        p = subprocess.run([str(irohlab_bin), "relay", *args], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        assert p.stdout == "", (args, p.stdout)
        assert len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)


def test_http_endpoints_and_upgrade_checks(irohlab_bin, tmp_path):
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin)
        port = relay.port
        assert http_get(port, "/ping")[0] == 200
        st, h, _ = http_get(port, "/generate_204", {"X-Iroh-Challenge": "ts_relay.example-1"})
        assert st == 204 and h.get("x-iroh-response") == "response ts_relay.example-1"
        st, h, _ = http_get(port, "/generate_204", {"X-Iroh-Challenge": "bad challenge!"})
        assert st == 204 and "x-iroh-response" not in h
        st, h, _ = http_get(port, "/generate_204", {"X-Iroh-Challenge": "a" * 64})
        assert st == 204 and "x-iroh-response" not in h
        st, h, body = http_get(port, "/")
        assert st == 200 and h["content-type"].startswith("text/html") and b"<html" in body
        st, _, body = http_get(port, "/robots.txt")
        assert st == 200 and body == b"User-agent: *\nDisallow: /\n"
        assert http_get(port, "/nope")[0] == 404

        # Subprotocol negotiation: v2 preferred, v1 alone accepted, the choice echoed in the 101.
        for offered, chosen in (("iroh-relay-v2, iroh-relay-v1", "iroh-relay-v2"),
                                ("iroh-relay-v1", "iroh-relay-v1"),
                                ("foo, iroh-relay-v1, iroh-relay-v2", "iroh-relay-v2")):
            ws = Ws(port, offered)
            try:
                assert ws.status == 101, (offered, ws.status)
                assert ws.headers.get("sec-websocket-protocol") == chosen
                op, challenge = ws.recv()
                assert op == 2 and len(challenge) == 17 and challenge[0] == 0  # ServerChallenge
            finally:
                ws.close()


def test_rust_pair_echoes_4mib_through_relay(irohlab_bin, tmp_path):
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin)
        t0 = time.monotonic()
        server_id, server = start_rust_server(start, relay)
        online_s = time.monotonic() - t0
        res = rust_client(relay, server_id, 4 << 20, "--linger", "1")
        assert res["ok"], f"echo through relay failed: {res}" + server.describe() + relay.proc.describe()
        m = relay.metrics()
        assert m["irohlab_relay_auth_ok_total"] >= 2
        assert m["irohlab_relay_datagrams_forwarded_total"] > 0, m
        assert m["irohlab_relay_bytes_forwarded_total"] > 0, m
        assert m["irohlab_relay_protocol_errors_total{layer=\"relay\"}"] == 0, m
        log = relay.proc.err()
        assert f"endpoint={server_id}" in log and f"endpoint={res['id']}" in log
        direct = [p for p in res["paths_after"] if p["ip"] and p["selected"]]
        relay_paths = [p for p in res["paths_at_connect"] if p["relay"]]
        assert relay_paths, f"connection did not start on the relay path: {res['paths_at_connect']}"
        print(f"\n[relay interop] rust server online via relay in {online_s * 1000:.0f} ms; "
              f"client connect {res['connect_ms']} ms; 4 MiB echo in {res['echo_ms']} ms "
              f"({res['mb_per_s']:.1f} MB/s both ways); relay forwarded "
              f"{int(m['irohlab_relay_datagrams_forwarded_total'])} datagrams / "
              f"{int(m['irohlab_relay_bytes_forwarded_total'])} bytes; "
              f"direct path selected afterwards: {bool(direct)} {direct}")


def test_rust_client_auth_matches_spec_vector(irohlab_bin, tmp_path):
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--fixed-challenge", SPEC_CHALLENGE)
        server_id, _ = start_rust_server(start, relay, "--secret", SPEC_SECRET)
        assert server_id == SPEC_ID
        log = relay.proc.err()
        frames = re.findall(r'msg="handshake frame" conn=\d+ hex=([0-9a-f]+)', log)
        assert frames, log[-3000:]
        assert frames[0] == SPEC_CLIENT_AUTH
        assert f"endpoint={SPEC_ID}" in log


def test_allowlist_admits_listed_and_denies_others(irohlab_bin, tmp_path):
    allow = tmp_path / "allow.txt"
    allow.write_text(f"# only the spec's test identity\n{SPEC_ID}\n")
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--access", f"allowlist:{allow}")
        server_id, _ = start_rust_server(start, relay, "--secret", SPEC_SECRET)  # listed: gets online
        t0 = time.monotonic()
        res = rust_client(relay, server_id, 1024, timeout=5)  # random id: not listed
        elapsed = time.monotonic() - t0
        assert not res["ok"], res
        assert elapsed < 20
        m = relay.metrics()
        assert m["irohlab_relay_auth_failures_total{reason=\"denied\"}"] >= 1, m
        assert m["irohlab_relay_datagrams_forwarded_total"] == 0, m
        assert "access denied: not authorized" in relay.proc.err()


def test_bad_input_hurts_nobody(irohlab_bin, tmp_path, rng):
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--upgrade-timeout", "500")
        server_id, _ = start_rust_server(start, relay)
        port = relay.port

        def still_fine(what: str):
            assert relay.alive(), f"relay down after {what}" + relay.proc.describe()

        # Garbage instead of HTTP.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(bytes(rng.randrange(256) for _ in range(4096)))
            assert closed_within(s, 3)
        still_fine("garbage")

        # Missing Sec-WebSocket-Version → 400 carrying Sec-WebSocket-Version: 13; wrong version too.
        for version in (None, "8"):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(upgrade_request(port, version=version))
                st, h, _ = read_http_response(s)
                assert st == 400 and h.get("sec-websocket-version") == "13", (version, st, h)
        # Unknown / missing subprotocol, wrong Upgrade value → 400.
        for kw in ({"protocols": "iroh-relay-v3"}, {"protocols": None}, {"upgrade": "WebSocket2"}):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(upgrade_request(port, **kw))
                assert read_http_response(s)[0] == 400, kw
        still_fine("bad upgrades")

        # A WebSocket client that sends a malformed relay frame, a text message, an oversized message.
        before = relay.metrics()
        for payload, opcode in ((b"\xff\xff\xff", 2), (b"\x04" + b"\x00" * 10, 2), (b"hello", 1),
                                (bytes(SPEC_CLIENT_AUTH, "ascii"), 2)):
            ws = Ws(port)
            try:
                assert ws.status == 101
                assert ws.recv()[1][0] == 0  # ServerChallenge
                ws.send(payload, opcode)
                frames = ws.recv_until_closed(3)
                assert not frames or frames[-1][0] == 8 or all(f[0] == 2 for f in frames), frames
                assert closed_within(ws.s, 3), (payload, opcode)
            finally:
                ws.close()
        after = relay.metrics()
        assert (after["irohlab_relay_auth_failures_total{reason=\"handshake_error\"}"]
                > before["irohlab_relay_auth_failures_total{reason=\"handshake_error\"}"])
        still_fine("malformed relay frames")

        # An upgrade that never finishes is cut off by the (test-shortened) upgrade deadline.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /relay HTTP/1.1\r\nHost: x\r\n")
            t0 = time.monotonic()
            assert closed_within(s, 5)
            assert time.monotonic() - t0 < 3
        assert relay.metrics()["irohlab_relay_upgrade_timeouts_total"] >= 1
        still_fine("stalled upgrade")

        # 200 garbage connections, bounded.
        deadline = time.monotonic() + 20
        for i in range(200):
            assert time.monotonic() < deadline, f"garbage loop too slow at {i}"
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                kind = i % 4
                if kind == 0:
                    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 2048))))
                elif kind == 1:
                    s.sendall(upgrade_request(port)[: rng.randrange(1, 120)])
                elif kind == 2:
                    s.sendall(upgrade_request(port) + bytes(rng.randrange(256) for _ in range(64)))
                # kind 3: connect and hang up at once
        still_fine("200 garbage connections")

        # The Rust pair is unaffected.
        res = rust_client(relay, server_id, 64 << 10)
        assert res["ok"], f"{res}" + relay.proc.describe()


def test_sigterm_sends_restarting_and_exits_0(irohlab_bin, tmp_path):
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--fixed-challenge", SPEC_CHALLENGE)
        ws = Ws(relay.port)
        try:
            assert ws.recv() == (2, bytes.fromhex("00" + SPEC_CHALLENGE))
            ws.send(bytes.fromhex(SPEC_CLIENT_AUTH))  # the spec's captured Rust ClientAuth
            assert ws.recv() == (2, b"\x02")  # ServerConfirmsAuth
            ws.send(bytes.fromhex("09 2a2a2a2a2a2a2a2a"))
            assert ws.recv() == (2, bytes.fromhex("0a 2a2a2a2a2a2a2a2a"))  # Pong
            # Datagram to ourselves comes back as RelayToClientDatagram from us.
            ws.send(bytes.fromhex("04" + SPEC_ID + "02") + b"hi")
            assert ws.recv() == (2, bytes.fromhex("06" + SPEC_ID + "02") + b"hi")
            relay.proc.p.send_signal(signal.SIGTERM)
            frames = ws.recv_until_closed(5)
            assert frames and frames[0][0] == 2 and frames[0][1][:1] == b"\x0c" and len(frames[0][1]) == 9, frames
            assert frames[-1][0] == 8, frames  # WebSocket close
        finally:
            ws.close()
        assert relay.proc.p.wait(timeout=10) == 0, relay.proc.describe()
        assert "shutting down" in relay.proc.err()


def test_https_relay_serves_tls(irohlab_bin, tmp_path):
    """--tls-cert/--tls-key: https:// URL, /ping and the WebSocket upgrade work over TLS.
    (Rust endpoints insist on WebPKI-valid certificates, so this one is checked with Python's ssl.)"""
    import ssl

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1"],
                   check=True, capture_output=True, timeout=30)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with processes(tmp_path) as start:
        p = start("relay-tls", [str(irohlab_bin), "relay", "--bind", "127.0.0.1:0", "--tls-cert", str(cert),
                                "--tls-key", str(key)])
        line = wait_for(lambda: p.out().splitlines()[:1], START_TIMEOUT_S, "relay startup line")[0]
        m = re.fullmatch(r"relay listening on https://127\.0\.0\.1:(\d+)/", line)
        assert m, line + p.describe()
        port = int(m.group(1))
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            st, h, _ = read_http_response(s)
            assert st == 200 and "strict-transport-security" in h
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as s:
            s.sendall(upgrade_request(port))
            st, h, rest = read_http_response(s)
            assert st == 101 and h.get("sec-websocket-protocol") == "iroh-relay-v2"
            while len(rest) < 19:
                rest += s.recv(64)
            assert rest[:3] == b"\x82\x11\x00"  # binary frame, 17 bytes: ServerChallenge
        # A plain-text client on the TLS port is dropped, the server stays up.
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n")
            assert closed_within(s, 5)
        assert p.p.poll() is None


def test_forwarding_throughput_self_loop(irohlab_bin, tmp_path):
    """Relay forwarding rate with one authenticated raw client sending datagrams to its own id
    (the spec's captured identity, via --fixed-challenge). Windows of 256 stay under the
    512-frame queue limit, so nothing may be dropped. Reports MB/s; the bound is Python's."""
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--fixed-challenge", SPEC_CHALLENGE)
        ws = Ws(relay.port)
        try:
            ws.recv()
            ws.send(bytes.fromhex(SPEC_CLIENT_AUTH))
            assert ws.recv() == (2, b"\x02")
            payload = os.urandom(1200)
            frame = bytes.fromhex("04" + SPEC_ID + "00") + payload
            expect = bytes.fromhex("06" + SPEC_ID + "00") + payload
            head = bytes([0x82, 0x80 | 126]) + struct.pack(">H", len(frame)) + b"\x00\x00\x00\x00"  # zero mask
            window, rounds = 256, 40
            t0 = time.monotonic()
            for _ in range(rounds):
                ws.s.sendall((head + frame) * window)
                for _ in range(window):
                    assert ws.recv() == (2, expect)
            secs = time.monotonic() - t0
            n = window * rounds
            m = relay.metrics()
            assert m["irohlab_relay_datagrams_forwarded_total"] == n
            assert m["irohlab_relay_drops_total{reason=\"queue_full\"}"] == 0
            print(f"\n[relay throughput] {n} x 1200 B self-forwarded in {secs:.2f} s = "
                  f"{n * 1200 / secs / 1e6:.1f} MB/s, {n / secs:.0f} datagrams/s (Python client bound)")
        finally:
            ws.close()


def test_shared_token_access(irohlab_bin, tmp_path):
    """--access token:T: a Rust endpoint configured with authToken T (sent as Authorization: Bearer)
    gets online and can be reached; one without the token is denied in-band."""
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--access", "token:s3cret-token")
        server_id, _ = start_rust_server(start, relay, "--token", "s3cret-token")
        res = rust_client(relay, server_id, 4096, "--token", "s3cret-token")
        assert res["ok"], f"{res}" + relay.proc.describe()
        bad = rust_client(relay, server_id, 4096, "--token", "wrong", timeout=5)
        assert not bad["ok"], bad
        m = relay.metrics()
        assert m["irohlab_relay_auth_ok_total"] == 2, m
        assert m["irohlab_relay_auth_failures_total{reason=\"denied\"}"] >= 1, m


def test_rate_limited_rust_pair_still_works(irohlab_bin, tmp_path):
    """A tight --rate-limit throttles the Rust clients' reads (Status RateLimited goes to these v2
    clients, which iroh 1.0.2 tolerates as an unknown status) without breaking them."""
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--rate-limit", "20000", "--rate-burst", "4000")
        server_id, _ = start_rust_server(start, relay)
        res = rust_client(relay, server_id, 64 << 10)
        assert res["ok"], f"{res}" + relay.proc.describe()
        m = relay.metrics()
        assert m["irohlab_relay_rate_limited_total"] > 0, m
        assert m["irohlab_relay_datagrams_forwarded_total"] > 0, m


def test_client_that_never_reads_is_dropped(irohlab_bin, tmp_path):
    """A client that floods datagrams to itself but never reads: its queue fills (drops counted),
    a write stays pending > 2 s (iroh-relay's per-write timeout) and the relay closes it. The
    relay itself keeps serving."""
    with processes(tmp_path) as start:
        relay = start_relay(start, irohlab_bin, "--fixed-challenge", SPEC_CHALLENGE)
        ws = Ws(relay.port, rcvbuf=4096)
        try:
            ws.recv()
            ws.send(bytes.fromhex(SPEC_CLIENT_AUTH))
            assert ws.recv() == (2, b"\x02")
            frame = bytes.fromhex("04" + SPEC_ID + "00") + os.urandom(1200)
            head = bytes([0x82, 0x80 | 126]) + struct.pack(">H", len(frame)) + b"\x00\x00\x00\x00"
            ws.s.settimeout(0.5)
            closed = False
            t0 = time.monotonic()
            while time.monotonic() - t0 < 10 and not closed:
                try:
                    ws.s.sendall((head + frame) * 64)
                except socket.timeout:
                    pass
                except OSError:
                    closed = True
                if not closed:
                    m = relay.metrics()
                    closed = m["irohlab_relay_write_timeouts_total"] >= 1
            m = relay.metrics()
            assert m["irohlab_relay_write_timeouts_total"] >= 1, m
            assert m["irohlab_relay_drops_total{reason=\"queue_full\"}"] > 0, m
            assert m["irohlab_relay_clients"] == 0, m
            assert relay.alive()
        finally:
            ws.close()

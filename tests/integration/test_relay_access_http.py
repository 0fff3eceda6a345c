"""`irohlab relay --access http:URL` (spec §6.7) against a tiny Python access service.

After authentication the relay POSTs to URL with `X-Iroh-NodeId: <hex id>` (and `Authorization:
Bearer T` with --access-http-token T); the client is allowed iff the answer is 200 with body
exactly `true`. Everything else denies, with the reason in ServerDeniesAuth.

Real Rust endpoints (interop/relay_peer.mjs): the listed one gets online and is reachable, an
unlisted one is refused and its own log carries the relay's reason. Raw WebSocket clients (the
spec's captured identity via --fixed-challenge) check each outcome's exact reason, the 5 s timeout,
an unreachable service, and that a slow access service never blocks the relay's event loop.
"""
from __future__ import annotations

import http.server
import re
import socket
import subprocess
import threading
import time

import test_relay_interop as R

SPEC_ID = R.SPEC_ID
SPEC_SECRET = R.SPEC_SECRET
SPEC_CHALLENGE = R.SPEC_CHALLENGE
SPEC_CLIENT_AUTH = bytes.fromhex(R.SPEC_CLIENT_AUTH)
TOKEN = "access-s3cret"


class AccessService:
    """POST /check: 200 `true` for allowed ids (and the right bearer token), else per `mode`."""

    def __init__(self, allowed: set[str]):
        self.allowed = set(allowed)
        self.mode = "normal"  # normal | false | 500 | slow
        self.requests: list[dict] = []
        svc = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                if n:
                    self.rfile.read(n)
                node = self.headers.get("X-Iroh-NodeId", "")
                svc.requests.append({"path": self.path, "node": node,
                                     "auth": self.headers.get("Authorization"),
                                     "host": self.headers.get("Host")})
                if svc.mode == "slow":
                    time.sleep(7)
                if svc.mode == "500":
                    return self._answer(500, b"oops")
                if svc.mode == "false":
                    return self._answer(200, b"false")
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, b"false")
                if node in svc.allowed:
                    return self._answer(200, b"true")
                return self._answer(403, b"false")

            def _answer(self, status: int, body: bytes):
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(body)))
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/check"
        self._t = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def raw_auth(port: int, timeout: float = 8) -> tuple[list[bytes], float]:
    """Authenticate as the spec identity; the relay frames received until close, and the time."""
    ws = R.Ws(port)
    try:
        assert ws.status == 101
        assert ws.recv() == (2, bytes.fromhex("00" + SPEC_CHALLENGE))
        t0 = time.monotonic()
        ws.send(SPEC_CLIENT_AUTH)
        ws.s.settimeout(timeout)
        frames = []
        try:
            op, p = ws.recv()
            if op == 2:
                frames.append(p)
            if p[:1] == b"\x03":
                frames += [f for o, f in ws.recv_until_closed(3) if o == 2]
        except (ConnectionError, OSError):
            pass
        return frames, time.monotonic() - t0
    finally:
        ws.close()


def denies(reason: str) -> bytes:
    b = reason.encode()
    assert len(b) < 128
    return b"\x03" + bytes([len(b)]) + b


def test_bad_access_flags_exit_2(irohlab_bin):
    for args in (["--access", "http:"], ["--access", "http:https://127.0.0.1:1/"],
                 ["--access", "http:ftp://x/"], ["--access", "http:http://h:99999/"],
                 ["--access-http-token", "t"],  # without --access http:URL
                 ["--access", "everyone", "--access-http-token", "t"]):
        p = subprocess.run([str(irohlab_bin), "relay", "--bind", "127.0.0.1:0", *args], capture_output=True,
                           text=True, timeout=10, stdin=subprocess.DEVNULL)
        assert p.returncode == 2, (args, p.returncode, p.stderr)
        assert len(p.stderr.strip().splitlines()) == 1, (args, p.stderr)


def test_rust_endpoints_allowed_and_denied_by_access_service(irohlab_bin, tmp_path, monkeypatch):
    with AccessService({SPEC_ID}) as svc, R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin, "--access", f"http:{svc.url}", "--access-http-token", TOKEN)
        # Listed: gets online via our relay and is reachable.
        server_id, _ = R.start_rust_server(start, relay, "--secret", SPEC_SECRET)
        assert server_id == SPEC_ID
        assert {"path": "/check", "node": SPEC_ID, "auth": f"Bearer {TOKEN}",
                "host": f"127.0.0.1:{svc.port}"} in svc.requests, svc.requests

        # Unlisted: a Rust endpoint whose relay connection is refused; its own log (IROH_LOG, read
        # by relay_peer.mjs) carries the relay's reason.
        monkeypatch.setenv("IROH_LOG", "Warn")
        outsider = start("rust-outsider", [R.node(), "--no-deprecation", str(R.PEER), "server", "--relay", relay.url])
        monkeypatch.delenv("IROH_LOG")
        m = R.wait_for(lambda: re.search(r"^ID ([0-9a-f]{64})$", outsider.out(), re.M), R.START_TIMEOUT_S,
                       "outsider id")
        outsider_id = m.group(1)
        reason = "denied by access server: status 403"
        # iroh logs (on stdout): "... ConnectError::Handshake: The relay denied our authentication
        # (denied by access server: status 403)".
        R.wait_for(lambda: f"relay denied our authentication ({reason})" in outsider.out() + outsider.err(), 20,
                   "the relay's denial reason in the Rust endpoint's log")
        assert "ONLINE" not in outsider.out().splitlines()
        outsider.kill()
        assert any(r["node"] == outsider_id for r in svc.requests), svc.requests
        assert f"access denied: {reason}" in relay.proc.err()

        # A Rust client with a random id cannot reach the listed server either (it is denied too).
        res = R.rust_client(relay, server_id, 1024, timeout=5)
        assert not res["ok"], res
        met = relay.metrics()
        assert met["irohlab_relay_auth_failures_total{reason=\"denied\"}"] >= 2, met
        assert met["irohlab_relay_access_checks_total"] >= 3, met
        assert met["irohlab_relay_auth_ok_total"] >= 1, met


def test_access_service_outcomes_and_reasons(irohlab_bin, tmp_path):
    with AccessService({SPEC_ID}) as svc, R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin, "--access", f"http:{svc.url}", "--access-http-token", TOKEN,
                              "--fixed-challenge", SPEC_CHALLENGE)
        frames, _ = raw_auth(relay.port)
        assert frames == [b"\x02"], frames  # allowed

        svc.mode = "false"
        frames, _ = raw_auth(relay.port)
        assert frames == [denies("denied by access server: answer is not 'true'")], frames
        svc.mode = "500"
        frames, _ = raw_auth(relay.port)
        assert frames == [denies("denied by access server: status 500")], frames

        # A slow service: denied after the 5 s timeout, and the relay keeps serving meanwhile.
        svc.mode = "slow"
        result = {}
        t = threading.Thread(target=lambda: result.update(r=raw_auth(relay.port, timeout=10)), daemon=True)
        t.start()
        time.sleep(0.5)
        t0 = time.monotonic()
        assert R.http_get(relay.port, "/ping")[0] == 200
        assert time.monotonic() - t0 < 1.0, "event loop blocked by the access callout"
        t.join(timeout=15)
        frames, secs = result["r"]
        assert frames == [denies("denied: access server unreachable: timeout")], frames
        assert 4.5 <= secs <= 7.5, secs
        svc.mode = "normal"
        frames, _ = raw_auth(relay.port)
        assert frames == [b"\x02"], frames

    # Nothing listening at the URL: denied at once with the connection error.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]
    (tmp_path / "dead").mkdir()
    with R.processes(tmp_path / "dead") as start:
        relay = R.start_relay(start, irohlab_bin, "--access", f"http:http://127.0.0.1:{dead_port}/",
                              "--fixed-challenge", SPEC_CHALLENGE)
        frames, secs = raw_auth(relay.port)
        assert len(frames) == 1 and frames[0].startswith(b"\x03"), frames
        assert b"denied: access server unreachable: connect: " in frames[0], frames
        assert secs < 3
        assert relay.alive()

"""The relay's Prometheus /metrics (clients, bytes and datagrams forwarded, drops by reason, auth
failures by reason) and `irohlab bench relay` (N clients in pairs; zero loss, completion)."""
from __future__ import annotations

import json
import subprocess
import time

import test_relay_interop as R

SPEC_ID = R.SPEC_ID
SPEC_CHALLENGE = R.SPEC_CHALLENGE
SPEC_CLIENT_AUTH = bytes.fromhex(R.SPEC_CLIENT_AUTH)
OTHER_ID = "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61"  # sk 0x2a..; never connected


def metrics_text(relay: R.Relay) -> str:
    import urllib.request

    with urllib.request.urlopen(relay.metrics_url, timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def test_metrics_expose_clients_forwarding_drops_and_auth_failures(irohlab_bin, tmp_path):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin, "--fixed-challenge", SPEC_CHALLENGE)
        text = metrics_text(relay)
        for name, typ in (("clients", "gauge"), ("bytes_forwarded_total", "counter"),
                          ("datagrams_forwarded_total", "counter"), ("drops_total", "counter"),
                          ("auth_failures_total", "counter"), ("auth_ok_total", "counter"),
                          ("access_checks_total", "counter")):
            assert f"# TYPE irohlab_relay_{name} {typ}\n" in text, name
            assert f"# HELP irohlab_relay_{name} " in text, name
        m0 = relay.metrics()
        for key in ("irohlab_relay_clients", "irohlab_relay_bytes_forwarded_total",
                    "irohlab_relay_datagrams_forwarded_total",
                    'irohlab_relay_drops_total{reason="unknown_destination"}',
                    'irohlab_relay_drops_total{reason="queue_full"}',
                    'irohlab_relay_auth_failures_total{reason="signature_invalid"}',
                    'irohlab_relay_auth_failures_total{reason="denied"}',
                    'irohlab_relay_auth_failures_total{reason="handshake_error"}'):
            assert m0[key] == 0, (key, m0)

        # An authenticated client: forwards 3 datagrams of 5 bytes to itself, 2 to nobody.
        ws = R.Ws(relay.port)
        try:
            ws.recv()
            ws.send(SPEC_CLIENT_AUTH)
            assert ws.recv() == (2, b"\x02")
            assert relay.metrics()["irohlab_relay_clients"] == 1
            for _ in range(3):
                ws.send(bytes.fromhex("04" + SPEC_ID + "00") + b"hello")
                assert ws.recv() == (2, bytes.fromhex("06" + SPEC_ID + "00") + b"hello")
            for _ in range(2):
                ws.send(bytes.fromhex("04" + OTHER_ID + "00") + b"lost")
            ws.send(bytes.fromhex("09 0102030405060708"))
            assert ws.recv()[1][:1] == b"\x0a"  # the Pong proves the datagrams were processed

            # A bad signature and a handshake error.
            bad = bytearray(SPEC_CLIENT_AUTH)
            bad[40] ^= 1
            ws2 = R.Ws(relay.port)
            ws2.recv()
            ws2.send(bytes(bad))
            assert ws2.recv() == (2, b"\x03\x11signature invalid")
            ws2.close()
            ws3 = R.Ws(relay.port)
            ws3.recv()
            ws3.send(b"\x09" + b"\0" * 8)  # Ping before ClientAuth
            assert R.closed_within(ws3.s, 3)
            ws3.close()

            m = R.wait_for(lambda: (lambda m: m if m['irohlab_relay_auth_failures_total{reason="handshake_error"}'] >= 1
                                    else None)(relay.metrics()), 5, "handshake error counted")
            assert m["irohlab_relay_clients"] == 1
            assert m["irohlab_relay_datagrams_forwarded_total"] == 3
            assert m["irohlab_relay_bytes_forwarded_total"] == 15
            assert m['irohlab_relay_drops_total{reason="unknown_destination"}'] == 2
            assert m['irohlab_relay_drops_total{reason="queue_full"}'] == 0
            assert m['irohlab_relay_auth_failures_total{reason="signature_invalid"}'] == 1
            assert m['irohlab_relay_auth_failures_total{reason="handshake_error"}'] == 1
            assert m["irohlab_relay_auth_ok_total"] == 1
        finally:
            ws.close()
        m = R.wait_for(lambda: (lambda m: m if m["irohlab_relay_clients"] == 0 else None)(relay.metrics()), 5,
                       "client gauge back to 0")
        assert m["irohlab_relay_disconnects_total"] >= 3


def test_bench_relay_200_clients_no_loss(irohlab_bin):
    t0 = time.monotonic()
    p = subprocess.run([str(irohlab_bin), "bench", "relay", "--clients", "200", "--seconds", "5", "--json"],
                       capture_output=True, text=True, timeout=90, stdin=subprocess.DEVNULL)
    elapsed = time.monotonic() - t0
    assert p.returncode == 0, (p.returncode, p.stdout, p.stderr[-3000:])
    r = json.loads(p.stdout)
    assert r["ok"] is True, r
    assert r["clients"] == 200 and r["pairs"] == 100
    assert r["lost"] == 0 and r["client_failures"] == 0, r
    assert r["drops_queue_full"] == 0 and r["drops_unknown_destination"] == 0, r
    assert r["datagrams"] > 0 and r["datagrams_per_s"] > 0 and r["mb_per_s"] > 0, r
    assert 0 < r["latency_p50_ms"] <= r["latency_p99_ms"], r
    assert r["server_rss_kib_peak"] > 0 and r["server_cpu_percent"] > 0, r
    assert elapsed < 60
    print(f"\n[bench relay] 200 clients x 5 s: {r['datagrams_per_s']:.0f} datagrams/s, {r['mb_per_s']:.1f} MB/s, "
          f"p50 {r['latency_p50_ms']:.2f} ms, p99 {r['latency_p99_ms']:.2f} ms, relay CPU "
          f"{r['server_cpu_percent']:.0f}%, RSS peak {r['server_rss_kib_peak']} KiB, lost {r['lost']}")


def test_bench_relay_bad_flags_exit_2(irohlab_bin):
    for args in (["--clients", "3"], ["--clients", "6000"], ["--seconds", "0"], ["--clients", "x"]):
        p = subprocess.run([str(irohlab_bin), "bench", "relay", *args], capture_output=True, text=True, timeout=10,
                           stdin=subprocess.DEVNULL)
        assert p.returncode == 2, (args, p.returncode, p.stderr)

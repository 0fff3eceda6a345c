"""Hole punching on loopback: relay → direct upgrades between our endpoint and real Rust iroh 1.0.2.

Every connection starts on our relay (the ticket carries only the relay URL), negotiates QUIC
multipath + n0 NAT traversal, and must upgrade to a direct UDP path by itself (spec §5): the
server announces its addresses (ADD_ADDRESS), the client sends REACH_OUT and probes, the probed
address answers, the client opens a path there, both sides select it (biased RTT) and move the
traffic. On loopback every NAT is "none", so every pair must go direct; the NAT-type matrix is
the lab's job (netns/, scenarios/nat-matrix.toml).

(a) C++ × Rust, Rust × C++, C++ × C++ (and Rust × Rust as the baseline of the same run): direct,
    with a 4 MiB echo verified byte for byte after the upgrade.
(b) The upgrade happens in the middle of a 16 MiB echo: not one byte is lost or duplicated.
(c) Negative control: a C++ client with --no-holepunch offers no NAT traversal, so the same setup
    stays on the relay — the assertions of (a) can fail.

Every process runs on 127.0.0.1 and is killed by PID in a `finally` block.
"""
from __future__ import annotations

import pytest

import test_relay_endpoint as E
import test_relay_interop as R

MIB4 = 4 * 1024 * 1024
MIB16 = 16 * 1024 * 1024
PAIRS = [("cpp", "rust"), ("rust", "cpp"), ("cpp", "cpp"), ("rust", "rust")]


def pair_id(p):
    return f"{p[0]}-server-{p[1]}-client"


def is_direct(path: str | None) -> bool:
    return bool(path) and path.startswith("udp:127.0.0.1:")


@pytest.mark.parametrize("server,client", PAIRS, ids=[pair_id(p) for p in PAIRS])
def test_relay_to_direct_upgrade(irohlab_bin, tmp_path, server, client):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin)
        ticket, srv = E.start_listener(start, server, irohlab_bin, relay.url, f"{server}-server")
        res = E.run_connect(client, irohlab_bin, ticket, relay.url, "--wait-direct", "10",
                            "--bytes", str(MIB4), "--echo")
        ctx = f"{client} → {server}: {res}" + srv.describe() + relay.proc.describe()
        assert res["ok"], ctx
        assert res["echoed"] == MIB4, ctx
        assert res["started_relayed"] is True, ctx
        assert res["paths"][0]["path"] == f"relay:{relay.url}", ctx
        assert is_direct(res["path"]), ctx
        assert res["direct_after_ms"] is not None and 0 < res["direct_after_ms"] < 10_000, ctx
        # The handshake really went through the relay.
        assert E.relay_metric(relay, "irohlab_relay_bytes_forwarded_total") > 0, ctx


@pytest.mark.parametrize("server,client", PAIRS[:3], ids=[pair_id(p) for p in PAIRS[:3]])
def test_upgrade_mid_transfer_keeps_every_byte(irohlab_bin, tmp_path, server, client):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin)
        ticket, srv = E.start_listener(start, server, irohlab_bin, relay.url, f"{server}-server")
        # No --wait-direct: the transfer starts on the relay right after the handshake.
        res = E.run_connect(client, irohlab_bin, ticket, relay.url, "--bytes", str(MIB16), "--echo")
        ctx = f"{client} → {server}: {res}" + srv.describe()
        assert res["ok"] and res["echoed"] == MIB16, ctx
        names = [p["path"] for p in res["paths"]]
        assert names[0] == f"relay:{relay.url}" and any(is_direct(n) for n in names), ctx
        # The switch happened while the echo was running (it ends after connect + seconds).
        switch_ms = next(p["t_ms"] for p in res["paths"] if is_direct(p["path"]))
        assert switch_ms < res["connect_ms"] + res["seconds"] * 1000, ctx
        assert is_direct(res["path"]), ctx


def test_without_nat_traversal_the_connection_stays_relayed(irohlab_bin, tmp_path):
    with R.processes(tmp_path) as start:
        relay = R.start_relay(start, irohlab_bin)
        ticket, srv = E.start_listener(start, "cpp", irohlab_bin, relay.url, "cpp-server")
        res = E.run_connect("cpp", irohlab_bin, ticket, relay.url, "--no-holepunch", "--wait-direct",
                            "2", "--bytes", str(1 << 20), "--echo")
        assert res["ok"] and res["echoed"] == 1 << 20, res
        assert res["path"] == f"relay:{relay.url}" and res["direct_after_ms"] is None, res

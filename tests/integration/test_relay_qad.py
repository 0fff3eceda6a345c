"""QUIC address discovery (spec §6.9): `irohlab relay --qad-port` serves /iroh-qad/0 with the
relay's X.509 certificate and `irohlab qad probe` learns its own address from it.

A throwaway CA and leaf (SAN IP:127.0.0.1) are made with `openssl` in the test's tmp dir.
Rust clients are not tested here: the npm @number0/iroh binding (presetMinimal) trusts no roots
at all and offers no way to add one, so it cannot verify any certificate of ours.
"""
from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import test_relay_interop as R

PROBE_TIMEOUT_S = 20


def openssl(*args: str, cwd: Path) -> None:
    exe = shutil.which("openssl")
    if exe is None:
        pytest.fail("openssl is not on PATH: run tools/setup-deps", pytrace=False)
    r = subprocess.run([exe, *args], cwd=str(cwd), capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"openssl {' '.join(args)} failed: {r.stderr}"


def make_ca(d: Path, name: str) -> tuple[Path, Path]:
    key, cert = d / f"{name}.key", d / f"{name}.pem"
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    return cert, key


@pytest.fixture
def pki(tmp_path):
    """ca.pem signs leaf.pem (IP:127.0.0.1, DNS:localhost); other-ca.pem is unrelated."""
    ca, ca_key = make_ca(tmp_path, "ca")
    other_ca, _ = make_ca(tmp_path, "other-ca")
    leaf_key, csr, leaf = tmp_path / "leaf.key", tmp_path / "leaf.csr", tmp_path / "leaf.pem"
    ext = tmp_path / "leaf.ext"
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n"
                   "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\n")
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", str(leaf_key), "-out", str(csr), "-subj", "/CN=127.0.0.1", cwd=tmp_path)
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
            "-CAcreateserial", "-out", str(leaf), "-days", "2", "-extfile", str(ext), cwd=tmp_path)
    return {"ca": ca, "other_ca": other_ca, "cert": leaf, "key": leaf_key}


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QadRelay:
    def __init__(self, proc: R.Proc):
        self.proc = proc
        lines = R.wait_for(lambda: len(proc.out().splitlines()) >= 2 and proc.out().splitlines()[:2],
                           R.START_TIMEOUT_S, "relay startup lines" + proc.describe())
        m = re.fullmatch(r"relay listening on (https://127\.0\.0\.1:(\d+)/)", lines[0])
        assert m, f"unexpected startup line {lines[0]!r}" + proc.describe()
        self.url = m.group(1)
        q = re.fullmatch(r"QUIC address discovery on udp 127\.0\.0\.1:(\d+)", lines[1])
        assert q, f"unexpected QAD line {lines[1]!r}" + proc.describe()
        self.qad_port = int(q.group(1))
        mm = R.wait_for(lambda: re.search(r"metrics=(http://\S+/metrics)", proc.err()),
                        R.START_TIMEOUT_S, "metrics url")
        self.metrics_url = mm.group(1)

    def metrics(self) -> dict[str, float]:
        return R.Relay.metrics(self)  # same text format


def start_qad_relay(start, irohlab_bin, pki, qad_port: int) -> QadRelay:
    p = start("relay", [str(irohlab_bin), "relay", "--bind", "127.0.0.1:0", "--metrics", "127.0.0.1:0",
                        "--log-level", "debug", "--tls-cert", str(pki["cert"]), "--tls-key", str(pki["key"]),
                        "--qad-port", str(qad_port)])
    return QadRelay(p)


def probe(irohlab_bin, url: str, qad_port: int, ca: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(irohlab_bin), "qad", "probe", url, "--qad-port", str(qad_port),
                           "--ca-file", str(ca), "--timeout", "5", "--json", *extra],
                          capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)


def test_probe_sees_its_own_bound_address(irohlab_bin, tmp_path, pki):
    with R.processes(tmp_path) as start:
        qad_port = free_udp_port()
        relay = start_qad_relay(start, irohlab_bin, pki, qad_port)
        assert relay.qad_port == qad_port
        for _ in range(2):
            r = probe(irohlab_bin, relay.url, qad_port, pki["ca"], "--bind", "127.0.0.1:0")
            assert r.returncode == 0, r.stderr + relay.proc.describe()
            res = json.loads(r.stdout)
            assert res["ok"] is True
            assert re.fullmatch(r"127\.0\.0\.1:\d+", res["local"]), res
            assert res["observed"] == res["local"], res  # no NAT on loopback
        # A fixed port comes back exactly.
        port = free_udp_port()
        r = probe(irohlab_bin, relay.url, qad_port, pki["ca"], "--bind", f"127.0.0.1:{port}")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["observed"] == f"127.0.0.1:{port}"
        # The relay counted them; every connection ended (the client closes with 1 "finished").
        def settled():
            m = relay.metrics()
            return m if m.get("irohlab_relay_qad_connections") == 0 else None
        m = R.wait_for(settled, 10, "QAD connections to close")
        assert m["irohlab_relay_qad_connections_total"] == 3
        assert m["irohlab_relay_qad_observations_total"] >= 3
        assert relay.proc.p.poll() is None


def test_wrong_ca_is_a_clear_error(irohlab_bin, tmp_path, pki):
    with R.processes(tmp_path) as start:
        qad_port = free_udp_port()
        relay = start_qad_relay(start, irohlab_bin, pki, qad_port)
        r = probe(irohlab_bin, relay.url, qad_port, pki["other_ca"], "--bind", "127.0.0.1:0")
        assert r.returncode == 1, r.stdout + r.stderr
        err = r.stderr.strip()
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert err.startswith("irohlab: error: QAD probe of https://127.0.0.1:"), err
        assert "certificate" in err and "rejected" in err, err
        res = json.loads(r.stdout)
        assert res["ok"] is False and "certificate" in res["error"], res
        # The relay keeps serving good clients.
        ok = probe(irohlab_bin, relay.url, qad_port, pki["ca"], "--bind", "127.0.0.1:0")
        assert ok.returncode == 0, ok.stderr


def test_wrong_name_is_rejected(irohlab_bin, tmp_path, pki):
    # The certificate names 127.0.0.1 and localhost; 127.0.0.2 is not in it.
    with R.processes(tmp_path) as start:
        qad_port = free_udp_port()
        relay = start_qad_relay(start, irohlab_bin, pki, qad_port)
        url = relay.url.replace("127.0.0.1", "localhost")
        ok = probe(irohlab_bin, url, qad_port, pki["ca"], "--bind", "127.0.0.1:0")
        assert ok.returncode == 0, ok.stderr  # DNS name check + SNI
        bad_url = relay.url.replace("127.0.0.1", "127.0.0.2")
        r = probe(irohlab_bin, bad_url, qad_port, pki["ca"], "--bind", "127.0.0.1:0")
        # 127.0.0.2 reaches nothing (the QAD socket is bound to 127.0.0.1): a timeout, cleanly.
        assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr


def test_no_qad_without_certificate(irohlab_bin):
    r = subprocess.run([str(irohlab_bin), "relay", "--bind", "127.0.0.1:0", "--qad-port", "7999"],
                       capture_output=True, text=True, timeout=10)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "X.509 certificate" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_qad_port_zero_turns_it_off(irohlab_bin, tmp_path, pki):
    with R.processes(tmp_path) as start:
        p = start("relay", [str(irohlab_bin), "relay", "--bind", "127.0.0.1:0", "--tls-cert",
                            str(pki["cert"]), "--tls-key", str(pki["key"]), "--qad-port", "0"])
        R.wait_for(lambda: "relay listening on https://" in p.out(), R.START_TIMEOUT_S, "startup")
        R.wait_for(lambda: "relay listening" in p.err(), R.START_TIMEOUT_S, "startup log")
        assert "QUIC address discovery" not in p.out()
        assert "qad=-" in p.err(), p.err()


def test_probe_bad_input_is_one_line(irohlab_bin, tmp_path):
    for args, needle in ((["not a url"], "RELAY_URL"),
                         (["https://127.0.0.1/", "--ca-file", str(tmp_path / "missing.pem")], "missing.pem"),
                         (["https://127.0.0.1/", "--qad-port", "0"], "--qad-port"),
                         (["https://127.0.0.1/", "--bind", "nope"], "--bind")):
        r = subprocess.run([str(irohlab_bin), "qad", "probe", *args], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2, (args, r.stderr)
        assert needle in r.stderr and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)

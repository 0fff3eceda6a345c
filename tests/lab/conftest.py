"""Fixtures for the network-namespace lab tests (need root: ip netns, nftables).

Run from the repo root:
    /usr/bin/python3 -m pytest tests/lab -q

Every lab a test builds has its own `irl<4 hex>-` prefix; the session check at the end fails if any
namespace of a lab created by these tests is still there.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from netns import cleanup as lab_cleanup  # noqa: E402
from netns.topology import Lab  # noqa: E402

PYTHON = "/usr/bin/python3"
PROBE_PORTS = (3478, 3479)
PROBE_PORTS_ARG = f"{PROBE_PORTS[0]},{PROBE_PORTS[1]}"

_CREATED_PREFIXES: list[str] = []


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_root: builds namespaces (skipped when not root)")


def pytest_collection_modifyitems(config, items):
    if os.geteuid() == 0:
        return
    skip = pytest.mark.skip(reason="the namespace lab needs root (ip netns add, nft)")
    for item in items:
        if item.get_closest_marker("needs_root"):
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def no_namespace_left_behind():
    yield
    left = [n for p in _CREATED_PREFIXES for n in lab_cleanup.lab_namespaces(p)]
    for prefix in _CREATED_PREFIXES:  # only this session's labs: others may be running a matrix
        lab_cleanup.cleanup(prefix)
    assert not left, f"lab namespaces left behind: {left}"


def new_lab(**kw) -> Lab:
    lab = Lab(**kw)
    _CREATED_PREFIXES.append(lab.prefix)
    return lab


def module_cmd(module: str, *args: str) -> list[str]:
    return [PYTHON, "-m", module, *args]


def start_probe_servers(lab: Lab, host1: str, host2: str) -> tuple[str, str]:
    """Starts the reflector on both public hosts; returns their addresses once both are bound."""
    a1, a2 = lab.addr(host1), lab.addr(host2)
    for host, addr, partner in ((host1, a1, a2), (host2, a2, a1)):
        proc = lab.exec(host, module_cmd("netns.probe", "serve", "--addr", addr, "--ports",
                                         PROBE_PORTS_ARG, "--partner", f"{partner}:{PROBE_PORTS[0]}",
                                         "--max-s", "900"),
                        stdout=subprocess.PIPE, text=True, cwd=REPO)
        line = proc.stdout.readline().strip()  # blocks until bound (or the process died)
        assert line == "ready", f"probe server on {host} did not start: {line!r}"
    return a1, a2


def probe(lab: Lab, device: str, *args: str, timeout: float = 30) -> dict:
    """Runs a probe client subcommand in the device; returns its (last) JSON line."""
    r = lab.run(device, module_cmd("netns.probe", *args), timeout=timeout, cwd=REPO)
    assert r.returncode == 0, f"probe {args[0]} in {device} failed: {r.stderr.strip()}"
    return json.loads(r.stdout.strip().splitlines()[-1])

"""The lab's stand-in for QUIC Address Discovery (QAD): tell each peer its NAT-mapped address.

Why: real iroh learns its public (NAT-mapped) address from its relay by QAD, a QUIC connection to
the relay authenticated with the relay's WebPKI certificate. The npm binding the Rust peer runs on
(@number0/iroh, presetMinimal) trusts no CA roots at all and cannot be given one (measured: rustls
"processed 0 valid certs"; an https relay with our own CA in SSL_CERT_FILE fails UnknownIssuer), so
QAD cannot work in the lab. Without it two peers that are both behind NATs never learn an address
the other can reach, and stay relayed even behind two full-cone NATs.

What replaces it (address_discovery = "probe", the default): before a peer starts, the runner
  1. picks the peer's UDP port up front (`--bind 0.0.0.0:PORT`),
  2. runs the STUN-like mapping probe (netns.probe `map`) in the peer's device FROM THAT PORT
     against a reflector on a public host next to the relay, then closes the probe socket,
  3. starts the peer with `--external-addr MAPPED` (iroh's user-configured external addresses,
     Endpoint.addExternalAddr), which iroh puts into its hole-punching candidates exactly where a
     QAD-observed address would go.
With an endpoint-independent mapping (open, moderate, both NATs of cgnat) the peer's later packets
leave through the same mapping, so MAPPED is where it can be reached. With an endpoint-dependent one
(strict) it is not; that is exactly what QAD would report too (its observed address from a symmetric
NAT is equally useless to the peer). For nat = "none" the mapped address is the local one and is not
passed (the peer already announces it). The procedure is the same for every implementation (both peers
take --external-addr); an implementation without such an option would get the same probe but not
the flag, and its result line would say so (`<role>_external_addrs` = null).
"""
from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

MODES = ("probe", "none")
REFLECTOR_HOST = "reflector"                 # the public host the runner adds next to the relay
REFLECTOR_PORTS = (3478, 3479)               # STUN's port and the next one (probe needs two)
PORT_RANGE = (20000, 59999)                  # peers' UDP ports: clear of ephemeral and well-known
PROBE_TIMEOUT_S = 5.0
IMPLS_WITH_EXTERNAL_ADDR = frozenset({"rust", "cpp"})   # peers that accept --external-addr IP:PORT
REPO = Path(__file__).resolve().parents[1]


class DiscoveryError(RuntimeError):
    """The reflector or the probe failed (a lab problem, reported in the trial's error)."""


def peer_port(seed: int, role: str) -> int:
    """The UDP port a peer binds: fixed by the trial's seed and the role, so runs reproduce."""
    return random.Random(f"{seed}/{role}").randint(*PORT_RANGE)


def _ports_arg() -> str:
    return f"{REFLECTOR_PORTS[0]},{REFLECTOR_PORTS[1]}"


def start_reflector(lab, max_s: float, timeout_s: float = PROBE_TIMEOUT_S):
    """Starts the mapping reflector on the lab's `reflector` host; returns (its address, its
    process) once bound. It exits by itself after max_s (and with the lab in any case)."""
    addr = lab.addr(REFLECTOR_HOST)
    proc = lab.exec(REFLECTOR_HOST, [sys.executable, "-m", "netns.probe", "serve", "--addr", addr,
                                     "--ports", _ports_arg(), "--max-s", str(int(max_s) + 1)],
                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=REPO)
    line = _read_line(proc, timeout_s)
    if line != "ready":
        lab.kill(proc)
        raise DiscoveryError(f"reflector did not start ({line!r})")
    return addr, proc


def _read_line(proc, timeout_s: float) -> str | None:
    import select
    r, _, _ = select.select([proc.stdout], [], [], timeout_s)
    if not r:
        return None
    line = proc.stdout.readline()
    return line.strip() if line else None


def mapped_address(lab, device: str, reflector: str, local_port: int) -> tuple[str | None, str]:
    """(mapped, local): the device's address as the reflector sees a packet from local_port, and
    the device's own address:port. mapped is None when no answer came back (UDP blocked: QAD
    would fail the same way). The probe's socket is closed when this returns."""
    argv = [sys.executable, "-m", "netns.probe", "map", "--server1", reflector,
            "--ports", _ports_arg(), "--local-port", str(local_port)]
    try:
        r = lab.run(device, argv, timeout=PROBE_TIMEOUT_S, cwd=REPO)
    except Exception as e:  # LabError (timeout): one line for the trial's error
        raise DiscoveryError(f"mapping probe in {device}: {e}") from None
    if r.returncode != 0:
        raise DiscoveryError(f"mapping probe in {device} failed: {r.stderr.strip()[-200:]}")
    try:
        out = json.loads(r.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise DiscoveryError(f"mapping probe in {device} printed no JSON") from None
    return out.get("mapped"), out["local"]


def external_addrs(impl: str, mapped: str | None, local: str) -> list[str] | None:
    """What the peer is told: [mapped] behind a NAT, [] when mapped == local (no NAT) or unknown,
    None when the implementation has no --external-addr option."""
    if impl not in IMPLS_WITH_EXTERNAL_ADDR:
        return None
    return [] if mapped is None or mapped == local else [mapped]

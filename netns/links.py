"""Link profiles for the lab, and starting the link emulator between two interfaces.

    /usr/bin/python3 -m netns.links list            # the table
    /usr/bin/python3 -m netns.links show NAME       # the JSON the emulator gets

This kernel has no netem, so links are emulated in userspace by `irohlab-linkemu`
(netns/linkemu/): it bridges Ethernet frames between two interfaces of one namespace through the
simulator's link model (sim/virtual_link.h), one model instance per direction, so lab and simulator
share one link model. Every profile applies in BOTH directions (like patchbay's
LinkDirection::Both), so the round trip through one link is 2 x delay_ms.

The ladder is iroh's own degradation ladder, DEGRADE_LEVELS in iroh/tests/patchbay/degrade.rs
(n0-computer/iroh a05c9c41): patchbay's `rtt_ms(x)` means one-way delay x/2 and a rate-limiter
buffer of x ms, `bursty_loss(L)` means Gilbert-Elliott loss with mean burst 5, `loss_burst_pkts(B)`
mean burst B; the emulator maps (L, B) to the model exactly as patchbay maps them to netem's
gemodel (r = 1/B, p = L/(B(1-L)), every packet lost in the bad state). The issue calls the last
rung "stress"; iroh labels it "absurd" (the alias works).

Two low-rate radio links are ours: `ble` (1 Mbit/s, 30 ms round trip, IP MTU 251) and `lora`
(5.5 kbit/s, 200 ms round trip, IP MTU 222, 1 % duty cycle: after T on air the sender is silent
99 T). QUIC needs 1200-byte datagrams, so on both every QUIC packet is dropped at the MTU: Rust
iroh sends nothing that arrives (measured), and the lab shows exactly that outcome. Rates count
Ethernet frames (as tc does on a veth); the MTU counts the IP packet.

start_link(ns, if_a, if_b, profile_name, seed) -> LinkHandle; handle.stop() -> stats dict.
"""
from __future__ import annotations

import atexit
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
IROH_LADDER_SOURCE = "iroh/tests/patchbay/degrade.rs DEGRADE_LEVELS (n0-computer/iroh a05c9c41)"


def _rung(label: str, rate_kbit: float, rtt_ms: float, jitter_ms: float, loss_pct: float,
          loss_burst_pkts: int, description: str) -> dict:
    """One rung of iroh's ladder in patchbay's terms, turned into emulator keys."""
    return {
        "rate_kbit": rate_kbit,
        "delay_ms": rtt_ms / 2,
        "buffer_ms": rtt_ms,
        "jitter_ms": jitter_ms,
        "loss_pct": loss_pct,
        "loss_burst_pkts": loss_burst_pkts,
        "label": label,
        "description": description,
        "source": IROH_LADDER_SOURCE,
    }


# name -> emulator profile (keys documented in netns/linkemu/profile.h). Ladder order = worsening.
PROFILES: dict[str, dict] = {
    "good-wifi": _rung("good-wifi", 100_000, 16, 0, 0.1, 5,
                       "good home wifi, 5 GHz, close to the access point"),
    "congested-wifi": _rung("congested-wifi", 25_000, 40, 12, 1.0, 6,
                            "congested 2.4 GHz wifi, interference and distance"),
    "weak-4g": _rung("weak-4g", 8_000, 90, 15, 2.0, 8, "LTE at the cell edge, weak signal"),
    "slow-3g": _rung("slow-3g", 3_000, 200, 30, 3.0, 10, "degraded 3G, deep buffers"),
    "congested-cellular": _rung("congested-cellular", 1_500, 300, 40, 5.0, 12,
                                "oversubscribed cellular under load, heavy bufferbloat"),
    "very-bad-cellular": _rung("very-bad-cellular", 800, 450, 60, 8.0, 20,
                               "moving vehicle in poor coverage"),
    "satellite": _rung("satellite", 25_000, 600, 40, 1.5, 6,
                       "geostationary satellite (Viasat / HughesNet class)"),
    "barely-usable": _rung("barely-usable", 500, 450, 80, 12.0, 25,
                           "edge of coverage, long loss bursts"),
    "absurd": _rung("absurd", 256, 800, 150, 25.0, 40,
                    "stress case past any real link, where connections give up"),
    "ble": {
        "rate_kbit": 1_000, "delay_ms": 15, "buffer_ms": 30, "mtu": 251,
        "label": "ble",
        "description": "BLE-like: 1 Mbit/s PHY, 30 ms round trip, 251-byte packets "
                       "(LL data length)",
        "source": "irohlab; BLE 4.2+ maximum LL payload 251",
    },
    "lora": {
        # A queue of a few maximum-size frames: with a 1 % duty cycle anything deeper only adds
        # minutes of waiting.
        "rate_kbit": 5.5, "delay_ms": 100, "queue_bytes": 1024, "mtu": 222, "duty_cycle_pct": 1,
        "label": "lora",
        "description": "LoRa-like: 5.5 kbit/s (SF7/125 kHz), 200 ms round trip, 222-byte payloads, "
                       "1 % duty cycle",
        "source": "irohlab; EU868 SF7 data rate and g-band duty cycle",
    },
}
LADDER: tuple[str, ...] = tuple(
    n for n in PROFILES if PROFILES[n].get("source") == IROH_LADDER_SOURCE)
ALIASES: dict[str, str] = {"stress": "absurd"}

READY_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 5.0


class LinkError(Exception):
    """A link could not be started or stopped; str() is one line for the user."""


def resolve(profile_name: str) -> str:
    """The canonical profile name (aliases resolved), or LinkError listing the known names."""
    name = ALIASES.get(profile_name, profile_name)
    if name not in PROFILES:
        known = ", ".join(list(PROFILES) + list(ALIASES))
        raise LinkError(f"unknown link profile {profile_name!r} (known: {known})")
    return name


def profile_json(profile_name: str) -> str:
    """The emulator's --profile-json argument for a profile."""
    return json.dumps(PROFILES[resolve(profile_name)], sort_keys=True)


def emulator_binary() -> str:
    """The emulator: $IROHLAB_LINKEMU, else the release build, else helper builds."""
    candidates = [os.environ.get("IROHLAB_LINKEMU", "")] + [
        str(REPO / "build" / d / "bin" / "irohlab-linkemu") for d in ("release", "h-linkemu")]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise LinkError("irohlab-linkemu not built: run `cmake --build build/release "
                    "--target irohlab-linkemu` (or set IROHLAB_LINKEMU)")


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if done.returncode != 0:
        raise LinkError(f"{' '.join(cmd)}: {done.stderr.strip() or 'failed'}")


def _prepare_interface(ns: str, interface: str) -> None:
    """Up, and silent: no IPv6 on the emulator's own ends, or its stack would talk on the link."""
    _run(["ip", "-n", ns, "link", "set", "dev", interface, "up"])
    key = "net.ipv6.conf." + interface.replace(".", "/") + ".disable_ipv6"
    subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}=1"],
                   capture_output=True, timeout=10)  # absent when IPv6 is off entirely: fine


_LIVE: list["LinkHandle"] = []


class LinkHandle:
    """A running emulator; stop() ends it (SIGTERM) and returns its counters."""

    def __init__(self, ns: str, if_a: str, if_b: str, profile_name: str, seed: int,
                 process: subprocess.Popen, workdir: str):
        self.ns, self.if_a, self.if_b = ns, if_a, if_b
        self.profile_name, self.seed = profile_name, seed
        self.process = process
        self.pid = process.pid
        self._workdir = workdir
        self._stats: dict | None = None

    @property
    def stats_path(self) -> str:
        return os.path.join(self._workdir, "stats.json")

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> dict:
        """Stops the emulator (idempotent) and returns its stats: a_to_b / b_to_a counters
        (sent, delivered, dropped_loss, dropped_queue, dropped_mtu, ...), offload, profile."""
        if self._stats is not None:
            return self._stats
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT_S)
        stderr = self.process.stderr.read() if self.process.stderr else ""
        for pipe in (self.process.stdout, self.process.stderr):
            if pipe:
                pipe.close()
        try:
            with open(self.stats_path) as f:
                self._stats = json.load(f)
        except (OSError, ValueError):
            self._stats = {"error": stderr.strip() or f"exit status {self.process.returncode}"}
        self._stats["profile_name"] = self.profile_name
        shutil.rmtree(self._workdir, ignore_errors=True)
        if self in _LIVE:
            _LIVE.remove(self)
        return self._stats

    def __enter__(self) -> "LinkHandle":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def start_link(ns: str, if_a: str, if_b: str, profile_name: str, seed: int = 1,
               binary: str | None = None, profile: dict | None = None,
               realtime: bool = True) -> LinkHandle:
    """Starts the emulator in namespace `ns` between `if_a` and `if_b` with a named profile (or,
    with `profile`, that emulator profile dict under the name `profile_name`). `realtime` runs it
    SCHED_FIFO so a busy machine delays deliveries less (stats["scheduler"] says what it got).

    Returns once both interfaces are open (the emulator printed "ready"); raises LinkError with
    the emulator's own message otherwise."""
    name = profile_name if profile is not None else resolve(profile_name)
    profile_arg = json.dumps(profile, sort_keys=True) if profile is not None else profile_json(name)
    binary = binary or emulator_binary()
    for interface in (if_a, if_b):
        _prepare_interface(ns, interface)
    workdir = tempfile.mkdtemp(prefix="irohlab-link-")
    cmd = ["ip", "netns", "exec", ns, binary, "--if-a", if_a, "--if-b", if_b,
           "--profile-json", profile_arg, "--seed", str(seed),
           "--stats-json", os.path.join(workdir, "stats.json")]
    if realtime:
        cmd.append("--realtime")
    # `ip netns exec` execs the emulator in place, so process.pid is the emulator's.
    process = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    handle = LinkHandle(ns, if_a, if_b, name, seed, process, workdir)
    _LIVE.append(handle)
    deadline = time.monotonic() + READY_TIMEOUT_S
    line = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if ready:
            line = process.stdout.readline()
            break
    if line.strip() != "ready":
        stats = handle.stop()
        raise LinkError(f"link emulator in {ns} ({if_a}<->{if_b}) did not start: "
                        f"{stats.get('error', 'no ready line within %.0f s' % READY_TIMEOUT_S)}")
    return handle


@atexit.register
def _stop_all() -> None:
    for handle in list(_LIVE):
        try:
            handle.stop()
        except Exception:  # noqa: BLE001 - best effort at interpreter exit
            pass


def _table() -> str:
    rows = [("name", "rate", "rtt ms", "jitter", "loss %", "burst", "mtu", "duty %")]
    for name, p in PROFILES.items():
        rate = p["rate_kbit"]
        rows.append((name, f"{rate / 1000:g} Mbit" if rate >= 1000 else f"{rate:g} kbit",
                     f"{2 * p['delay_ms']:g}", f"{p.get('jitter_ms', 0):g}",
                     f"{p.get('loss_pct', 0):g}", str(p.get("loss_burst_pkts", "-")),
                     str(p.get("mtu", "-")), f"{p.get('duty_cycle_pct', 100):g}"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def main(argv: list[str]) -> int:
    if argv[:1] == ["list"] and len(argv) == 1:
        print(_table())
        return 0
    if argv[:1] == ["show"] and len(argv) == 2:
        try:
            print(json.dumps(PROFILES[resolve(argv[1])], indent=2))
        except LinkError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        return 0
    print("usage: python3 -m netns.links list | show NAME", file=sys.stderr)
    print("error: expected `list` or `show NAME`", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

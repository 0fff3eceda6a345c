"""Runs a scenario in the namespace lab: one fresh topology per trial, peers, churn, results.

    /usr/bin/python3 -m netns.runner SCENARIO [--trials N] [--seed S] [--out DIR] [--keep]
                                     [--cells FILTER] [--jobs N]

  --trials N     overrides every cell's trial count; --seed S overrides every cell's base seed
                 (trial i of a cell uses seed + i, also for the link emulator).
  --out DIR      default reports/out/lab/<scenario>-<UTC time>; gets results.jsonl (one JSON object per
                 trial, appended as each trial ends, rewritten in matrix order - cell, then trial -
                 when the run ends), environment.json and logs/ (peer stderr).
  --keep         leaves the lab of the last trial to finish up for inspection, its peers and relay
                 stopped (prints its prefix; remove it with `python3 -m netns.cleanup --prefix P`).
  --cells FILTER comma-separated fnmatch patterns on the cell id
                 SERVER_NAT/CLIENT_NAT:SERVER_IMPL-CLIENT_IMPL[@LINK], e.g. "moderate/*:rust-rust".
  --jobs N       N trials at once (default 1), each in its own lab (own prefix, relay, reflector).
                 Measured on 2 cores (rust-rust, veth): outcomes identical up to 6; 4 keeps
                 the median time to direct of 1 (its tail widens), 6 shifts it by half. Use 4
                 for outcome matrices, 1-2 for timings (scenarios/README.md, "Parallel trials").
Exit status: 0 when every trial matches its cell's expectation (`ok`), 1 otherwise, 2 on bad
input (one `error: ...` line), 130 when interrupted (Ctrl-C / SIGTERM: every running trial's lab
is removed; interrupted trials are not recorded).

Per trial (a topology per trial costs ~0.3 s, small against a trial, and no NAT or conntrack
state leaks from one trial into the next):
  public host `relay` (198.18.0.10) runs `irohlab relay --bind 198.18.0.10:3340`; public host
  `reflector` (198.18.0.11, address_discovery = "probe" only) runs the mapping reflector
  (`netns.probe serve`, UDP 3478/3479);
  site `server-site` (cell.server_nat) with device `server`, site `client-site` (cell.client_nat)
  with device `client`; hairpin / mapping_timeout_s / firewall apply to both sites; a link
  profile (cell.link) runs netns.links' emulator on both sites' uplinks; a `move` churn event
  moves the device to `<role>-alt`, a second site of the same configuration.
  Each peer's UDP port P is fixed up front from the trial's seed and its role.
  Address discovery (cell.address_discovery, netns/address_discovery.py): real iroh learns its
  NAT-mapped address by QUIC Address Discovery against its relay, over TLS with the relay's WebPKI
  certificate; the npm binding of the Rust peer trusts no CA roots at all and cannot be given one,
  so QAD cannot work in the lab. "probe" stands in for it, the same way for every implementation:
  the STUN-like mapping probe runs in the peer's device from port P against the reflector, its
  socket is closed, and the peer starts with `--external-addr MAPPED` (iroh's user-configured
  external addresses, which go into its hole-punching candidates where a QAD-observed address
  would). Behind an endpoint-independent mapping that is where the peer is reachable; behind
  `strict` it is not, just as a QAD answer would not be. No NAT (mapped == local): not passed.
  Peers without --external-addr (none today) would be probed but not told. "none": no probe,
  no flag (the peers know only their local addresses).
  The server runs `PEER listen --alpn irohlab/lab/0 --relay URL [--relay-only] --bind 0.0.0.0:P
  --echo [--external-addr A]`; its first stdout line is the ticket. The client runs `PEER connect
  TICKET --alpn ... --relay URL --wait-direct D --bytes N --echo --json --bind 0.0.0.0:P
  [--external-addr A] [--datagrams ...] [--hold H]`; churn needs the connection alive, so H = end
  of the last event + 10 s.
  Churn events fire at their at_s after the client process started (the client's own path times
  start at its connect, a few hundred ms later: churn t_ms and path t_ms differ by that much).
  Every trial is bounded by cell.timeout_s (+ 10 s for process start-up); peers are killed by PID.
Result lines carry, besides the outcome, "address_discovery" ("probe" | "none") and per role
"<role>_bind", "<role>_mapped" (what the reflector saw, probe only) and "<role>_external_addrs"
(the --external-addr values given; [] none needed, null = the peer has no such option).
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import os
import platform
import queue
import re
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import address_discovery as addrdisc
from . import topology

REPO = Path(__file__).resolve().parents[1]
ALPN = "irohlab/lab/0"
RELAY_PORT = 3340
STARTUP_GRACE_S = 10.0       # node start-up, relay registration: on top of cell.timeout_s
CHURN_RECOVERY_S = 10.0      # how long the client holds the connection after the last event
HANDSHAKE_TIMEOUT_S = 10.0


class RunnerError(Exception):
    """A user-facing error: printed as one `error: ...` line."""


# ------------------------------------------------------------------------------------------------
# peers
# ------------------------------------------------------------------------------------------------
def peer_argv(impl: str) -> list[str]:
    if impl == "cpp":
        return [os.environ.get("IROHLAB_BIN", str(REPO / "build" / "release" / "bin" / "irohlab"))]
    if impl == "rust":
        return ["node", str(REPO / "interop" / "rust_quic_peer.mjs")]
    raise RunnerError(f"unknown implementation {impl!r}")


def check_peers(impls: set[str]) -> None:
    """Fails early (before any lab) when a needed program is missing."""
    irohlab = peer_argv("cpp")[0]
    if not os.access(irohlab, os.X_OK):
        raise RunnerError(f"{irohlab} not built (the relay needs it): run tools/build")
    if "rust" in impls:
        if not _which("node"):
            raise RunnerError("node not found (the rust peer needs it): run tools/setup-deps")
        if not (REPO / "node_modules" / "@number0" / "iroh").is_dir():
            raise RunnerError("node_modules/@number0/iroh missing: run tools/setup-deps")


def _which(name: str) -> bool:
    return any(os.access(os.path.join(d, name), os.X_OK) for d in os.environ.get("PATH", "").split(":"))


# The relay and the peers' relay flags live here, in one place: QUIC address discovery (an
# https relay with a certificate, `--qad-port` on the peers) plugs in by changing these three.
def relay_argv(relay_addr: str) -> list[str]:
    return peer_argv("cpp") + ["relay", "--bind", f"{relay_addr}:{RELAY_PORT}"]


def relay_url_of(relay_addr: str) -> str:
    return f"http://{relay_addr}:{RELAY_PORT}"


def peer_relay_flags(relay_url: str) -> list[str]:
    return ["--relay", relay_url]


def listen_argv(cell, relay_url: str, port: int = 0, external: list[str] | None = None) -> list[str]:
    argv = peer_argv(cell.server_impl) + ["listen", "--alpn", ALPN, *peer_relay_flags(relay_url),
                                          "--bind", f"0.0.0.0:{port}", "--echo"]
    if cell.relay_only_ticket:
        argv.append("--relay-only")
    return argv + _external_flags(external)


def _external_flags(external: list[str] | None) -> list[str]:
    return [arg for addr in (external or []) for arg in ("--external-addr", addr)]


def hold_s(cell) -> float:
    if not cell.churn:
        return 0.0
    return max(ev.at_s + ev.duration_s for ev in cell.churn) + CHURN_RECOVERY_S


def connect_argv(cell, ticket: str, relay_url: str, port: int = 0,
                 external: list[str] | None = None) -> list[str]:
    w = cell.workload
    argv = peer_argv(cell.client_impl) + [
        "connect", ticket, "--alpn", ALPN, *peer_relay_flags(relay_url), "--bind", f"0.0.0.0:{port}",
        "--wait-direct", _num(cell.direct_timeout_s), "--bytes", str(w.bytes), "--echo", "--json",
        "--timeout", _num(min(HANDSHAKE_TIMEOUT_S, cell.timeout_s))] + _external_flags(external)
    if w.kind == "datagrams" and w.datagrams > 0:
        argv += ["--datagrams", str(w.datagrams), "--datagram-size", str(w.datagram_size)]
    if hold_s(cell) > 0:
        argv += ["--hold", _num(hold_s(cell))]
    return argv


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


# ------------------------------------------------------------------------------------------------
# one trial
# ------------------------------------------------------------------------------------------------
def cell_id(cell) -> str:
    link = f"@{cell.link}" if cell.link else ""
    return f"{cell.server_nat}/{cell.client_nat}:{cell.server_impl}-{cell.client_impl}{link}"


@dataclass
class TrialContext:
    """What the trials of one run share; safe to use from several worker threads."""
    out_dir: Path
    keep: bool = False
    lab: topology.Lab | None = None                      # the lab kept up by --keep
    lab_up_s: list = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)   # set: abort running trials
    lock: threading.Lock = field(default_factory=threading.Lock)     # guards `lab`


class TrialInterrupted(Exception):
    """ctx.stop was set while the trial ran: the trial has no outcome and is not recorded."""


def address_discovery_of(cell) -> str:
    return getattr(cell, "address_discovery", "probe")


def build_lab(cell, seed: int, keep: bool) -> topology.Lab:
    lab = topology.Lab(keep=keep)
    hook = _link_hook(cell.link, seed) if cell.link else None
    lab.add_public_host("relay")
    if address_discovery_of(cell) == "probe":
        lab.add_public_host(addrdisc.REFLECTOR_HOST)
    moving = {ev.device for ev in cell.churn if ev.action == "move"}
    for role, nat in (("server", cell.server_nat), ("client", cell.client_nat)):
        sites = [f"{role}-site"] + ([f"{role}-alt"] if role in moving else [])
        for site in sites:
            lab.add_site(site, nat=nat, hairpin=cell.hairpin and nat != "none",
                         mapping_timeout_s=cell.mapping_timeout_s, firewall=cell.firewall,
                         uplink_hook=hook)
        lab.add_device(role, f"{role}-site")
    return lab


def _link_hook(profile: str, seed: int):
    from . import links  # helper B's module; only needed when a cell names a link profile

    def hook(lab, site):
        return links.start_link(site.link_ns, site.link_if_router, site.link_if_internet,
                                profile, seed)
    return hook


POLL_S = 0.25   # how often waits look at ctx.stop (Ctrl-C with parallel trials)


def _read_line(proc: subprocess.Popen, timeout_s: float,
               stop: threading.Event | None = None) -> str | None:
    """The next stdout line of proc, or None if it exits or the timeout passes first."""
    import select
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stop is not None and stop.is_set():
            raise TrialInterrupted()
        left = max(0.0, deadline - time.monotonic())
        r, _, _ = select.select([proc.stdout], [], [], min(left, POLL_S))
        if r:
            line = proc.stdout.readline()
            return line.strip() if line else None
    return None


def run_trial(cell, trial: int, seed: int, ctx: TrialContext) -> dict:
    t_start = time.monotonic()
    rec = {
        "scenario": cell.scenario, "server_nat": cell.server_nat, "client_nat": cell.client_nat,
        "server_impl": cell.server_impl, "client_impl": cell.client_impl, "seed": seed,
        "trial": trial, "link": cell.link, "started_relayed": False, "direct_after_ms": None,
        "final_path": "none", "bytes_verified": 0, "error": None, "wall_ms": 0,
        "expect_final_path": cell.expect_final_path, "ok": False, "cell": cell_id(cell),
        "address_discovery": address_discovery_of(cell),
    }
    logs = ctx.out_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.@-]+", "_", cell_id(cell)) + f"-t{trial}"
    lab = build_lab(cell, seed, ctx.keep)
    rec["lab_prefix"] = lab.prefix
    files = []
    try:
        t = time.monotonic()
        lab.up()
        ctx.lab_up_s.append(time.monotonic() - t)
        client_json, churn = _drive(lab, cell, seed, logs, stem, files, rec, ctx.stop)
        if client_json is not None:
            _fill_from_client(rec, client_json)
        if churn:
            rec["churn"] = _churn_outcome(churn, rec.get("paths") or [])
    except topology.LabError as e:
        rec["error"] = rec["error"] or f"lab: {e}"
    except addrdisc.DiscoveryError as e:
        rec["error"] = rec["error"] or f"address discovery: {e}"
    finally:
        for f in files:
            f.close()
        if ctx.keep and not ctx.stop.is_set():
            with ctx.lock:                # only the last finished trial's lab stays up
                previous, ctx.lab = ctx.lab, lab
            if previous is not None:
                previous.down()
        else:
            lab.down()
    rec["wall_ms"] = round((time.monotonic() - t_start) * 1000)
    # ok = the trial matches the cell's expectation; an unasserted cell (None) always matches,
    # its failures stay visible in `error` and `final_path`.
    exp = cell.expect_final_path
    rec["ok"] = exp is None or (rec["error"] is None and rec["final_path"] == exp)
    return rec


def _discover(lab, cell, seed: int, reflector: str | None, rec: dict) -> dict[str, list | None]:
    """Each role's port (rec "<role>_bind") and, with a reflector, its mapped address and the
    --external-addr values for its peer. Returns role -> external addresses."""
    external: dict[str, list | None] = {}
    for role, impl in (("server", cell.server_impl), ("client", cell.client_impl)):
        port = addrdisc.peer_port(seed, role)
        rec[f"{role}_bind"] = f"0.0.0.0:{port}"
        if reflector is None:
            external[role] = []
            continue
        mapped, local = addrdisc.mapped_address(lab, role, reflector, port)
        rec[f"{role}_mapped"] = mapped
        external[role] = addrdisc.external_addrs(impl, mapped, local)
    for role in ("server", "client"):
        rec[f"{role}_external_addrs"] = external[role]
    return external


def _drive(lab, cell, seed: int, logs: Path, stem: str, files: list, rec: dict,
           stop: threading.Event):
    """Relay, address discovery, server, client, churn.
    Returns (client JSON or None, applied churn events)."""
    relay_addr = lab.addr("relay")
    relay_url = relay_url_of(relay_addr)

    def logfile(role):
        f = open(logs / f"{stem}-{role}.log", "w")
        files.append(f)
        return f

    relay = lab.exec("relay", relay_argv(relay_addr), stdout=subprocess.PIPE,
                     stderr=logfile("relay"), text=True)
    line = _read_line(relay, STARTUP_GRACE_S, stop)
    if not line or "listening" not in line:
        rec["error"] = f"relay did not start ({line!r})"
        return None, []
    reflector, reflector_proc = None, None
    if address_discovery_of(cell) == "probe":
        reflector, reflector_proc = addrdisc.start_reflector(
            lab, max_s=cell.timeout_s + 3 * STARTUP_GRACE_S + 10)
    external = _discover(lab, cell, seed, reflector, rec)
    if reflector_proc is not None:
        lab.kill(reflector_proc)   # its job is done; a --keep lab keeps no process running
    server = lab.exec("server", listen_argv(cell, relay_url, _port(rec, "server"), external["server"]),
                      stdout=subprocess.PIPE, stderr=logfile("server"), text=True, cwd=REPO)
    ticket = _read_line(server, STARTUP_GRACE_S + 10, stop)  # includes the relay registration
    if not ticket or not ticket.startswith("endpoint"):
        rec["error"] = f"server gave no ticket ({ticket!r}; see logs/{stem}-server.log)"
        return None, []
    client = lab.exec("client", connect_argv(cell, ticket, relay_url, _port(rec, "client"),
                                             external["client"]),
                      stdout=subprocess.PIPE, stderr=logfile("client"), text=True, cwd=REPO)
    t0 = time.monotonic()
    deadline = t0 + cell.timeout_s + STARTUP_GRACE_S
    pending = _churn_schedule(cell)
    applied = []
    while True:
        now = time.monotonic()
        due = [a for a in pending if t0 + a[0] <= now]
        for action in due:
            pending.remove(action)
            applied.append(_apply(lab, action, t0))
        next_due = min((t0 + a[0] for a in pending), default=deadline)
        try:
            client.wait(timeout=min(POLL_S, max(0.0, min(next_due, deadline) - time.monotonic())))
            break
        except subprocess.TimeoutExpired:
            if stop.is_set():
                raise TrialInterrupted()
            if time.monotonic() >= deadline:
                lab.kill(client)
                rec["error"] = f"trial timeout: client still running after {cell.timeout_s:g} s"
                break
    out = client.stdout.read() if client.stdout else ""
    for proc in (server, relay):
        lab.kill(proc)
    for line in reversed(out.strip().splitlines()):
        try:
            return json.loads(line), applied
        except ValueError:
            continue
    if rec["error"] is None:
        rec["error"] = f"client printed no JSON (exit {client.returncode}; see logs/{stem}-client.log)"
    return None, applied


def _port(rec: dict, role: str) -> int:
    return int(rec[f"{role}_bind"].rpartition(":")[2])


def _churn_schedule(cell) -> list[tuple[float, str, str]]:
    """(at_s, device, action) including the 'uplink-up' / 'udp-unblock' that ends an
    'uplink-down' / 'udp-block'."""
    out = []
    ends = {"uplink-down": "uplink-up", "udp-block": "udp-unblock"}
    for ev in cell.churn:
        out.append((ev.at_s, ev.device, ev.action))
        if ev.action in ends:
            out.append((ev.at_s + ev.duration_s, ev.device, ends[ev.action]))
    return sorted(out)


def _apply(lab, action, t0: float) -> dict:
    _, device, kind = action
    t_ms = round((time.monotonic() - t0) * 1000)
    try:
        if kind == "renumber":
            detail = lab.renumber(device)
        elif kind == "move":
            detail = lab.move(device, f"{device}-alt")
        elif kind == "uplink-down":
            detail = lab.uplink_down(device)
        elif kind == "uplink-up":
            detail = lab.uplink_up(device)
        elif kind == "udp-block":
            detail = lab.udp_block(device)
        elif kind == "udp-unblock":
            detail = lab.udp_unblock(device)
        else:
            raise topology.LabError(f"unknown churn action {kind!r}")
        return {"t_ms": t_ms, "event": f"{device} {kind}", "addr": detail}
    except topology.LabError as e:
        return {"t_ms": t_ms, "event": f"{device} {kind}", "error": str(e)}


def _churn_outcome(applied: list[dict], paths: list[dict]) -> list[dict]:
    """Each event with the path the connection was on just before the next event (or the end)."""
    out = []
    for i, ev in enumerate(applied):
        until = applied[i + 1]["t_ms"] if i + 1 < len(applied) else float("inf")
        current = None
        for p in paths:
            if p.get("t_ms", 0) <= until:
                current = p.get("path")
        out.append({**ev, "path_after": _path_kind(current)})
    return out


def _path_kind(path: str | None) -> str:
    if not path:
        return "none"
    if path.startswith("udp:"):
        return "direct"
    if path.startswith("relay:"):
        return "relay"
    return "none"


def _fill_from_client(rec: dict, j: dict) -> None:
    rec["started_relayed"] = bool(j.get("started_relayed"))
    rec["direct_after_ms"] = j.get("direct_after_ms")
    rec["final_path"] = _path_kind(j.get("path")) if j.get("ok") else "none"
    rec["bytes_verified"] = int(j.get("echoed") or 0)
    if not j.get("ok"):
        rec["error"] = f"{j.get('error_kind', 'failed')}: {j.get('error', '')}"
    for src, dst in (("mb_per_s", "throughput_mb_s"), ("connect_ms", "connect_ms"),
                     ("rtt_ms", "rtt_ms"), ("paths", "paths")):
        if j.get(src) is not None:
            rec[dst] = j[src]
    if j.get("datagrams_sent"):
        rec["datagrams_sent"] = j["datagrams_sent"]
        rec["datagrams_echoed"] = j.get("datagrams_echoed", 0)


# ------------------------------------------------------------------------------------------------
# the run: progress, results, environment, summary
# ------------------------------------------------------------------------------------------------
class Progress:
    WIDTH = 30

    def __init__(self, total_cells: int, stream=sys.stderr):
        self.total = total_cells
        self.stream = stream
        self.tty = stream.isatty()

    def show(self, done_cells: int, note: str = "") -> None:
        filled = self.WIDTH * done_cells // max(1, self.total)
        bar = "#" * filled + "." * (self.WIDTH - filled)
        text = f"[{bar}] {done_cells}/{self.total} cells {note}".rstrip()
        if self.tty:
            self.stream.write("\r\x1b[K" + text)
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def end(self) -> None:
        if self.tty:
            self.stream.write("\n")


def select_cells(cells: list, pattern: str | None) -> list:
    if not pattern:
        return cells
    pats = [p.strip() for p in pattern.split(",") if p.strip()]
    chosen = [c for c in cells if any(fnmatch.fnmatchcase(cell_id(c), p) for p in pats)]
    if not chosen:
        example = f" (ids look like {cell_id(cells[0])})" if cells else ""
        raise RunnerError(f"--cells {pattern!r} matches none of the {len(cells)} cells{example}")
    return chosen


def environment(scenario_path: str, seeds: list[int]) -> dict:
    def git(*args):
        r = subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True, timeout=10)
        return r.stdout.strip() if r.returncode == 0 else None
    pkg = REPO / "node_modules" / "@number0" / "iroh" / "package.json"
    try:
        npm_version = json.loads(pkg.read_text()).get("version")
    except (OSError, ValueError):
        npm_version = None
    return {
        "commit": git("rev-parse", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        "kernel": platform.release(),
        "iroh_npm_version": npm_version,
        "rust_iroh_version": _rust_iroh_version(),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "finished_at": None,
        "host_cores": os.cpu_count(),
        "scenario_files": [str(scenario_path)],
        "seeds": seeds,
    }


def _rust_iroh_version() -> str | None:
    """The iroh crate compiled into the npm binding (its source paths name the version)."""
    native = REPO / "node_modules" / "@number0"
    for path in native.glob("iroh-*/*.node"):
        try:
            m = re.search(rb"/iroh-(\d+\.\d+\.\d+)/src", path.read_bytes())
        except OSError:
            continue
        if m:
            return m.group(1).decode()
    return None


def selection(cells: list, cells_filter: str | None, trials: int | None) -> dict:
    """What this run planned (environment.json): a report should show only these cells, with
    these trial counts, not the whole scenario matrix."""
    return {"cells_filter": cells_filter, "trials_override": trials,
            "planned_cells": [{"cell": cell_id(c), "trials": trials if trials is not None
                               else c.trials, "expect_final_path": c.expect_final_path}
                              for c in cells]}


def summary_table(results: list[dict]) -> str:
    rows = {}
    for r in results:
        rows.setdefault(r["cell"], []).append(r)
    header = ("cell", "expect", "direct", "relay", "none", "ok", "median direct ms")
    lines = [header]
    for cid, rs in rows.items():
        n = len(rs)
        count = lambda k: sum(1 for r in rs if r["final_path"] == k)  # noqa: E731
        direct_ms = [r["direct_after_ms"] for r in rs if r["direct_after_ms"] is not None]
        lines.append((cid, rs[0]["expect_final_path"] or "any", f"{count('direct')}/{n}",
                      f"{count('relay')}/{n}", f"{count('none')}/{n}",
                      f"{sum(r['ok'] for r in rs)}/{n}",
                      f"{statistics.median(direct_ms):.0f}" if direct_ms else "-"))
    widths = [max(len(str(row[i])) for row in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip()
                     for row in lines)


@dataclass(frozen=True)
class TrialJob:
    order: int        # the cell's position in the matrix
    cell: object
    trial: int
    seed: int


JOIN_TIMEOUT_S = 30.0   # after Ctrl-C: how long workers get to take their labs down


class TrialPool:
    """Runs TrialJobs on N worker threads, each trial in its own lab. Finished records arrive on
    `done` as (job, record); a worker that hits a bug puts (job, exception) and the run stops."""

    def __init__(self, jobs: list[TrialJob], n: int, ctx: TrialContext):
        self.todo: queue.Queue = queue.Queue()
        for job in jobs:
            self.todo.put(job)
        self.done: queue.Queue = queue.Queue()
        self.ctx = ctx
        self.running: set = set()
        self.threads = [threading.Thread(target=self._work, name=f"trial-worker-{i}", daemon=True)
                        for i in range(max(1, min(n, len(jobs))))]

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def _work(self) -> None:
        while not self.ctx.stop.is_set():
            try:
                job = self.todo.get_nowait()
            except queue.Empty:
                return
            self.running.add(job)
            try:
                self.done.put((job, run_trial(job.cell, job.trial, job.seed, self.ctx)))
            except TrialInterrupted:
                return
            except Exception as e:  # a runner bug: stop everything, the main thread re-raises
                self.done.put((job, e))
                return
            finally:
                self.running.discard(job)

    def alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def stop(self) -> None:
        """Aborts the running trials (their workers take their labs down) and waits, bounded."""
        self.ctx.stop.set()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        if self.alive():
            topology.down_all_labs()


def run(scenario_path: str, trials: int | None, seed: int | None, out_dir: Path, keep: bool,
        cells_filter: str | None, jobs: int = 1) -> int:
    from . import scenario as scenario_mod
    try:
        sc = scenario_mod.load(scenario_path)
    except scenario_mod.ScenarioError as e:
        raise RunnerError(str(e)) from None
    except OSError as e:
        raise RunnerError(f"{scenario_path}: {e.strerror}") from None
    cells = select_cells(sc.cells(), cells_filter)
    if os.geteuid() != 0:
        raise RunnerError("the lab needs root (ip netns, nftables)")
    check_peers({c.server_impl for c in cells} | {c.client_impl for c in cells})
    if any(c.link for c in cells):
        from . import links
        try:
            links.emulator_binary()
            for c in cells:
                if c.link:
                    links.resolve(c.link)
        except links.LinkError as e:
            raise RunnerError(str(e)) from None

    out_dir.mkdir(parents=True, exist_ok=True)
    seeds = sorted({(seed if seed is not None else c.seed) for c in cells})
    env = environment(scenario_path, seeds)
    env["jobs"] = jobs
    env.update(selection(cells, cells_filter, trials))
    results_path = out_dir / "results.jsonl"
    work = []
    for i, cell in enumerate(cells):
        n = trials if trials is not None else cell.trials
        base = seed if seed is not None else cell.seed
        work += [TrialJob(i, cell, t, base + t) for t in range(n)]
    left_in_cell = {i: sum(1 for j in work if j.order == i) for i in range(len(cells))}
    finished: list[tuple[TrialJob, dict]] = []
    ctx = TrialContext(out_dir, keep)
    progress = Progress(len(cells))
    progress.show(0)
    topology.install_signal_handlers()   # SIGTERM in the main thread, workers build the labs
    pool = TrialPool(work, jobs, ctx)
    interrupted = False
    t_run = time.monotonic()
    try:
        with open(results_path, "w") as out:
            pool.start()
            while len(finished) < len(work):
                try:
                    job, rec = pool.done.get(timeout=0.5)
                except queue.Empty:
                    if not pool.alive() and pool.done.empty():
                        break   # workers gone without results: only after a bug or a stop
                    continue
                if isinstance(rec, Exception):
                    raise rec
                finished.append((job, rec))
                out.write(json.dumps(rec) + "\n")   # as it ends: a crash keeps what was done
                out.flush()
                left_in_cell[job.order] -= 1
                done_cells = sum(1 for v in left_in_cell.values() if v == 0)
                progress.show(done_cells, f"{len(finished)}/{len(work)} trials, last "
                                          f"{cell_id(job.cell)} t{job.trial}: {rec['final_path']}")
    except (KeyboardInterrupt, SystemExit) as e:
        interrupted = True
        try:
            pool.stop()
        except KeyboardInterrupt:    # a second Ctrl-C: do not wait for the workers any longer
            topology.down_all_labs()
        if isinstance(e, SystemExit):
            raise
    except BaseException:
        pool.stop()
        raise
    finally:
        progress.end()
        finished.sort(key=lambda jr: (jr[0].order, jr[0].trial))
        results = [rec for _, rec in finished]
        _rewrite(results_path, results)      # matrix order: cell, then trial
        env["finished_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        env["wall_s"] = round(time.monotonic() - t_run, 1)
        if ctx.lab_up_s:
            env["lab_up_s_median"] = round(statistics.median(ctx.lab_up_s), 3)
        (out_dir / "environment.json").write_text(json.dumps(env, indent=2) + "\n")
    if results:
        print(summary_table(results))
    print(f"{len(results)} trial(s) in {env['wall_s']:g} s -> {results_path}")
    if ctx.lab is not None and not interrupted:
        print(f"lab of the last trial kept: {ctx.lab.prefix}* (remove: python3 -m netns.cleanup "
              f"--prefix {ctx.lab.prefix})", file=sys.stderr)
    if interrupted:
        if ctx.lab is not None:
            ctx.lab.down()
        print("error: interrupted", file=sys.stderr)
        return 130
    return 0 if all(r["ok"] for r in results) else 1


def _rewrite(path: Path, results: list[dict]) -> None:
    tmp = path.with_suffix(".jsonl.tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in results))
    tmp.replace(path)


MAX_JOBS = 32


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m netns.runner",
                                 description="run a scenario in the network-namespace lab")
    ap.add_argument("scenario")
    ap.add_argument("--trials", type=int)
    ap.add_argument("--seed", type=int)
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true", help="leave the last trial's lab up")
    ap.add_argument("--cells", help="comma-separated fnmatch patterns on the cell id")
    ap.add_argument("--jobs", type=int, default=1, help="trials at once, each in its own lab")
    args = ap.parse_args(argv)
    try:
        if args.trials is not None and not 1 <= args.trials <= 10000:
            raise RunnerError(f"--trials must be 1..10000 (got {args.trials})")
        if not 1 <= args.jobs <= MAX_JOBS:
            raise RunnerError(f"--jobs must be 1..{MAX_JOBS} (got {args.jobs})")
        out = Path(args.out) if args.out else (
            REPO / "reports" / "out" / "lab" / f"{Path(args.scenario).stem}-"
            f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')}")
        return run(args.scenario, args.trials, args.seed, out, args.keep, args.cells, args.jobs)
    except RunnerError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

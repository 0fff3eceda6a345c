"""Remove leftover lab namespaces and the processes running inside them.

    /usr/bin/python3 -m netns.cleanup [--prefix irlXXXX-] [--dry-run]

Every lab namespace is named `irl<4 hex>-<role>` (see topology.py). A process belongs to a namespace
when /proc/PID/ns/net is the same inode as /run/netns/NAME; such processes are killed by PID (SIGTERM,
then SIGKILL after a grace period), then the namespace is deleted. Without --prefix every lab
namespace on the machine is removed; with it only that lab's.
"""
from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time

NETNS_DIR = "/run/netns"
LAB_NS_RE = re.compile(r"^irl[0-9a-f]{4}-")
PREFIX_RE = re.compile(r"^irl[0-9a-f]{4}-$")


def lab_namespaces(prefix: str | None = None) -> list[str]:
    try:
        names = os.listdir(NETNS_DIR)
    except FileNotFoundError:
        return []
    if prefix is not None:
        return sorted(n for n in names if n.startswith(prefix))
    return sorted(n for n in names if LAB_NS_RE.match(n))


def _ns_inode(name: str) -> int | None:
    try:
        return os.stat(os.path.join(NETNS_DIR, name)).st_ino
    except OSError:
        return None


def pids_in_namespaces(names: list[str]) -> list[int]:
    """PIDs whose network namespace is one of `names`."""
    inodes = {ino for ino in (_ns_inode(n) for n in names) if ino is not None}
    if not inodes:
        return []
    own = os.getpid()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == own:
            continue
        try:
            ino = os.stat(f"/proc/{entry}/ns/net").st_ino
        except OSError:  # exited meanwhile, or a kernel thread
            continue
        if ino in inodes:
            found.append(int(entry))
    return found


def kill_pids(pids: list[int], grace_s: float = 2.0) -> None:
    """SIGTERM each PID, wait up to grace_s for them to exit, SIGKILL the rest."""
    alive = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
            alive.append(pid)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + grace_s
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _exists(p)]
        if alive:
            time.sleep(0.02)
    for pid in alive:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def _exists(pid: int) -> bool:
    # Reap our own children (otherwise they linger as zombies and look alive).
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return False


def delete_namespaces(names: list[str]) -> list[str]:
    """Deletes the namespaces; returns the names that could not be deleted."""
    failed = []
    for name in names:
        r = subprocess.run(["ip", "netns", "del", name], capture_output=True, text=True)
        if r.returncode != 0 and os.path.exists(os.path.join(NETNS_DIR, name)):
            failed.append(name)
    return failed


def cleanup(prefix: str | None = None, grace_s: float = 2.0) -> tuple[list[str], list[int], list[str]]:
    """Kills the processes of the matching namespaces, then deletes them.

    Returns (namespaces found, pids killed, namespaces that could not be deleted)."""
    names = lab_namespaces(prefix)
    pids = pids_in_namespaces(names)
    kill_pids(pids, grace_s)
    return names, pids, delete_namespaces(names)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m netns.cleanup",
                                 description="remove leftover irohlab lab namespaces and processes")
    ap.add_argument("--prefix", help="only this lab (e.g. irl1a2b-)")
    ap.add_argument("--dry-run", action="store_true", help="list what would be removed")
    args = ap.parse_args(argv)
    if args.prefix is not None and not PREFIX_RE.match(args.prefix):
        print(f"error: --prefix must look like irl1a2b- (got {args.prefix!r})", file=sys.stderr)
        return 2
    if os.geteuid() != 0:
        print("error: netns.cleanup needs root (ip netns del)", file=sys.stderr)
        return 2
    if args.dry_run:
        names = lab_namespaces(args.prefix)
        for n in names:
            print(f"namespace {n}")
        for p in pids_in_namespaces(names):
            print(f"pid {p}")
        return 0
    names, pids, failed = cleanup(args.prefix)
    print(f"removed {len(names) - len(failed)} namespace(s), killed {len(pids)} process(es)")
    if failed:
        print(f"error: could not delete: {' '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

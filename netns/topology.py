"""The lab topology: network namespaces, veth pairs, bridges, NAT routers (IPv4).

    with Lab(prefix=None, keep=False) as lab:
        lab.add_public_host("relay")
        lab.add_site("home", nat="moderate", hairpin=False, mapping_timeout_s=120,
                     firewall=None, uplink_hook=None)
        lab.add_device("laptop", "home")
        lab.up()
        proc = lab.exec("laptop", ["prog", ...], stdout=PIPE)   # Popen via `ip netns exec`
        res = lab.run("laptop", ["prog", ...], timeout=5)      # CompletedProcess (text)
        lab.addr("laptop"), lab.addr("relay"), lab.addr("home") # device / host / site's public addr
        lab.renumber("laptop"); lab.move("laptop", "office")
        lab.uplink_down("home"); lab.uplink_up("home")         # a site's WAN or a device's link
    # leaving the block (also by exception or Ctrl-C / SIGTERM) kills every process and deletes
    # every namespace, unless keep=True (then `python3 -m netns.cleanup --prefix P` removes it).

  add_* may be called before or after up() (after: built at once). Also: lab.ns(name) -> the
  namespace of a device / host / site (its router); lab.kill(proc) (SIGTERM to its process group,
  SIGKILL after a grace period); lab.down() (idempotent); lab.prefix; lab.timings {'up_s',
  'down_s'}; lab.sites[name] (Site: router_ns, carrier_ns, wan_addr, public_addr, lan_net, ...);
  lab.devices[name] (Device: ns, site, addr, gateway, history). Errors are LabError (one line).
  Processes started with exec() run in their own session; down() kills them by PID/process
  group, then every other process found in a lab namespace (netns.cleanup), then deletes the
  namespaces. Measured (2 cores): 6 namespaces up 0.27 s / down 0.02 s, 12: 0.57 / 0.05 s,
  26: 1.33 / 0.14 s.

Layout (every name below is prefixed with the lab prefix `irl<4 hex>-`, e.g. `irl1a2b-inet`):
  inet           the public "internet": bridge `br`, 198.18.0.0/16 (flat, no default routes).
                 Ports are veth ends `p<N>`.
  h-<host>       a public host (relay, probe servers): `eth0` 198.18.0.<10+i>/16.
  r-<site>       a NAT router: `wan` (198.18.1.<i>/16, or 100.64.<k>.2/24 behind a carrier),
                 bridge `lan` 10.<k>.0.1/24 with device ports `d<N>`; nftables from nat.py.
  c-<site>       (cgnat only) the carrier NAT: `wan` 198.18.1.<i>/16, bridge `lan` 100.64.<k>.1/24;
                 the home router's `wan` hangs off this bridge.
  d-<device>     a device: `eth0` 10.<k>.0.<10+j>/24 via the site router, or for nat='none'
                 198.18.2.<j>/16 directly on the internet bridge.
  l-<site>       (only with uplink_hook) the link namespace between the router's `wan` and its
                 upstream bridge (the internet, or the carrier's LAN for cgnat).
  l-<device>     (nat='none' site with uplink_hook) between the device's `eth0` and the internet.
IPv6 is disabled in every lab namespace (the lab is IPv4 only).

uplink_hook contract (helper B's link emulator plugs in here):
  uplink_hook(lab, site) is called during up() after the link namespace exists and before any
  device traffic. `site.link_ns` is the namespace to run in; `site.link_if_router` ('a') is the
  interface whose veth peer is the router's `wan`, `site.link_if_internet` ('b') the one whose peer
  is a port on the upstream bridge. Both are up, without addresses, and the veth ends that transmit
  into the link namespace have tx checksum offload off (when ethtool is installed). Nothing forwards
  between a and b until the hook starts something. The hook returns a handle (or None); if the
  handle has .stop(), down() calls it before the processes are killed, and the result is stored in
  `site.uplink_stats`. A nat='none' site has no router: there the hook is called once per device
  (when it is plugged in) with a DeviceUplink carrying the same attribute names (name = the device;
  link_if_router's peer = the device's eth0); its stats land in `device.uplink_stats`. Typical use:
      hook = lambda lab, site: links.start_link(site.link_ns, site.link_if_router,
                                                site.link_if_internet, "wifi", seed)
"""
from __future__ import annotations

import atexit
import ipaddress
import os
import re
import secrets
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import cleanup as _cleanup
from . import nat as _nat

INTERNET_NET = ipaddress.ip_network("198.18.0.0/16")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,23}$")
CMD_TIMEOUT_S = 10


class LabError(RuntimeError):
    """A lab operation failed (bad input, or a command in a namespace failed)."""


@dataclass
class Site:
    name: str
    nat: str
    hairpin: bool
    mapping_timeout_s: int
    firewall: str | None
    uplink_hook: Callable | None
    index: int
    router_ns: str | None = None          # None for nat='none'
    carrier_ns: str | None = None         # cgnat only
    lan_net: ipaddress.IPv4Network | None = None
    wan_addr: str | None = None           # the router's own WAN address
    wan_prefix: int = 16
    wan_gateway: str | None = None        # cgnat: the carrier's LAN address
    public_addr: str | None = None        # what the internet sees (carrier WAN for cgnat)
    link_ns: str | None = None
    link_if_router: str = "a"
    link_if_internet: str = "b"
    uplink_handle: Any = None
    uplink_stats: Any = None
    next_host: int = 10


@dataclass
class DeviceUplink:
    """What uplink_hook gets for a device of a nat='none' site (same attribute names as Site)."""
    name: str                             # the device's name
    site: str
    link_ns: str
    link_if_router: str = "a"             # peer: the device's eth0
    link_if_internet: str = "b"           # peer: a port on the internet bridge


@dataclass
class Device:
    name: str
    site: str
    ns: str
    addr: str | None = None
    prefix: int = 24
    gateway: str | None = None
    link: DeviceUplink | None = None      # nat='none' site with an uplink_hook
    uplink_handle: Any = None
    uplink_stats: Any = None
    history: list = field(default_factory=list)   # [(t_monotonic, event, addr)]


@dataclass
class PublicHost:
    name: str
    ns: str
    addr: str


# ------------------------------------------------------------------------------------------------
# command helpers
# ------------------------------------------------------------------------------------------------
def _run(argv: list[str], input: str | None = None) -> str:
    try:
        r = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=CMD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise LabError(f"timed out: {' '.join(argv)}") from None
    if r.returncode != 0:
        raise LabError(f"failed ({r.returncode}): {' '.join(argv)}: {r.stderr.strip()}")
    return r.stdout


def _ip(ns: str, *args: str) -> str:
    return _run(["ip", "-n", ns, *args])


def _sysctl(ns: str, values: dict[str, str]) -> None:
    _run(["ip", "netns", "exec", ns, "sysctl", "-qw", *[f"{k}={v}" for k, v in values.items()]])


_LIVE_LABS: list["Lab"] = []
_SIGNALS_INSTALLED = False


def _down_live_labs() -> None:
    for lab in list(_LIVE_LABS):
        if not lab.keep:
            try:
                lab.down()
            except LabError:  # one stuck namespace must not keep the other labs up
                pass


def _raise_system_exit(signum, _frame):
    # SIGTERM / SIGHUP unwind like Ctrl-C, so `with Lab()` blocks and finally clauses clean up.
    raise SystemExit(128 + signum)


def install_signal_handlers() -> None:
    """SIGTERM/SIGHUP unwind as SystemExit, and live labs go down at exit. Lab.up() does this
    itself, but only in the main thread: a program that builds labs in worker threads calls it
    from the main thread first."""
    _install_signal_handlers()


def down_all_labs() -> None:
    """Takes down every lab of this process that is up (not the kept ones): the last resort of
    a program whose workers did not finish their own teardown in time."""
    _down_live_labs()


def _install_signal_handlers() -> None:
    global _SIGNALS_INSTALLED
    if _SIGNALS_INSTALLED or threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(sig) in (signal.SIG_DFL, None):
            signal.signal(sig, _raise_system_exit)
    atexit.register(_down_live_labs)
    _SIGNALS_INSTALLED = True


_ISSUED_PREFIXES: set[str] = set()   # prefixes handed out in this process (labs in threads)
_PREFIX_LOCK = threading.Lock()


def _new_prefix() -> str:
    with _PREFIX_LOCK:  # two threads must not draw the same prefix before either creates a netns
        existing = set(_cleanup.lab_namespaces())
        for _ in range(100):
            prefix = f"irl{secrets.randbelow(0x10000):04x}-"
            if prefix not in _ISSUED_PREFIXES and not any(n.startswith(prefix) for n in existing):
                _ISSUED_PREFIXES.add(prefix)
                return prefix
    raise LabError("could not find a free lab prefix")


# ------------------------------------------------------------------------------------------------
# the lab
# ------------------------------------------------------------------------------------------------
class Lab:
    def __init__(self, prefix: str | None = None, keep: bool = False):
        if prefix is not None and not _cleanup.PREFIX_RE.match(prefix):
            raise LabError(f"lab prefix must look like irl1a2b- (got {prefix!r})")
        self.prefix = prefix or _new_prefix()
        self.keep = keep
        self.inet_ns = self.prefix + "inet"
        self.sites: dict[str, Site] = {}
        self.devices: dict[str, Device] = {}
        self.hosts: dict[str, PublicHost] = {}
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []
        self.timings: dict[str, float] = {}
        self.is_up = False
        self._port_counter = 0
        self._next_router_wan = 1
        self._next_public_device = 10
        self._t0 = time.monotonic()

    # -- context manager ------------------------------------------------------------------------
    def __enter__(self) -> "Lab":
        return self

    def __exit__(self, *exc) -> None:
        if self.keep:
            self._print_kept()
            _LIVE_LABS.remove(self) if self in _LIVE_LABS else None
        else:
            self.down()

    def _print_kept(self) -> None:
        import sys
        print(f"lab kept: namespaces {self.prefix}*; remove with "
              f"`python3 -m netns.cleanup --prefix {self.prefix}`", file=sys.stderr)

    # -- declaring the topology -----------------------------------------------------------------
    def add_site(self, name: str, nat: str, hairpin: bool = False,
                 mapping_timeout_s: int = _nat.DEFAULT_MAPPING_TIMEOUT_S,
                 firewall: str | None = None, uplink_hook: Callable | None = None) -> Site:
        self._check_new_name(name)
        try:
            _nat.check_config(nat, hairpin, mapping_timeout_s, firewall)
        except _nat.NatConfigError as e:
            raise LabError(f"site {name}: {e}") from None
        index = len(self.sites) + 1
        if index > 250:
            raise LabError("at most 250 sites")
        site = Site(name, nat, hairpin, mapping_timeout_s, firewall, uplink_hook, index)
        self.sites[name] = site
        if self.is_up:
            self._build_site(site)
        return site

    def add_device(self, name: str, site: str) -> Device:
        self._check_new_name(name)
        if site not in self.sites:
            raise LabError(f"device {name}: unknown site {site!r}")
        dev = Device(name, site, self.prefix + "d-" + name)
        self.devices[name] = dev
        if self.is_up:
            self._build_device(dev)
        return dev

    def add_public_host(self, name: str) -> PublicHost:
        self._check_new_name(name)
        i = len(self.hosts) + 10
        if i > 250:
            raise LabError("at most 240 public hosts")
        host = PublicHost(name, self.prefix + "h-" + name, f"198.18.0.{i}")
        self.hosts[name] = host
        if self.is_up:
            self._build_host(host)
        return host

    def _check_new_name(self, name: str) -> None:
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise LabError(f"bad name {name!r}: use 1-24 of [a-z0-9_-], starting alphanumeric")
        if name in self.sites or name in self.devices or name in self.hosts:
            raise LabError(f"name {name!r} is already used in this lab")

    # -- building -------------------------------------------------------------------------------
    def up(self) -> "Lab":
        if os.geteuid() != 0:
            raise LabError("the lab needs root (ip netns, nftables)")
        if self.is_up:
            return self
        _install_signal_handlers()
        _LIVE_LABS.append(self)
        t = time.monotonic()
        try:
            self._new_ns(self.inet_ns)
            _ip(self.inet_ns, "link", "add", "name", "br", "type", "bridge")
            _ip(self.inet_ns, "link", "set", "dev", "br", "up")
            for host in self.hosts.values():
                self._build_host(host)
            for site in self.sites.values():
                self._build_site(site)
            for dev in self.devices.values():
                self._build_device(dev)
        except BaseException:
            if not self.keep:
                self.down()
            raise
        self.is_up = True
        self.timings["up_s"] = time.monotonic() - t
        return self

    def _new_ns(self, ns: str, router: bool = False, mapping_timeout_s: int | None = None) -> None:
        _run(["ip", "netns", "add", ns])
        self.namespaces.append(ns)
        _ip(ns, "link", "set", "dev", "lo", "up")
        values = {
            "net.ipv6.conf.all.disable_ipv6": "1",
            "net.ipv6.conf.default.disable_ipv6": "1",
            # renumbering: the new address takes over as primary when the old one is deleted
            "net.ipv4.conf.all.promote_secondaries": "1",
            "net.ipv4.conf.default.promote_secondaries": "1",
        }
        if router:
            values["net.ipv4.ip_forward"] = "1"
            values.update(_nat.conntrack_sysctls(mapping_timeout_s))
        _sysctl(ns, values)

    def _port_name(self, kind: str) -> str:
        self._port_counter += 1
        return f"{kind}{self._port_counter}"

    def _veth_to_bridge(self, ns: str, ifname: str, bridge_ns: str, bridge: str) -> str:
        """veth `ifname` in ns whose peer is a new port of `bridge` in bridge_ns; both up."""
        port = self._port_name("p" if bridge == "br" else "d")
        _ip(ns, "link", "add", "name", ifname, "type", "veth", "peer", "name", port, "netns", bridge_ns)
        _ip(bridge_ns, "link", "set", "dev", port, "master", bridge, "up")
        _ip(ns, "link", "set", "dev", ifname, "up")
        return port

    def _build_host(self, host: PublicHost) -> None:
        self._new_ns(host.ns)
        self._veth_to_bridge(host.ns, "eth0", self.inet_ns, "br")
        _ip(host.ns, "addr", "add", f"{host.addr}/16", "dev", "eth0")

    def _alloc_router_wan(self) -> str:
        i = self._next_router_wan
        if i > 254:
            raise LabError("out of router WAN addresses")
        self._next_router_wan += 1
        return f"198.18.1.{i}"

    def _build_site(self, site: Site) -> None:
        if site.nat == "none":
            site.public_addr = None  # each device has its own public address
            return
        k = site.index
        site.lan_net = ipaddress.ip_network(f"10.{k}.0.0/24")
        site.router_ns = self.prefix + "r-" + site.name
        tier = "moderate" if site.nat == "cgnat" else site.nat
        self._new_ns(site.router_ns, router=True, mapping_timeout_s=site.mapping_timeout_s)
        if site.nat == "cgnat":
            site.carrier_ns = self.prefix + "c-" + site.name
            self._new_ns(site.carrier_ns, router=True, mapping_timeout_s=site.mapping_timeout_s)
            carrier_wan = self._alloc_router_wan()
            self._veth_to_bridge(site.carrier_ns, "wan", self.inet_ns, "br")
            _ip(site.carrier_ns, "addr", "add", f"{carrier_wan}/16", "dev", "wan")
            _ip(site.carrier_ns, "link", "add", "name", "lan", "type", "bridge")
            _ip(site.carrier_ns, "link", "set", "dev", "lan", "up")
            _ip(site.carrier_ns, "addr", "add", f"100.64.{k}.1/24", "dev", "lan")
            self._load_nft(site.carrier_ns, _nat.router_ruleset(
                "moderate", carrier_wan, f"100.64.{k}.0/24",
                mapping_timeout_s=site.mapping_timeout_s))
            site.wan_addr, site.wan_prefix, site.wan_gateway = f"100.64.{k}.2", 24, f"100.64.{k}.1"
            site.public_addr = carrier_wan
            self._build_uplink(site, site.carrier_ns, "lan")
        else:
            site.wan_addr = self._alloc_router_wan()
            site.public_addr = site.wan_addr
            self._build_uplink(site, self.inet_ns, "br")
        rns = site.router_ns
        _ip(rns, "addr", "add", f"{site.wan_addr}/{site.wan_prefix}", "dev", "wan")
        if site.wan_gateway:
            _ip(rns, "route", "add", "default", "via", site.wan_gateway)
        _ip(rns, "link", "add", "name", "lan", "type", "bridge")
        _ip(rns, "link", "set", "dev", "lan", "up")
        _ip(rns, "addr", "add", f"{site.lan_net[1]}/24", "dev", "lan")
        self._load_nft(rns, _nat.router_ruleset(
            tier, site.wan_addr, str(site.lan_net), hairpin=site.hairpin,
            mapping_timeout_s=site.mapping_timeout_s, firewall=site.firewall))

    def _build_uplink(self, site: Site, up_ns: str, up_bridge: str) -> None:
        """The router's `wan`: a veth to the upstream bridge, or through a link namespace."""
        if site.uplink_hook is None:
            self._veth_to_bridge(site.router_ns, "wan", up_ns, up_bridge)
            return
        site.link_ns = self.prefix + "l-" + site.name
        self._new_ns(site.link_ns)
        a, b = site.link_if_router, site.link_if_internet
        _ip(site.router_ns, "link", "add", "name", "wan", "type", "veth", "peer", "name", a,
            "netns", site.link_ns)
        port = self._veth_to_bridge(site.link_ns, b, up_ns, up_bridge)
        _ip(site.link_ns, "link", "set", "dev", a, "up")
        _ip(site.router_ns, "link", "set", "dev", "wan", "up")
        # A userspace forwarder reading with AF_PACKET sees veth packets with partial checksums
        # unless the transmitting end computes them: turn tx offload off on both feeding ends.
        if shutil.which("ethtool"):
            _run(["ip", "netns", "exec", site.router_ns, "ethtool", "-K", "wan", "tx", "off"])
            _run(["ip", "netns", "exec", up_ns, "ethtool", "-K", port, "tx", "off"])
        site.uplink_handle = site.uplink_hook(self, site)

    def _load_nft(self, ns: str, ruleset: str) -> None:
        _run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=ruleset)

    def _build_device(self, dev: Device) -> None:
        self._new_ns(dev.ns)
        self._attach(dev, self.sites[dev.site])

    def _attach(self, dev: Device, site: Site) -> None:
        """Plug the device's `eth0` into the site (LAN bridge, or the internet for nat='none')."""
        if site.nat == "none":
            if site.uplink_hook is not None:
                self._attach_through_link(dev, site)
            else:
                self._veth_to_bridge(dev.ns, "eth0", self.inet_ns, "br")
            dev.addr, dev.prefix, dev.gateway = self._alloc_public_device_addr(), 16, None
            if site.firewall:
                self._load_nft(dev.ns, _nat.host_firewall_ruleset(site.firewall, "eth0"))
        else:
            self._veth_to_bridge(dev.ns, "eth0", site.router_ns, "lan")
            dev.addr, dev.prefix, dev.gateway = self._alloc_lan_addr(site), 24, str(site.lan_net[1])
        _ip(dev.ns, "addr", "add", f"{dev.addr}/{dev.prefix}", "dev", "eth0")
        if dev.gateway:
            _ip(dev.ns, "route", "replace", "default", "via", dev.gateway)
        dev.site = site.name
        dev.history.append((time.monotonic(), "attach", dev.addr))

    def _attach_through_link(self, dev: Device, site: Site) -> None:
        """nat='none' with a link: eth0 -> link namespace (a | b) -> internet bridge."""
        link = DeviceUplink(dev.name, site.name, self.prefix + "l-" + dev.name)
        self._new_ns(link.link_ns)
        _ip(dev.ns, "link", "add", "name", "eth0", "type", "veth", "peer", "name",
            link.link_if_router, "netns", link.link_ns)
        port = self._veth_to_bridge(link.link_ns, link.link_if_internet, self.inet_ns, "br")
        _ip(link.link_ns, "link", "set", "dev", link.link_if_router, "up")
        _ip(dev.ns, "link", "set", "dev", "eth0", "up")
        if shutil.which("ethtool"):
            _run(["ip", "netns", "exec", dev.ns, "ethtool", "-K", "eth0", "tx", "off"])
            _run(["ip", "netns", "exec", self.inet_ns, "ethtool", "-K", port, "tx", "off"])
        dev.link = link
        dev.uplink_handle = site.uplink_hook(self, link)

    def _detach(self, dev: Device) -> None:
        """Unplugs the device (and removes its own link namespace, if it has one)."""
        _ip(dev.ns, "link", "del", "dev", "eth0")  # deletes the veth peer as well
        if self.sites[dev.site].nat == "none" and self.sites[dev.site].firewall:
            _run(["ip", "netns", "exec", dev.ns, "nft", "delete", "table", "ip", _nat.TABLE])
        if dev.link is not None:
            dev.uplink_stats = _stop_handle(dev.uplink_handle)
            dev.uplink_handle = None
            names = [dev.link.link_ns]
            _cleanup.kill_pids(_cleanup.pids_in_namespaces(names), grace_s=1.0)
            _cleanup.delete_namespaces(names)
            self.namespaces.remove(dev.link.link_ns)
            dev.link = None

    def _alloc_public_device_addr(self) -> str:
        j = self._next_public_device
        if j > 254:
            raise LabError("out of public device addresses")
        self._next_public_device += 1
        return f"198.18.2.{j}"

    def _alloc_lan_addr(self, site: Site) -> str:
        if site.next_host > 254:
            raise LabError(f"site {site.name}: out of LAN addresses")
        addr = str(site.lan_net[site.next_host])
        site.next_host += 1
        return addr

    # -- processes ------------------------------------------------------------------------------
    def ns(self, name: str) -> str:
        """The namespace of a device, public host or site (its router), or a full namespace name."""
        if name in self.devices:
            return self.devices[name].ns
        if name in self.hosts:
            return self.hosts[name].ns
        if name in self.sites:
            site = self.sites[name]
            if site.router_ns is None:
                raise LabError(f"site {name!r} has no router (nat='none')")
            return site.router_ns
        if name in self.namespaces:
            return name
        raise LabError(f"unknown lab node {name!r}")

    def exec(self, ns: str, argv: list[str], **popen_kw) -> subprocess.Popen:
        """Starts argv in the node's namespace; the lab kills it (its process group) on down()."""
        if not self.is_up:
            raise LabError("lab.exec before lab.up()")
        popen_kw.setdefault("start_new_session", True)  # own process group: kill children too
        proc = subprocess.Popen(["ip", "netns", "exec", self.ns(ns), *argv], **popen_kw)
        self.procs.append(proc)
        return proc

    def run(self, ns: str, argv: list[str], timeout: float = 10.0,
            input: str | None = None, **popen_kw) -> subprocess.CompletedProcess:
        """Runs argv to completion in the namespace (text output captured), bounded by timeout."""
        proc = self.exec(ns, argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **popen_kw)
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill(proc)
            raise LabError(f"timed out after {timeout} s in {ns}: {' '.join(argv)}") from None
        finally:
            if proc in self.procs and proc.poll() is not None:
                self.procs.remove(proc)
        return subprocess.CompletedProcess(argv, proc.returncode, out, err)

    def kill(self, proc: subprocess.Popen, grace_s: float = 2.0) -> int | None:
        """SIGTERM the process group, SIGKILL after grace_s; returns the exit code."""
        if proc.poll() is None:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                try:
                    proc.wait(timeout=2)
                except subprocess.TimeoutExpired:
                    pass
        else:
            # the leader exited; children in its group may still run
            _signal_group(proc.pid, signal.SIGKILL)
        if proc in self.procs:
            self.procs.remove(proc)
        return proc.returncode

    # -- addresses ------------------------------------------------------------------------------
    def addr(self, name: str) -> str:
        """A device's current address, a public host's address, or a site's public address."""
        if name in self.devices:
            return self.devices[name].addr
        if name in self.hosts:
            return self.hosts[name].addr
        if name in self.sites:
            site = self.sites[name]
            if site.public_addr is None:
                raise LabError(f"site {name!r} (nat='none') has no single public address")
            return site.public_addr
        raise LabError(f"unknown lab node {name!r}")

    # -- churn ----------------------------------------------------------------------------------
    def _device(self, name: str) -> Device:
        if name not in self.devices:
            raise LabError(f"unknown device {name!r}")
        if not self.is_up:
            raise LabError("churn before lab.up()")
        return self.devices[name]

    def renumber(self, device: str) -> str:
        """Gives the device a new address on its network; returns it. The new address is added
        before the old one is deleted (otherwise the default route vanishes for a while)."""
        dev = self._device(device)
        site = self.sites[dev.site]
        new = self._alloc_public_device_addr() if site.nat == "none" else self._alloc_lan_addr(site)
        old = dev.addr
        _ip(dev.ns, "addr", "add", f"{new}/{dev.prefix}", "dev", "eth0")
        _ip(dev.ns, "addr", "del", f"{old}/{dev.prefix}", "dev", "eth0")
        if dev.gateway:
            _ip(dev.ns, "route", "replace", "default", "via", dev.gateway)
        dev.addr = new
        dev.history.append((time.monotonic(), "renumber", new))
        return new

    def move(self, device: str, to_site: str) -> str:
        """Unplugs the device and plugs it into another site's LAN; returns its new address."""
        dev = self._device(device)
        if to_site not in self.sites:
            raise LabError(f"move: unknown site {to_site!r}")
        if to_site == dev.site:
            raise LabError(f"move: {device} is already at {to_site}")
        self._detach(dev)
        self._attach(dev, self.sites[to_site])
        dev.history[-1] = (dev.history[-1][0], "move", dev.addr)
        return dev.addr

    def uplink_down(self, site_or_device: str) -> None:
        """A site loses its WAN link (the router's `wan` goes down), or a device its link."""
        ns, ifname = self._uplink_of(site_or_device)
        _ip(ns, "link", "set", "dev", ifname, "down")

    def uplink_up(self, site_or_device: str) -> None:
        ns, ifname = self._uplink_of(site_or_device)
        _ip(ns, "link", "set", "dev", ifname, "up")
        # link down flushed the routes through that interface
        if site_or_device in self.devices:
            dev = self.devices[site_or_device]
            if dev.gateway:
                _ip(ns, "route", "replace", "default", "via", dev.gateway)
        else:
            site = self.sites[site_or_device]
            if site.wan_gateway:
                _ip(ns, "route", "replace", "default", "via", site.wan_gateway)

    def udp_block(self, device: str) -> None:
        """The device loses UDP (its direct QUIC paths) but keeps TCP (its relay connection)."""
        dev = self._device(device)
        self._load_nft(dev.ns, _nat.udp_block_ruleset("eth0"))

    def udp_unblock(self, device: str) -> None:
        dev = self._device(device)
        _run(["ip", "netns", "exec", dev.ns, "nft", "delete", "table", "ip", _nat.CHURN_TABLE])

    def _uplink_of(self, name: str) -> tuple[str, str]:
        if not self.is_up:
            raise LabError("churn before lab.up()")
        if name in self.devices:
            return self.devices[name].ns, "eth0"
        if name in self.sites:
            site = self.sites[name]
            if site.router_ns is None:
                raise LabError(f"site {name!r} (nat='none') has no router uplink; use a device")
            return site.router_ns, "wan"
        raise LabError(f"unknown site or device {name!r}")

    # -- teardown -------------------------------------------------------------------------------
    def down(self) -> None:
        """Stops uplink handles, kills every process, deletes every namespace. Idempotent."""
        t = time.monotonic()
        for node in [*self.sites.values(), *self.devices.values()]:
            handle, node.uplink_handle = node.uplink_handle, None
            if handle is not None:
                node.uplink_stats = _stop_handle(handle)
        for proc in list(self.procs):
            try:
                self.kill(proc, grace_s=1.0)
            except Exception:
                pass
        self.procs.clear()
        names = [n for n in _cleanup.lab_namespaces(self.prefix)]
        _cleanup.kill_pids(_cleanup.pids_in_namespaces(names), grace_s=1.0)
        failed = _cleanup.delete_namespaces(names)
        self.namespaces = failed
        self.is_up = False
        if self in _LIVE_LABS:
            _LIVE_LABS.remove(self)
        self.timings["down_s"] = time.monotonic() - t
        if failed:
            raise LabError(f"could not delete namespaces: {' '.join(failed)}")


def _stop_handle(handle):
    if handle is None or not hasattr(handle, "stop"):
        return None
    try:
        return handle.stop()
    except Exception as e:  # teardown goes on; the stats just say why they are missing
        return {"error": str(e)}


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass

"""Scenario files: one TOML format for every lab back-end (netns today, ns-3 next).

A scenario describes a matrix of lab runs: the NAT tier of each site's home router, the
implementation on each side, the link profile on both uplinks, the workload, a churn timeline,
trials, seeds, timeouts and the expected outcome of every cell. `load(path)` validates the
file and `Scenario.cells()` expands the matrix. The format is documented in
scenarios/README.md.

Every validation error names the file, the line, the key and the reason
(`ScenarioError`, printed as "FILE:LINE: KEY: REASON"). tomllib reports line numbers only for
syntax errors, so `_KeyLines` scans the source once to find where each key is written.

CLI (from the repo root):
    /usr/bin/python3 -m netns.scenario check FILE...   # "ok FILE: N cells, M trials" or the error
    /usr/bin/python3 -m netns.scenario cells FILE      # one line per expanded cell
    /usr/bin/python3 -m netns.scenario json FILE       # the expanded cells as JSON (for ns-3)
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import os
import re
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

# ---------------------------------------------------------------------------------------------
# vocabularies shared with the runner, the report and the ns-3 back-end

NAT_TIERS = ("none", "open", "moderate", "strict", "cgnat")
IMPLS = ("cpp", "rust")
WORKLOAD_KINDS = ("echo", "bulk", "datagrams")
CHURN_DEVICES = ("server", "client")
CHURN_ACTIONS = ("renumber", "move", "uplink-down", "udp-block")
TIMED_CHURN_ACTIONS = ("uplink-down", "udp-block")  # these last duration_s
FIREWALLS = ("none", "udp-block")        # "none" in the file = Cell.firewall None
FINAL_PATHS = ("direct", "relay", "any")  # "any" in the file = Cell.expect_final_path None
RELAY_HOSTS = ("internet",)               # where the relay runs: the public segment
ADDRESS_DISCOVERY = ("probe", "none")     # how peers learn their NAT-mapped address (QAD stand-in)
PLAIN_LINK = "veth"                       # link name meaning "no emulator, plain veth" (None)

# Used only when netns.links (the lab's profile table) cannot be imported, e.g. for the ns-3
# back-end on a machine without the netns lab: iroh's degradation ladder, then the radio links.
BUILTIN_LINK_PROFILES = ("good-wifi", "congested-wifi", "weak-4g", "slow-3g",
                         "congested-cellular", "very-bad-cellular", "satellite", "barely-usable",
                         "absurd", "ble", "lora")
BUILTIN_LINK_ALIASES = {"stress": "absurd"}   # the name for iroh's last rung


def _links_module():
    try:
        from netns import links  # noqa: PLC0415 - optional: the netns lab's profile table
    except ImportError:
        return None
    return links if getattr(links, "PROFILES", None) else None


def default_link_profiles() -> tuple[str, ...]:
    """The link profile names scenario files may use: netns.links.PROFILES when present."""
    links = _links_module()
    return tuple(links.PROFILES) if links else BUILTIN_LINK_PROFILES


def default_link_aliases() -> dict[str, str]:
    """Other accepted names → canonical profile name (netns.links.ALIASES when present)."""
    links = _links_module()
    return dict(getattr(links, "ALIASES", {})) if links else dict(BUILTIN_LINK_ALIASES)


MAX_DATAGRAM_SIZE = 1200  # QUIC DATAGRAM payload must fit one 1200-byte-safe packet


# ---------------------------------------------------------------------------------------------
# the public data model (shared interface: keep field names and order)

class ScenarioError(Exception):
    """A scenario file is unusable. str() = "FILE:LINE: KEY: REASON"."""

    def __init__(self, path: str | Path, line: int, key: str, reason: str):
        self.path = str(path)
        self.line = line
        self.key = key
        self.reason = reason
        super().__init__(f"{self.path}:{line}: {key}: {reason}")


@dataclass(frozen=True)
class Workload:
    kind: str            # 'echo' | 'bulk' | 'datagrams'
    bytes: int           # stream bytes sent (echo: echoed back and verified)
    datagrams: int       # number of QUIC datagrams (kind 'datagrams')
    datagram_size: int   # payload bytes per datagram


@dataclass(frozen=True)
class ChurnEvent:
    at_s: float          # seconds after the connect starts
    device: str          # 'server' | 'client'
    action: str          # 'renumber' | 'move' | 'uplink-down' | 'udp-block'
    duration_s: float    # uplink-down / udp-block: how long it lasts; else 0


@dataclass(frozen=True)
class Cell:
    scenario: str
    server_nat: str
    client_nat: str
    server_impl: str
    client_impl: str
    trials: int
    seed: int            # base seed; trial i of the cell uses seed + i
    link: str | None     # link profile on both sites' uplinks; None = plain veth
    hairpin: bool
    mapping_timeout_s: int
    firewall: str | None
    workload: Workload
    timeout_s: float
    direct_timeout_s: float
    churn: tuple[ChurnEvent, ...]
    expect_final_path: str | None   # 'direct' | 'relay' | None = not asserted
    relay_only_ticket: bool = True
    address_discovery: str = "probe"   # 'probe' (QAD stand-in, netns/address_discovery.py) | 'none'

    @property
    def pair(self) -> str:
        return f"{self.server_impl}-{self.client_impl}"


@dataclass(frozen=True)
class ExpectRule:
    """One [[expect.override]]: selectors (None = any) and the expectation it sets."""
    server_nat: tuple[str, ...] | None
    client_nat: tuple[str, ...] | None
    pair: tuple[str, ...] | None
    link: tuple[str | None, ...] | None
    final_path: str | None

    def matches(self, server_nat: str, client_nat: str, pair: str, link: str | None) -> bool:
        return ((self.server_nat is None or server_nat in self.server_nat)
                and (self.client_nat is None or client_nat in self.client_nat)
                and (self.pair is None or pair in self.pair)
                and (self.link is None or link in self.link))


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    path: str
    server_nats: tuple[str, ...]
    client_nats: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]          # (server_impl, client_impl)
    links: tuple[str | None, ...]
    relay: str
    hairpin: bool
    mapping_timeout_s: int
    firewall: str | None
    relay_only_ticket: bool
    workload: Workload
    trials: int
    seed: int
    timeout_s: float
    direct_timeout_s: float
    churn: tuple[ChurnEvent, ...]
    expect_default: str | None
    expect_rules: tuple[ExpectRule, ...]
    address_discovery: str = "probe"

    def expectation(self, server_nat: str, client_nat: str, pair: str,
                    link: str | None) -> str | None:
        """The default, then every matching override in file order (the last match wins)."""
        result = self.expect_default
        for rule in self.expect_rules:
            if rule.matches(server_nat, client_nat, pair, link):
                result = rule.final_path
        return result

    def cells(self) -> list[Cell]:
        """The expanded matrix: pairs × links × server tiers × client tiers, in file order."""
        out = []
        for (s_impl, c_impl), link, s_nat, c_nat in itertools.product(
                self.pairs, self.links, self.server_nats, self.client_nats):
            out.append(Cell(
                scenario=self.name, server_nat=s_nat, client_nat=c_nat,
                server_impl=s_impl, client_impl=c_impl, trials=self.trials, seed=self.seed,
                link=link, hairpin=self.hairpin, mapping_timeout_s=self.mapping_timeout_s,
                firewall=self.firewall, workload=self.workload, timeout_s=self.timeout_s,
                direct_timeout_s=self.direct_timeout_s, churn=self.churn,
                expect_final_path=self.expectation(s_nat, c_nat, f"{s_impl}-{c_impl}", link),
                relay_only_ticket=self.relay_only_ticket,
                address_discovery=self.address_discovery))
        return out


# ---------------------------------------------------------------------------------------------
# line numbers for keys

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


class _KeyLines:
    """Maps key paths such as ("churn", 1, "action") to the 1-based line where they are written.

    A deliberately small scanner, not a TOML parser: it follows table headers, counts
    array-of-tables entries and skips the insides of multi-line strings. tomllib has already
    accepted the file, so the source is well-formed."""

    def __init__(self, source: str):
        self.lines: dict[tuple, int] = {}
        table: tuple = ()
        aot_counts: dict[tuple, int] = {}
        in_multiline: str | None = None
        for number, raw in enumerate(source.splitlines(), start=1):
            if in_multiline:
                if raw.count(in_multiline) % 2 == 1:
                    in_multiline = None
                continue
            header = _HEADER.match(raw)
            if header and not _KEY.match(raw):
                names = _split_dotted(header.group(2))
                if header.group(1) == "[[":
                    base = self._resolve(tuple(names[:-1]), aot_counts) + (names[-1],)
                    index = aot_counts.get(base, -1) + 1
                    aot_counts[base] = index
                    table = base + (index,)
                else:
                    table = self._resolve(tuple(names), aot_counts)
                self.lines.setdefault(table, number)
                continue
            key = _KEY.match(raw)
            if key:
                path = table + tuple(_split_dotted(key.group(1)))
                self.lines.setdefault(path, number)
                rest = raw[key.end():]
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_multiline = quote

    @staticmethod
    def _resolve(names: tuple, aot_counts: dict[tuple, int]) -> tuple:
        """[a.b] under [[a]] means the latest entry of a: insert its index."""
        out: tuple = ()
        for name in names:
            out += (name,)
            if out in aot_counts:
                out += (aot_counts[out],)
        return out

    def line_of(self, path: tuple) -> int:
        """The key's own line, else its nearest enclosing table's header, else line 1."""
        for end in range(len(path), 0, -1):
            if path[:end] in self.lines:
                return self.lines[path[:end]]
        return 1


def _dotted(path: tuple) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out or "(file)"


# ---------------------------------------------------------------------------------------------
# typed field readers

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class _Reader:
    """Reads and checks values of one parsed file; every failure becomes a ScenarioError."""

    def __init__(self, path: str, source: str, link_profiles: Iterable[str],
                 link_aliases: dict[str, str]):
        self.path = path
        self.key_lines = _KeyLines(source)
        self.link_profiles = tuple(link_profiles)
        # an alias counts only if it names a known profile
        self.link_aliases = {a: p for a, p in link_aliases.items() if p in self.link_profiles}

    def fail(self, key_path: tuple, reason: str) -> ScenarioError:
        return ScenarioError(self.path, self.key_lines.line_of(key_path), _dotted(key_path), reason)

    def table(self, parent: dict, parent_path: tuple, name: str, allowed: Iterable[str],
              required: bool = False) -> dict:
        path = parent_path + (name,)
        if name not in parent:
            if required:
                raise self.fail(parent_path or (name,), f"missing table [{_dotted(path)}]")
            return {}
        value = parent[name]
        if not isinstance(value, dict):
            raise self.fail(path, f"must be a table, not {_type_name(value)}")
        self.reject_unknown(value, path, allowed)
        return value

    def reject_unknown(self, table: dict, path: tuple, allowed: Iterable[str]) -> None:
        allowed = tuple(allowed)
        for key in table:
            if key not in allowed:
                raise self.fail(path + (key,), f"unknown key (allowed here: {', '.join(allowed)})")

    def string(self, table: dict, path: tuple, key: str, default: str | None = None,
               choices: Iterable[str] | None = None) -> str:
        full = path + (key,)
        if key not in table:
            if default is None:
                raise self.fail(path or full, f"missing required key '{key}'")
            return default
        value = table[key]
        if not isinstance(value, str):
            raise self.fail(full, f"must be a string, not {_type_name(value)}")
        if choices is not None:
            choices = tuple(choices)
            if value not in choices:
                raise self.fail(full, f"unknown value {value!r} "
                                      f"(expected one of: {', '.join(choices)})")
        return value

    def string_list(self, table: dict, path: tuple, key: str, choices: Iterable[str],
                    what: str, default: tuple[str, ...] | None = None,
                    choices_label: str = "expected one of") -> tuple[str, ...]:
        """A string or a non-empty list of distinct strings, each one of `choices`."""
        full = path + (key,)
        if key not in table:
            if default is None:
                raise self.fail(path or full, f"missing required key '{key}'")
            return default
        value = table[key]
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            raise self.fail(full, f"must be a string or a list of strings, not {_type_name(value)}")
        if not items:
            raise self.fail(full, "must not be empty")
        choices = tuple(choices)
        seen = []
        for item in items:
            if not isinstance(item, str):
                raise self.fail(full, f"list items must be strings, not {_type_name(item)}")
            if item not in choices:
                raise self.fail(full, f"unknown {what} {item!r} "
                                      f"({choices_label}: {', '.join(choices)})")
            if item in seen:
                raise self.fail(full, f"{what} {item!r} listed twice")
            seen.append(item)
        return tuple(seen)

    def boolean(self, table: dict, path: tuple, key: str, default: bool) -> bool:
        if key not in table:
            return default
        value = table[key]
        if not isinstance(value, bool):
            raise self.fail(path + (key,), f"must be true or false, not {_type_name(value)}")
        return value

    def integer(self, table: dict, path: tuple, key: str, default: int | None, minimum: int,
                maximum: int | None = None) -> int:
        full = path + (key,)
        if key not in table:
            if default is None:
                raise self.fail(path or full, f"missing required key '{key}'")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(full, f"must be an integer, not {_type_name(value)}")
        if value < minimum:
            raise self.fail(full, f"must be >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.fail(full, f"must be <= {maximum}, got {value}")
        return value

    def seconds(self, table: dict, path: tuple, key: str, default: float | None,
                allow_zero: bool = False) -> float:
        full = path + (key,)
        if key not in table:
            if default is None:
                raise self.fail(path or full, f"missing required key '{key}'")
            return default
        value = table[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(full, f"must be a number of seconds, not {_type_name(value)}")
        value = float(value)
        if value != value or value in (float("inf"), float("-inf")):
            raise self.fail(full, "must be a finite number of seconds")
        if value < 0 or (value == 0 and not allow_zero):
            bound = ">= 0" if allow_zero else "> 0"
            raise self.fail(full, f"must be {bound} seconds, got {value:g}")
        return value


def _type_name(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a float", str: "a string",
            list: "an array", dict: "a table"}.get(type(value), type(value).__name__)


# ---------------------------------------------------------------------------------------------
# the file format

_TOP = ("scenario", "topology", "peers", "workload", "run", "churn", "expect")
_SCENARIO_KEYS = ("name", "description")
_TOPOLOGY_KEYS = ("server_nat", "client_nat", "links", "relay", "hairpin", "mapping_timeout_s",
                  "firewall")
_PEERS_KEYS = ("pairs", "relay_only_ticket", "address_discovery")
_WORKLOAD_KEYS = ("kind", "bytes", "datagrams", "datagram_size")
_RUN_KEYS = ("trials", "seed", "timeout_s", "direct_timeout_s")
_CHURN_KEYS = ("at_s", "device", "action", "duration_s")
_EXPECT_KEYS = ("final_path", "override")
_OVERRIDE_KEYS = ("server_nat", "client_nat", "pair", "link", "final_path", "note")

DEFAULT_PAIRS = ("rust-rust",)
DEFAULT_TIMEOUT_S = 30.0
DEFAULT_DIRECT_TIMEOUT_S = 15.0


def _all_pairs() -> tuple[str, ...]:
    return tuple(f"{s}-{c}" for s in IMPLS for c in IMPLS)


def _parse(path: str, source: str, link_profiles: Iterable[str],
           link_aliases: dict[str, str]) -> Scenario:
    try:
        doc = tomllib.loads(source)
    except tomllib.TOMLDecodeError as err:
        # tomllib puts "(at line L, column C)" at the end of its message
        match = re.search(r"\(at line (\d+), column \d+\)", str(err))
        line = int(match.group(1)) if match else 1
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(err)) or "invalid TOML"
        raise ScenarioError(path, line, "(syntax)", f"not valid TOML: {reason}") from None

    r = _Reader(path, source, link_profiles, link_aliases)
    r.reject_unknown(doc, (), _TOP)

    meta = r.table(doc, (), "scenario", _SCENARIO_KEYS, required=True)
    name = r.string(meta, ("scenario",), "name")
    if not _NAME.match(name):
        raise r.fail(("scenario", "name"),
                     "must be 1-64 characters of a-z, 0-9, '-', '_' (it names result files)")
    description = r.string(meta, ("scenario",), "description", default="")

    topo = r.table(doc, (), "topology", _TOPOLOGY_KEYS, required=True)
    tp = ("topology",)
    server_nats = r.string_list(topo, tp, "server_nat", NAT_TIERS, "NAT tier")
    client_nats = r.string_list(topo, tp, "client_nat", NAT_TIERS, "NAT tier")
    link_names = ((PLAIN_LINK,) + tuple(p for p in r.link_profiles if p != PLAIN_LINK)
                  + tuple(r.link_aliases))
    links = r.string_list(topo, tp, "links", link_names, "link profile", default=(PLAIN_LINK,))
    links = tuple(r.link_aliases.get(link, link) for link in links)   # canonical names
    if len(set(links)) != len(links):
        raise r.fail(tp + ("links",), "a profile is listed twice (once by an alias)")
    relay = r.string(topo, tp, "relay", default="internet", choices=RELAY_HOSTS)
    hairpin = r.boolean(topo, tp, "hairpin", default=False)
    mapping_timeout_s = r.integer(topo, tp, "mapping_timeout_s", default=120, minimum=1)
    firewall = r.string(topo, tp, "firewall", default="none", choices=FIREWALLS)

    peers = r.table(doc, (), "peers", _PEERS_KEYS)
    pairs = r.string_list(peers, ("peers",), "pairs", _all_pairs(), "implementation pair "
                          "(SERVER-CLIENT)", default=DEFAULT_PAIRS)
    relay_only_ticket = r.boolean(peers, ("peers",), "relay_only_ticket", default=True)
    address_discovery = r.string(peers, ("peers",), "address_discovery", default="probe",
                                 choices=ADDRESS_DISCOVERY)

    workload = _parse_workload(r, r.table(doc, (), "workload", _WORKLOAD_KEYS))

    run = r.table(doc, (), "run", _RUN_KEYS)
    rp = ("run",)
    trials = r.integer(run, rp, "trials", default=1, minimum=1, maximum=10_000)
    seed = r.integer(run, rp, "seed", default=1, minimum=0, maximum=2**63 - 1)
    timeout_s = r.seconds(run, rp, "timeout_s", default=DEFAULT_TIMEOUT_S)
    direct_timeout_s = r.seconds(run, rp, "direct_timeout_s",
                                 default=min(DEFAULT_DIRECT_TIMEOUT_S, timeout_s))
    if direct_timeout_s > timeout_s:
        raise r.fail(rp + ("direct_timeout_s",),
                     f"{direct_timeout_s:g} s is longer than run.timeout_s ({timeout_s:g} s)")

    churn = _parse_churn(r, doc, timeout_s)
    expect_default, expect_rules = _parse_expect(r, doc, server_nats, client_nats, pairs, links)

    return Scenario(
        name=name, description=description, path=path,
        server_nats=server_nats, client_nats=client_nats,
        pairs=tuple(tuple(p.split("-")) for p in pairs),
        links=tuple(None if link == PLAIN_LINK else link for link in links),
        relay=relay, hairpin=hairpin, mapping_timeout_s=mapping_timeout_s,
        firewall=None if firewall == "none" else firewall, relay_only_ticket=relay_only_ticket,
        workload=workload, trials=trials, seed=seed, timeout_s=timeout_s,
        direct_timeout_s=direct_timeout_s, churn=churn,
        expect_default=expect_default, expect_rules=expect_rules,
        address_discovery=address_discovery)


def _parse_workload(r: _Reader, table: dict) -> Workload:
    wp = ("workload",)
    kind = r.string(table, wp, "kind", default="echo", choices=WORKLOAD_KINDS)
    if kind == "datagrams":
        count = r.integer(table, wp, "datagrams", default=None, minimum=1)
        size = r.integer(table, wp, "datagram_size", default=1000, minimum=1,
                         maximum=MAX_DATAGRAM_SIZE)
        nbytes = r.integer(table, wp, "bytes", default=0, minimum=0)
        return Workload(kind=kind, bytes=nbytes, datagrams=count, datagram_size=size)
    for key in ("datagrams", "datagram_size"):
        if key in table:
            raise r.fail(wp + (key,), f"only used with kind = \"datagrams\" (kind is {kind!r})")
    nbytes = r.integer(table, wp, "bytes", default=1024 if kind == "echo" else None, minimum=1)
    return Workload(kind=kind, bytes=nbytes, datagrams=0, datagram_size=0)


def _parse_churn(r: _Reader, doc: dict, timeout_s: float) -> tuple[ChurnEvent, ...]:
    entries = doc.get("churn", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise r.fail(("churn",), "must be an array of tables: write each event as [[churn]]")
    events = []
    for index, entry in enumerate(entries):
        cp = ("churn", index)
        r.reject_unknown(entry, cp, _CHURN_KEYS)
        at_s = r.seconds(entry, cp, "at_s", default=None, allow_zero=True)
        device = r.string(entry, cp, "device", choices=CHURN_DEVICES)
        action = r.string(entry, cp, "action", choices=CHURN_ACTIONS)
        if action in TIMED_CHURN_ACTIONS:
            duration_s = r.seconds(entry, cp, "duration_s", default=None)
        else:
            duration_s = r.seconds(entry, cp, "duration_s", default=0.0, allow_zero=True)
            if duration_s != 0:
                raise r.fail(cp + ("duration_s",), f"only uplink-down and udp-block have a duration "
                             f"({action} is instantaneous)")
        end = at_s + duration_s
        if end >= timeout_s:
            key = "duration_s" if duration_s else "at_s"
            raise r.fail(cp + (key,), f"event ends at {end:g} s, not before run.timeout_s "
                         f"({timeout_s:g} s): raise the timeout or move the event earlier")
        events.append(ChurnEvent(at_s=at_s, device=device, action=action, duration_s=duration_s))
    return tuple(sorted(events, key=lambda e: e.at_s))


def _parse_expect(r: _Reader, doc: dict, server_nats, client_nats, pairs, links):
    table = r.table(doc, (), "expect", _EXPECT_KEYS)
    ep = ("expect",)
    default = r.string(table, ep, "final_path", default="any", choices=FINAL_PATHS)
    overrides = table.get("override", [])
    if not isinstance(overrides, list) or not all(isinstance(o, dict) for o in overrides):
        raise r.fail(ep + ("override",), "must be an array of tables: write [[expect.override]]")
    rules = []
    for index, entry in enumerate(overrides):
        op = ep + ("override", index)
        r.reject_unknown(entry, op, _OVERRIDE_KEYS)
        # selectors may only name values the matrix has: a typo would silently match nothing
        in_matrix = dict(default=(), choices_label="this matrix has")
        s_nat = r.string_list(entry, op, "server_nat", server_nats, "server NAT tier",
                              **in_matrix) or None
        c_nat = r.string_list(entry, op, "client_nat", client_nats, "client NAT tier",
                              **in_matrix) or None
        pair = r.string_list(entry, op, "pair", pairs, "pair", **in_matrix) or None
        link_choices = tuple(links) + tuple(a for a, p in r.link_aliases.items() if p in links)
        link = r.string_list(entry, op, "link", link_choices, "link", **in_matrix) or None
        if link is not None:
            link = tuple(r.link_aliases.get(x, x) for x in link)
        final = r.string(entry, op, "final_path", choices=FINAL_PATHS)
        r.string(entry, op, "note", default="")
        rules.append(ExpectRule(
            server_nat=s_nat, client_nat=c_nat, pair=pair,
            link=None if link is None else tuple(None if x == PLAIN_LINK else x for x in link),
            final_path=None if final == "any" else final))
    return (None if default == "any" else default), tuple(rules)


# ---------------------------------------------------------------------------------------------
# entry points

def loads(source: str, path: str = "<string>", link_profiles: Iterable[str] | None = None,
          link_aliases: dict[str, str] | None = None) -> Scenario:
    """Validate scenario TOML text. `link_profiles` / `link_aliases` replace the profile
    registry (tests, other back-ends); by default it is netns.links."""
    if link_profiles is None:
        profiles, aliases = default_link_profiles(), default_link_aliases()
    else:
        profiles, aliases = tuple(link_profiles), dict(link_aliases or {})
    return _parse(path, source, profiles, aliases)


def load(path: str | Path, link_profiles: Iterable[str] | None = None,
         link_aliases: dict[str, str] | None = None) -> Scenario:
    path = str(path)
    try:
        source = Path(path).read_bytes().decode("utf-8")
    except OSError as err:
        raise ScenarioError(path, 0, "(file)", f"cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise ScenarioError(path, 0, "(file)", "not UTF-8 text") from None
    return loads(source, path, link_profiles, link_aliases)


def _describe_cell(cell: Cell) -> str:
    expect = cell.expect_final_path or "any"
    link = cell.link or PLAIN_LINK
    return (f"{cell.pair:9} {cell.server_nat:>8} x {cell.client_nat:<8} link={link:<18} "
            f"trials={cell.trials} seed={cell.seed} expect={expect}")


def cells_json(scenario: Scenario) -> str:
    """The expanded matrix as JSON, one object per cell with the Cell field names: the form
    back-ends without a TOML parser (the C++ ns-3 driver) read."""
    return json.dumps({"scenario": scenario.name, "description": scenario.description,
                       "cells": [dataclasses.asdict(cell) for cell in scenario.cells()]},
                      indent=1)


_USAGE = """usage: python3 -m netns.scenario check FILE...   validate; "ok FILE: N cells, M trials"
       python3 -m netns.scenario cells FILE      the expanded matrix, one line per cell
       python3 -m netns.scenario json FILE       the expanded matrix as JSON"""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[0] if argv else ""
    files = argv[1:]
    if command not in ("check", "cells", "json") or not files or (command != "check"
                                                                   and len(files) > 1):
        print(_USAGE, file=sys.stderr)
        return 2
    status = 0
    for file in files:
        try:
            scenario = load(file)
        except ScenarioError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        cells = scenario.cells()
        if command == "check":
            print(f"ok {file}: {len(cells)} cells, {sum(c.trials for c in cells)} trials")
        elif command == "json":
            print(cells_json(scenario))
        else:
            for cell in cells:
                print(_describe_cell(cell))
    return status


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:   # `... | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)

"""Reading a lab run: results.jsonl (one trial per line), environment.json, the planned cells.

Everything here is plain data; plots.py draws it and report.py lays it out. Malformed lines
are skipped and counted, never fatal: a run that crashed half-way must still be reportable.
"""
from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

REPO = Path(__file__).resolve().parents[1]

NAT_ORDER = ("none", "open", "moderate", "strict", "cgnat")
PAIR_ORDER = ("rust-rust", "cpp-rust", "rust-cpp", "cpp-cpp")
PLAIN_LINK = "veth"   # how a None link (plain veth, no emulator) is shown

_REQUIRED = {
    "scenario": (str,), "server_nat": (str,), "client_nat": (str,), "server_impl": (str,),
    "client_impl": (str,), "seed": (int,), "trial": (int,), "link": (str, type(None)),
    "started_relayed": (bool,), "direct_after_ms": (int, float, type(None)),
    "final_path": (str,), "bytes_verified": (int,), "error": (str, type(None)),
    "wall_ms": (int, float), "expect_final_path": (str, type(None)), "ok": (bool,),
}
_FINAL_PATHS = ("direct", "relay", "none")


@dataclass(frozen=True, order=True)
class CellKey:
    scenario: str
    server_impl: str
    client_impl: str
    link: str          # PLAIN_LINK for None
    server_nat: str
    client_nat: str

    @property
    def pair(self) -> str:
        return f"{self.server_impl}-{self.client_impl}"


@dataclass
class CellStats:
    """Aggregates of every trial of one cell."""
    key: CellKey
    trials: int = 0
    direct: int = 0
    relay: int = 0
    no_path: int = 0
    failed: int = 0            # error set or no path at all
    mismatches: int = 0        # ok == false
    direct_ms: list[float] = field(default_factory=list)
    throughput: list[float] = field(default_factory=list)
    expectations: set = field(default_factory=set)
    planned_trials: int | None = None   # from the scenario file, when known

    @property
    def ran(self) -> bool:
        return self.trials > 0

    @property
    def direct_rate(self) -> float | None:
        return self.direct / self.trials if self.trials else None

    @property
    def relay_rate(self) -> float | None:
        return self.relay / self.trials if self.trials else None

    @property
    def expectation(self) -> str:
        """'direct' / 'relay' / 'any' (not asserted) / 'mixed' (rows disagree)."""
        values = {v or "any" for v in self.expectations}
        if not values:
            return "any"
        return values.pop() if len(values) == 1 else "mixed"

    def time_to_direct(self, pct: float) -> float | None:
        """Percentile of time to direct in ms over the trials that reached direct (linear
        interpolation between closest ranks, like numpy's default)."""
        return percentile(self.direct_ms, pct)


def percentile(values: list[float], pct: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * pct / 100.0
    low = math.floor(rank)
    high = math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


@dataclass
class RunData:
    rows: list[dict]
    skipped: list[str]             # "line N: reason" for every line that was not used
    environment: dict
    notes: list[str]               # problems worth showing that are not about one line
    planned: dict[CellKey, tuple[int, str | None]]   # cell → (trials, expectation)


def validate_row(row: Any) -> str | None:
    """None when the row is usable, else why not."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key, types in _REQUIRED.items():
        if key not in row:
            return f"missing key '{key}'"
        value = row[key]
        if isinstance(value, bool) and bool not in types:
            return f"key '{key}' has the wrong type (bool)"
        if not isinstance(value, types):
            return f"key '{key}' has the wrong type ({type(value).__name__})"
    for key in ("direct_after_ms", "wall_ms", "throughput_mb_s"):
        value = row.get(key)
        if isinstance(value, float) and not math.isfinite(value):
            return f"key '{key}' is not a finite number"
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < 0:
            return f"key '{key}' is negative"
    if row["final_path"] not in _FINAL_PATHS:
        return f"final_path {row['final_path']!r} is not one of {', '.join(_FINAL_PATHS)}"
    value = row.get("throughput_mb_s")
    if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
        return "throughput_mb_s is not a number"
    return None


def read_results(path: Path) -> tuple[list[dict], list[str]]:
    rows, skipped = [], []
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except OSError as err:
        return [], [f"{path.name}: cannot read: {err.strerror or err}"]
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            skipped.append(f"line {number}: not JSON ({err.msg})")
            continue
        problem = validate_row(row)
        if problem:
            skipped.append(f"line {number}: {problem}")
            continue
        rows.append(row)
    return rows, skipped


def read_environment(path: Path) -> tuple[dict, list[str]]:
    if not path.exists():
        return {}, [f"{path.name} is missing: the environment section is empty"]
    try:
        env = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except (OSError, ValueError) as err:
        return {}, [f"{path.name} is unreadable ({err}): the environment section is empty"]
    if not isinstance(env, dict):
        return {}, [f"{path.name} is not a JSON object: the environment section is empty"]
    return env, []


def _find_scenario_file(name: str, run_dir: Path) -> Path | None:
    candidate = Path(name)
    for path in (candidate, run_dir / candidate, REPO / candidate):
        if path.is_file():
            return path
    return None


def planned_cells(files: Iterable[str], run_dir: Path) -> tuple[dict, list[str]]:
    """Cells the scenario files ask for, so the report can show the ones that never ran."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from netns import scenario as scenario_mod  # noqa: PLC0415 - optional dependency
    except ImportError as err:
        return {}, [f"netns.scenario cannot be imported ({err}): cells that never ran "
                    "are shown only where the grid has other results"]
    planned, notes = {}, []
    for name in files:
        path = _find_scenario_file(str(name), run_dir)
        if path is None:
            notes.append(f"scenario file {name} not found: its cells that never ran may be missing")
            continue
        try:
            scenario = scenario_mod.load(path)
        except scenario_mod.ScenarioError as err:
            notes.append(f"scenario file could not be loaded: {err}")
            continue
        for cell in scenario.cells():
            key = CellKey(cell.scenario, cell.server_impl, cell.client_impl,
                          cell.link or PLAIN_LINK, cell.server_nat, cell.client_nat)
            planned[key] = (cell.trials, cell.expect_final_path)
    return planned, notes


_EXPECTATIONS = ("direct", "relay", None)


def parse_cell_id(cell_id: str) -> tuple[str, str, str, str, str | None]:
    """netns/runner.py's cell id 'SERVER_NAT/CLIENT_NAT:SERVER-CLIENT[@LINK]' →
    (server_nat, client_nat, server_impl, client_impl, link). ValueError when malformed."""
    tiers, sep, rest = cell_id.partition(":")
    server_nat, slash, client_nat = tiers.partition("/")
    pair, at, link = rest.partition("@")
    server_impl, dash, client_impl = pair.partition("-")
    parts = (server_nat, client_nat, server_impl, client_impl)
    if not (sep and slash and dash) or not all(parts) or (at and not link):
        raise ValueError(f"cell id {cell_id!r} is not SERVER_NAT/CLIENT_NAT:SERVER-CLIENT[@LINK]")
    return server_nat, client_nat, server_impl, client_impl, link or None


def _plan_entry(entry: Any, scenario: str | None) -> tuple[CellKey, tuple[int, str | None]]:
    """One environment.json planned_cells entry → (cell, (trials, expectation))."""
    if not isinstance(entry, dict) or not isinstance(entry.get("cell"), str):
        raise ValueError("not an object with a 'cell' id")
    trials = entry.get("trials")
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 0:
        raise ValueError(f"{entry['cell']}: 'trials' is not a count")
    expect = entry.get("expect_final_path")
    if expect not in _EXPECTATIONS:
        raise ValueError(f"{entry['cell']}: expect_final_path {expect!r} is not direct, "
                         "relay or null")
    name = entry.get("scenario", scenario)   # runner ids carry no scenario: one per run
    if not isinstance(name, str) or not name:
        raise ValueError(f"{entry['cell']}: the run's scenario name is unknown")
    server_nat, client_nat, server_impl, client_impl, link = parse_cell_id(entry["cell"])
    key = CellKey(name, server_impl, client_impl, link or PLAIN_LINK, server_nat, client_nat)
    return key, (trials, expect)


def plan_from_environment(entries: list, scenario: str | None) -> tuple[dict, list[str]]:
    """The cells the runner selected (environment.json planned_cells), exactly as written:
    a run filtered with --cells / --trials plans only those cells with those trial counts."""
    planned, notes = {}, []
    for number, entry in enumerate(entries, start=1):
        try:
            key, value = _plan_entry(entry, scenario)
        except ValueError as err:
            notes.append(f"environment.json planned_cells entry {number} skipped: {err}")
            continue
        planned[key] = value
    return planned, notes


def _run_scenario(rows: list[dict], files: list[str], run_dir: Path) -> str | None:
    """The name of the run's one scenario (the runner runs one file), from the results when
    any, else from the scenario file; None when that does not name exactly one."""
    names = {row["scenario"] for row in rows}
    if not names and files:
        names = {key.scenario for key in planned_cells(files, run_dir)[0]}
    return names.pop() if len(names) == 1 else None


def load_run(run_dir: Path, scenario_files: Iterable[str] = ()) -> RunData:
    rows, skipped = read_results(run_dir / "results.jsonl")
    env, notes = read_environment(run_dir / "environment.json")
    files = list(scenario_files)
    if not files and isinstance(env.get("scenario_files"), list):
        files = [str(f) for f in env["scenario_files"]]
    entries = env.get("planned_cells")
    if "planned_cells" in env and not isinstance(entries, list):
        notes.append("environment.json planned_cells is not a list: planning from the "
                     "scenario files instead")
        entries = None
    if entries is not None:
        scenario = _run_scenario(rows, files, run_dir)
        planned, plan_notes = plan_from_environment(entries, scenario)
    else:   # a run from before the runner recorded its selection: the whole scenario files
        planned, plan_notes = planned_cells(files, run_dir) if files else ({}, [])
    return RunData(rows=rows, skipped=skipped, environment=env, notes=notes + plan_notes,
                   planned=planned)


def cell_key(row: dict) -> CellKey:
    return CellKey(row["scenario"], row["server_impl"], row["client_impl"],
                   row["link"] or PLAIN_LINK, row["server_nat"], row["client_nat"])


def aggregate(rows: Iterable[dict], planned: dict | None = None) -> dict[CellKey, CellStats]:
    """Per-cell statistics; planned cells without any row appear with trials == 0.

    The dict is in report order: scenarios as they first appear in the plan (the order of the
    scenario files) or else in the rows (the run order), then pair, link and tiers."""
    cells: dict[CellKey, CellStats] = {}
    scenario_rank: dict[str, int] = {}
    for key in planned or {}:
        scenario_rank.setdefault(key.scenario, len(scenario_rank))
    for row in rows:
        key = cell_key(row)
        scenario_rank.setdefault(key.scenario, len(scenario_rank))
        stats = cells.setdefault(key, CellStats(key))
        stats.trials += 1
        path = row["final_path"]
        stats.direct += path == "direct"
        stats.relay += path == "relay"
        stats.no_path += path == "none"
        stats.failed += bool(row["error"]) or path == "none"
        stats.mismatches += not row["ok"]
        # time to direct counts every trial that reached a direct path, even if churn
        # later pushed it back to the relay
        if row["direct_after_ms"] is not None:
            stats.direct_ms.append(float(row["direct_after_ms"]))
        if row.get("throughput_mb_s") is not None:
            stats.throughput.append(float(row["throughput_mb_s"]))
        stats.expectations.add(row["expect_final_path"])
    for key, (trials, expect) in (planned or {}).items():
        stats = cells.setdefault(key, CellStats(key))
        stats.planned_trials = trials
        if not stats.trials:
            stats.expectations.add(expect)
    return {key: cells[key] for key in sorted(
        cells, key=lambda k: (scenario_rank[k.scenario],) + sort_key(k))}


_LINK_ORDER: tuple[str, ...] | None = None


def link_order() -> tuple[str, ...]:
    """Plain veth first, then the link profiles in their table's order (the degradation ladder
    runs from good to bad), so charts and tables read along the ladder."""
    global _LINK_ORDER
    if _LINK_ORDER is None:
        if str(REPO) not in sys.path:
            sys.path.insert(0, str(REPO))
        try:
            from netns.scenario import default_link_profiles  # noqa: PLC0415
            _LINK_ORDER = (PLAIN_LINK,) + tuple(default_link_profiles())
        except ImportError:
            _LINK_ORDER = (PLAIN_LINK,)
    return _LINK_ORDER


def rank(value: str, order: tuple) -> tuple:
    """Sort key: known names in canonical order, unknown ones after, alphabetically."""
    return (order.index(value), "") if value in order else (len(order), value)


def sort_key(key: CellKey) -> tuple:
    return (key.scenario, rank(key.pair, PAIR_ORDER), rank(key.link, link_order()),
            rank(key.server_nat, NAT_ORDER), rank(key.client_nat, NAT_ORDER))


def ordered(values: Iterable[str], order: tuple) -> list[str]:
    """Known names in canonical order first, unknown ones after, alphabetically."""
    values = set(values)
    return [v for v in order if v in values] + sorted(values - set(order))

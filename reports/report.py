"""`irohlab report DIR`: turn a lab run into DIR/index.html and a plain-text summary.

    /usr/bin/python3 -m reports.report DIR [--scenario FILE]...

Reads DIR/results.jsonl (one trial per line, written by netns/runner.py) and
DIR/environment.json, writes DIR/index.html — self-contained (every figure is a data: URI),
readable on a phone and a desktop — and prints the summary table to stdout. Scenario files
The plan — which cells, how many trials, what outcome each expects — is environment.json's
planned_cells (what the runner selected, after --cells and --trials); only for runs without it
are the scenario files (environment.json's scenario_files, or --scenario) read instead. Planned
cells that never ran are shown as "not run" rather than left out.

Other parts of the lab reuse `summary_table(rows)` (rows = results.jsonl records).
"""
from __future__ import annotations

import argparse
import base64
import datetime
import html
import json
import math
import os
import sys
from collections import Counter, defaultdict
from pathlib import Path

if __package__ in (None, ""):   # run as a file: make `reports` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from reports import plots  # noqa: E402
from reports.results import (NAT_ORDER, PAIR_ORDER, CellKey, CellStats, RunData,  # noqa: E402
                             aggregate, link_order, load_run, ordered, rank, validate_row)

# ---------------------------------------------------------------------------------------------
# plain text

_COLUMNS = ("scenario", "pair", "server", "client", "link", "trials", "direct", "p50", "p95",
            "relay", "failed", "expect", "mismatch")


def _fmt_ms(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "-"


def _table_cells(stats: CellStats) -> list[str]:
    key = stats.key
    if not stats.ran:
        planned = stats.planned_trials or 0
        return [key.scenario, key.pair, key.server_nat, key.client_nat, key.link, f"0/{planned}",
                "not run", "-", "-", "-", "-", stats.expectation, "-"]
    return [key.scenario, key.pair, key.server_nat, key.client_nat, key.link, str(stats.trials),
            f"{stats.direct}/{stats.trials} {_pct(stats.direct, stats.trials)}",
            _fmt_ms(stats.time_to_direct(50)), _fmt_ms(stats.time_to_direct(95)),
            _pct(stats.relay, stats.trials), str(stats.failed), stats.expectation,
            str(stats.mismatches) if stats.mismatches else ""]


def summary_table(rows, planned: dict | None = None) -> str:
    """A fixed-width table, one line per cell, from results.jsonl records (dicts).

    Columns: direct = trials ending on a direct path; p50/p95 = time to the first direct path
    over the trials that reached one; relay = share ending on the relay; failed = trials with
    an error or no path; mismatch = trials whose outcome differs from the expectation.
    Rows that are not valid results records are left out and counted on the last line."""
    rows = list(rows)
    usable = [row for row in rows if validate_row(row) is None]
    cells = aggregate(usable, planned)
    lines = [list(_COLUMNS)]
    for key in cells:   # aggregate() returns them in report order
        lines.append(_table_cells(cells[key]))
    widths = [max(len(line[i]) for line in lines) for i in range(len(_COLUMNS))]
    out = []
    for number, line in enumerate(lines):
        out.append("  ".join(value.ljust(widths[i]) if i < 5 else value.rjust(widths[i])
                             for i, value in enumerate(line)).rstrip())
        if number == 0:
            out.append("  ".join("-" * w for w in widths))
    total = sum(c.trials for c in cells.values())
    direct = sum(c.direct for c in cells.values())
    mismatched = sum(c.mismatches for c in cells.values())
    not_run = sum(1 for c in cells.values() if not c.ran)
    last = (f"{len(cells)} cells ({not_run} not run), {total} trials, {direct} direct "
            f"({_pct(direct, total)}), {mismatched} expectation mismatches")
    if len(usable) < len(rows):
        last += f", {len(rows) - len(usable)} invalid rows skipped"
    out.append(last)
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------
# HTML

_CSS = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       margin: 0; color: #1b1b1b; background: #f6f6f4; line-height: 1.45; }
main { max-width: 1240px; margin: 0 auto; padding: 12px 16px 48px; }
h1 { font-size: 1.6rem; margin: 12px 0 2px; }
h2 { font-size: 1.25rem; margin: 28px 0 8px; border-bottom: 2px solid #ddd; padding-bottom: 4px; }
h3 { font-size: 1.05rem; margin: 16px 0 6px; }
.sub { color: #555; margin: 0 0 12px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 12px 0; }
.card { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px 14px;
        min-width: 130px; }
.card b { display: block; font-size: 1.35rem; }
.card span { color: #555; font-size: .85rem; }
.card.bad { border-color: #D55E00; box-shadow: inset 4px 0 0 #D55E00; }
.figs { display: grid; gap: 14px;
        grid-template-columns: repeat(auto-fit, minmax(min(100%, 540px), 1fr)); }
figure { margin: 0; background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 8px; }
figure img { width: 100%; height: auto; display: block; }
figcaption { font-size: .9rem; color: #333; padding: 4px 2px 0; }
.note { background: #fff8e1; border-left: 4px solid #E69F00; padding: 6px 10px; margin: 8px 0; }
.wrap { overflow-x: auto; background: #fff; border: 1px solid #ddd; border-radius: 6px; }
table { border-collapse: collapse; font-size: .88rem; width: 100%; }
th, td { padding: 4px 8px; border-bottom: 1px solid #eee; text-align: right; white-space: nowrap; }
th { background: #efefec; position: sticky; top: 0; }
td.l, th.l { text-align: left; }
tr.mismatch td { background: #fbe3d6; }
tr.mismatch td.flag { color: #a33f00; font-weight: bold; }
tr.notrun td { color: #767676; font-style: italic; }
table.failures td { white-space: normal; vertical-align: top; }
table.failures pre { margin: 0; min-width: 16em; }
table.env td { white-space: normal; overflow-wrap: anywhere; }
pre { white-space: pre-wrap; word-break: break-word; background: #fff; border: 1px solid #ddd;
      padding: 8px; margin: 4px 0; font-size: .85rem; }
details { margin: 6px 0; }
.legend { font-size: .88rem; color: #333; }
@media (max-width: 600px) { main { padding: 8px; } h1 { font-size: 1.3rem; }
  table { font-size: .8rem; } }
"""

_CPP_NOTE = ("No trial of this pair reached a direct path. The C++ engine does not speak the "
             "QUIC multipath draft yet, which iroh 1.x requires for hole punching, so C++ "
             "cells stay on the relay until it does.")


def _esc(value) -> str:
    return html.escape(str(value), quote=True)


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    # never upscale: a figure shown wider than its natural size gets huge fonts
    return (f'<img src="data:image/png;base64,{data}" alt="{_esc(alt)}" '
            f'style="max-width:{plots.png_css_width(png)}px">')


def _figure(png: bytes, alt: str, caption: str = "") -> str:
    cap = f"<figcaption>{caption}</figcaption>" if caption else ""
    return f"<figure>{_img(png, alt)}{cap}</figure>"


def _by_scenario(cells: dict[CellKey, CellStats]) -> dict[str, list[CellStats]]:
    groups: dict[str, list[CellStats]] = defaultdict(list)
    for key in cells:   # aggregate() returns them in report order
        groups[key.scenario].append(cells[key])
    return groups


def _grids_html(cells: dict[CellKey, CellStats]) -> str:
    parts = []
    for scenario, stats_list in _by_scenario(cells).items():
        server_tiers = ordered({s.key.server_nat for s in stats_list}, NAT_ORDER)
        client_tiers = ordered({s.key.client_nat for s in stats_list}, NAT_ORDER)
        pairs = ordered({s.key.pair for s in stats_list}, PAIR_ORDER)
        links = ordered({s.key.link for s in stats_list}, link_order())
        if len(links) > 1 and len(server_tiers) * len(client_tiers) == 1:
            continue   # a link sweep: one cell per link is the throughput chart's and table's job
        figures = []
        for pair in pairs:
            server_impl, client_impl = pair.split("-", 1)
            for link in links:
                grid = {(s.key.server_nat, s.key.client_nat): s for s in stats_list
                        if s.key.pair == pair and s.key.link == link}
                title = f"{scenario}: server {server_impl} → client {client_impl}"
                if len(links) > 1 or link != "veth":
                    title += f" · link {link}"
                ran = [s for s in grid.values() if s.ran]
                trials = sum(s.trials for s in ran)
                direct = sum(s.direct for s in ran)
                caption = (f"<b>{_esc(pair)}</b>: {direct}/{trials} trials direct "
                           f"({_pct(direct, trials)}), {len(ran)} of "
                           f"{len(server_tiers) * len(client_tiers)} cells ran.")
                if trials and not direct and "cpp" in pair.split("-"):
                    caption += f'<div class="note">{_esc(_CPP_NOTE)}</div>'
                png = plots.nat_grid(title, server_tiers, client_tiers, grid)
                figures.append(_figure(png, f"NAT grid {scenario} {pair} {link}", caption))
        parts.append(f"<h3>{_esc(scenario)}</h3><div class=\"figs\">{''.join(figures)}</div>")
    if not parts:
        return "<p>No NAT grid: no scenario varies the NAT tiers.</p>"
    legend = ('<p class="legend">Rows: the server\'s home-router NAT tier; columns: the '
              "client's. Colour: share of trials that ended on a direct path. Each cell: direct "
              "trials / trials, p50 and p95 time to the first direct path, share that ended on "
              "the relay. A vermillion frame and “✗ exp. …” mark an expectation mismatch; "
              "hatched grey cells did not run.</p>")
    return legend + "".join(parts)


def _cdf_html(cells: dict[CellKey, CellStats]) -> str:
    figures = []
    for scenario, stats_list in _by_scenario(cells).items():
        ran = [s for s in stats_list if s.ran]
        if not ran:
            continue
        links = {s.key.link for s in ran}
        by_link = len(links) > 1
        series_data: dict[tuple[str, str], list[CellStats]] = defaultdict(list)
        for stats in ran:
            series_data[(stats.key.pair, stats.key.link if by_link else "")].append(stats)
        series = []
        for pair, link in sorted(series_data, key=lambda pl: (rank(pl[0], PAIR_ORDER),
                                                              rank(pl[1], link_order()))):
            group = series_data[(pair, link)]
            series.append((pair + (f" · {link}" if link else ""),
                           [t for s in group for t in s.direct_ms], sum(s.trials for s in group)))
        png = plots.time_to_direct_cdf(f"{scenario}: time to direct path", series)
        pooled = "per pair and link" if by_link else "per pair"
        figures.append(_figure(png, f"CDF of time to direct, {scenario}",
                               f"Trials pooled {pooled} over the scenario's NAT cells. The x "
                               "axis is log scale and spans the measured times. A curve "
                               "plateaus at its direct rate: trials that never went direct "
                               "keep it below 100%."))
    return f'<div class="figs">{"".join(figures)}</div>' if figures else "<p>No trials ran.</p>"


def _throughput_html(cells: dict[CellKey, CellStats]) -> str:
    figures = []
    for scenario, stats_list in _by_scenario(cells).items():
        if not any(s.throughput for s in stats_list):
            continue
        links = ordered({s.key.link for s in stats_list}, link_order())
        pairs = ordered({s.key.pair for s in stats_list}, PAIR_ORDER)
        values: dict[tuple[str, str], list[float]] = defaultdict(list)
        trials: Counter = Counter()
        for stats in stats_list:
            values[(stats.key.link, stats.key.pair)].extend(stats.throughput)
            trials[(stats.key.link, stats.key.pair)] += stats.trials
        png = plots.throughput_by_link(f"{scenario}: throughput per link profile", links, pairs,
                                       values, trials)
        figures.append(_figure(png, f"throughput per link, {scenario}",
                               "Bar: median of the trials that reported a throughput; "
                               "whisker: min to max; n = trials with a value / trials run."))
    if not figures:
        return "<p>No trial reported a throughput (throughput_mb_s).</p>"
    return f'<div class="figs">{"".join(figures)}</div>'


def _churn_html(rows: list[dict]) -> str:
    """Per scenario, pair and churn event: which path the connection was on afterwards."""
    counts: dict[tuple, Counter] = defaultdict(Counter)
    first_ms: dict[str, float] = {}   # events are listed in timeline order
    for row in rows:
        events = row.get("churn")
        if not isinstance(events, list):
            continue
        pair = f"{row['server_impl']}-{row['client_impl']}"
        for event in events:
            if isinstance(event, dict) and isinstance(event.get("event"), str):
                path = str(event.get("path_after") or "none")
                kind = "direct" if path.startswith(("udp", "direct")) else (
                    "relay" if path.startswith("relay") else "none")
                counts[(row["scenario"], pair, event["event"])][kind] += 1
                t_ms = event.get("t_ms")
                if isinstance(t_ms, (int, float)) and not isinstance(t_ms, bool):
                    first_ms[event["event"]] = min(first_ms.get(event["event"], t_ms), t_ms)
    if not counts:
        return "<p>No trial reported churn events.</p>"
    body = []
    for (scenario, pair, event), c in sorted(counts.items(), key=lambda item: (
            item[0][0], rank(item[0][1], PAIR_ORDER), first_ms.get(item[0][2], math.inf),
            item[0][2])):
        total = sum(c.values())
        body.append(f'<tr><td class="l">{_esc(scenario)}</td><td class="l">{_esc(pair)}</td>'
                    f'<td class="l">{_esc(event)}</td><td>{total}</td>'
                    f"<td>{c['direct']} ({_pct(c['direct'], total)})</td>"
                    f"<td>{c['relay']} ({_pct(c['relay'], total)})</td>"
                    f"<td>{c['none']} ({_pct(c['none'], total)})</td></tr>")
    return ('<p class="legend">The path each connection was on after each churn event.</p>'
            '<div class="wrap"><table><thead><tr><th class="l">scenario</th><th class="l">pair'
            '</th><th class="l">event</th><th>events</th><th>then direct</th><th>then relay</th>'
            f'<th>then no path</th></tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def _summary_html(cells: dict[CellKey, CellStats]) -> str:
    head = "".join(f'<th class="{"l" if i < 5 else ""}">{_esc(c)}</th>'
                   for i, c in enumerate(_COLUMNS))
    body = []
    for key in cells:   # aggregate() returns them in report order
        stats = cells[key]
        values = _table_cells(stats)
        css = "notrun" if not stats.ran else ("mismatch" if stats.mismatches else "")
        tds = []
        for i, value in enumerate(values):
            cls = "l" if i < 5 else ("flag" if _COLUMNS[i] == "mismatch" else "")
            if _COLUMNS[i] == "mismatch" and stats.mismatches:
                value = f"✗ {value}"
            tds.append(f'<td class="{cls}">{_esc(value)}</td>')
        body.append(f'<tr class="{css}">{"".join(tds)}</tr>')
    return (f'<div class="wrap"><table><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table></div>')


def _mismatches_html(cells: dict[CellKey, CellStats]) -> str:
    groups: dict[tuple[str, str], list[CellStats]] = defaultdict(list)
    for key in cells:   # aggregate() returns them in report order
        if cells[key].mismatches:
            groups[(key.scenario, key.pair)].append(cells[key])
    if not groups:
        return "<p>Every trial matched its expectation.</p>"
    parts = []
    for (scenario, pair), group in groups.items():
        trials = sum(s.mismatches for s in group)
        items = "".join(
            f"<li>{_esc(s.key.server_nat)} × {_esc(s.key.client_nat)} ({_esc(s.key.link)}): "
            f"expected {_esc(s.expectation)}, got direct {s.direct}, relay {s.relay}, no path "
            f"{s.no_path} — {s.mismatches}/{s.trials} trials</li>" for s in group)
        parts.append(f"<details{' open' if len(group) <= 3 else ''}><summary><b>{_esc(scenario)} "
                     f"{_esc(pair)}</b>: {trials} trial{'s' if trials != 1 else ''} in "
                     f"{len(group)} cell"
                     f"{'s' if len(group) != 1 else ''}</summary><ul>{items}</ul></details>")
    return "".join(parts)


def _failures_html(rows: list[dict]) -> str:
    by_error: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        if row["error"] or row["final_path"] == "none":
            error = row["error"] or "(no error text; the trial ended without any path)"
            by_error[error].append(row)
    if not by_error:
        return "<p>No trial failed.</p>"
    body = []
    for error, group in sorted(by_error.items(), key=lambda item: -len(item[1])):
        where = Counter(f"{r['scenario']} {r['server_impl']}-{r['client_impl']} "
                        f"{r['server_nat']}×{r['client_nat']} ({r['link'] or 'veth'})"
                        for r in group)
        listed = "<br>".join(f"{_esc(cell)} ×{n}" for cell, n in where.most_common(8))
        more = f"<br>… and {len(where) - 8} more cells" if len(where) > 8 else ""
        first = group[0]
        body.append(f'<tr><td>{len(group)}</td><td class="l"><pre>{_esc(error)}</pre></td>'
                    f'<td class="l">{listed}{more}</td><td class="l">trial '
                    f"{_esc(first['trial'])}, seed {_esc(first['seed'])}</td></tr>")
    return ('<div class="wrap"><table class="failures"><thead><tr><th>trials</th>'
            '<th class="l">error</th><th class="l">cells</th><th class="l">first</th></tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table></div>')


_ENV_ORDER = ("commit", "kernel", "iroh_npm_version", "rust_iroh_version", "started_at",
              "finished_at", "host_cores", "scenario_files", "seeds")


def _environment_html(env: dict) -> str:
    if not env:
        return "<p>No environment.json.</p>"
    keys = [k for k in _ENV_ORDER if k in env] + sorted(k for k in env if k not in _ENV_ORDER)
    rows = []
    for key in keys:
        value = env[key]
        if key == "planned_cells" and isinstance(value, list):
            text = _planned_cells_text(value)
        elif isinstance(value, list):
            text = ", ".join(str(v) for v in value)
        elif isinstance(value, dict):
            text = json.dumps(value, sort_keys=True)
        else:
            text = str(value)
        rows.append(f'<tr><th class="l">{_esc(key)}</th><td class="l">{_esc(text)}</td></tr>')
    return f'<div class="wrap"><table class="env">{"".join(rows)}</table></div>'


def _planned_cells_text(entries: list) -> str:
    """environment.json's planned_cells as one readable line: the count, then the cell ids
    (trials and expectations are in the summary table)."""
    ids = [str(e.get("cell")) if isinstance(e, dict) else str(e) for e in entries]
    return f"{len(ids)} cells: " + ", ".join(ids)


def _selection_text(env: dict) -> str:
    """' · cells *:rust-rust · 20 trials per cell' when the run was filtered, else ''."""
    text = ""
    if isinstance(env.get("cells_filter"), str) and env["cells_filter"]:
        text += f" · cells {env['cells_filter']}"
    trials = env.get("trials_override")
    if isinstance(trials, int) and not isinstance(trials, bool):
        text += f" · {trials} trials per cell"
    return text


def _cards_html(cells: dict[CellKey, CellStats], run: RunData) -> str:
    ran = [c for c in cells.values() if c.ran]
    trials = sum(c.trials for c in ran)
    direct = sum(c.direct for c in ran)
    cards = [(f"{trials}", "trials", False),
             (f"{len(ran)}/{len(cells)}", "cells run", len(ran) < len(cells)),
             (f"{_pct(direct, trials)}", f"direct ({direct}/{trials})", False)]
    per_pair: dict[str, list[CellStats]] = defaultdict(list)
    for stats in ran:
        per_pair[stats.key.pair].append(stats)
    for pair in ordered(per_pair, PAIR_ORDER):
        p_trials = sum(s.trials for s in per_pair[pair])
        p_direct = sum(s.direct for s in per_pair[pair])
        cards.append((_pct(p_direct, p_trials), f"{pair} direct ({p_direct}/{p_trials})", False))
    mismatches = sum(c.mismatches for c in ran)
    failed = sum(c.failed for c in ran)
    cards.append((str(mismatches), "expectation mismatches", mismatches > 0))
    cards.append((str(failed), "failed trials", failed > 0))
    if run.skipped:
        cards.append((str(len(run.skipped)), "unreadable result lines", True))
    return '<div class="cards">' + "".join(
        f'<div class="card{" bad" if bad else ""}"><b>{_esc(big)}</b>'
        f"<span>{_esc(small)}</span></div>"
        for big, small, bad in cards) + "</div>"


def render_html(run: RunData) -> str:
    cells = aggregate(run.rows, run.planned)
    env = run.environment
    scenarios = ", ".join(sorted({k.scenario for k in cells})) or "no scenario"
    when = env.get("started_at") or datetime.datetime.now(datetime.timezone.utc).isoformat(
        timespec="seconds")
    commit = str(env.get("commit", "unknown commit"))[:12]
    notes = "".join(f'<div class="note">{_esc(n)}</div>' for n in run.notes)
    skipped = ""
    if run.skipped:
        listed = "".join(f"<li>{_esc(s)}</li>" for s in run.skipped[:50])
        more = f"<li>… and {len(run.skipped) - 50} more</li>" if len(run.skipped) > 50 else ""
        skipped = (f'<div class="note">{len(run.skipped)} line(s) of results.jsonl were skipped '
                   f"as unreadable.<details><summary>which and why</summary><ul>{listed}{more}"
                   "</ul></details></div>")
    sections = [
        ("NAT grid per implementation pair", _grids_html(cells)),
        ("Time to direct path", _cdf_html(cells)),
        ("Churn", _churn_html(run.rows)),
        ("Throughput per link profile", _throughput_html(cells)),
        ("Expectation mismatches", _mismatches_html(cells)),
        ("Summary", _summary_html(cells)),
        ("Failures", _failures_html(run.rows)),
        ("Environment", _environment_html(env)),
    ]
    body = "".join(f'<section id="{_esc(title.split()[0].lower())}"><h2>{_esc(title)}</h2>'
                   f"{content}</section>" for title, content in sections)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>irohlab report: {_esc(scenarios)}</title><style>{_CSS}</style></head>"
            f"<body><main><h1>irohlab hole-punching report</h1>"
            f'<p class="sub">{_esc(scenarios)}{_esc(_selection_text(env))} · started '
            f'{_esc(when)} · commit {_esc(commit)}</p>'
            f"{notes}{skipped}{_cards_html(cells, run)}{body}</main></body></html>\n")


# ---------------------------------------------------------------------------------------------
# CLI

def build_report(run_dir: Path, scenario_files=()) -> tuple[Path, RunData]:
    run = load_run(run_dir, scenario_files)
    out = run_dir / "index.html"
    out.write_text(render_html(run), encoding="utf-8")
    return out, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="irohlab report",
                                     description="Write DIR/index.html from DIR/results.jsonl.")
    parser.add_argument("dir", type=Path, help="run directory holding results.jsonl")
    parser.add_argument("--scenario", action="append", default=[], metavar="FILE",
                        help="scenario file(s) to plan from when environment.json has no "
                             "planned_cells (default: its scenario_files)")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"error: {args.dir} is not a directory", file=sys.stderr)
        return 1
    if not (args.dir / "results.jsonl").is_file():
        print(f"error: {args.dir / 'results.jsonl'} does not exist", file=sys.stderr)
        return 1
    try:
        out, run = build_report(args.dir, args.scenario)
    except OSError as err:
        print(f"error: cannot write the report: {err}", file=sys.stderr)
        return 1
    try:
        print(summary_table(run.rows, run.planned), flush=True)
    except BrokenPipeError:   # `... | head`: the report is written, the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    for note in run.notes:
        print(f"note: {note}", file=sys.stderr)
    if run.skipped:
        print(f"warning: skipped {len(run.skipped)} unreadable line(s) of results.jsonl "
              f"(first: {run.skipped[0]})", file=sys.stderr)
    print(f"wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

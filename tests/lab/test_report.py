"""The HTML report: numbers from a synthetic run, robustness, and a headless Chromium render.

No root, no namespaces: the run is tests/lab/fixtures/run (written by make_fixture.py, whose
docstring lists the numbers asserted here). Run from the repo root:
    /usr/bin/python3 -m pytest tests/lab/test_report.py -q
"""
from __future__ import annotations

import base64
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from reports import plots, report  # noqa: E402
from reports.results import parse_cell_id, read_results  # noqa: E402

PYTHON = "/usr/bin/python3"
FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run"
CHROMIUM_TIMEOUT_S = 120
WINDOW = (1280, 2000)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The fixture run copied to a temp dir and reported on by the real CLI."""
    run_dir = tmp_path_factory.mktemp("run")
    for name in ("results.jsonl", "environment.json"):
        shutil.copy(FIXTURE / name, run_dir / name)
    result = subprocess.run([PYTHON, "-m", "reports.report", str(run_dir)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return run_dir, result, (run_dir / "index.html").read_text(encoding="utf-8")


class _Tables(HTMLParser):
    """Collects table rows as (row css class, [cell texts])."""

    def __init__(self):
        super().__init__()
        self.rows: list[tuple[str, list[str]]] = []
        self.images: list[str] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr":
            self.rows.append((attrs.get("class") or "", []))
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self.rows:
            self.rows[-1][1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def _parse_rows(page: str) -> list[tuple[str, list[str]]]:
    parser = _Tables()
    parser.feed(page)
    return parser.rows


def summary_rows(page: str) -> dict[tuple, tuple[str, list[str]]]:
    rows = {}
    for css, cells in _parse_rows(page):
        if len(cells) == len(report._COLUMNS) and cells[0] != "scenario":
            rows[tuple(cells[:5])] = (css, cells)
    return rows


def test_summary_table_has_the_fixture_numbers(built):
    _, _, page = built
    rows = summary_rows(page)
    css, cells = rows[("fixture-nat", "rust-rust", "none", "none", "veth")]
    assert cells[5:] == ["5", "5/5 100%", "300 ms", "480 ms", "0%", "0", "direct", ""]
    assert css == ""
    css, cells = rows[("fixture-nat", "rust-rust", "strict", "none", "veth")]
    assert cells[6] == "4/5 80%" and cells[10] == "1" and cells[12] == "✗ 1"
    assert css == "mismatch"
    css, cells = rows[("fixture-nat", "rust-rust", "moderate", "strict", "veth")]
    assert cells[6] == "0/5 0%" and cells[9] == "100%" and cells[11] == "relay" and css == ""


def test_cpp_cells_stay_visible_as_relayed_mismatches_or_not_run(built):
    _, _, page = built
    rows = summary_rows(page)
    cpp_rust = [v for k, v in rows.items() if k[:2] == ("fixture-nat", "cpp-rust")]
    assert len(cpp_rust) == 25
    assert all(cells[6] == "0/5 0%" and cells[9] == "100%" for _, cells in cpp_rust)
    assert sum(css == "mismatch" for css, _ in cpp_rust) == 13   # every cell expected direct
    rust_cpp = [v for k, v in rows.items() if k[1] == "rust-cpp"]
    assert sum(css == "notrun" for css, _ in rust_cpp) == 15
    cpp_cpp = [v for k, v in rows.items() if k[1] == "cpp-cpp"]
    assert len(cpp_cpp) == 25 and all(css == "notrun" and cells[6] == "not run"
                                      for css, cells in cpp_cpp)
    # the note under each C++ grid that never went direct: nat cpp-rust, rust-cpp; churn cpp-rust
    assert page.count("does not speak the QUIC multipath draft") == 3
    assert "fixture-nat: server cpp → client cpp" not in page   # titles live in the PNGs
    assert 'alt="NAT grid fixture-nat cpp-cpp veth"' in page      # but the grid is there


def test_page_is_self_contained_and_complete(built):
    _, _, page = built
    parser = _Tables()
    parser.feed(page)
    assert len(parser.images) >= 4 + 2 + 1       # 4 NAT grids, 2 CDFs, 1 throughput chart
    for src in parser.images:
        assert src.startswith("data:image/png;base64,"), src[:60]
        png = base64.b64decode(src.split(",", 1)[1])
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page)
    assert '<meta name="viewport"' in page
    for section in ("NAT grid per implementation pair", "Time to direct path", "Churn",
                    "Throughput per link profile", "Expectation mismatches", "Summary",
                    "Failures", "Environment"):
        assert f">{section}</h2>" in page
    assert "timeout: no echo after 30 s" in page
    assert "no packet left the sender: link MTU 251 &lt; 1200" in page
    assert "0123456789abcdef0123456789abcdef01234567" in page and "6.1.0-fixture" in page
    assert "3 line(s) of results.jsonl were skipped" in page


def test_churn_events_are_tabulated(built):
    _, _, page = built
    rows = {tuple(cells[:3]): cells[3:] for _, cells in _parse_rows(page) if len(cells) == 7}
    assert rows[("fixture-churn", "rust-rust", "uplink-down")] == [
        "3", "1 (33%)", "2 (67%)", "0 (0%)"]
    assert rows[("fixture-churn", "rust-rust", "renumber")][1] == "3 (100%)"
    assert rows[("fixture-churn", "cpp-rust", "uplink-down")][3] == "3 (100%)"


def test_cli_prints_the_same_table_and_counts_skipped_lines(built):
    _, result, _ = built
    out = result.stdout
    assert re.search(r"^fixture-nat\s+rust-rust\s+none\s+none\s+veth\s+5\s+5/5 100%\s+300 ms\s+"
                     r"480 ms\s+0%\s+0\s+direct$", out, re.M)
    assert re.search(r"^fixture-nat\s+cpp-cpp\s+cgnat\s+cgnat\s+veth\s+0/5\s+not run", out, re.M)
    assert "106 cells (40 not run), 318 trials, 100 direct (31%), 109 expectation mismatches" in out
    assert "warning: skipped 3 unreadable line(s)" in result.stderr


def test_summary_table_function_on_rows():
    rows, skipped = read_results(FIXTURE / "results.jsonl")
    assert len(rows) == 318 and len(skipped) == 3
    text = report.summary_table([r for r in rows if r["scenario"] == "fixture-links"])
    lines = text.splitlines()
    assert lines[0].split() == ["scenario", "pair", "server", "client", "link", "trials",
                                "direct", "p50", "p95", "relay", "failed", "expect", "mismatch"]
    body = [line.split() for line in lines[2:-1]]
    assert sorted(r[4] for r in body) == ["absurd", "ble", "good-wifi", "lora"]
    ble = next(r for r in body if r[4] == "ble")
    assert ble[5:8] == ["3", "0/3", "0%"] and ble[-2:] == ["3", "any"]
    assert lines[-1] == "4 cells (0 not run), 12 trials, 6 direct (50%), 0 expectation mismatches"


def test_summary_table_skips_invalid_rows():
    rows, _ = read_results(FIXTURE / "results.jsonl")
    links = [r for r in rows if r["scenario"] == "fixture-links"]
    nan_row = dict(links[0], direct_after_ms=float("nan"))
    text = report.summary_table(links + [{"scenario": "x"}, nan_row, "junk"])
    assert text.splitlines()[-1].endswith(", 3 invalid rows skipped")
    assert "nan" not in text


@pytest.mark.parametrize("content", [
    "", "\n\n", "not json at all\n", '{"scenario": 1}\n', "[]\n", "\x00\xff garbage\n",
    '{"truncated": \n',
    '{"scenario": "s", "server_nat": "none", "client_nat": "none", "server_impl": "rust", '
    '"client_impl": "rust", "seed": 1, "trial": 0, "link": null, "started_relayed": true, '
    '"direct_after_ms": NaN, "final_path": "direct", "bytes_verified": 1, "error": null, '
    '"wall_ms": 1, "expect_final_path": null, "ok": true}\n',
])
def test_broken_results_never_crash(tmp_path, content):
    (tmp_path / "results.jsonl").write_bytes(content.encode("utf-8", "surrogateescape"))
    (tmp_path / "environment.json").write_text("{not json")
    result = subprocess.run([PYTHON, "-m", "reports.report", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    page = (tmp_path / "index.html").read_text()
    assert "No trials ran." in page and "No environment.json." in page


def test_missing_run_directory_is_a_one_line_error(tmp_path):
    result = subprocess.run([PYTHON, "-m", "reports.report", str(tmp_path / "nope")], cwd=REPO,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip() == f"error: {tmp_path / 'nope'} is not a directory"


# ---------------------------------------------------------------------------------------------
# headless Chromium

def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def _screenshot(browser: str, page: Path, out: Path, profile: Path) -> subprocess.CompletedProcess:
    """Runs Chromium in its own process group so a hang is killed with all its children."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", f"--user-data-dir={profile}", f"--screenshot={out}",
           f"--window-size={WINDOW[0]},{WINDOW[1]}", page.as_uri()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=CHROMIUM_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"chromium did not finish within {CHROMIUM_TIMEOUT_S} s")
    finally:
        try:   # helpers (zygote, gpu) it may have left in our group
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def _near(pixels, rgb, tolerance=0.06):
    import numpy as np
    return (np.abs(pixels[..., :3] - np.array(rgb)) <= tolerance).all(axis=-1)


@pytest.mark.skipif(_chromium() is None, reason="chromium is not installed (apt-get install "
                    "chromium) — the headless render check needs it")
def test_page_renders_in_headless_chromium_with_a_non_blank_grid(built, tmp_path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.image as mpimg
    import numpy as np
    from matplotlib import colormaps

    run_dir, _, _ = built
    shot = tmp_path / "shot.png"
    result = _screenshot(_chromium(), run_dir / "index.html", shot, tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists() and shot.stat().st_size > 20_000
    pixels = mpimg.imread(shot)
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])

    # The first NAT grid (rust-rust) sits in the left half, below the header and the cards.
    grid = pixels[300:1300, 0:WINDOW[0] // 2]
    colours = {tuple(p) for p in (grid[..., :3] * 255).astype(np.uint8).reshape(-1, 3)[::7]}
    assert len(colours) > 200, f"grid area looks blank: {len(colours)} distinct colours"
    cividis = colormaps["cividis"]
    all_direct = _near(grid, cividis(1.0)[:3]).sum()    # rust-rust: many cells 100% direct
    never = _near(grid, cividis(0.0)[:3]).sum()         # and the relay-only cells
    assert all_direct > 20_000 and never > 5_000, (all_direct, never)
    # the cpp-cpp grid (right column, second row) is hatched "not run", not missing
    right = pixels[300:WINDOW[1], WINDOW[0] // 2:]
    assert _near(right, (0xE6 / 255, 0xE6 / 255, 0xE6 / 255), 0.02).sum() > 20_000


# ---------------------------------------------------------------------------------------------
# the plan: environment.json planned_cells (what the runner selected) over the scenario files

def _filtered_run(tmp_path: Path, planned: list | str, scenario: str | None = "fixture-nat"):
    """A run of the fixture's rust-rust NAT rows only, whose environment.json carries
    `planned` as planned_cells while its scenario_files still name the full 100-cell matrix."""
    rows, _ = read_results(FIXTURE / "results.jsonl")
    kept = [r for r in rows if r["scenario"] == scenario and r["server_impl"] == "rust"
            and r["client_impl"] == "rust"]
    (tmp_path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in kept))
    env = json.loads((FIXTURE / "environment.json").read_text())
    env.update(cells_filter="*:rust-rust,none/none:cpp-cpp", trials_override=None,
               planned_cells=planned)
    (tmp_path / "environment.json").write_text(json.dumps(env))
    return subprocess.run([PYTHON, "-m", "reports.report", str(tmp_path)], cwd=REPO,
                          capture_output=True, text=True, timeout=120)


def _rust_rust_plan() -> list[dict]:
    tiers = ("none", "open", "moderate", "strict", "cgnat")
    return [{"cell": f"{s}/{c}:rust-rust", "trials": 5, "expect_final_path": None}
            for s in tiers for c in tiers]


def test_planned_cells_in_environment_are_the_plan(tmp_path):
    plan = _rust_rust_plan() + [{"cell": "none/none:cpp-cpp", "trials": 7,
                                 "expect_final_path": "relay"}]
    result = _filtered_run(tmp_path, plan)
    assert result.returncode == 0, result.stderr
    # 26 planned cells, not the scenario file's 100; the one that never ran stays visible
    assert "26 cells (1 not run), 125 trials" in result.stdout
    assert re.search(r"^fixture-nat\s+cpp-cpp\s+none\s+none\s+veth\s+0/7\s+not run.*relay\s+-$",
                     result.stdout, re.M)
    assert "cpp-rust" not in result.stdout and "rust-cpp" not in result.stdout
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    rows = summary_rows(page)
    assert len(rows) == 26
    assert rows[("fixture-nat", "cpp-cpp", "none", "none", "veth")][0] == "notrun"
    assert "<b>25/26</b><span>cells run</span>" in page
    assert "26 cells: none/none:rust-rust, " in page   # environment: ids, not a dict dump
    assert 'alt="NAT grid fixture-nat cpp-rust veth"' not in page   # unplanned: no grid


def test_planned_cells_without_results_take_the_scenario_files_name(tmp_path):
    (tmp_path / "results.jsonl").write_text("")
    env = json.loads((FIXTURE / "environment.json").read_text())
    env["planned_cells"] = [{"cell": "open/strict:rust-cpp@good-wifi", "trials": 3,
                             "expect_final_path": "direct"}]
    (tmp_path / "environment.json").write_text(json.dumps(env))
    result = subprocess.run([PYTHON, "-m", "reports.report", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^fixture-nat\s+rust-cpp\s+open\s+strict\s+good-wifi\s+0/3\s+not run",
                     result.stdout, re.M)
    assert "1 cells (1 not run), 0 trials" in result.stdout


def test_bad_planned_cells_entries_are_skipped_with_a_note(tmp_path):
    plan = _rust_rust_plan() + ["junk", {"cell": "no-colon", "trials": 1},
                                {"cell": "none/none:cpp-cpp", "trials": -1},
                                {"cell": "none/none:cpp-cpp", "trials": 1,
                                 "expect_final_path": "sideways"}]
    result = _filtered_run(tmp_path, plan)
    assert result.returncode == 0 and "Traceback" not in result.stderr
    assert "25 cells (0 not run), 125 trials" in result.stdout
    assert result.stderr.count("planned_cells entry") == 4
    assert ("note: environment.json planned_cells entry 27 skipped: cell id 'no-colon'"
            in result.stderr)


def test_planned_cells_that_is_not_a_list_falls_back_to_the_scenario_files(tmp_path):
    result = _filtered_run(tmp_path, "everything")
    assert result.returncode == 0, result.stderr
    assert "100 cells (75 not run), 125 trials" in result.stdout
    assert "planned_cells is not a list" in result.stderr


@pytest.mark.parametrize("cell_id, parsed", [
    ("none/cgnat:rust-rust", ("none", "cgnat", "rust", "rust", None)),
    ("strict/open:cpp-rust@good-wifi", ("strict", "open", "cpp", "rust", "good-wifi")),
])
def test_parse_cell_id_reads_the_runners_ids(cell_id, parsed):
    assert parse_cell_id(cell_id) == parsed


@pytest.mark.parametrize("cell_id", ["", "none:rust-rust", "none/none:rust", "a/b:c-d@",
                                     "/none:rust-rust"])
def test_parse_cell_id_rejects_malformed_ids(cell_id):
    with pytest.raises(ValueError):
        parse_cell_id(cell_id)


# ---------------------------------------------------------------------------------------------
# the time-to-direct axis follows the data

def _log_share(inner: tuple[float, float], outer: tuple[float, float]) -> float:
    """How much of a log axis `outer` the range `inner` covers."""
    return (math.log(inner[1]) - math.log(inner[0])) / (math.log(outer[1]) - math.log(outer[0]))


@pytest.mark.parametrize("times_ms", [
    [31.0, 38.0, 45.0, 52.0, 69.0],            # the lab on veth
    [850.0, 2400.0, 7000.0, 12500.0],          # a slow link, seconds
    [40.0, 65.0, 3000.0, 9000.0],              # both in one chart (a link sweep)
    [0.0, 0.4, 3.0],                           # sub-millisecond: no log(0)
    [250.0],                                   # one trial
])
def test_time_axis_covers_the_data_and_is_not_mostly_empty(times_ms):
    low, high = plots.time_axis_ms(times_ms)
    assert low <= max(min(times_ms), plots.MIN_TIME_MS) and high >= max(times_ms)
    data = (max(min(times_ms), plots.MIN_TIME_MS), max(times_ms))
    if data[1] > data[0]:
        assert _log_share(data, (low, high)) >= 0.4
    ticks = plots.time_ticks_ms(low, high)
    assert len(ticks) >= 4 and all(low <= t <= high for t in ticks)


def test_time_to_direct_cdf_draws_lab_and_empty_series():
    png = plots.time_to_direct_cdf("t", [("rust-rust", [0.0, 31.0, 45.0, 69.0], 5),
                                         ("cpp-rust", [], 5)])
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plots.time_to_direct_cdf("t", [])[:8] == b"\x89PNG\r\n\x1a\n"

"""Scenario files: the shipped scenarios, matrix expansion, expectations and validation errors.

Pure parsing: no root, no namespaces. Run from the repo root:
    /usr/bin/python3 -m pytest tests/lab/test_scenario.py -q
"""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from netns import scenario  # noqa: E402
from netns.scenario import ScenarioError, loads  # noqa: E402

PYTHON = "/usr/bin/python3"
SCENARIOS = REPO / "scenarios"
TIERS = ("none", "open", "moderate", "strict", "cgnat")
PAIRS = {("rust", "rust"), ("cpp", "rust"), ("rust", "cpp"), ("cpp", "cpp")}

MINIMAL = """
[scenario]
name = "t"
[topology]
server_nat = "none"
client_nat = "none"
"""


def test_every_shipped_scenario_is_valid():
    files = sorted(SCENARIOS.glob("*.toml"))
    assert {f.name for f in files} >= {"nat-matrix.toml", "smoke.toml", "links.toml", "churn.toml"}
    for file in files:
        loaded = scenario.load(file)
        assert loaded.cells(), f"{file.name} expands to no cell"
        assert loaded.name == file.stem


def test_nat_matrix_is_every_tier_pair_for_four_pairs_with_irohs_expectations():
    cells = scenario.load(SCENARIOS / "nat-matrix.toml").cells()
    assert len(cells) == 5 * 5 * 4
    assert {(c.server_impl, c.client_impl) for c in cells} == PAIRS
    assert {(c.server_nat, c.client_nat) for c in cells} == {(s, c) for s in TIERS for c in TIERS}
    relay = {("moderate", "strict"), ("strict", "moderate"), ("strict", "strict")}
    for cell in cells:
        tiers = (cell.server_nat, cell.client_nat)
        if "cgnat" in tiers:
            want = None
        elif tiers in relay:
            want = "relay"
        else:
            want = "direct"
        # the C++ pairs carry the protocol's target too: their relayed cells must show up as
        # mismatches in the report, not be expected away
        assert cell.expect_final_path == want, (cell.pair, tiers)
        assert cell.relay_only_ticket is True
        assert cell.link is None and cell.firewall is None
    assert sum(c.expect_final_path == "direct" for c in cells if c.pair == "rust-rust") == 13


def test_smoke_is_two_by_two_rust_rust_with_two_trials():
    cells = scenario.load(SCENARIOS / "smoke.toml").cells()
    assert [(c.server_nat, c.client_nat) for c in cells] == [
        ("none", "none"), ("none", "moderate"), ("moderate", "none"), ("moderate", "moderate")]
    assert all(c.pair == "rust-rust" and c.trials == 2 for c in cells)


def test_links_scenario_covers_every_link_profile_once():
    cells = scenario.load(SCENARIOS / "links.toml").cells()
    assert len({c.pair for c in cells}) == 1
    links = [c.link for c in cells]
    assert sorted(links) == sorted(scenario.default_link_profiles())


def test_churn_scenario_has_renumber_move_and_ten_second_uplink_loss():
    cells = scenario.load(SCENARIOS / "churn.toml").cells()
    churn = cells[0].churn
    assert [e.action for e in churn] == ["renumber", "move", "uplink-down"]
    assert churn[2].duration_s == 10
    assert all(e.at_s + e.duration_s < cells[0].timeout_s for e in churn)
    assert all(c.churn == churn for c in cells)


def test_defaults_of_a_minimal_file():
    (cell,) = loads(MINIMAL).cells()
    assert cell == scenario.Cell(
        scenario="t", server_nat="none", client_nat="none", server_impl="rust",
        client_impl="rust", trials=1, seed=1, link=None, hairpin=False, mapping_timeout_s=120,
        firewall=None, workload=scenario.Workload("echo", 1024, 0, 0),
        timeout_s=30.0, direct_timeout_s=15.0, churn=(), expect_final_path=None,
        relay_only_ticket=True)


def test_expansion_order_and_last_matching_override_wins():
    text = MINIMAL.replace('server_nat = "none"', 'server_nat = ["none", "strict"]').replace(
        'client_nat = "none"', 'client_nat = ["open", "strict"]') + """
[peers]
pairs = ["cpp-rust", "rust-rust"]
[expect]
final_path = "direct"
[[expect.override]]
server_nat = "strict"
final_path = "relay"
[[expect.override]]
server_nat = "strict"
client_nat = "open"
pair = "rust-rust"
final_path = "any"
"""
    cells = loads(text).cells()
    assert [(c.pair, c.server_nat, c.client_nat, c.expect_final_path) for c in cells] == [
        ("cpp-rust", "none", "open", "direct"), ("cpp-rust", "none", "strict", "direct"),
        ("cpp-rust", "strict", "open", "relay"), ("cpp-rust", "strict", "strict", "relay"),
        ("rust-rust", "none", "open", "direct"), ("rust-rust", "none", "strict", "direct"),
        ("rust-rust", "strict", "open", None), ("rust-rust", "strict", "strict", "relay")]


def test_link_profiles_are_pluggable():
    text = MINIMAL + 'links = ["veth", "carrier-pigeon"]\n'
    with pytest.raises(ScenarioError, match="unknown link profile 'carrier-pigeon'"):
        loads(text, link_profiles=["good-wifi"])
    cells = loads(text, link_profiles=["carrier-pigeon"]).cells()
    assert [c.link for c in cells] == [None, "carrier-pigeon"]


def test_link_aliases_resolve_to_canonical_names():
    text = (MINIMAL + 'links = ["stress"]\n[[expect.override]]\nlink = "stress"\n'
            'final_path = "relay"\n')
    (cell,) = loads(text, link_profiles=["good-wifi", "absurd"],
                    link_aliases={"stress": "absurd", "dangling": "gone"}).cells()
    assert (cell.link, cell.expect_final_path) == ("absurd", "relay")
    with pytest.raises(ScenarioError, match="unknown link profile 'dangling'"):
        loads(MINIMAL + 'links = ["dangling"]\n', link_profiles=["absurd"],
              link_aliases={"dangling": "gone"})
    with pytest.raises(ScenarioError, match="listed twice"):
        loads(MINIMAL + 'links = ["stress", "absurd"]\n', link_profiles=["absurd"],
              link_aliases={"stress": "absurd"})


def test_workload_kinds():
    bulk = loads(MINIMAL + '[workload]\nkind = "bulk"\nbytes = 1_000_000\n').cells()[0].workload
    assert bulk == scenario.Workload("bulk", 1_000_000, 0, 0)
    dgrams = loads(MINIMAL + '[workload]\nkind = "datagrams"\ndatagrams = 50\n'
                   'datagram_size = 1100\n').cells()[0].workload
    assert dgrams == scenario.Workload("datagrams", 0, 50, 1100)


def test_address_discovery_defaults_to_probe_and_can_be_turned_off():
    assert loads(MINIMAL).cells()[0].address_discovery == "probe"
    off = loads(MINIMAL + '[peers]\naddress_discovery = "none"\n')
    assert off.address_discovery == "none"
    assert [c.address_discovery for c in off.cells()] == ["none"]
    assert json.loads(scenario.cells_json(off))["cells"][0]["address_discovery"] == "none"


def test_address_discovery_rejects_unknown_modes():
    for value, reason in (('"qad"', "unknown value 'qad' (expected one of: probe, none)"),
                          ("true", "must be a string")):
        with pytest.raises(ScenarioError) as caught:
            loads(MINIMAL + f"[peers]\naddress_discovery = {value}\n", path="bad.toml")
        err = caught.value
        assert (err.line, err.key) == (8, "peers.address_discovery"), str(err)
        assert reason in err.reason


# (file text, line, key, words in the reason)
BAD = [
    ("[scenario\n", 1, "(syntax)", "not valid TOML"),
    ('[scenario]\nname = "t"\n', 1, "topology", "missing table [topology]"),
    (MINIMAL + "colour = 1\n", 7, "topology.colour", "unknown key"),
    (MINIMAL + "[extra]\n", 7, "extra", "unknown key"),
    (MINIMAL.replace('server_nat = "none"', 'server_nat = ["none", "fullcone"]'), 5,
     "topology.server_nat", "unknown NAT tier 'fullcone'"),
    (MINIMAL.replace('server_nat = "none"', "server_nat = []"), 5, "topology.server_nat",
     "must not be empty"),
    (MINIMAL.replace('server_nat = "none"', 'server_nat = ["open", "open"]'), 5,
     "topology.server_nat", "listed twice"),
    (MINIMAL.replace('name = "t"', 'name = "Has Spaces"'), 3, "scenario.name", "a-z"),
    (MINIMAL + "hairpin = 1\n", 7, "topology.hairpin", "true or false"),
    (MINIMAL + 'firewall = "tcp-block"\n', 7, "topology.firewall", "unknown value 'tcp-block'"),
    (MINIMAL + "mapping_timeout_s = 0\n", 7, "topology.mapping_timeout_s", ">= 1"),
    (MINIMAL + '[peers]\npairs = ["rust-go"]\n', 8, "peers.pairs", "unknown implementation pair"),
    (MINIMAL + "[run]\ntrials = 0\n", 8, "run.trials", ">= 1"),
    (MINIMAL + "[run]\ntrials = -3\n", 8, "run.trials", ">= 1"),
    (MINIMAL + "[run]\ntrials = 2.5\n", 8, "run.trials", "integer"),
    (MINIMAL + "[run]\ntrials = true\n", 8, "run.trials", "integer"),
    (MINIMAL + '[run]\ntimeout_s = "30"\n', 8, "run.timeout_s", "number of seconds"),
    (MINIMAL + "[run]\ntimeout_s = 0\n", 8, "run.timeout_s", "> 0"),
    (MINIMAL + "[run]\ntimeout_s = 10\ndirect_timeout_s = 20\n", 9, "run.direct_timeout_s",
     "longer than run.timeout_s"),
    (MINIMAL + '[workload]\nkind = "stream"\n', 8, "workload.kind", "unknown value 'stream'"),
    (MINIMAL + '[workload]\nkind = "bulk"\n', 7, "workload", "missing required key 'bytes'"),
    (MINIMAL + '[workload]\nkind = "bulk"\nbytes = 0\n', 9, "workload.bytes", ">= 1"),
    (MINIMAL + '[workload]\nkind = "echo"\ndatagrams = 3\n', 9, "workload.datagrams",
     "only used with kind"),
    (MINIMAL + '[workload]\nkind = "datagrams"\ndatagrams = 3\ndatagram_size = 1500\n', 10,
     "workload.datagram_size", "<= 1200"),
    (MINIMAL + '[[churn]]\nat_s = 1\ndevice = "router"\naction = "move"\n', 9, "churn[0].device",
     "unknown value 'router'"),
    (MINIMAL + '[[churn]]\nat_s = 1\ndevice = "client"\naction = "reboot"\n', 10,
     "churn[0].action", "unknown value 'reboot'"),
    (MINIMAL + '[[churn]]\nat_s = 1\ndevice = "client"\naction = "uplink-down"\n', 7, "churn[0]",
     "missing required key 'duration_s'"),
    (MINIMAL + '[[churn]]\nat_s = 1\ndevice = "client"\naction = "move"\nduration_s = 4\n', 11,
     "churn[0].duration_s", "only uplink-down and udp-block have a duration"),
    (MINIMAL + '[[churn]]\nat_s = 1\ndevice = "client"\naction = "udp-block"\n', 7, "churn[0]",
     "missing required key 'duration_s'"),
    (MINIMAL + '[run]\ntimeout_s = 20\n[[churn]]\nat_s = 1\ndevice = "client"\n'
     'action = "move"\n[[churn]]\nat_s = 15\ndevice = "server"\naction = "uplink-down"\n'
     "duration_s = 10\n", 17, "churn[1].duration_s", "ends at 25 s, not before run.timeout_s"),
    (MINIMAL + '[[churn]]\nat_s = 31\ndevice = "client"\naction = "renumber"\n', 8,
     "churn[0].at_s", "not before run.timeout_s"),
    (MINIMAL + "churn = 3\n", 7, "topology.churn", "unknown key"),
    (MINIMAL + '[expect]\nfinal_path = "maybe"\n', 8, "expect.final_path", "unknown value"),
    (MINIMAL + '[[expect.override]]\nserver_nat = "strict"\nfinal_path = "relay"\n', 8,
     "expect.override[0].server_nat", "unknown server NAT tier 'strict' (this matrix has: none)"),
    (MINIMAL + '[[expect.override]]\nclient_nat = "none"\nfinal_path = "relay"\nfoo = 1\n', 10,
     "expect.override[0].foo", "unknown key"),
]


@pytest.mark.parametrize("text,line,key,reason", BAD, ids=[b[2] + ":" + b[3] for b in BAD])
def test_bad_files_name_line_key_and_reason(text, line, key, reason):
    with pytest.raises(ScenarioError) as caught:
        loads(text, path="bad.toml", link_profiles=["good-wifi"])
    err = caught.value
    assert (err.path, err.line, err.key) == ("bad.toml", line, key), str(err)
    assert reason in err.reason
    assert str(err) == f"bad.toml:{line}: {key}: {err.reason}"


def test_key_lines_follow_arrays_of_tables_and_multiline_strings():
    text = ('[scenario]\nname = "t"\ndescription = """\nserver_nat = "fake"\n"""\n'
            "[topology]\nserver_nat = 'none'\nclient_nat = 'none'\n"
            '[[churn]]\nat_s = 1\ndevice = "client"\naction = "move"\n'
            '[[churn]]\nat_s = 2\ndevice = "client"\naction = "teleport"\n')
    with pytest.raises(ScenarioError) as caught:
        loads(text, link_profiles=[])
    assert (caught.value.line, caught.value.key) == (16, "churn[1].action")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PYTHON, "-m", "netns.scenario", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_cli_check_prints_cells_and_trials():
    result = run_cli("check", "scenarios/nat-matrix.toml", "scenarios/smoke.toml")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["ok scenarios/nat-matrix.toml: 100 cells, 500 trials",
                                          "ok scenarios/smoke.toml: 4 cells, 8 trials"]


def test_cli_reports_errors_in_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text(MINIMAL + "[run]\ntrials = 0\n")
    result = run_cli("check", "scenarios/smoke.toml", str(bad), str(tmp_path / "missing.toml"))
    assert result.returncode == 1
    assert result.stdout == "ok scenarios/smoke.toml: 4 cells, 8 trials\n"
    errors = result.stderr.splitlines()
    assert errors[0] == f"error: {bad}:8: run.trials: must be >= 1, got 0"
    assert errors[1].startswith(f"error: {tmp_path / 'missing.toml'}:0: (file): cannot read")
    assert "Traceback" not in result.stderr


def test_cli_json_is_the_expanded_matrix():
    result = run_cli("json", "scenarios/churn.toml")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    loaded = scenario.load(SCENARIOS / "churn.toml")
    assert doc["scenario"] == "churn" and len(doc["cells"]) == len(loaded.cells())
    first = doc["cells"][0]
    assert set(first) == {f.name for f in dataclasses.fields(scenario.Cell)}
    assert first["churn"][2] == {"at_s": 20.0, "device": "client", "action": "uplink-down",
                                 "duration_s": 10.0}
    assert first["workload"]["kind"] == loaded.cells()[0].workload.kind


def test_cli_usage_error():
    result = run_cli("frobnicate")
    assert result.returncode == 2 and "usage:" in result.stderr

"""Shared fixtures for irohlab's integration / interop tests ("proven against Rust").

Run (from the repo root):
    /usr/bin/python3 -m pytest tests/integration [--seed N] [-q]

* `--seed N`     seeds every randomised test (default: env IROHLAB_SEED, else a fresh random seed,
                 printed at session start, in every failure report and in the final summary so a run
                 can be repeated). `--seed` is only registered when pytest is pointed at
                 tests/integration (or a file in it); from a parent directory use IROHLAB_SEED=N.
                 Each test derives its own `random.Random` from (seed, test name), so re-running a
                 single test with the same seed regenerates exactly the same cases.
* our CLI        build/release/bin/irohlab (override with env IROHLAB_BIN). A missing binary is a
                 test FAILURE ("run tools/build"), never a skip.
* Rust oracle    interop/rust_oracle.mjs run by `node` from PATH against node_modules/@number0/iroh
                 (the real Rust iroh 1.0.2). Missing node or package is a FAILURE
                 ("run tools/setup-deps"). Tests batch requests: one node process per test function.
"""
from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEFAULT_BIN = REPO / "build" / "release" / "bin" / "irohlab"
ORACLE = REPO / "interop" / "rust_oracle.mjs"
IROH_PKG = REPO / "node_modules" / "@number0" / "iroh"

CLI_TIMEOUT_S = 20
ORACLE_TIMEOUT_S = 120


# --------------------------------------------------------------------------------------------
# seed handling
# --------------------------------------------------------------------------------------------
def pytest_addoption(parser):
    parser.addoption(
        "--seed",
        action="store",
        type=int,
        default=None,
        help="seed for the randomised interop tests (default: random, printed at session start)",
    )


def _session_seed(config) -> int:
    seed = getattr(config, "_irohlab_seed", None)
    if seed is None:
        try:
            seed = config.getoption("seed")
        except ValueError:  # option not registered (conftest loaded late)
            seed = None
        if seed is None and os.environ.get("IROHLAB_SEED"):
            seed = int(os.environ["IROHLAB_SEED"])
        if seed is None:
            seed = random.SystemRandom().randrange(2**32)
        config._irohlab_seed = seed
    return seed


def pytest_configure(config):
    _session_seed(config)


def pytest_sessionstart(session):
    config = session.config
    seed = _session_seed(config)
    binary = os.environ.get("IROHLAB_BIN") or str(DEFAULT_BIN)
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:  # printed even with -q (report headers are not)
        tr.write_line(f"irohlab interop seed: {seed}  (reproduce with --seed {seed}); CLI: {binary}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        seed = _session_seed(item.config)
        rep.sections.append(("irohlab seed", f"seed = {seed}; reproduce with: --seed {seed} -k '{item.name}'"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    seed = _session_seed(config)
    terminalreporter.write_line(f"irohlab interop seed: {seed}  (reproduce with --seed {seed})")


@pytest.fixture(scope="session")
def seed(pytestconfig) -> int:
    return _session_seed(pytestconfig)


@pytest.fixture
def rng(seed, request) -> random.Random:
    """A Random seeded from (session seed, test node name): stable per test, independent of order."""
    return random.Random(f"{seed}:{request.node.name}")


# --------------------------------------------------------------------------------------------
# our CLI
# --------------------------------------------------------------------------------------------
class Cli:
    """Runs the irohlab CLI. Every helper returns/asserts with the full command line in messages."""

    def __init__(self, binary: Path, seed: int):
        self.binary = binary
        self.seed = seed

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=CLI_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )

    def describe(self, p: subprocess.CompletedProcess) -> str:
        cmd = " ".join(shlex.quote(a) for a in p.args)
        return (
            f"\n  command: {cmd}\n  exit:    {p.returncode}\n  stdout:  {p.stdout!r}\n"
            f"  stderr:  {p.stderr!r}\n  seed:    {self.seed}"
        )

    def ok(self, *args: str) -> str:
        """Run, require exit 0 and empty stderr, return stdout."""
        p = self.run(*args)
        assert p.returncode == 0, "irohlab failed" + self.describe(p)
        assert p.stderr == "", "irohlab wrote to stderr on success" + self.describe(p)
        return p.stdout

    def line(self, *args: str) -> str:
        """Run successfully and return the single stdout line (without the newline)."""
        p = self.run(*args)
        assert p.returncode == 0, "irohlab failed" + self.describe(p)
        assert p.stderr == "", "irohlab wrote to stderr on success" + self.describe(p)
        lines = p.stdout.splitlines()
        assert len(lines) == 1 and p.stdout.endswith("\n"), "expected exactly one stdout line" + self.describe(p)
        return lines[0]

    def json(self, *args: str):
        p = self.run(*args)
        assert p.returncode == 0, "irohlab failed" + self.describe(p)
        assert p.stderr == "", "irohlab wrote to stderr on success" + self.describe(p)
        try:
            return json.loads(p.stdout)
        except json.JSONDecodeError as e:
            raise AssertionError(f"stdout is not JSON: {e}" + self.describe(p)) from None


@pytest.fixture(scope="session")
def irohlab_bin() -> Path:
    env = os.environ.get("IROHLAB_BIN")
    path = Path(env) if env else DEFAULT_BIN
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(
            f"irohlab CLI not found or not executable at {path}"
            + (" (from IROHLAB_BIN)" if env else "")
            + ": run tools/build first (or point IROHLAB_BIN at a built irohlab)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def cli(irohlab_bin, seed) -> Cli:
    return Cli(irohlab_bin, seed)


# --------------------------------------------------------------------------------------------
# Rust oracle
# --------------------------------------------------------------------------------------------
class Oracle:
    def __init__(self, node: str, seed: int):
        self.node = node
        self.seed = seed
        self.calls = 0

    def __call__(self, requests: list[dict]) -> list[dict]:
        """One node process for the whole batch; returns one response per request, in order."""
        self.calls += 1
        p = subprocess.run(
            [self.node, "--no-deprecation", str(ORACLE)],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            timeout=ORACLE_TIMEOUT_S,
            cwd=str(REPO),
        )
        if p.returncode != 0:
            pytest.fail(f"rust_oracle.mjs exited {p.returncode}: {p.stderr.strip()} (seed {self.seed})", pytrace=False)
        try:
            responses = json.loads(p.stdout)
        except json.JSONDecodeError as e:
            pytest.fail(f"rust_oracle.mjs wrote non-JSON stdout ({e}): {p.stdout[:500]!r}", pytrace=False)
        assert isinstance(responses, list) and len(responses) == len(requests), (
            f"oracle returned {len(responses) if isinstance(responses, list) else type(responses)} "
            f"responses for {len(requests)} requests"
        )
        return responses


@pytest.fixture(scope="session")
def rust_oracle(seed) -> Oracle:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: install Node.js and run tools/setup-deps", pytrace=False)
    if not (IROH_PKG / "package.json").is_file():
        pytest.fail(
            f"{IROH_PKG} is missing: run tools/setup-deps (npm ci installs @number0/iroh)", pytrace=False
        )
    if not ORACLE.is_file():
        pytest.fail(f"{ORACLE} is missing", pytrace=False)
    return Oracle(node, seed)

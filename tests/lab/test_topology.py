"""The topology builder: naming, teardown (normal, exception, signals, keep + cleanup), churn,
the uplink hook contract and bad input."""
from __future__ import annotations

import signal
import subprocess
import textwrap

import pytest

from conftest import (PROBE_PORTS_ARG, PYTHON, REPO, _CREATED_PREFIXES, lab_cleanup, new_lab,
                      probe)
from netns.topology import Lab, LabError

pytestmark = pytest.mark.needs_root


def _pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _start_server(lab, host="probe1"):
    addr = lab.addr(host)
    proc = lab.exec(host, [PYTHON, "-m", "netns.probe", "serve", "--addr", addr, "--ports",
                           PROBE_PORTS_ARG, "--max-s", "300"],
                    stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout.readline().strip() == "ready"
    return addr


def _mapped(lab, device, server) -> str | None:
    return probe(lab, device, "map", "--server1", server, "--ports", PROBE_PORTS_ARG)["mapped"]


def test_up_down_removes_every_namespace_and_process():
    lab = new_lab()
    with lab:
        lab.add_public_host("relay")
        for i, tier in enumerate(["none", "open", "moderate", "strict", "cgnat"]):
            lab.add_site(f"s{i}", nat=tier)
            lab.add_device(f"d{i}", f"s{i}")
        lab.up()
        names = lab_cleanup.lab_namespaces(lab.prefix)
        assert names and all(n.startswith(lab.prefix) for n in names)
        # inet, the host, 4 routers, 1 carrier, 5 devices
        assert len(names) == len(set(lab.namespaces)) == 1 + 1 + 4 + 1 + 5
        sleepers = [lab.exec(f"d{i}", ["sleep", "300"]) for i in range(5)]
        # a grandchild the lab never saw directly: killed with its process group / by namespace
        shell = lab.exec("relay", ["sh", "-c", "sleep 300 & wait"])
    print(f"\nlab of {len(names)} namespaces: up {lab.timings['up_s']:.2f} s, "
          f"down {lab.timings['down_s']:.2f} s")
    assert lab_cleanup.lab_namespaces(lab.prefix) == []
    for p in sleepers + [shell]:
        assert p.poll() is not None
    assert lab_cleanup.pids_in_namespaces(names) == []


def test_exception_inside_the_block_still_cleans_up():
    lab = new_lab()
    with pytest.raises(RuntimeError, match="boom"):
        with lab:
            lab.add_site("home", nat="moderate")
            lab.add_device("dev", "home")
            lab.up()
            lab.exec("dev", ["sleep", "300"])
            raise RuntimeError("boom")
    assert lab_cleanup.lab_namespaces(lab.prefix) == []


def test_parallel_labs_use_distinct_prefixes():
    a, b = new_lab(), new_lab()
    assert a.prefix != b.prefix
    with a, b:
        for lab in (a, b):
            lab.add_site("home", nat="moderate")  # same names in both labs
            lab.add_device("dev", "home")
            lab.up()
        assert set(a.namespaces).isdisjoint(b.namespaces)
    assert lab_cleanup.lab_namespaces(a.prefix) == lab_cleanup.lab_namespaces(b.prefix) == []


SIGNAL_SCRIPT = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, {repo!r})
    from netns.topology import Lab
    with Lab() as lab:
        lab.add_site("home", nat="moderate")
        lab.add_device("dev", "home")
        lab.up()
        child = lab.exec("dev", ["sleep", "300"])
        print(lab.prefix, child.pid, flush=True)
        time.sleep(60)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_cleans_up(sig):
    proc = subprocess.Popen([PYTHON, "-c", SIGNAL_SCRIPT.format(repo=str(REPO))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().split()
        assert len(line) == 2, proc.stderr.read()
        prefix, child = line[0], int(line[1])
        _CREATED_PREFIXES.append(prefix)
        assert lab_cleanup.lab_namespaces(prefix)
        proc.send_signal(sig)
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert lab_cleanup.lab_namespaces(prefix) == []
    assert not _pid_alive(child)


def test_keep_leaves_the_lab_and_cleanup_removes_it():
    lab = new_lab(keep=True)
    with lab:
        lab.add_site("home", nat="moderate")
        lab.add_device("dev", "home")
        lab.up()
        child = lab.exec("dev", ["sleep", "300"])
    try:
        assert lab_cleanup.lab_namespaces(lab.prefix), "keep=True must leave the lab up"
        assert _pid_alive(child.pid)
        r = subprocess.run([PYTHON, "-m", "netns.cleanup", "--prefix", lab.prefix], cwd=REPO,
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert lab_cleanup.lab_namespaces(lab.prefix) == []
        child.wait(timeout=5)
    finally:
        lab_cleanup.cleanup(lab.prefix)


def test_cleanup_cli_rejects_a_bad_prefix():
    r = subprocess.run([PYTHON, "-m", "netns.cleanup", "--prefix", "eth0"], cwd=REPO,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 2
    assert r.stderr.strip().startswith("error: --prefix") and "Traceback" not in r.stderr


@pytest.fixture
def churn_lab():
    lab = new_lab()
    with lab:
        lab.add_public_host("probe1")
        lab.add_site("home", nat="moderate")
        lab.add_site("office", nat="strict")
        lab.add_site("public", nat="none")
        lab.add_site("cg", nat="cgnat")
        lab.add_device("dev", "home")
        lab.add_device("cgdev", "cg")
        lab.add_device("srv", "public")
        lab.up()
        lab.server = _start_server(lab)
        yield lab


def test_renumber_keeps_connectivity(churn_lab):
    lab = churn_lab
    old = lab.addr("dev")
    assert _mapped(lab, "dev", lab.server).startswith(lab.addr("home") + ":")
    new = lab.renumber("dev")
    assert new != old and lab.addr("dev") == new
    addrs = lab.run("dev", ["ip", "-4", "-o", "addr", "show", "dev", "eth0"]).stdout
    assert new in addrs and old not in addrs
    assert "default via" in lab.run("dev", ["ip", "route"]).stdout
    assert _mapped(lab, "dev", lab.server).startswith(lab.addr("home") + ":")
    # a public device renumbers on the internet segment; the server sees the new address
    new_pub = lab.renumber("srv")
    assert _mapped(lab, "srv", lab.server).startswith(new_pub + ":")


def test_move_to_another_site(churn_lab):
    lab = churn_lab
    new = lab.move("dev", "office")
    assert lab.devices["dev"].site == "office"
    assert new.startswith("10.") and new == lab.addr("dev")
    assert _mapped(lab, "dev", lab.server).startswith(lab.addr("office") + ":")
    with pytest.raises(LabError, match="already at"):
        lab.move("dev", "office")


@pytest.mark.parametrize("what,device", [("home", "dev"), ("dev", "dev"), ("cg", "cgdev"),
                                         ("srv", "srv")])
def test_uplink_down_and_up(churn_lab, what, device):
    lab = churn_lab
    assert _mapped(lab, device, lab.server) is not None
    lab.uplink_down(what)
    assert _mapped(lab, device, lab.server) is None
    lab.uplink_up(what)  # also restores the routes the link loss flushed
    assert _mapped(lab, device, lab.server) is not None


class _BridgeLink:
    """Stand-in for the link emulator: a kernel bridge between the two ends (no emulation)."""

    def __init__(self, lab, site):
        self.args = (site.link_ns, site.link_if_router, site.link_if_internet)
        ns, a, b = self.args
        for argv in (["link", "add", "name", "fwd", "type", "bridge"],
                     ["link", "set", "dev", a, "master", "fwd"],
                     ["link", "set", "dev", b, "master", "fwd"],
                     ["link", "set", "dev", "fwd", "up"]):
            subprocess.run(["ip", "-n", ns, *argv], check=True, timeout=10)
        self.stopped = False

    def stop(self):
        self.stopped = True
        return {"forwarded": "by a bridge"}


def test_uplink_hook_contract():
    lab = new_lab()
    calls = []

    def hook(lab_arg, site):
        assert lab_arg is lab
        calls.append(site.name)
        return _BridgeLink(lab_arg, site)

    with lab:
        lab.add_public_host("probe1")
        lab.add_site("home", nat="moderate", uplink_hook=hook)
        lab.add_site("carrier", nat="cgnat", uplink_hook=hook)
        lab.add_device("dev", "home")
        lab.add_device("dev2", "carrier")
        lab.up()
        assert calls == ["home", "carrier"]
        site = lab.sites["home"]
        assert site.link_ns == lab.prefix + "l-home"
        assert (site.link_if_router, site.link_if_internet) == ("a", "b")
        server = _start_server(lab)
        assert _mapped(lab, "dev", server).startswith(lab.addr("home") + ":")
        assert _mapped(lab, "dev2", server).startswith(lab.addr("carrier") + ":")
        # nat='none': no router, so the hook runs once per device, between eth0 and the internet
        lab.add_site("public", nat="none", uplink_hook=hook)
        lab.add_device("pub", "public")
        assert calls[-1] == "pub" and lab.devices["pub"].link.link_ns == lab.prefix + "l-pub"
        assert _mapped(lab, "pub", server).startswith(lab.addr("pub") + ":")
        lab.move("pub", "home")  # leaving the site removes the device's link namespace
        assert lab.prefix + "l-pub" not in lab_cleanup.lab_namespaces(lab.prefix)
        assert lab.devices["pub"].uplink_stats == {"forwarded": "by a bridge"}
        assert _mapped(lab, "pub", server).startswith(lab.addr("home") + ":")
    assert lab.sites["home"].uplink_stats == {"forwarded": "by a bridge"}
    assert lab_cleanup.lab_namespaces(lab.prefix) == []


@pytest.mark.parametrize("call,message", [
    (lambda lab: lab.add_site("x", nat="fullcone"), "unknown NAT tier"),
    (lambda lab: lab.add_site("x", nat="moderate", firewall="tcp-block"), "unknown firewall"),
    (lambda lab: lab.add_site("x", nat="moderate", mapping_timeout_s=0), "mapping_timeout_s"),
    (lambda lab: lab.add_site("x", nat="none", hairpin=True), "hairpin needs a NAT"),
    (lambda lab: lab.add_site("Bad Name", nat="open"), "bad name"),
    (lambda lab: lab.add_device("d", "nowhere"), "unknown site"),
    (lambda lab: (lab.add_site("x", nat="open"), lab.add_device("x", "x")), "already used"),
])
def test_bad_input_is_a_lab_error(call, message):
    lab = Lab()
    with pytest.raises(LabError, match=message):
        call(lab)


def test_exec_before_up_is_an_error():
    with pytest.raises(LabError, match="before lab.up"):
        Lab().exec("x", ["true"])

"""Measurement tests for the link profiles (netns/links.py) through the real emulator.

    /usr/bin/python3 -m pytest tests/lab/test_links.py -q      (root; ~1 minute)

Three namespaces of our own, not helper A's lab:  [A] a0 ── la [L] lb ── b0 [B]
with irohlab-linkemu bridging la and lb in L. A is 10.203.0.1, B 10.203.0.2; IPv6 is off and the
neighbours are static, so the ONLY frames on the link are the ones a test sends — which lets every
test check the emulator's counters against what the application saw, frame for frame.

Per profile: RTT (UDP ping-pong, receive times from kernel timestamps), rate (a stream at 1.03x the
rate after a pre-fill, so the bottleneck never idles and never tail-drops; the arrival-time slope
over the bytes on the wire is the rate), loss (a stream at half the rate) and MTU (1200-byte QUIC-
size datagrams: dropped on ble/lora, carried elsewhere). Wall-clock samples are short, so bursty
loss is checked against a band from the Gilbert-Elliott variance, and the long-run loss and delay
of every profile against the same model driven offline (--simulate, 200k frames).
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import select
import socket
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from netns import links  # noqa: E402

NS_PREFIX = f"ilk{os.getpid() % 10000:04d}-"   # not helper A's irl<hex>- namespace space
ADDR_A, ADDR_B, PORT = "10.203.0.1", "10.203.0.2", 47000
ETH_IP_UDP = 14 + 20 + 8          # frame bytes around a UDP payload
SEED = 20260101
SO_RCVBUFFORCE = 33
SO_TIMESTAMPNS = 35              # Linux, not exported by the socket module
CLONE_NEWNET = 0x40000000

PING, ECHO, DATA = 1, 2, 3
HEADER = struct.Struct("!BIQQ")   # kind, seq, send time (ns, CLOCK_REALTIME), echo hold (ns)


def _sh(*cmd: str) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    assert done.returncode == 0, f"{' '.join(cmd)}: {done.stderr.strip()}"


# ---- namespaces and sockets -------------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)


def _socket_in(ns: str, addr: str, kind: int = socket.SOCK_DGRAM,
               port: int = PORT) -> socket.socket:
    """A socket created inside namespace `ns` (setns on this thread, then back), bound."""
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            s = socket.socket(socket.AF_INET, kind)
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(home)
        os.close(target)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
    if kind == socket.SOCK_DGRAM:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    s.bind((addr, port))
    s.setblocking(False)
    return s


@dataclass
class Net:
    ns_a: str
    ns_link: str
    ns_b: str
    a: socket.socket
    b: socket.socket


@pytest.fixture(scope="module")
def net():
    names = [NS_PREFIX + r for r in ("a", "l", "b")]
    ns_a, ns_l, ns_b = names
    try:
        for ns in names:
            _sh("ip", "netns", "add", ns)
            for key in ("all", "default"):
                _sh("ip", "netns", "exec", ns, "sysctl", "-q", "-w",
                    f"net.ipv6.conf.{key}.disable_ipv6=1")
            _sh("ip", "-n", ns, "link", "set", "lo", "up")
        _sh("ip", "-n", ns_a, "link", "add", "a0", "type", "veth", "peer", "name", "la",
            "netns", ns_l)
        _sh("ip", "-n", ns_b, "link", "add", "b0", "type", "veth", "peer", "name", "lb",
            "netns", ns_l)
        macs = {}
        for ns, dev, addr in ((ns_a, "a0", ADDR_A), (ns_b, "b0", ADDR_B)):
            _sh("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            _sh("ip", "-n", ns, "link", "set", dev, "up")
            info = json.loads(subprocess.run(["ip", "-j", "-n", ns, "link", "show", dev],
                                             capture_output=True, text=True, timeout=10).stdout)
            macs[dev] = info[0]["address"]
        # Static neighbours: no ARP on the link, so only test frames cross it.
        _sh("ip", "-n", ns_a, "neigh", "replace", ADDR_B, "lladdr", macs["b0"], "dev", "a0",
            "nud", "permanent")
        _sh("ip", "-n", ns_b, "neigh", "replace", ADDR_A, "lladdr", macs["a0"], "dev", "b0",
            "nud", "permanent")
        a, b = _socket_in(ns_a, ADDR_A), _socket_in(ns_b, ADDR_B)
        try:
            yield Net(ns_a, ns_l, ns_b, a, b)
        finally:
            a.close()
            b.close()
    finally:
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)
        leftover = [n for n in os.listdir("/run/netns") if n.startswith(NS_PREFIX)]
        assert not leftover, f"namespaces left behind: {leftover}"


# ---- one exchange: scheduled sends, B echoes pings, everything received is recorded ------------

@dataclass
class Receipt:
    side: str      # 'a' or 'b': the socket that received it
    kind: int
    seq: int
    sent_ns: int
    rx_ns: int     # kernel receive timestamp (CLOCK_REALTIME)
    hold_ns: int   # for echoes: how long B held the ping before answering
    size: int      # UDP payload bytes


@dataclass
class Traffic:
    receipts: list[Receipt] = field(default_factory=list)
    sent_a: int = 0    # datagrams A sent (all go a->b)
    sent_b: int = 0    # echoes B sent (b->a)
    max_send_lag_ms: float = 0  # how far behind schedule A's sends fell (this process stalled)

    def of(self, side: str, kind: int) -> list[Receipt]:
        return [r for r in self.receipts if r.side == side and r.kind == kind]


def _payload(kind: int, seq: int, size: int, hold_ns: int = 0, sent_ns: int | None = None) -> bytes:
    head = HEADER.pack(kind, seq, time.time_ns() if sent_ns is None else sent_ns, hold_ns)
    return head + bytes(max(0, size - len(head)))


def _drain(sock: socket.socket, side: str) -> list[tuple[Receipt, bytes]]:
    out = []
    for _ in range(100_000):
        try:
            data, anc, _, _ = sock.recvmsg(65536, 256)
        except BlockingIOError:
            break
        rx = time.time_ns()
        for level, kind, blob in anc:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                sec, nsec = struct.unpack("qq", blob[:16])
                rx = sec * 1_000_000_000 + nsec
        k, seq, sent, hold = HEADER.unpack_from(data)
        out.append((Receipt(side, k, seq, sent, rx, hold, len(data)), data))
    return out


def exchange(n: Net, sends: list[tuple[float, int, int, int]], tail_s: float) -> Traffic:
    """Sends (offset_s, kind, seq, size) from A at their offsets; B echoes PINGs at once. Returns
    everything both sides received until `tail_s` after the last send."""
    traffic = Traffic()
    sends = sorted(sends)
    start = time.monotonic()
    end = start + (sends[-1][0] if sends else 0) + tail_s
    i = 0
    while True:
        now = time.monotonic()
        while i < len(sends) and start + sends[i][0] <= now:
            _, kind, seq, size = sends[i]
            traffic.max_send_lag_ms = max(traffic.max_send_lag_ms,
                                          (now - start - sends[i][0]) * 1000)
            n.a.sendto(_payload(kind, seq, size), (ADDR_B, PORT))
            traffic.sent_a += 1
            i += 1
        for receipt, data in _drain(n.b, "b"):
            traffic.receipts.append(receipt)
            if receipt.kind == PING:
                hold = time.time_ns() - receipt.rx_ns
                n.b.sendto(_payload(ECHO, receipt.seq, receipt.size, hold, receipt.sent_ns),
                           (ADDR_A, PORT))
                traffic.sent_b += 1
        for receipt, _ in _drain(n.a, "a"):
            traffic.receipts.append(receipt)
        if now >= end and i == len(sends):
            break
        next_send = start + sends[i][0] if i < len(sends) else end
        timeout = max(0.0, min(next_send, end) - time.monotonic())
        select.select([n.a, n.b], [], [], min(timeout, 0.05))
    return traffic


# ---- expectations from a profile ---------------------------------------------------------------

def serialization_s(profile: dict, frame_bytes: int) -> float:
    return frame_bytes * 8 / (profile["rate_kbit"] * 1000)


def queue_bytes(profile: dict) -> float:
    if "queue_bytes" in profile:
        return profile["queue_bytes"]
    return profile["rate_kbit"] * 1000 * profile["buffer_ms"] / 8000


def largest_payload(profile: dict) -> int:
    return min(1400, profile["mtu"] - 28) if profile.get("mtu") else 1400


def gilbert_sigma(loss: float, burst: float | None, count: int) -> float:
    """Standard deviation of the loss fraction over `count` frames: binomial, inflated by the
    Gilbert-Elliott chain's correlation (1+rho)/(1-rho), rho = 1-p-r."""
    if loss <= 0:
        return 0.0
    inflate = 1.0
    if burst and burst >= 2:
        r = 1 / burst
        p = loss / (burst * (1 - loss))
        rho = 1 - p - r
        inflate = (1 + rho) / (1 - rho)
    return math.sqrt(loss * (1 - loss) * inflate / max(1, count))


def rate_from_arrivals(receipts: list[Receipt], frame_bytes: int) -> float:
    """Least squares of arrival time over wire bytes up to each frame (lost frames used the wire
    too, so x counts by sequence number): the slope is 8 / rate."""
    xs = [(r.seq + 1) * frame_bytes for r in receipts]
    ys = [r.rx_ns / 1e9 for r in receipts]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    sxy = sum((x - mx) * (y - my) for x, y in zip(xs, ys))
    return 8 / (sxy / sxx)


def check_counters(stats: dict, traffic: Traffic) -> None:
    """The emulator saw exactly the application's frames: nothing stray, nothing unaccounted."""
    ab, ba = stats["a_to_b"], stats["b_to_a"]
    got_b = len([r for r in traffic.receipts if r.side == "b"])
    got_a = len([r for r in traffic.receipts if r.side == "a"])
    assert ab["sent"] == traffic.sent_a, (ab, traffic.sent_a)
    assert ab["delivered"] == got_b, (ab, got_b)
    assert ba["sent"] == traffic.sent_b, (ba, traffic.sent_b)
    assert ba["delivered"] == got_a, (ba, got_a)
    for d in (ab, ba):
        assert d["send_failures"] == 0 and d["kernel_drops_in"] == 0, d
        assert d["sent"] == (d["delivered"] + d["dropped_loss"] + d["dropped_queue"]
                             + d["dropped_mtu"] + d["in_flight_at_stop"] - d["duplicated"]), d


# ---- the measurements ----------------------------------------------------------------------------

@dataclass
class Measured:
    rtt_ms: float | None = None
    rtt_tolerance_ms: float = 0
    rate_bps: float | None = None
    rate_frames: int = 0
    loss: float | None = None
    loss_frames: int = 0
    largest_delivered: int = 0
    big_sent: int = 0
    big_delivered: int = 0


def plan_rtt(profile: dict, seq0: int, at: float) -> tuple[list, float]:
    count = 24
    interval = max(0.01, 4 * serialization_s(profile, 64 + ETH_IP_UDP))
    return [(at + i * interval, PING, seq0 + i, 64) for i in range(count)], count * interval


OVERDRIVE = 1.03  # the rate stream's speed relative to the link


def plan_rate(profile: dict, seq0: int, at: float) -> tuple[list, float, int]:
    """Pre-fill a quarter of the queue, then 1.03x the rate: the bottleneck stays busy and the
    queue grows by at most 30 % of its size (no tail drops) over duration <= 10 x buffer."""
    rate = profile["rate_kbit"] * 1000
    q = queue_bytes(profile)
    duration = min(1.2, max(0.15, 10 * q * 8 / rate), 0.3 * q * 8 / ((OVERDRIVE - 1) * rate))
    # Large frames where the link is fast (fewer frames for Python to send), smaller ones on slow
    # links so ~150 arrivals average the jitter out.
    size = int(max(64, min(largest_payload(profile), rate * duration / 8 / 150 - ETH_IP_UDP)))
    frame = size + ETH_IP_UDP
    prefill = int(0.25 * q // frame)
    count = prefill + int(OVERDRIVE * rate * duration / 8 // frame)
    count = min(count, 4000)
    sends = []
    for i in range(count):
        t = 0.0 if i < prefill else (i - prefill + 1) * frame * 8 / (OVERDRIVE * rate)
        sends.append((at + t, DATA, seq0 + i, size))
    return sends, sends[-1][0] - at, frame


def plan_loss(profile: dict, seq0: int, at: float) -> tuple[list, float]:
    size = 64
    rate = profile["rate_kbit"] * 1000
    interval = max(1 / 2500, 2 * (size + ETH_IP_UDP) * 8 / rate)
    count = int(min(3000, 1.2 / interval))
    return [(at + i * interval, DATA, seq0 + i, size) for i in range(count)], count * interval


def measure(n: Net, name: str) -> tuple[Measured, Traffic, dict]:
    profile = links.PROFILES[name]
    m = Measured()
    handle = links.start_link(n.ns_link, "la", "lb", name, SEED)
    try:
        drain_s = 2 * profile["delay_ms"] / 1000 + 2 * profile.get("jitter_ms", 0) / 1000
        # Phases one after another so they do not disturb each other; sequence ranges tell them
        # apart afterwards.
        rtt_sends, rtt_span = plan_rtt(profile, 0, 0.0)
        t = rtt_span + drain_s + 0.05
        rate_sends, rate_span, rate_frame = plan_rate(profile, 100_000, t)
        # ... plus the time the queue left by the rate stream (at most 3/4 full) takes to drain.
        t += rate_span + drain_s + queue_bytes(profile) * 8 / (profile["rate_kbit"] * 1000)
        loss_sends, loss_span = plan_loss(profile, 200_000, t)
        t += loss_span + 0.05
        # QUIC-size datagrams, then (links with an MTU) two datagrams exactly at the MTU.
        big = [(t + 0.01 * i, DATA, 300_000 + i, 1200) for i in range(5)]
        at_mtu = [(t + 0.06 + 0.01 * i, DATA, 400_000 + i, profile["mtu"] - 28)
                  for i in range(2)] if profile.get("mtu") else []
        traffic = exchange(n, rtt_sends + rate_sends + loss_sends + big + at_mtu, drain_s + 0.3)
    finally:
        stats = handle.stop()

    echoes = traffic.of("a", ECHO)
    if echoes:
        m.rtt_ms = statistics.median((r.rx_ns - r.sent_ns - r.hold_ns) / 1e6 for r in echoes)
    j = profile.get("jitter_ms", 0)
    # The median of the sum of two uniform ±j jitters, over len(echoes) samples: 1.25 σ/√n.
    m.rtt_tolerance_ms = 3 + 0.05 * 2 * profile["delay_ms"] + 4 * 1.25 * j * math.sqrt(2 / 3) / \
        math.sqrt(max(1, len(echoes)))
    rate_rx = [r for r in traffic.of("b", DATA) if 100_000 <= r.seq < 200_000]
    if len(rate_rx) >= 8:
        for r in rate_rx:
            r.seq -= 100_000
        m.rate_bps = rate_from_arrivals(rate_rx, rate_frame)
    m.rate_frames = len(rate_sends)
    loss_rx = [r for r in traffic.of("b", DATA) if 200_000 <= r.seq < 300_000]
    m.loss_frames = len(loss_sends)
    m.loss = 1 - len(loss_rx) / len(loss_sends)
    m.largest_delivered = max((r.size for r in traffic.of("b", DATA)), default=0)
    m.big_sent = len(big)
    m.big_delivered = len([r for r in traffic.of("b", DATA) if 300_000 <= r.seq < 400_000])
    return m, traffic, stats


RADIO = ("ble", "lora")


@pytest.mark.parametrize("name", [p for p in links.PROFILES if p != "lora"])
def test_profile_measures_as_specified(net, name):
    profile = links.PROFILES[name]
    m, traffic, stats = measure(net, name)
    print(f"\n{name}: rtt {m.rtt_ms} ms, rate {m.rate_bps and m.rate_bps / 1e6:.4} Mbit/s, "
          f"loss {m.loss:.4f} over {m.loss_frames}, largest {m.largest_delivered}, "
          f"sender lag {traffic.max_send_lag_ms:.1f} ms, "
          f"a_to_b {stats['a_to_b']}, offload {stats['offload']}")
    check_counters(stats, traffic)
    assert stats["scheduler"] == "fifo"

    expected_rtt = 2 * profile["delay_ms"] + 2 * 1000 * serialization_s(profile, 64 + ETH_IP_UDP)
    assert m.rtt_ms is not None, "no ping came back"
    assert abs(m.rtt_ms - expected_rtt) <= m.rtt_tolerance_ms, \
        f"RTT {m.rtt_ms:.1f} ms, expected {expected_rtt:.1f} ± {m.rtt_tolerance_ms:.1f}"

    rate = profile["rate_kbit"] * 1000
    assert m.rate_bps is not None, "too few frames of the rate stream arrived"
    assert abs(m.rate_bps / rate - 1) <= 0.1, f"rate {m.rate_bps / 1e6:.3f} Mbit/s vs {rate / 1e6}"
    # The stream keeps the queue under 55 % full; only a stall of this process longer than the
    # queue's drain time (16 ms on good-wifi, on a loaded 2-core machine) can overflow it, and a
    # few frames lost that way shift the measured rate by less than their share.
    assert stats["a_to_b"]["dropped_queue"] <= max(2, 0.01 * m.rate_frames), \
        f"rate stream overflowed the queue (sender fell {traffic.max_send_lag_ms:.1f} ms behind)"

    loss = profile.get("loss_pct", 0) / 100
    band = max(0.01, 4 * gilbert_sigma(loss, profile.get("loss_burst_pkts"), m.loss_frames))
    assert abs(m.loss - loss) <= band, f"loss {m.loss:.4f} vs {loss} ± {band:.4f}"

    if name in RADIO:
        # QUIC-size datagrams never arrive; packets at the MTU do.
        assert m.big_delivered == 0
        assert stats["a_to_b"]["dropped_mtu"] == m.big_sent
        assert m.largest_delivered == profile["mtu"] - 28
    else:
        assert stats["a_to_b"]["dropped_mtu"] == 0
        assert m.largest_delivered >= 1200


def test_lora_duty_cycle_and_mtu(net):
    """One small ping, one MTU-size frame right behind it, three QUIC-size datagrams. The ping's
    airtime T silences the sender for 99 T, so the MTU frame arrives ~100 T later."""
    profile = links.PROFILES["lora"]
    handle = links.start_link(net.ns_link, "la", "lb", "lora", SEED)
    try:
        ping_size, mtu_size = HEADER.size, profile["mtu"] - 28
        sends = [(0.0, PING, 0, ping_size), (0.0, DATA, 1, mtu_size)]
        sends += [(0.0, DATA, 10 + i, 1200) for i in range(3)]
        air_ping = serialization_s(profile, ping_size + ETH_IP_UDP)
        air_mtu = serialization_s(profile, mtu_size + ETH_IP_UDP)
        delay = profile["delay_ms"] / 1000
        mtu_due = 100 * air_ping + air_mtu + delay
        traffic = exchange(net, sends, mtu_due + 0.6)
    finally:
        stats = handle.stop()
    check_counters(stats, traffic)

    echo = traffic.of("a", ECHO)
    assert len(echo) == 1
    rtt = (echo[0].rx_ns - echo[0].sent_ns - echo[0].hold_ns) / 1e9
    assert rtt == pytest.approx(2 * (air_ping + delay), rel=0.03, abs=0.003)

    data = {r.seq: r for r in traffic.of("b", DATA)}
    assert set(data) == {1}, "only the MTU-size frame may arrive; 1200-byte datagrams must not"
    arrived = (data[1].rx_ns - data[1].sent_ns) / 1e9
    assert arrived == pytest.approx(mtu_due, rel=0.03), \
        f"MTU frame after {arrived:.3f} s, duty cycle predicts {mtu_due:.3f} s"
    assert stats["a_to_b"]["dropped_mtu"] == 3


@pytest.mark.parametrize("name", list(links.PROFILES))
def test_long_run_model_matches_profile(name):
    """200k frames through the same model offline: long-run loss and delay match the profile
    (the short wall-clock runs above cannot pin bursty loss down)."""
    profile = links.PROFILES[name]
    frame = min(200, profile.get("mtu") or 200)
    interval_us = 2 * serialization_s(profile, frame) * 1e6
    count = 200_000 if name != "lora" else 2_000
    if name == "lora":
        interval_us *= 100  # respect the duty cycle, or everything queues
    out = subprocess.run(
        [links.emulator_binary(), "--simulate", str(count), "--frame-bytes", str(frame),
         "--interval-us", f"{interval_us:.3f}", "--seed", str(SEED),
         "--profile-json", links.profile_json(name)],
        capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    loss = profile.get("loss_pct", 0) / 100
    band = max(1e-4, 4 * gilbert_sigma(loss, profile.get("loss_burst_pkts"), count))
    assert abs(result["loss_fraction"] - loss) <= band
    assert result["link"]["dropped_queue"] == 0
    expected_delay = profile["delay_ms"] + 1000 * serialization_s(profile, frame)
    assert result["mean_delay_ms"] == pytest.approx(expected_delay, rel=0.01, abs=0.05)


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(links.LinkError, match="unknown link profile 'wifi6e'"):
        links.start_link("nowhere", "a", "b", "wifi6e", 1)


# ---- offloads: partial checksums and GSO super-packets must leave the link as normal frames ----

CLEAN = {"delay_ms": 2, "rate_kbit": 200_000, "buffer_ms": 20, "label": "clean"}
UDP_SEGMENT = 103  # linux/udp.h


def test_udp_gso_is_segmented(net):
    """QUIC stacks send with UDP_SEGMENT: one 12 000-byte send is ten 1200-byte datagrams."""
    with links.start_link(net.ns_link, "la", "lb", "clean", SEED, profile=CLEAN) as handle:
        net.a.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 1200)
        try:
            net.a.sendto(bytes(range(200)) * 60, (ADDR_B, PORT))
        finally:
            net.a.setsockopt(socket.SOL_UDP, UDP_SEGMENT, 0)
        got: list[bytes] = []
        deadline = time.monotonic() + 2
        while len(got) < 10 and time.monotonic() < deadline:
            select.select([net.b], [], [], 0.05)
            got += [d for _, d in _drain_raw(net.b)]
        stats = handle.stop()
    assert [len(d) for d in got] == [1200] * 10
    assert b"".join(got) == bytes(range(200)) * 60
    assert stats["offload"]["super_packets_split"] == 1
    assert stats["a_to_b"]["delivered"] == 10


def _drain_raw(sock: socket.socket) -> list[tuple[object, bytes]]:
    out = []
    for _ in range(10_000):
        try:
            data, addr = sock.recvfrom(65536)
        except BlockingIOError:
            break
        out.append((addr, data))
    return out


def test_tcp_stream_crosses_a_lossy_link_intact(net):
    """TSO super-packets are cut into MSS segments with valid checksums; TCP over a lossy,
    jittery rung still delivers every byte in order (the relay path is TCP)."""
    payload = os.urandom(3 << 20)
    listener = _socket_in(net.ns_b, ADDR_B, socket.SOCK_STREAM, PORT + 1)
    client = _socket_in(net.ns_a, ADDR_A, socket.SOCK_STREAM, PORT + 1)
    received = bytearray()
    try:
        with links.start_link(net.ns_link, "la", "lb", "congested-wifi", SEED) as handle:
            listener.listen(1)
            client.connect_ex((ADDR_B, PORT + 1))
            server = None
            sent = 0
            deadline = time.monotonic() + 30
            while len(received) < len(payload) and time.monotonic() < deadline:
                readable, writable, _ = select.select(
                    [listener] + ([server] if server else []),
                    [client] if sent < len(payload) else [], [], 0.05)
                if listener in readable and server is None:
                    server, _ = listener.accept()
                    server.setblocking(False)
                if client in writable:
                    try:
                        sent += client.send(payload[sent:sent + (256 << 10)])
                    except (BlockingIOError, ConnectionError):
                        pass
                if server is not None and server in readable:
                    try:
                        received += server.recv(1 << 20)
                    except BlockingIOError:
                        pass
            if server is not None:
                server.close()
            stats = handle.stop()
    finally:
        client.close()
        listener.close()
    assert received == payload
    assert stats["offload"]["unsupported_dropped"] == 0
    print(f"\ntcp offload: {stats['offload']}, a_to_b {stats['a_to_b']}")

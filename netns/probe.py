"""A STUN-like UDP probe that classifies a NAT per RFC 4787 (mapping, filtering, hairpinning).

Server (run on two public hosts; both ports on each; TCP is answered on the first port):
    python3 -m netns.probe serve --addr IP --ports P1,P2 [--partner IP2:P1]
  prints `ready` on stdout once every socket is bound.
Client (run in the device behind the NAT); prints one JSON object:
    python3 -m netns.probe classify --server1 IP1 --server2 IP2 --ports P1,P2
                                    [--tcp] [--wait-s 0.5]
    python3 -m netns.probe map --server1 IP1 --ports P1,P2 [--local-port P]
        (one fresh socket's mapping: {"mapped": "IP:PORT" | null, "local": "IP:PORT"})
    python3 -m netns.probe hairpin-recv --server1 IP1 --ports P1,P2 [--wait-s 5]
        (device A: prints {"mapped":...}, then {"hairpin":bool,"from":...} )
    python3 -m netns.probe hairpin-send --server1 IP1 --ports P1,P2 --to MAPPED_A
        (device B at the same NAT: sends to A's mapped address)
    python3 -m netns.probe delayed --server1 IP1 --ports P1,P2 --delay-ms MS
        (asks for one reply MS after the request: does the NAT still admit it?)

Messages are JSON in single datagrams:
  {"op":"map","id":N}                    -> {"id":N,"mapped":"IP:PORT","server":"IP:PORT"}
  {"op":"reply","id":N,"from":F,"delay_ms":D}
        F = "same" (the socket that received it) | "port" (the server's other port) |
            "host" (the partner server, which never heard from the client before)
  {"op":"send","id":N,"to":"IP:PORT"}    (server to partner) -> the partner sends the mapped reply
  {"op":"hairpin","id":"hairpin"}        (device B to device A's mapping, through the NAT)

Classification (RFC 4787 section 4): one local socket asks (host1,port1), (host1,port2) and
(host2,port1) for its mapped address: all equal = EIM ("endpoint-independent"), equal for the same
host = ADM ("address-dependent"), else APDM ("address-and-port-dependent"). A fresh socket that
has only talked to (host1,port1) asks for replies from (host1,port1) [control], (host1,port2) and
(host2,*): a reply from host2 = EIF, else one from port2 = ADF, else APDF. No control reply: "blocked".
Hairpin (RFC 4787 REQ-9): device B sends to device A's mapped address; A receiving it =
hairpinning. It takes two hosts: the kernel drops a packet whose source and destination address
are equal after the DNAT (two sockets of one host).
"""
from __future__ import annotations

import argparse
import heapq
import json
import select
import socket
import sys
import time

MAX_SERVE_S = 3600  # a forgotten server exits by itself


# ------------------------------------------------------------------------------------------------
# server
# ------------------------------------------------------------------------------------------------
def serve(addr: str, ports: list[int], partner: tuple[str, int] | None, max_s: float) -> None:
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((addr, port))
        socks.append(s)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind((addr, ports[0]))
    tcp.listen(16)
    print("ready", flush=True)

    pending: list[tuple[float, int, int, bytes, tuple[str, int]]] = []  # (due, seq, sock idx, data, to)
    seq = 0
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        now = time.monotonic()
        while pending and pending[0][0] <= now:
            _, _, idx, data, to = heapq.heappop(pending)
            try:
                socks[idx].sendto(data, to)
            except OSError:
                pass
        wait = min(1.0, pending[0][0] - now) if pending else 1.0
        readable, _, _ = select.select(socks + [tcp], [], [], max(0.0, wait))
        for s in readable:
            if s is tcp:
                _answer_tcp(tcp)
                continue
            try:
                data, src = s.recvfrom(2048)
                msg = json.loads(data)
            except (OSError, ValueError):
                continue
            idx = socks.index(s)
            here = f"{addr}:{ports[idx]}"
            op = msg.get("op")
            if op == "map":
                s.sendto(_mapped(msg, src, here), src)
            elif op == "reply":
                how = msg.get("from", "same")
                due = time.monotonic() + float(msg.get("delay_ms", 0)) / 1000.0
                if how == "host" and partner is not None:
                    fwd = json.dumps({"op": "send", "id": msg.get("id"),
                                      "to": f"{src[0]}:{src[1]}"}).encode()
                    seq += 1
                    heapq.heappush(pending, (due, seq, idx, fwd, partner))
                elif how in ("same", "port"):
                    out_idx = idx if how == "same" or len(socks) < 2 else 1 - idx
                    out_here = f"{addr}:{ports[out_idx]}"
                    seq += 1
                    heapq.heappush(pending, (due, seq, out_idx, _mapped(msg, src, out_here), src))
            elif op == "send":
                host, _, port = str(msg.get("to", "")).rpartition(":")
                try:
                    s.sendto(_mapped(msg, (host, int(port)), here), (host, int(port)))
                except (OSError, ValueError):
                    pass


def _mapped(msg: dict, src: tuple[str, int], here: str) -> bytes:
    return json.dumps({"id": msg.get("id"), "mapped": f"{src[0]}:{src[1]}", "server": here}).encode()


def _answer_tcp(listener: socket.socket) -> None:
    try:
        conn, src = listener.accept()
    except OSError:
        return
    with conn:
        conn.settimeout(2.0)
        try:
            conn.recv(256)
            conn.sendall(json.dumps({"mapped": f"{src[0]}:{src[1]}"}).encode() + b"\n")
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# client
# ------------------------------------------------------------------------------------------------
class _Client:
    def __init__(self):
        self.next_id = 0

    def socket(self, port: int = 0) -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        return s

    def request(self, s, dest, op: dict, tries: int = 3, wait_s: float = 0.4) -> dict | None:
        """Sends op (with a fresh id) until the answer with that id arrives; None if none did."""
        self.next_id += 1
        rid = self.next_id
        data = json.dumps({**op, "id": rid}).encode()
        for _ in range(tries):
            try:
                s.sendto(data, dest)
            except OSError:
                return None  # e.g. no route: the uplink is down
            reply = _receive(s, {rid}, wait_s)
            if rid in reply:
                return reply[rid]
        return None


def _receive(s, ids: set, wait_s: float) -> dict:
    """Collects replies carrying one of `ids` until all arrived or wait_s passed."""
    got = {}
    deadline = time.monotonic() + wait_s
    while len(got) < len(ids):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        r, _, _ = select.select([s], [], [], left)
        if not r:
            break
        try:
            data, src = s.recvfrom(2048)
            msg = json.loads(data)
        except (OSError, ValueError):
            continue
        if msg.get("id") in ids:
            got[msg["id"]] = {**msg, "src": f"{src[0]}:{src[1]}"}
    return got


def classify(server1: str, server2: str, ports: list[int], wait_s: float, tcp: bool) -> dict:
    c = _Client()
    p1, p2 = ports
    out: dict = {}

    # mapping: one socket, three destinations
    s = c.socket()
    out["local"] = f"{_local_addr(server1)}:{s.getsockname()[1]}"
    mapped = {}
    for key, dest in (("h1p1", (server1, p1)), ("h1p2", (server1, p2)), ("h2p1", (server2, p1))):
        r = c.request(s, dest, {"op": "map"})
        mapped[key] = r["mapped"] if r else None
    s.close()
    out["mapped"] = mapped
    if any(v is None for v in mapped.values()):
        out["mapping"] = "blocked"
    elif mapped["h1p1"] == mapped["h1p2"] == mapped["h2p1"]:
        out["mapping"] = "EIM"
    elif mapped["h1p1"] == mapped["h1p2"]:
        out["mapping"] = "ADM"
    else:
        out["mapping"] = "APDM"

    # filtering: a fresh socket that only ever talks to (server1, p1)
    s = c.socket()
    control = c.request(s, (server1, p1), {"op": "reply", "from": "same"})
    if control is None:
        out["filtering"] = "blocked"
    else:
        ids = {}
        for how in ("port", "host"):
            c.next_id += 1
            ids[c.next_id] = how
            s.sendto(json.dumps({"op": "reply", "from": how, "id": c.next_id}).encode(), (server1, p1))
        got = _receive(s, set(ids), wait_s)
        came = {ids[i] for i in got}
        out["filtering_replies"] = sorted(came)
        out["filtering"] = "EIF" if "host" in came else "ADF" if "port" in came else "APDF"
        # Host 2 has just sent to this mapping unsolicited (what an early hole-punch packet
        # does). Talking to host 2 now must still use the same mapping on an EIM NAT: a router
        # that let that packet create state for itself would have to pick another port.
        out["mapped_before_host2"] = control["mapped"]
        after = c.request(s, (server2, p1), {"op": "map"})
        out["mapped_after_unsolicited"] = after["mapped"] if after else None
    s.close()

    if tcp:
        out["tcp"] = _tcp_ok(server1, p1)
    return out


def hairpin_recv(server1: str, p1: int, wait_s: float) -> None:
    """Prints this socket's mapped address (one JSON line), then waits for a hairpinned packet."""
    c = _Client()
    s = c.socket()
    r = c.request(s, (server1, p1), {"op": "map"})
    print(json.dumps({"mapped": r["mapped"] if r else None}), flush=True)
    got = _receive(s, {"hairpin"}, wait_s) if r else {}
    print(json.dumps({"hairpin": "hairpin" in got, "from": got.get("hairpin", {}).get("src")}))


def hairpin_send(server1: str, p1: int, to: tuple[str, int]) -> dict:
    """Creates a mapping (so the NAT knows this socket), then sends to `to` (another device's
    mapped address at the same NAT) a few times."""
    c = _Client()
    s = c.socket()
    r = c.request(s, (server1, p1), {"op": "map"})
    for _ in range(3):
        s.sendto(json.dumps({"op": "hairpin", "id": "hairpin"}).encode(), to)
        time.sleep(0.05)  # spacing, not synchronisation: three tries against a lost first packet
    return {"mapped": r["mapped"] if r else None}


def _tcp_ok(server: str, port: int) -> bool:
    try:
        with socket.create_connection((server, port), timeout=2.0) as conn:
            conn.settimeout(2.0)
            conn.sendall(b"map\n")
            return b"mapped" in conn.recv(256)
    except OSError:
        return False


def map_once(server1: str, p1: int, tries: int = 3, local_port: int = 0) -> dict:
    """The mapped address of one fresh socket as seen by (server1, p1); None when unreachable.
    local_port != 0 binds that port (the lab's address discovery probes from the port a peer
    will use next), and the socket is closed before returning so the peer can bind it."""
    c = _Client()
    s = c.socket(local_port)
    try:
        local = f"{_local_addr(server1)}:{s.getsockname()[1]}"
        r = c.request(s, (server1, p1), {"op": "map"}, tries=tries)
    finally:
        s.close()
    return {"mapped": r["mapped"] if r else None, "local": local}


def delayed(server1: str, p1: int, delay_ms: int) -> dict:
    """One fresh socket, one request: the reply comes delay_ms later from the same server port."""
    c = _Client()
    s = c.socket()
    first = c.request(s, (server1, p1), {"op": "map"})
    if first is None:
        return {"delay_ms": delay_ms, "mapped": None, "delayed_reply": False}
    c.next_id += 1
    rid = c.next_id
    s.sendto(json.dumps({"op": "reply", "from": "same", "delay_ms": delay_ms, "id": rid}).encode(),
             (server1, p1))
    got = _receive(s, {rid}, delay_ms / 1000.0 + 1.0)
    return {"delay_ms": delay_ms, "mapped": first["mapped"], "delayed_reply": rid in got}


def _local_addr(toward: str) -> str:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect((toward, 9))
            return s.getsockname()[0]
    except OSError:
        return "0.0.0.0"


# ------------------------------------------------------------------------------------------------
# command line
# ------------------------------------------------------------------------------------------------
def _ports(text: str) -> list[int]:
    try:
        ports = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"ports must be two integers P1,P2 (got {text!r})") from None
    if len(ports) != 2 or not all(1 <= p <= 65535 for p in ports) or ports[0] == ports[1]:
        raise argparse.ArgumentTypeError(f"ports must be two distinct ports P1,P2 (got {text!r})")
    return ports


def _endpoint(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        socket.inet_aton(host)
        return host, int(port)
    except (OSError, ValueError):
        raise argparse.ArgumentTypeError(f"expected IPv4:PORT (got {text!r})") from None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m netns.probe")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--addr", required=True)
    sv.add_argument("--ports", type=_ports, required=True)
    sv.add_argument("--partner", type=_endpoint)
    sv.add_argument("--max-s", type=float, default=MAX_SERVE_S)
    cl = sub.add_parser("classify")
    cl.add_argument("--server1", required=True)
    cl.add_argument("--server2", required=True)
    cl.add_argument("--ports", type=_ports, required=True)
    cl.add_argument("--wait-s", type=float, default=0.5)
    cl.add_argument("--tcp", action="store_true")
    dl = sub.add_parser("delayed")
    dl.add_argument("--server1", required=True)
    dl.add_argument("--ports", type=_ports, required=True)
    dl.add_argument("--delay-ms", type=int, required=True)
    mp = sub.add_parser("map")
    mp.add_argument("--server1", required=True)
    mp.add_argument("--ports", type=_ports, required=True)
    mp.add_argument("--local-port", type=int, default=0, help="bind this UDP port (default: any)")
    hr = sub.add_parser("hairpin-recv")
    hr.add_argument("--server1", required=True)
    hr.add_argument("--ports", type=_ports, required=True)
    hr.add_argument("--wait-s", type=float, default=5.0)
    hs = sub.add_parser("hairpin-send")
    hs.add_argument("--server1", required=True)
    hs.add_argument("--ports", type=_ports, required=True)
    hs.add_argument("--to", type=_endpoint, required=True)
    args = ap.parse_args(argv)
    try:
        if args.cmd == "serve":
            serve(args.addr, args.ports, args.partner, args.max_s)
        elif args.cmd == "classify":
            print(json.dumps(classify(args.server1, args.server2, args.ports, args.wait_s,
                                      args.tcp)))
        elif args.cmd == "map":
            if not 0 <= args.local_port <= 65535:
                ap.error(f"--local-port must be 0..65535 (got {args.local_port})")
            print(json.dumps(map_once(args.server1, args.ports[0], local_port=args.local_port)))
        elif args.cmd == "hairpin-recv":
            hairpin_recv(args.server1, args.ports[0], args.wait_s)
        elif args.cmd == "hairpin-send":
            print(json.dumps(hairpin_send(args.server1, args.ports[0], args.to)))
        else:
            print(json.dumps(delayed(args.server1, args.ports[0], args.delay_ms)))
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())

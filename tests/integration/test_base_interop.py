"""Randomised parity tests: our CLI (build/release/bin/irohlab) vs the real Rust iroh 1.0.2.

Every test draws its cases from `rng` (seeded from --seed and the test name, see conftest.py), runs
our CLI once or a few times per case, and sends ALL Rust questions of the test in ONE oracle batch
(interop/rust_oracle.mjs). Failures are collected per test and reported together with the exact
inputs, so one run shows every discrepancy, not just the first.

Random cases per run: keys 100, tickets 200, id text forms 300, mutated ticket blobs 400 (plus fixed
edge cases) — about 5 s against a release build.
"""
from __future__ import annotations

import ipaddress
import json

import pytest

import _wire as W

N_KEYS = 100
N_TICKETS = 200
N_ID_TEXTS = 300
N_MUTATIONS = 400

SPEC_ID = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"


def _report(problems: list[str], seed: int, what: str, total: int):
    if problems:
        shown = "\n\n".join(problems[:40])
        more = f"\n\n… and {len(problems) - 40} more" if len(problems) > 40 else ""
        pytest.fail(
            f"{len(problems)} discrepancies in {total} {what} cases (seed {seed}):\n\n{shown}{more}",
            pytrace=False,
        )


def _rand_hex(rng, n: int) -> str:
    return bytes(rng.getrandbits(8) for _ in range(n)).hex()


def _random_case(rng, s: str) -> str:
    """Randomly upper/lower-case every letter of s."""
    return "".join(c.upper() if rng.random() < 0.5 else c.lower() for c in s)


# =============================================================================================
# keys and signatures
# =============================================================================================
def _pick_corruption(rng) -> tuple[str, int]:
    kind = rng.choice(["bitflip", "bitflip", "s_plus_l", "wrong_message", "wrong_key", "small_order_r", "zero_s"])
    return kind, rng.getrandbits(32)


def _corrupt(kind: str, param: int, id_hex: str, message_hex: str, sig_hex: str, other_id: str):
    """Returns (id, message_hex, signature_hex) that no correct (strict) verifier may accept."""
    sig = bytearray.fromhex(sig_hex)
    if kind == "bitflip":
        bit = param % 512
        sig[bit // 8] ^= 1 << (bit % 8)
        return id_hex, message_hex, sig.hex()
    if kind == "s_plus_l":  # non-canonical S: same scalar mod L, rejected by verify_strict
        s = int.from_bytes(sig[32:], "little") + W.ED25519_L
        return id_hex, message_hex, (bytes(sig[:32]) + s.to_bytes(32, "little")).hex()
    if kind == "wrong_message":
        m = bytearray.fromhex(message_hex)
        if m and param % 2:
            m[param % len(m)] ^= 1 << (param % 8)
        else:
            m.append(param & 0xFF)
        return id_hex, m.hex(), sig_hex
    if kind == "wrong_key":
        return other_id, message_hex, sig_hex
    if kind == "small_order_r":  # R = identity point
        return id_hex, message_hex, ("01" + "00" * 31) + sig_hex[64:]
    return id_hex, message_hex, sig_hex[:64] + "00" * 32  # zero_s


def test_keys_and_signatures(cli, rust_oracle, rng, seed):
    cases = []
    for i in range(N_KEYS):
        secret = bytes(rng.getrandbits(8) for _ in range(32))
        if i == 0:
            secret = bytes(range(32))
        mlen = rng.choice([0, 1, 5, 32, rng.randrange(0, 300)])
        message = _rand_hex(rng, mlen)
        form = rng.choice(["hex", "base32", "BASE32", "Base32"])
        if form == "hex":
            secret_text = secret.hex()
        elif form == "base32":
            secret_text = W.b32_id(secret)
        elif form == "BASE32":
            secret_text = W.b32_id(secret).upper()
        else:
            secret_text = _random_case(rng, W.b32_id(secret))
        cases.append(dict(secret=secret.hex(), secret_text=secret_text, message=message))

    problems = []
    # ---- ours: key show + key sign
    for c in cases:
        show = cli.json("key", "show", c["secret_text"], "--json")
        c["ours_show"] = show
        if rng.random() < 0.5:
            sig = cli.line("key", "sign", c["secret_text"], "--message-hex", c["message"])
            c["ours_sig"] = sig
        else:
            j = cli.json("key", "sign", c["secret_text"], "--message-hex", c["message"], "--json")
            c["ours_sig"] = j.get("signature")
            if j.get("id") != show.get("id"):
                problems.append(f"key sign --json id {j.get('id')!r} != key show id {show.get('id')!r} for secret {c['secret_text']}")

    # ---- one oracle batch: Rust derives id + signs; Rust verifies our signature and a corruption of it
    reqs = []
    for i, c in enumerate(cases):
        our_id = str(c["ours_show"].get("id"))
        other = str(cases[(i + 1) % len(cases)]["ours_show"].get("id"))
        c["other_id"] = other
        c["corruption"] = _pick_corruption(rng)
        sig = str(c["ours_sig"])
        if len(sig) != 128 or any(ch not in "0123456789abcdef" for ch in sig):
            problems.append(f"our signature is not 128 lowercase hex chars: {sig!r} (secret {c['secret_text']})")
            sig = "00" * 64
        cid, cmsg, csig = _corrupt(*c["corruption"], our_id, c["message"], sig, other)
        reqs.append({"op": "key", "secret": c["secret"], "message": c["message"]})
        reqs.append({"op": "verify", "id": our_id, "message": c["message"], "signature": str(c["ours_sig"])})
        reqs.append({"op": "verify", "id": cid, "message": cmsg, "signature": csig})
    res = rust_oracle(reqs)

    for i, c in enumerate(cases):
        rkey, rverify, rcorrupt = res[3 * i : 3 * i + 3]
        m = c["message"]
        tag = f"secret={c['secret']} (given as {c['secret_text']!r}) message={m if len(m) <= 80 else m[:80] + f'… ({len(m) // 2} bytes)'}"
        assert rkey["ok"], f"oracle failed on a valid secret: {rkey} {tag}"
        show = c["ours_show"]
        idb = bytes.fromhex(rkey["id"])
        expect = {
            "id": rkey["id"],
            "base32": W.b32_id(idb),
            "z32": W.z32_id(idb),
            "tls_name": W.tls_name(idb),
            "short": rkey["short"],
        }
        for k, v in expect.items():
            if show.get(k) != v:
                problems.append(f"key show --json [{k}]: ours {show.get(k)!r} != expected {v!r}; {tag}")
        if c["ours_sig"] != rkey["signature"]:
            problems.append(f"signature: ours {c['ours_sig']!r} != Rust {rkey['signature']!r}; {tag}")
        if not rverify["ok"]:
            problems.append(f"Rust rejects OUR signature {c['ours_sig']!r}: {rverify.get('error')}; {tag}")
        kind = c["corruption"][0]
        if rcorrupt["ok"]:
            problems.append(f"Rust ACCEPTS corrupted signature ({kind}): {reqs[3 * i + 2]}")

        # ---- ours verifies Rust's signature, and the corruption of it
        p = cli.run("key", "verify", rkey["id"], rkey["signature"], "--message-hex", c["message"])
        if p.returncode != 0 or p.stdout.count("\n") > 1:
            problems.append(f"our key verify rejects Rust's signature; {tag}{cli.describe(p)}")
        cid, cmsg, csig = _corrupt(*c["corruption"], rkey["id"], c["message"], rkey["signature"], c["other_id"])
        p = cli.run("key", "verify", cid, csig, "--message-hex", cmsg)
        if p.returncode != 1 or p.stdout != "" or len(p.stderr.splitlines()) != 1:
            problems.append(
                f"our key verify on corrupted signature ({kind}) must exit 1 with one stderr line{cli.describe(p)}"
            )
    _report(problems, seed, "key/signature", len(cases))


def test_signature_verification_edge_cases(cli, rust_oracle, seed):
    """Fixed verify_strict edge cases: small-order / non-canonical keys must be rejected like Rust."""
    sk = bytes(range(32)).hex()
    msg = b"hello".hex()
    good_sig = (
        "e1a7fca94a835127885b99e2eba733d6ee5bf5dc463ed8385eb6f1dcaa1117c0"
        "f151750a10f46f5b3796a91203578f702c85c67c334b5689a516284d499f710f"
    )
    cases = [(SPEC_ID, msg, good_sig, "spec §1.2 signature")]
    # small-order / weird public keys with an all-zero-ish signature (R=identity, S=0): a
    # non-strict verifier accepts identity-key + identity-R + S=0 for any message.
    for name, h in W.EDGE_IDS.items():
        cases.append((h, msg, "01" + "00" * 63, f"edge id {name}, R=identity S=0"))
        cases.append((h, "", "01" + "00" * 63, f"edge id {name}, R=identity S=0, empty msg"))
    res = rust_oracle(
        [{"op": "key", "secret": sk, "message": msg}]
        + [{"op": "verify", "id": i, "message": m, "signature": s} for i, m, s, _ in cases]
    )
    assert res[0]["signature"] == good_sig
    problems = []
    for (i, m, s, name), r in zip(cases, res[1:]):
        p = cli.run("key", "verify", i, s, "--message-hex", m)
        ours_ok = p.returncode == 0
        if ours_ok != r["ok"] or p.returncode not in (0, 1):
            problems.append(f"{name}: Rust ok={r['ok']} ({r.get('error')}); ours{cli.describe(p)}")
    _report(problems, seed, "verify edge", len(cases))


# =============================================================================================
# tickets
# =============================================================================================
_LABEL_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789"


def _random_label(rng) -> str:
    n = rng.randrange(1, 12)
    s = [rng.choice(_LABEL_CHARS) for _ in range(n)]
    if n > 2 and rng.random() < 0.3:
        s[rng.randrange(1, n - 1)] = "-"
    return "".join(s)


def _random_ipv6(rng) -> ipaddress.IPv6Address:
    kind = rng.random()
    if kind < 0.12:
        return ipaddress.IPv6Address("::1")
    if kind < 0.18:
        return ipaddress.IPv6Address("::")
    if kind < 0.35:
        return ipaddress.IPv6Address("::ffff:" + str(ipaddress.IPv4Address(rng.getrandbits(32))))
    groups = [rng.getrandbits(16) for _ in range(8)]
    if rng.random() < 0.6:  # a run of zeros, so compression kicks in
        a = rng.randrange(8)
        b = rng.randrange(a, 8)
        for k in range(a, b + 1):
            groups[k] = 0
    if rng.random() < 0.3:  # sprinkle single zero groups
        groups[rng.randrange(8)] = 0
    return ipaddress.IPv6Address(int("".join(f"{g:04x}" for g in groups), 16))


def _ipv6_text(rng, ip: ipaddress.IPv6Address) -> str:
    """A random valid textual form of ip (all accepted by Rust's Ipv6Addr::from_str)."""
    form = rng.random()
    if ip.ipv4_mapped is not None and form < 0.5:
        t = "::ffff:" + str(ip.ipv4_mapped)
    elif form < 0.6:
        t = ip.compressed
    elif form < 0.8:
        t = ip.exploded
    else:
        t = ":".join(f"{int(g, 16):x}" for g in ip.exploded.split(":"))  # no leading zeros, uncompressed
    return t.upper() if rng.random() < 0.15 else t


def _random_port(rng) -> int:
    return rng.choice([0, 1, 80, 443, 65535, rng.randrange(65536), rng.randrange(65536), rng.randrange(1024, 65536)])


def _random_addr(rng) -> tuple[str, str]:
    """Returns (text given to both sides, canonical key for de-duplication)."""
    port = _random_port(rng)
    if rng.random() < 0.5:
        ip4 = ipaddress.IPv4Address(rng.choice([rng.getrandbits(32), 0x7F000001, 0, 0xFFFFFFFF, 0xC0A80105]))
        return f"{ip4}:{port}", f"4/{int(ip4)}/{port}"
    ip6 = _random_ipv6(rng)
    return f"[{_ipv6_text(rng, ip6)}]:{port}", f"6/{int(ip6)}/{port}"


def _random_relay(rng) -> str:
    scheme = rng.choice(["http", "https"])
    if rng.random() < 0.2:
        scheme = _random_case(rng, scheme)
    h = rng.random()
    if h < 0.15:
        host = str(ipaddress.IPv4Address(rng.getrandbits(32)))
    elif h < 0.25:
        host = f"[{_ipv6_text(rng, _random_ipv6(rng))}]"
    else:
        labels = [_random_label(rng) for _ in range(rng.randrange(1, 4))]
        labels.append(rng.choice(["com", "org", "example", "iroh", "link", "net"]))
        host = ".".join(labels)
        if rng.random() < 0.4:
            host = _random_case(rng, host)
        if rng.random() < 0.2:
            host += "."
    p = rng.random()
    default = 80 if scheme.lower() == "http" else 443
    if p < 0.4:
        port = ""
    elif p < 0.6:
        port = f":{default}"
    elif p < 0.7:
        port = f":{443 if default == 80 else 80}"  # the *other* scheme's default: kept
    else:
        port = f":{rng.randrange(1, 65536)}"
    path = "/" if rng.random() < 0.5 else ""
    return f"{scheme}://{host}{port}{path}"


def _respell_relay(rng, url: str) -> str:
    """Another spelling of the same relay URL (normalises to the same string)."""
    scheme, rest = url.split("://", 1)
    out = f"{_random_case(rng, scheme)}://{rest}"
    if out.endswith("/"):
        out = out[:-1]
    elif rng.random() < 0.5:
        out += "/"
    return out


def _random_ticket_case(rng, i: int) -> dict:
    edge = list(W.EDGE_IDS.values())
    if i < len(edge):
        id_hex = edge[i]
    elif i == len(edge):
        id_hex = SPEC_ID
    else:
        id_hex = W.random_point_bytes(rng).hex()
    nrel = rng.choice([0, 0, 1, 1, 1, 2, 3, 4])
    relays = [_random_relay(rng) for _ in range(nrel)]
    if len(relays) >= 2 and rng.random() < 0.3:
        relays[-1] = _respell_relay(rng, relays[0])  # duplicate after normalisation
    naddr = rng.choice([0, 1, 1, 2, 3, 4])
    addrs = [_random_addr(rng)[0] for _ in range(naddr)]
    if addrs and rng.random() < 0.25:
        addrs.append(rng.choice(addrs))  # exact duplicate
    rng.shuffle(addrs)
    rng.shuffle(relays)
    # custom addresses (our CLI only; Rust's JS binding cannot build them, but Rust must parse and
    # re-encode our ticket unchanged): iroh 1.0.x form, inline <= 30 data bytes, heap above
    customs = []
    if rng.random() < 0.25:
        cid = rng.choice([0, 1, rng.getrandbits(8), rng.getrandbits(64)])
        for _ in range(rng.randrange(1, 4)):
            if rng.random() < 0.5:
                cid = rng.choice([0, 1, rng.getrandbits(8), rng.getrandbits(64)])
            data = _rand_hex(rng, rng.choice([0, 1, 29, 30, 31, 32, rng.randrange(0, 45)]))
            customs.append(f"{cid:x}_{data}")
        if rng.random() < 0.2:
            customs.append(customs[0])
    # random interleaving of the flags on our command line
    flags = [("--relay", r) for r in relays] + [("--addr", a) for a in addrs] + [("--custom", c) for c in customs]
    rng.shuffle(flags)
    return dict(id=id_hex, relays=relays, addrs=addrs, customs=customs, flags=flags)


def test_tickets(cli, rust_oracle, rng, seed):
    cases = [_random_ticket_case(rng, i) for i in range(N_TICKETS)]
    problems = []

    # ---- ours: encode
    for c in cases:
        args = ["ticket", "encode", "--id", c["id"]]
        for f, v in c["flags"]:
            args += [f, v]
        p = cli.run(*args)
        c["ours_p"] = p
        c["ours"] = p.stdout.strip() if p.returncode == 0 else None
        c["cmd"] = args

    # ---- one oracle batch
    reqs, idx = [], []
    for c in cases:
        c["req_from_addr"] = None
        if len(c["relays"]) <= 1 and not c["customs"]:
            c["req_from_addr"] = len(reqs)
            reqs.append({"op": "ticket_from_addr", "id": c["id"], "relay": (c["relays"] or [None])[0], "addrs": c["addrs"]})
        c["req_relays"] = []
        for r in c["relays"]:  # each relay individually: does Rust accept it at all?
            c["req_relays"].append(len(reqs))
            reqs.append({"op": "ticket_from_addr", "id": c["id"], "relay": r, "addrs": []})
        c["req_parse_ours"] = None
        if c["ours"] is not None:
            c["req_parse_ours"] = len(reqs)
            reqs.append({"op": "ticket_parse", "ticket": c["ours"]})
    res = rust_oracle(reqs)

    for c in cases:
        tag = f"inputs: id={c['id']} relays={c['relays']} addrs={c['addrs']} custom={c['customs']}\n  our command: {c['cmd']}"
        rust_accepts = all(res[k]["ok"] for k in c["req_relays"])
        rfa = res[c["req_from_addr"]] if c["req_from_addr"] is not None else None
        if rfa is not None:
            rust_accepts = rust_accepts and rfa["ok"]
        if not rust_accepts:
            errs = [res[k].get("error") for k in c["req_relays"]] + ([rfa.get("error")] if rfa else [])
            problems.append(f"(generator) Rust rejected a generated input: {errs}\n  {tag}")
            continue
        if c["ours"] is None:
            problems.append(f"our ticket encode failed on input Rust accepts\n  {tag}{cli.describe(c['ours_p'])}")
            continue
        # (a) byte-identical tickets for <= 1 relay
        if rfa is not None and rfa["ticket"] != c["ours"]:
            problems.append(
                f"(a) ticket mismatch\n  Rust: {rfa['ticket']}\n  ours: {c['ours']}\n  Rust blob: {rfa['blob']}\n  {tag}"
            )
        # (b) Rust re-encoding of our ticket is our ticket
        rp = res[c["req_parse_ours"]]
        if not rp["ok"]:
            problems.append(f"(b) Rust cannot parse our ticket {c['ours']}: {rp['error']}\n  {tag}")
        elif rp["reencoded"] != c["ours"]:
            problems.append(
                f"(b) Rust re-encodes our ticket differently\n  ours:  {c['ours']}\n  Rust:  {rp['reencoded']}\n"
                f"  Rust blob: {rp['blob']}\n  {tag}"
            )
        # (c) our decode of Rust's ticket (<=1 relay) / of our own ticket (any count)
        if rfa is not None:
            d = cli.json("ticket", "decode", rfa["ticket"], "--json")
            want = dict(id=rfa["id"], relays=[rfa["relay"]] if rfa["relay"] else [], addrs=sorted(rfa["addrs"]), ticket=rfa["ticket"])
            got = dict(id=d.get("id"), relays=d.get("relays"), addrs=sorted(d.get("addrs") or []), ticket=d.get("ticket"))
            if got != want or d.get("custom", []) != []:
                problems.append(f"(c) our decode of Rust's ticket {rfa['ticket']}\n  ours: {d}\n  Rust: {want}\n  {tag}")
        if rp["ok"] and (len(c["relays"]) > 1 or c["customs"]):
            d = cli.json("ticket", "decode", c["ours"], "--json")
            want = dict(id=rp["id"], relays=sorted(rp["relays"]), addrs=sorted(rp["addrs"]), custom=sorted(set(c["customs"])))
            got = dict(id=d.get("id"), relays=sorted(d.get("relays") or []), addrs=sorted(d.get("addrs") or []),
                       custom=sorted(d.get("custom") or []))
            if got != want:
                problems.append(f"(c) our decode of our multi-relay ticket {c['ours']}\n  ours: {d}\n  Rust: {want}\n  {tag}")
    _report(problems, seed, "ticket", len(cases))


def test_mutated_ticket_blobs(cli, rust_oracle, rng, seed):
    """Random byte-level mutations of valid blobs: ours accepts iff Rust accepts, and then decodes
    to the same id / relays / addrs and the same canonical re-encoding."""
    bases = [
        W.blob(SPEC_ID, []),
        W.blob(SPEC_ID, [W.relay_entry("https://relay.example.com/"), W.ip_entry("127.0.0.1:1234")]),
        W.blob(SPEC_ID, [W.relay_entry("http://127.0.0.1:3340/"), W.ip_entry("192.168.1.5:7777"), W.ip_entry("[::1]:4433")]),
        W.blob(SPEC_ID, [W.relay_entry("https://a.b/"), W.relay_entry("https://c.d:8443/"), W.ip_entry("[2001:db8::1]:65535"),
                         b"\x02\x05\x00\x02ab" + bytes(28), b"\x02\x06\x01\x1f" + bytes(range(31))]),
    ]
    cases = []
    for _ in range(N_MUTATIONS):
        b = bytearray(rng.choice(bases))
        ops = []
        for _ in range(rng.choice([1, 1, 2, 3])):
            k = rng.random()
            if k < 0.5 and b:
                i = rng.randrange(len(b))
                b[i] = rng.getrandbits(8) if rng.random() < 0.5 else b[i] ^ (1 << rng.randrange(8))
                ops.append(f"set[{i}]={b[i]:02x}")
            elif k < 0.7:
                i = rng.randrange(len(b) + 1)
                b.insert(i, rng.getrandbits(8))
                ops.append(f"insert[{i}]={b[i]:02x}")
            elif k < 0.85 and b:
                i = rng.randrange(len(b))
                del b[i]
                ops.append(f"delete[{i}]")
            else:
                n = rng.randrange(len(b) + 1)
                b = b[:n]
                ops.append(f"truncate({n})")
        cases.append((W.ticket(bytes(b)), bytes(b).hex(), ops))
    res = rust_oracle([{"op": "ticket_parse", "ticket": t} for t, _, _ in cases])
    problems, accepted = [], 0
    for (t, bh, ops), r in zip(cases, res):
        p = cli.run("ticket", "decode", t, "--json")
        if r["ok"]:
            accepted += 1
            try:
                d = json.loads(p.stdout) if p.returncode == 0 else None
            except json.JSONDecodeError:
                d = None
            want = dict(id=r["id"], relays=sorted(r["relays"]), addrs=sorted(r["addrs"]), ticket=r["reencoded"])
            got = d and dict(id=d.get("id"), relays=sorted(d.get("relays") or []), addrs=sorted(d.get("addrs") or []),
                             ticket=d.get("ticket"))
            if got != want:
                problems.append(f"blob {bh} ({ops}): Rust accepts → {want}\n  ours → {got}{cli.describe(p)}")
        elif p.returncode != 2 or p.stdout != "" or len(p.stderr.splitlines()) != 1:
            problems.append(f"blob {bh} ({ops}): Rust rejects ({r['error']}); ours must exit 2{cli.describe(p)}")
    _report(problems, seed, "mutated blob", len(cases))
    assert accepted >= len(cases) // 20, f"only {accepted} of {len(cases)} mutations were valid: generator too destructive"


# Relay URL spellings beyond the random generator: every one is sent to Rust, and our CLI must
# accept exactly the same set and produce the same ticket (WHATWG URL normalisation parity).
RELAY_EDGE_CASES = [
    "http://EXAMPLE.com:80", "https://example.com:443/", "https://example.com:80", "http://example.com.:8080",
    "http://[0:0::1]", "http://[FE80::1]:443", "http://[::ffff:1.2.3.4]/", "https://1.2.3.4.:443",
    "http://0x7f.1", "http://127.1", "https://a.b/path", "https://a.b/?q", "https://a.b/#f",
    "https://user:pw@a.b/", "https://a.b:65536/", "https://a.b:0", "https://xn--bcher-kva.example/",
    "https://bücher.example/", "https://a_b.c/", "https:a.b", "https:///a.b", "https://a.b:/",
    "HTTPS://A.B", "https://a b/", "https://%41.com/", "https://a.b/%7e", "https://a.b\\c", "ftp://x/",
    "not a url", "https://", "relay.example.com", "https://relay.example.com:443:443",
]


def test_relay_url_edge_cases(cli, rust_oracle, seed):
    cases = RELAY_EDGE_CASES
    # also: a hand-made blob whose relay string is NOT normalised (Rust re-parses it on decode)
    raw_blobs = ["HTTPS://A.COM:443", "https://a.com", "http://[0:0::1]:80/x/../y", "https://A.com./"]
    raw_tickets = [W.ticket(W.blob(SPEC_ID, [W.relay_entry(u)])) for u in raw_blobs]
    res = rust_oracle(
        [{"op": "ticket_from_addr", "id": SPEC_ID, "relay": u, "addrs": []} for u in cases]
        + [{"op": "ticket_parse", "ticket": t} for t in raw_tickets]
    )
    problems = []
    for u, r in zip(cases, res):
        p = cli.run("ticket", "encode", "--id", SPEC_ID, "--relay", u)
        if r["ok"]:
            if p.returncode != 0 or p.stdout.strip() != r["ticket"]:
                problems.append(f"--relay {u!r}: Rust → {r['ticket']} (relay {r['relay']!r}){cli.describe(p)}")
        elif p.returncode != 2:
            problems.append(f"--relay {u!r}: Rust rejects ({r['error']}), ours must exit 2{cli.describe(p)}")
    for u, t, r in zip(raw_blobs, raw_tickets, res[len(cases):]):
        p = cli.run("ticket", "decode", t, "--json")
        if not r["ok"]:
            if p.returncode != 2:
                problems.append(f"blob relay {u!r}: Rust rejects ({r['error']}); ours{cli.describe(p)}")
            continue
        try:
            d = json.loads(p.stdout) if p.returncode == 0 else None
        except json.JSONDecodeError:
            d = None
        if d is None or d.get("relays") != r["relays"] or d.get("ticket") != r["reencoded"]:
            problems.append(f"blob relay {u!r}: Rust → relays {r['relays']} reencoded {r['reencoded']}{cli.describe(p)}")
    _report(problems, seed, "relay URL", len(cases) + len(raw_blobs))


ADDR_TEXT_CASES = [
    "1.2.3.4:080", "1.2.3.4:+80", "01.2.3.4:80", "[::FFFF:1.2.3.4]:5", "[0:0:0:0:0:0:0:1]:5", "[::1%2]:5",
    "[fe80::1%eth0]:5", "1.2.3.4:", "1.2.3.4:65535", "1.2.3.4:65536", "1.2.3.4:0", "[::]:0",
    "[::ffff:102:304]:1", "[::1.2.3.4]:1", "[1:0:0:1:0:0:0:1]:1", "[2001:db8:0:0:1:0:0:1]:1", " 1.2.3.4:5",
    "1.2.3.4:5 ", "1.2.3.4:00000000080", "[::1]:5x", "256.1.1.1:1", "1.2.3:4", "::1:5", "[::1]", "1.2.3.4",
    "host:80", "localhost:80", "[1::2::3]:4", "[12345::]:1", "0x7f.0.0.1:1", "1.2.3.4:-1",
    # Rust's SocketAddr parser: any number of leading zeros in the port, and a numeric u32 IPv6
    # scope id (`%N`, dropped on the wire) are accepted
    "1.2.3.4:000080", "1.2.3.4:0065535", "1.2.3.4:0065536", "[::1%0]:5", "[::1%4294967295]:5",
    "[::1%4294967296]:5", "[::1%]:5", "[::1%02]:5", "[::ffff:1.2.3.4%7]:5", "[::1%-1]:5", "[::1%+1]:5",
]


def test_addr_text_edge_cases(cli, rust_oracle, seed):
    """--addr parsing parity with Rust's SocketAddr::from_str (accept set and resulting bytes)."""
    res = rust_oracle([{"op": "ticket_from_addr", "id": SPEC_ID, "relay": None, "addrs": [a]} for a in ADDR_TEXT_CASES])
    problems = []
    for a, r in zip(ADDR_TEXT_CASES, res):
        p = cli.run("ticket", "encode", "--id", SPEC_ID, "--addr", a)
        if r["ok"]:
            if p.returncode != 0 or p.stdout.strip() != r["ticket"]:
                problems.append(f"--addr {a!r}: Rust accepts → {r['addrs']} {r['ticket']}{cli.describe(p)}")
        elif p.returncode != 2:
            problems.append(f"--addr {a!r}: Rust rejects ({r['error']}), ours must exit 2{cli.describe(p)}")
    _report(problems, seed, "address text", len(ADDR_TEXT_CASES))


# =============================================================================================
# EndpointId text forms (d)
# =============================================================================================
_MUTATION_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=+/ _.:é\u0131"


def _id_text_variants(rng, b: bytes) -> list[tuple[str, str]]:
    hexs = b.hex()
    b32 = W.b32_id(b)
    base = {
        "hex": hexs,
        "HEX": hexs.upper(),
        "MiXeD hex": _random_case(rng, hexs),
        "base32": b32,
        "BASE32": b32.upper(),
        "MiXeD base32": _random_case(rng, b32),
        "z-base-32": W.z32_id(b),
        "base32hex": W.tls_name(b).split(".")[0],
    }
    out = []
    kind = rng.choice(list(base) + ["truncated", "changed", "extra", "trailing-bits", "padded", "short-hex", "31 bytes", "33 bytes", "whitespace"])
    src_name = rng.choice(["hex", "base32", "BASE32"])
    src = base[src_name]
    if kind in base:
        out.append((kind, base[kind]))
    elif kind == "truncated":
        out.append((f"{src_name} truncated", src[: rng.randrange(0, len(src))]))
    elif kind == "changed":
        i = rng.randrange(len(src))
        ch = rng.choice(_MUTATION_CHARS)
        out.append((f"{src_name} char {i} → {ch!r}", src[:i] + ch + src[i + 1 :]))
    elif kind == "extra":
        i = rng.randrange(1, len(src) + 1)
        out.append((f"{src_name} extra char at {i}", src[:i] + rng.choice(_MUTATION_CHARS) + src[i:]))
    elif kind == "trailing-bits":
        # base32 of 32 bytes has 4 unused bits in the last char; set some of them
        last = "abcdefghijklmnopqrstuvwxyz234567".index(b32[-1]) | rng.randrange(1, 16)
        out.append(("base32 non-zero trailing bits", b32[:-1] + "abcdefghijklmnopqrstuvwxyz234567"[last]))
    elif kind == "padded":
        out.append(("base32 with = padding", b32 + "===="))
    elif kind == "short-hex":
        out.append(("63-char hex", hexs[:63]))
    elif kind == "31 bytes":
        out.append(("base32 of 31 bytes", W.b32_id(b[:31])))
    elif kind == "33 bytes":
        out.append(("base32 of 33 bytes", W.b32_id(b + b"\x00")))
    else:
        out.append(("leading/trailing space", rng.choice([" ", ""]) + src + rng.choice([" ", "\t", ""])))
    return out


def test_id_text_parsing(cli, rust_oracle, rng, seed):
    texts = []
    for name, h in W.EDGE_IDS.items():
        b = bytes.fromhex(h)
        texts += [(f"edge {name} hex", h), (f"edge {name} base32", W.b32_id(b))]
    for _ in range(N_ID_TEXTS):
        b = W.random_point_bytes(rng) if rng.random() < 0.8 else W.random_non_point_bytes(rng)
        texts += _id_text_variants(rng, b)
    # our CLI takes the string as an argv word: it can't start with '-' (flag) and can't hold NUL
    texts = [(n, t) for n, t in texts if not t.startswith("-") and "\0" not in t]
    res = rust_oracle([{"op": "id_parse", "text": t} for _, t in texts])
    problems = []
    accepted = 0
    for (name, t), r in zip(texts, res):
        p = cli.run("id", "show", t, "--json")
        if r["ok"]:
            accepted += 1
            try:
                got = json.loads(p.stdout).get("id") if p.returncode == 0 else None
            except json.JSONDecodeError:
                got = None
            if got != r["id"]:
                problems.append(f"{name}: {t!r} Rust accepts as {r['id']}{cli.describe(p)}")
        elif p.returncode != 2 or p.stdout != "" or len(p.stderr.splitlines()) != 1:
            problems.append(f"{name}: {t!r} Rust rejects ({r['error']}); ours must exit 2 w/ one stderr line{cli.describe(p)}")
    _report(problems, seed, "id text", len(texts))
    # sanity: the generator must exercise both outcomes
    assert accepted >= len(texts) // 10 and accepted <= len(texts) - len(texts) // 10, (accepted, len(texts))

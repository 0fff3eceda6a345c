"""Malformed input: our CLI must exit 2 with exactly one `irohlab: error: …` line on stderr and
nothing on stdout — and, for every ticket / id case, the real Rust iroh must reject it too.

A second table lists "accepted quirks": inputs that look wrong but that Rust accepts (trailing
bytes after the blob, any address order, duplicates, upper-case body, non-minimal varints,
un-normalised relay strings, …). Both must accept them and decode them to the same value.

All Rust verdicts of this module come from ONE oracle batch (module-scoped fixture).
"""
from __future__ import annotations

import base64

import pytest

import _wire as W

ID = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
SK = bytes(range(32)).hex()
# 32 bytes that are not an edwards25519 point: Rust's EndpointId.fromBytes throws
# "data is not a valid public key" (found by random search through the oracle; re-checked below).
NON_POINT = "ba6d133a3a5287ab13d9165c7364f233ab1f4309aac72a43a370d555ca29bdd7"

A = W.blob(ID, [])  # spec Example A blob
A_BODY = W.b32(A)
IDB = bytes.fromhex(ID)

# (name, ticket string) — Rust must reject, ours must exit 2 on `ticket decode`
BAD_TICKETS = [
    ("prefix Endpoint", "Endpoint" + A_BODY),
    ("prefix ENDPOINT", "ENDPOINT" + A_BODY),
    ("prefix node (old NodeTicket)", "node" + A_BODY),
    ("prefix missing", A_BODY),
    ("prefix endpoin", "endpoin" + A_BODY),
    ("leading space", " " + W.ticket(A)),
    ("trailing newline", W.ticket(A) + "\n"),
    ("base32 char 1", "endpoint" + A_BODY[:10] + "1" + A_BODY[11:]),
    ("base32 char 8", "endpoint" + A_BODY[:10] + "8" + A_BODY[11:]),
    ("base32 char 0", "endpoint" + A_BODY[:10] + "0" + A_BODY[11:]),
    ("base32 = padding", "endpoint" + base64.b32encode(A).decode().lower()),
    ("base32 impossible length", "endpoint" + A_BODY[:-1]),
    ("truncated body (id intact, count missing)", "endpoint" + A_BODY[:-2]),
    ("body one char", "endpointa"),
    ("empty body", "endpoint"),
    ("empty string", ""),
    ("non-zero trailing bits", "endpoint" + W.b32_with_trailing_bits(A)),
    ("TicketWireFormat variant 01", W.ticket(W.blob(ID, [], version=1))),
    ("TicketWireFormat variant 0x80 0x01 (=128)", W.ticket(b"\x80\x01" + IDB + b"\x00")),
    ("TransportAddr variant 3", W.ticket(W.blob(ID, [b"\x03"]))),
    ("SocketAddr variant 2", W.ticket(W.blob(ID, [b"\x01\x02" + bytes(4) + b"\x05"]))),
    ("relay invalid UTF-8", W.ticket(W.blob(ID, [W.relay_entry(b"https://\xff.com/")]))),
    ("relay not a URL", W.ticket(W.blob(ID, [W.relay_entry("not a url")]))),
    ("relay empty string", W.ticket(W.blob(ID, [W.relay_entry("")]))),
    ("relay with NUL in host", W.ticket(W.blob(ID, [W.relay_entry("https://a\x00b/")]))),
    ("relay port 65536", W.ticket(W.blob(ID, [W.relay_entry("https://a.b:65536/")]))),
    ("relay length beyond blob", W.ticket(W.blob(ID, [b"\x00\x50abc"]))),
    ("relay length 2^40", W.ticket(W.blob(ID, [b"\x00" + W.varint(2**40) + b"abc"]))),
    ("truncated id", W.ticket(A[:20])),
    ("invalid curve point as id", W.ticket(W.blob(NON_POINT, []))),
    ("address count 2^32", W.ticket(W.blob(ID, [], count=2**32))),
    ("address count 2^63", W.ticket(W.blob(ID, [], count=2**63))),
    ("address count 1, no entries", W.ticket(W.blob(ID, [], count=1))),
    ("varint overflow (count 2^64)", W.ticket(W.blob(ID, [], count=2**64))),
    ("varint overflow (11 bytes)", W.ticket(A[:-1] + b"\xff" * 10 + b"\x01")),
    ("truncated port", W.ticket(W.blob(ID, [b"\x01\x00\x01\x02\x03\x04\x80"]))),
    ("port missing", W.ticket(W.blob(ID, [b"\x01\x00\x01\x02\x03\x04"]))),
    ("port 65536 (3-byte varint)", W.ticket(W.blob(ID, [b"\x01\x00" + bytes(4) + b"\x80\x80\x04"]))),
    ("port 4-byte varint", W.ticket(W.blob(ID, [b"\x01\x00" + bytes(4) + b"\x80\x80\x80\x00"]))),
    ("IPv6 truncated", W.ticket(W.blob(ID, [b"\x01\x01" + bytes(10)]))),
    ("IPv6 tag with IPv4 body", W.ticket(W.blob(ID, [b"\x01\x01" + bytes(4) + b"\x05"]))),
    ("two tickets concatenated", W.ticket(A) + A_BODY),
]

# (name, id text) — `id show` must exit 2 and Rust's EndpointId::from_str must reject
BAD_IDS = [
    ("uppercase hex", ID.upper()),
    ("mixed-case hex", ID[:32] + ID[32:].upper()),
    ("63-char hex", ID[:63]),
    ("65-char hex", ID + "0"),
    ("hex with 0x prefix", "0x" + ID[:62]),
    ("base32 of 31 bytes", W.b32_id(IDB[:31])),
    ("base32 of 33 bytes", W.b32_id(IDB + b"\x00")),
    ("base32 non-zero trailing bits", W.b32_id(IDB)[:-1] + "b"),
    ("base32 with padding", W.b32_id(IDB) + "===="),
    ("z-base-32", W.z32_id(IDB)),
    ("empty string", ""),
    ("invalid curve point (hex)", NON_POINT),
    ("invalid curve point (base32)", W.b32_id(bytes.fromhex(NON_POINT))),
    ("trailing space", ID + " "),
]

# (name, argv) — pure CLI-level errors (no Rust counterpart)
BAD_ARGV = [
    ("secret key 31 bytes", ["key", "show", SK[:62]]),
    ("secret key 33 bytes", ["key", "show", SK + "00"]),
    ("secret key uppercase hex", ["key", "show", SK.upper()]),
    ("secret key not hex/base32", ["key", "show", "hello"]),
    ("key sign odd message hex", ["key", "sign", SK, "--message-hex", "abc"]),
    ("key sign non-hex message", ["key", "sign", SK, "--message-hex", "zz"]),
    ("key sign missing --message-hex value", ["key", "sign", SK, "--message-hex"]),
    ("key verify 63-byte signature", ["key", "verify", ID, "00" * 63, "--message-hex", ""]),
    ("key verify non-hex signature", ["key", "verify", ID, "zz" * 64, "--message-hex", ""]),
    ("key verify bad id", ["key", "verify", ID.upper(), "00" * 64, "--message-hex", ""]),
    ("key verify non-point id", ["key", "verify", NON_POINT, "00" * 64, "--message-hex", ""]),
    ("--addr without port", ["ticket", "encode", "--id", ID, "--addr", "1.2.3.4"]),
    ("--addr port 99999", ["ticket", "encode", "--id", ID, "--addr", "1.2.3.4:99999"]),
    ("--addr IPv6 without port", ["ticket", "encode", "--id", ID, "--addr", "[::1]"]),
    ("--addr IPv6 unbracketed", ["ticket", "encode", "--id", ID, "--addr", "::1:80"]),
    ("--addr hostname", ["ticket", "encode", "--id", ID, "--addr", "host:80"]),
    ("--addr empty", ["ticket", "encode", "--id", ID, "--addr", ""]),
    ("--relay not a url", ["ticket", "encode", "--id", ID, "--relay", "not a url"]),
    ("--relay empty", ["ticket", "encode", "--id", ID, "--relay", ""]),
    ("--custom without _", ["ticket", "encode", "--id", ID, "--custom", "12"]),
    ("--custom non-hex data", ["ticket", "encode", "--id", ID, "--custom", "1_zz"]),
    ("--id non-point", ["ticket", "encode", "--id", NON_POINT]),
    ("--id uppercase hex", ["ticket", "encode", "--id", ID.upper()]),
    ("ticket encode missing --id", ["ticket", "encode", "--addr", "1.2.3.4:5"]),
    ("--relay missing value", ["ticket", "encode", "--id", ID, "--relay"]),
    ("unknown flag", ["ticket", "encode", "--id", ID, "--bogus"]),
    ("unknown flag on decode", ["ticket", "decode", W.ticket(A), "--frobnicate"]),
    ("ticket decode missing arg", ["ticket", "decode"]),
    ("key show missing arg", ["key", "show"]),
    ("id show missing arg", ["id", "show"]),
    ("id show extra arg", ["id", "show", ID, ID]),
    ("unknown subcommand", ["frobnicate"]),
    ("unknown key subcommand", ["key", "frobnicate"]),
    ("no arguments", []),
]

# (name, ticket string) — Rust ACCEPTS these; ours must accept them too and decode the same value
ACCEPTED_QUIRKS = [
    ("upper-case body", "endpoint" + A_BODY.upper()),
    ("mixed-case body", "endpoint" + A_BODY[:20].upper() + A_BODY[20:]),
    ("trailing bytes after blob", W.ticket(A + b"\x00\x01")),
    ("100 trailing 0xff bytes", W.ticket(A + b"\xff" * 100)),
    ("addresses in reverse order", W.ticket(W.blob(ID, [
        W.ip_entry("[::1]:1"), W.ip_entry("9.9.9.9:9"), W.ip_entry("1.2.3.4:5"),
        W.relay_entry("https://b.com/"), W.relay_entry("https://a.com/")]))),
    ("IPs before relay", W.ticket(W.blob(ID, [W.ip_entry("127.0.0.1:1234"), W.relay_entry("https://relay.example.com/")]))),
    ("V4 ordered by port not by varint bytes", W.ticket(W.blob(ID, [W.ip_entry("1.1.1.1:128"), W.ip_entry("1.1.1.1:127")]))),
    ("duplicate IPv4", W.ticket(W.blob(ID, [W.ip_entry("1.2.3.4:5"), W.ip_entry("1.2.3.4:5")]))),
    ("duplicate IPv6", W.ticket(W.blob(ID, [W.ip_entry("[::1]:5"), W.ip_entry("[::1]:5"), W.ip_entry("[::1]:6")]))),
    ("duplicate relay", W.ticket(W.blob(ID, [W.relay_entry("https://a.com/"), W.relay_entry("https://a.com/")]))),
    ("relays equal after normalisation", W.ticket(W.blob(ID, [W.relay_entry("https://a.com/"), W.relay_entry("HTTPS://A.com:443")]))),
    ("un-normalised relay string", W.ticket(W.blob(ID, [W.relay_entry("HTTPS://Relay.Example.COM:443")]))),
    ("relay with path and query", W.ticket(W.blob(ID, [W.relay_entry("https://a.b/x/../y?q#f")]))),
    ("ftp relay", W.ticket(W.blob(ID, [W.relay_entry("ftp://x/")]))),
    ("non-minimal varint port", W.ticket(W.blob(ID, [b"\x01\x00\x01\x02\x03\x04\x85\x00"]))),
    ("port 65535 as 3-byte varint", W.ticket(W.blob(ID, [b"\x01\x00" + bytes(4) + b"\xff\xff\x03"]))),
    ("non-minimal varint count", W.ticket(b"\x00" + IDB + b"\x81\x00" + W.ip_entry("1.2.3.4:5"))),
    ("non-minimal varint wire variant", W.ticket(b"\x80\x00" + IDB + b"\x00")),
    ("non-minimal TransportAddr variant", W.ticket(W.blob(ID, [b"\x81\x00\x00" + bytes(4) + b"\x05"]))),
    ("IPv4-mapped IPv6 stays V6", W.ticket(W.blob(ID, [W.ip_entry("[::ffff:1.2.3.4]:5"), W.ip_entry("1.2.3.4:5")]))),
    ("small-order id (identity)", W.ticket(W.blob("01" + "00" * 31, []))),
    ("non-canonical id y=p", W.ticket(W.blob("ed" + "ff" * 30 + "7f", []))),
    ("custom addr, iroh 1.0.x inline form", W.ticket(W.blob(ID, [W.ip_entry("1.2.3.4:5"), b"\x02\x01\x00\x03" + b"abc" + bytes(27)]))),
]


@pytest.fixture(scope="module")
def rust_verdicts(rust_oracle):
    reqs = (
        [{"op": "ticket_parse", "ticket": t} for _, t in BAD_TICKETS]
        + [{"op": "id_parse", "text": t} for _, t in BAD_IDS]
        + [{"op": "ticket_parse", "ticket": t} for _, t in ACCEPTED_QUIRKS]
        + [{"op": "id_from_bytes", "bytes": NON_POINT}]
    )
    res = rust_oracle(reqs)
    n1, n2 = len(BAD_TICKETS), len(BAD_IDS)
    return {
        "tickets": dict(zip((n for n, _ in BAD_TICKETS), res[:n1])),
        "ids": dict(zip((n for n, _ in BAD_IDS), res[n1 : n1 + n2])),
        "quirks": dict(zip((n for n, _ in ACCEPTED_QUIRKS), res[n1 + n2 : -1])),
        "non_point": res[-1],
    }


def _assert_usage_error(cli, p):
    assert p.returncode == 2, "expected exit 2" + cli.describe(p)
    assert p.stdout == "", "expected nothing on stdout" + cli.describe(p)
    lines = p.stderr.splitlines()
    assert len(lines) == 1 and lines[0].strip(), "expected exactly one non-empty stderr line" + cli.describe(p)
    assert lines[0].startswith("irohlab: error: ") and len(lines[0]) > len("irohlab: error: "), (
        "stderr must be 'irohlab: error: <reason>'" + cli.describe(p)
    )


def test_non_point_is_rejected_by_rust(rust_verdicts):
    r = rust_verdicts["non_point"]
    assert not r["ok"] and "not a valid public key" in r["error"], r
    assert not W.is_edwards_point(bytes.fromhex(NON_POINT))


@pytest.mark.parametrize("name,ticket", BAD_TICKETS, ids=[n for n, _ in BAD_TICKETS])
def test_bad_ticket(cli, rust_verdicts, name, ticket):
    r = rust_verdicts["tickets"][name]
    assert not r["ok"], f"Rust ACCEPTS {ticket!r} (decodes to {r}); move it to ACCEPTED_QUIRKS"
    p = cli.run("ticket", "decode", ticket, "--json")
    _assert_usage_error(cli, p)
    p = cli.run("ticket", "decode", ticket)
    _assert_usage_error(cli, p)


@pytest.mark.parametrize("name,text", BAD_IDS, ids=[n for n, _ in BAD_IDS])
def test_bad_id(cli, rust_verdicts, name, text):
    r = rust_verdicts["ids"][name]
    assert not r["ok"], f"Rust ACCEPTS id {text!r} as {r.get('id')}"
    _assert_usage_error(cli, cli.run("id", "show", text, "--json"))
    _assert_usage_error(cli, cli.run("ticket", "encode", "--id", text))


@pytest.mark.parametrize("name,argv", BAD_ARGV, ids=[n for n, _ in BAD_ARGV])
def test_bad_argv(cli, name, argv):
    _assert_usage_error(cli, cli.run(*argv))


@pytest.mark.parametrize("name,ticket", ACCEPTED_QUIRKS, ids=[n for n, _ in ACCEPTED_QUIRKS])
def test_accepted_quirk(cli, rust_verdicts, name, ticket):
    r = rust_verdicts["quirks"][name]
    assert r["ok"], f"Rust rejects {ticket!r}: {r.get('error')} (not a quirk; move it to BAD_TICKETS)"
    d = cli.json("ticket", "decode", ticket, "--json")
    assert d.get("id") == r["id"], (name, d, r)
    assert sorted(d.get("relays") or []) == sorted(r["relays"]), (name, d, r)
    assert sorted(d.get("addrs") or []) == sorted(r["addrs"]), (name, d, r)
    if "custom" not in name:
        # custom addresses: Rust 1.0.2 keeps them in the 1.0.x blob form; our canonical form may
        # differ by design (spec §2.2 VERSION NOTE), so only the re-encoding of the rest is compared
        assert d.get("ticket") == r["reencoded"], (name, d, r)
        assert d.get("custom", []) == []
    else:
        assert d.get("custom") == ["1_616263"], (name, d)

"""Acceptance checks for the irohlab CLI against the fixed vectors of spec iroh-wire.md §1.2 / §2.4."""
from __future__ import annotations

import pytest

import _wire as W

SK_SEQ = bytes(range(32)).hex()  # 000102…1f
ID_SEQ = "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8"
SIG_HELLO = (
    "e1a7fca94a835127885b99e2eba733d6ee5bf5dc463ed8385eb6f1dcaa1117c0"
    "f151750a10f46f5b3796a91203578f702c85c67c334b5689a516284d499f710f"
)

EXAMPLE_A = "endpointaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qaa"
EXAMPLE_B = (
    "endpointaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qaqadjuhi5dqom5c6l3smvwgc6jomv4gc3lqnrss4y3pnuxqcad7aaaaduqj"
)
EXAMPLE_C = (
    "endpointaab2cb576phbbpq5odorrz2lycmwpzgwgcn2kdk7dxoimzaskuy3qayaczuhi5dqhixs6mjsg4xdalrqfyytumztgqyc6aiaycuacbpbhqaqcaaaaaaaaaaaaaaaaaaaaaaaaaorei"
)
UPSTREAM_ID = "ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6"
UPSTREAM_BLOB = bytes.fromhex(
    "00" + UPSTREAM_ID + "02" + "00" + "10" + "687474703a2f2f646572702e6d652e2f" + "01" + "00" + "7f000001" + "8008"
)
UPSTREAM_TICKET = W.ticket(UPSTREAM_BLOB)

KEY_FIELDS = ("id", "base32", "z32", "tls_name", "short")


# ---------------------------------------------------------------------------------------------
# keys
# ---------------------------------------------------------------------------------------------
def test_key_show_spec_vector(cli):
    j = cli.json("key", "show", SK_SEQ, "--json")
    assert j.get("id") == ID_SEQ
    assert j.get("z32") == "yqooxx9u3aemh8mo5wcqq16yufu6jitouq1o4za751dger1igghy"
    assert j.get("base32") == "aoqqpp7tzyil4hlq3umoos6atft6jvrqtosq2xy53sdgiesvgg4a"
    assert j.get("tls_name") == "0eggffvjpo8bs7bgrkceeiu0j5ju9lhgjeigqnotri3684il66s0.iroh.invalid"
    assert j.get("short") == ID_SEQ[:10]


def test_key_show_base32_secret_equals_hex_secret(cli):
    by_hex = cli.json("key", "show", SK_SEQ, "--json")
    b32 = W.b32_id(bytes(range(32)))
    assert cli.json("key", "show", b32, "--json") == by_hex
    assert cli.json("key", "show", b32.upper(), "--json") == by_hex


@pytest.mark.parametrize(
    "secret,pk,tls",
    [
        ("00" * 32, "3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29",
         "7dl2ff6emqi2qol3l382krodedij45bn3nh479hqo14a32qpr8kg.iroh.invalid"),
        ("2a" * 32, "197f6b23e16c8532c6abc838facd5ea789be0c76b2920334039bfa8b3d368d61", None),
    ],
    ids=["sk=0", "sk=0x2a"],
)
def test_key_show_other_vectors(cli, secret, pk, tls):
    j = cli.json("key", "show", secret, "--json")
    assert j.get("id") == pk
    assert j.get("tls_name") == (tls or W.tls_name(bytes.fromhex(pk)))


def test_key_sign_spec_vector(cli):
    assert cli.line("key", "sign", SK_SEQ, "--message-hex", b"hello".hex()) == SIG_HELLO
    j = cli.json("key", "sign", SK_SEQ, "--message-hex", b"hello".hex(), "--json")
    assert j == {"id": ID_SEQ, "signature": SIG_HELLO}


def test_key_verify_spec_vector(cli):
    ok = cli.run("key", "verify", ID_SEQ, SIG_HELLO, "--message-hex", b"hello".hex())
    assert ok.returncode == 0, cli.describe(ok)
    bad = cli.run("key", "verify", ID_SEQ, SIG_HELLO, "--message-hex", b"hellO".hex())
    assert bad.returncode == 1, cli.describe(bad)
    assert bad.stdout == "" and len(bad.stderr.splitlines()) == 1 and bad.stderr.strip(), cli.describe(bad)


def test_id_show_matches_key_show(cli):
    by_key = cli.json("key", "show", SK_SEQ, "--json")
    assert cli.json("id", "show", ID_SEQ, "--json") == by_key
    assert cli.json("id", "show", by_key["base32"], "--json") == by_key
    assert cli.json("id", "show", by_key["base32"].upper(), "--json") == by_key


def test_key_generate(cli, rust_oracle):
    a = cli.json("key", "generate", "--json")
    b = cli.json("key", "generate", "--json")
    assert isinstance(a, dict), a
    secret_field = next((k for k in ("secret", "secret_key", "secret_hex") if k in a), None)
    assert secret_field, f"key generate --json has no secret field: {sorted(a)}"
    assert a[secret_field] != b[secret_field], "two generated keys are identical"
    shows = []
    for g in (a, b):
        show = cli.json("key", "show", g[secret_field], "--json")
        for k in KEY_FIELDS:
            if k in g:
                assert g[k] == show.get(k), f"key generate [{k}] {g[k]!r} != key show {show.get(k)!r}"
        assert g.get("id") == show.get("id")
        shows.append(show)
    # and Rust derives the same id from the generated secrets
    res = rust_oracle([{"op": "key", "secret": g[secret_field], "message": ""} for g in (a, b)])
    for g, r, show in zip((a, b), res, shows):
        assert r["ok"], r
        assert r["id"] == show["id"]


# ---------------------------------------------------------------------------------------------
# tickets
# ---------------------------------------------------------------------------------------------
ENCODE_EXAMPLES = [
    ("A", [], EXAMPLE_A),
    ("B", ["--relay", "https://relay.example.com", "--addr", "127.0.0.1:1234"], EXAMPLE_B),
    ("C", ["--relay", "http://127.0.0.1:3340", "--addr", "[::1]:4433", "--addr", "192.168.1.5:7777"], EXAMPLE_C),
    ("C, flags reordered", ["--addr", "192.168.1.5:7777", "--relay", "http://127.0.0.1:3340", "--addr", "[::1]:4433"], EXAMPLE_C),
]


@pytest.mark.parametrize("name,flags,expected", ENCODE_EXAMPLES, ids=[e[0] for e in ENCODE_EXAMPLES])
def test_ticket_encode_examples(cli, name, flags, expected):
    assert cli.line("ticket", "encode", "--id", ID_SEQ, *flags) == expected


def test_ticket_encode_upstream_vector(cli):
    assert cli.line("ticket", "encode", "--id", UPSTREAM_ID, "--relay", "http://derp.me.", "--addr", "127.0.0.1:1024") == UPSTREAM_TICKET


DECODE_EXAMPLES = [
    ("A", EXAMPLE_A, ID_SEQ, [], []),
    ("B", EXAMPLE_B, ID_SEQ, ["https://relay.example.com/"], ["127.0.0.1:1234"]),
    ("C", EXAMPLE_C, ID_SEQ, ["http://127.0.0.1:3340/"], ["192.168.1.5:7777", "[::1]:4433"]),
    ("upstream", UPSTREAM_TICKET, UPSTREAM_ID, ["http://derp.me./"], ["127.0.0.1:1024"]),
]


@pytest.mark.parametrize("name,ticket,id_hex,relays,addrs", DECODE_EXAMPLES, ids=[e[0] for e in DECODE_EXAMPLES])
def test_ticket_decode_examples(cli, name, ticket, id_hex, relays, addrs):
    j = cli.json("ticket", "decode", ticket, "--json")
    assert j.get("id") == id_hex
    assert j.get("relays") == relays
    assert sorted(j.get("addrs") or []) == sorted(addrs)
    assert j.get("custom", []) == []
    assert j.get("ticket") == ticket


def test_ticket_examples_agree_with_rust(rust_oracle):
    """Guards the vectors themselves: Rust parses each example and re-encodes it unchanged."""
    res = rust_oracle([{"op": "ticket_parse", "ticket": t} for _, t, *_ in DECODE_EXAMPLES])
    for (name, t, id_hex, relays, addrs), r in zip(DECODE_EXAMPLES, res):
        assert r["ok"], (name, r)
        assert (r["id"], r["relays"], sorted(r["addrs"]), r["reencoded"]) == (id_hex, relays, sorted(addrs), t), name


def test_ticket_custom_addr_roundtrip(cli):
    """--custom round-trips through our own decoder (format: "<id hex>_<data hex>", spec §2.4)."""
    t = cli.line("ticket", "encode", "--id", ID_SEQ, "--custom", "1_a1b2c3d4e5f6", "--custom", "deadbeef_0102", "--custom", "0_")
    j = cli.json("ticket", "decode", t, "--json")
    assert sorted(j.get("custom") or []) == sorted(["1_a1b2c3d4e5f6", "deadbeef_0102", "0_"])
    assert j.get("ticket") == t


# ---------------------------------------------------------------------------------------------
# --help
# ---------------------------------------------------------------------------------------------
HELP_COMMANDS = [
    [],
    ["key"],
    ["key", "generate"],
    ["key", "show"],
    ["key", "sign"],
    ["key", "verify"],
    ["id"],
    ["id", "show"],
    ["ticket"],
    ["ticket", "decode"],
    ["ticket", "encode"],
]


@pytest.mark.parametrize("cmd", HELP_COMMANDS, ids=[" ".join(c) or "top" for c in HELP_COMMANDS])
def test_help(cli, cmd):
    p = cli.run(*cmd, "--help")
    assert p.returncode == 0, cli.describe(p)
    assert p.stdout.strip(), "help text expected on stdout" + cli.describe(p)
    assert p.stderr == "", cli.describe(p)

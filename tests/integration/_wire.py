"""Independent (Python, stdlib-only) builders for EndpointTicket blobs and strings.

Used by the integration tests to craft valid and deliberately malformed tickets byte by byte
(spec iroh-wire.md §2). Nothing here is "the implementation under test": it only produces inputs,
and every verdict is taken from our CLI and from the real Rust iroh (interop/rust_oracle.mjs).
"""
from __future__ import annotations

import base64
import ipaddress

PREFIX = "endpoint"


def varint(n: int) -> bytes:
    """postcard unsigned LEB128."""
    if n < 0:
        raise ValueError(n)
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pstr(s: str | bytes) -> bytes:
    b = s.encode("utf-8") if isinstance(s, str) else s
    return varint(len(b)) + b


def relay_entry(url: str | bytes) -> bytes:
    return b"\x00" + pstr(url)


def ip_entry(sockaddr: str) -> bytes:
    """'1.2.3.4:5' or '[::1]:5' → TransportAddr::Ip postcard bytes."""
    host, _, port = sockaddr.rpartition(":")
    ip = ipaddress.ip_address(host.strip("[]"))
    fam = b"\x00" if ip.version == 4 else b"\x01"
    return b"\x01" + fam + ip.packed + varint(int(port))


def blob(id_hex: str, entries: list[bytes], count: int | None = None, version: int = 0) -> bytes:
    return (
        varint(version)
        + bytes.fromhex(id_hex)
        + varint(len(entries) if count is None else count)
        + b"".join(entries)
    )


def b32(data: bytes) -> str:
    """RFC 4648 base32, no padding, lowercase (the ticket body form)."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def ticket(data: bytes) -> str:
    return PREFIX + b32(data)


def b32_with_trailing_bits(data: bytes) -> str | None:
    """Base32 of `data` with the unused low bits of the last character set to 1 (non-canonical).

    Returns None if len(data) % 5 == 0 (no unused bits)."""
    s = b32(data)
    rem = len(data) % 5
    if rem == 0:
        return None
    unused = {1: 2, 2: 4, 3: 1, 4: 3}[rem]
    alphabet = "abcdefghijklmnopqrstuvwxyz234567"
    v = alphabet.index(s[-1]) | ((1 << unused) - 1)
    return s[:-1] + alphabet[v]


# ---------------------------------------------------------------------------------------------
# EndpointId helpers (spec §1)
# ---------------------------------------------------------------------------------------------
_P = 2**255 - 19
_D = (-121665 * pow(121666, _P - 2, _P)) % _P


def is_edwards_point(pk: bytes) -> bool:
    """True iff `pk` decompresses like curve25519-dalek's CompressedEdwardsY::decompress.

    dalek accepts non-canonical y (y >= p, reduced mod p), small-order points and "negative zero"
    x; it only rejects encodings where x^2 = (y^2 - 1) / (d*y^2 + 1) has no square root."""
    assert len(pk) == 32
    y = int.from_bytes(pk, "little") & ((1 << 255) - 1)
    y %= _P
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    x2 = u * pow(v, _P - 2, _P) % _P
    return x2 == 0 or pow(x2, (_P - 1) // 2, _P) == 1


def random_point_bytes(rng) -> bytes:
    while True:
        b = bytes(rng.getrandbits(8) for _ in range(32))
        if is_edwards_point(b):
            return b


def random_non_point_bytes(rng) -> bytes:
    while True:
        b = bytes(rng.getrandbits(8) for _ in range(32))
        if not is_edwards_point(b):
            return b


_B32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_Z32 = "ybndrfg8ejkmcpqxot1uwisza345h769"
_B32HEX = "0123456789abcdefghijklmnopqrstuv"


def b32_id(b: bytes) -> str:
    """RFC 4648 base32, lowercase, no padding."""
    return base64.b32encode(b).decode().rstrip("=").lower()


def z32_id(b: bytes) -> str:
    s = base64.b32encode(b).decode().rstrip("=")
    return s.translate(str.maketrans(_B32, _Z32))


def tls_name(b: bytes) -> str:
    return base64.b32hexencode(b).decode().rstrip("=").lower() + ".iroh.invalid"


# Ed25519 group order
ED25519_L = 2**252 + 27742317777372353535851937790883648493

# Ids that stress point decoding: dalek (Rust) accepts all of them (verified with the oracle).
EDGE_IDS = {
    "y=0": "00" * 32,
    "identity": "01" + "00" * 31,
    "identity, sign bit set": "01" + "00" * 30 + "80",
    "y=-1 (order 2)": "ec" + "ff" * 30 + "7f",
    "y=-1, sign bit set": "ec" + "ff" * 31,
    "non-canonical y=p": "ed" + "ff" * 30 + "7f",
    "non-canonical y=p+1": "ee" + "ff" * 30 + "7f",
    "y=2^255-1": "ff" * 31 + "7f",
    "all ff": "ff" * 32,
    "y=0, sign bit set": "00" * 31 + "80",
}

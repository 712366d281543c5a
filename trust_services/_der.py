"""Minimal DER encoding for the hot paths (timestamp tokens, CAdES seals).

asn1crypto builds the same structures but spends ~1 ms per CMS object on generic
serialisation; these helpers write the few constructions we need directly. Every
structure built with them is parsed back by asn1crypto, OpenSSL and pyHanko in the tests.
See docs/decisions/0002-fast-cms-templates.md.
"""

from __future__ import annotations

import datetime as _dt
import functools

__all__ = [
    "TAG_CONTEXT_CONSTRUCTED",
    "bit_string",
    "boolean",
    "context",
    "decode_oid",
    "ecdsa_raw_to_der",
    "explicit",
    "generalized_time",
    "integer",
    "null",
    "octet_string",
    "oid",
    "seq",
    "set_of",
    "tlv",
    "utc_time",
    "utf8_string",
]

TAG_CONTEXT_CONSTRUCTED = 0xA0


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(body),)) + body


def tlv(tag: int, content: bytes) -> bytes:
    """Tag-length-value with a one-byte tag."""
    return bytes((tag,)) + _length(len(content)) + content


def seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


def set_of(*parts: bytes) -> bytes:
    """A DER SET OF: the elements sorted by their encodings (X.690 11.6)."""
    return tlv(0x31, b"".join(sorted(parts)))


def integer(value: int) -> bytes:
    if value == 0:
        return b"\x02\x01\x00"
    magnitude = value if value > 0 else -value - 1
    length = magnitude.bit_length() // 8 + 1
    return tlv(0x02, value.to_bytes(length, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(0x04, value)


def bit_string(value: bytes, unused_bits: int = 0) -> bytes:
    return tlv(0x03, bytes((unused_bits,)) + value)


def null() -> bytes:
    return b"\x05\x00"


def boolean(value: bool) -> bytes:
    return b"\x01\x01\xff" if value else b"\x01\x01\x00"


def utf8_string(value: str) -> bytes:
    return tlv(0x0C, value.encode("utf-8"))


@functools.lru_cache(maxsize=512)
def oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    body = bytearray()
    first = arcs[0] * 40 + arcs[1]
    for arc in [first, *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        body.extend(reversed(chunk))
    return tlv(0x06, bytes(body))


def context(number: int, content: bytes, *, constructed: bool = True) -> bytes:
    """A context-specific [number] tag around ``content`` (IMPLICIT when given raw content)."""
    return tlv((0xA0 if constructed else 0x80) | number, content)


def explicit(number: int, encoded: bytes) -> bytes:
    """[number] EXPLICIT around an already encoded element."""
    return tlv(0xA0 | number, encoded)


def generalized_time(when: _dt.datetime, *, micros: bool = True) -> bytes:
    """GeneralizedTime in UTC; DER drops trailing zeros of the fraction (X.690 11.7)."""
    when = when.astimezone(_dt.UTC)
    text = when.strftime("%Y%m%d%H%M%S")
    if micros and when.microsecond:
        text += "." + f"{when.microsecond:06d}".rstrip("0")
    return tlv(0x18, (text + "Z").encode("ascii"))


def utc_time(when: _dt.datetime) -> bytes:
    when = when.astimezone(_dt.UTC)
    if not 1950 <= when.year < 2050:
        return generalized_time(when, micros=False)
    return tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))


def ecdsa_raw_to_der(raw: bytes) -> bytes:
    """PKCS#11 returns ECDSA signatures as r||s; CMS and X.509 want Ecdsa-Sig-Value."""
    half = len(raw) // 2
    r = int.from_bytes(raw[:half], "big")
    s = int.from_bytes(raw[half:], "big")
    return seq(integer(r), integer(s))


@functools.lru_cache(maxsize=512)
def decode_oid(contents: bytes) -> str:
    """Dotted form of OBJECT IDENTIFIER content octets (raises ValueError when malformed)."""
    if not contents or contents[-1] & 0x80:
        raise ValueError("bad OID")
    arcs: list[int] = []
    value = 0
    for byte in contents:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = arcs[0]
    top = min(first // 40, 2)
    return ".".join(map(str, [top, first - 40 * top, *arcs[1:]]))

"""A small, strict DER reader (standard library only) for the CMS the contracts check.

>>> el = parse(bytes.fromhex("300602010102010a"))
>>> [int_value(c) for c in el.children()]
[1, 10]

Tag/length/value walking with bounds: definite lengths only (indefinite lengths and
non-minimal length encodings are rejected), single-byte tags only, bounded depth and
size, and every element must fill its parent exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "MAX_DER",
    "DerError",
    "Element",
    "int_value",
    "oid_value",
    "parse",
]

MAX_DER = 1024 * 1024
MAX_DEPTH = 32

SEQUENCE = 0x30
SET = 0x31
OID = 0x06
INTEGER = 0x02
OCTET_STRING = 0x04
NULL = 0x05


class DerError(ValueError):
    """Malformed or unsupported DER."""


@dataclass(frozen=True)
class Element:
    """One TLV: ``tag`` byte, the whole encoding ``raw`` and the ``content`` bytes."""

    tag: int
    raw: bytes
    content: bytes
    depth: int = 0

    @property
    def constructed(self) -> bool:
        return bool(self.tag & 0x20)

    def children(self) -> list[Element]:
        if not self.constructed:
            raise DerError(f"element with tag 0x{self.tag:02x} is not constructed")
        if self.depth >= MAX_DEPTH:
            raise DerError("DER nested too deeply")
        out: list[Element] = []
        offset = 0
        data = self.content
        while offset < len(data):
            el, offset = _read(data, offset, self.depth + 1)
            out.append(el)
        return out

    def expect(self, tag: int, what: str) -> Element:
        if self.tag != tag:
            raise DerError(f"{what}: expected tag 0x{tag:02x}, found 0x{self.tag:02x}")
        return self


def _read(data: bytes, offset: int, depth: int) -> tuple[Element, int]:
    if offset + 2 > len(data):
        raise DerError("truncated DER")
    tag = data[offset]
    if tag & 0x1F == 0x1F:
        raise DerError("multi-byte tags are not supported")
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError("indefinite length is not DER")
    else:
        n = first & 0x7F
        if n > 4 or pos + n > len(data):
            raise DerError("bad DER length")
        length = int.from_bytes(data[pos : pos + n], "big")
        if data[pos] == 0 or length < 0x80:
            raise DerError("non-minimal DER length")
        pos += n
    end = pos + length
    if end > len(data):
        raise DerError("DER length exceeds the data")
    return Element(tag, data[offset:end], data[pos:end], depth), end


def parse(data: bytes) -> Element:
    """The single DER element that fills ``data`` exactly."""
    if len(data) > MAX_DER:
        raise DerError(f"DER larger than {MAX_DER} bytes")
    el, end = _read(bytes(data), 0, 0)
    if end != len(data):
        raise DerError("trailing bytes after DER element")
    return el


def int_value(el: Element) -> int:
    el.expect(INTEGER, "INTEGER")
    if not el.content:
        raise DerError("empty INTEGER")
    if len(el.content) > 1 and (
        (el.content[0] == 0 and el.content[1] < 0x80)
        or (el.content[0] == 0xFF and el.content[1] >= 0x80)
    ):
        raise DerError("non-minimal INTEGER")
    return int.from_bytes(el.content, "big", signed=True)


def oid_value(el: Element) -> str:
    el.expect(OID, "OBJECT IDENTIFIER")
    data = el.content
    if not data or data[-1] & 0x80:
        raise DerError("bad OBJECT IDENTIFIER")
    arcs: list[int] = []
    value = 0
    arc_start = True
    for byte in data:
        if arc_start and byte == 0x80:
            raise DerError("non-minimal OBJECT IDENTIFIER arc")
        value = (value << 7) | (byte & 0x7F)
        arc_start = not byte & 0x80
        if arc_start:
            arcs.append(value)
            value = 0
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])

"""The Stub protocol the contracts are written against, modelled on Fabric's shim.

>>> key = create_composite_key("aeo", ["KZ-AEO-2025-000123"])
>>> split_composite_key(key)
('aeo', ['KZ-AEO-2025-000123'])

Composite keys use Fabric's format ``"\\x00" + type + "\\x00" + attr + "\\x00" …``; plain
range queries exclude them, as the Go and Node shims do. Reads see the state committed
before the transaction (never the transaction's own writes), as on Fabric.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "COMPOSITE_KEY_NAMESPACE",
    "MAX_UNICODE_RUNE",
    "Creator",
    "KeyModification",
    "RangeReads",
    "Stub",
    "create_composite_key",
    "partial_key_range",
    "split_composite_key",
]

COMPOSITE_KEY_NAMESPACE = "\x00"
MAX_UNICODE_RUNE = "\U0010ffff"


@dataclass(frozen=True)
class Creator:
    """The transaction's creator: MSP id and X.509 certificate (DER)."""

    msp_id: str
    certificate_der: bytes


@dataclass(frozen=True)
class KeyModification:
    """One committed change of a key, oldest first in a history."""

    tx_id: str
    timestamp: tuple[int, int]
    value: bytes
    is_delete: bool


def _check_part(part: str, what: str) -> None:
    if not isinstance(part, str):
        raise ValueError(f"composite key {what} must be a string")
    if COMPOSITE_KEY_NAMESPACE in part or MAX_UNICODE_RUNE in part:
        raise ValueError(f"composite key {what} contains U+0000 or U+10FFFF")
    try:
        part.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError(f"composite key {what} is not valid UTF-8") from None


def create_composite_key(object_type: str, attributes: Sequence[str]) -> str:
    """Fabric's composite key: ``\\x00type\\x00attr1\\x00attr2\\x00``."""
    # Every read and write builds keys, so the usual case is checked on the joined key
    # at C speed: exactly the separators' U+0000, no U+10FFFF, valid UTF-8. Anything
    # else (or a non-string part) goes through the per-part checks and their messages.
    try:
        key = "\x00".join(("", object_type, *attributes, ""))
    except TypeError:
        key = ""
    if (
        key.count("\x00") == len(attributes) + 2
        and MAX_UNICODE_RUNE not in key
        and (key.isascii() or _utf8(key))
    ):
        return key
    _check_part(object_type, "object type")
    for attr in attributes:
        _check_part(attr, "attribute")
    return "\x00" + object_type + "\x00" + "".join(a + "\x00" for a in attributes)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def split_composite_key(key: str) -> tuple[str, list[str]]:
    """The object type and attributes of a composite key."""
    if not key.startswith(COMPOSITE_KEY_NAMESPACE) or not key.endswith("\x00"):
        raise ValueError("not a composite key")
    parts = key[1:-1].split("\x00")
    return parts[0], parts[1:]


def partial_key_range(object_type: str, attributes: Sequence[str]) -> tuple[str, str]:
    """The [start, end) key range of a partial composite key query."""
    start = create_composite_key(object_type, attributes)
    return start, start + MAX_UNICODE_RUNE


class Stub(Protocol):
    """What a contract may ask of the ledger during one transaction."""

    def get_state(self, key: str) -> bytes | None: ...

    def put_state(self, key: str, value: bytes) -> None: ...

    def del_state(self, key: str) -> None: ...

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        """Keys in [start, end) in key order, without composite keys ('' = open)."""
        ...

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str: ...

    def split_composite_key(self, key: str) -> tuple[str, list[str]]: ...

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> Iterator[tuple[str, bytes]]: ...

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]: ...

    def get_creator(self) -> Creator: ...

    def get_tx_id(self) -> str: ...

    def get_tx_timestamp(self) -> tuple[int, int]: ...

    def set_event(self, name: str, payload: bytes) -> None: ...


class RangeReads:
    """The key-range half of a Stub, for stubs that implement one ``_range`` method.

    ``_range(start, end)`` yields every committed (key, value) in [start, end) in key
    order ('' end = open), composite keys included; plain range queries leave them out.
    """

    __slots__ = ()

    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        for key, value in self._range(start, end):
            if not key.startswith(COMPOSITE_KEY_NAMESPACE):
                yield key, value

    def create_composite_key(self, object_type: str, attributes: Sequence[str]) -> str:
        return create_composite_key(object_type, attributes)

    def split_composite_key(self, key: str) -> tuple[str, list[str]]:
        return split_composite_key(key)

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> Iterator[tuple[str, bytes]]:
        start, end = partial_key_range(object_type, attributes)
        return self._range(start, end)

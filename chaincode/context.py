"""Per-transaction context shared by the contracts, and argument parsing at the boundary.

>>> ctx = Context(stub)
>>> request = Fields(one_object(args), "IssueAeo")
>>> aeo_id = request.text("aeo_id", pattern=AEO_ID)

Every function takes zero or one argument: a JSON object. :class:`Fields` reads it
strictly (types, patterns, lengths, no unknown members) so that only validated values
reach the contracts, which turn them into frozen dataclasses.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Sequence
from typing import Any

from .canonical import CanonicalJsonError, canonical_json, parse_json
from .errors import BadRequest, Forbidden
from .identity import Identity, identity_of
from .stub import Stub, create_composite_key
from .timeutil import format_time, parse_time, tx_time_us

__all__ = ["EVENT_NAME", "Context", "Fields", "one_object"]

EVENT_NAME = "caravan"
MSP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
COUNTRY = re.compile(r"[A-Z]{2}\Z")
SHA256_HEX = re.compile(r"[0-9a-f]{64}\Z")


class Context:
    """The stub plus what every contract needs: who, when, which tx, and the event."""

    def __init__(self, stub: Stub) -> None:
        self.stub = stub
        self.tx_id = stub.get_tx_id()
        self.now = tx_time_us(stub.get_tx_timestamp())
        self.now_text = format_time(self.now)
        self.entries: list[dict[str, Any]] = []
        self._identity: Identity | None = None

    @property
    def identity(self) -> Identity:
        if self._identity is None:
            self._identity = identity_of(self.stub.get_creator())
        return self._identity

    def require_role(self, *roles: str) -> Identity:
        who = self.identity
        if who.role not in roles:
            raise Forbidden(
                f"role {who.role or 'none'} of {who.msp_id} may not do this "
                f"(needs {' or '.join(roles)})"
            )
        return who

    def step(self) -> dict[str, Any]:
        """Who/when/which tx, recorded with every change."""
        return {"by": self.identity.who(), "at": self.now_text, "tx_id": self.tx_id}

    # -------------------------------------------------------------- state
    def key(self, object_type: str, *attributes: str) -> str:
        # Fabric's format is a pure function (every Stub delegates to it): called directly
        return create_composite_key(object_type, attributes)

    def get(self, key: str) -> Any:
        raw = self.stub.get_state(key)
        return None if raw is None else _loads(raw)

    def view(self, key: str) -> Any:
        """Like :meth:`get`, parsed once per distinct bytes and shared: READ ONLY.

        For records that many transactions read and few change (an SEZ and its
        operators, an MRA): a pure function of the stored bytes, so deterministic.
        """
        raw = self.stub.get_state(key)
        return None if raw is None else _parsed(raw)

    def put(self, key: str, value: Any) -> None:
        self.stub.put_state(key, canonical_json(value))

    def put_canonical(self, key: str, data: bytes) -> None:
        """Store bytes that are already canonical JSON (made with canonical.ObjectLayout)."""
        self.stub.put_state(key, data)

    def scan(self, object_type: str, *attributes: str) -> Iterator[tuple[list[str], Any]]:
        for key, raw in self.stub.get_state_by_partial_composite_key(object_type, attributes):
            yield self.stub.split_composite_key(key)[1], _loads(raw)

    def scan_values(self, object_type: str, *attributes: str) -> Iterator[Any]:
        """The values of :meth:`scan`, without splitting each key."""
        for _key, raw in self.stub.get_state_by_partial_composite_key(object_type, attributes):
            yield _loads(raw)

    def emit(self, entry_type: str, **fields: Any) -> None:
        """Add a typed entry to the transaction's single event."""
        self.entries.append({"type": entry_type, **fields})

    def event_payload(self) -> bytes:
        return canonical_json({"tx_id": self.tx_id, "entries": self.entries})


@functools.lru_cache(maxsize=512)
def _parsed(raw: bytes) -> Any:
    return _loads(raw)


_DECODER: Any = json.JSONDecoder()
_SCAN = _DECODER.scan_once  # the scanner json.loads uses (its default decoder's)


def _loads(raw: bytes) -> Any:
    """``json.loads(raw)`` of a stored value, with less per-call work (every read).

    A stored object, array or string (canonical JSON: no BOM, no leading NUL, so
    json.loads would decode it as UTF-8 with surrogatepass and scan it from 0) is scanned
    directly; any other bytes, or a scan that fails or stops early, go to json.loads.
    """
    if type(raw) is bytes and len(raw) > 1 and raw[0] in b'{["' and raw[1]:
        try:
            text = raw.decode("utf-8", "surrogatepass")
            value, end = _SCAN(text, 0)
        except (ValueError, StopIteration, RecursionError):  # UnicodeDecodeError, JSONDecodeError
            return json.loads(raw)
        if end == len(text):
            return value
    return json.loads(raw)


def one_object(args: Sequence[str], *, optional: bool = False) -> Any:
    """The single JSON-object argument of a function."""
    if optional and not args:
        return {}
    if len(args) != 1:
        raise BadRequest(f"expected 1 argument (a JSON object), got {len(args)}")
    try:
        value = parse_json(args[0])
    except CanonicalJsonError as exc:
        raise BadRequest(f"argument is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise BadRequest("argument must be a JSON object")
    return value


class Fields:
    """Strict reader of a JSON object; call :meth:`done` to refuse unknown members."""

    def __init__(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            raise BadRequest(f"{where} must be a JSON object")
        self.value: dict[str, Any] = value
        self.where = where
        self.seen: set[str] = set()

    def _get(self, name: str, optional: bool) -> Any:
        self.seen.add(name)
        value = self.value.get(name)
        if value is None:  # absent or null
            if optional:
                return None
            raise BadRequest(f"{self.where}.{name} is required")
        return value

    def text(
        self,
        name: str,
        *,
        pattern: re.Pattern[str] | None = None,
        choices: Sequence[str] | None = None,
        max_len: int = 256,
    ) -> str:
        value = self._get(name, False)
        return self._check_text(name, value, pattern, choices, max_len)

    def opt_text(
        self, name: str, *, pattern: re.Pattern[str] | None = None, max_len: int = 256
    ) -> str | None:
        value = self._get(name, True)
        return None if value is None else self._check_text(name, value, pattern, None, max_len)

    def _check_text(
        self,
        name: str,
        value: Any,
        pattern: re.Pattern[str] | None,
        choices: Sequence[str] | None,
        max_len: int,
    ) -> str:
        # hot path (every text argument): the message prefix is built only on a refusal
        if not isinstance(value, str) or not value:
            raise BadRequest(f"{self.where}.{name} must be a non-empty string")
        if len(value) > max_len:
            raise BadRequest(f"{self.where}.{name} is longer than {max_len} characters")
        if choices is not None and value not in choices:
            raise BadRequest(f"{self.where}.{name} must be one of {', '.join(choices)}")
        if pattern is not None and not pattern.match(value):
            raise BadRequest(f"{self.where}.{name} {value!r} has the wrong format")
        return value

    def time(self, name: str) -> int:
        return parse_time(self._get(name, False), f"{self.where}.{name}")

    def opt_time(self, name: str) -> int | None:
        value = self._get(name, True)
        return None if value is None else parse_time(value, f"{self.where}.{name}")

    def boolean(self, name: str) -> bool:
        value = self._get(name, False)
        if not isinstance(value, bool):
            raise BadRequest(f"{self.where}.{name} must be true or false")
        return value

    def integer(self, name: str, *, minimum: int = 0) -> int:
        value = self._get(name, False)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise BadRequest(f"{self.where}.{name} must be an integer ≥ {minimum}")
        return value

    def texts(
        self,
        name: str,
        *,
        choices: Sequence[str] | None = None,
        pattern: re.Pattern[str] | None = None,
        min_items: int = 0,
        max_items: int = 64,
        unique: bool = True,
        optional: bool = False,
    ) -> tuple[str, ...]:
        value = self._get(name, optional)
        if value is None:
            return ()
        where = f"{self.where}.{name}"
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise BadRequest(f"{where} must be a list of {min_items} to {max_items} strings")
        items = tuple(self._check_text(name, v, pattern, choices, 256) for v in value)
        if unique and len(set(items)) != len(items):
            raise BadRequest(f"{where} has duplicates")
        return items

    def obj(self, name: str) -> Fields:
        return Fields(self._get(name, False), f"{self.where}.{name}")

    def objs(self, name: str, *, min_items: int = 0, max_items: int = 64) -> list[Fields]:
        value = self._get(name, False)
        where = f"{self.where}.{name}"
        if not isinstance(value, list) or not min_items <= len(value) <= max_items:
            raise BadRequest(f"{where} must be a list of {min_items} to {max_items} objects")
        return [Fields(v, f"{where}[{i}]") for i, v in enumerate(value)]

    def done(self) -> None:
        if len(self.value) > len(self.seen) or not self.seen.issuperset(self.value):
            unknown = sorted(set(self.value) - self.seen)
            raise BadRequest(f"{self.where} has unknown member(s): {', '.join(unknown)}")

"""RFC 8785 (JCS) canonical JSON with the standard library, and strict JSON parsing.

>>> canonical_json({"b": [1, True, None], "a": "é"})
b'{"a":"\\xc3\\xa9","b":[1,true,null]}'

Only the JSON values the contracts use are accepted: objects with string keys, arrays,
strings (valid Unicode, no lone surrogates), integers within ±(2**53 - 1), booleans and
null. Floats are refused: amounts and quantities are integers or decimal strings, so
every endorsing peer produces the same bytes.

Every ledger write goes through here, so the usual case is fast: one iterative pass
checks the value (:func:`_plain`) and the C encoder writes it (sorted keys,
``ensure_ascii=False``: exactly RFC 8785's escaping); anything unusual takes the recursive
reference writer, whose errors are the ones raised. :func:`parse_json` checks integers
as it parses. Records of a fixed shape written many times per transaction can be
assembled from member texts with :class:`ObjectLayout` (``chaincode.trace``).
"""

from __future__ import annotations

import hashlib
import json
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_SAFE_INTEGER",
    "CanonicalJsonError",
    "Encoded",
    "ObjectLayout",
    "canonical_json",
    "finish",
    "integer",
    "json_text",
    "parse_json",
    "quote",
    "sha256_hex",
]

MAX_SAFE_INTEGER = 2**53 - 1
MAX_DEPTH = 64

_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
for _c in range(0x20):
    _ESCAPES.setdefault(chr(_c), f"\\u{_c:04x}")


class CanonicalJsonError(ValueError):
    """A value that has no canonical JSON form here (float, big integer, bad string …)."""


def _string(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJsonError("string contains a lone surrogate (not valid Unicode)") from None
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in value) + '"'


def _utf16_key(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[str], depth: int) -> None:
    if depth > MAX_DEPTH:
        raise CanonicalJsonError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if value is None:
        out.append("null")
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJsonError(f"integer {value} is outside ±(2**53 - 1)")
        out.append(str(int(value)))
    elif isinstance(value, str):
        out.append(_string(value))
    elif isinstance(value, float):
        raise CanonicalJsonError("floats are not allowed: use integers or decimal strings")
    elif isinstance(value, Mapping):
        for key in value:
            if not isinstance(key, str):
                raise CanonicalJsonError(f"object key {key!r} is not a string")
        out.append("{")
        first = True
        for key in sorted(value, key=_utf16_key):
            if not first:
                out.append(",")
            first = False
            out.append(_string(key))
            out.append(":")
            _write(value[key], out, depth + 1)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, bytes | bytearray):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out, depth + 1)
        out.append("]")
    else:
        raise CanonicalJsonError(f"{type(value).__name__} is not a JSON value")


def _fast_ok(value: Any, depth: int) -> bool:
    """Check ``value`` for the fast path; False when only the general writer may encode it.

    The fast path is the C JSON encoder with sorted keys: its string escaping is exactly
    RFC 8785's (ensure_ascii=False), and code-point order equals UTF-16 order unless a
    key holds a character beyond U+FFFF, so such objects take the general writer.
    """
    if depth > MAX_DEPTH:
        raise CanonicalJsonError(f"JSON nested deeper than {MAX_DEPTH} levels")
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise CanonicalJsonError(f"integer {value} is outside ±(2**53 - 1)")
        return True
    if kind is dict:
        ok = True
        for key, item in value.items():
            if type(key) is not str:
                return False
            if not key.isascii() and max(key) > "\uffff":
                ok = False
            if not _fast_ok(item, depth + 1):
                ok = False
        return ok
    if kind is list or kind is tuple:
        ok = True
        for item in value:
            if not _fast_ok(item, depth + 1):
                ok = False
        return ok
    if kind is float:
        raise CanonicalJsonError("floats are not allowed: use integers or decimal strings")
    return False


_ENCODER = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
)


def _not_json(value: Any) -> Any:
    raise TypeError(f"{type(value).__name__} is not a JSON value")


# The C encoder behind _ENCODER, made once. JSONEncoder.encode() builds a new one (and a
# dict for cycle detection) on every call, which costs more than encoding a small record.
# Cycles need no markers here: _plain() refuses values nested deeper than MAX_DEPTH first.
try:
    from _json import make_encoder as _make_encoder

    _C_ENCODE: Any = _make_encoder(
        None, _not_json, json.encoder.encode_basestring, None, ":", ",", True, False, False
    )
except (ImportError, TypeError):  # not CPython, or another signature: the public API
    _C_ENCODE = None


def _plain(value: Any) -> bool:
    """True when the checks of :func:`_fast_ok` would pass (keys' planes aside).

    One breadth-first pass without recursion, each scalar checked inline: the hot path of
    every ledger write. It never raises: on anything unusual (a float, a big integer, a
    non-str key, another type, too deep) it answers False and canonical_json runs the
    reference checks, so errors and their messages are those of _fast_ok/_write.
    Whether a key lies beyond U+FFFF is checked on the encoded text instead.
    """
    level = [value]
    for _depth in range(MAX_DEPTH + 1):
        below: list[Any] = []
        for item in level:
            kind = type(item)
            if kind is str or kind is bool or item is None:
                continue
            if kind is int:
                if -MAX_SAFE_INTEGER <= item <= MAX_SAFE_INTEGER:
                    continue
                return False
            if kind is dict:
                for key in item:
                    if type(key) is not str:
                        return False
                below.extend(item.values())
            elif kind is list or kind is tuple:
                below.extend(item)
            else:
                return False
        if not below:
            return True
        level = below
    return False  # deeper than MAX_DEPTH (or a cycle)


def _reference(value: Any) -> str:
    """The checked encoding, one recursive call per node; errors are raised from here."""
    if _fast_ok(value, 0):
        return _ENCODER.encode(value)
    out: list[str] = []
    _write(value, out, 0)
    return "".join(out)


def json_text(value: Any) -> str:
    """The canonical JSON text of ``value`` (lone surrogates are left to :func:`finish`)."""
    text = None
    if _C_ENCODE is not None and _plain(value):
        text = "".join(_C_ENCODE(value, 0))
        # code-point order of keys is UTF-16 order unless a character lies beyond U+FFFF
        # (keys appear verbatim in the text, so an ASCII text settles it at C speed)
        if not text.isascii() and max(text) > "\uffff":
            text = None
    return _reference(value) if text is None else text


def finish(text: str) -> bytes:
    """UTF-8 bytes of canonical JSON text; refuses lone surrogates (CanonicalJsonError)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJsonError("string contains a lone surrogate (not valid Unicode)") from None


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``; raises CanonicalJsonError."""
    return finish(json_text(value))


# ----------------------------------------------------------- records of a fixed shape
# A contract that writes the same kind of record many times per transaction can encode
# it member by member: each value once (a value shared by two records, e.g. a stored
# event and its Merkle leaf, is not encoded twice) and the keys in an order sorted once.
# The pieces must be canonical texts made by quote(), integer() or json_text(), so the
# result is byte for byte canonical_json() of the same object (property-tested), and
# finish() still refuses lone surrogates.
quote: Callable[[str], str] = json.encoder.encode_basestring
"""The canonical JSON text of a string (C speed; finish() checks surrogates)."""


def integer(value: int) -> str:
    """The canonical JSON text of an integer within ±(2**53 - 1), else json_text's error."""
    if type(value) is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return str(value)
    return json_text(value)


@dataclass(frozen=True)
class Encoded:
    """A contract's result already in canonical JSON (made with ObjectLayout): sent as is."""

    data: bytes


class ObjectLayout:
    """The canonical member order of objects with a fixed set of (constant) keys.

    >>> layout = ObjectLayout(("seq", "event_hash"))
    >>> layout.text({"seq": integer(1), "event_hash": quote("h")})
    '{"event_hash":"h","seq":1}'
    """

    def __init__(self, keys: Iterable[str]) -> None:
        self.keys = tuple(sorted(keys, key=_utf16_key))
        if not self.keys:
            raise ValueError("an object layout needs at least one key")
        # one %-template and one itemgetter: the object is assembled at C speed
        members = ",".join(quote(k).replace("%", "%%") + ":%s" for k in self.keys)
        self._template = "{" + members + "}"
        self._values = operator.itemgetter(*self.keys)
        self._single = len(self.keys) == 1

    def text(self, members: Mapping[str, str]) -> str:
        """``members`` maps every key of the layout (others are ignored) to a value text."""
        values = self._values(members)
        return self._template % ((values,) if self._single else values)


def sha256_hex(value: Any) -> str:
    """Lower-case hex SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)  # C speed; a shorter dict means a duplicate: find the first one
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _value in pairs:
            if key in seen:
                raise CanonicalJsonError(f"duplicate member {key!r}")
            seen.add(key)
    return result


def _no_float(text: str) -> Any:
    raise CanonicalJsonError("floats are not allowed: use integers or decimal strings")


def _no_constant(text: str) -> Any:
    raise CanonicalJsonError(f"{text} is not JSON")


class _Recheck(Exception):
    """An integer long enough to be out of range: parse_json's reference path decides."""


def _int(text: str) -> int:
    if len(text) > 15:  # 15 digits are always within ±(2**53 - 1)
        raise _Recheck
    return int(text)


_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_no_float, parse_constant=_no_constant
)
_FAST_DECODER = json.JSONDecoder(
    object_pairs_hook=_pairs, parse_float=_no_float, parse_constant=_no_constant, parse_int=_int
)
_WHITESPACE = " \t\n\r"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_MISSING: Any = object()


def _parse_fast(text: str) -> Any:
    """The value of a JSON text that parses cleanly with short integers, else _MISSING.

    Every argument of every transaction is parsed, so the usual case skips json.loads'
    per-call decoder and whitespace matching, and the second pass over the value that
    only integers and depth need (integers are checked as they are parsed). Any doubt
    (an error, a long integer, leading whitespace) answers _MISSING: the reference path
    then parses again and raises exactly its own errors.
    """
    if not text or text[0] in _WHITESPACE:
        return _MISSING
    try:
        value, end = _FAST_DECODER.raw_decode(text)
    except (ValueError, _Recheck, RecursionError):  # JSONDecodeError, CanonicalJsonError
        return _MISSING
    if end != len(text) and text[end:].strip(_WHITESPACE):
        return _MISSING
    return value


def parse_json(text: str | bytes, *, max_bytes: int = 4 * 1024 * 1024) -> Any:
    """Parse JSON strictly (no floats, NaN, duplicate members); raises CanonicalJsonError."""
    if len(text) > max_bytes:
        raise CanonicalJsonError(f"JSON larger than {max_bytes} bytes")
    clean = True  # no lone surrogate in the text itself
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")  # strict: never yields a surrogate
        except UnicodeDecodeError:
            raise CanonicalJsonError("JSON text is not UTF-8") from None
    elif not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            clean = False
    value = _parse_fast(text) if clean else _MISSING
    if value is _MISSING:
        value = _parse_reference(text)
        canonical_json(value)  # range and string checks, depth
        return value
    # What canonical_json would still refuse: nesting deeper than MAX_DEPTH (impossible
    # with at most MAX_DEPTH brackets) and lone surrogates, which text without raw ones
    # holds only as \uD800-\uDFFF escapes. Without these signs, skip that second pass.
    if (text.count("{") + text.count("[") > MAX_DEPTH and not _plain(value)) or (
        "\\u" in text and _SURROGATE_ESCAPE.search(text)
    ):
        canonical_json(value)  # raises the precise error
    return value


def _parse_reference(text: str) -> Any:
    try:
        if text.startswith("\ufeff"):  # as json.loads does
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
        return _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise CanonicalJsonError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise CanonicalJsonError("JSON nested too deeply") from None

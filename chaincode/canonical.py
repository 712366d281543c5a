"""RFC 8785 (JCS) canonical JSON with the standard library, and strict JSON parsing.

>>> canonical_json({"b": [1, True, None], "a": "é"})
b'{"a":"\\xc3\\xa9","b":[1,true,null]}'

Only the JSON values the contracts use are accepted: objects with string keys, arrays,
strings (valid Unicode, no lone surrogates), integers within ±(2**53 - 1), booleans and
null. Floats are refused: amounts and quantities are integers or decimal strings, so
every endorsing peer produces the same bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "MAX_SAFE_INTEGER",
    "CanonicalJsonError",
    "canonical_json",
    "parse_json",
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


def canonical_json(value: Any) -> bytes:
    """The RFC 8785 canonical UTF-8 bytes of ``value``; raises CanonicalJsonError."""
    if _fast_ok(value, 0):
        text = _ENCODER.encode(value)
    else:
        out: list[str] = []
        _write(value, out, 0)
        text = "".join(out)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise CanonicalJsonError("string contains a lone surrogate (not valid Unicode)") from None


def sha256_hex(value: Any) -> str:
    """Lower-case hex SHA-256 of the canonical JSON of ``value``."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise CanonicalJsonError(f"duplicate member {key!r}")
        result[key] = value
    return result


def _no_float(text: str) -> Any:
    raise CanonicalJsonError("floats are not allowed: use integers or decimal strings")


def _no_constant(text: str) -> Any:
    raise CanonicalJsonError(f"{text} is not JSON")


def parse_json(text: str | bytes, *, max_bytes: int = 4 * 1024 * 1024) -> Any:
    """Parse JSON strictly (no floats, NaN, duplicate members); raises CanonicalJsonError."""
    if len(text) > max_bytes:
        raise CanonicalJsonError(f"JSON larger than {max_bytes} bytes")
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise CanonicalJsonError("JSON text is not UTF-8") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_pairs,
            parse_float=_no_float,
            parse_constant=_no_constant,
        )
    except json.JSONDecodeError as exc:
        raise CanonicalJsonError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise CanonicalJsonError("JSON nested too deeply") from None
    canonical_json(value)  # range and string checks, depth
    return value

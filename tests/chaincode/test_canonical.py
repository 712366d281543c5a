"""chaincode.canonical against the rfc8785 reference library, and strict parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincode.canonical import (
    MAX_DEPTH,
    MAX_SAFE_INTEGER,
    CanonicalJsonError,
    ObjectLayout,
    canonical_json,
    finish,
    integer,
    json_text,
    parse_json,
    quote,
    sha256_hex,
)

# valid Unicode strings (no lone surrogates), astral and control characters included
texts = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
keys = st.one_of(
    texts,
    st.sampled_from(["a", "b", "\u20ac", "\U0001f600", "\ufb33", "\r", "1", "10", "é", "\x7f"]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-MAX_SAFE_INTEGER, max_value=MAX_SAFE_INTEGER),
    texts,
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(keys, children, max_size=6)
    ),
    max_leaves=25,
)


@settings(max_examples=400, deadline=None)
@given(values)
def test_identical_bytes_to_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=200, deadline=None)
@given(values)
def test_parse_round_trip(value: Any) -> None:
    text = json.dumps(value, ensure_ascii=False, indent=1)
    assert canonical_json(parse_json(text)) == canonical_json(value)


def test_keys_sorted_by_utf16_code_units() -> None:
    # U+1F600 is D83D DE00 in UTF-16, which sorts before U+FB33 (code point order differs)
    value = {"\ufb33": 1, "\U0001f600": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).decode().index("\U0001f600") < canonical_json(
        value
    ).decode().index("\ufb33")


def test_rfc8785_example_escapes() -> None:
    value = {"s": '\u20ac$\u000f\nA\'B"\\\\"/', "n": None, "t": True}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json("\x1f") == b'"\\u001f"'


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.5, "floats are not allowed"),
        ({"a": [0.0]}, "floats are not allowed"),
        (MAX_SAFE_INTEGER + 1, "outside"),
        (-MAX_SAFE_INTEGER - 1, "outside"),
        ("\ud800", "lone surrogate"),
        ({1: "x"}, "not a string"),
        (b"bytes", "not a JSON value"),
        ({"x": {1, 2}}, "not a JSON value"),
    ],
)
def test_rejects(value: Any, message: str) -> None:
    with pytest.raises(CanonicalJsonError, match=message):
        canonical_json(value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"a": 1.0}', "floats are not allowed"),
        ('{"a": 1e3}', "floats are not allowed"),
        ('{"a": NaN}', "NaN is not JSON"),
        ('{"a": 1, "a": 2}', "duplicate member"),
        ('{"a": 1', "Expecting"),
        (b'"\xff"', "not UTF-8"),
        ("[" * 100 + "]" * 100, "deeper"),
        ("9007199254740992", "outside"),
    ],
)
def test_parse_rejects(text: str | bytes, message: str) -> None:
    with pytest.raises(CanonicalJsonError, match=message):
        parse_json(text)


def test_sha256_hex() -> None:
    assert sha256_hex({"b": 1, "a": 2}) == sha256_hex({"a": 2, "b": 1})
    assert len(sha256_hex([])) == 64


# ---------------------------------------------------------------- the fast paths
def _reference_parse(text: str | bytes) -> Any:
    """parse_json as it was specified: json.loads with strict hooks, then canonical_json."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for key, item in items:
            if key in seen:
                raise CanonicalJsonError(f"duplicate member {key!r}")
            seen[key] = item
        return seen

    def no_float(_text: str) -> Any:
        raise CanonicalJsonError("floats are not allowed: use integers or decimal strings")

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_float=no_float)
    except json.JSONDecodeError as exc:
        raise CanonicalJsonError(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    canonical_json(value)
    return value


def _outcome(parse: Any, text: str | bytes) -> tuple[str, str]:
    try:
        return "ok", repr(parse(text))
    except CanonicalJsonError as exc:
        return "error", str(exc)


json_atoms = st.sampled_from(
    [
        "0",
        "-7",
        "123456789012345",  # 15 digits: always in range
        "9007199254740991",
        "-9007199254740991",
        "9007199254740992",
        "-90071992547409920",
        "1.5",
        "2e3",
        "true",
        "null",
        '"a"',
        '"\\ud800"',  # lone surrogate escape
        '"\\ud83d\\ude00"',  # a valid pair
        '"\\\\ud800"',  # an escaped backslash, then text: no surrogate
        '"\u00e9\U0001f600"',
        '"[{"',  # brackets inside a string
    ]
)
json_texts = (
    st.recursive(
        json_atoms,
        lambda inner: st.one_of(
            st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
            st.lists(
                st.tuples(st.sampled_from(['"a"', '"b"', '"\\ud800"']), inner), max_size=4
            ).map(lambda kvs: "{" + ",".join(f"{k}:{v}" for k, v in kvs) + "}"),
        ),
        max_leaves=12,
    )
    .flatmap(
        lambda t: st.tuples(
            st.sampled_from(["", " ", "\n"]), st.just(t), st.sampled_from(["", " \t", "x"])
        )
    )
    .map("".join)
)


@settings(max_examples=500, deadline=None)
@given(json_texts)
def test_parse_fast_path_answers_as_the_reference(text: str) -> None:
    # the fast path skips work only when the reference could not refuse: same values,
    # same errors (big integers, surrogates, duplicates, floats, trailing data)
    assert _outcome(parse_json, text) == _outcome(_reference_parse, text)


@pytest.mark.parametrize(
    "text",
    [
        "[" * MAX_DEPTH + "]" * MAX_DEPTH,
        "[" * (MAX_DEPTH + 1) + "1" + "]" * (MAX_DEPTH + 1),
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        '{"a": [' + ",".join(["{}"] * 100) + "]}",  # many brackets, shallow
        "\ufeff{}",
        " {}",
        "{} ",
        "{}x",
        "",
        '"\ud800"',  # a raw lone surrogate in str input
    ],
)
def test_parse_edge_cases_as_the_reference(text: str) -> None:
    assert _outcome(parse_json, text) == _outcome(_reference_parse, text)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["b", "a", "\u20ac", "\U0001f600", "\ufb33", "aa"]), scalars, min_size=1
    )
)
def test_object_layout_is_canonical_json(value: dict[str, Any]) -> None:
    layout = ObjectLayout(value)
    members = {k: json_text(v) for k, v in value.items()}
    assert finish(layout.text(members)) == canonical_json(value) == rfc8785.dumps(value)


def test_member_texts() -> None:
    assert quote('é"\n\u2028') == json_text('é"\n\u2028')
    assert integer(MAX_SAFE_INTEGER) == str(MAX_SAFE_INTEGER)
    for bad in (MAX_SAFE_INTEGER + 1, 1.0):
        with pytest.raises(CanonicalJsonError):
            integer(bad)  # type: ignore[arg-type]
    with pytest.raises(CanonicalJsonError, match="lone surrogate"):
        finish(ObjectLayout(["s"]).text({"s": quote("\ud800")}))
    with pytest.raises(ValueError):
        ObjectLayout([])


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": {"b": {1: 2}}}, "not a string"),
        ([[[MAX_SAFE_INTEGER + 1]]], "outside"),
        ({"a": (1.5,)}, "floats"),
        ([{"x": b""}], "not a JSON value"),
    ],
)
def test_nested_refusals_keep_their_messages(value: Any, message: str) -> None:
    with pytest.raises(CanonicalJsonError, match=message):
        canonical_json(value)


def test_cycles_and_depth_are_refused() -> None:
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(CanonicalJsonError, match="deeper"):
        canonical_json(cycle)
    deep: Any = "x"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert canonical_json(deep) == b"[" * MAX_DEPTH + b'"x"' + b"]" * MAX_DEPTH
    with pytest.raises(CanonicalJsonError, match="deeper"):
        canonical_json([deep])


stored_bytes = st.lists(
    st.sampled_from(
        [
            *(b"{", b"}", b"[", b"]", b'"a"', b'"', b":", b",", b"1", b" ", b"\n", b"null"),
            *(b"\xed\xa0\x80", b"\xff", b"\x00", b"\xef\xbb\xbf", b"\xfe\xff", b'"\xc3\xa9"'),
            *(b"1.5", b"\\", b"\\ud800"),
        ]
    ),
    min_size=1,
    max_size=8,
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(stored_bytes, values.map(canonical_json)))
def test_stored_values_read_as_json_loads_reads_them(raw: bytes) -> None:
    # Context reads state without json.loads' per-call work: same values, same errors
    from chaincode.context import _loads

    def outcome(read: Any) -> tuple[str, str]:
        try:
            return "ok", repr(read(raw))
        except Exception as exc:  # the error type is what a 500 names
            return type(exc).__name__, str(exc)

    assert outcome(_loads) == outcome(json.loads)

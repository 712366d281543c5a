"""chaincode.canonical against the rfc8785 reference library, and strict parsing."""

from __future__ import annotations

import json
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincode.canonical import (
    MAX_SAFE_INTEGER,
    CanonicalJsonError,
    canonical_json,
    parse_json,
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

"""Deterministic RFC 3339 parsing: offsets, dates, fractions, refusals."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chaincode.errors import BadRequest
from chaincode.timeutil import datetime_us, format_time, parse_time, tx_time_us


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-01", 1767225600_000000),
        ("2026-01-01T00:00:00Z", 1767225600_000000),
        ("2026-01-01T05:00:00+05:00", 1767225600_000000),
        ("2025-12-31T23:30:00-00:30", 1767225600_000000),
        ("2026-01-01T00:00:00.123456789Z", 1767225600_123456),
        ("2026-01-01t00:00:00.5z", 1767225600_500000),
    ],
)
def test_parse(text: str, expected: int) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "2026-02-30",
        "2026-01-01T24:00:00Z",
        "2026-01-01T00:00:60Z",
        "2026-01-01T00:00:00",
        "1969-12-31",
        "now",
        5,
    ],
)
def test_refuses(text: object) -> None:
    with pytest.raises(BadRequest):
        parse_time(text, "at")


@given(
    st.datetimes(
        min_value=dt.datetime(1970, 1, 2),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(dt.UTC),
    )
)
def test_round_trip(value: dt.datetime) -> None:
    us = datetime_us(value)
    assert parse_time(format_time(us)) == us
    assert (
        format_time(us)
        == value.strftime("%Y-%m-%dT%H:%M:%S")
        + ("." + f"{value.microsecond:06d}".rstrip("0") if value.microsecond else "")
        + "Z"
    )


def test_tx_timestamp() -> None:
    assert tx_time_us((1767225600, 999_999_999)) == 1767225600_999999


def _strftime_text(us: int) -> str:
    seconds, micros = divmod(us, 1_000_000)
    text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return text + ("." + f"{micros:06d}".rstrip("0") if micros else "") + "Z"


@given(st.integers(min_value=-(10**15), max_value=253402300799_999999))
def test_format_time_is_strftime(us: int) -> None:
    # integer arithmetic (and its per-second cache) give strftime's text, 1970 to 9999;
    # other times take strftime itself
    assert format_time(us) == _strftime_text(us)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-02-30T00:00:60Z", "leap seconds"),  # checked before the calendar
        ("1969-02-30", "not a valid date and time"),  # the calendar before the epoch
        ("1969-12-31T24:00:00Z", "not a valid date and time"),
        ("2026-01-01T00:60:00Z", "not a valid date and time"),
        ("0000-01-01", "not a valid date and time"),
        ("1969-12-31T23:59:59Z", "before 1970"),
        ("2026-01-01T00:00:00+24:00", "invalid UTC offset"),
    ],
)
def test_refusals_in_order(text: str, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        parse_time(text, "at")
    with pytest.raises(BadRequest, match=message):  # again: the date cache keeps no error
        parse_time(text, "at")

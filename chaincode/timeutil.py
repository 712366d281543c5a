"""Deterministic time: RFC 3339 text <-> integer microseconds since the epoch (UTC).

>>> parse_time("2026-01-01T00:00:00Z")
1767225600000000
>>> format_time(1767225600000000)
'2026-01-01T00:00:00Z'

Microseconds keep every stored time an exact JSON integer (below 2**53 until the year
2255); digits of a fraction beyond the sixth are truncated. No clock is ever read: the
contracts take time from the transaction timestamp.
"""

from __future__ import annotations

import calendar
import datetime as dt
import functools
import re

from .errors import BadRequest

__all__ = ["US", "datetime_us", "format_time", "parse_time", "tx_time_us"]

US = 1_000_000
_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
_YEAR_10000 = 253402300800  # seconds at 10000-01-01T00:00:00Z
_2D = tuple(f"{n:02d}" for n in range(60))
_TIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2}))?\Z"
)


def parse_time(text: object, field: str = "time") -> int:
    """Microseconds of an RFC 3339 timestamp with an offset, or of a date (midnight UTC)."""
    if not isinstance(text, str):
        raise BadRequest(f"{field} must be an RFC 3339 timestamp string")
    m = _TIME.match(text)
    if not m:
        raise BadRequest(f"{field} {text!r} is not an RFC 3339 timestamp (or YYYY-MM-DD date)")
    _y, _mo, _d, hh, mm, ss, fraction, offset = m.groups()
    hour = minute = second = 0
    if hh is not None:
        hour, minute, second = int(hh), int(mm), int(ss)
    if second > 59:
        raise BadRequest(f"{field} {text!r}: leap seconds are not accepted")
    days = _day_number(text[:10])  # the regex put the date there
    if days is None or hour > 23 or minute > 59:  # the checks datetime() makes
        raise BadRequest(f"{field} {text!r} is not a valid date and time")
    if days < 0:
        raise BadRequest(f"{field} {text!r} is before 1970")
    seconds = days * 86400 + hour * 3600 + minute * 60 + second
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        oh, om = int(offset[1:3]), int(offset[4:6])
        if oh > 23 or om > 59:
            raise BadRequest(f"{field} {text!r} has an invalid UTC offset")
        seconds -= sign * (oh * 3600 + om * 60)
    if fraction is None:
        return seconds * US
    return seconds * US + int(fraction[:6].ljust(6, "0"))


@functools.lru_cache(maxsize=4096)
def _day_number(date: str) -> int | None:
    """Days from 1970-01-01 to a YYYY-MM-DD date, None if no such date (cached: pure)."""
    try:
        return dt.date(int(date[:4]), int(date[5:7]), int(date[8:10])).toordinal() - _EPOCH_ORDINAL
    except ValueError:
        return None


def format_time(us: int) -> str:
    """RFC 3339 UTC text of microseconds since the epoch (fraction only when non-zero)."""
    seconds, micros = divmod(us, US)
    if 0 <= seconds < _YEAR_10000:
        text = _second_text(seconds)
    else:
        text = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if micros:
        text += "." + f"{micros:06d}".rstrip("0")
    return text + "Z"


@functools.lru_cache(maxsize=1024)
def _second_text(seconds: int) -> str:
    """YYYY-MM-DDTHH:MM:SS of a second from 1970 to 9999 (cached: at 10,000 transactions a
    second, every stored step of a second formats the same transaction time)."""
    # integer arithmetic: strftime costs more than the rest of a small transaction (the
    # same text: %Y has 4 digits in these years)
    days, rest = divmod(seconds, 86400)
    minutes, second = divmod(rest, 60)
    hour, minute = divmod(minutes, 60)
    return f"{_date_text(days)}T{_2D[hour]}:{_2D[minute]}:{_2D[second]}"


@functools.lru_cache(maxsize=4096)
def _date_text(days: int) -> str:
    """YYYY-MM-DD of a day after 1970-01-01 (pure function of ``days``: cached)."""
    return dt.date.fromordinal(_EPOCH_ORDINAL + days).isoformat()


def tx_time_us(timestamp: tuple[int, int]) -> int:
    """Microseconds of a transaction timestamp (seconds, nanos)."""
    seconds, nanos = timestamp
    return seconds * US + nanos // 1000


def datetime_us(value: dt.datetime) -> int:
    """Microseconds of an aware datetime (e.g. a certificate's validity), without floats."""
    utc = value.astimezone(dt.UTC)
    return calendar.timegm(utc.timetuple()) * US + utc.microsecond

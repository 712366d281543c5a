"""The hand-written DER encoder agrees with asn1crypto on every construction it offers."""

from __future__ import annotations

import datetime as dt

from asn1crypto import core
from hypothesis import given
from hypothesis import strategies as st

from trust_services import _der


@given(st.integers(min_value=-(2**200), max_value=2**200))
def test_integer_matches_asn1crypto(value: int) -> None:
    assert _der.integer(value) == core.Integer(value).dump()


@given(st.binary(max_size=70000))
def test_octet_string_lengths(value: bytes) -> None:
    assert _der.octet_string(value) == core.OctetString(value).dump()


@given(
    st.lists(st.integers(min_value=0, max_value=2**40), min_size=1, max_size=8).map(
        lambda arcs: "1.2." + ".".join(map(str, arcs))
    )
)
def test_oid_matches_asn1crypto(dotted: str) -> None:
    assert _der.oid(dotted) == core.ObjectIdentifier(dotted).dump()


@given(st.lists(st.binary(max_size=20), max_size=6))
def test_set_of_is_sorted(items: list[bytes]) -> None:
    encoded = [_der.octet_string(i) for i in items]
    parsed = core.SetOf.load(_der.set_of(*encoded))
    assert [c.dump() for c in parsed] == sorted(encoded) or not items


def test_generalized_time_drops_trailing_zeros() -> None:
    when = dt.datetime(2026, 11, 23, 10, 0, 1, 120000, tzinfo=dt.UTC)
    assert _der.generalized_time(when)[2:] == b"20261123100001.12Z"
    whole = when.replace(microsecond=0)
    assert _der.generalized_time(whole)[2:] == b"20261123100001Z"
    assert core.GeneralizedTime.load(_der.generalized_time(when)).native == when


def test_utc_time_range() -> None:
    assert _der.utc_time(dt.datetime(2049, 1, 1, tzinfo=dt.UTC))[0] == 0x17
    assert _der.utc_time(dt.datetime(2050, 1, 1, tzinfo=dt.UTC))[0] == 0x18


def test_ecdsa_raw_to_der_round_trip() -> None:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    raw = (1).to_bytes(32, "big") + (2**255 + 7).to_bytes(32, "big")
    assert decode_dss_signature(_der.ecdsa_raw_to_der(raw)) == (1, 2**255 + 7)

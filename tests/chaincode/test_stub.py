"""Composite keys in Fabric's format and the in-memory stub's Fabric semantics."""

from __future__ import annotations

import re
from typing import Any

import pytest

from chaincode.memstub import MemStub
from chaincode.stub import Creator, create_composite_key, split_composite_key

CREATOR = Creator("KZ-CUSTOMS", b"")


def test_composite_key_format() -> None:
    key = create_composite_key("trail", ["C1", "000000000001"])
    assert key == "\x00trail\x00C1\x00000000000001\x00"
    assert split_composite_key(key) == ("trail", ["C1", "000000000001"])
    assert create_composite_key("genesis", []) == "\x00genesis\x00"


@pytest.mark.parametrize("bad", ["a\x00b", "a\U0010ffffb", "\ud800"])
def test_composite_key_rejects_bad_attributes(bad: str) -> None:
    with pytest.raises(ValueError):
        create_composite_key("t", [bad])


def _stub_with(values: dict[str, bytes]) -> MemStub:
    stub = MemStub()
    stub.begin(CREATOR, (100, 5))
    for k, v in values.items():
        stub.put_state(k, v)
    stub.commit()
    return stub


def test_range_excludes_composite_keys_and_is_ordered() -> None:
    ck = create_composite_key("aeo", ["X"])
    stub = _stub_with({"b": b"2", "a": b"1", "c": b"3", ck: b"ck"})
    stub.begin(CREATOR, (101, 0))
    assert [k for k, _ in stub.get_state_by_range("", "")] == ["a", "b", "c"]
    assert [k for k, _ in stub.get_state_by_range("a", "c")] == ["a", "b"]
    assert list(stub.get_state_by_partial_composite_key("aeo", [])) == [(ck, b"ck")]


def test_partial_composite_key_query_in_key_order() -> None:
    keys = {create_composite_key("trail", ["C1", f"{i:03d}"]): b"%d" % i for i in (3, 1, 2)}
    keys[create_composite_key("trail", ["C10", "001"])] = b"other"
    stub = _stub_with(keys)
    stub.begin(CREATOR, (101, 0))
    got = [
        stub.split_composite_key(k)[1]
        for k, _ in stub.get_state_by_partial_composite_key("trail", ["C1"])
    ]
    assert got == [["C1", "001"], ["C1", "002"], ["C1", "003"]]


def test_reads_do_not_see_own_writes_and_history_is_kept() -> None:
    stub = _stub_with({"k": b"v1"})
    stub.begin(CREATOR, (200, 7), tx_id="t2")
    stub.put_state("k", b"v2")
    assert stub.get_state("k") == b"v1"
    stub.commit()
    stub.begin(CREATOR, (300, 0), tx_id="t3")
    stub.del_state("k")
    stub.commit()
    stub.begin(CREATOR, (400, 0))
    assert stub.get_state("k") is None
    history = list(stub.get_history_for_key("k"))
    assert [(h.tx_id, h.timestamp, h.value, h.is_delete) for h in history][1:] == [
        ("t2", (200, 7), b"v2", False),
        ("t3", (300, 0), b"", True),
    ]


def test_rollback_discards_writes_and_event_and_duplicate_tx_id_refused() -> None:
    stub = _stub_with({})
    stub.begin(CREATOR, (1, 0), tx_id="dup")
    stub.put_state("x", b"1")
    stub.set_event("caravan", b"{}")
    stub.rollback()
    assert stub.state == {} and stub.events == []
    stub.begin(CREATOR, (1, 0), tx_id="dup")
    stub.commit()
    with pytest.raises(ValueError, match="duplicate"):
        stub.begin(CREATOR, (2, 0), tx_id="dup")


def test_one_event_per_transaction_last_wins() -> None:
    stub = MemStub()
    stub.begin(CREATOR, (1, 0), tx_id="e")
    stub.set_event("first", b"1")
    stub.set_event("caravan", b"2")
    stub.commit()
    assert [(e.tx_id, e.name, e.payload) for e in stub.events] == [("e", "caravan", b"2")]


@pytest.mark.parametrize(
    ("object_type", "attributes", "message"),
    [
        ("t\x00", ["a"], "object type contains U+0000"),
        ("t", ["a", "b\x00"], "attribute contains U+0000"),
        ("t\U0010ffff", [], "object type contains U+0000 or U+10FFFF"),
        ("t", ["\ud800"], "attribute is not valid UTF-8"),
        ("t", ["a", 5], "attribute must be a string"),
        (5, ["a"], "object type must be a string"),
    ],
)
def test_composite_key_refusals_name_the_part(
    object_type: Any, attributes: list[Any], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        create_composite_key(object_type, attributes)


def test_composite_key_of_any_valid_parts() -> None:
    for object_type, attributes in (("t", ["é", "\U0001f600", ""]), ("", []), ("a", "bc")):
        key = create_composite_key(object_type, attributes)
        assert key == "\x00" + object_type + "\x00" + "".join(a + "\x00" for a in attributes)
        assert split_composite_key(key) == (object_type, list(attributes))

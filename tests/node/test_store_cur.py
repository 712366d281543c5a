"""The grouped copy of the trails (``cur``): a trail's rows are neighbours on disk, in a
range found by hashing the trail, so that a read needs no index.

Store-level: blocks are written with ``Store.append_block`` directly (the store does not
check headers), so each test says exactly which keys a block writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.embedded import store as store_module
from node.embedded.store import CUR_LAYOUT, SLOT_BITS, BlockWrite, Store, ver_of
from node.errors import LedgerError


def trail(ref: str, seq: int) -> str:
    return f"\x00trail\x00{ref}\x00{seq:012d}\x00"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.create(tmp_path / "ledger.db", "caravan")
    yield s
    s.close()


def write(store: Store, writes: list[tuple[str, bytes | None]]) -> None:
    number = store.height()
    ver = ver_of(number, 0)
    store.append_block(
        BlockWrite(
            number,
            b"%032d" % number,
            b"header",
            b"signature",
            None,
            [(ver, b"tx%030d" % number, "VALID", 0, b"{}")],
            [(ver, key, value) for key, value in writes],
            [],
        )
    )


def rows(store: Store) -> dict[str, int]:
    """key -> row id in ``cur`` (tombstones too)."""
    found = store.conn.execute("SELECT key, rid FROM cur").fetchall()
    keys = [bytes(key).decode() for key, _rid in found]
    assert len(set(keys)) == len(keys)  # each key has one row
    return {bytes(key).decode(): rid for key, rid in found}


def home(ref: str) -> int:
    return store_module._home(f"\x00trail\x00{ref}\x00".encode())


def values(store: Store, start: str, end: str) -> list[bytes]:
    return [v for _k, _ver, v in Store.range(store.reader(), start, end)]


def test_a_trails_entries_take_neighbouring_rows_in_the_range_its_hash_names(
    store: Store,
) -> None:
    for seq in range(1, 6):  # each block: the next event of three consignments
        write(store, [(trail(ref, seq), b"%s-%d" % (ref.encode(), seq)) for ref in "CAB"])
    placed = rows(store)
    for ref in "ABC":
        rids = [placed[trail(ref, seq)] for seq in range(1, 6)]
        assert rids == [home(ref) << SLOT_BITS | slot for slot in range(5)]
    conn = store.reader()
    got = list(Store.range(conn, "\x00trail\x00B\x00", "\x00trail\x00B\x01"))
    assert [(k, v) for k, _ver, v in got] == [(trail("B", s), b"B-%d" % s) for s in range(1, 6)]
    assert Store.get(conn, trail("A", 3)) == (ver_of(2, 0), b"A-3")
    assert Store.get(conn, trail("A", 6)) is None
    assert Store.get(conn, trail("D", 1)) is None


def test_the_placement_is_the_same_everywhere() -> None:
    """Row ids are stored: a different hash would lose every trail of an existing ledger
    (its layout is named in ``meta``, and a new placement needs a new name)."""
    assert store_module._home(b"\x00trail\x00A\x00") == 5712727511233
    assert CUR_LAYOUT == b"hashed-groups/1"


def test_an_update_keeps_its_row_and_a_delete_leaves_a_tombstone(store: Store) -> None:
    write(store, [(trail("A", 1), b"one"), (trail("A", 2), b"two")])
    before = rows(store)
    write(store, [(trail("A", 1), b"one again"), (trail("A", 2), None)])
    assert rows(store) == before
    conn = store.reader()
    assert Store.get(conn, trail("A", 1)) == (ver_of(1, 0), b"one again")
    assert Store.get(conn, trail("A", 2)) is None
    assert values(store, trail("A", 0), trail("A", 9)) == [b"one again"]
    write(store, [(trail("A", 3), b"three")])  # after the chain's highest row
    assert rows(store)[trail("A", 3)] == before[trail("A", 2)] + 1
    write(store, [(trail("A", 2), b"two again")])  # the tombstone's row again
    assert rows(store)[trail("A", 2)] == before[trail("A", 2)]
    assert values(store, trail("A", 0), trail("A", 9)) == [b"one again", b"two again", b"three"]


def test_a_key_deleted_twice_or_never_written_leaves_nothing_behind(store: Store) -> None:
    write(store, [(trail("A", 1), None)])
    assert rows(store) == {}
    write(store, [(trail("A", 1), b"one")])
    write(store, [(trail("A", 1), None)])
    write(store, [(trail("A", 1), None)])
    assert len(rows(store)) == 1
    assert Store.get(store.reader(), trail("A", 1)) is None


def test_longer_keys_of_a_trail_belong_to_its_group(store: Store) -> None:
    """A group is the prefix and the first component: ``trail~A~x~1`` is in ``trail~A~``'s
    chain, so every range inside ``trail~A~`` is one chain's read."""
    nested = "\x00trail\x00A\x00x\x00000000000001\x00"
    write(store, [(trail("A", 2), b"a2"), (nested, b"x1")])
    write(store, [(trail("A", 1), b"a1")])
    placed = rows(store)
    assert {rid >> SLOT_BITS for rid in placed.values()} == {home("A")}
    assert values(store, "\x00trail\x00A\x00", "\x00trail\x00A\x01") == [b"a1", b"a2", b"x1"]
    assert values(store, "\x00trail\x00A\x00x\x00", "\x00trail\x00A\x00y") == [b"x1"]
    assert values(store, trail("A", 2), "\x00trail\x00A\x00x") == [b"a2"]  # inside, key order
    assert Store.get(store.reader(), nested) == (ver_of(0, 0), b"x1")


def test_a_range_over_several_trails_is_read_from_the_write_log(store: Store) -> None:
    write(store, [(trail(ref, 1), ref.encode()) for ref in "BCA"])
    write(store, [(trail("B", 1), None)])
    assert values(store, "\x00trail\x00", "\x00trail\x01") == [b"A", b"C"]
    assert values(store, "\x00trail\x00A", "\x00trail\x00C") == [b"A"]
    assert values(store, "\x00trail\x00", "") == [b"A", b"C"]


def test_a_full_range_goes_on_in_the_next_and_readers_follow(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SLOT_BITS", 2)
    for seq in range(1, 7):
        write(store, [(trail("A", seq), b"%d" % seq)])
    first = home("A")
    placed = [rows(store)[trail("A", seq)] for seq in range(1, 7)]
    assert [rid >> 2 for rid in placed] == [first] * 4 + [first + 1] * 2
    assert values(store, trail("A", 0), trail("A", 9)) == [b"%d" % s for s in range(1, 7)]
    write(store, [(trail("A", 4), None)])  # the full range's last slot: a tombstone keeps it
    assert values(store, trail("A", 0), trail("A", 9)) == [b"1", b"2", b"3", b"5", b"6"]
    assert Store.get(store.reader(), trail("A", 6)) == (ver_of(5, 0), b"6")
    write(store, [(trail("A", 7), b"7")])
    assert rows(store)[trail("A", 7)] == placed[-1] + 1


def test_trails_whose_hashes_meet_share_a_chain_and_read_only_their_own(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "SLOT_BITS", 2)
    monkeypatch.setattr(store_module, "_home", lambda group: 7)
    for seq in range(1, 4):
        write(store, [(trail("B", seq), b"B%d" % seq), (trail("A", seq), b"A%d" % seq)])
    placed = rows(store)
    assert sorted(placed.values()) == list(range(7 << 2, (7 << 2) + 6))  # ranges 7 and 8
    assert values(store, trail("A", 0), trail("A", 9)) == [b"A1", b"A2", b"A3"]
    assert values(store, trail("B", 0), trail("B", 9)) == [b"B1", b"B2", b"B3"]
    assert Store.get(store.reader(), trail("B", 3)) == (ver_of(2, 0), b"B3")
    assert Store.get(store.reader(), trail("C", 1)) is None


def test_the_last_range_wraps_to_the_first(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SLOT_BITS", 60)  # 8 ranges of 2**60 slots
    last = (1 << 3) - 1
    monkeypatch.setattr(store_module, "_home", lambda group: last)
    full = (last << 60) | ((1 << 60) - 1)  # the last slot of the last range
    store.conn.execute("INSERT INTO cur VALUES(?, ?, 0, x'00')", (full, b"\x00trail\x00Z\x00"))
    write(store, [(trail("A", 1), b"a1")])
    assert rows(store)[trail("A", 1)] == 0
    assert values(store, trail("A", 0), trail("A", 9)) == [b"a1"]


@pytest.mark.parametrize("layout", ["without rowid", "rowid with a key index", "none"])
def test_a_ledger_of_an_earlier_layout_is_laid_out_again_by_a_writer(
    tmp_path: Path, layout: str
) -> None:
    path = tmp_path / "ledger.db"
    store = Store.create(path, "caravan")
    for seq in range(1, 4):
        write(store, [(trail(ref, seq), b"%s%d" % (ref.encode(), seq)) for ref in "AB"])
    write(store, [(trail("B", 2), None)])
    expected = store.conn.execute(
        "SELECT key, ver, value FROM cur WHERE value IS NOT NULL ORDER BY key"
    ).fetchall()
    store.close()
    earlier = {
        "without rowid": "CREATE TABLE old(key BLOB PRIMARY KEY, ver INTEGER NOT NULL,"
        " value BLOB NOT NULL) WITHOUT ROWID;",
        "rowid with a key index": "CREATE TABLE old(rid INTEGER PRIMARY KEY,"
        " key BLOB NOT NULL UNIQUE, ver INTEGER NOT NULL, value BLOB NOT NULL);",
    }
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM meta WHERE name = 'cur'")
        if layout == "none":
            conn.execute("DROP TABLE cur")
        else:
            conn.executescript(
                earlier[layout] + "INSERT INTO old(key, ver, value) SELECT key, ver, value "
                "FROM cur WHERE value IS NOT NULL ORDER BY key; DROP TABLE cur;"
                " ALTER TABLE old RENAME TO cur;"
            )
    with pytest.raises(LedgerError, match="earlier Caravan: open it once for writing"):
        Store.open(path, readonly=True)
    store = Store.open(path)  # a writer lays it out again
    try:
        got = store.conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall()
        assert got == expected
        placed = rows(store)
        assert [placed[trail("A", seq)] for seq in range(1, 4)] == [
            home("A") << SLOT_BITS | slot for slot in range(3)
        ]
        write(store, [(trail("A", 4), b"A4")])
        assert rows(store)[trail("A", 4)] == placed[trail("A", 3)] + 1
        assert values(store, trail("B", 0), trail("B", 9)) == [b"B1", b"B3"]
    finally:
        store.close()
    Store.open(path, readonly=True).close()

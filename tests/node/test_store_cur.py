"""The key-ordered copy of the trails (``cur``): a trail's rows are neighbours on disk.

Store-level: blocks are written with ``Store.append_block`` directly (the store does not
check headers), so each test says exactly which keys a block writes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from node.embedded import store as store_module
from node.embedded.store import SLOT_BITS, BlockWrite, Store, ver_of


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
    """key -> row id in ``cur``."""
    found = store.conn.execute("SELECT key, rid FROM cur").fetchall()
    return {bytes(key).decode(): rid for key, rid in found}


def test_a_trails_entries_take_neighbouring_rows_whatever_the_order_of_blocks(
    store: Store,
) -> None:
    for seq in range(1, 6):  # each block: the next event of three consignments
        write(store, [(trail(ref, seq), b"%s-%d" % (ref.encode(), seq)) for ref in "CAB"])
    placed = rows(store)
    groups = set()
    for ref in "ABC":
        rids = [placed[trail(ref, seq)] for seq in range(1, 6)]
        assert rids == list(range(rids[0], rids[0] + 5))  # one run of neighbouring rows
        groups.add(rids[0] >> SLOT_BITS)
    assert len(groups) == 3  # one group range per trail
    conn = store.reader()
    got = list(Store.range(conn, "\x00trail\x00B\x00", "\x00trail\x00B\x01"))
    assert [(k, v) for k, _ver, v in got] == [(trail("B", s), b"B-%d" % s) for s in range(1, 6)]
    assert Store.get(conn, trail("A", 3)) == (ver_of(2, 0), b"A-3")


def test_an_update_keeps_its_row_and_a_delete_removes_it(store: Store) -> None:
    write(store, [(trail("A", 1), b"one"), (trail("A", 2), b"two")])
    before = rows(store)
    write(store, [(trail("A", 1), b"one again"), (trail("A", 2), None)])
    after = rows(store)
    assert after == {trail("A", 1): before[trail("A", 1)]}
    assert Store.get(store.reader(), trail("A", 1)) == (ver_of(1, 0), b"one again")
    assert Store.get(store.reader(), trail("A", 2)) is None
    write(store, [(trail("A", 3), b"three")])  # the group goes on after its highest row
    assert rows(store)[trail("A", 3)] == before[trail("A", 1)] + 1


def test_a_longer_key_inside_a_groups_key_range_never_shares_a_row(store: Store) -> None:
    """``trail~A~x~1`` lies in the key range of group ``trail~A~`` but is a group of its
    own: whichever takes a row id first, the other finds it taken and moves on."""
    nested = "\x00trail\x00A\x00x\x00000000000001\x00"
    write(store, [(trail("A", 1), b"a1"), (nested, b"x1")])
    write(store, [(trail("A", 2), b"a2")])  # next after the group range's highest: x1's
    write(store, [("\x00trail\x00A\x00x\x00000000000002\x00", b"x2")])
    placed = rows(store)
    assert len(placed) == 4 and len(set(placed.values())) == 4
    conn = store.reader()
    got = [v for _k, _ver, v in Store.range(conn, "\x00trail\x00A\x00", "\x00trail\x00A\x01")]
    assert got == [b"a1", b"a2", b"x1", b"x2"]  # key order, not row order


def test_a_full_group_goes_on_in_a_new_range(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store_module, "SLOT_BITS", 2)
    for seq in range(1, 7):
        write(store, [(trail("A", seq), b"%d" % seq)])
    placed = [rows(store)[trail("A", seq)] for seq in range(1, 7)]
    assert [rid >> 2 for rid in placed] == [1, 1, 1, 1, 2, 2]
    got = [v for _k, _ver, v in Store.range(store.reader(), trail("A", 0), trail("A", 9))]
    assert got == [b"1", b"2", b"3", b"4", b"5", b"6"]


def test_a_ledger_with_the_earlier_copy_is_read_as_it_is_and_regrouped_by_a_writer(
    tmp_path: Path,
) -> None:
    path = tmp_path / "ledger.db"
    store = Store.create(path, "caravan")
    for seq in range(1, 4):
        write(store, [(trail(ref, seq), b"%s%d" % (ref.encode(), seq)) for ref in "AB"])
    expected = store.conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall()
    store.close()
    with sqlite3.connect(path) as conn:  # the layout before row ids: WITHOUT ROWID
        conn.executescript(
            "CREATE TABLE old(key BLOB PRIMARY KEY, ver INTEGER NOT NULL, value BLOB NOT NULL)"
            " WITHOUT ROWID; INSERT INTO old SELECT key, ver, value FROM cur; DROP TABLE cur;"
            " ALTER TABLE old RENAME TO cur;"
        )
    reader = Store.open(path, readonly=True)  # reads the earlier copy as it is
    try:
        assert Store.get(reader.reader(), trail("B", 2)) == (ver_of(1, 0), b"B2")
    finally:
        reader.close()
    store = Store.open(path)  # a writer regroups it
    try:
        got = store.conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall()
        assert got == expected
        placed = rows(store)
        for ref in "AB":
            rids = [placed[trail(ref, seq)] for seq in range(1, 4)]
            assert rids == list(range(rids[0], rids[0] + 3))
        write(store, [(trail("A", 4), b"A4")])
        assert rows(store)[trail("A", 4)] == placed[trail("A", 3)] + 1
    finally:
        store.close()


def test_regrouping_that_runs_out_of_disk_leaves_the_earlier_copy(tmp_path: Path) -> None:
    """The full disk is what is reported (not a failed ROLLBACK), and nothing changed."""
    path = tmp_path / "ledger.db"
    store = Store.create(path, "caravan")
    write(store, [(trail("A", seq), b"x" * 3000) for seq in range(1, 40)])
    store.close()
    with sqlite3.connect(path) as conn:
        conn.executescript(
            "CREATE TABLE old(key BLOB PRIMARY KEY, ver INTEGER NOT NULL, value BLOB NOT NULL)"
            " WITHOUT ROWID; INSERT INTO old SELECT key, ver, value FROM cur; DROP TABLE cur;"
            " ALTER TABLE old RENAME TO cur; VACUUM;"  # no free pages left to reuse
        )
        before = conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall()
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages + 3}")
        with pytest.raises(sqlite3.OperationalError, match="full"):
            store_module._ensure_cur(conn, path, readonly=False)
        assert not conn.in_transaction
        columns = [row[1] for row in conn.execute("PRAGMA table_info(cur)")]
        assert columns == ["key", "ver", "value"]
        assert conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall() == before
    finally:
        conn.close()

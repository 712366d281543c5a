"""Tampering with a stored ledger: every altered, deleted or added row is found, and the
first bad block is named (by ``verify_ledger`` and by ``caravan ledger verify``).

One small ledger is built per test worker; each test alters its own copy with sqlite3.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaincode.canonical import canonical_json
from cli.main import app
from node.embedded.ledger import EmbeddedLedger
from node.embedded.store import Store, ver_of
from node.embedded.verify import verify_ledger
from node.errors import LedgerCorrupted, LedgerError
from tests.node.conftest import CHANNEL, Signers, genesis_arg, propose
from tests.node.test_ledger import anchor_batch, event, with_sez

SqlEdit = Callable[[sqlite3.Connection], object]


@dataclass(frozen=True)
class Built:
    """The pristine ledger file and where its interesting rows are."""

    path: Path
    height: int
    anchors: int  # the block of three AnchorEvents transactions
    conflict: int  # the block with a valid tx and an MVCC_READ_CONFLICT tx
    last: int  # the last block (two transactions)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, signers: Signers) -> Iterator[Built]:
    path = tmp_path_factory.mktemp("tamper") / "ledger.db"
    genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ", "UZ"))
    ledger = EmbeddedLedger.create(path, CHANNEL, genesis, signers["kz-node"])
    try:
        with_sez(ledger, signers)  # block 1
        op = signers["kz-khorgos"]
        receipts = ledger.submit_many(
            [propose(op, "AnchorEvents", anchor_batch(event(n))) for n in (1, 2, 3)]
        )
        assert {r.block for r in receipts} == {2}
        ref = "26KZ0000777-KHG"
        a, b = ledger.submit_many(
            [
                propose(op, "AnchorEvents", anchor_batch(event(4, ref))),
                propose(op, "AnchorEvents", anchor_batch(event(5, ref))),
            ]
        )
        assert (a.code, b.code, a.block, b.block) == ("VALID", "MVCC_READ_CONFLICT", 3, 3)
        last = ledger.submit_many(
            [propose(op, "AnchorEvents", anchor_batch(event(n))) for n in (6, 7)]
        )
        assert {r.block for r in last} == {4}
        height = ledger.height
    finally:
        ledger.close()
    yield Built(path, height, anchors=2, conflict=3, last=4)


@pytest.fixture
def copy(built: Built, tmp_path: Path) -> Path:
    """A private copy of the pristine ledger (SQLite's backup: consistent, WAL included)."""
    target = tmp_path / "ledger.db"
    src = sqlite3.connect(f"file:{built.path}?mode=ro", uri=True)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
    return target


def edit(path: Path, change: SqlEdit) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        change(conn)
        conn.execute("COMMIT")
    finally:
        conn.close()


def corrupted(path: Path) -> LedgerCorrupted:
    store = Store.open(path, readonly=True)
    try:
        with pytest.raises(LedgerCorrupted) as caught:
            verify_ledger(store)
    finally:
        store.close()
    return caught.value


def found(path: Path, change: SqlEdit, block: int, words: str) -> None:
    """``change`` the ledger at ``path``: verify names ``block`` and says ``words``."""
    edit(path, change)
    bad = corrupted(path)
    assert bad.block == block
    assert words in bad.message


def caravan(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def lo(block: int) -> int:
    return ver_of(block, 0)


def hi(block: int) -> int:
    return ver_of(block + 1, 0)


def first_write_of(conn: sqlite3.Connection, block: int, prefix: bytes = b"") -> tuple[int, bytes]:
    """(vid, key) of the first write of ``block`` whose key starts with ``prefix``."""
    row = conn.execute(
        "SELECT vid, key FROM vals WHERE ver >= ? AND ver < ? AND substr(key, 1, ?) = ? "
        "ORDER BY vid LIMIT 1",
        (lo(block), hi(block), len(prefix), prefix),
    ).fetchone()
    assert row is not None
    return row[0], bytes(row[1])


# ------------------------------------------------------------------ the pristine ledger
def test_the_pristine_ledger_verifies(built: Built, copy: Path) -> None:
    store = Store.open(copy, readonly=True)
    try:
        report = verify_ledger(store)
    finally:
        store.close()
    assert (report.height, report.tx_count, report.valid_count) == (5, 9, 8)
    code, out, err = caravan("ledger", "verify", "--ledger", str(copy))
    assert code == 0, err
    assert "5 blocks" in out and "9 transactions" in out


# ----------------------------------------------------------------------- world state
def test_a_state_value(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        vid, _key = first_write_of(conn, built.anchors)
        conn.execute("UPDATE vals SET value = ? WHERE vid = ?", (b'{"forged":true}', vid))

    found(copy, change, built.anchors, "is not the one the block names")


def test_a_state_value_deleted_in_place(built: Built, copy: Path) -> None:
    """A write turned into a delete (value NULL) is a different value too."""

    def change(conn: sqlite3.Connection) -> None:
        vid, _key = first_write_of(conn, built.last)
        conn.execute("UPDATE vals SET value = NULL WHERE vid = ?", (vid,))

    edit(copy, change)
    assert corrupted(copy).block == built.last


def test_a_trail_entry_in_the_key_ordered_copy(built: Built, copy: Path) -> None:
    """GetTrail reads trails from ``cur``: a value forged there alone is found too."""

    def change(conn: sqlite3.Connection) -> None:
        _vid, key = first_write_of(conn, built.anchors, b"\x00trail\x00")
        conn.execute("UPDATE cur SET value = ? WHERE key = ?", (b'{"forged":true}', key))

    found(copy, change, built.anchors, "key-ordered copy")


def test_a_trail_entry_deleted_from_the_key_ordered_copy(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        _vid, key = first_write_of(conn, built.last, b"\x00trail\x00")
        conn.execute("DELETE FROM cur WHERE key = ?", (key,))

    edit(copy, change)
    assert "key-ordered copy of the state has" in corrupted(copy).message


def test_a_key_added_to_the_key_ordered_copy(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO cur(key, ver, value) VALUES(?, ?, ?)", (b"\x00aeo\x00X\x00", lo(1), b"{}")
        )

    edit(copy, change)
    assert "key-ordered copy of the state has" in corrupted(copy).message


def test_a_root_anchor_in_the_state(built: Built, copy: Path) -> None:
    """The trust list the verifier reads its roots from is itself checked against block 0."""

    def change(conn: sqlite3.Connection) -> None:
        vid, _key = first_write_of(conn, 0, b"\x00anchor\x00")
        (raw,) = conn.execute("SELECT value FROM vals WHERE vid = ?", (vid,)).fetchone()
        anchor = json.loads(raw)
        anchor["status"] = "withdrawn" if anchor.get("status") == "granted" else "granted"
        conn.execute("UPDATE vals SET value = ? WHERE vid = ?", (canonical_json(anchor), vid))

    edit(copy, change)
    assert corrupted(copy).block == 0


def test_an_index_row_pointing_at_another_write(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        vid, key = first_write_of(conn, built.last)
        other, _ = first_write_of(conn, built.anchors)
        conn.execute("UPDATE kv SET vid = ? WHERE key = ? AND vid = ?", (other, key, vid))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.last
    assert "another key" in bad.message


def test_an_index_row_deleted(built: Built, copy: Path) -> None:
    """A key's newest version dropped from the index (its older value would show)."""

    def change(conn: sqlite3.Connection) -> None:
        _vid, key = first_write_of(conn, built.last)
        conn.execute("DELETE FROM kv WHERE key = ? AND ver >= ?", (key, lo(built.last)))

    edit(copy, change)
    bad = corrupted(copy)
    assert "the state index has" in bad.message
    assert bad.block == built.last


def test_a_stored_certificate(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE certs SET der = CAST(der || x'00' AS BLOB)")

    edit(copy, change)
    assert "does not match its hash" in corrupted(copy).message


def test_an_extra_write_in_the_log(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        _vid, key = first_write_of(conn, built.anchors)
        ver = ver_of(built.anchors, 0)
        (vid,) = conn.execute("SELECT max(vid) + 1 FROM vals").fetchone()
        conn.execute("INSERT INTO vals VALUES(?, ?, ?, ?)", (vid, ver, key, b"{}"))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.anchors
    assert "a write no transaction made" in bad.message


def test_an_extra_write_with_its_index_row(built: Built, copy: Path) -> None:
    """A forged current value (log + index) for a key: the log check finds it first."""

    def change(conn: sqlite3.Connection) -> None:
        _vid, key = first_write_of(conn, built.conflict)
        ver = ver_of(built.height, 0)  # "newer" than anything on the chain
        (vid,) = conn.execute("SELECT max(vid) + 1 FROM vals").fetchone()
        conn.execute("INSERT INTO vals VALUES(?, ?, ?, ?)", (vid, ver, key, b"{}"))
        conn.execute("INSERT INTO kv VALUES(?, ?, ?)", (key, ver, vid))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.height  # the block the forged write claims to be from
    assert "a write no transaction made" in bad.message


# ----------------------------------------------------------------------- transactions
def test_a_transaction_record(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        ver = ver_of(built.anchors, 1)
        (raw,) = conn.execute("SELECT record FROM txs WHERE ver = ?", (ver,)).fetchone()
        record = json.loads(raw)
        record["response"]["message"] = "forged"
        forged = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
        conn.execute("UPDATE txs SET record = ? WHERE ver = ?", (forged, ver))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.anchors
    assert "Merkle root" in bad.message


def test_the_code_of_an_invalid_transaction(built: Built, copy: Path) -> None:
    """Calling the MVCC-conflicted transaction VALID in its row is found."""

    def change(conn: sqlite3.Connection) -> None:
        ver = ver_of(built.conflict, 1)
        (code,) = conn.execute("SELECT code FROM txs WHERE ver = ?", (ver,)).fetchone()
        assert code == "MVCC_READ_CONFLICT"
        conn.execute("UPDATE txs SET code = 'VALID' WHERE ver = ?", (ver,))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.conflict
    assert "tx 1: the stored validation code is not the record's" in bad.message


def test_the_tx_id_and_timestamp_columns(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE txs SET ts_ns = ts_ns + 1 WHERE ver = ?", (ver_of(built.last, 1),))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.last and "timestamp" in bad.message


def test_a_deleted_transaction(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM txs WHERE ver = ?", (ver_of(built.anchors, 0),))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.anchors
    assert "not contiguous" in bad.message


def test_the_last_transaction_of_a_block_deleted(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM txs WHERE ver = ?", (ver_of(built.conflict, 1),))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.conflict
    assert "Merkle root" in bad.message


# ----------------------------------------------------------------------------- blocks
def test_a_block_header(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        (raw,) = conn.execute(
            "SELECT header FROM blocks WHERE number = ?", (built.anchors,)
        ).fetchone()
        header = json.loads(raw)
        header["time_us"] -= 3_600_000_000  # an hour earlier
        conn.execute(
            "UPDATE blocks SET header = ? WHERE number = ?",
            (canonical_json(header), built.anchors),
        )

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.anchors
    assert "SHA-256 of the header" in bad.message


def test_a_block_header_with_its_hash_recomputed(built: Built, copy: Path) -> None:
    """Fixing the stored hash up does not help: the node's signature no longer verifies."""

    def change(conn: sqlite3.Connection) -> None:
        (raw,) = conn.execute(
            "SELECT header FROM blocks WHERE number = ?", (built.anchors,)
        ).fetchone()
        header = json.loads(raw)
        header["time_us"] -= 3_600_000_000
        forged = canonical_json(header)
        conn.execute(
            "UPDATE blocks SET header = ?, hash = ? WHERE number = ?",
            (forged, hashlib.sha256(forged).digest(), built.anchors),
        )

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.anchors
    assert "signature does not verify" in bad.message


def test_a_block_signature(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        (sig,) = conn.execute(
            "SELECT signature FROM blocks WHERE number = ?", (built.conflict,)
        ).fetchone()
        flipped = bytes(sig[:-1]) + bytes([sig[-1] ^ 1])
        conn.execute("UPDATE blocks SET signature = ? WHERE number = ?", (flipped, built.conflict))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.conflict
    assert "signature does not verify" in bad.message


def test_the_last_block_deleted(built: Built, copy: Path) -> None:
    """Its transactions and writes remain, now belonging to no block: the block is named."""

    def change(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM blocks WHERE number = ?", (built.last,))

    edit(copy, change)
    bad = corrupted(copy)
    assert bad.block == built.last


def test_the_last_block_deleted_with_everything_it_wrote(built: Built, copy: Path) -> None:
    """A clean truncation of the chain is a shorter valid chain: verify cannot know.

    This is what a crash before the last commit looks like too; what detects a rollback
    is comparing the height and last hash with another node (or an anchored checkpoint).
    """

    def change(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM blocks WHERE number = ?", (built.last,))
        conn.execute("DELETE FROM txs WHERE ver >= ?", (lo(built.last),))
        conn.execute("DELETE FROM kv WHERE ver >= ?", (lo(built.last),))
        conn.execute("DELETE FROM vals WHERE ver >= ?", (lo(built.last),))
        # and the key-ordered copy of the trails rolled back to what is left
        conn.execute("DELETE FROM cur WHERE ver >= ?", (lo(built.last),))
        conn.execute(
            "INSERT OR IGNORE INTO cur(key, ver, value) SELECT k.key, k.ver, v.value FROM "
            "(SELECT key, max(ver) AS ver, vid FROM kv WHERE key >= X'00747261696c00' AND "
            "key < X'00747261696c01' GROUP BY key) k JOIN vals v ON v.vid = k.vid "
            "WHERE v.value IS NOT NULL"
        )

    edit(copy, change)
    store = Store.open(copy, readonly=True)
    try:
        assert verify_ledger(store).height == built.height - 1
    finally:
        store.close()


def test_a_block_in_the_middle_deleted(built: Built, copy: Path) -> None:
    def change(conn: sqlite3.Connection) -> None:
        conn.execute("DELETE FROM blocks WHERE number = ?", (built.anchors,))

    edit(copy, change)
    bad = corrupted(copy)
    assert "missing" in bad.message
    assert bad.block == built.anchors


def _signature_as_text(conn: sqlite3.Connection) -> None:
    # || makes TEXT of two BLOBs: the same bytes, another SQLite type
    conn.execute("UPDATE blocks SET signature = x'00' || signature WHERE number = 4")


def test_text_where_bytes_belong(built: Built, copy: Path) -> None:
    """A column rewritten with another SQLite type is named, not a traceback."""
    edit(copy, _signature_as_text)
    bad = corrupted(copy)
    assert bad.block == built.last == 4
    assert "cannot be read" in bad.message


def test_the_channel_in_meta_through_the_cli(built: Built, copy: Path) -> None:
    """Bytes that are not even text where the channel belongs: one line, exit 1."""

    def change(conn: sqlite3.Connection) -> None:
        conn.execute("UPDATE meta SET value = x'ff' WHERE name = 'channel'")

    edit(copy, change)
    code, out, err = caravan("ledger", "verify", "--ledger", str(copy))
    assert code == 1 and out == ""
    assert err.strip() == "ledger verify: the ledger's metadata cannot be read (UnicodeDecodeError)"


# ----------------------------------------------------------------- through the CLI
@pytest.mark.parametrize(
    ("sql", "block"),
    [
        ("UPDATE blocks SET signature = CAST(x'00' || signature AS BLOB) WHERE number = 3", 3),
        ("UPDATE txs SET code = 'VALID' WHERE ver = {conflict_tx}", 3),
        ("DELETE FROM txs WHERE ver = {first_tx_of_2}", 2),
        ("UPDATE blocks SET signature = x'00' || signature WHERE number = 4", 4),
    ],
)
def test_caravan_ledger_verify_names_the_block(
    built: Built, copy: Path, sql: str, block: int
) -> None:
    statement = sql.format(
        conflict_tx=ver_of(built.conflict, 1), first_tx_of_2=ver_of(built.anchors, 0)
    )

    def change(conn: sqlite3.Connection) -> None:
        conn.execute(statement)

    edit(copy, change)
    code, out, err = caravan("ledger", "verify", "--ledger", str(copy))
    assert code == 1, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ledger verify: block {block}: "), err
    assert "Traceback" not in err

    code, out, _err = caravan("ledger", "verify", "--ledger", str(copy), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["block"] == block


# --------------------------------------------------- the key-ordered copy of the trails
_TRAILS = (b"\x00trail\x00", b"\x00trail\x01")


def _trails_from_the_log(conn: sqlite3.Connection) -> list[tuple[bytes, int, bytes]]:
    return [
        (bytes(k), ver, bytes(v))
        for k, ver, v in conn.execute(
            "SELECT k.key, k.ver, v.value FROM (SELECT key, max(ver) AS ver, vid FROM kv "
            "WHERE key >= ? AND key < ? GROUP BY key) k JOIN vals v ON v.vid = k.vid "
            "WHERE v.value IS NOT NULL ORDER BY k.key",
            _TRAILS,
        )
    ]


def test_trail_reads_come_from_the_copy_and_equal_the_log(built: Built, copy: Path) -> None:
    store = Store.open(copy, readonly=True)
    try:
        conn = store.reader()
        expected = _trails_from_the_log(conn)
        assert len(expected) == 6  # events 1…7 but the conflicting one
        whole = [
            (k.encode(), ver, bytes(v))
            for k, ver, v in Store.range(conn, "\x00trail\x00", "\x00trail\x01")
        ]
        assert whole == expected
        ref = expected[3][0].decode().split("\x00")[2]
        start = f"\x00trail\x00{ref}\x00"
        one = list(Store.range(conn, start, start + "\U0010ffff"))
        assert [ver for _k, ver, _v in one] == [
            e[1] for e in expected if e[0].startswith(start.encode())
        ]
        assert len(one) == 1
        key, ver, value = expected[0]
        assert Store.get(conn, key.decode()) == (ver, value)
        assert Store.get(conn, "\x00trail\x00nothing\x00000000000001\x00") is None
        # the copy is what answered: forge it, and the reads follow
        store.close()
        edit(copy, lambda c: c.execute("UPDATE cur SET value = x'7b7d' WHERE key = ?", (key,)))
        store = Store.open(copy, readonly=True)
        assert Store.get(store.reader(), key.decode()) == (ver, b"{}")
    finally:
        store.close()


def test_a_ledger_without_the_copy_is_upgraded_when_opened_for_writing(
    built: Built, copy: Path
) -> None:
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        before = conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall()
    assert before
    edit(copy, lambda c: c.execute("DROP TABLE cur"))
    with pytest.raises(LedgerError, match="earlier Caravan: open it once for writing"):
        Store.open(copy, readonly=True)
    Store.open(copy).close()  # a writer adds and fills it
    with sqlite3.connect(f"file:{copy}?mode=ro", uri=True) as conn:
        after = conn.execute("SELECT key, ver, value FROM cur ORDER BY key").fetchall()
    assert after == before
    store = Store.open(copy, readonly=True)
    try:
        assert verify_ledger(store).height == built.height
    finally:
        store.close()

"""SQLite storage of the embedded ledger: blocks, transactions and a versioned world state.

>>> store = Store.open(path)                      # WAL, synchronous=FULL
>>> store.get("\\x00aeo\\x00KZ-AEO-2026-000123\\x00")   # (version, value) or None
>>> store.append_block(block)                     # one atomic, durable SQLite transaction

Layout (docs/ledger.md):

- ``vals(vid, ver, key, value)`` — the write log: every write of every valid
  transaction, in ledger order (``value`` NULL = delete). Appended, never updated.
- ``kv(key, ver, vid)`` — the state index (WITHOUT ROWID, all versions): the current
  value of a key is its highest version; its history is all of them.
- ``cur(rid, key, ver, value)`` — the current value of each key under a CLUSTERED prefix:
  a copy, kept in the same SQLite transaction, so that a range of such keys (a
  consignment's trail) is a contiguous read however large the write log grows. The rows
  of a group (keys that differ only in their last component: one trail) get neighbouring
  row ids (``group << SLOT_BITS | slot``), and ``key`` has its own small index. ``kv`` +
  ``vals`` stay the record; ``ledger verify`` checks the copy.
- ``txs(ver, tx_id, code, ts_ns, record)`` — every ordered transaction (valid or not)
  with its record (proposal, signature, read/write set, response, event).
- ``blocks(number, hash, header, signature, tsa_token)``; ``certs(sha256, der)`` holds
  each creator/signer certificate once; ``meta`` holds the channel and format.

A version ``ver`` is ``block << 20 | tx index`` (Fabric's (block, tx) height in one
integer). Writing one block is one ``BEGIN IMMEDIATE … COMMIT``: after a crash a block
is either all there or not at all.
"""

from __future__ import annotations

import fcntl
import itertools
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..errors import LedgerError

__all__ = ["VER_SHIFT", "BlockWrite", "Store", "StoredBlock", "ver_of"]

FORMAT = b"caravan-embedded-ledger/1"
VER_SHIFT = 20
MAX_TX_PER_BLOCK = 1 << VER_SHIFT
PAGE_SIZE = 8192
#: a WAL larger than this is checkpointed with RESTART after a block (see append_block)
WAL_RESTART_BYTES = 128 * 1024 * 1024
_RESTART_WAIT_MS = 250
_BUSY_TIMEOUT_MS = 10_000

#: key spaces read by range on hot paths: their current values are also kept together
#: (``cur``). A consignment's trail (chaincode/trace.py: ``trail~ref~seq``) is written
#: one event at a time, so in the write log its entries lie in as many places as it has
#: events; read from ``cur`` it is a few neighbouring pages (10 entries of ~1.6 KB fill
#: two or three 8 KiB pages).
CLUSTERED = ("\x00trail\x00",)
#: ``cur``'s row id is ``group << SLOT_BITS | slot``: a group (one trail) has 2**20 slots
#: of neighbouring rows, then goes on in a new group's range (still correct, less close).
#: A rowid table, not WITHOUT ROWID: there the interior pages hold whole rows, and rows of
#: ~1.6 KB leave 3-4 per 8 KiB interior page: a tree 8 levels deep at 100k trail entries,
#: whose interior pages (~22% of it) no page cache keeps once the ledger outgrows the RAM.
SLOT_BITS = 20
_CLUSTERED_RAW = tuple(p.encode() for p in CLUSTERED)
#: the current (key, ver, value) of the keys in [?, ?), from the write log and its index
CURRENT_SQL = (
    "SELECT k.key, k.ver, v.value FROM "
    "(SELECT key, max(ver) AS ver, vid FROM kv WHERE key >= ? AND key < ? GROUP BY key) k "
    "JOIN vals v ON v.vid = k.vid WHERE v.value IS NOT NULL"
)
_CUR_SCHEMA = """
CREATE TABLE cur(
    rid INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, ver INTEGER NOT NULL,
    value BLOB NOT NULL);
"""

_SCHEMA = (
    """
CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE blocks(
    number INTEGER PRIMARY KEY, hash BLOB NOT NULL, header BLOB NOT NULL,
    signature BLOB NOT NULL, tsa_token BLOB);
CREATE TABLE txs(
    ver INTEGER PRIMARY KEY, tx_id BLOB NOT NULL UNIQUE, code TEXT NOT NULL,
    ts_ns INTEGER NOT NULL, record BLOB NOT NULL);
CREATE TABLE vals(vid INTEGER PRIMARY KEY, ver INTEGER NOT NULL, key BLOB NOT NULL, value BLOB);
CREATE TABLE kv(
    key BLOB NOT NULL, ver INTEGER NOT NULL, vid INTEGER NOT NULL,
    PRIMARY KEY(key, ver)) WITHOUT ROWID;
CREATE TABLE certs(sha256 BLOB PRIMARY KEY, der BLOB NOT NULL) WITHOUT ROWID;
"""
    + _CUR_SCHEMA
)


def ver_of(block: int, index: int) -> int:
    return (block << VER_SHIFT) | index


@dataclass(frozen=True)
class BlockWrite:
    """Everything one block adds, written in one SQLite transaction."""

    number: int
    hash: bytes
    header: bytes
    signature: bytes
    tsa_token: bytes | None
    txs: Sequence[tuple[int, bytes, str, int, bytes]]  # ver, tx_id, code, ts_ns, record
    writes: Sequence[tuple[int, str, bytes | None]]  # ver, key, value (None = delete)
    certs: Sequence[tuple[bytes, bytes]]  # sha256, der


@dataclass(frozen=True)
class StoredBlock:
    number: int
    hash: bytes
    header: bytes
    signature: bytes
    tsa_token: bytes | None


def _connect(path: Path, readonly: bool) -> sqlite3.Connection:
    uri = f"file:{path}?mode={'ro' if readonly else 'rw'}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        if not readonly:
            mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            if mode != "wal":
                raise LedgerError(f"cannot put the ledger {path} in WAL mode")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA cache_size=-131072")
        conn.execute("PRAGMA temp_store=MEMORY")
        if readonly:
            conn.execute("PRAGMA query_only=ON")
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
    return conn


def _ensure_cur(conn: sqlite3.Connection, path: Path, readonly: bool) -> None:
    """Give a ledger written by an earlier Caravan the current ``cur``.

    Without ``cur`` (before the copy existed) it is filled from the state index; a ``cur``
    WITHOUT ROWID (before the row ids) is rewritten in the grouped layout. Readers read
    the earlier ``cur`` as it is (same columns); a ledger without one needs a writer first.
    """
    columns = [row[1] for row in conn.execute("PRAGMA table_info(cur)")]
    if "rid" in columns:
        return
    if readonly:
        if columns:
            return
        raise LedgerError(
            f"the ledger {path} was written by an earlier Caravan: open it once for writing "
            "(start its node, or any write command) to add the trail index"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        if columns:
            conn.execute("ALTER TABLE cur RENAME TO cur_before")
            conn.execute(_CUR_SCHEMA)
            _fill_cur(conn, conn.execute("SELECT key, ver, value FROM cur_before ORDER BY key"))
            conn.execute("DROP TABLE cur_before")
        else:
            conn.execute(_CUR_SCHEMA)
            for bounds in clustered_ranges():
                _fill_cur(conn, conn.execute(CURRENT_SQL + " ORDER BY k.key", bounds))
        conn.execute("COMMIT")
    except BaseException:
        _roll_back(conn)
        raise


def _roll_back(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already (a full disk, an I/O
    error): a ROLLBACK then would raise and hide the error that caused it."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _fill_cur(conn: sqlite3.Connection, rows: Iterable[tuple[bytes, int, bytes]]) -> None:
    """Insert (key, ver, value) rows, given in key order, into ``cur``: each group
    (:func:`_group_of`) in a group range of row ids of its own, after every existing one."""
    ranges = _free_ranges(conn)

    def placed() -> Iterator[tuple[int, bytes, int, bytes]]:
        rid, last = 0, None
        for key, ver, value in rows:
            raw = bytes(key)
            group = _group_of(raw)
            if group != last or _range_start(rid + 1):  # a new group, or this one is full
                rid, last = next(ranges), group
            else:
                rid += 1
            yield rid, raw, ver, value

    conn.executemany("INSERT INTO cur VALUES(?, ?, ?, ?)", placed())


def _group_of(raw: bytes) -> bytes:
    """The key without its last component (``\\x00trail\\x00<ref>\\x00`` for a trail entry)."""
    cut = raw.rfind(b"\x00", 0, len(raw) - 1)
    return raw[: cut + 1] if cut > 0 else raw


def clustered_ranges() -> list[tuple[bytes, bytes]]:
    """The [lo, hi) key ranges whose current values ``cur`` holds."""
    return [(prefix, _after(prefix)) for prefix in _CLUSTERED_RAW]


def _after(prefix: bytes) -> bytes:
    """The first byte string after every string that starts with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _clustered(start: bytes, end: bytes | None = None) -> bool:
    """Does the key ``start`` (or the range [start, end)) lie inside a CLUSTERED prefix?"""
    for prefix in _CLUSTERED_RAW:
        if start.startswith(prefix) and (
            end is None or end.startswith(prefix) or end == _after(prefix)
        ):
            return True
    return False


def _write_current(
    conn: sqlite3.Connection, current: dict[bytes, tuple[int, bytes | None]]
) -> None:
    """Apply a block's last write of each clustered key to ``cur``, in its transaction.

    A key that has a row keeps its row id. A new key takes the next slot of its group
    (the highest row id among the group's keys, plus one); it starts a new group range
    when the group has no row yet or its range is full. A row id found taken (by a key
    with more components inside the group's key range) sends the key to a new range.
    A few statements per block, not per key: the writer's share of a transaction is small.
    """
    keys = sorted(current)
    known: dict[bytes, int] = {}
    for part in _parts(keys, 500):
        marks = ",".join("?" * len(part))
        found = conn.execute(f"SELECT key, rid FROM cur WHERE key IN ({marks})", part)  # noqa: S608
        known.update((bytes(key), rid) for key, rid in found)
    gone = [(known[k],) for k in keys if current[k][1] is None and k in known]
    kept = [(*current[k], known[k]) for k in keys if current[k][1] is not None and k in known]
    fresh = [k for k in keys if current[k][1] is not None and k not in known]
    if gone:
        conn.executemany("DELETE FROM cur WHERE rid = ?", gone)
    if kept:
        conn.executemany("UPDATE cur SET ver = ?, value = ? WHERE rid = ?", kept)
    if not fresh:
        return
    tops: dict[bytes, int | None] = {}
    for part in _parts(sorted({_group_of(k) for k in fresh}), 250):
        bounds = [b for group in part for b in (group, _after(group))]
        query = _GROUP_TOPS + ",".join(["(?, ?)"] * len(part)) + ")"
        found = conn.execute(query, bounds)
        tops.update((bytes(group), top) for group, top in found)
    ranges = _free_ranges(conn)
    following: dict[bytes, int] = {}  # group -> its next row id
    rows = []
    for key in fresh:
        group = _group_of(key)
        rid = following.get(group)
        if rid is None:
            top = tops[group]
            rid = 0 if top is None else top + 1
        if _range_start(rid):  # the group has no row yet, or its range is full
            rid = next(ranges)
        rows.append((rid, key, *current[key]))
        following[group] = rid + 1
    if conn.executemany(_INSERT_CUR_IF_FREE, rows).rowcount == len(rows):
        return
    for rid, key, ver, value in rows:  # some row ids were taken: those keys move on
        row = conn.execute("SELECT key FROM cur WHERE rid = ?", (rid,)).fetchone()
        if bytes(row[0]) != key:
            conn.execute("INSERT INTO cur VALUES(?, ?, ?, ?)", (next(ranges), key, ver, value))


#: (group, its highest row id or NULL) for (group, first key after it) pairs: "(?, ?), …)"
_GROUP_TOPS = (
    "SELECT column1, (SELECT max(rid) FROM cur WHERE key >= column1 AND key < column2) "
    "FROM (VALUES "
)
_INSERT_CUR_IF_FREE = "INSERT OR IGNORE INTO cur VALUES(?, ?, ?, ?)"


def _range_start(rid: int) -> bool:
    """Is ``rid`` the first slot of a group range (SLOT_BITS read now: a test shrinks it)?"""
    return not rid & ((1 << SLOT_BITS) - 1)


def _free_ranges(conn: sqlite3.Connection) -> Iterator[int]:
    """The first row ids of the group ranges after every row ``cur`` has now, in order."""
    top = conn.execute("SELECT max(rid) FROM cur").fetchone()[0]
    first = 1 if top is None else (top >> SLOT_BITS) + 1
    return (group << SLOT_BITS for group in itertools.count(first))


def _parts(items: Sequence[bytes], size: int) -> Iterator[Sequence[bytes]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def lock_path(path: Path) -> Path:
    """The file whose exclusive ``flock`` marks the ledger at ``path`` taken by a writer."""
    return path.with_name(path.name + ".lock")


class Store:
    """One ledger database; the writer connection plus per-thread reader connections."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self.conn = conn
        self._lock_fd: int | None = None
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._next_vid = (conn.execute("SELECT max(vid) FROM vals").fetchone()[0] or 0) + 1
        self._wal_limit = WAL_RESTART_BYTES

    # ------------------------------------------------------------------ lifecycle
    @classmethod
    def create(cls, path: Path, channel: str) -> Store:
        if path.exists():
            raise LedgerError(f"{path} already exists")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA page_size={PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode=WAL")
            # schema and identity in one transaction: a half-created ledger cannot exist
            conn.executescript(
                "BEGIN;"
                + _SCHEMA
                + f"INSERT INTO meta VALUES('format', X'{FORMAT.hex()}');"
                + f"INSERT INTO meta VALUES('channel', X'{channel.encode().hex()}');"
                + "COMMIT;"
            )
        finally:
            conn.close()
        return cls.open(path)

    @classmethod
    def open(cls, path: Path, *, readonly: bool = False) -> Store:
        if not path.is_file():
            raise LedgerError(f"no ledger at {path}")
        conn = _connect(path, readonly)
        try:
            row = conn.execute("SELECT value FROM meta WHERE name='format'").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise LedgerError(f"{path} is not a Caravan ledger: {exc}") from None
        if row is None or row[0] != FORMAT:
            conn.close()
            raise LedgerError(f"{path} is not a Caravan ledger (format {row!r})")
        try:
            _ensure_cur(conn, path, readonly)
            return cls(path, conn)
        except sqlite3.DatabaseError as exc:  # busy past the timeout, a damaged file
            conn.close()
            raise LedgerError(f"cannot open the ledger {path}: {exc}") from None
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the per-thread readers, then the writer (which checkpoints the WAL)."""
        for reader in self._readers:
            reader.close()
        self._readers.clear()
        self._local = threading.local()
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the writer lock
            self._lock_fd = None

    def lock_for_writing(self) -> bool:
        """Take the ledger's writer lock: one writing process at a time. True when taken
        now, False when this store already holds it; :class:`LedgerError` when another
        process (or another store of this one) holds it.

        An exclusive ``flock`` on a sidecar file, not on the database: closing any
        descriptor of the database would drop SQLite's own POSIX locks of this process.
        The lock goes with the process (kill -9 included) or :meth:`close`; readers never
        take it.
        """
        if self._lock_fd is not None:
            return False
        fd = os.open(lock_path(self.path), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise LedgerError(
                f"the ledger {self.path} is being written by another process (a running "
                "node?): stop it, or send the request through it (--node URL)"
            ) from None
        self._lock_fd = fd
        return True

    @property
    def channel(self) -> str:
        row = self.conn.execute("SELECT value FROM meta WHERE name='channel'").fetchone()
        return bytes(row[0]).decode()

    def connect_reader(self) -> sqlite3.Connection:
        """A new read-only connection (the caller closes it)."""
        return _connect(self.path, readonly=True)

    @staticmethod
    def open_reader(path: Path) -> sqlite3.Connection:
        """A read-only connection to the ledger at ``path`` (another process's, say)."""
        return _connect(path, readonly=True)

    def reader(self) -> sqlite3.Connection:
        """A read connection for the calling thread (sees the last committed block)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = _connect(self.path, readonly=True)
            self._local.conn = conn
            self._readers.append(conn)
        return conn

    # ---------------------------------------------------------------------- reads
    def height(self) -> int:
        row = self.conn.execute("SELECT max(number) FROM blocks").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def last_block(self) -> StoredBlock | None:
        row = self.conn.execute(
            "SELECT number, hash, header, signature, tsa_token FROM blocks "
            "ORDER BY number DESC LIMIT 1"
        ).fetchone()
        return None if row is None else StoredBlock(*row)

    def block(self, number: int, conn: sqlite3.Connection | None = None) -> StoredBlock | None:
        row = (
            (conn or self.conn)
            .execute(
                "SELECT number, hash, header, signature, tsa_token FROM blocks WHERE number=?",
                (number,),
            )
            .fetchone()
        )
        return None if row is None else StoredBlock(*row)

    def block_txs(
        self, number: int, conn: sqlite3.Connection | None = None
    ) -> list[tuple[int, bytes, str, int, bytes]]:
        lo = ver_of(number, 0)
        return (
            (conn or self.conn)
            .execute(
                "SELECT ver, tx_id, code, ts_ns, record FROM txs WHERE ver >= ? AND ver < ? "
                "ORDER BY ver",
                (lo, lo + MAX_TX_PER_BLOCK),
            )
            .fetchall()
        )

    def existing_tx_ids(
        self, tx_ids: Sequence[bytes], conn: sqlite3.Connection | None = None
    ) -> set[bytes]:
        found: set[bytes] = set()
        for part in _parts(tx_ids, 500):
            marks = ",".join("?" * len(part))
            query = f"SELECT tx_id FROM txs WHERE tx_id IN ({marks})"  # noqa: S608 (only ?s)
            rows = (conn or self.conn).execute(query, part)
            found.update(bytes(r[0]) for r in rows)
        return found

    def certificate(self, sha256: bytes, conn: sqlite3.Connection | None = None) -> bytes | None:
        row = (
            (conn or self.conn)
            .execute("SELECT der FROM certs WHERE sha256=?", (sha256,))
            .fetchone()
        )
        return None if row is None else bytes(row[0])

    # ---------------------------------------------------------------- world state
    @staticmethod
    def get(conn: sqlite3.Connection, key: str) -> tuple[int, bytes] | None:
        """The current (version, value) of ``key``, or None when absent or deleted."""
        raw = key.encode()
        if _clustered(raw):
            row = conn.execute("SELECT ver, value FROM cur WHERE key = ?", (raw,)).fetchone()
            return None if row is None else (row[0], row[1])
        row = conn.execute(
            "SELECT k.ver, v.value FROM kv k JOIN vals v ON v.vid = k.vid "
            "WHERE k.key = ? ORDER BY k.ver DESC LIMIT 1",
            (raw,),
        ).fetchone()
        if row is None or row[1] is None:
            return None
        return row[0], row[1]

    @staticmethod
    def range(conn: sqlite3.Connection, start: str, end: str) -> Iterator[tuple[str, int, bytes]]:
        """Current (key, version, value) for keys in [start, end) ('' end = open)."""
        # end '' = open: U+10FFFF+1 never occurs in UTF-8, so b"\xf5" bounds every key
        lo, hi = start.encode(), end.encode() if end else b"\xf5"
        if _clustered(lo, hi):  # one contiguous read of the key-ordered copy
            for key, ver, value in conn.execute(
                "SELECT key, ver, value FROM cur WHERE key >= ? AND key < ? ORDER BY key",
                (lo, hi),
            ):
                yield bytes(key).decode(), ver, value
            return
        rows = conn.execute(CURRENT_SQL + " ORDER BY k.key", (lo, hi))
        for key, ver, value in rows:
            yield bytes(key).decode(), ver, value

    @staticmethod
    def history(conn: sqlite3.Connection, key: str) -> list[tuple[int, bytes | None, bytes, int]]:
        """Every committed (version, value or None, tx_id, ts_ns) of ``key``, oldest first."""
        return conn.execute(
            "SELECT k.ver, v.value, t.tx_id, t.ts_ns FROM kv k "
            "JOIN vals v ON v.vid = k.vid JOIN txs t ON t.ver = k.ver "
            "WHERE k.key = ? ORDER BY k.ver",
            (key.encode(),),
        ).fetchall()

    @staticmethod
    def writes_from(conn: sqlite3.Connection, ver: int) -> Iterator[tuple[int, str, bytes | None]]:
        """(ver, key, value) of every write at version ``ver`` or later, in commit order.

        Write-log rows are appended in version order, so the first row at ``ver`` is found
        by bisecting on ``vid`` rather than by scanning (the log has no index on ``ver``).
        """
        lo, hi = 1, int(conn.execute("SELECT coalesce(max(vid), 0) FROM vals").fetchone()[0]) + 1
        while lo < hi:
            mid = (lo + hi) // 2
            row = conn.execute("SELECT ver FROM vals WHERE vid >= ? LIMIT 1", (mid,)).fetchone()
            if row is None or row[0] >= ver:
                hi = mid
            else:
                lo = mid + 1
        rows = conn.execute("SELECT ver, key, value FROM vals WHERE vid >= ? ORDER BY vid", (lo,))
        for row_ver, key, value in rows:
            yield row_ver, bytes(key).decode(), value

    def state_key_count(self) -> int:
        row = self.conn.execute(
            "SELECT count(*) FROM (SELECT key, max(ver), vid FROM kv GROUP BY key) k "
            "JOIN vals v ON v.vid = k.vid WHERE v.value IS NOT NULL"
        ).fetchone()
        return int(row[0])

    # --------------------------------------------------------------------- writes
    def append_block(self, block: BlockWrite) -> None:
        """Write one block, its transactions and their writes in ONE durable transaction."""
        conn = self.conn
        vid = self._next_vid
        vals = []
        index = []
        current: dict[bytes, tuple[int, bytes | None]] = {}  # clustered keys: last write
        for ver, key, value in block.writes:
            raw = key.encode()
            vals.append((vid, ver, raw, value))
            index.append((raw, ver, vid))
            if raw.startswith(_CLUSTERED_RAW):
                current[raw] = (ver, value)
            vid += 1
        index.sort()  # key order: neighbouring pages, fewer pages touched
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(
                "INSERT INTO blocks VALUES(?, ?, ?, ?, ?)",
                (block.number, block.hash, block.header, block.signature, block.tsa_token),
            )
            conn.executemany("INSERT INTO txs VALUES(?, ?, ?, ?, ?)", block.txs)
            conn.executemany("INSERT INTO vals VALUES(?, ?, ?, ?)", vals)
            conn.executemany("INSERT INTO kv VALUES(?, ?, ?)", index)
            if current:
                _write_current(conn, current)
            conn.executemany("INSERT OR IGNORE INTO certs VALUES(?, ?)", block.certs)
            conn.execute("COMMIT")
        except BaseException:
            _roll_back(conn)
            raise
        self._next_vid = vid
        self._bound_wal()

    def _bound_wal(self) -> None:
        """Keep the WAL from growing without end while readers never stop.

        The automatic (passive) checkpoint copies the WAL into the database, but the WAL
        restarts from its beginning only at a moment when no reader uses it; endorsing
        workers read all the time, so under load that moment never comes (SQLite's
        "checkpoint starvation"). Past ``WAL_RESTART_BYTES`` a RESTART checkpoint waits
        briefly for the readers of the moment (a worker's chunk; new readers then read
        the database file) and restarts the WAL. A long reader (an index catching up)
        makes it give up quickly; it is tried again once the WAL has grown as much again.
        """
        try:
            size = Path(f"{self.path}-wal").stat().st_size
        except FileNotFoundError:
            return
        if size <= self._wal_limit:
            return
        conn = self.conn
        conn.execute(f"PRAGMA busy_timeout={_RESTART_WAIT_MS}")
        try:
            busy = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()[0]
        finally:
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
        self._wal_limit = WAL_RESTART_BYTES if busy == 0 else size + WAL_RESTART_BYTES

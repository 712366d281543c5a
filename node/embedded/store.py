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
  of a group (one trail) get neighbouring row ids in a range found by hashing the group
  (``range << SLOT_BITS | slot``), so a read needs no index: one descent of the rowid
  tree. ``kv`` + ``vals`` stay the record; ``ledger verify`` checks the copy.
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
import hashlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import LedgerError

__all__ = [
    "VER_SHIFT",
    "BlockWrite",
    "Store",
    "StoredBlock",
    "clustered_ranges",
    "group_of",
    "group_rows",
    "ver_of",
]

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
#: ``cur``'s row id is ``range << SLOT_BITS | slot``. A group (a trail: the keys that
#: share the prefix and first component, ``\x00trail\x00<ref>\x00``) starts in the range
#: given by a hash of it (:func:`_home`) and takes its slots in order; when a range is full
#: (its last slot has a row) the group goes on in the next range, and readers follow: a
#: *chain*. Groups whose hashes meet share a range; a reader keeps its own keys. Nothing
#: is ever removed (a delete leaves a tombstone, value NULL), so a full range stays full.
#: A rowid table, not WITHOUT ROWID: there the interior pages hold whole rows, and rows of
#: ~1.6 KB leave 3-4 per 8 KiB interior page: a tree 8 levels deep at 100k trail entries,
#: whose interior pages (~22% of it) no page cache keeps once the ledger outgrows the RAM.
#: No index on ``key``: a trail read is one descent to its rows (decision 0007).
SLOT_BITS = 20
#: ``meta('cur')``: the layout of ``cur`` this code reads and writes (see _ensure_cur)
CUR_LAYOUT = b"hashed-groups/1"
_CLUSTERED_RAW = tuple(p.encode() for p in CLUSTERED)
#: the current (key, ver, value) of the keys in [?, ?), from the write log and its index
CURRENT_SQL = (
    "SELECT k.key, k.ver, v.value FROM "
    "(SELECT key, max(ver) AS ver, vid FROM kv WHERE key >= ? AND key < ? GROUP BY key) k "
    "JOIN vals v ON v.vid = k.vid WHERE v.value IS NOT NULL"
)
_CUR_SCHEMA = """
CREATE TABLE cur(rid INTEGER PRIMARY KEY, key BLOB NOT NULL, ver INTEGER NOT NULL, value BLOB);
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


_T = TypeVar("_T")


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
    """Give a ledger written by an earlier Caravan the current layout of ``cur``.

    A ledger without ``cur`` (before the copy existed) gets it filled from the state
    index; one with an earlier ``cur`` (WITHOUT ROWID, or row ids in allocation order
    with an index on ``key``) has it rewritten with rows placed by group. Both in one
    transaction, by the first writer: a read-only open asks for that.
    """
    if _cur_ready(conn):
        return
    if readonly:
        raise LedgerError(
            f"the ledger {path} was written by an earlier Caravan: open it once for writing "
            "(start its node, or any write command) to lay out the trail copy"
        )
    conn.execute("BEGIN IMMEDIATE")
    try:
        if not _cur_ready(conn):  # not done meanwhile by another writer
            if conn.execute("PRAGMA table_info(cur)").fetchall():
                conn.execute("ALTER TABLE cur RENAME TO cur_before")
                conn.execute(_CUR_SCHEMA)
                _fill_cur(conn, conn.execute("SELECT key, ver, value FROM cur_before"))
                conn.execute("DROP TABLE cur_before")
            else:
                conn.execute(_CUR_SCHEMA)
                for bounds in clustered_ranges():
                    _fill_cur(conn, conn.execute(CURRENT_SQL, bounds))
            conn.execute("INSERT OR REPLACE INTO meta VALUES('cur', ?)", (CUR_LAYOUT,))
        conn.execute("COMMIT")
    except BaseException:
        _roll_back(conn)
        raise


def _cur_ready(conn: sqlite3.Connection) -> bool:
    """Does the ledger have ``cur``, in this code's layout?"""
    row = conn.execute("SELECT value FROM meta WHERE name='cur'").fetchone()
    return (
        row is not None
        and bytes(row[0]) == CUR_LAYOUT
        and bool(conn.execute("PRAGMA table_info(cur)").fetchall())
    )


def _roll_back(conn: sqlite3.Connection) -> None:
    """Roll back the open transaction, if SQLite has not already (a full disk, an I/O
    error): a ROLLBACK then would raise and hide the error that caused it."""
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _fill_cur(conn: sqlite3.Connection, rows: Iterable[tuple[bytes, int, bytes]]) -> None:
    """Insert (key, ver, value) rows of distinct keys, in any order, into an empty ``cur``."""
    tops: dict[int, int | None] = {}

    def placed() -> Iterator[tuple[int, bytes, int, bytes]]:
        for key, ver, value in rows:
            raw = bytes(key)
            yield _take_slot(_home(group_of(raw)), tops, _empty), raw, ver, value

    conn.executemany(_INSERT_CUR, placed())


def _empty(_range: int) -> int | None:
    return None


def _home(group: bytes) -> int:
    """The first range of a group's chain: 64 bits of BLAKE2b of the group, cut so that
    ``range << SLOT_BITS | slot`` is a positive 64-bit row id (SLOT_BITS read now: a
    test shrinks it). The same on every machine and in every process."""
    digest = hashlib.blake2b(group, digest_size=8).digest()
    return int.from_bytes(digest, "big") >> (SLOT_BITS + 1)


def _next_range(number: int) -> int:
    return (number + 1) & ((1 << (63 - SLOT_BITS)) - 1)


def _take_slot(
    number: int, tops: dict[int, int | None], top_of: Callable[[int], int | None]
) -> int:
    """The row id a new key of the chain starting at range ``number`` takes: after the
    highest row of the chain's first range that is not full. ``tops`` (range -> highest
    row id taken, None = none) remembers what this batch took; ``top_of`` asks the table
    about a range not seen yet."""
    mask = (1 << SLOT_BITS) - 1
    while True:
        if number not in tops:
            tops[number] = top_of(number)
        top = tops[number]
        if top is None:
            rid = number << SLOT_BITS
        elif top & mask != mask:
            rid = top + 1
        else:  # full: the chain goes on in the next range
            number = _next_range(number)
            continue
        tops[number] = rid
        return rid


def group_of(raw: bytes) -> bytes:
    """The key up to the end of its first component after its clustered prefix: every
    entry of a trail (``\\x00trail\\x00<ref>\\x00…``), however many components follow."""
    for prefix in _CLUSTERED_RAW:
        if raw.startswith(prefix):
            end = raw.find(b"\x00", len(prefix))
            return raw if end < 0 else raw[: end + 1]
    return raw


def _one_group(lo: bytes, hi: bytes) -> bytes | None:
    """The group that holds every key of [lo, hi) (a trail's range), or None."""
    for prefix in _CLUSTERED_RAW:
        if lo.startswith(prefix):
            end = lo.find(b"\x00", len(prefix))
            if end < 0:
                return None
            group = lo[: end + 1]
            return group if hi <= _after(group) else None
    return None


def group_rows(
    conn: sqlite3.Connection, group: bytes
) -> Iterator[tuple[int, bytes, int, bytes | None]]:
    """Every (rid, key, ver, value or None) row of the chain that holds ``group``, in row
    order: its home range, then each next one while the one before is full. Rows of other
    groups that share those ranges come too; callers keep the keys they asked for."""
    number = _home(group)
    mask = (1 << SLOT_BITS) - 1
    while True:
        first = number << SLOT_BITS
        last = first | mask
        rows = conn.execute(_CHAIN_SQL, (first, last)).fetchall()  # no statement left open
        yield from rows
        if not rows or rows[-1][0] != last:  # row id order: the last slot comes last
            return
        number = _next_range(number)


def clustered_ranges() -> list[tuple[bytes, bytes]]:
    """The [lo, hi) key ranges whose current values ``cur`` holds."""
    return [(prefix, _after(prefix)) for prefix in _CLUSTERED_RAW]


def _after(prefix: bytes) -> bytes:
    """The first byte string after every string that starts with ``prefix``."""
    return prefix[:-1] + bytes([prefix[-1] + 1])


def _clustered(raw: bytes) -> bool:
    """Does the key lie inside a CLUSTERED prefix?"""
    return raw.startswith(_CLUSTERED_RAW)


def _write_current(
    conn: sqlite3.Connection, current: dict[bytes, tuple[int, bytes | None]], since: int
) -> None:
    """Apply a block's last write of each clustered key to ``cur``, in its transaction.

    ``since`` is the block's first version. A key written before it may have a row (a
    value, or a tombstone: a delete keeps the row with value NULL, so that a full range
    stays full and the chains after it stay reachable): that row is found in its chain
    and updated. A trail's entries are written once, so this is the rare path. A new
    key takes the next slot of its chain (:func:`_take_slot`). A few statements per
    block, not per key.
    """
    keys = sorted(current)
    earlier: set[bytes] = set()
    for part in _parts(keys, 500):
        marks = ",".join("?" * len(part))
        found = conn.execute(
            f"SELECT DISTINCT key FROM kv WHERE key IN ({marks}) AND ver < ?",  # noqa: S608
            (*part, since),
        )
        earlier.update(bytes(key) for (key,) in found)
    rids: dict[bytes, int] = {}
    for key in sorted(earlier):
        for rid, other, _ver, _value in group_rows(conn, group_of(key)):
            if other == key:
                rids[key] = rid
                break
    if rids:
        conn.executemany(
            "UPDATE cur SET ver = ?, value = ? WHERE rid = ?",
            [(*current[key], rid) for key, rid in rids.items()],
        )
    fresh = [key for key in keys if key not in rids and current[key][1] is not None]
    if not fresh:
        return
    homes = {key: _home(group_of(key)) for key in fresh}
    mask = (1 << SLOT_BITS) - 1
    tops: dict[int, int | None] = {}
    for numbers in _parts(sorted(set(homes.values())), 250):
        bounds = [b for n in numbers for b in (n << SLOT_BITS, n << SLOT_BITS | mask)]
        query = _RANGE_TOPS + ",".join(["(?, ?)"] * len(numbers)) + ")"
        tops.update((first >> SLOT_BITS, top) for first, top in conn.execute(query, bounds))

    def top_of(number: int) -> int | None:
        first = number << SLOT_BITS
        return conn.execute(_RANGE_TOP, (first, first | mask)).fetchone()[0]  # type: ignore[no-any-return]

    rows = [(_take_slot(homes[key], tops, top_of), key, *current[key]) for key in fresh]
    conn.executemany(_INSERT_CUR, rows)


_INSERT_CUR = "INSERT INTO cur VALUES(?, ?, ?, ?)"
_CHAIN_SQL = "SELECT rid, key, ver, value FROM cur WHERE rid BETWEEN ? AND ?"
_RANGE_TOP = "SELECT max(rid) FROM cur WHERE rid BETWEEN ? AND ?"
#: (first row id of a range, its highest row id or NULL) for (first, last) pairs: "(?, ?), …)"
_RANGE_TOPS = (
    "SELECT column1, (SELECT max(rid) FROM cur WHERE rid BETWEEN column1 AND column2) FROM (VALUES "
)


def _parts(items: Sequence[_T], size: int) -> Iterator[Sequence[_T]]:
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
                + f"INSERT INTO meta VALUES('cur', X'{CUR_LAYOUT.hex()}');"
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
            for _rid, found, ver, value in group_rows(conn, group_of(raw)):
                if found == raw:
                    return None if value is None else (ver, value)
            return None
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
        group = _one_group(lo, hi)
        if group is not None:  # a trail: one contiguous read of the grouped copy
            found = [
                (key, ver, value)
                for _rid, key, ver, value in group_rows(conn, group)
                if value is not None and lo <= key < hi
            ]
            found.sort()  # keys are unique: (key, …) tuples sort by key
            for key, ver, value in found:
                yield key.decode(), ver, value
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
                _write_current(conn, current, ver_of(block.number, 0))
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

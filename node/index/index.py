"""The off-chain query index: fed from committed blocks, answers lists and searches.

>>> index = Index("sqlite:///data/index.db")  # or "postgresql://caravan@db.example/caravan"
>>> index.catch_up(ledger)  # applies every valid transaction not yet indexed
12
>>> index.aeos(country="KZ", status="valid", holder="khorgos").items
[AeoEntry(aeo_id='KZ-AEO-2026-000001', …)]

Each block is one database transaction holding its rows and the checkpoint, so a crash
never leaves half a block; ``catch_up`` re-reads from the checkpoint's block and skips
what is already there, so running it again changes nothing. ``rebuild`` replays the
ledger from block 0 and gives the same rows.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    and_,
    create_engine,
    delete,
    event,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DBAPIError,
    IntegrityError,
    NoSuchModuleError,
    OperationalError,
    ProgrammingError,
    StatementError,
)

from chaincode.aeo import AEO_ID, TIN
from chaincode.context import COUNTRY, MSP_ID
from chaincode.errors import ContractError
from chaincode.timeutil import format_time, parse_time
from chaincode.trace import CONSIGNMENT_REF, EVENT_TYPES, SEZ_CODE
from node.ledger import TxChanges

from .errors import BadQuery, IndexFeedError, IndexUnavailable
from .feed import PRIMARY_KEYS, BlockBatch
from .models import (
    AeoEntry,
    Checkpoint,
    EventEntry,
    MemberEntry,
    MraEntry,
    Page,
    SezEntry,
)
from .tables import (
    METADATA,
    AeoRow,
    CheckpointRow,
    EventRow,
    MemberRow,
    MraPartyRow,
    MraRow,
    SezRow,
)

__all__ = ["AEO_STATUSES", "MAX_LIMIT", "MRA_STATES", "ChangeFeed", "Index"]

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
AEO_STATUSES = ("valid", "suspended", "revoked", "expired")
MRA_STATES = ("negotiating", "signed", "in_force", "suspended", "terminated")
_MAX_SEARCH = 200

_T: dict[str, Table] = {
    "members": MemberRow.__table__,  # type: ignore[attr-defined]
    "aeo": AeoRow.__table__,  # type: ignore[attr-defined]
    "mra": MraRow.__table__,  # type: ignore[attr-defined]
    "mra_party": MraPartyRow.__table__,  # type: ignore[attr-defined]
    "sez": SezRow.__table__,  # type: ignore[attr-defined]
    "events": EventRow.__table__,  # type: ignore[attr-defined]
    "checkpoint": CheckpointRow.__table__,  # type: ignore[attr-defined]
}


class ChangeFeed(Protocol):
    """What the index reads from a ledger (node.ledger.Ledger provides it)."""

    @property
    def height(self) -> int: ...

    def changes(self, from_block: int = 0) -> Iterator[TxChanges]: ...


def _now_us() -> int:
    return time.time_ns() // 1000


class Index:
    """The index database at ``url`` (SQLite file or PostgreSQL); tables are created."""

    def __init__(self, url: str, *, clock: Callable[[], int] = _now_us) -> None:
        #: the current time in microseconds, for what is derived at query time
        #: (an AEO past valid_until is expired, a signed MRA past effective_from in force)
        self.clock = clock
        #: as given (a password included): another process opens the same index with it
        self.url = url
        self.engine = _engine(url)
        for attempt in range(_CREATE_ATTEMPTS):
            try:
                # on SQLite one creator at a time: the node and its index feeder open a
                # new index together, and each checks for the tables and the checkpoint
                # row before it creates them
                with _write(self.engine) as conn:
                    METADATA.create_all(conn)
                    _ensure_checkpoint(conn)
                return
            except (OperationalError, ProgrammingError, IntegrityError) as exc:
                # PostgreSQL: another process created a table or the checkpoint row
                # between our check and our CREATE/INSERT: check again
                if attempt + 1 < _CREATE_ATTEMPTS and _created_meanwhile(exc):
                    continue
                self.engine.dispose()
                raise IndexUnavailable(
                    f"the index database cannot be opened: {_reason(exc)}"
                ) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------ feeding
    def checkpoint(self) -> Checkpoint:
        with self._connect() as conn:
            return _read_checkpoint(conn)

    def catch_up(self, ledger: ChangeFeed) -> int:
        """Index every valid transaction after the checkpoint; the number applied."""
        height = ledger.height  # every block below it is in changes() below
        done = self.checkpoint()
        applied = 0
        batch = BlockBatch()
        # blocks are indexed whole, so the checkpoint's block is done: start after it
        for change in ledger.changes(done.block + 1):
            if (change.block, change.index) <= (done.block, done.tx_index):
                continue
            if batch.last is not None and change.block != batch.last.block:
                applied += self._apply(batch)
                batch = BlockBatch()
            batch.add(change)
        if batch.last is not None:
            applied += self._apply(batch)
        self._advance(height - 1)  # blocks without a valid transaction
        return applied

    def rebuild(self, ledger: ChangeFeed) -> int:
        """Drop every row (and table: a new schema applies) and replay from block 0."""
        with self._begin() as conn:
            METADATA.drop_all(conn)
            METADATA.create_all(conn)
            _ensure_checkpoint(conn)
        return self.catch_up(ledger)

    def _apply(self, batch: BlockBatch) -> int:
        last = batch.last
        assert last is not None
        with self._begin() as conn:
            done = _read_checkpoint(conn, lock=True)
            if last.block <= done.block:
                return 0  # another feeder indexed this block meanwhile
            try:
                self._write(conn, batch)
            except StatementError as exc:  # DataError, IntegrityError, a value of a bad type
                if isinstance(exc, OperationalError):
                    raise
                raise IndexFeedError(
                    f"block {last.block}: a value does not fit the index ({_reason(exc)})"
                ) from None
            conn.execute(
                update(_T["checkpoint"])
                .where(_T["checkpoint"].c.id == 1)
                .values(block=last.block, tx_index=last.index, tx_id=last.tx_id)
            )
        return batch.txs

    def _write(self, conn: Connection, batch: BlockBatch) -> None:
        for name, keys in batch.deletes.items():
            if keys:
                table = _T[name]
                (pk,) = PRIMARY_KEYS[name]
                conn.execute(delete(table).where(table.c[pk].in_([k[0] for k in keys])))
        for name, rows in batch.upserts.items():
            if rows:
                conn.execute(self._upsert(name), list(rows.values()))
        if batch.parties:
            party = _T["mra_party"]
            conn.execute(delete(party).where(party.c.mra_id.in_(list(batch.parties))))
            pairs = [
                {"mra_id": mra_id, "msp_id": msp_id}
                for mra_id, parties in batch.parties.items()
                for msp_id in parties or ()
            ]
            if pairs:
                conn.execute(insert(party), pairs)

    def _upsert(self, name: str) -> Any:
        table = _T[name]
        dialect = postgresql if self.engine.dialect.name == "postgresql" else sqlite
        stmt = dialect.insert(table)
        keys = PRIMARY_KEYS[name]
        return stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={c.name: stmt.excluded[c.name] for c in table.c if c.name not in keys},
        )

    def _advance(self, block: int) -> None:
        with self._begin() as conn:
            done = _read_checkpoint(conn, lock=True)
            if block > done.block:
                conn.execute(
                    update(_T["checkpoint"])
                    .where(_T["checkpoint"].c.id == 1)
                    .values(block=block, tx_index=-1, tx_id=None)
                )

    # ------------------------------------------------------------------ queries
    def members(
        self, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None
    ) -> Page[MemberEntry]:
        t = _T["members"]
        query = select(t)
        after = _cursor(cursor, "members", (str,))
        if after:
            query = query.where(t.c.msp_id > after[0])
        rows, more = self._page(query.order_by(t.c.msp_id), limit)
        items = [
            MemberEntry(r.msp_id, r.country, r.name, format_time(r.admitted_us), r.block, r.tx_id)
            for r in rows
        ]
        return Page(items, _next("members", more, items[-1].msp_id if items else None))

    def sezs(self, *, limit: int = DEFAULT_LIMIT, cursor: str | None = None) -> Page[SezEntry]:
        t = _T["sez"]
        query = select(t)
        after = _cursor(cursor, "sez", (str,))
        if after:
            query = query.where(t.c.sez > after[0])
        rows, more = self._page(query.order_by(t.c.sez), limit)
        items = [
            SezEntry(r.sez, r.country, r.msp_id, r.name, r.operators, r.block, r.tx_id)
            for r in rows
        ]
        return Page(items, _next("sez", more, items[-1].sez if items else None))

    def aeos(
        self,
        *,
        country: str | None = None,
        status: str | None = None,
        holder: str | None = None,
        tin: str | None = None,
        issuer: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[AeoEntry]:
        """AEO certificates by issuing country, status, holder name (a case-insensitive
        substring), holder TIN or issuing administration, in aeo_id order."""
        t = _T["aeo"]
        now = self.clock()
        where: list[ColumnElement[bool]] = []
        if country is not None:
            where.append(t.c.country == _match(country, COUNTRY, "country", "an ISO 3166 code"))
        if status is not None:
            if status not in AEO_STATUSES:
                raise BadQuery(f"status must be one of {', '.join(AEO_STATUSES)}")
            if status == "valid":
                where += [t.c.status == "valid", t.c.valid_until_us > now]
            elif status == "expired":
                where += [t.c.status == "valid", t.c.valid_until_us <= now]
            else:
                where.append(t.c.status == status)
        if holder is not None:
            text = _text(holder, "holder").strip().casefold()
            if not text:
                raise BadQuery("holder must not be blank")
            where.append(t.c.holder_name_folded.like(f"%{_like_escape(text)}%", escape="\\"))
        if tin is not None:
            where.append(t.c.holder_tin == _match(tin, TIN, "tin", "a TIN such as KZ123456789012"))
        if issuer is not None:
            where.append(t.c.issuer == _match(issuer, MSP_ID, "issuer", "an MSP id"))
        after = _cursor(cursor, "aeo", (str,))
        if after:
            where.append(t.c.aeo_id > after[0])
        rows, more = self._page(select(t).where(*where).order_by(t.c.aeo_id), limit)
        items = [_aeo_entry(r, now) for r in rows]
        return Page(items, _next("aeo", more, items[-1].aeo_id if items else None))

    def mras(
        self,
        *,
        party: str | None = None,
        state: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[MraEntry]:
        """MRAs by party (an MSP id) and state (derived at the index clock's time)."""
        t, p = _T["mra"], _T["mra_party"]
        now = self.clock()
        where: list[ColumnElement[bool]] = []
        if party is not None:
            msp = _match(party, MSP_ID, "party", "an MSP id")
            where.append(exists().where(p.c.mra_id == t.c.mra_id, p.c.msp_id == msp))
        if state is not None:
            if state not in MRA_STATES:
                raise BadQuery(f"state must be one of {', '.join(MRA_STATES)}")
            if state == "in_force":
                where += [t.c.state == "signed", t.c.effective_from_us <= now]
            elif state == "signed":
                where += [t.c.state == "signed", t.c.effective_from_us > now]
            else:
                where.append(t.c.state == state)
        after = _cursor(cursor, "mra", (str,))
        if after:
            where.append(t.c.mra_id > after[0])
        rows, more = self._page(select(t).where(*where).order_by(t.c.mra_id), limit)
        parties: dict[str, list[str]] = {r.mra_id: [] for r in rows}
        if rows:
            with self._connect() as conn:
                found = conn.execute(
                    select(p.c.mra_id, p.c.msp_id)
                    .where(p.c.mra_id.in_(list(parties)))
                    .order_by(p.c.mra_id, p.c.msp_id)
                )
                for mra_id, msp_id in found:
                    parties[mra_id].append(msp_id)
        items = [
            MraEntry(
                r.mra_id,
                r.title,
                parties[r.mra_id],
                _mra_state(r.state, r.effective_from_us, now),
                format_time(r.effective_from_us),
                None if r.review_date_us is None else format_time(r.review_date_us),
                r.legal_instrument_ref,
                r.block,
                r.tx_id,
            )
            for r in rows
        ]
        return Page(items, _next("mra", more, items[-1].mra_id if items else None))

    def events(
        self,
        *,
        sez: str | None = None,
        consignment_ref: str | None = None,
        since: str | None = None,
        until: str | None = None,
        event_type: str | None = None,
        aeo_id: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page[EventEntry]:
        """Anchored events by SEZ, consignment, AEO, type and event time (``since`` ≤ t <
        ``until``, RFC 3339). A consignment's events come in trail order (seq), others in
        event-time order."""
        t = _T["events"]
        where: list[ColumnElement[bool]] = []
        if sez is not None:
            where.append(t.c.sez == _match(sez, SEZ_CODE, "sez", "an SEZ code such as KZ-KHORGOS"))
        if consignment_ref is not None:
            ref = _match(consignment_ref, CONSIGNMENT_REF, "consignment_ref", "a consignment ref")
            where.append(t.c.consignment_ref == ref)
        if event_type is not None:
            if event_type not in EVENT_TYPES:
                raise BadQuery(f"event_type must be one of {', '.join(EVENT_TYPES)}")
            where.append(t.c.event_type == event_type)
        if aeo_id is not None:
            where.append(t.c.aeo_id == _match(aeo_id, AEO_ID, "aeo_id", "an AEO id"))
        lo = None if since is None else _time(since, "since")
        hi = None if until is None else _time(until, "until")
        if lo is not None and hi is not None and lo >= hi:
            raise BadQuery("since must be before until")
        if lo is not None:
            where.append(t.c.event_time_us >= lo)
        if hi is not None:
            where.append(t.c.event_time_us < hi)
        if consignment_ref is not None:
            after = _cursor(cursor, "trail", (int,))
            if after:
                where.append(t.c.seq > after[0])
            query = select(t).where(*where).order_by(t.c.seq)
        else:
            after = _cursor(cursor, "events", (int, str))
            if after:
                when, event_hash = after
                where.append(
                    or_(
                        t.c.event_time_us > when,
                        and_(t.c.event_time_us == when, t.c.event_hash > event_hash),
                    )
                )
            query = select(t).where(*where).order_by(t.c.event_time_us, t.c.event_hash)
        rows, more = self._page(query, limit)
        items = [_event_entry(r) for r in rows]
        if not items:
            return Page(items, None)
        last = rows[-1]
        if consignment_ref is not None:
            return Page(items, _next("trail", more, last.seq))
        return Page(items, _next("events", more, last.event_time_us, last.event_hash))

    # ------------------------------------------------------------------ helpers
    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every index table in primary-key order (to compare two indexes)."""
        out: dict[str, list[tuple[Any, ...]]] = {}
        with self._connect() as conn:
            for name, table in _T.items():
                order = list(table.primary_key.columns)
                out[name] = [tuple(r) for r in conn.execute(select(table).order_by(*order))]
        return out

    def _page(self, query: Select[Any], limit: int) -> tuple[Sequence[Any], bool]:
        n = _limit(limit)
        with self._connect() as conn:
            rows = conn.execute(query.limit(n + 1)).all()
        return rows[:n], len(rows) > n

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Connection]:
        """A connection for reading; a lost database is IndexUnavailable (503)."""
        try:
            with self.engine.connect() as conn:
                yield conn
        except OperationalError as exc:
            raise IndexUnavailable(f"the index database cannot be read: {_reason(exc)}") from None

    @contextlib.contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One write transaction, committed at the end of the block, else rolled back.

        On SQLite it starts with BEGIN IMMEDIATE (the write lock is taken before the
        checkpoint is read), as FOR UPDATE does on PostgreSQL.
        """
        try:
            with _write(self.engine) as conn:
                yield conn
        except OperationalError as exc:
            raise IndexUnavailable(
                f"the index database cannot be written: {_reason(exc)}"
            ) from None


@contextlib.contextmanager
def _write(engine: Engine) -> Iterator[Connection]:
    """A write transaction, committed at the end of the block, else rolled back; on
    SQLite it starts with BEGIN IMMEDIATE, so its reads already hold the write lock."""
    with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn
        conn.commit()


# ---------------------------------------------------------------------- engine
def in_memory(url: str) -> bool:
    """Whether ``url`` names an SQLite database in memory (one process only)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return False
    return parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")


def _engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise IndexUnavailable(
            "the index URL is not a database URL (sqlite:///PATH or postgresql://USER@HOST/DB)"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3, not psycopg2
    elif backend not in ("sqlite", "postgresql"):
        raise IndexUnavailable(f"the index URL {shown} is neither SQLite nor PostgreSQL")
    try:
        engine = create_engine(parsed, pool_pre_ping=backend == "postgresql")
    except (ArgumentError, NoSuchModuleError) as exc:
        raise IndexUnavailable(f"the index URL {shown} cannot be used: {exc}") from None
    if backend == "sqlite":
        file_db = parsed.database not in (None, "", ":memory:")

        @event.listens_for(engine, "connect")
        def _pragmas(dbapi_connection: Any, _record: Any) -> None:
            cur = dbapi_connection.cursor()
            if file_db:
                cur.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit may be lost on power failure, never torn
            # (and the checkpoint is lost with its rows); the index can be rebuilt
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA busy_timeout=10000")
            cur.close()

    return engine


def _reason(exc: StatementError) -> str:
    text = str(exc.orig).strip().splitlines()
    return text[0] if text else type(exc.orig).__name__


_CREATE_ATTEMPTS = 3
#: what PostgreSQL says when a concurrent creator got there first (SQLite creators take
#: turns under the write lock)
_CREATED_MEANWHILE = ("already exists", "duplicate key")


def _created_meanwhile(exc: DBAPIError) -> bool:
    message = str(exc.orig).lower()
    return any(words in message for words in _CREATED_MEANWHILE)


def _ensure_checkpoint(conn: Connection) -> None:
    table = _T["checkpoint"]
    if conn.execute(select(table.c.id).where(table.c.id == 1)).first() is None:
        conn.execute(insert(table).values(id=1, block=-1, tx_index=-1, tx_id=None))


def _read_checkpoint(conn: Connection, *, lock: bool = False) -> Checkpoint:
    table = _T["checkpoint"]
    query = select(table.c.block, table.c.tx_index, table.c.tx_id).where(table.c.id == 1)
    if lock and conn.dialect.name == "postgresql":
        query = query.with_for_update()
    row = conn.execute(query).one()
    return Checkpoint(row.block, row.tx_index, row.tx_id)


# ---------------------------------------------------------------------- input checks
def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BadQuery(f"{name} must be a string")
    if len(value) > _MAX_SEARCH:
        raise BadQuery(f"{name} is longer than {_MAX_SEARCH} characters")
    return value


def _match(value: object, pattern: re.Pattern[str], name: str, what: str) -> str:
    text = _text(value, name)
    if not pattern.match(text):
        raise BadQuery(f"{name} {text!r} is not {what}")
    return text


def _time(value: object, name: str) -> int:
    try:
        return parse_time(_text(value, name), name)
    except ContractError as exc:
        raise BadQuery(exc.message) from None


def _limit(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise BadQuery(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return limit


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _cursor(cursor: object, kind: str, types: tuple[type, ...]) -> list[Any] | None:
    """The sort key after which a page starts; refuses cursors of another list."""
    if cursor is None:
        return None
    bad = BadQuery("cursor is not one this list returned")
    if not isinstance(cursor, str) or len(cursor) > 1024:
        raise bad
    try:
        values = json.loads(base64.urlsafe_b64decode(cursor.encode("ascii") + b"=="))
    except (ValueError, binascii.Error, UnicodeError):
        raise bad from None
    if (
        not isinstance(values, list)
        or len(values) != len(types) + 1
        or values[0] != kind
        or not all(type(v) is ty for v, ty in zip(values[1:], types, strict=True))
    ):
        raise bad
    return values[1:]


def _next(kind: str, more: bool, *last: Any) -> str | None:
    if not more:
        return None
    raw = json.dumps([kind, *last], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


# ---------------------------------------------------------------------- rows -> entries
def _aeo_entry(r: Any, now: int) -> AeoEntry:
    status = "expired" if r.status == "valid" and r.valid_until_us <= now else r.status
    return AeoEntry(
        r.aeo_id,
        r.country,
        r.issuer,
        status,
        format_time(r.status_effective_us),
        r.aeo_type,
        r.holder_name,
        r.holder_tin,
        r.holder_city,
        r.holder_country,
        format_time(r.valid_until_us),
        bool(r.mra_sharing_consent),
        r.version,
        r.block,
        r.tx_id,
    )


def _mra_state(stored: str, effective_from_us: int, now: int) -> str:
    if stored == "signed" and effective_from_us <= now:
        return "in_force"
    return stored


def _event_entry(r: Any) -> EventEntry:
    return EventEntry(
        r.event_hash,
        r.sez,
        r.consignment_ref,
        r.seq,
        r.event_type,
        r.biz_step,
        r.disposition,
        format_time(r.event_time_us),
        r.location,
        r.aeo_id,
        r.prev_event_hash,
        json.loads(r.corrects),
        r.block,
        r.tx_id,
    )

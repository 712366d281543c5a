"""Endorsement: execute proposals on a snapshot of the committed state (Fabric's endorsers).

>>> pool = Endorsers(path, channel, workers=2)          # worker processes, started lazily
>>> for start, (snap, results) in pool.run(proposals):  # chunks, in order
...     ...                                             # Endorsed | Untrusted | Refused each

Endorsing one proposal is everything that does not depend on the order of the block:
parse it strictly, verify its signature, check its creator against the trust list, run
the contract on the committed state recording the read/write set, and prebuild the
transaction record (with code ``VALID``; the committer swaps the code for a recorded
conflict). It is pure CPU, so it runs in worker processes, each with its own read-only
SQLite connection, one read transaction per chunk: a chunk's results all saw the
committed state of blocks ``0 … snap-1`` (``snap`` is returned with them). The
committer (ledger.py) keeps what must be serial: the timestamp window, duplicate ids,
MVCC validation against every block written after ``snap``, the block and its write.

Workers exchange only flat tuples of bytes and strings (cheap to pickle): a chunk is a
list of ``(proposal, signature, cert index, chain indices)`` plus the distinct
certificates; a result is one of the three NamedTuples below.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sqlite3
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

from chaincode.envelope import ProposalRefused, check_unsigned, verify_signature
from chaincode.envelope import SignedProposal as _AnySignedProposal
from chaincode.merkle import leaf_hash
from chaincode.router import invoke
from chaincode.stub import Creator

from ..errors import LedgerError, NodeError
from ..proposal import Proposal, SignedProposal, node_error
from .blocks import tx_record
from .creators import TRUST_PREFIXES, CreatorVerifier
from .store import Store
from .stub import TxStub

__all__ = [
    "CHUNK",
    "Endorsed",
    "Endorsers",
    "Refused",
    "Result",
    "Untrusted",
    "chain_hashes",
    "endorse",
    "precheck",
    "precheck_many",
]

CHUNK = 256  # proposals per worker task
_CACHE_LIMIT = 100_000


class Refused(NamedTuple):
    """Refused before its creator or contract was looked at (parse, channel, signature)."""

    code: str
    status: int
    message: str


class Untrusted(NamedTuple):
    """Parsed and signed, but the creator is refused (after the time and duplicate checks)."""

    tx_id: str
    time_us: int
    code: str
    status: int
    message: str


class Endorsed(NamedTuple):
    """Executed: the contract's response and read/write set, and the prebuilt record."""

    tx_id: str
    time_us: int
    ts_ns: int
    status: int
    message: str
    payload: bytes
    reads: tuple[str, ...]
    ranges: tuple[tuple[str, str], ...]
    writes: tuple[tuple[str, bytes | None], ...]  # sorted by key
    event: tuple[str, bytes] | None
    record: bytes  # tx record with code VALID (b"" when the contract refused)
    leaf: bytes  # its RFC 6962 leaf hash (b"" when the contract refused)


Result = Endorsed | Untrusted | Refused


def precheck(signed: SignedProposal, channel: str) -> Proposal | NodeError:
    """Parse and verify one proposal (the verify releases the GIL)."""
    return precheck_many([signed], channel)[0]


def precheck_many(
    signed: Sequence[SignedProposal | None], channel: str
) -> list[Proposal | NodeError]:
    """``chaincode.envelope.check_envelope`` of each proposal, its refusal as a NodeError
    (``None``: "not a signed proposal"), in two passes: parse and check every proposal,
    then verify the signatures of those that passed.

    Verifying back to back keeps OpenSSL's P-256 tables and code in the CPU caches, where
    JSON parsing between two verifications evicts them: 15-20 % less CPU per proposal
    in a worker (docs/benchmarks.md, "Checking signatures back to back").
    """
    checked: list[Proposal | NodeError] = []
    for s in signed:
        try:
            checked.append(check_unsigned(s, channel))
        except ProposalRefused as exc:
            checked.append(node_error(exc))
    for i, s in enumerate(signed):
        if s is not None and not isinstance(checked[i], NodeError):
            try:
                verify_signature(s)
            except ProposalRefused as exc:
                checked[i] = node_error(exc)
    return checked


def chain_hashes(chain: Sequence[bytes]) -> list[str]:
    return [hashlib.sha256(c).hexdigest() for c in chain]


def endorse(view: object, signed: SignedProposal, proposal: Proposal, creator: Creator) -> Endorsed:
    """Run the contract for a checked proposal on ``view`` and build its record."""
    stub = TxStub(view, creator, proposal.tx_id, proposal.timestamp)  # type: ignore[arg-type]
    response = invoke(stub, proposal.function, list(proposal.args))
    ts = proposal.timestamp
    writes = tuple(sorted(stub.writes.items()))
    record = leaf = b""
    if response.status == 200:
        record = tx_record(
            signed,
            chain_hashes(signed.chain),
            "VALID",
            response.status,
            response.message,
            response.payload,
            stub.reads,
            stub.ranges,
            stub.writes,
            stub.event,
        )
        leaf = leaf_hash(record)
    return Endorsed(
        proposal.tx_id,
        proposal.time_us,
        ts[0] * 10**9 + ts[1],
        response.status,
        response.message,
        response.payload,
        tuple(stub.reads),
        tuple(stub.ranges),
        writes,
        stub.event,
        record,
        leaf,
    )


# ----------------------------------------------------------------- worker process side
class _WorkerView:
    """Committed state through the worker's connection, with a cache kept exact per chunk."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.cache: dict[str, tuple[int, bytes] | None] = {}

    def get(self, key: str) -> tuple[int, bytes] | None:
        try:
            return self.cache[key]
        except KeyError:
            pass
        found = Store.get(self.conn, key)
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[key] = found
        return found

    def range(self, start: str, end: str) -> Iterator[tuple[str, int, bytes]]:
        return Store.range(self.conn, start, end)

    def history(self, key: str) -> list[tuple[int, bytes | None, bytes, int]]:
        return Store.history(self.conn, key)


class _Worker:
    def __init__(self, path: str, channel: str) -> None:
        self.conn = Store.open_reader(Path(path))
        self.channel = channel
        self.view = _WorkerView(self.conn)
        self.creators = CreatorVerifier()
        self.last_vid = -1

    def _refresh(self) -> int:
        """Inside the chunk's read transaction: the snapshot's height; stale cache dropped."""
        conn = self.conn
        snap = int(conn.execute("SELECT coalesce(max(number) + 1, 0) FROM blocks").fetchone()[0])
        if self.last_vid < 0:
            self.last_vid = int(
                conn.execute("SELECT coalesce(max(vid), 0) FROM vals").fetchone()[0]
            )
            return snap
        cache, trust = self.view.cache, False
        for vid, raw in conn.execute(
            "SELECT vid, key FROM vals WHERE vid > ? ORDER BY vid", (self.last_vid,)
        ):
            key = bytes(raw).decode()
            cache.pop(key, None)
            trust = trust or key.startswith(TRUST_PREFIXES)
            self.last_vid = vid
        if trust:
            self.creators.invalidate()
        return snap

    def chunk(
        self, items: Sequence[tuple[bytes, bytes, int, tuple[int, ...]] | None], certs: list[bytes]
    ) -> tuple[int, list[Result]]:
        signed = [
            None
            if item is None
            else SignedProposal(item[0], item[1], certs[item[2]], tuple(certs[i] for i in item[3]))
            for item in items
        ]
        checked = precheck_many(signed, self.channel)  # no state needed: before BEGIN
        results: list[Result] = []
        self.conn.execute("BEGIN")
        try:
            snap = self._refresh()
            for one, done in zip(signed, checked, strict=True):
                results.append(self._one(one, done))
        finally:
            self.conn.execute("COMMIT")
        return snap, results

    def _one(self, signed: SignedProposal | None, checked: Proposal | NodeError) -> Result:
        if isinstance(checked, NodeError):
            return Refused(checked.code, checked.status, checked.message)
        assert signed is not None  # precheck_many refuses None
        try:
            creator = self.creators.check(self.view, signed, checked)
        except NodeError as exc:
            return Untrusted(checked.tx_id, checked.time_us, exc.code, exc.status, exc.message)
        return endorse(self.view, signed, checked, creator)


_WORKER: _Worker | None = None


def _init(path: str, channel: str) -> None:
    global _WORKER
    _WORKER = _Worker(path, channel)


def _chunk(
    items: Sequence[tuple[bytes, bytes, int, tuple[int, ...]] | None], certs: list[bytes]
) -> tuple[int, list[Result]]:
    assert _WORKER is not None, "worker not initialised"
    return _WORKER.chunk(items, certs)


def _ready() -> int:
    time.sleep(0.05)  # keep this worker busy so that each start-up call meets a new one
    assert _WORKER is not None, "worker not initialised"
    return os.getpid()


# -------------------------------------------------------------------- committer side
def _pack(
    proposals: Sequence[SignedProposal],
) -> tuple[list[tuple[bytes, bytes, int, tuple[int, ...]] | None], list[bytes]]:
    """Flat tuples for the pipe; each distinct certificate sent once per chunk."""
    index: dict[bytes, int] = {}
    items: list[tuple[bytes, bytes, int, tuple[int, ...]] | None] = []
    for s in proposals:
        if not isinstance(s, _AnySignedProposal):
            items.append(None)
            continue
        cert = index.setdefault(s.certificate, len(index))
        chain = tuple(index.setdefault(c, len(index)) for c in s.chain)
        items.append((s.proposal, s.signature, cert, chain))
    return items, list(index)


class Endorsers:
    """A pool of endorsing worker processes on one ledger file (started on first use)."""

    def __init__(self, path: Path, channel: str, workers: int) -> None:
        self.path = path
        self.channel = channel
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # forkserver: never fork a process that runs threads (the writer, the pools)
            context = multiprocessing.get_context("forkserver")
            self._pool = ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=_init,
                initargs=(str(self.path), self.channel),
            )
        return self._pool

    def run(
        self, proposals: Sequence[SignedProposal], window: int | None = None
    ) -> Iterator[tuple[int, tuple[int, list[Result]]]]:
        """(start index, (snap, results)) per chunk of ``proposals``, in order.

        At most ``window`` chunks are out at a time, so workers run about one block ahead
        of the committer and their snapshots stay recent.
        """
        pool = self._started()
        limit = window or 2 * self.workers + 2
        starts = iter(range(0, len(proposals), CHUNK))
        pending: deque[tuple[int, Future[tuple[int, list[Result]]]]] = deque()

        def submit() -> None:
            start = next(starts, None)
            if start is not None:
                items, certs = _pack(proposals[start : start + CHUNK])
                pending.append((start, pool.submit(_chunk, items, certs)))

        try:
            for _ in range(limit):
                submit()
            while pending:
                start, future = pending.popleft()
                submit()
                yield start, future.result()
        except BrokenProcessPool as exc:  # a worker died (killed, out of memory)
            self._pool = None  # the next batch starts a new pool
            pool.shutdown(wait=False, cancel_futures=True)
            raise LedgerError(f"an endorsing worker process died: {exc}") from None
        finally:
            for _start, future in pending:
                future.cancel()

    def start(self) -> None:
        """Start every worker now (else the first parallel batch pays for it)."""
        pool = self._started()
        for future in [pool.submit(_ready) for _ in range(self.workers)]:
            future.result()

    def pids(self) -> list[int]:
        """Process ids of the running workers (none before the first parallel batch)."""
        processes = getattr(self._pool, "_processes", None) or {}
        return sorted(processes)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

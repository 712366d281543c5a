"""The embedded ledger: signed proposals in, signed hash-chained blocks out, on SQLite.

>>> ledger = EmbeddedLedger.create(path, "caravan", genesis_proposal, node_signer)
>>> receipts = ledger.submit_many(signed_proposals)     # durable when this returns
>>> ledger.evaluate("IsRecognised", [query]).payload

For each batch of proposals the node (1) parses each proposal strictly and verifies its
signature, checks the creator against the trust list on the ledger (creators.py) and
executes the contract on the committed state, recording a read/write set — for large
batches in endorsing worker processes (endorse.py), for small ones in order in this
process (parse and verify in a thread pool: ``cryptography`` releases the GIL);
(2) in order: refuses a stale or future timestamp, a wrong channel or a duplicate
transaction id; a creator or contract refusal is answered to the caller and never
recorded; (3) validates the read set against the writes of every block after the
snapshot the transaction executed on and of earlier transactions of the same block
(MVCC: a conflict is recorded as invalid and changes nothing, as in Fabric; a worker's
read that is merely older than the committed state is executed again here); (4) cuts
blocks of at most
``max_block_tx`` transactions, signs each header with the node's key (optionally
timestamped by a TSA) and writes block, transactions and state in one durable SQLite
transaction. Receipts are returned only after their block is committed.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import itertools
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.canonical import CanonicalJsonError, parse_json
from chaincode.merkle import leaf_hash
from chaincode.router import Response, invoke
from chaincode.stub import Creator

from ..errors import LedgerError, NodeError, ProposalError, Rejected
from ..ledger import BlockView, LedgerInfo, Receipt, TxChanges, TxView
from ..proposal import Proposal, ProposalSigner, SignedProposal, parse_proposal
from .blocks import GENESIS_PREV, block_hash, block_header, decode_record, recode, sign_header
from .creators import TRUST_PREFIXES, CreatorVerifier
from .endorse import (
    Endorsed,
    Endorsers,
    Refused,
    Result,
    Untrusted,
    endorse,
    precheck,
    precheck_many,
)
from .store import CLUSTERED, MAX_TX_PER_BLOCK, VER_SHIFT, BlockWrite, Store, ver_of
from .stub import TxStub

__all__ = ["DEFAULT_MAX_BLOCK_TX", "LEDGER_FILE", "EmbeddedLedger"]

LEDGER_FILE = "ledger.db"
DEFAULT_MAX_BLOCK_TX = 2000
DEFAULT_MAX_SKEW_S = 300
DEFAULT_PARALLEL_MIN = 512  # smaller batches are endorsed in this process
_CHUNK = 128
_CACHE_LIMIT = 200_000
_RANGE_LIMIT = 1_024  # range results evaluate() keeps
_RANGE_ROWS = 64  # larger results are read each time
_RECENT_BLOCKS = 16  # MVCC keeps the written keys of this many blocks for worker snapshots

Clock = Callable[[], int]  # nanoseconds since the epoch


class _View:
    """Committed state through one connection, with a cache of recently read keys."""

    def __init__(self, conn: sqlite3.Connection, cache: dict[str, tuple[int, bytes]] | None):
        self.conn = conn
        self.cache = cache

    def get(self, key: str) -> tuple[int, bytes] | None:
        cache = self.cache
        if cache is not None:
            hit = cache.get(key)
            if hit is not None:
                return hit
        found = Store.get(self.conn, key)
        if found is not None and cache is not None:
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[key] = found
        return found

    def range(self, start: str, end: str) -> Iterator[tuple[str, int, bytes]]:
        return Store.range(self.conn, start, end)

    def history(self, key: str) -> list[tuple[int, bytes | None, bytes, int]]:
        return Store.history(self.conn, key)


_ABSENT = (-1, b"")


class _ReadCache:
    """Committed values for :meth:`EmbeddedLedger.evaluate`, shared by reader threads.

    Readers fill it; once a block is durable the committer drops the keys it wrote.
    A reader caches what it read only if no block became durable meanwhile (``gen``),
    so a value read just before a commit can never outlive it.
    """

    __slots__ = ("gen", "lock", "ranges", "values")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.gen = 0
        self.values: dict[str, tuple[int, bytes]] = {}
        self.ranges: dict[tuple[str, str], tuple[tuple[str, int, bytes], ...]] = {}

    def invalidate(self, keys: Iterable[str]) -> None:
        """After a block is durable: drop the keys it wrote, and every range (any write
        may fall into one; finding which would cost the committer per written key)."""
        with self.lock:
            self.gen += 1
            for key in keys:
                self.values.pop(key, None)
            self.ranges.clear()


class _CachedView(_View):
    """A reader's view of committed state through the shared :class:`_ReadCache`."""

    def __init__(self, conn: sqlite3.Connection, reads: _ReadCache):
        super().__init__(conn, None)
        self.reads = reads

    def get(self, key: str) -> tuple[int, bytes] | None:
        reads = self.reads
        hit = reads.values.get(key)
        if hit is not None:
            return None if hit is _ABSENT else hit
        gen = reads.gen
        found = Store.get(self.conn, key)
        with reads.lock:
            if reads.gen == gen:
                if len(reads.values) >= _CACHE_LIMIT:
                    reads.values.clear()
                reads.values[key] = _ABSENT if found is None else found
        return found

    def range(self, start: str, end: str) -> Iterator[tuple[str, int, bytes]]:
        """Small ranges (the MRAs of a pair, a member's anchors) from the cache, like keys.

        Trails are not kept: each is its own contiguous read of ``cur`` (store.py), and
        the trail benchmarks measure that read, not this cache.
        """
        if start.startswith(CLUSTERED):
            return Store.range(self.conn, start, end)
        reads = self.reads
        hit = reads.ranges.get((start, end))
        if hit is not None:
            return iter(hit)
        gen = reads.gen
        rows = Store.range(self.conn, start, end)
        first = list(itertools.islice(rows, _RANGE_ROWS + 1))
        if len(first) > _RANGE_ROWS:  # a large range: streamed, not kept
            return itertools.chain(first, rows)
        with reads.lock:
            if reads.gen == gen:
                if len(reads.ranges) >= _RANGE_LIMIT:
                    reads.ranges.clear()
                reads.ranges[(start, end)] = tuple(first)
        return iter(first)


@dataclass(slots=True)
class _Entry:
    """One transaction ordered into the block being built."""

    index: int  # position in the caller's batch
    endorsed: Endorsed
    certs: tuple[tuple[bytes, bytes], ...]  # (sha256, DER): the creator, then its chain
    code: str = "VALID"


@dataclass(frozen=True)
class _Built:
    write: BlockWrite
    written: list[str]
    trust_changed: bool


class _KeySet:
    """Keys written by a block: membership for reads, sorted order for range reads."""

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self.keys: dict[str, None] = dict.fromkeys(keys)
        self._sorted: list[str] | None = None

    def add(self, keys: Iterable[str]) -> None:
        if self._sorted is not None:  # keep the order up to date: no re-sort per transaction
            for key in keys:
                if key not in self.keys:
                    bisect.insort(self._sorted, key)
        self.keys.update(dict.fromkeys(keys))

    def touches(self, start: str, end: str) -> bool:
        if self._sorted is None:
            self._sorted = sorted(self.keys)
        i = bisect.bisect_left(self._sorted, start)
        return i < len(self._sorted) and (not end or self._sorted[i] < end)

    def conflict(self, endorsed: Endorsed) -> str:
        """VALID, or why ``endorsed``'s reads are stale against these writes."""
        keys = self.keys
        if not keys:
            return "VALID"
        if any(k in keys for k in endorsed.reads):
            return "MVCC_READ_CONFLICT"
        if any(self.touches(s, e) for s, e in endorsed.ranges):
            return "PHANTOM_READ_CONFLICT"
        return "VALID"


@dataclass
class _Inflight:
    """A built block handed to the writer thread."""

    block: list[_Entry]
    built: _Built
    future: Future[None]
    settled: bool = False


def _refused(tx_id: str, exc: NodeError | Refused | Untrusted) -> Receipt:
    return Receipt(tx_id, exc.code, exc.status, exc.message)


class EmbeddedLedger:
    """One node's ledger on one machine; see the module docstring."""

    def __init__(
        self,
        store: Store,
        signer: ProposalSigner,
        *,
        clock: Clock = time.time_ns,
        max_skew_s: int = DEFAULT_MAX_SKEW_S,
        max_block_tx: int = DEFAULT_MAX_BLOCK_TX,
        workers: int | None = None,
        parallel_min: int = DEFAULT_PARALLEL_MIN,
        timestamper: Any = None,
    ) -> None:
        if not 1 <= max_block_tx < MAX_TX_PER_BLOCK:
            raise LedgerError(f"max_block_tx must be between 1 and {MAX_TX_PER_BLOCK - 1}")
        if workers is not None and not 0 <= workers <= 64:
            raise LedgerError("workers must be between 0 and 64")
        self.store = store
        self.channel = store.channel
        self.signer = signer
        self.clock = clock
        self.max_skew_us = max_skew_s * 1_000_000
        self.max_block_tx = max_block_tx
        self.parallel_min = max(parallel_min, 1)
        self.timestamper = timestamper
        self._signer_der = signer.certificate.public_bytes(Encoding.DER)
        self._signer_sha = hashlib.sha256(self._signer_der).digest()
        self._signer_chain = [c.public_bytes(Encoding.DER) for c in signer.chain]
        self._lock = threading.Lock()
        cores = os.cpu_count() or 2
        self._pool = ThreadPoolExecutor(max_workers=cores)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        n = cores if workers is None else workers
        self._endorsers = Endorsers(store.path, self.channel, n) if n > 0 else None
        self._cache: dict[str, tuple[int, bytes]] = {}
        self._reads = _ReadCache()  # evaluate()'s cache of committed values
        # the committer reads through its own connection: the writer's holds the open block
        self._view = _View(store.connect_reader(), self._cache)
        self._broken: str | None = None
        self._creators = CreatorVerifier()
        self._known_certs: set[bytes] = set()
        self._cert_pairs: dict[bytes, tuple[bytes, bytes]] = {}
        last = store.last_block()
        self._height = 0 if last is None else last.number + 1
        self._last_hash = GENESIS_PREV if last is None else bytes(last.hash).hex()
        # MVCC across snapshots: the keys written by each recent block, by number
        self._settled = self._height  # blocks durable and visible to readers
        self._recent: dict[int, _KeySet] = {}
        self._recent_from = self._height  # every snapshot sees the blocks below this
        self._trust_block = -1  # the last block that changed the trust list

    # ---------------------------------------------------------------- lifecycle
    @classmethod
    def create(
        cls,
        path: Path,
        channel: str,
        genesis: SignedProposal,
        signer: ProposalSigner,
        **options: Any,
    ) -> EmbeddedLedger:
        """A new ledger whose block 0 is the signed ``InitLedger`` of a founding admin."""
        store = Store.create(path, channel)
        try:
            ledger = cls(store, signer, **options)
        except BaseException:
            store.close()
            _remove(path)
            raise
        try:
            ledger._genesis(genesis)
        except BaseException:
            ledger.close()
            _remove(path)
            raise
        return ledger

    @classmethod
    def open(cls, path: Path, signer: ProposalSigner, **options: Any) -> EmbeddedLedger:
        store = Store.open(path)
        if store.height() == 0:
            store.close()
            raise LedgerError(f"{path} has no genesis block")
        return cls(store, signer, **options)

    def close(self) -> None:
        if self._endorsers is not None:
            self._endorsers.close()
        self._pool.shutdown(wait=True)
        self._writer.shutdown(wait=True)
        self._view.conn.close()
        self.store.close()

    def __enter__(self) -> EmbeddedLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def _genesis(self, signed: SignedProposal) -> None:
        checked = precheck(signed, self.channel)
        if isinstance(checked, NodeError):
            raise checked
        proposal = checked
        if proposal.function != "InitLedger" or len(proposal.args) != 1:
            raise ProposalError("block 0 must be one InitLedger transaction")
        try:
            genesis = parse_json(proposal.args[0])
        except CanonicalJsonError as exc:
            raise ProposalError(f"genesis: {exc}") from None
        if not isinstance(genesis, dict):
            raise ProposalError("genesis: the InitLedger argument must be a JSON object")
        self._check_time(proposal.time_us)
        creator = self._creators.check_genesis(signed, proposal, genesis)
        endorsed = endorse(self._view, signed, proposal, creator)
        if endorsed.status != 200:
            raise Rejected("CHAINCODE_ERROR", f"genesis refused: {endorsed.message}", 400)
        self._claim()
        built = self._build([_Entry(0, endorsed, self._certs_of(signed))])
        self._write(built)
        self._settled = self._recent_from = self._height

    def claim_writer(self) -> None:
        """Become the ledger's only writing process now (a serving node does this at
        start), rather than at the first write; :class:`LedgerError` if another has."""
        with self._lock:
            self._claim()

    def _claim(self) -> None:
        if not self.store.lock_for_writing():
            return
        last = self.store.last_block()
        height = 0 if last is None else last.number + 1
        if height != self._height or (
            last is not None and bytes(last.hash).hex() != self._last_hash
        ):
            self._broken = (
                f"the ledger {self.store.path} was written by another process after this one "
                f"opened it (height {self._height} then, {height} now): open it again"
            )
            raise LedgerError(self._broken)

    def submit(self, proposal: SignedProposal) -> Receipt:
        return self.submit_many([proposal])[0]

    def submit_many(self, proposals: Sequence[SignedProposal]) -> list[Receipt]:
        """Order, validate and commit ``proposals``; one receipt each, in order."""
        with self._lock:
            return self._submit(list(proposals))

    def _chunks(
        self, proposals: list[SignedProposal]
    ) -> Iterator[tuple[int, int | None, Sequence[Result | Proposal | NodeError]]]:
        """(start, snapshot or None, results) per chunk, endorsed in workers or checked here.

        Results with a snapshot were executed by a worker; without one (small batches, no
        workers) the proposals are only parsed and verified (in threads) and execute here,
        in order, on the committed state.
        """
        if self._endorsers is not None and len(proposals) >= self.parallel_min:
            for start, (snap, results) in self._endorsers.run(proposals):
                yield start, snap, results
            return
        chunks = [proposals[i : i + _CHUNK] for i in range(0, len(proposals), _CHUNK)]
        checked = self._pool.map(precheck_many, chunks, [self.channel] * len(chunks))
        for n, prechecked in enumerate(checked):
            yield n * _CHUNK, None, prechecked

    def _submit(self, proposals: list[SignedProposal]) -> list[Receipt]:
        if self._broken is not None:
            raise LedgerError(self._broken)
        self._claim()
        receipts: list[Receipt | None] = [None] * len(proposals)
        block: list[_Entry] = []
        written = _KeySet()  # keys written by valid txs of this block
        inflight: _Inflight | None = None  # the previous block, being written
        seen: set[str] = set()
        try:
            for start, snap, results in self._chunks(proposals):
                fresh = [
                    bytes.fromhex(r.tx_id)
                    for r in results
                    if isinstance(r, Proposal | Endorsed | Untrusted)
                ]
                existing = self.store.existing_tx_ids(fresh, self._view.conn)
                for i, result in enumerate(results, start):
                    signed = proposals[i]
                    if isinstance(result, NodeError | Refused):
                        receipts[i] = _refused(_tx_id_of(signed), result)
                        continue
                    tx_id = result.tx_id
                    try:
                        self._check_time(result.time_us)
                    except NodeError as exc:
                        receipts[i] = _refused(tx_id, exc)
                        continue
                    if tx_id in seen or bytes.fromhex(tx_id) in existing:
                        receipts[i] = Receipt(
                            tx_id,
                            "DUPLICATE_TXID",
                            409,
                            f"transaction {tx_id} was already submitted",
                        )
                        continue
                    endorsed: Endorsed | Untrusted
                    if (
                        isinstance(result, Proposal)
                        or snap is None
                        or snap <= self._trust_block
                        or snap < self._recent_from
                    ):  # execute here, now: on the committed state and the current trust list
                        endorsed, at = self._endorse_here(signed, result), self._settled
                    else:
                        endorsed, at = result, snap
                    if isinstance(endorsed, Untrusted):
                        receipts[i] = _refused(tx_id, endorsed)
                        continue
                    code, where = self._validate(endorsed, at, written)
                    if code != "VALID" and where < self._settled:
                        # a worker read a block that is now committed: execute again on it
                        endorsed, at = self._endorse_here(signed, endorsed), self._settled
                        if isinstance(endorsed, Untrusted):
                            receipts[i] = _refused(tx_id, endorsed)
                            continue
                        code, where = self._validate(endorsed, at, written)
                    if endorsed.status != 200:
                        receipts[i] = Receipt(
                            tx_id, "CHAINCODE_ERROR", endorsed.status, endorsed.message
                        )
                        continue
                    seen.add(tx_id)
                    entry = _Entry(i, endorsed, self._certs_of(signed), code)
                    if code == "VALID" and endorsed.writes:
                        written.add(k for k, _v in endorsed.writes)
                    block.append(entry)
                    if len(block) >= self.max_block_tx:
                        inflight = self._hand_over(block, written, inflight, receipts)
                        block, written = [], _KeySet()
            if block:
                inflight = self._hand_over(block, written, inflight, receipts)
            self._settle(inflight, receipts)
        except BaseException:
            if inflight is not None:
                inflight.future.cancel()
                with contextlib.suppress(BaseException):
                    inflight.future.result()
            raise
        return [r for r in receipts if r is not None]

    def _endorse_here(
        self, signed: SignedProposal, done: Proposal | Result
    ) -> Endorsed | Untrusted:
        """Check the creator and execute in this process, on the committed state."""
        # a worker's result: it parsed and verified the proposal already
        proposal = done if isinstance(done, Proposal) else parse_proposal(signed.proposal)
        try:
            creator = self._creators.check(self._view, signed, proposal)
        except NodeError as exc:
            return Untrusted(proposal.tx_id, proposal.time_us, exc.code, exc.status, exc.message)
        return endorse(self._view, signed, proposal, creator)

    def _validate(self, endorsed: Endorsed, snap: int, written: _KeySet) -> tuple[str, int]:
        """MVCC: (code, block of the conflicting write) against every block after ``snap``.

        The blocks ``snap … height-1`` are written or being written; the block being built
        (number ``height``) has ``written`` so far. Fabric's validation, with the versions
        implied by the snapshot the transaction executed on.
        """
        if not endorsed.reads and not endorsed.ranges:
            return "VALID", self._height
        for number in range(snap, self._height):
            code = self._recent[number].conflict(endorsed)
            if code != "VALID":
                return code, number
        return written.conflict(endorsed), self._height

    def _certs_of(self, signed: SignedProposal) -> tuple[tuple[bytes, bytes], ...]:
        pairs = self._cert_pairs
        out = []
        for der in (signed.certificate, *signed.chain):
            pair = pairs.get(der)
            if pair is None:
                if len(pairs) >= _CACHE_LIMIT:
                    pairs.clear()
                pair = pairs[der] = (hashlib.sha256(der).digest(), der)
            out.append(pair)
        return tuple(out)

    def _hand_over(
        self,
        block: list[_Entry],
        written: _KeySet,
        inflight: _Inflight | None,
        receipts: list[Receipt | None],
    ) -> _Inflight:
        """Build and sign ``block``; once the previous block is durable, start writing it."""
        number = self._height
        built = self._build(block)
        self._recent[number] = written
        for old in range(self._recent_from, number - _RECENT_BLOCKS + 1):
            self._recent.pop(old, None)
        self._recent_from = max(self._recent_from, number - _RECENT_BLOCKS + 1)
        self._settle(inflight, receipts)
        nxt = _Inflight(block, built, self._writer.submit(self._write_guarded, built))
        if built.trust_changed:  # later creators are checked against the new trust list
            self._trust_block = number
            self._settle(nxt, receipts)
        return nxt

    def _settle(self, inflight: _Inflight | None, receipts: list[Receipt | None]) -> None:
        """Wait until ``inflight`` is durable, then answer its transactions."""
        if inflight is None or inflight.settled:
            return
        inflight.future.result()
        inflight.settled = True
        number = inflight.built.write.number
        self._settled = number + 1
        for key in inflight.built.written:  # a read during the write may have cached old bytes
            self._cache.pop(key, None)
        self._reads.invalidate(inflight.built.written)
        if inflight.built.trust_changed:
            self._creators.invalidate()
        for entry in inflight.block:
            e = entry.endorsed
            if entry.code == "VALID":
                receipts[entry.index] = Receipt(
                    e.tx_id, "VALID", e.status, e.message, e.payload, number, e.event
                )
            else:
                receipts[entry.index] = Receipt(
                    e.tx_id, entry.code, 409, _conflict_message(entry.code), b"", number, None
                )

    def _write_guarded(self, built: _Built) -> None:
        try:
            self._write(built)
        except BaseException as exc:
            self._broken = (
                f"block {built.write.number} could not be written ({type(exc).__name__}: {exc}); "
                "reopen the ledger"
            )
            raise

    def _write(self, built: _Built) -> None:
        self.store.append_block(built.write)

    def _check_time(self, time_us: int) -> None:
        now_us = self.clock() // 1000
        if abs(time_us - now_us) > self.max_skew_us:
            raise Rejected(
                "BAD_TIMESTAMP",
                f"the proposal timestamp is more than {self.max_skew_us // 1_000_000} s "
                "away from the node's clock",
                400,
            )

    def _build(self, block: list[_Entry]) -> _Built:
        """Records, header and signature of the next block (not yet written)."""
        number = self._height
        records: list[bytes] = []
        leaves: list[bytes] = []
        txs: list[tuple[int, bytes, str, int, bytes]] = []
        writes: list[tuple[int, str, bytes | None]] = []
        known = self._known_certs
        certs: dict[bytes, bytes] = {}
        valid = 0
        trust_changed = False
        for n, entry in enumerate(block):
            e = entry.endorsed
            for sha, der in entry.certs:
                if sha not in known:
                    certs[sha] = der
            ver = ver_of(number, n)
            if entry.code == "VALID":
                record, leaf = e.record, e.leaf
                valid += 1
                for key, value in e.writes:
                    writes.append((ver, key, value))
                    if not trust_changed and key.startswith(TRUST_PREFIXES):
                        trust_changed = True
            else:
                record = recode(e.record, entry.code)
                leaf = leaf_hash(record)
            records.append(record)
            leaves.append(leaf)
            txs.append((ver, bytes.fromhex(e.tx_id), entry.code, e.ts_ns, record))
        signer_chain: list[str] = []
        signer_certs: list[tuple[bytes, bytes | None]] = [
            (self._signer_der, self._signer_sha),
            *((c, None) for c in self._signer_chain),
        ]
        for cert, cert_sha in signer_certs:
            digest = cert_sha or hashlib.sha256(cert).digest()
            if cert_sha is None:
                signer_chain.append(digest.hex())
            if digest not in known:
                certs[digest] = cert
        header = block_header(
            channel=self.channel,
            number=number,
            prev_hash=self._last_hash,
            records=records,
            leaves=leaves,
            valid_count=valid,
            time_us=self.clock() // 1000,
            signer_msp=self.signer.msp_id,
            signer_cert_sha256=self._signer_sha.hex(),
            signer_chain=signer_chain,
        )
        digest = block_hash(header)
        signature = sign_header(header, self.signer)
        token = None
        if self.timestamper is not None:
            token = self.timestamper.issue("sha256", digest, cert_req=True)
        unique_certs = list(certs.items())
        known.update(certs)
        written = [key for _ver, key, _value in writes]
        for key in written:
            self._cache.pop(key, None)
        self._height = number + 1
        self._last_hash = digest.hex()
        write = BlockWrite(number, digest, header, signature, token, txs, writes, unique_certs)
        return _Built(write, written, trust_changed)

    # ------------------------------------------------------------------- reads
    def evaluate(
        self, function: str, args: Sequence[str], creator: Creator | None = None
    ) -> Response:
        """Run a query on the committed state (writes are discarded, as in Fabric)."""
        now = self.clock()
        view = _CachedView(self.store.reader(), self._reads)
        stub = TxStub(view, creator, secrets.token_hex(32), divmod(now, 1_000_000_000))
        return invoke(stub, function, list(args))

    def info(self) -> LedgerInfo:
        conn = self.store.reader()
        total, valid = conn.execute(
            "SELECT count(*), coalesce(sum(code = 'VALID'), 0) FROM txs"
        ).fetchone()
        last = self.store.block(self._height - 1, conn)
        return LedgerInfo(
            self.channel,
            self._height,
            "" if last is None else bytes(last.hash).hex(),
            int(total),
            int(valid),
            self.store.state_key_count(),
        )

    def block(self, number: int) -> BlockView:
        return read_block(self.store, number)

    def events(self, from_block: int = 0) -> Iterator[tuple[int, str, str, bytes]]:
        return read_events(self.store, from_block)

    def changes(self, from_block: int = 0) -> Iterator[TxChanges]:
        return read_changes(self.store, from_block)

    @property
    def height(self) -> int:
        return self._height

    def start_workers(self) -> None:
        """Start the endorsing workers now rather than on the first large batch."""
        if self._endorsers is not None:
            self._endorsers.start()

    def worker_pids(self) -> list[int]:
        """The endorsing worker processes (for monitoring and benchmarks)."""
        return [] if self._endorsers is None else self._endorsers.pids()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _conflict_message(code: str) -> str:
    if code == "MVCC_READ_CONFLICT":
        return "a key this transaction read was changed by an earlier transaction of the block"
    return "a range this transaction read was changed by an earlier transaction of the block"


def _tx_id_of(signed: object) -> str:
    """Best-effort tx id of a refused proposal (for the receipt only)."""
    try:
        data = signed.proposal if isinstance(signed, SignedProposal) else b""
        text = data[data.find(b'"tx_id":"') + 9 :][:64].decode("ascii")
        int(text, 16)
        return text if len(text) == 64 else ""
    except (ValueError, UnicodeDecodeError):
        return ""


def read_block(store: Store, number: int) -> BlockView:
    conn = store.reader()
    stored = store.block(number, conn)
    if stored is None:
        raise LedgerError(f"no block {number} (height {store.height()})")
    header = json.loads(stored.header)
    txs = []
    for n, (_ver, tx_id, code, ts_ns, raw) in enumerate(store.block_txs(number, conn)):
        record = decode_record(raw)
        body = json.loads(base64.b64decode(record["proposal"]))
        txs.append(
            TxView(
                bytes(tx_id).hex(),
                n,
                code,
                body["function"],
                body["creator"]["msp_id"],
                ts_ns // 1000,
                record,
            )
        )
    return BlockView(
        stored.number, bytes(stored.hash).hex(), header, stored.signature, stored.tsa_token, txs
    )


def read_events(store: Store, from_block: int = 0) -> Iterator[tuple[int, str, str, bytes]]:
    conn = store.reader()
    rows = conn.execute(
        "SELECT ver, tx_id, record FROM txs WHERE ver >= ? AND code = 'VALID' ORDER BY ver",
        (ver_of(max(from_block, 0), 0),),
    )
    for ver, tx_id, raw in rows:
        event = decode_record(raw)["event"]
        if event is not None:
            yield (
                ver >> VER_SHIFT,
                bytes(tx_id).hex(),
                event["name"],
                base64.b64decode(event["payload"]),
            )


def read_changes(store: Store, from_block: int = 0) -> Iterator[TxChanges]:
    """Valid transactions from ``from_block`` with their writes, merged from txs and vals.

    Both queries run in one read transaction, so they see the same committed blocks.
    """
    conn = store.connect_reader()
    try:
        conn.execute("BEGIN")
        start = ver_of(max(from_block, 0), 0)
        txs = conn.execute(
            "SELECT ver, tx_id, ts_ns, record FROM txs WHERE ver >= ? AND code = 'VALID' "
            "ORDER BY ver",
            (start,),
        )
        writes = Store.writes_from(conn, start)
        pending = next(writes, None)
        for ver, tx_id, ts_ns, raw in txs:
            mine: list[tuple[str, bytes | None]] = []
            while pending is not None and pending[0] <= ver:
                if pending[0] == ver:
                    mine.append((pending[1], pending[2]))
                pending = next(writes, None)
            record = decode_record(raw)
            body = json.loads(base64.b64decode(record["proposal"]))
            event = record["event"]
            yield TxChanges(
                ver >> VER_SHIFT,
                ver & (MAX_TX_PER_BLOCK - 1),
                bytes(tx_id).hex(),
                body["function"],
                body["creator"]["msp_id"],
                ts_ns // 1000,
                tuple(sorted(mine)),
                None if event is None else (event["name"], base64.b64decode(event["payload"])),
            )
    finally:
        conn.close()

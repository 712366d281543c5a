"""The embedded ledger: signed proposals in, signed hash-chained blocks out, on SQLite.

>>> ledger = EmbeddedLedger.create(path, "caravan", genesis_proposal, node_signer)
>>> receipts = ledger.submit_many(signed_proposals)     # durable when this returns
>>> ledger.evaluate("IsRecognised", [query]).payload

For each batch of proposals the node (1) parses each proposal strictly and verifies its
signature — in a thread pool, since ``cryptography`` releases the GIL while it verifies;
(2) in order: refuses a stale or future timestamp, a wrong channel or a duplicate
transaction id, checks the creator against the trust list on the ledger
(creators.py), and executes the contract on the committed state, recording a read/write
set; a contract refusal is answered to the caller and never recorded; (3) validates the
read set against the writes of earlier transactions of the same block (MVCC: a conflict
is recorded as invalid and changes nothing, as in Fabric); (4) cuts blocks of at most
``max_block_tx`` transactions, signs each header with the node's key (optionally
timestamped by a TSA) and writes block, transactions and state in one durable SQLite
transaction. Receipts are returned only after their block is committed.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import json
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.canonical import CanonicalJsonError, parse_json
from chaincode.router import Response, invoke
from chaincode.stub import Creator

from ..errors import LedgerError, NodeError, ProposalError, Rejected
from ..ledger import BlockView, LedgerInfo, Receipt, TxChanges, TxView
from ..proposal import Proposal, ProposalSigner, SignedProposal, parse_proposal, verify_signature
from .blocks import (
    GENESIS_PREV,
    block_hash,
    block_header,
    decode_record,
    sign_header,
    tx_record,
)
from .creators import TRUST_PREFIXES, CreatorVerifier
from .store import MAX_TX_PER_BLOCK, VER_SHIFT, BlockWrite, Store, ver_of
from .stub import TxStub

__all__ = ["DEFAULT_MAX_BLOCK_TX", "LEDGER_FILE", "EmbeddedLedger"]

LEDGER_FILE = "ledger.db"
DEFAULT_MAX_BLOCK_TX = 2000
DEFAULT_MAX_SKEW_S = 300
_CHUNK = 128
_CACHE_LIMIT = 200_000

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


@dataclass
class _Entry:
    """One transaction ordered into the block being built."""

    index: int  # position in the caller's batch
    signed: SignedProposal
    proposal: Proposal
    code: str
    response: Response
    stub: TxStub


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

    def add(self, keys: dict[str, bytes | None]) -> None:
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


@dataclass
class _Inflight:
    """A built block handed to the writer thread."""

    block: list[_Entry]
    built: _Built
    future: Future[None]
    settled: bool = False
    written: _KeySet = field(default_factory=_KeySet)

    def __post_init__(self) -> None:
        self.written = _KeySet(self.built.written)


def _conflict(stub: TxStub, written: _KeySet, inflight: _Inflight | None) -> str:
    """VALID, or why the transaction's reads are stale (Fabric's MVCC validation)."""
    sets = [written]
    if inflight is not None and not inflight.settled:
        sets.append(inflight.written)
    for keys in sets:
        if not keys.keys:
            continue
        if any(k in keys.keys for k in stub.reads):
            return "MVCC_READ_CONFLICT"
        if any(keys.touches(s, e) for s, e in stub.ranges):
            return "PHANTOM_READ_CONFLICT"
    return "VALID"


def _precheck(signed: SignedProposal, channel: str) -> Proposal | NodeError:
    """Parse and verify one proposal (runs in the pool; the verify releases the GIL)."""
    try:
        if not isinstance(signed, SignedProposal):
            raise ProposalError("not a signed proposal")
        proposal = parse_proposal(signed.proposal)
        if proposal.channel != channel:
            raise Rejected(
                "WRONG_CHANNEL", f"the proposal is for channel {proposal.channel!r}", 400
            )
        if len(signed.chain) > 4:
            raise ProposalError("the carried certificate chain is longer than 4")
        verify_signature(signed)
    except NodeError as exc:
        return exc
    return proposal


def _precheck_chunk(chunk: Sequence[SignedProposal], channel: str) -> list[Proposal | NodeError]:
    return [_precheck(s, channel) for s in chunk]


def _refused(tx_id: str, exc: NodeError) -> Receipt:
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
        timestamper: Any = None,
    ) -> None:
        if not 1 <= max_block_tx < MAX_TX_PER_BLOCK:
            raise LedgerError(f"max_block_tx must be between 1 and {MAX_TX_PER_BLOCK - 1}")
        self.store = store
        self.channel = store.channel
        self.signer = signer
        self.clock = clock
        self.max_skew_us = max_skew_s * 1_000_000
        self.max_block_tx = max_block_tx
        self.timestamper = timestamper
        self._signer_der = signer.certificate.public_bytes(Encoding.DER)
        self._signer_sha = hashlib.sha256(self._signer_der).hexdigest()
        self._signer_chain = [c.public_bytes(Encoding.DER) for c in signer.chain]
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 2)
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-writer")
        self._cache: dict[str, tuple[int, bytes]] = {}
        # the committer reads through its own connection: the writer's holds the open block
        self._view = _View(store.connect_reader(), self._cache)
        self._broken: str | None = None
        self._creators = CreatorVerifier()
        self._known_certs: set[bytes] = set()
        last = store.last_block()
        self._height = 0 if last is None else last.number + 1
        self._last_hash = GENESIS_PREV if last is None else bytes(last.hash).hex()

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
        ledger = cls(store, signer, **options)
        try:
            ledger._genesis(genesis)
        except BaseException:
            ledger.close()
            for suffix in ("", "-wal", "-shm"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
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
        checked = _precheck(signed, self.channel)
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
        self._check_time(proposal)
        creator = self._creators.check_genesis(signed, proposal, genesis)
        entry = self._execute(0, signed, proposal, creator)
        if entry.response.status != 200:
            raise Rejected("CHAINCODE_ERROR", f"genesis refused: {entry.response.message}", 400)
        self._write(self._build([entry]))

    def submit(self, proposal: SignedProposal) -> Receipt:
        return self.submit_many([proposal])[0]

    def submit_many(self, proposals: Sequence[SignedProposal]) -> list[Receipt]:
        """Order, validate and commit ``proposals``; one receipt each, in order."""
        with self._lock:
            return self._submit(list(proposals))

    def _submit(self, proposals: list[SignedProposal]) -> list[Receipt]:
        if self._broken is not None:
            raise LedgerError(self._broken)
        receipts: list[Receipt | None] = [None] * len(proposals)
        chunks = [proposals[i : i + _CHUNK] for i in range(0, len(proposals), _CHUNK)]
        checked = self._pool.map(_precheck_chunk, chunks, [self.channel] * len(chunks))
        block: list[_Entry] = []
        written = _KeySet()  # keys written by valid txs of this block
        inflight: _Inflight | None = None  # the previous block, being written
        seen: set[str] = set()
        index = 0
        try:
            for results in checked:
                fresh = [bytes.fromhex(r.tx_id) for r in results if isinstance(r, Proposal)]
                existing = self.store.existing_tx_ids(fresh, self._view.conn)
                for result in results:
                    i = index
                    index += 1
                    signed = proposals[i]
                    if isinstance(result, NodeError):
                        receipts[i] = _refused(_tx_id_of(signed), result)
                        continue
                    proposal = result
                    tx_id = proposal.tx_id
                    if tx_id in seen or bytes.fromhex(tx_id) in existing:
                        receipts[i] = Receipt(
                            tx_id,
                            "DUPLICATE_TXID",
                            409,
                            f"transaction {tx_id} was already submitted",
                        )
                        continue
                    try:
                        self._check_time(proposal)
                        creator = self._creators.check(self._view, signed, proposal)
                    except NodeError as exc:
                        receipts[i] = _refused(tx_id, exc)
                        continue
                    entry = self._execute(i, signed, proposal, creator)
                    if entry.response.status != 200:
                        receipts[i] = Receipt(
                            tx_id, "CHAINCODE_ERROR", entry.response.status, entry.response.message
                        )
                        continue
                    seen.add(tx_id)
                    # MVCC: against this block's earlier writes and the block being written
                    entry.code = _conflict(entry.stub, written, inflight)
                    if entry.code == "VALID" and entry.stub.writes:
                        written.add(entry.stub.writes)
                    block.append(entry)
                    if len(block) >= self.max_block_tx:
                        inflight = self._hand_over(block, inflight, receipts)
                        block, written = [], _KeySet()
            if block:
                inflight = self._hand_over(block, inflight, receipts)
            self._settle(inflight, receipts)
        except BaseException:
            if inflight is not None:
                inflight.future.cancel()
                with contextlib.suppress(BaseException):
                    inflight.future.result()
            raise
        return [r for r in receipts if r is not None]

    def _hand_over(
        self, block: list[_Entry], inflight: _Inflight | None, receipts: list[Receipt | None]
    ) -> _Inflight:
        """Build and sign ``block``; once the previous block is durable, start writing it."""
        built = self._build(block)
        self._settle(inflight, receipts)
        nxt = _Inflight(block, built, self._writer.submit(self._write_guarded, built))
        if built.trust_changed:  # later creators are checked against the new trust list
            self._settle(nxt, receipts)
        return nxt

    def _settle(self, inflight: _Inflight | None, receipts: list[Receipt | None]) -> None:
        """Wait until ``inflight`` is durable, then answer its transactions."""
        if inflight is None or inflight.settled:
            return
        inflight.future.result()
        inflight.settled = True
        for key in inflight.built.written:  # a read during the write may have cached old bytes
            self._cache.pop(key, None)
        if inflight.built.trust_changed:
            self._creators.invalidate()
        number = inflight.built.write.number
        for entry in inflight.block:
            valid = entry.code == "VALID"
            receipts[entry.index] = Receipt(
                entry.proposal.tx_id,
                entry.code,
                entry.response.status if valid else 409,
                entry.response.message if valid else _conflict_message(entry.code),
                entry.response.payload if valid else b"",
                number,
                entry.stub.event if valid else None,
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

    def _check_time(self, proposal: Proposal) -> None:
        now_us = self.clock() // 1000
        if abs(proposal.time_us - now_us) > self.max_skew_us:
            raise Rejected(
                "BAD_TIMESTAMP",
                f"the proposal timestamp is more than {self.max_skew_us // 1_000_000} s "
                "away from the node's clock",
                400,
            )

    def _execute(
        self, index: int, signed: SignedProposal, proposal: Proposal, creator: Creator
    ) -> _Entry:
        stub = TxStub(self._view, creator, proposal.tx_id, proposal.timestamp)
        response = invoke(stub, proposal.function, list(proposal.args))
        return _Entry(index, signed, proposal, "VALID", response, stub)

    def _cert_hashes(
        self, der: bytes, sha_hex: str, chain: Sequence[bytes], new: list[tuple[bytes, bytes]]
    ) -> list[str]:
        """Hashes of ``chain``; certificates the ledger does not hold yet go to ``new``."""
        hashes = []
        for cert, sha in ((der, bytes.fromhex(sha_hex)), *((c, None) for c in chain)):
            digest = sha or hashlib.sha256(cert).digest()
            if sha is None:
                hashes.append(digest.hex())
            if digest not in self._known_certs:
                new.append((digest, cert))
        return hashes

    def _build(self, block: list[_Entry]) -> _Built:
        """Records, header and signature of the next block (not yet written)."""
        number = self._height
        records: list[bytes] = []
        txs: list[tuple[int, bytes, str, int, bytes]] = []
        writes: list[tuple[int, str, bytes | None]] = []
        certs: list[tuple[bytes, bytes]] = []
        valid = 0
        trust_changed = False
        for n, entry in enumerate(block):
            signed, stub = entry.signed, entry.stub
            chain_hashes = self._cert_hashes(
                signed.certificate, entry.proposal.cert_sha256, signed.chain, certs
            )
            response = entry.response
            record = tx_record(
                signed,
                chain_hashes,
                entry.code,
                response.status,
                response.message,
                response.payload,
                stub.reads,
                stub.ranges,
                stub.writes,
                stub.event,
            )
            records.append(record)
            ver = ver_of(number, n)
            ts = entry.proposal.timestamp
            txs.append(
                (
                    ver,
                    bytes.fromhex(entry.proposal.tx_id),
                    entry.code,
                    ts[0] * 10**9 + ts[1],
                    record,
                )
            )
            if entry.code == "VALID":
                valid += 1
                for key in sorted(stub.writes):
                    writes.append((ver, key, stub.writes[key]))
                    if not trust_changed and key.startswith(TRUST_PREFIXES):
                        trust_changed = True
        signer_chain = self._cert_hashes(
            self._signer_der, self._signer_sha, self._signer_chain, certs
        )
        header = block_header(
            channel=self.channel,
            number=number,
            prev_hash=self._last_hash,
            records=records,
            valid_count=valid,
            time_us=self.clock() // 1000,
            signer_msp=self.signer.msp_id,
            signer_cert_sha256=self._signer_sha,
            signer_chain=signer_chain,
        )
        digest = block_hash(header)
        signature = sign_header(header, self.signer)
        token = None
        if self.timestamper is not None:
            token = self.timestamper.issue("sha256", digest, cert_req=True)
        unique_certs = list(dict(certs).items())
        self._known_certs.update(sha for sha, _der in unique_certs)
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
        view = _View(self.store.reader(), None)
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

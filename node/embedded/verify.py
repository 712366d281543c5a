"""Re-check a whole embedded ledger from its blocks; name the first bad block.

>>> report = verify_ledger(Store.open(path, readonly=True))   # raises LedgerCorrupted
>>> report.height, report.tx_count, report.seconds

For every block, in order: the header is canonical JSON with the right number, channel
and previous-block hash; the block hash is SHA-256 of the header; the node's signature
verifies with the signer certificate, which chains to a root anchor of the signer's
member on the ledger; the transactions' Merkle root and counts match the header; each
transaction record's proposal is signed by its creator certificate, its tx id and
timestamp match the stored row. Then the state: the write log holds exactly the writes
of the valid transactions, in order, each value with the SHA-256 the record names, and
the state index points at exactly those writes. Signature checks run in a thread pool.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import time
from collections.abc import Generator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from chaincode.canonical import CanonicalJsonError, canonical_json
from chaincode.errors import Forbidden
from chaincode.seal import load_certificate, verify_chain

from ..errors import LedgerCorrupted, NodeError
from ..proposal import SignedProposal, parse_proposal, verify_signature
from .blocks import GENESIS_PREV, block_hash, signature_valid, tx_root
from .store import CURRENT_SQL, VER_SHIFT, Store, clustered_ranges, ver_of

__all__ = ["VerifyReport", "verify_ledger"]


@dataclass(frozen=True)
class VerifyReport:
    channel: str
    height: int
    tx_count: int
    valid_count: int
    writes: int
    seconds: float


def _bad(block: int | None, message: str) -> LedgerCorrupted:
    return LedgerCorrupted(block, message)


def _roots(conn: sqlite3.Connection) -> dict[str, list[x509.Certificate]]:
    """Root anchors ever granted per member, from the state (any status)."""
    roots: dict[str, list[x509.Certificate]] = {}
    for _key, _ver, raw in Store.range(conn, "\x00anchor\x00", "\x00anchor\x00\U0010ffff"):
        anchor = json.loads(raw)
        if anchor.get("kind") == "root":
            cert = load_certificate(base64.b64decode(anchor["certificate"]))
            roots.setdefault(anchor["msp_id"], []).append(cert)
    return roots


def _check_tx(
    number: int, n: int, row: tuple[int, bytes, str, int, bytes], certs: dict[bytes, bytes]
) -> str | None:
    """Check one transaction record; the reason it is bad, or None."""
    _ver, tx_id, code, ts_ns, raw = row
    try:
        record = json.loads(raw)
        proposal_bytes = base64.b64decode(record["proposal"])
        proposal = parse_proposal(proposal_bytes)
        cert = certs.get(bytes.fromhex(proposal.cert_sha256))
        if cert is None:
            return f"tx {n}: the creator certificate is missing"
        chain = tuple(certs.get(bytes.fromhex(h), b"") for h in record["chain"])
        signed = SignedProposal(proposal_bytes, base64.b64decode(record["signature"]), cert, chain)
        verify_signature(signed)
    except NodeError as exc:
        return f"tx {n}: {exc.message}"
    except (ValueError, KeyError, TypeError):
        return f"tx {n}: the record cannot be read"
    if bytes(tx_id).hex() != proposal.tx_id:
        return f"tx {n}: the stored tx id is not the proposal's"
    if record.get("code") != code:
        return f"tx {n}: the stored validation code is not the record's"
    if ts_ns != proposal.timestamp[0] * 10**9 + proposal.timestamp[1]:
        return f"tx {n}: the stored timestamp is not the proposal's"
    return None


def _write_log(conn: sqlite3.Connection) -> Generator[tuple[int, int, bytes, bytes | None]]:
    yield from conn.execute("SELECT vid, ver, key, value FROM vals ORDER BY vid")


def verify_ledger(store: Store, *, workers: int = 2) -> VerifyReport:
    """Verify everything; raises :class:`LedgerCorrupted` naming the first bad block."""
    started = time.perf_counter()
    conn = store.reader()
    log_conn = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True)
    try:
        channel = store.channel
        certs = {bytes(s): bytes(d) for s, d in conn.execute("SELECT sha256, der FROM certs")}
        roots = _roots(conn)
    except (sqlite3.Error, ValueError, TypeError, KeyError) as exc:
        log_conn.close()
        raise _bad(None, f"the ledger's metadata cannot be read ({type(exc).__name__})") from None
    for sha, der in certs.items():
        if hashlib.sha256(der).digest() != sha:
            log_conn.close()
            raise _bad(None, f"stored certificate {sha.hex()[:16]}… does not match its hash")
    height = store.height()
    numbers = [r[0] for r in conn.execute("SELECT number FROM blocks ORDER BY number")]
    if numbers != list(range(height)):
        missing = next(n for n, m in enumerate([*numbers, None]) if n != m)
        log_conn.close()
        raise _bad(missing, "the block is missing")
    log = _write_log(log_conn)
    prev = GENESIS_PREV
    tx_total = valid_total = writes_total = 0
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for number in range(height):
            try:
                stored = store.block(number, conn)
                assert stored is not None
                header = _check_header(number, stored.header, channel, prev)
                if bytes(stored.hash) != block_hash(stored.header):
                    raise _bad(number, "the stored block hash is not SHA-256 of the header")
                _check_block_signature(
                    number, header, stored.header, stored.signature, certs, roots
                )
                rows = store.block_txs(number, conn)
                if [r[0] for r in rows] != [ver_of(number, n) for n in range(len(rows))]:
                    raise _bad(number, "the transaction rows are not contiguous")
                records = [bytes(r[4]) for r in rows]
                if header["tx_count"] != len(rows) or header["tx_root"] != tx_root(records):
                    raise _bad(number, "the transactions do not match the header's Merkle root")
                problems = pool.map(
                    _check_tx, [number] * len(rows), range(len(rows)), rows, [certs] * len(rows)
                )
                for problem in problems:
                    if problem is not None:
                        raise _bad(number, problem)
                valid = 0
                for n, raw in enumerate(records):
                    record = json.loads(raw)
                    if record["code"] != "VALID":
                        continue
                    valid += 1
                    ver = ver_of(number, n)
                    for key, digest in record["writes"]:
                        writes_total += 1
                        _check_write(number, n, ver, key, digest, next(log, None))
                if header["valid_count"] != valid:
                    raise _bad(number, "the header's count of valid transactions is wrong")
                tx_total += len(rows)
                valid_total += valid
                prev = bytes(stored.hash).hex()
            except LedgerCorrupted:
                raise
            except (sqlite3.Error, ValueError, TypeError, KeyError, AttributeError) as exc:
                # a row altered to another type or shape: name the block, not a traceback
                raise _bad(number, f"stored data cannot be read ({type(exc).__name__})") from None
        extra = next(log, None)
    finally:
        pool.shutdown()
        log.close()
        log_conn.close()
    if extra is not None:
        raise _bad(extra[1] >> VER_SHIFT, "the write log has a write no transaction made")
    stored_txs = conn.execute("SELECT count(*) FROM txs").fetchone()[0]
    if stored_txs != tx_total:
        raise _bad(None, f"{stored_txs - tx_total} stored transaction(s) belong to no block")
    _check_index(conn, writes_total)
    _check_clustered(conn)
    return VerifyReport(
        channel, height, tx_total, valid_total, writes_total, time.perf_counter() - started
    )


def _check_header(number: int, raw: bytes, channel: str, prev: str) -> dict[str, Any]:
    try:
        header: dict[str, Any] = json.loads(raw)
        if canonical_json(header) != bytes(raw):
            raise _bad(number, "the header is not canonical JSON")
    except (ValueError, CanonicalJsonError):
        raise _bad(number, "the header cannot be read") from None
    if header.get("number") != number or header.get("channel") != channel:
        raise _bad(number, "the header names another block or channel")
    if header.get("prev_hash") != prev:
        raise _bad(number, "the previous-block hash does not match the previous block")
    return header


def _check_block_signature(
    number: int,
    header: dict[str, Any],
    raw: bytes,
    signature: bytes,
    certs: dict[bytes, bytes],
    roots: dict[str, list[x509.Certificate]],
) -> None:
    signer = header["signer"]
    der = certs.get(bytes.fromhex(signer["cert_sha256"]))
    if der is None:
        raise _bad(number, "the signer certificate is missing")
    cert = load_certificate(der)
    if not signature_valid(cert, bytes(raw), bytes(signature)):
        raise _bad(number, "the node's block signature does not verify")
    carried = [load_certificate(certs.get(bytes.fromhex(h), b"")) for h in signer["chain"]]
    try:
        verify_chain(
            cert,
            carried,
            roots.get(signer["msp_id"], []),
            header["time_us"],
            "block signer",
            owner=signer["msp_id"],
        )
    except Forbidden as exc:
        raise _bad(number, exc.message) from None


def _check_write(
    number: int,
    n: int,
    ver: int,
    key: str,
    digest: str | None,
    row: tuple[int, int, bytes, bytes | None] | None,
) -> None:
    if row is None:
        raise _bad(number, f"tx {n}: a write of {key!r} is missing from the state")
    _vid, stored_ver, stored_key, value = row
    if stored_ver != ver or bytes(stored_key).decode() != key:
        raise _bad(number, f"tx {n}: the state's write log disagrees with the block")
    actual = None if value is None else hashlib.sha256(value).hexdigest()
    if actual != digest:
        raise _bad(number, f"tx {n}: the stored value of {key!r} is not the one the block names")


def _check_index(conn: sqlite3.Connection, writes: int) -> None:
    rows = conn.execute("SELECT count(*) FROM kv").fetchone()[0]
    bad = conn.execute(
        "SELECT k.ver FROM kv k LEFT JOIN vals v ON v.vid = k.vid "
        "WHERE v.vid IS NULL OR v.key != k.key OR v.ver != k.ver ORDER BY k.ver LIMIT 1"
    ).fetchone()
    if bad is not None:
        raise _bad(bad[0] >> VER_SHIFT, "the state index points at a write of another key")
    if rows != writes:
        lost = conn.execute(
            "SELECT v.ver FROM vals v LEFT JOIN kv k ON k.vid = v.vid "
            "WHERE k.vid IS NULL ORDER BY v.vid LIMIT 1"
        ).fetchone()
        block = None if lost is None else lost[0] >> VER_SHIFT
        raise _bad(block, f"the state index has {rows} entries for {writes} writes")


def _check_clustered(conn: sqlite3.Connection) -> None:
    """``cur`` holds exactly the current values of the clustered keys (store.py)."""
    derived = 0
    for lo, hi in clustered_ranges():
        bad = conn.execute(
            f"SELECT c.ver FROM cur c LEFT JOIN ({CURRENT_SQL}) d ON d.key = c.key "  # noqa: S608
            "WHERE c.key >= ? AND c.key < ? AND "
            "(d.key IS NULL OR d.ver != c.ver OR d.value != c.value) ORDER BY c.ver LIMIT 1",
            (lo, hi, lo, hi),
        ).fetchone()
        if bad is not None:
            raise _bad(bad[0] >> VER_SHIFT, "the key-ordered copy of the state disagrees")
        derived += conn.execute(f"SELECT count(*) FROM ({CURRENT_SQL})", (lo, hi)).fetchone()[0]  # noqa: S608
    stored = conn.execute("SELECT count(*) FROM cur").fetchone()[0]
    if stored != derived:
        raise _bad(None, f"the key-ordered copy of the state has {stored} keys, not {derived}")

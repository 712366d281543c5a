"""Read-only views of an embedded ledger for operators: no signer, no writes.

>>> store = Store.open(resolve_ledger_path(Path("node")), readonly=True)
>>> ledger_info(store).height, stored_bytes(store.path)
(42, 1_318_912)
>>> block_json(block_view(store, 7))["header"]["prev_hash"]

``ledger_info`` gives the same :class:`~node.ledger.LedgerInfo` as
``EmbeddedLedger.info()`` without the node's key; ``block_view`` reads one block and turns
unreadable stored data into :class:`~node.errors.LedgerCorrupted` naming the block.
"""

from __future__ import annotations

import base64
import binascii
import sqlite3
from pathlib import Path
from typing import Any

from ..errors import LedgerCorrupted, LedgerError
from ..ledger import BlockView, LedgerInfo
from .ledger import LEDGER_FILE, read_block
from .store import Store

__all__ = ["block_json", "block_view", "ledger_info", "resolve_ledger_path", "stored_bytes"]


def resolve_ledger_path(path: Path) -> Path:
    """``path`` itself; for a directory, its ``ledger.db`` or a node directory's ledger."""
    if not path.is_dir():
        return path
    if (path / "node.yaml").is_file():
        from ..config import load_config  # a node directory: its configured ledger

        return load_config(path).ledger_path
    return path / LEDGER_FILE


def ledger_info(store: Store) -> LedgerInfo:
    """Channel, height, last block hash and counts, from the stored data alone."""
    try:
        conn = store.reader()
        total, valid = conn.execute(
            "SELECT count(*), coalesce(sum(code = 'VALID'), 0) FROM txs"
        ).fetchone()
        last = store.last_block()
        return LedgerInfo(
            store.channel,
            0 if last is None else last.number + 1,
            "" if last is None else bytes(last.hash).hex(),
            int(total),
            int(valid),
            store.state_key_count(),
        )
    except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
        raise LedgerError(f"cannot read the ledger {store.path}: {exc}") from None


def stored_bytes(path: Path) -> int:
    """Bytes on disk: the database file plus its write-ahead log, if any."""
    total = 0
    for suffix in ("", "-wal"):
        try:
            total += Path(f"{path}{suffix}").stat().st_size
        except FileNotFoundError:
            continue
    return total


def block_view(store: Store, number: int) -> BlockView:
    """Block ``number`` as stored (not verified); LedgerError if it does not exist."""
    if number < 0:
        raise LedgerError(f"no block {number}: block numbers start at 0")
    try:
        return read_block(store, number)
    except sqlite3.DatabaseError as exc:
        raise LedgerError(f"cannot read the ledger {store.path}: {exc}") from None
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error):
        # json.JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise LedgerCorrupted(number, "the stored block cannot be read") from None


def block_json(view: BlockView) -> dict[str, Any]:
    """A JSON-ready form of a block: hashes as hex, signature and token as base64."""
    return {
        "number": view.number,
        "hash": view.hash,
        "header": view.header,
        "signature": base64.b64encode(bytes(view.signature)).decode("ascii"),
        "timestamp_token": (
            None
            if view.timestamp_token is None
            else base64.b64encode(bytes(view.timestamp_token)).decode("ascii")
        ),
        "txs": [
            {
                "index": tx.index,
                "tx_id": tx.tx_id,
                "code": tx.code,
                "function": tx.function,
                "creator_msp": tx.creator_msp,
                "timestamp_us": tx.timestamp_us,
                "record": tx.record,
            }
            for tx in view.txs
        ],
    }

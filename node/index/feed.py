"""From committed writes to index rows: a pure function of the values the ledger committed.

>>> batch = BlockBatch()
>>> for change in changes_of_one_block:
...     batch.add(change)
>>> batch.upserts["aeo"]  # {primary key: row} — the last write of the block wins

Only the values written by valid transactions are read (never the current state), so
replaying the ledger from block 0 gives the same rows. Keys mapped (docs/chaincode.md):
``member~MSP``, ``aeo~ID``, ``mra~ID`` (with its parties), ``sez~SEZ`` and
``trail~REF~SEQ``; every other key is not indexed. The MRA's parties come from its own
value (``mra-pair`` keys hold nothing more).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from chaincode.errors import ContractError
from chaincode.timeutil import parse_time
from node.ledger import TxChanges

from .errors import IndexFeedError

__all__ = ["PRIMARY_KEYS", "BlockBatch", "Row"]

Row = dict[str, Any]

#: the primary-key columns of each table fed from writes
PRIMARY_KEYS: dict[str, tuple[str, ...]] = {
    "members": ("msp_id",),
    "aeo": ("aeo_id",),
    "mra": ("mra_id",),
    "sez": ("sez",),
    "events": ("event_hash",),
}


def _member(doc: Any, where: dict[str, Any]) -> Row:
    return {
        "msp_id": doc["msp_id"],
        "country": doc["country"],
        "name": doc["name"],
        "admitted_us": parse_time(doc["admitted"]["at"]),
        **where,
    }


def _aeo(doc: Any, where: dict[str, Any]) -> Row:
    record = doc["record"]
    holder = record["holder"]
    return {
        "aeo_id": doc["aeo_id"],
        "country": record["issuer"]["country"],
        "issuer": record["issuer"]["administration"],
        "status": record["status"],
        "status_effective_us": parse_time(record["status_effective_at"]),
        "aeo_type": record["aeo_type"],
        "holder_name": holder["name"],
        "holder_name_folded": holder["name"].casefold(),
        "holder_tin": holder["tin"],
        "holder_city": holder["address"]["city"],
        "holder_country": holder["address"]["country"],
        "valid_until_us": parse_time(record["valid_until"]),
        "mra_sharing_consent": bool(record["mra_sharing_consent"]),
        "version": int(doc["version"]),
        **where,
    }


def mra_state(doc: Any) -> str:
    """The stored state: negotiating | signed | suspended | terminated."""
    if doc["terminated_us"] is not None:
        return "terminated"
    suspensions = doc["suspensions"]
    if suspensions and suspensions[-1]["to_us"] is None:
        return "suspended"
    return "signed" if doc["signed_us"] is not None else "negotiating"


def _mra(doc: Any, where: dict[str, Any]) -> Row:
    review = doc["review_date"]
    return {
        "mra_id": doc["mra_id"],
        "title": doc["title"],
        "state": mra_state(doc),
        "effective_from_us": int(doc["effective_from_us"]),
        "review_date_us": None if review is None else parse_time(review),
        "proposed_us": int(doc["proposed_us"]),
        "signed_us": doc["signed_us"],
        "terminated_us": doc["terminated_us"],
        "legal_instrument_ref": doc["legal_instrument_ref"],
        **where,
    }


def _sez(doc: Any, where: dict[str, Any]) -> Row:
    return {
        "sez": doc["sez"],
        "country": doc["country"],
        "msp_id": doc["msp_id"],
        "name": doc["name"],
        "operators": len(doc["operators"]),
        **where,
    }


#: json.dumps with separators builds a new encoder per call; one, made once
_compact = json.JSONEncoder(separators=(",", ":")).encode


def _event(doc: Any, where: dict[str, Any]) -> Row:
    corrects = doc["corrects"]
    if not isinstance(corrects, list):
        raise TypeError("corrects is not a list")
    return {
        "event_hash": doc["event_hash"],
        "sez": doc["sez"],
        "consignment_ref": doc["consignment_ref"],
        "seq": int(doc["seq"]),
        "event_type": doc["event_type"],
        "biz_step": doc["biz_step"],
        "disposition": doc["disposition"],
        "event_time_us": parse_time(doc["event_time"]),
        "location": doc["location"],
        "aeo_id": doc["aeo_id"],
        "prev_event_hash": doc["prev_event_hash"],
        "corrects": _compact(corrects) if corrects else "[]",
        **where,
    }


# key prefix (Fabric composite key of the object type) -> (table, key attributes, mapper)
_MAPPERS = {
    "\x00member\x00": ("members", 1, _member),
    "\x00aeo\x00": ("aeo", 1, _aeo),
    "\x00mra\x00": ("mra", 1, _mra),
    "\x00sez\x00": ("sez", 1, _sez),
    "\x00trail\x00": ("events", 2, _event),
}


@dataclass
class BlockBatch:
    """The rows one block's valid transactions leave in the index (last write wins)."""

    upserts: dict[str, dict[tuple[Any, ...], Row]] = field(
        default_factory=lambda: {table: {} for table in PRIMARY_KEYS}
    )
    deletes: dict[str, set[tuple[Any, ...]]] = field(
        default_factory=lambda: {table: set() for table in PRIMARY_KEYS}
    )
    #: mra_id -> its parties after the block (None: the MRA was deleted)
    parties: dict[str, list[str] | None] = field(default_factory=dict)
    last: TxChanges | None = None
    txs: int = 0

    def add(self, change: TxChanges) -> None:
        where = {"block": change.block, "tx_id": change.tx_id}
        for key, value in change.writes:
            end = key.find("\x00", 1)
            mapper = _MAPPERS.get(key[: end + 1]) if end > 0 else None
            if mapper is None:
                continue
            table, arity, make = mapper
            attrs = key[end + 1 : -1].split("\x00")
            if len(attrs) != arity or not key.endswith("\x00"):
                continue  # not a key of this layout: not indexed
            pk = (attrs[0],) if table != "events" else None
            try:
                row = None if value is None else make(json.loads(value), where)
            except (
                KeyError,
                TypeError,
                ValueError,
                IndexError,
                AttributeError,
                ContractError,
            ) as exc:
                raise IndexFeedError(
                    f"block {change.block} tx {change.tx_id}: the value of a {table} key "
                    f"cannot be indexed ({type(exc).__name__}: {exc})"
                ) from None
            if row is not None:
                pk = tuple(row[c] for c in PRIMARY_KEYS[table])
            if pk is None:
                raise IndexFeedError(
                    f"block {change.block} tx {change.tx_id}: a trail entry was deleted; "
                    "the index cannot tell which event it was"
                )
            self._put(table, pk, row)
            if table == "mra":
                self.parties[pk[0]] = None if value is None else _parties(value)
        self.last = change
        self.txs += 1

    def _put(self, table: str, pk: tuple[Any, ...], row: Row | None) -> None:
        if row is None:
            self.upserts[table].pop(pk, None)
            self.deletes[table].add(pk)
        else:
            self.deletes[table].discard(pk)
            self.upserts[table][pk] = row


def _parties(value: bytes) -> list[str]:
    parties = json.loads(value)["parties"]
    if not isinstance(parties, list) or not all(isinstance(p, str) for p in parties):
        raise IndexFeedError("an MRA's parties are not a list of MSP ids")
    return sorted(set(parties))

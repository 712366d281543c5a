"""The index's SQLModel tables: rows derived from committed ledger values, nothing else.

Every row carries the block and transaction of the write it came from, so a row says
which ledger version it shows. Times are integer microseconds since the epoch (UTC), as
the contracts store them, so range queries compare integers on both databases.

The tables live in their own SQLAlchemy registry (``METADATA``): creating the index never
creates, or drops, a table that another part of the node declares with SQLModel.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, Column, Index
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

__all__ = [
    "METADATA",
    "AeoRow",
    "CheckpointRow",
    "EventRow",
    "MemberRow",
    "MraPartyRow",
    "MraRow",
    "SezRow",
]

_REGISTRY = registry()


class IndexTable(SQLModel, registry=_REGISTRY):
    """Base of the index tables (own metadata)."""


METADATA = IndexTable.metadata


def _us(*, nullable: bool = False, index: bool = False) -> Any:
    """A microseconds column (BIGINT: microseconds overflow a 32-bit INTEGER)."""
    return Field(sa_column=Column(BigInteger, nullable=nullable, index=index))


class MemberRow(IndexTable, table=True):
    __tablename__ = "members"

    msp_id: str = Field(primary_key=True, max_length=64)
    country: str = Field(max_length=2, index=True)
    name: str
    admitted_us: int = _us()
    block: int
    tx_id: str = Field(max_length=64)


class AeoRow(IndexTable, table=True):
    __tablename__ = "aeo"
    __table_args__ = (
        Index("ix_aeo_country_status", "country", "status", "aeo_id"),
        Index("ix_aeo_issuer", "issuer", "aeo_id"),
        Index("ix_aeo_holder_tin", "holder_tin"),
        Index("ix_aeo_holder_folded", "holder_name_folded"),
    )

    aeo_id: str = Field(primary_key=True, max_length=64)
    country: str = Field(max_length=2)
    issuer: str = Field(max_length=64)
    status: str = Field(max_length=16)
    status_effective_us: int = _us()
    aeo_type: str = Field(max_length=8)
    holder_name: str
    #: holder_name.casefold(): case-insensitive search that folds every script the same way
    #: on SQLite and PostgreSQL (their lower() depends on the build and the locale)
    holder_name_folded: str
    holder_tin: str = Field(max_length=64)
    holder_city: str
    holder_country: str = Field(max_length=2)
    valid_until_us: int = _us()
    mra_sharing_consent: bool
    version: int
    block: int
    tx_id: str = Field(max_length=64)


class MraRow(IndexTable, table=True):
    __tablename__ = "mra"

    mra_id: str = Field(primary_key=True, max_length=64)
    title: str
    #: negotiating | signed | suspended | terminated (in_force = signed and effective)
    state: str = Field(max_length=16, index=True)
    effective_from_us: int = _us()
    review_date_us: int | None = _us(nullable=True)
    proposed_us: int = _us()
    signed_us: int | None = _us(nullable=True)
    terminated_us: int | None = _us(nullable=True)
    legal_instrument_ref: str
    block: int
    tx_id: str = Field(max_length=64)


class MraPartyRow(IndexTable, table=True):
    __tablename__ = "mra_party"

    mra_id: str = Field(primary_key=True, max_length=64)
    msp_id: str = Field(primary_key=True, max_length=64, index=True)


class SezRow(IndexTable, table=True):
    __tablename__ = "sez"

    sez: str = Field(primary_key=True, max_length=40)
    country: str = Field(max_length=2)
    msp_id: str = Field(max_length=64)
    name: str
    operators: int
    block: int
    tx_id: str = Field(max_length=64)


class EventRow(IndexTable, table=True):
    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_sez_time", "sez", "event_time_us", "event_hash"),
        Index("ix_events_consignment_seq", "consignment_ref", "seq"),
        Index("ix_events_time", "event_time_us", "event_hash"),
        Index("ix_events_aeo_time", "aeo_id", "event_time_us"),
    )

    event_hash: str = Field(primary_key=True, max_length=96)
    sez: str = Field(max_length=40)
    consignment_ref: str = Field(max_length=128)
    seq: int
    event_type: str = Field(max_length=32)
    biz_step: str
    disposition: str | None
    event_time_us: int = _us()
    location: str
    aeo_id: str | None = Field(default=None, max_length=64)
    prev_event_hash: str | None = Field(default=None, max_length=96)
    corrects: str  # JSON array of event hashes, as stored
    block: int
    tx_id: str = Field(max_length=64)


class CheckpointRow(IndexTable, table=True):
    """One row (id 1): every valid transaction up to (block, tx_index) is in the index."""

    __tablename__ = "checkpoint"

    id: int = Field(default=1, primary_key=True)
    block: int  # the last block fully indexed (-1: none)
    tx_index: int  # index in that block of the last transaction applied (-1: none)
    tx_id: str | None = Field(default=None, max_length=64)

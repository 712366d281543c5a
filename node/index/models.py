"""What the index's queries answer: frozen dataclasses, times as RFC 3339 UTC text.

FastAPI serialises them as they are. Holder TIN and city are confidential: the index
returns them, and the API shows them only to readers allowed to see them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = [
    "AeoEntry",
    "Checkpoint",
    "EventEntry",
    "MemberEntry",
    "MraEntry",
    "Page",
    "SezEntry",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list; pass ``next_cursor`` back to get the next (None: no more)."""

    items: list[T] = field(default_factory=list)
    next_cursor: str | None = None


@dataclass(frozen=True)
class Checkpoint:
    """Every valid transaction up to ``(block, tx_index)`` is in the index (-1: none yet)."""

    block: int
    tx_index: int
    tx_id: str | None


@dataclass(frozen=True)
class MemberEntry:
    msp_id: str
    country: str
    name: str
    admitted_at: str
    block: int
    tx_id: str


@dataclass(frozen=True)
class AeoEntry:
    aeo_id: str
    country: str
    issuer: str
    #: valid | suspended | revoked | expired (valid with valid_until passed)
    status: str
    status_effective_at: str
    aeo_type: str
    holder_name: str
    holder_tin: str
    holder_city: str
    holder_country: str
    valid_until: str
    mra_sharing_consent: bool
    version: int
    block: int
    tx_id: str


@dataclass(frozen=True)
class MraEntry:
    mra_id: str
    title: str
    parties: list[str]
    #: negotiating | signed | in_force | suspended | terminated
    state: str
    effective_from: str
    review_date: str | None
    legal_instrument_ref: str
    block: int
    tx_id: str


@dataclass(frozen=True)
class SezEntry:
    sez: str
    country: str
    msp_id: str
    name: str
    operators: int
    block: int
    tx_id: str


@dataclass(frozen=True)
class EventEntry:
    event_hash: str
    sez: str
    consignment_ref: str
    seq: int
    event_type: str
    biz_step: str
    disposition: str | None
    event_time: str
    location: str
    aeo_id: str | None
    prev_event_hash: str | None
    corrects: list[str]
    block: int
    tx_id: str

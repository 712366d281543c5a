"""The off-chain query index: lists and searches, fed from the ledger's committed blocks.

>>> from node.index import Index
>>> index = Index("sqlite:///data/index.db")  # or postgresql://USER@HOST/DB
>>> index.catch_up(ledger)  # after each commit, or on a timer: idempotent
>>> page = index.aeos(country="KZ", status="valid", holder="logistics", limit=50)
>>> page.items, page.next_cursor  # pass next_cursor back for the next page
>>> index.events(sez="KZ-KHORGOS", since="2026-11-01", until="2026-12-01")

Design, tables and PostgreSQL set-up: docs/index.md.
"""

from .errors import BadQuery, IndexFeedError, IndexUnavailable
from .index import AEO_STATUSES, MAX_LIMIT, MRA_STATES, ChangeFeed, Index
from .models import AeoEntry, Checkpoint, EventEntry, MemberEntry, MraEntry, Page, SezEntry

__all__ = [
    "AEO_STATUSES",
    "MAX_LIMIT",
    "MRA_STATES",
    "AeoEntry",
    "BadQuery",
    "ChangeFeed",
    "Checkpoint",
    "EventEntry",
    "Index",
    "IndexFeedError",
    "IndexUnavailable",
    "MemberEntry",
    "MraEntry",
    "Page",
    "SezEntry",
]

"""The /v1 routes, one module per resource (docs/api.md has the table).

>>> for router in ROUTERS:
...     app.include_router(router)
"""

from __future__ import annotations

from fastapi import APIRouter

from . import aeo, ledger, mra, trace, transactions, trust, validation

__all__ = ["ROUTERS", "TAGS"]

#: in the order requests are matched: FastAPI tries routes one by one (a few µs each),
#: so the routers of the most frequent calls (recognition checks, AEO status) come first
ROUTERS: list[APIRouter] = [
    mra.router,
    aeo.router,
    trace.router,
    ledger.router,
    trust.router,
    transactions.router,
    validation.router,
]

#: OpenAPI tags, in the order the docs show them
TAGS = [
    {"name": "node", "description": "Health, the ledger and its blocks."},
    {"name": "trust", "description": "Members, the trust list (anchors) and members' CRLs."},
    {
        "name": "aeo",
        "description": "AEO certificates: current version, history, status at a time. Holder "
        "TIN and address only for the issuer and its MRA partners (RFC 9421 signed GET).",
    },
    {"name": "mra", "description": "Mutual recognition agreements and the recognition check."},
    {"name": "trace", "description": "SEZs, anchored consignment events and trails."},
    {"name": "stream", "description": "Server-Sent Events of the ledger, resumable."},
    {"name": "transactions", "description": "Writes: signed proposals (decision 0004)."},
    {"name": "services", "description": "An organisation's e-seal; signature validation."},
]

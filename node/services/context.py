"""What every service takes: the ledger, its channel, the clock (and later the index).

>>> # ctx = NodeContext(ledger, channel="caravan")        # clock: time.time_ns
>>> # aeo.get(ctx, "KZ-AEO-2026-000001")

Queries go to the contracts through :meth:`query` (``Ledger.evaluate``), so the answer is
exactly what the chaincode would give; a non-200 answer raises the
:mod:`node.services.errors` class of its status.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from chaincode.canonical import CanonicalJsonError, canonical_json
from chaincode.timeutil import format_time

from ..ledger import Ledger
from .errors import InvalidArguments, contract_error

__all__ = ["Clock", "NodeContext", "Timestamp", "as_time"]

#: nanoseconds since the epoch (the embedded ledger's clock type)
Clock = Callable[[], int]
#: an RFC 3339 string or an aware datetime
Timestamp = str | dt.datetime


@dataclass(frozen=True)
class NodeContext:
    """The ledger the services read and write, on one channel, with an injected clock."""

    ledger: Ledger
    channel: str
    clock: Clock = field(default=time.time_ns)
    #: the off-chain query index (node.index), when the node runs one
    index: object | None = None

    def now_us(self) -> int:
        return self.clock() // 1000

    def now(self) -> str:
        """The node's time as RFC 3339 UTC text (what ``at`` defaults to)."""
        return format_time(self.now_us())

    def query(self, function: str, arg: dict[str, Any] | None = None) -> Any:
        """Evaluate a read-only contract function; its JSON answer, or the error it gave."""
        return json.loads(self.query_json(function, arg))

    def query_json(self, function: str, arg: dict[str, Any] | None = None) -> bytes:
        """:meth:`query`'s answer as the contract's canonical JSON bytes (not parsed)."""
        try:
            args = [] if arg is None else [canonical_json(arg).decode("utf-8")]
        except CanonicalJsonError as exc:
            raise InvalidArguments(f"arguments of {function}: {exc}") from None
        response = self.ledger.evaluate(function, args)
        if response.status != 200:
            raise contract_error(response.status, response.message)
        return response.payload


def as_time(value: Timestamp | None, ctx: NodeContext) -> str:
    """RFC 3339 text for a query's ``at``: the node's now when None; an aware datetime
    as UTC text; a string passes to the contract, which validates it (400 if bad)."""
    if value is None:
        return ctx.now()
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise InvalidArguments("a time must carry a UTC offset")
        delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
        return format_time(delta // dt.timedelta(microseconds=1))
    return value

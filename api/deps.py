"""What the routes share: the node's state and FastAPI dependency aliases.

>>> @router.get("/v1/aeo-certificates/{aeo_id}")
... def read(aeo_id: str, state: StateDep, caller: OptionalCallerDep) -> AeoCertificate: ...

:class:`ApiState` is created once by :func:`api.app.create_app` and kept on
``app.state.caravan``: the services' :class:`NodeContext` (with the index), the hosted
organisations' e-seals, the trust check for RFC 9421 callers, the commit signal the
event stream waits on, and the index feeder.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, ParamSpec, TypeVar

from cryptography import x509
from fastapi import BackgroundTasks, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from node.errors import NodeError
from node.index import Index, IndexUnavailable
from node.index.feeder import IndexFeeder
from node.services.context import NodeContext
from node.services.identity import caller_trust, ledger_height
from node.services.seal import OrgSealers

from .httpsig import Caller, ReplayCache, caller_from, optional_caller, signed_caller

__all__ = [
    "ApiState",
    "CommitSignal",
    "CursorQuery",
    "LimitQuery",
    "OptionalCallerDep",
    "SignedCallerDep",
    "StateDep",
    "get_state",
]

log = logging.getLogger("caravan.api")

P = ParamSpec("P")
T = TypeVar("T")


class CommitSignal:
    """Wakes the event streams when a transaction this node submitted is committed."""

    def __init__(self) -> None:
        self._event: asyncio.Event | None = None

    def _current(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    async def wait(self) -> None:
        await self._current().wait()

    def fire(self) -> None:
        """Wake every waiter (call on the event loop)."""
        event, self._event = self._event, asyncio.Event()
        if event is not None:
            event.set()


@dataclass
class ApiState:
    """Everything a request needs; one per app."""

    ctx: NodeContext
    orgs: list[str]
    sealers: OrgSealers
    index: Index | None = None
    #: seconds since the epoch, the node's clock (RFC 9421 ``created`` is checked with it)
    clock_s: Callable[[], float] = field(default=lambda: 0.0)
    commits: CommitSignal = field(default_factory=CommitSignal)
    #: point reads answer in microseconds from a local ledger (embedded): run them on
    #: the event loop, where a thread-pool hop would cost more than the read itself
    inline_reads: bool = False
    #: feeds the index from a child process (node.index.feeder); None: a thread here
    feeder: IndexFeeder | None = None
    _feed_lock: threading.Lock = field(default_factory=threading.Lock)
    _members: Any = None

    def __post_init__(self) -> None:
        members = caller_trust(self.ctx)

        def trust(certificate: x509.Certificate, chain: list[x509.Certificate]) -> Caller:
            return caller_from(members(certificate, chain).msp_id, certificate)

        self.trust = trust
        self.replays = ReplayCache()  # one per node: a signed request is good once
        self.signed = signed_caller(trust, clock=self.clock_s, replays=self.replays)
        self.optional = optional_caller(trust, clock=self.clock_s, replays=self.replays)

    async def read(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """Run a point read (one record, one recognition check) for an async route:
        inline when :attr:`inline_reads`, else in the thread pool (a remote ledger)."""
        if self.inline_reads:
            return fn(*args, **kwargs)
        return await run_in_threadpool(fn, *args, **kwargs)

    # ------------------------------------------------------------------ index
    def committed(self, background: BackgroundTasks) -> None:
        """After a write reached a block (on the event loop): wake the event streams and
        have the index catch up, by the child feeder or after the response."""
        self.commits.fire()
        if self.feeder is not None:
            self.feeder.nudge()
        else:
            background.add_task(self.catch_up_quietly)

    def catch_up(self) -> int:
        """Feed the index up to the ledger's height (one feeder at a time)."""
        if self.index is None:
            return 0
        with self._feed_lock:
            return self.index.catch_up(self.ctx.ledger)

    def catch_up_quietly(self) -> None:
        """:meth:`catch_up` for background use: failures are logged, never raised."""
        try:
            self.catch_up()
        except NodeError as exc:
            log.warning("index catch-up failed: %s %s", exc.code, exc.message)
        except Exception:
            log.exception("index catch-up failed")

    def fresh_index(self) -> Index:
        """The index with every committed block in it (read-your-writes for lists)."""
        if self.index is None:
            raise IndexUnavailable("this node runs no index: lists and searches are unavailable")
        if self.index.checkpoint().block < ledger_height(self.ctx) - 1:
            self.catch_up()
        return self.index


async def get_state(request: Request) -> ApiState:
    """Async so that FastAPI does not send it to the thread pool (a dependency that
    is a plain ``def`` costs a thread hop on every request)."""
    state: ApiState = request.app.state.caravan
    return state


async def _optional_caller(request: Request) -> Caller | None:
    return await (await get_state(request)).optional(request)


async def _signed_caller(request: Request) -> Caller:
    return await (await get_state(request)).signed(request)


StateDep = Annotated[ApiState, Depends(get_state)]
#: the RFC 9421 caller when the request is signed, else None (anonymous)
OptionalCallerDep = Annotated[Caller | None, Depends(_optional_caller)]
#: the RFC 9421 caller; 401 without a valid signature, 403 if the trust list refuses it
SignedCallerDep = Annotated[Caller, Depends(_signed_caller)]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="page size (1-500)")]
CursorQuery = Annotated[
    str | None,
    Query(max_length=512, description="the next_cursor of the previous page"),
]

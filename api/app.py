"""The node's HTTP API: ``create_app(node)`` → a FastAPI app serving /v1 and /orgs.

>>> # with Node.open(Path("node")) as node:
>>> #     app = create_app(node)                # index from node.yaml, TSA/OCSP/CRLs mounted
>>> #     uvicorn.run(app, host="127.0.0.1", port=8700)

Routes (docs/api.md): health, ledger and blocks; members and the trust list; AEO
certificates (redacted unless the RFC 9421 signed caller may see); MRAs and recognition;
SEZs, events and trails; the SSE stream; writes as signed proposals; an organisation's
e-seal; validation. Every error is problem+json (api/problems.py); bodies are limited
(``limits.max_body_bytes``). Each hosted organisation's TSA, OCSP responder, CRLs and CA
certificates are served under ``/orgs/{ORG}/…`` (trust_services.server).

The index (node.index) is fed after each submitted block, every ``index_interval``
seconds while the app runs (lifespan), and before a list answers if it is behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Mapping

import anyio.to_thread
from fastapi import FastAPI

from node.embedded.ledger import EmbeddedLedger
from node.index import Index
from node.index.feeder import IndexFeeder
from node.index.index import in_memory
from node.node import Node
from node.services.context import NodeContext
from node.services.seal import OrgSealers
from trust_services.pki import OrgPki
from trust_services.server import TrustServicesApp

from .deps import ApiState
from .fastpath import RecognitionFastRoute
from .limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from .problems import install_problem_handlers
from .routes import ROUTERS, TAGS

__all__ = ["API_VERSION", "create_app"]

API_VERSION = "1.0.0"
DEFAULT_INDEX_INTERVAL_S = 2.0


def create_app(
    source: Node | NodeContext,
    *,
    pkis: Mapping[str, OrgPki] | None = None,
    index: Index | str | None = None,
    max_body_bytes: int | None = None,
    trust_services: bool = True,
    index_interval: float = DEFAULT_INDEX_INTERVAL_S,
    index_process: bool = False,
) -> FastAPI:
    """The API of an opened node (or of a bare context, for tests and tools).

    ``pkis``: the unlocked PKIs of the hosted organisations (default: the node's); their
    e-seals serve ``/v1/orgs/{org}/seal`` and, with ``trust_services``, their TSA, OCSP
    and CRLs ``/orgs/{org}/…``. ``index``: an :class:`Index` or URL (default: the node's
    ``index.url``; with a bare context, none — the list routes then answer 503).
    ``index_process``: feed the index from a child process reading the ledger file
    (node.index.feeder) when the ledger is embedded and the index is not in memory;
    otherwise, and by default, a thread of this process feeds it.
    """
    if isinstance(source, Node):
        ctx = source.context
        pkis = source.pkis if pkis is None else pkis
        if index is None:
            index = source.config.index_url
        if max_body_bytes is None:
            max_body_bytes = source.config.limits.max_body_bytes
    else:
        ctx = source
    pkis = dict(pkis or {})
    owned = isinstance(index, str)
    opened = Index(index, clock=ctx.now_us) if isinstance(index, str) else index
    if opened is None and isinstance(ctx.index, Index):
        opened = ctx.index
    ctx = dataclasses.replace(ctx, index=opened)
    if isinstance(ctx.ledger, EmbeddedLedger):
        ctx.ledger.claim_writer()  # the serving node is the ledger's only writer
    feeder = _feeder(ctx, opened, index_interval) if index_process else None
    clock = ctx.clock
    state = ApiState(
        ctx=ctx,
        orgs=sorted(pkis),
        sealers=OrgSealers(pkis, clock=clock),
        index=opened,
        clock_s=lambda: clock() / 1e9,
        inline_reads=isinstance(ctx.ledger, EmbeddedLedger),
        feeder=feeder,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if feeder is not None:
            feeder.start()
        task = asyncio.create_task(_feed(state, index_interval)) if opened and not feeder else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if feeder is not None:
                await anyio.to_thread.run_sync(feeder.close)
            if owned and opened is not None:
                opened.close()

    app = FastAPI(
        title="Caravan node API",
        version=API_VERSION,
        summary="AEO certificates, MRAs, consignment trails and trust services on a shared "
        "ledger of Central Asian customs administrations.",
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.caravan = state
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes or DEFAULT_MAX_BODY_BYTES)
    for router in ROUTERS:
        app.include_router(router)
    app.router.routes.insert(0, RecognitionFastRoute(state))  # falls through when invalid
    if trust_services and pkis:
        # TrustServicesApp reads the full path (/orgs/{ORG}/…): Starlette's Mount keeps it
        app.mount("/orgs", TrustServicesApp(pkis.values()), name="trust-services")
    return app


def _feeder(ctx: NodeContext, index: Index | None, interval: float) -> IndexFeeder | None:
    """The child-process feeder, when both databases can be opened by another process."""
    if index is None or not isinstance(ctx.ledger, EmbeddedLedger) or in_memory(index.url):
        return None
    return IndexFeeder(ctx.ledger.store.path, index.url, interval=interval)


async def _feed(state: ApiState, interval: float) -> None:
    """Keep the index caught up while the app runs (commits of this node also trigger it)."""
    while True:
        await anyio.to_thread.run_sync(state.catch_up_quietly)
        with anyio.move_on_after(interval):
            await state.commits.wait()
        await asyncio.sleep(0)

"""SEZs (index list, one with its operators), anchored events (index list, one by hash),
consignment trails, the event stream."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query
from sse_starlette import EventSourceResponse

from api.problems import problem_responses
from api.sse import MAX_BLOCK, stream_events
from node.services import trace

from ..deps import CursorQuery, LimitQuery, StateDep
from .models import (
    AEO_ID,
    CONSIGNMENT_REF,
    EVENT_HASH,
    SEZ_CODE,
    TIME,
    AnchoredEvent,
    EventListItem,
    EventPage,
    Sez,
    SezListItem,
    SezPage,
    TrailVerification,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["trace"])

EventType = Literal[
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
]
RefPath = Annotated[
    str,
    Path(
        pattern=CONSIGNMENT_REF,
        description="the consignment reference (URL-encode '/')",
        examples=["26KZ0000042-KHG"],
    ),
]


@router.get(
    "/sez",
    summary="The registered SEZs, by code, with their operator counts (index)",
    response_model=SezPage,
    responses=problem_responses(400, 422, 503),
)
def list_sezs(state: StateDep, limit: LimitQuery = 100, cursor: CursorQuery = None) -> SezPage:
    page = state.fresh_index().sezs(limit=limit, cursor=cursor)
    return SezPage(
        items=[SezListItem(**asdict(z)) for z in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/sez/{sez}",
    summary="An SEZ and its registered operators",
    response_model=Sez,
    responses=problem_responses(404, 422),
)
def read_sez(
    sez: Annotated[str, Path(pattern=SEZ_CODE, examples=["KZ-KHORGOS"])], state: StateDep
) -> dict[str, Any]:
    return trace.sez(state.ctx, sez)


@router.get(
    "/events",
    summary="Anchored consignment events (index)",
    response_model=EventPage,
    responses=problem_responses(400, 422, 503),
)
def list_events(
    state: StateDep,
    sez: Annotated[str | None, Query(pattern=SEZ_CODE, examples=["KZ-KHORGOS"])] = None,
    consignment_ref: Annotated[str | None, Query(pattern=CONSIGNMENT_REF)] = None,
    since: Annotated[
        str | None, Query(pattern=TIME, description="event time ≥ since (RFC 3339)")
    ] = None,
    until: Annotated[
        str | None, Query(pattern=TIME, description="event time < until (RFC 3339)")
    ] = None,
    event_type: EventType | None = None,
    aeo_id: Annotated[str | None, Query(pattern=AEO_ID)] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> EventPage:
    page = state.fresh_index().events(
        sez=sez,
        consignment_ref=consignment_ref,
        since=since,
        until=until,
        event_type=event_type,
        aeo_id=aeo_id,
        limit=limit,
        cursor=cursor,
    )
    return EventPage(
        items=[EventListItem(**asdict(e)) for e in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/events/{event_hash:path}",
    summary="One anchored event with its inclusion proof",
    response_model=AnchoredEvent,
    responses=problem_responses(404, 422),
)
def read_event(
    event_hash: Annotated[
        str,
        Path(
            pattern=EVENT_HASH,
            description="the CBV 2.0 event hash (URL-encoded)",
            examples=[
                "ni:///sha-256;5f1c0e8a2d3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5"
                "?ver=CBV2.0"
            ],
        ),
    ],
    state: StateDep,
) -> dict[str, Any]:
    return trace.event(state.ctx, event_hash)


@router.get(
    "/consignments/{ref:path}/trail",
    summary="A consignment's events in order, with proofs",
    response_model=list[AnchoredEvent],
    responses=problem_responses(404, 422),
)
def read_trail(ref: RefPath, state: StateDep) -> list[dict[str, Any]]:
    return trace.trail(state.ctx, ref)


@router.get(
    "/consignments/{ref:path}/verification",
    summary="The trail's links, sequence and Merkle proofs re-checked",
    response_model=TrailVerification,
    responses=problem_responses(404, 422),
)
def verify_trail(ref: RefPath, state: StateDep) -> dict[str, Any]:
    return trace.verify_trail(state.ctx, ref)


@router.get(
    "/stream",
    summary="Ledger events as Server-Sent Events (resume with Last-Event-ID)",
    tags=["stream"],
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "id: <block>:<tx_id>, event: caravan, data: the payload (JSON)",
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **problem_responses(400, 422),
    },
)
async def stream(
    state: StateDep,
    from_block: Annotated[
        int | None, Query(ge=0, lt=MAX_BLOCK, description="start at this block (default 0)")
    ] = None,
    last_event_id: Annotated[
        str | None,
        Header(max_length=200, description="resume after this event id (wins over from_block)"),
    ] = None,
) -> EventSourceResponse:
    return await stream_events(
        state.ctx.ledger,
        from_block=from_block,
        last_event_id=last_event_id,
        wake=state.commits.wait,
    )

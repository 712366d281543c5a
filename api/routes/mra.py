"""MRAs (list from the index, one, state at a time) and the recognition check."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from api.problems import problem_responses
from node.services import mra, recognition

from ..deps import CursorQuery, LimitQuery, StateDep
from .models import (
    AEO_ID,
    COUNTRY,
    MRA_ID,
    MSP_ID,
    TIME,
    Mra,
    MraListItem,
    MraPage,
    MraStateAt,
    Recognition,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["mra"])

MraIdPath = Annotated[str, Path(pattern=MRA_ID, examples=["MRA-KZ-UZ-2026"])]
AtQuery = Annotated[
    str | None,
    Query(pattern=TIME, description="RFC 3339 (default: now)", examples=["2026-06-01T00:00:00Z"]),
]


@router.get(
    "/mras",
    summary="MRAs by party and state (index)",
    response_model=MraPage,
    responses=problem_responses(400, 422, 503),
)
def list_mras(
    state: StateDep,
    party: Annotated[str | None, Query(pattern=MSP_ID, examples=["UZ-CUSTOMS"])] = None,
    mra_state: Annotated[
        Literal["negotiating", "signed", "in_force", "suspended", "terminated"] | None,
        Query(alias="state"),
    ] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> MraPage:
    page = state.fresh_index().mras(party=party, state=mra_state, limit=limit, cursor=cursor)
    return MraPage(
        items=[MraListItem(**asdict(m)) for m in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/mras/{mra_id}",
    summary="One MRA with its signatures, suspensions and steps",
    response_model=Mra,
    responses=problem_responses(404, 422),
)
async def read_mra(mra_id: MraIdPath, state: StateDep) -> dict[str, Any]:
    return await state.read(mra.get, state.ctx, mra_id)


@router.get(
    "/mras/{mra_id}/state",
    summary="The MRA's state at a time",
    response_model=MraStateAt,
    responses=problem_responses(400, 404, 422),
)
async def mra_state_at(mra_id: MraIdPath, state: StateDep, at: AtQuery = None) -> dict[str, Any]:
    return await state.read(mra.state_at, state.ctx, mra_id, at)


@router.get(
    "/recognition",
    summary="Is an AEO certificate recognised in a country at a time?",
    response_model=Recognition,
    responses=problem_responses(400, 404, 422),
)
async def recognition_check(
    state: StateDep,
    aeo_id: Annotated[str, Query(pattern=AEO_ID, examples=["KZ-AEO-2026-000123"])],
    country: Annotated[str, Query(pattern=COUNTRY, examples=["UZ"])],
    at: AtQuery = None,
) -> dict[str, Any]:
    return await state.read(recognition.check, state.ctx, aeo_id, country, at)

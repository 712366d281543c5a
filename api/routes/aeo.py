"""AEO certificates: list (index), current version, history, status at a time.

Holder TIN and address (in lists: TIN and city) are shown only to a signed caller
(RFC 9421) of the issuing administration, or of an MRA partner in force with it when
the holder consented (node.services.aeo); everyone else gets them withheld and listed in
``redacted``. Filtering by ``tin`` needs a signed request and finds only certificates
the caller may see, so the filter cannot be used to learn whose TIN it is.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from api.httpsig import Caller, Unauthenticated
from api.problems import problem_responses
from node.index import AeoEntry
from node.services import aeo, mra

from ..deps import CursorQuery, LimitQuery, OptionalCallerDep, StateDep
from .models import (
    AEO_ID,
    COUNTRY,
    MSP_ID,
    TIME,
    TIN,
    AeoCertificate,
    AeoListItem,
    AeoPage,
    AeoStatusAt,
    AeoVersion,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/aeo-certificates", tags=["aeo"])

AeoIdPath = Annotated[str, Path(pattern=AEO_ID, examples=["KZ-AEO-2026-000123"])]
_SIGNED = problem_responses(401, 403, 404, 422)
_LIST_REDACTED = ["holder_tin", "holder_city"]


def _viewer(caller: Caller | None) -> str | None:
    return None if caller is None else caller.msp_id


@router.get(
    "",
    summary="Search AEO certificates (index)",
    response_model=AeoPage,
    responses=problem_responses(400, 401, 403, 422, 503),
)
def list_aeos(
    state: StateDep,
    caller: OptionalCallerDep,
    country: Annotated[str | None, Query(pattern=COUNTRY, examples=["KZ"])] = None,
    status: Literal["valid", "suspended", "revoked", "expired"] | None = None,
    holder: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="case-insensitive part of the name"),
    ] = None,
    tin: Annotated[
        str | None,
        Query(pattern=TIN, description="holder TIN: signed callers only, among what they may see"),
    ] = None,
    issuer: Annotated[str | None, Query(pattern=MSP_ID, examples=["KZ-CUSTOMS"])] = None,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> AeoPage:
    if tin is not None and caller is None:
        raise Unauthenticated(
            "SIGNATURE_MISSING", "the tin filter is for signed requests of the issuer or a partner"
        )
    index = state.fresh_index()
    page = index.aeos(
        country=country,
        status=status,
        holder=holder,
        tin=tin,
        issuer=issuer,
        limit=limit,
        cursor=cursor,
    )
    partners: dict[str, bool] = {}

    def may_see(entry: AeoEntry) -> bool:
        viewer = _viewer(caller)
        if viewer is None:
            return False
        if viewer == entry.issuer:
            return True
        if not entry.mra_sharing_consent:
            return False
        if entry.issuer not in partners:
            partners[entry.issuer] = mra.in_force_between(state.ctx, entry.issuer, viewer)
        return partners[entry.issuer]

    items: list[AeoListItem] = []
    for entry in page.items:
        row: dict[str, Any] = asdict(entry)
        if may_see(entry):
            items.append(AeoListItem(**row))
        elif tin is None:
            row.update(holder_tin=None, holder_city=None, redacted=list(_LIST_REDACTED))
            items.append(AeoListItem(**row))
    return AeoPage(items=items, next_cursor=page.next_cursor)


@router.get(
    "/{aeo_id}",
    summary="The current version of an AEO certificate",
    response_model=AeoCertificate,
    response_model_exclude_unset=True,
    responses=_SIGNED,
)
async def read_aeo(aeo_id: AeoIdPath, state: StateDep, caller: OptionalCallerDep) -> dict[str, Any]:
    return await state.read(aeo.view_for, state.ctx, aeo_id, _viewer(caller))


@router.get(
    "/{aeo_id}/history",
    summary="Every version, oldest first",
    response_model=list[AeoVersion],
    response_model_exclude_unset=True,
    responses=_SIGNED,
)
def aeo_history(
    aeo_id: AeoIdPath, state: StateDep, caller: OptionalCallerDep
) -> list[dict[str, Any]]:
    return aeo.history_for(state.ctx, aeo_id, _viewer(caller))


@router.get(
    "/{aeo_id}/status",
    summary="The status at a time (default: now)",
    response_model=AeoStatusAt,
    responses=problem_responses(400, 404, 422),
)
async def aeo_status(
    aeo_id: AeoIdPath,
    state: StateDep,
    at: Annotated[str | None, Query(pattern=TIME, examples=["2026-06-01T00:00:00Z"])] = None,
) -> dict[str, Any]:
    return await state.read(aeo.status_at, state.ctx, aeo_id, at)

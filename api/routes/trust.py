"""Members, the trust list, anchor history and members' CRLs (the registry contract)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from api.problems import problem_responses
from node.services import trust

from ..deps import StateDep
from .models import FINGERPRINT, MSP_ID, Anchor, AnchorVersion, Member, MemberCrl

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["trust"])

MspPath = Annotated[str, Path(pattern=MSP_ID, examples=["KZ-CUSTOMS"])]


@router.get("/members", summary="Every member of the consortium", response_model=list[Member])
def members(state: StateDep) -> list[dict[str, Any]]:
    return trust.members(state.ctx)


@router.get(
    "/members/{msp_id}",
    summary="One member",
    response_model=Member,
    responses=problem_responses(404, 422),
)
def member(msp_id: MspPath, state: StateDep) -> dict[str, Any]:
    return trust.member(state.ctx, msp_id)


@router.get(
    "/trust-list",
    summary="Trust anchors (root, TSA, OCSP) with their status",
    response_model=list[Anchor],
    responses=problem_responses(422),
)
def trust_list(
    state: StateDep,
    msp_id: Annotated[
        str | None, Query(pattern=MSP_ID, description="one member's anchors only")
    ] = None,
) -> list[dict[str, Any]]:
    return trust.trust_list(state.ctx, msp_id)


@router.get(
    "/members/{msp_id}/anchors/{fingerprint}/history",
    summary="Every version of one anchor (granted, withdrawn)",
    response_model=list[AnchorVersion],
    responses=problem_responses(404, 422),
)
def anchor_history(
    msp_id: MspPath,
    fingerprint: Annotated[str, Path(pattern=FINGERPRINT, description="SHA-256 hex")],
    state: StateDep,
) -> list[dict[str, Any]]:
    return trust.anchor_history(state.ctx, msp_id, fingerprint)


@router.get(
    "/members/{msp_id}/crls",
    summary="The member's CRLs on the ledger (PublishCrl)",
    response_model=list[MemberCrl],
    responses=problem_responses(422),
)
def crls(msp_id: MspPath, state: StateDep) -> list[dict[str, Any]]:
    return trust.crls(state.ctx, msp_id)

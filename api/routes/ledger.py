"""GET /v1/health, /v1/ledger, /v1/blocks/{n}."""

from __future__ import annotations

import base64
from typing import Annotated

from fastapi import APIRouter, Path

from api.problems import problem_responses
from chaincode.timeutil import format_time
from node.services import chain
from node.services.identity import ledger_height

from ..deps import StateDep
from .models import Block, BlockTx, Health, LedgerSummary

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["node"])

#: block numbers beyond this are refused by the schema (SQLite integers are 64-bit)
MAX_BLOCK = 2**40


@router.get("/health", summary="The node is up", response_model=Health)
def health(state: StateDep) -> Health:
    return Health(
        status="ok",
        channel=state.ctx.channel,
        height=ledger_height(state.ctx),
        orgs=state.orgs,
    )


@router.get("/ledger", summary="Height, last hash and counts", response_model=LedgerSummary)
def ledger_summary(state: StateDep) -> LedgerSummary:
    info = chain.info(state.ctx)
    return LedgerSummary(
        channel=info.channel,
        height=info.height,
        last_hash=info.last_hash,
        tx_count=info.tx_count,
        valid_tx_count=info.valid_tx_count,
        state_keys=info.state_keys,
    )


@router.get(
    "/blocks/{n}",
    summary="One block as stored",
    response_model=Block,
    responses=problem_responses(404, 422),
)
def block(n: Annotated[int, Path(ge=0, lt=MAX_BLOCK, examples=[0])], state: StateDep) -> Block:
    view = chain.block(state.ctx, n)
    token = view.timestamp_token
    return Block(
        number=view.number,
        hash=view.hash,
        header=view.header,
        signature=base64.b64encode(view.signature).decode("ascii"),
        timestamped=token is not None,
        timestamp_token=None if token is None else base64.b64encode(token).decode("ascii"),
        txs=[
            BlockTx(
                index=tx.index,
                tx_id=tx.tx_id,
                code=tx.code,
                function=tx.function,
                creator_msp=tx.creator_msp,
                timestamp=format_time(tx.timestamp_us),
            )
            for tx in view.txs
        ],
    )

"""POST /v1/transactions (one signed proposal) and /v1/transactions/batch.

The body is ``SignedProposal.to_json()``; the proposal's own signature authenticates it
(decision 0004). A valid transaction answers 200 with its receipt; a refused one is a
problem with the receipt's ``code`` (``BAD_PROPOSAL``, ``WRONG_CHANNEL``,
``BAD_TIMESTAMP`` 400; ``BAD_SIGNATURE`` 401; ``UNTRUSTED_CREATOR``,
``REVOKED_CREATOR`` 403; ``DUPLICATE_TXID`` 409; ``CHAINCODE_ERROR`` with the contract's
status; ``MVCC_READ_CONFLICT`` / ``PHANTOM_READ_CONFLICT`` 409, recorded in ``block``)
and its ``tx_id``. A batch answers 200 with one receipt per proposal.
"""

from __future__ import annotations

import http
import json
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

from api.problems import PROBLEM_MEDIA_TYPE, PROBLEM_TYPE_BASE, problem_responses
from node.ledger import Receipt
from node.proposal import SignedProposal
from node.services import submit

from ..deps import StateDep
from .models import (
    BatchReceipts,
    BatchRequest,
    ChaincodeEvent,
    SignedProposalBody,
    TransactionReceipt,
)

__all__ = ["REFUSAL_STATUS", "router"]

router = APIRouter(prefix="/v1/transactions", tags=["transactions"])

#: HTTP status of a refusal whose receipt status the API overrides: a proposal signature
#: that does not verify is an authentication failure
REFUSAL_STATUS = {"BAD_SIGNATURE": 401}


def _json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return data.decode("utf-8", "replace")


def receipt_model(receipt: Receipt) -> TransactionReceipt:
    event = None
    if receipt.event is not None:
        name, payload = receipt.event
        event = ChaincodeEvent(name=name, payload=_json(payload))
    return TransactionReceipt(
        tx_id=receipt.tx_id,
        code=receipt.code,
        block=receipt.block,
        status=receipt.status,
        message=receipt.message,
        payload=_json(receipt.payload),
        event=event,
    )


def _refusal(receipt: Receipt, instance: str) -> JSONResponse:
    status = REFUSAL_STATUS.get(receipt.code, receipt.status)
    if not 400 <= status <= 599:
        status = 409 if receipt.block is not None else 400
    try:
        title = http.HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + receipt.code,
        "title": title,
        "status": status,
        "detail": receipt.message,
        "instance": instance,
        "code": receipt.code,
        "tx_id": receipt.tx_id,
    }
    if receipt.block is not None:
        body["block"] = receipt.block
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE)


def _parse(body: SignedProposalBody) -> SignedProposal:
    return SignedProposal.from_json(body.model_dump())


@router.post(
    "",
    summary="Submit one signed proposal",
    response_model=TransactionReceipt,
    responses=problem_responses(400, 401, 403, 404, 409, 413, 422),
)
async def submit_transaction(
    body: SignedProposalBody,
    request: Request,
    state: StateDep,
    background: BackgroundTasks,
) -> Any:
    signed = _parse(body)
    receipt = await run_in_threadpool(state.ctx.ledger.submit, signed)
    if receipt.block is not None:
        state.committed(background)
    if not receipt.valid:
        return _refusal(receipt, request.url.path)
    return receipt_model(submit.check_receipt(receipt))


@router.post(
    "/batch",
    summary="Submit up to 1000 signed proposals; one receipt each",
    response_model=BatchReceipts,
    responses=problem_responses(400, 413, 422),
)
async def submit_batch(
    body: BatchRequest, state: StateDep, background: BackgroundTasks
) -> BatchReceipts:
    signed = [_parse(p) for p in body.proposals]
    receipts = await run_in_threadpool(submit.submit_many, state.ctx, signed)
    if any(r.block is not None for r in receipts):
        state.committed(background)
    return BatchReceipts(receipts=[receipt_model(r) for r in receipts])

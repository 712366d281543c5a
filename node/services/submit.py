"""Writes: build a signed proposal (client side) and submit one to the ledger.

>>> # signed = propose(officer, "SuspendAeo", args, channel=ctx.channel, clock=ctx.clock)
>>> # receipt = submit(ctx, signed)       # VALID, or raises the error of its refusal
>>> # json.loads(receipt.payload)         # what the contract answered

Every write is a :class:`~node.proposal.SignedProposal` made and signed by the caller
with its own key (docs/node.md); the node only checks and orders it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from chaincode.canonical import CanonicalJsonError, canonical_json

from ..ledger import INVALID_CODES, Receipt
from ..proposal import ProposalSigner, SignedProposal, make_proposal
from .context import Clock, NodeContext
from .errors import InvalidArguments, TransactionConflict, TransactionRejected, contract_error

__all__ = ["check_receipt", "propose", "submit", "submit_many"]


def propose(
    signer: ProposalSigner,
    function: str,
    arg: dict[str, Any] | None = None,
    *,
    channel: str,
    clock: Clock = time.time_ns,
) -> SignedProposal:
    """A proposal of ``function`` with ``arg`` as canonical JSON (none when ``arg`` is
    None), timestamped by ``clock`` and signed by ``signer``."""
    try:
        args = [] if arg is None else [canonical_json(arg).decode("utf-8")]
    except CanonicalJsonError as exc:
        raise InvalidArguments(f"arguments of {function}: {exc}") from None
    ns = clock()
    return make_proposal(signer, function, args, channel=channel, timestamp=divmod(ns, 10**9))


def check_receipt(receipt: Receipt) -> Receipt:
    """``receipt`` when VALID, else the error it stands for."""
    if receipt.valid:
        return receipt
    if receipt.code == "CHAINCODE_ERROR":
        raise contract_error(receipt.status, receipt.message, receipt.tx_id)
    if receipt.code in INVALID_CODES:
        raise TransactionConflict(receipt.code, receipt.message, receipt.tx_id, receipt.block)
    raise TransactionRejected(receipt.code, receipt.message, receipt.status, receipt.tx_id)


def submit(ctx: NodeContext, signed: SignedProposal) -> Receipt:
    """Submit one signed proposal; returns the VALID receipt once its block is durable."""
    return check_receipt(ctx.ledger.submit(signed))


def submit_many(ctx: NodeContext, signed: Sequence[SignedProposal]) -> list[Receipt]:
    """Submit several at once; receipts in order, each possibly refused (not raised)."""
    return ctx.ledger.submit_many(signed)

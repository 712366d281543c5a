"""Consignment trails in special economic zones, as the traceability contract answers.

>>> # args = trace.prepare_anchor("KZ-KHORGOS", events)     # {sez, events}
>>> # submit(ctx, propose(operator, "AnchorEvents", args, channel=ctx.channel))
>>> # trace.trail(ctx, "26KZ0000042-KHG")                  # events in order, with proofs
>>> # trace.verify_trail(ctx, "26KZ0000042-KHG")["ok"]     # True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from chaincode.trace import MAX_BATCH

from .context import NodeContext
from .errors import InvalidArguments

__all__ = ["MAX_BATCH", "event", "prepare_anchor", "sez", "trail", "verify_trail"]


def trail(ctx: NodeContext, consignment_ref: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ctx.query("GetTrail", {"consignment_ref": consignment_ref})
    return result


def verify_trail(ctx: NodeContext, consignment_ref: str) -> dict[str, Any]:
    """Links, sequence and Merkle proofs of the trail re-checked by the contract."""
    result: dict[str, Any] = ctx.query("VerifyTrail", {"consignment_ref": consignment_ref})
    return result


def event(ctx: NodeContext, event_hash: str) -> dict[str, Any]:
    result: dict[str, Any] = ctx.query("GetEvent", {"event_hash": event_hash})
    return result


def sez(ctx: NodeContext, sez_code: str) -> dict[str, Any]:
    """An SEZ and its registered operators."""
    result: dict[str, Any] = ctx.query("GetSez", {"sez": sez_code})
    return result


def prepare_anchor(sez_code: str, events: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The argument of ``AnchorEvents``: 1 to 4096 events of one zone, in order (the
    contract checks each field, links ``prev_event_hash`` and answers the proofs)."""
    if not isinstance(sez_code, str) or not sez_code:
        raise InvalidArguments("sez must be an SEZ code, e.g. KZ-KHORGOS")
    if not 1 <= len(events) <= MAX_BATCH:
        raise InvalidArguments(f"a batch has 1 to {MAX_BATCH} events (got {len(events)})")
    if not all(isinstance(e, dict) for e in events):
        raise InvalidArguments("every event is a JSON object")
    return {"sez": sez_code, "events": [dict(e) for e in events]}

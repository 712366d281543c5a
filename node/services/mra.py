"""Mutual recognition agreements, as the MRA contract answers them.

>>> # mra.get(ctx, "MRA-KZ-UZ-2026")["state_now"]                 # 'in_force'
>>> # mra.state_at(ctx, "MRA-KZ-UZ-2026", "2026-06-01T00:00:00Z")
>>> # mra.in_force_between(ctx, "KZ-CUSTOMS", "UZ-CUSTOMS")        # True
"""

from __future__ import annotations

from typing import Any

from .context import NodeContext, Timestamp, as_time

__all__ = ["between", "get", "in_force_between", "state_at"]


def get(ctx: NodeContext, mra_id: str) -> dict[str, Any]:
    """The MRA with its signatures, suspensions, steps and ``state_now``."""
    result: dict[str, Any] = ctx.query("GetMra", {"mra_id": mra_id})
    return result


def state_at(ctx: NodeContext, mra_id: str, at: Timestamp | None = None) -> dict[str, Any]:
    result: dict[str, Any] = ctx.query("GetMraStateAt", {"mra_id": mra_id, "at": as_time(at, ctx)})
    return result


def between(ctx: NodeContext, msp_a: str, msp_b: str) -> list[dict[str, Any]]:
    """The MRAs to which both are parties: ``[{mra_id, parties, state_now}]``."""
    result: list[dict[str, Any]] = ctx.query("GetMrasBetween", {"msp_a": msp_a, "msp_b": msp_b})
    return result


def in_force_between(ctx: NodeContext, msp_a: str, msp_b: str) -> bool:
    """Whether an MRA between the two is in force now (the node's clock)."""
    if msp_a == msp_b:
        return False
    return any(m["state_now"] == "in_force" for m in between(ctx, msp_a, msp_b))

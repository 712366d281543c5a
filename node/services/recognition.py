"""The recognition rule, answered by the contract with its reasons and evidence.

>>> # recognition.check(ctx, "KZ-AEO-2026-000001", "UZ", "2026-06-01T00:00:00Z")
>>> # {'recognised': True, 'reasons': [...], 'evidence': {'aeo': {...}, 'mras': [...]}}
"""

from __future__ import annotations

import json
from typing import Any

from .context import NodeContext, Timestamp, as_time

__all__ = ["check", "check_json"]


def check(
    ctx: NodeContext, aeo_id: str, country: str, at: Timestamp | None = None
) -> dict[str, Any]:
    """Is AEO certificate ``aeo_id`` recognised in ``country`` at ``at`` (default: now)?"""
    result: dict[str, Any] = json.loads(check_json(ctx, aeo_id, country, at))
    return result


def check_json(ctx: NodeContext, aeo_id: str, country: str, at: Timestamp | None = None) -> bytes:
    """:func:`check`'s answer as the contract's canonical JSON bytes."""
    return ctx.query_json(
        "IsRecognised", {"aeo_id": aeo_id, "country": country, "at": as_time(at, ctx)}
    )

"""The consortium's members and trust list, as the registry contract answers them.

>>> # trust.members(ctx)                     # [{msp_id, country, name, admitted, …}]
>>> # trust.trust_list(ctx, "KZ-CUSTOMS")    # anchors with kind, status, certificate
>>> # trust.crls(ctx, "KZ-CUSTOMS")          # the member's CRLs on the ledger
"""

from __future__ import annotations

from typing import Any

from .context import NodeContext

__all__ = ["anchor_history", "crl", "crls", "member", "members", "trust_list"]


def members(ctx: NodeContext) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ctx.query("GetMembers")
    return result


def member(ctx: NodeContext, msp_id: str) -> dict[str, Any]:
    result: dict[str, Any] = ctx.query("GetMember", {"msp_id": msp_id})
    return result


def trust_list(ctx: NodeContext, msp_id: str | None = None) -> list[dict[str, Any]]:
    """Every anchor (root, TSA, OCSP) with its status; one member's when ``msp_id``."""
    result: list[dict[str, Any]] = ctx.query(
        "GetTrustList", None if msp_id is None else {"msp_id": msp_id}
    )
    return result


def anchor_history(ctx: NodeContext, msp_id: str, fingerprint: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ctx.query(
        "GetAnchorHistory", {"msp_id": msp_id, "fingerprint": fingerprint}
    )
    return result


def crls(ctx: NodeContext, msp_id: str) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = ctx.query("GetCrls", {"msp_id": msp_id})
    return result


def crl(ctx: NodeContext, msp_id: str, issuer_key_id: str) -> dict[str, Any]:
    result: dict[str, Any] = ctx.query("GetCrl", {"msp_id": msp_id, "issuer_key_id": issuer_key_id})
    return result

"""AEO certificates: reads from the AEO contract, sealed writes, and confidentiality.

>>> # args = aeo.prepare_issue(record, kz_pki)            # {record, record_hash, seal}
>>> # submit(ctx, propose(officer, "IssueAeo", args, channel=ctx.channel))
>>> # view = aeo.get(ctx, "KZ-AEO-2026-000001")           # current version + status_now
>>> # aeo.redact(view, viewer_msp="KG-CUSTOMS", partners=set())   # no TIN, no address

**Confidential fields.** The holder's ``record.holder.tin`` and ``record.holder.address``
are shown only to the issuing administration (``record.issuer.administration``) and to
an MRA partner of it — an MSP in ``partners``, i.e. party to an MRA with the issuer that
is in force — when the holder gave ``mra_sharing_consent``. Everyone else gets the view
without them and ``"redacted": ["record.holder.tin", "record.holder.address"]``; the
``record_hash`` and ``seal`` stay (they cover the full record, so the redacted view does
not verify against them — who holds the full record can check it).
"""

from __future__ import annotations

import copy
from collections.abc import Collection, Sequence
from typing import Any

from trust_services.cades import CadesSigner
from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki

from . import mra
from .context import NodeContext, Timestamp, as_time
from .errors import InvalidArguments
from .seal import seal_record

__all__ = [
    "CONFIDENTIAL",
    "WRITES",
    "get",
    "history",
    "history_for",
    "prepare_issue",
    "redact",
    "redact_history",
    "status_at",
    "view_for",
]

#: the contract functions that write an AEO version (each takes {record, record_hash, seal})
WRITES = ("IssueAeo", "AmendAeo", "SuspendAeo", "ReinstateAeo", "RevokeAeo")
#: fields of ``record.holder`` shown only to the issuer and its MRA partners
CONFIDENTIAL = ("tin", "address")
_REDACTED = [f"record.holder.{name}" for name in CONFIDENTIAL]


def get(ctx: NodeContext, aeo_id: str) -> dict[str, Any]:
    """The current version ``{aeo_id, version, action, record, …, status_now}``."""
    result: dict[str, Any] = ctx.query("GetAeo", {"aeo_id": aeo_id})
    return result


def history(ctx: NodeContext, aeo_id: str) -> list[dict[str, Any]]:
    """Every version, oldest first."""
    result: list[dict[str, Any]] = ctx.query("GetAeoHistory", {"aeo_id": aeo_id})
    return result


def status_at(ctx: NodeContext, aeo_id: str, at: Timestamp | None = None) -> dict[str, Any]:
    """``{aeo_id, at, status, version, tx_id}`` (``not_issued`` before the first)."""
    result: dict[str, Any] = ctx.query("GetAeoStatusAt", {"aeo_id": aeo_id, "at": as_time(at, ctx)})
    return result


def prepare_issue(
    record: dict[str, Any], sealer: OrgPki | CadesSigner, action: str = "IssueAeo"
) -> dict[str, Any]:
    """The argument of an AEO write: the record, its canonical SHA-256 and the
    organisation's e-seal over it (detached CAdES, base64). ``sealer`` is an unlocked
    :class:`OrgPki` (its ``seal`` key is used) or a ready :class:`CadesSigner`; pass the
    latter when sealing many records."""
    if action not in WRITES:
        raise InvalidArguments(f"action must be one of {', '.join(WRITES)} (got {action!r})")
    try:
        signer = CadesSigner.for_org(sealer) if isinstance(sealer, OrgPki) else sealer
    except TrustServiceError as exc:
        raise InvalidArguments(f"cannot seal the AEO record: {exc}") from None
    sealed = seal_record(signer, record)
    return {"record": record, "record_hash": sealed.record_hash, "seal": sealed.seal}


def _may_see(record: Any, viewer_msp: str | None, partners: Collection[str]) -> bool:
    if viewer_msp is None or not isinstance(record, dict):
        return False
    issuer = record.get("issuer")
    if isinstance(issuer, dict) and issuer.get("administration") == viewer_msp:
        return True
    return viewer_msp in partners and record.get("mra_sharing_consent") is True


def _without_confidential(view: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(view)
    holder = out.get("record", {}).get("holder")
    if isinstance(holder, dict):
        for name in CONFIDENTIAL:
            holder.pop(name, None)
    out["redacted"] = list(_REDACTED)
    return out


def redact(
    aeo_view: dict[str, Any], viewer_msp: str | None, partners: Collection[str]
) -> dict[str, Any]:
    """``aeo_view`` (a GetAeo answer or one version) as ``viewer_msp`` may see it.

    ``partners``: the MSPs that have an MRA in force with the issuer (see
    :func:`view_for`). ``viewer_msp`` None is an anonymous viewer. Never changes its input.
    """
    if _may_see(aeo_view.get("record"), viewer_msp, partners):
        return aeo_view
    return _without_confidential(aeo_view)


def redact_history(
    versions: Sequence[dict[str, Any]], viewer_msp: str | None, partners: Collection[str]
) -> list[dict[str, Any]]:
    """Every version as ``viewer_msp`` may see it, by the **latest** version's consent
    (a withdrawn consent also hides the details of earlier versions)."""
    if not versions or _may_see(versions[-1].get("record"), viewer_msp, partners):
        return list(versions)
    return [_without_confidential(v) for v in versions]


def _partners(ctx: NodeContext, issuer: str, viewer_msp: str | None) -> set[str]:
    if viewer_msp is None or viewer_msp == issuer:
        return set()
    return {viewer_msp} if mra.in_force_between(ctx, issuer, viewer_msp) else set()


def view_for(ctx: NodeContext, aeo_id: str, viewer_msp: str | None) -> dict[str, Any]:
    """The current version of ``aeo_id`` as ``viewer_msp`` may see it (MRA state now)."""
    view = get(ctx, aeo_id)
    issuer = str(view["record"]["issuer"]["administration"])
    return redact(view, viewer_msp, _partners(ctx, issuer, viewer_msp))


def history_for(ctx: NodeContext, aeo_id: str, viewer_msp: str | None) -> list[dict[str, Any]]:
    """Every version of ``aeo_id`` as ``viewer_msp`` may see it."""
    versions = history(ctx, aeo_id)
    issuer = str(versions[-1]["record"]["issuer"]["administration"])
    return redact_history(versions, viewer_msp, _partners(ctx, issuer, viewer_msp))

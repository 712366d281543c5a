"""AEO certificates: issue, amend, suspend, reinstate, revoke — by the issuing country only.

>>> invoke(stub, "IssueAeo", [json.dumps({"record": record, "record_hash": h, "seal": b64})])
>>> invoke(stub, "GetAeoStatusAt", ['{"aeo_id": "KZ-AEO-2025-000123", "at": "2026-03-01"}'])

Only the administration (MSP) of the certificate's country writes it (the aeo_id prefix,
``issuer.country`` and the member's country agree; ``issuer.administration`` is the
member's MSP id), with the role admin or officer. Every write carries the full record,
the SHA-256 of its RFC 8785 canonical JSON and the issuer's detached CAdES e-seal over
that JSON, checked against the issuer's granted root anchors on the ledger
(:mod:`chaincode.seal`). Every version is kept.

Lifecycle: (none) -IssueAeo-> valid -SuspendAeo-> suspended -ReinstateAeo-> valid;
valid|suspended -RevokeAeo-> revoked (final); AmendAeo keeps status and
status_effective_at. ``expired`` is derived from ``valid_until``.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any

from . import registry
from .canonical import canonical_json, sha256_hex
from .context import COUNTRY, MSP_ID, SHA256_HEX, Context, Fields, one_object
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .seal import verify_seal
from .timeutil import format_time

__all__ = [
    "AEO_ID",
    "AEO_TYPES",
    "FUNCTIONS",
    "AeoRecord",
    "StatusAt",
    "status_at",
]

AEO_ID = re.compile(r"([A-Z]{2})-AEO-[A-Za-z0-9][A-Za-z0-9-]{0,39}\Z")
TIN = re.compile(r"[A-Z]{2}[A-Za-z0-9-]{1,32}\Z")
AEO_TYPES = ("AEOC", "AEOS", "AEOF")
STATUSES = ("valid", "suspended", "revoked")
ROLES = (
    "importer",
    "exporter",
    "manufacturer",
    "customs_broker",
    "carrier",
    "freight_forwarder",
    "warehouse_operator",
)
MAX_SEAL_B64 = 64 * 1024


@dataclass(frozen=True)
class Address:
    street: str
    city: str
    postcode: str
    country: str


@dataclass(frozen=True)
class Holder:
    tin: str
    name: str
    address: Address


@dataclass(frozen=True)
class Issuer:
    administration: str
    country: str


@dataclass(frozen=True)
class AeoRecord:
    aeo_id: str
    holder: Holder
    issuer: Issuer
    aeo_type: str
    supply_chain_roles: tuple[str, ...]
    status: str
    status_reason: str | None
    status_effective_at: int
    validated_at: int
    valid_until: int
    next_reassessment: int | None
    mra_sharing_consent: bool

    @property
    def country(self) -> str:
        return self.aeo_id[:2]


def parse_record(f: Fields) -> AeoRecord:
    aeo_id = f.text("aeo_id", pattern=AEO_ID)
    h = f.obj("holder")
    a = h.obj("address")
    address = Address(
        a.text("street"),
        a.text("city"),
        a.text("postcode", max_len=32),
        a.text("country", pattern=COUNTRY),
    )
    a.done()
    holder = Holder(h.text("tin", pattern=TIN), h.text("name"), address)
    h.done()
    i = f.obj("issuer")
    issuer = Issuer(i.text("administration", pattern=MSP_ID), i.text("country", pattern=COUNTRY))
    i.done()
    record = AeoRecord(
        aeo_id=aeo_id,
        holder=holder,
        issuer=issuer,
        aeo_type=f.text("aeo_type", choices=AEO_TYPES),
        supply_chain_roles=f.texts(
            "supply_chain_roles", choices=ROLES, min_items=1, max_items=len(ROLES)
        ),
        status=f.text("status", choices=STATUSES),
        status_reason=f.opt_text("status_reason", max_len=1024),
        status_effective_at=f.time("status_effective_at"),
        validated_at=f.time("validated_at"),
        valid_until=f.time("valid_until"),
        next_reassessment=f.opt_time("next_reassessment"),
        mra_sharing_consent=f.boolean("mra_sharing_consent"),
    )
    f.done()
    if issuer.country != record.country:
        raise BadRequest(
            f"record.issuer.country {issuer.country} differs from the aeo_id prefix "
            f"{record.country}"
        )
    if record.valid_until <= record.validated_at:
        raise BadRequest("record.valid_until must be after record.validated_at")
    return record


@dataclass(frozen=True)
class AeoWrite:
    record: AeoRecord
    raw: dict[str, Any]
    record_hash: str
    seal: bytes


def _write_request(args: list[str]) -> AeoWrite:
    f = Fields(one_object(args), "request")
    raw = f.value.get("record")
    record = parse_record(f.obj("record"))
    record_hash = f.text("record_hash", pattern=SHA256_HEX)
    seal_text = f.text("seal", max_len=MAX_SEAL_B64)
    f.done()
    try:
        seal = base64.b64decode(seal_text, validate=True)
    except binascii.Error:
        raise BadRequest("request.seal is not base64") from None
    if sha256_hex(raw) != record_hash:
        raise BadRequest("record_hash does not match the SHA-256 of the record's canonical JSON")
    assert isinstance(raw, dict)
    return AeoWrite(record, raw, record_hash, seal)


# -------------------------------------------------------------------- status at t
@dataclass(frozen=True)
class StatusAt:
    status: str  # valid | suspended | revoked | expired | not_issued
    version: int | None
    tx_id: str | None
    aeo_type: str | None
    mra_sharing_consent: bool


def status_at(index: dict[str, Any], at: int) -> StatusAt:
    """The status of an AEO at ``at`` from its status index (timeline of versions)."""
    chosen = None
    for entry in index["timeline"]:  # ledger order, effective times non-decreasing
        if entry["effective_us"] <= at:
            chosen = entry
        else:
            break
    if chosen is None:
        return StatusAt("not_issued", None, None, None, False)
    status = chosen["status"]
    if status == "valid" and at >= chosen["valid_until_us"]:
        status = "expired"
    return StatusAt(
        status,
        chosen["version"],
        chosen["tx_id"],
        chosen["aeo_type"],
        chosen["mra_sharing_consent"],
    )


# ------------------------------------------------------------------------- writes
_TRANSITIONS = {
    # action: (allowed current statuses, required new status, event type)
    "IssueAeo": ((), "valid", "AeoIssued"),
    "AmendAeo": (("valid", "suspended"), None, "AeoAmended"),
    "SuspendAeo": (("valid",), "suspended", "AeoSuspended"),
    "ReinstateAeo": (("suspended",), "valid", "AeoReinstated"),
    "RevokeAeo": (("valid", "suspended"), "revoked", "AeoRevoked"),
}
_VERBS = {
    "IssueAeo": "issue",
    "AmendAeo": "amend",
    "SuspendAeo": "suspend",
    "ReinstateAeo": "reinstate",
    "RevokeAeo": "revoke",
}


def _authorise(ctx: Context, record: AeoRecord, action: str) -> dict[str, Any]:
    me = registry.require_member(ctx, "admin", "officer")
    if me["country"] != record.country:
        raise Forbidden(
            f"{me['msp_id']} ({me['country']}) may not {_VERBS[action]} AEO certificates "
            f"of {record.country}"
        )
    if record.issuer.administration != me["msp_id"]:
        raise Forbidden(
            f"record.issuer.administration must be {me['msp_id']}, the writing administration"
        )
    return me


def _write(ctx: Context, args: list[str], action: str) -> Any:
    req = _write_request(args)
    record = req.record
    me = _authorise(ctx, record, action)
    allowed, target, event = _TRANSITIONS[action]
    index_key = ctx.key("aeo-status", record.aeo_id)
    index: dict[str, Any] | None = ctx.get(index_key)
    current = index["timeline"][-1] if index else None
    if action == "IssueAeo":
        if index is not None:
            raise Conflict(f"AEO certificate {record.aeo_id} already exists")
    else:
        if index is None or current is None:
            raise NotFound(f"AEO certificate {record.aeo_id} not found")
        if current["status"] not in allowed:
            raise Conflict(
                f"cannot {_VERBS[action]} AEO certificate {record.aeo_id}: "
                f"it is {current['status']}"
            )
    if target is not None and record.status != target:
        raise Conflict(f"{action} needs record.status {target}, got {record.status}")
    if action == "AmendAeo":
        assert current is not None
        if record.status != current["status"]:
            raise Conflict(
                f"AmendAeo cannot change the status ({current['status']} → {record.status})"
            )
        if record.status_effective_at != current["status_effective_us"]:
            raise Conflict("AmendAeo cannot change status_effective_at")
    if action in ("SuspendAeo", "RevokeAeo") and not record.status_reason:
        raise BadRequest(f"record.status_reason is required to {_VERBS[action]}")
    effective = record.status_effective_at
    if current is not None:
        if action == "AmendAeo":
            effective = max(ctx.now, current["effective_us"])
        elif effective < current["effective_us"]:
            raise Conflict(
                f"status_effective_at {format_time(effective)} precedes the current status "
                f"({format_time(current['effective_us'])})"
            )
    roots = registry.anchor_certificates(ctx, me["msp_id"], "root")
    signer = verify_seal(req.seal, canonical_json(req.raw), roots, ctx.now)

    version = 1 if current is None else current["version"] + 1
    doc = {
        "aeo_id": record.aeo_id,
        "version": version,
        "action": action,
        "record": req.raw,
        "record_hash": req.record_hash,
        "seal": base64.b64encode(req.seal).decode(),
        "sealed_by": signer.subject.rfc4514_string(),
        "effective_at": format_time(effective),
        **ctx.step(),
    }
    entry = {
        "version": version,
        "tx_id": ctx.tx_id,
        "status": record.status,
        "status_effective_us": record.status_effective_at,
        "effective_us": effective,
        "valid_until_us": record.valid_until,
        "aeo_type": record.aeo_type,
        "mra_sharing_consent": record.mra_sharing_consent,
    }
    if index is None:
        index = {
            "aeo_id": record.aeo_id,
            "issuer": me["msp_id"],
            "country": record.country,
            "timeline": [],
        }
    index["timeline"].append(entry)
    ctx.put(ctx.key("aeo", record.aeo_id), doc)
    ctx.put(ctx.key("aeo-version", record.aeo_id, f"{version:06d}"), doc)
    ctx.put(index_key, index)
    ctx.emit(
        event,
        aeo_id=record.aeo_id,
        version=version,
        status=record.status,
        effective_at=format_time(effective),
        record_hash=req.record_hash,
    )
    return {
        "aeo_id": record.aeo_id,
        "version": version,
        "status": record.status,
        "tx_id": ctx.tx_id,
    }


def issue_aeo(ctx: Context, args: list[str]) -> Any:
    return _write(ctx, args, "IssueAeo")


def amend_aeo(ctx: Context, args: list[str]) -> Any:
    return _write(ctx, args, "AmendAeo")


def suspend_aeo(ctx: Context, args: list[str]) -> Any:
    return _write(ctx, args, "SuspendAeo")


def reinstate_aeo(ctx: Context, args: list[str]) -> Any:
    return _write(ctx, args, "ReinstateAeo")


def revoke_aeo(ctx: Context, args: list[str]) -> Any:
    return _write(ctx, args, "RevokeAeo")


# -------------------------------------------------------------------------- reads
def _aeo_id(args: list[str]) -> tuple[str, Fields]:
    f = Fields(one_object(args), "query")
    return f.text("aeo_id", pattern=AEO_ID), f


def status_index(ctx: Context, aeo_id: str) -> dict[str, Any]:
    index: dict[str, Any] | None = ctx.get(ctx.key("aeo-status", aeo_id))
    if index is None:
        raise NotFound(f"AEO certificate {aeo_id} not found")
    return index


def get_aeo(ctx: Context, args: list[str]) -> Any:
    aeo_id, f = _aeo_id(args)
    f.done()
    doc: dict[str, Any] | None = ctx.get(ctx.key("aeo", aeo_id))
    if doc is None:
        raise NotFound(f"AEO certificate {aeo_id} not found")
    now = status_at(status_index(ctx, aeo_id), ctx.now)
    return {**doc, "status_now": now.status}


def get_aeo_history(ctx: Context, args: list[str]) -> Any:
    aeo_id, f = _aeo_id(args)
    f.done()
    versions = [doc for _k, doc in ctx.scan("aeo-version", aeo_id)]
    if not versions:
        raise NotFound(f"AEO certificate {aeo_id} not found")
    return versions


def get_aeo_status_at(ctx: Context, args: list[str]) -> Any:
    aeo_id, f = _aeo_id(args)
    at = f.time("at")
    f.done()
    result = status_at(status_index(ctx, aeo_id), at)
    return {
        "aeo_id": aeo_id,
        "at": format_time(at),
        "status": result.status,
        "version": result.version,
        "tx_id": result.tx_id,
    }


FUNCTIONS = {
    "IssueAeo": issue_aeo,
    "AmendAeo": amend_aeo,
    "SuspendAeo": suspend_aeo,
    "ReinstateAeo": reinstate_aeo,
    "RevokeAeo": revoke_aeo,
    "GetAeo": get_aeo,
    "GetAeoHistory": get_aeo_history,
    "GetAeoStatusAt": get_aeo_status_at,
}

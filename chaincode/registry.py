"""Consortium registry and trust list: members (customs administrations) and their anchors.

>>> invoke(stub, "InitLedger", [genesis_json])          # once, by a founding admin
>>> invoke(stub, "ProposeMember", ['{"msp_id": "TJ-CUSTOMS", …}'])
>>> invoke(stub, "ApproveMember", ['{"msp_id": "TJ-CUSTOMS"}'])   # each other member

A candidate is admitted when its approvals (the proposer's counts) are more than half of
the current members. A member adds and withdraws only its own trust anchors (kind root,
tsa or ocsp); the last granted root cannot be withdrawn (add the successor first).
Registry writes need the role ``admin``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from .context import COUNTRY, MSP_ID, SHA256_HEX, Context, Fields, one_object
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .seal import load_certificate
from .timeutil import datetime_us, format_time

__all__ = [
    "ANCHOR_KINDS",
    "FUNCTIONS",
    "Anchor",
    "anchor_certificates",
    "member",
    "member_by_country",
    "require_member",
]

ANCHOR_KINDS = ("root", "tsa", "ocsp")
MAX_CERT_B64 = 16 * 1024


@dataclass(frozen=True)
class Anchor:
    kind: str
    certificate: x509.Certificate
    der: bytes
    fingerprint: str


@dataclass(frozen=True)
class MemberRequest:
    msp_id: str
    country: str
    name: str
    anchors: tuple[Anchor, ...]


def _anchor(f: Fields) -> Anchor:
    kind = f.text("kind", choices=ANCHOR_KINDS)
    text = f.text("certificate", max_len=MAX_CERT_B64)
    f.done()
    try:
        der = base64.b64decode(text, validate=True)
        cert = load_certificate(der)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{f.where}.certificate is not a base64 DER X.509 certificate") from None
    if kind == "root":
        try:
            ca = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca = False
        if not ca:
            raise BadRequest(f"{f.where}: a root anchor must be a CA certificate")
    return Anchor(kind, cert, der, hashlib.sha256(der).hexdigest())


def _member_request(f: Fields) -> MemberRequest:
    msp_id = f.text("msp_id", pattern=MSP_ID)
    country = f.text("country", pattern=COUNTRY)
    name = f.text("name")
    anchors = tuple(_anchor(a) for a in f.objs("anchors", min_items=1, max_items=16))
    f.done()
    if not any(a.kind == "root" for a in anchors):
        raise BadRequest(f"{f.where}: member {msp_id} needs at least one root anchor")
    if len({a.fingerprint for a in anchors}) != len(anchors):
        raise BadRequest(f"{f.where}: member {msp_id} lists the same anchor twice")
    return MemberRequest(msp_id, country, name, anchors)


# ------------------------------------------------------------------ reads for others
def member(ctx: Context, msp_id: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = ctx.get(ctx.key("member", msp_id))
    return value


def member_by_country(ctx: Context, country: str) -> dict[str, Any] | None:
    msp_id = ctx.get(ctx.key("member-country", country))
    return None if msp_id is None else member(ctx, msp_id)


def require_member(ctx: Context, *roles: str) -> dict[str, Any]:
    """The creator's member record, after checking its role."""
    who = ctx.require_role(*roles)
    found = member(ctx, who.msp_id)
    if found is None:
        raise Forbidden(f"{who.msp_id} is not a member of the consortium")
    return found


def anchor_certificates(ctx: Context, msp_id: str, kind: str) -> list[x509.Certificate]:
    """The member's granted anchors of ``kind``, in key (fingerprint) order."""
    certs = []
    for _attrs, anchor in ctx.scan("anchor", msp_id):
        if anchor["kind"] == kind and anchor["status"] == "granted":
            certs.append(load_certificate(base64.b64decode(anchor["certificate"])))
    return certs


# ------------------------------------------------------------------------- writes
def _anchor_record(ctx: Context, msp_id: str, anchor: Anchor) -> dict[str, Any]:
    cert = anchor.certificate
    return {
        "msp_id": msp_id,
        "kind": anchor.kind,
        "fingerprint": anchor.fingerprint,
        "subject": cert.subject.rfc4514_string(),
        "not_before": format_time(datetime_us(cert.not_valid_before_utc)),
        "not_after": format_time(datetime_us(cert.not_valid_after_utc)),
        "certificate": base64.b64encode(anchor.der).decode(),
        "status": "granted",
        "reason": None,
        "changed": ctx.step(),
    }


def _admit(ctx: Context, req: MemberRequest, approvals: list[dict[str, Any]]) -> dict[str, Any]:
    record = {
        "msp_id": req.msp_id,
        "country": req.country,
        "name": req.name,
        "admitted": ctx.step(),
        "approvals": approvals,
    }
    ctx.put(ctx.key("member", req.msp_id), record)
    ctx.put(ctx.key("member-country", req.country), req.msp_id)
    for anchor in req.anchors:
        ctx.put(
            ctx.key("anchor", req.msp_id, anchor.fingerprint),
            _anchor_record(ctx, req.msp_id, anchor),
        )
        ctx.emit(
            "AnchorGranted", msp_id=req.msp_id, kind=anchor.kind, fingerprint=anchor.fingerprint
        )
    ctx.emit("MemberAdmitted", msp_id=req.msp_id, country=req.country)
    return record


def init_ledger(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "genesis")
    requests = [_member_request(m) for m in f.objs("members", min_items=1, max_items=64)]
    f.done()
    if len({r.msp_id for r in requests}) != len(requests):
        raise BadRequest("genesis lists a member twice")
    if len({r.country for r in requests}) != len(requests):
        raise BadRequest("genesis lists a country twice")
    who = ctx.require_role("admin")
    if who.msp_id not in {r.msp_id for r in requests}:
        raise Forbidden(f"{who.msp_id} is not a founding member in the genesis")
    if ctx.get(ctx.key("genesis")) is not None:
        raise Conflict("the ledger is already initialised")
    ctx.put(
        ctx.key("genesis"), {"initialised": ctx.step(), "members": [r.msp_id for r in requests]}
    )
    for req in sorted(requests, key=lambda r: r.msp_id):
        _admit(ctx, req, [])
    ctx.emit("LedgerInitialised", members=sorted(r.msp_id for r in requests))
    return {"members": sorted(r.msp_id for r in requests)}


def _members(ctx: Context) -> list[dict[str, Any]]:
    return [m for _a, m in ctx.scan("member")]


def _pending(ctx: Context, msp_id: str) -> dict[str, Any]:
    proposal: dict[str, Any] | None = ctx.get(ctx.key("member-proposal", msp_id))
    if proposal is None:
        raise NotFound(f"no proposal to admit {msp_id}")
    if proposal["status"] != "pending":
        raise Conflict(f"{msp_id} is already admitted")
    return proposal


def _decide(ctx: Context, proposal: dict[str, Any]) -> dict[str, Any]:
    members = {m["msp_id"] for m in _members(ctx)}
    votes = sorted({a["by"]["msp_id"] for a in proposal["approvals"]} & members)
    admitted = 2 * len(votes) > len(members)
    if admitted:
        req = _member_request(Fields(proposal["request"], "proposal"))
        _admit(ctx, req, proposal["approvals"])
        proposal["status"] = "admitted"
    ctx.put(ctx.key("member-proposal", proposal["request"]["msp_id"]), proposal)
    return {
        "msp_id": proposal["request"]["msp_id"],
        "status": proposal["status"],
        "approvals": votes,
        "members": len(members),
    }


def propose_member(ctx: Context, args: list[str]) -> Any:
    raw = one_object(args)
    req = _member_request(Fields(raw, "member"))
    require_member(ctx, "admin")
    if member(ctx, req.msp_id) is not None:
        raise Conflict(f"{req.msp_id} is already a member")
    if member_by_country(ctx, req.country) is not None:
        raise Conflict(f"country {req.country} already has a member administration")
    existing = ctx.get(ctx.key("member-proposal", req.msp_id))
    if existing is not None:
        raise Conflict(f"{req.msp_id} is already proposed ({existing['status']})")
    proposal = {
        "request": raw,
        "status": "pending",
        "proposed": ctx.step(),
        "approvals": [ctx.step()],
    }
    ctx.emit("MemberProposed", msp_id=req.msp_id, country=req.country)
    return _decide(ctx, proposal)


def approve_member(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "approval")
    msp_id = f.text("msp_id", pattern=MSP_ID)
    f.done()
    who = require_member(ctx, "admin")
    proposal = _pending(ctx, msp_id)
    if any(a["by"]["msp_id"] == who["msp_id"] for a in proposal["approvals"]):
        raise Conflict(f"{who['msp_id']} has already approved {msp_id}")
    proposal["approvals"].append(ctx.step())
    ctx.emit("MemberApproved", msp_id=msp_id, approver=who["msp_id"])
    return _decide(ctx, proposal)


def add_anchor(ctx: Context, args: list[str]) -> Any:
    anchor = _anchor(Fields(one_object(args), "anchor"))
    me = require_member(ctx, "admin")["msp_id"]
    key = ctx.key("anchor", me, anchor.fingerprint)
    existing = ctx.get(key)
    if existing is not None and existing["status"] == "withdrawn":
        raise Conflict(
            f"anchor {anchor.fingerprint} of {me} was withdrawn: it is not granted again"
        )
    if existing is not None:
        raise Conflict(f"anchor {anchor.fingerprint} of {me} is already on the trust list")
    record = _anchor_record(ctx, me, anchor)
    ctx.put(key, record)
    ctx.emit("AnchorGranted", msp_id=me, kind=anchor.kind, fingerprint=anchor.fingerprint)
    return record


def withdraw_anchor(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "withdrawal")
    msp_id = f.text("msp_id", pattern=MSP_ID)
    fingerprint = f.text("fingerprint", pattern=SHA256_HEX)
    reason = f.text("reason", max_len=512)
    f.done()
    me = require_member(ctx, "admin")["msp_id"]
    if msp_id != me:
        raise Forbidden(f"{me} may not withdraw anchors of {msp_id}")
    key = ctx.key("anchor", me, fingerprint)
    record: dict[str, Any] | None = ctx.get(key)
    if record is None:
        raise NotFound(f"anchor {fingerprint} of {me} not found")
    if record["status"] != "granted":
        raise Conflict(f"anchor {fingerprint} of {me} is already withdrawn")
    if record["kind"] == "root":
        others = [
            a
            for _k, a in ctx.scan("anchor", me)
            if a["kind"] == "root" and a["status"] == "granted" and a["fingerprint"] != fingerprint
        ]
        if not others:
            raise Conflict(f"the last granted root anchor of {me} cannot be withdrawn")
    record.update(status="withdrawn", reason=reason, changed=ctx.step())
    ctx.put(key, record)
    ctx.emit("AnchorWithdrawn", msp_id=me, kind=record["kind"], fingerprint=fingerprint)
    return record


# -------------------------------------------------------------------------- reads
def get_member(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    msp_id = f.text("msp_id", pattern=MSP_ID)
    f.done()
    found = member(ctx, msp_id)
    if found is None:
        raise NotFound(f"member {msp_id} not found")
    return found


def get_members(ctx: Context, args: list[str]) -> Any:
    Fields(one_object(args, optional=True), "query").done()
    return _members(ctx)


def get_trust_list(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args, optional=True), "query")
    msp_id = f.opt_text("msp_id", pattern=MSP_ID)
    f.done()
    if msp_id is None:
        return [a for _k, a in ctx.scan("anchor")]
    return [a for _k, a in ctx.scan("anchor", msp_id)]


def get_anchor_history(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    msp_id = f.text("msp_id", pattern=MSP_ID)
    fingerprint = f.text("fingerprint", pattern=SHA256_HEX)
    f.done()
    history = [
        {
            "tx_id": m.tx_id,
            "deleted": m.is_delete,
            "value": None if m.is_delete else json.loads(m.value),
        }
        for m in ctx.stub.get_history_for_key(ctx.key("anchor", msp_id, fingerprint))
    ]
    if not history:
        raise NotFound(f"anchor {fingerprint} of {msp_id} not found")
    return history


FUNCTIONS = {
    "InitLedger": init_ledger,
    "ProposeMember": propose_member,
    "ApproveMember": approve_member,
    "AddAnchor": add_anchor,
    "WithdrawAnchor": withdraw_anchor,
    "GetMember": get_member,
    "GetMembers": get_members,
    "GetTrustList": get_trust_list,
    "GetAnchorHistory": get_anchor_history,
}

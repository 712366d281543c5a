"""Consortium registry and trust list: members (customs administrations) and their anchors.

>>> invoke(stub, "InitLedger", [genesis_json])          # once, by a founding admin
>>> invoke(stub, "ProposeMember", ['{"msp_id": "TJ-CUSTOMS", …}'])
>>> invoke(stub, "ApproveMember", ['{"msp_id": "TJ-CUSTOMS"}'])   # each other member

A candidate is admitted when its approvals (the proposer's counts) are more than half of
the current members. A member adds and withdraws only its own trust anchors (kind root,
tsa or ocsp); the last granted root cannot be withdrawn (add the successor first).
Registry writes need the role ``admin``.

Members also publish the current CRL of each of their CAs (``PublishCrl``), as Fabric's
MSP revocation lists: the CRL issuer must chain to one of the member's granted roots and
a CRL is never rolled back. The ledger node rejects a revoked creator with the pure
helpers below:

>>> crl = ctx.get(ctx.key("crl", msp_id, issuer_key_id(path[1])))  # path = verify_chain(…)
>>> creator_revocation(crl, creator.serial_number, ctx.now)    # None, or the entry

Each member also has one derived record ``trust~MSP`` (:func:`trust_record`): its granted
root anchors and the CAs it has published a CRL for. The contracts rewrite it whenever
those change, so a creator check reads one key instead of the member, a range of anchors
and a CRL per CA of the path (on Fabric every read is a round trip to the peer, and a range
is re-run by every peer when it validates the transaction).
"""

from __future__ import annotations

import base64
import binascii
import bisect
import datetime as dt
import hashlib
import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .canonical import MAX_SAFE_INTEGER
from .context import COUNTRY, MSP_ID, SHA256_HEX, Context, Fields, one_object
from .der import SEQUENCE, DerError
from .der import parse as parse_der
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .seal import CERT_PARSE_ERRORS, load_certificate, verify_chain
from .timeutil import datetime_us, format_time

__all__ = [
    "ANCHOR_KINDS",
    "FUNCTIONS",
    "MAX_CRL_B64",
    "Anchor",
    "anchor_certificates",
    "authority_key_id",
    "creator_revocation",
    "crl_record",
    "issuer_key_id",
    "member",
    "member_by_country",
    "require_member",
    "trust_record",
]

ANCHOR_KINDS = ("root", "tsa", "ocsp")
MAX_CERT_B64 = 16 * 1024
MAX_CRL_B64 = 1024 * 1024
KEY_ID = re.compile(r"[0-9a-f]{2,128}\Z")
MAX_KEY_ID_BYTES = 64


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
    if kind == "root" and not _is_ca(cert):
        raise BadRequest(f"{f.where}: a root anchor must be a CA certificate")
    return Anchor(kind, cert, der, hashlib.sha256(der).hexdigest())


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


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


def trust_record(
    msp_id: str, roots: Mapping[str, str], crl_issuers: Sequence[str]
) -> dict[str, Any]:
    """The value of ``trust~MSP``: the granted roots ``{fingerprint: base64 DER}`` in
    fingerprint order (the anchors' key order) and the sorted issuer key ids of the
    member's published CRLs."""
    return {
        "msp_id": msp_id,
        "roots": [{"fingerprint": fp, "certificate": roots[fp]} for fp in sorted(roots)],
        "crl_issuers": sorted(set(crl_issuers)),
    }


def _trust_of(ctx: Context, msp_id: str) -> tuple[dict[str, str], list[str]]:
    """The member's current (roots, CRL issuers), from ``trust~MSP`` or, on a ledger
    written before that record existed, from its anchors and CRLs."""
    found = ctx.get(ctx.key("trust", msp_id))
    if found is not None:
        roots = {r["fingerprint"]: r["certificate"] for r in found["roots"]}
        return roots, list(found["crl_issuers"])
    roots = {
        a["fingerprint"]: a["certificate"]
        for a in ctx.scan_values("anchor", msp_id)
        if a["kind"] == "root" and a["status"] == "granted"
    }
    return roots, [attrs[1] for attrs, _crl in ctx.scan("crl", msp_id)]


def _put_trust(ctx: Context, msp_id: str, roots: Mapping[str, str], crls: Sequence[str]) -> None:
    ctx.put(ctx.key("trust", msp_id), trust_record(msp_id, roots, crls))


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
    roots = {
        a.fingerprint: base64.b64encode(a.der).decode() for a in req.anchors if a.kind == "root"
    }
    _put_trust(ctx, req.msp_id, roots, [])
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
    if anchor.kind == "root":
        roots, crls = _trust_of(ctx, me)
        roots[anchor.fingerprint] = record["certificate"]
        _put_trust(ctx, me, roots, crls)
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
        roots, crls = _trust_of(ctx, me)
        roots.pop(fingerprint, None)
        if not roots:
            raise Conflict(f"the last granted root anchor of {me} cannot be withdrawn")
        _put_trust(ctx, me, roots, crls)
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


# --------------------------------------------------------------------------- CRLs
def issuer_key_id(cert: x509.Certificate) -> str:
    """The id of a CA in ``crl~MSP~ISSUER_KEY_ID``: lower-case hex of its
    SubjectKeyIdentifier (1 to 64 bytes), else SHA-256 hex of its DER SubjectPublicKeyInfo
    (the bytes as they appear in the certificate)."""
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        ski = b""
    if 0 < len(ski) <= MAX_KEY_ID_BYTES:
        return ski.hex()
    return hashlib.sha256(_spki_der(cert)).hexdigest()


def authority_key_id(cert: x509.Certificate) -> str | None:
    """Lower-case hex of the certificate's AuthorityKeyIdentifier keyIdentifier (the
    issuer's :func:`issuer_key_id` when the issuer has a SubjectKeyIdentifier), or None."""
    try:
        aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    except x509.ExtensionNotFound:
        return None
    if not aki.key_identifier or len(aki.key_identifier) > MAX_KEY_ID_BYTES:
        return None
    return aki.key_identifier.hex()


def _spki_der(cert: x509.Certificate) -> bytes:
    parts = parse_der(cert.public_bytes(serialization.Encoding.DER)).children()
    tbs = parts[0].expect(SEQUENCE, "TBSCertificate").children()
    at = (
        1 if tbs and tbs[0].tag == 0xA0 else 0
    ) + 5  # [version] serial sig issuer validity subject
    return tbs[at].expect(SEQUENCE, "SubjectPublicKeyInfo").raw


def creator_revocation(
    crl_value: Mapping[str, Any], serial: int, at_us: int
) -> dict[str, Any] | None:
    """The revocation entry ``{serial, revoked_at_us, revoked_at, reason}`` of ``serial`` in
    a stored CRL value (``crl~MSP~ISSUER_KEY_ID``) when it was revoked at or before
    ``at_us``, else None. Binary search: the entries are sorted by ``int(serial)``."""
    revoked = crl_value["revoked"]
    i = bisect.bisect_left(revoked, serial, key=lambda e: int(e["serial"]))
    if i < len(revoked) and int(revoked[i]["serial"]) == serial:
        entry = revoked[i]
        if entry["revoked_at_us"] <= at_us:
            return dict(entry)
    return None


def path_revocation(
    path: Sequence[x509.Certificate],
    crl_of: Callable[[str], Mapping[str, Any] | None],
    at_us: int,
) -> tuple[x509.Certificate, dict[str, Any]] | None:
    """The first certificate of a verified ``path`` (leaf first, root last) that its
    issuer's stored CRL revokes at or before ``at_us``, with the entry; else None.

    ``crl_of(issuer_key_id)`` gives the member's stored CRL of that CA (or None). The
    root is not checked: its status is the trust list. Nodes apply this rule to the
    creators of proposals and to API callers alike.
    """
    for cert, issuer in itertools.pairwise(path):
        crl = crl_of(issuer_key_id(issuer))
        if crl is not None:
            entry = creator_revocation(crl, cert.serial_number, at_us)
            if entry is not None:
                return cert, entry
    return None


def revocation_message(
    role: str,
    path: Sequence[x509.Certificate],
    revoked: tuple[x509.Certificate, Mapping[str, Any]],
) -> str:
    """One line naming the revoked certificate of ``path`` (``role``: creator, caller)."""
    cert, entry = revoked
    who = role if cert is path[0] else "CA"
    return (
        f"the {who} certificate {cert.subject.rfc4514_string()} "
        f"(serial {cert.serial_number:x}) was revoked at {entry['revoked_at']}"
    )


def crl_record(ctx: Context, msp_id: str, key_id: str) -> dict[str, Any] | None:
    """The CRL ``msp_id`` published for the CA ``key_id`` (see :func:`issuer_key_id`)."""
    value: dict[str, Any] | None = ctx.get(ctx.key("crl", msp_id, key_id))
    return value


@dataclass(frozen=True)
class CrlRequest:
    crl: x509.CertificateRevocationList
    crl_der: bytes
    issuer: x509.Certificate
    issuer_der: bytes
    number: int
    this_update_us: int
    next_update_us: int | None
    revoked: tuple[dict[str, Any], ...]


def _base64(text: str, where: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise BadRequest(f"{where} is not base64 (a DER {what})") from None


def _time_us(value: dt.datetime, what: str) -> int:
    us = datetime_us(value)
    if not 0 <= us <= MAX_SAFE_INTEGER:
        raise BadRequest(f"{what} {value.isoformat()} is not between 1970 and 2255")
    return us


def _crl_request(f: Fields) -> CrlRequest:
    crl_text = f.text("crl", max_len=MAX_CRL_B64)
    issuer_text = f.text("issuer_certificate", max_len=MAX_CERT_B64)
    f.done()
    where = f"{f.where}.crl"
    crl_der = _base64(crl_text, where, "CRL")
    try:
        parse_der(crl_der).expect(SEQUENCE, "CertificateList")
        crl = x509.load_der_x509_crl(crl_der)
    except DerError as exc:
        raise BadRequest(f"{where} is not DER: {exc}") from None
    except ValueError:
        raise BadRequest(f"{where} is not an X.509 CRL (RFC 5280 CertificateList)") from None
    issuer_der = _base64(issuer_text, f"{f.where}.issuer_certificate", "certificate")
    try:
        issuer = load_certificate(issuer_der)
    except ValueError:
        raise BadRequest(
            f"{f.where}.issuer_certificate is not a DER X.509 certificate with a positive serial"
        ) from None
    try:
        return _crl_fields(crl, crl_der, issuer, issuer_der, where)
    except CERT_PARSE_ERRORS:
        raise BadRequest(f"{where} has a malformed field, entry or extension") from None


def _crl_fields(
    crl: x509.CertificateRevocationList,
    crl_der: bytes,
    issuer: x509.Certificate,
    issuer_der: bytes,
    where: str,
) -> CrlRequest:
    number: int | None = None
    for ext in crl.extensions:
        value = ext.value
        if isinstance(value, x509.CRLNumber):
            number = value.crl_number
        elif isinstance(value, x509.DeltaCRLIndicator):
            raise BadRequest(f"{where} is a delta CRL: publish the complete CRL")
        elif isinstance(value, x509.IssuingDistributionPoint) and (
            value.indirect_crl
            or value.only_some_reasons
            or value.only_contains_ca_certs
            or value.only_contains_attribute_certs
        ):
            raise BadRequest(f"{where} is an indirect or partial CRL: publish the complete CRL")
        elif ext.critical and isinstance(value, x509.UnrecognizedExtension):
            raise BadRequest(f"{where} has an unknown critical extension {ext.oid.dotted_string}")
    if number is None:
        raise BadRequest(f"{where} has no CRL number (RFC 5280 §5.2.3)")
    if number < 0:
        raise BadRequest(f"{where} has a negative CRL number")
    entries: list[tuple[int, dict[str, Any]]] = []
    seen: set[int] = set()
    for revoked in crl:
        serial = revoked.serial_number
        reason: str | None = None
        for ext in revoked.extensions:
            if isinstance(ext.value, x509.CRLReason):
                reason = ext.value.reason.value
            elif isinstance(ext.value, x509.CertificateIssuer):
                raise BadRequest(f"{where} is an indirect CRL (certificate issuer entries)")
            elif ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
                raise BadRequest(
                    f"{where} entry {serial} has an unknown critical extension "
                    f"{ext.oid.dotted_string}"
                )
        if serial <= 0:
            raise BadRequest(f"{where} revokes a serial number that is not positive")
        if serial in seen:
            raise BadRequest(f"{where} lists serial {serial} twice")
        seen.add(serial)
        if reason == x509.ReasonFlags.remove_from_crl.value:
            raise BadRequest(f"{where} entry {serial}: removeFromCRL belongs in delta CRLs only")
        at = _time_us(revoked.revocation_date_utc, f"{where} entry {serial} revocation date")
        entries.append(
            (
                serial,
                {
                    "serial": str(serial),
                    "revoked_at_us": at,
                    "revoked_at": format_time(at),
                    "reason": reason,
                },
            )
        )
    entries.sort(key=lambda e: e[0])
    next_update = crl.next_update_utc
    return CrlRequest(
        crl=crl,
        crl_der=crl_der,
        issuer=issuer,
        issuer_der=issuer_der,
        number=number,
        this_update_us=_time_us(crl.last_update_utc, f"{where} thisUpdate"),
        next_update_us=None
        if next_update is None
        else _time_us(next_update, f"{where} nextUpdate"),
        revoked=tuple(e for _, e in entries),
    )


def _check_crl_issuer(ctx: Context, msp_id: str, req: CrlRequest) -> None:
    issuer = req.issuer
    subject = issuer.subject.rfc4514_string()
    try:
        if not _is_ca(issuer):
            raise Forbidden(f"CRL rejected: the issuer certificate ({subject}) is not a CA")
        try:
            usage = issuer.extensions.get_extension_for_class(x509.KeyUsage).value
        except x509.ExtensionNotFound:
            usage = None
        if usage is not None and not usage.crl_sign:
            raise Forbidden(
                f"CRL rejected: the key usage of the issuer certificate ({subject}) "
                "does not allow CRL signing"
            )
        verify_chain(
            issuer,
            [],
            anchor_certificates(ctx, msp_id, "root"),
            ctx.now,
            "CRL issuer",
            owner=msp_id,
            prefix="CRL rejected: ",
        )
        if req.crl.issuer.public_bytes() != issuer.subject.public_bytes():
            raise Forbidden(
                "CRL rejected: the CRL's issuer name differs from the subject of the "
                f"issuer certificate ({subject})"
            )
        valid = req.crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]
    except CERT_PARSE_ERRORS:
        raise Forbidden(
            f"CRL rejected: the CRL's signature cannot be checked with the issuer "
            f"certificate ({subject})"
        ) from None
    if not valid:
        raise Forbidden(
            f"CRL rejected: the CRL's signature does not verify with the issuer "
            f"certificate ({subject})"
        )


def publish_crl(ctx: Context, args: list[str]) -> Any:
    req = _crl_request(Fields(one_object(args), "request"))
    me = require_member(ctx, "admin")["msp_id"]
    _check_crl_issuer(ctx, me, req)
    subject = req.issuer.subject.rfc4514_string()
    if req.this_update_us > ctx.now:
        raise Conflict(
            f"the CRL's thisUpdate {format_time(req.this_update_us)} is after the "
            f"transaction time {ctx.now_text}"
        )
    key_id = issuer_key_id(req.issuer)
    stored = crl_record(ctx, me, key_id)
    if stored is not None and int(stored["number"]) >= req.number:
        raise Conflict(
            f"a CRL is never rolled back: {me} published CRL number {stored['number']} "
            f"of {subject}; this one has number {req.number}"
        )
    record = {
        "msp_id": me,
        "issuer": subject,
        "issuer_key_id": key_id,
        "number": str(req.number),
        "this_update": format_time(req.this_update_us),
        "this_update_us": req.this_update_us,
        "next_update": None if req.next_update_us is None else format_time(req.next_update_us),
        "next_update_us": req.next_update_us,
        "revoked": list(req.revoked),
        "crl": base64.b64encode(req.crl_der).decode(),
        "issuer_certificate": base64.b64encode(req.issuer_der).decode(),
        "published": ctx.step(),
    }
    ctx.put(ctx.key("crl", me, key_id), record)
    if stored is None:
        roots, crls = _trust_of(ctx, me)
        _put_trust(ctx, me, roots, [*crls, key_id])
    ctx.emit(
        "CrlPublished",
        msp_id=me,
        issuer=subject,
        issuer_key_id=key_id,
        number=str(req.number),
        revoked=len(req.revoked),
    )
    return {k: v for k, v in record.items() if k not in ("crl", "issuer_certificate")}


def get_crl(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    msp_id = f.text("msp_id", pattern=MSP_ID)
    key_id = f.text("issuer_key_id", pattern=KEY_ID)
    f.done()
    found = crl_record(ctx, msp_id, key_id)
    if found is None:
        raise NotFound(f"no CRL of issuer {key_id} published by {msp_id}")
    return found


def get_crls(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    msp_id = f.text("msp_id", pattern=MSP_ID)
    f.done()
    return [c for _k, c in ctx.scan("crl", msp_id)]


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
    "PublishCrl": publish_crl,
    "GetCrl": get_crl,
    "GetCrls": get_crls,
}

"""ETSI EN 319 102-1 validation reports: one frozen summary with three check groups.

A :class:`ValidationReport` says *whether* (``indication`` + ``sub_indication``), *who*
(``signer``, ``qualification``), *when* (``claimed_signing_time``, ``timestamp`` — the
best proof of existence) and *why* (``integrity``, ``identity``, ``status``: each
passed, failed or indeterminate with a one-line message), as verifiers such as
OpenAttestation show them.

>>> check = Check.passed("message digest matches")
>>> check.result
'passed'
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..profiles import (
    QC_COMPLIANCE,
    QC_SSCD,
    QC_STATEMENTS_OID,
    QC_TYPE,
    QC_TYPE_ESEAL,
    QC_TYPE_ESIGN,
)

__all__ = [
    "Check",
    "Indication",
    "RevocationInfo",
    "SignerIdentity",
    "SubIndication",
    "TimestampInfo",
    "ValidationReport",
    "qualification_of",
    "render_lines",
]

QC_CC_LEGISLATION = "0.4.0.1862.1.7"


class Indication(StrEnum):
    TOTAL_PASSED = "TOTAL-PASSED"
    TOTAL_FAILED = "TOTAL-FAILED"
    INDETERMINATE = "INDETERMINATE"


class SubIndication(StrEnum):
    """EN 319 102-1 §5.1.3 sub-indications used by Caravan."""

    FORMAT_FAILURE = "FORMAT_FAILURE"
    HASH_FAILURE = "HASH_FAILURE"
    SIG_CRYPTO_FAILURE = "SIG_CRYPTO_FAILURE"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    NOT_YET_VALID = "NOT_YET_VALID"
    SIG_CONSTRAINTS_FAILURE = "SIG_CONSTRAINTS_FAILURE"
    CHAIN_CONSTRAINTS_FAILURE = "CHAIN_CONSTRAINTS_FAILURE"
    CRYPTO_CONSTRAINTS_FAILURE = "CRYPTO_CONSTRAINTS_FAILURE"
    NO_SIGNING_CERTIFICATE_FOUND = "NO_SIGNING_CERTIFICATE_FOUND"
    NO_CERTIFICATE_CHAIN_FOUND = "NO_CERTIFICATE_CHAIN_FOUND"
    REVOKED_NO_POE = "REVOKED_NO_POE"
    REVOKED_CA_NO_POE = "REVOKED_CA_NO_POE"
    OUT_OF_BOUNDS_NO_POE = "OUT_OF_BOUNDS_NO_POE"
    REVOCATION_OUT_OF_BOUNDS_NO_POE = "REVOCATION_OUT_OF_BOUNDS_NO_POE"
    TIMESTAMP_ORDER_FAILURE = "TIMESTAMP_ORDER_FAILURE"
    TRY_LATER = "TRY_LATER"
    SIGNED_DATA_NOT_FOUND = "SIGNED_DATA_NOT_FOUND"


PASSED = "passed"
FAILED = "failed"
INDETERMINATE = "indeterminate"


@dataclass(frozen=True)
class Check:
    """One group of checks (integrity, identity or status) and what came of it."""

    result: str  # passed | failed | indeterminate
    message: str
    notes: tuple[str, ...] = ()

    @classmethod
    def passed(cls, message: str, *notes: str) -> Check:
        return cls(PASSED, message, notes)

    @classmethod
    def failed(cls, message: str, *notes: str) -> Check:
        return cls(FAILED, message, notes)

    @classmethod
    def indeterminate(cls, message: str, *notes: str) -> Check:
        return cls(INDETERMINATE, message, notes)

    @property
    def ok(self) -> bool:
        return self.result == PASSED

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"result": self.result, "message": self.message}
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def _attr(name: x509.Name, oid: x509.ObjectIdentifier) -> str | None:
    values = name.get_attributes_for_oid(oid)
    if not values:
        return None
    value = values[0].value
    return value if isinstance(value, str) else value.decode(errors="replace")


@dataclass(frozen=True)
class SignerIdentity:
    """Who signed, as the signing certificate names them (ETSI EN 319 412-1)."""

    subject: str
    common_name: str | None
    organisation: str | None
    country: str | None
    organization_identifier: str | None
    serial: str
    issuer: str

    @classmethod
    def of(cls, cert: x509.Certificate) -> SignerIdentity:
        return _identity_of(cert)

    @classmethod
    def _make(cls, cert: x509.Certificate) -> SignerIdentity:
        return cls(
            subject=cert.subject.rfc4514_string(),
            common_name=_attr(cert.subject, NameOID.COMMON_NAME),
            organisation=_attr(cert.subject, NameOID.ORGANIZATION_NAME),
            country=_attr(cert.subject, NameOID.COUNTRY_NAME),
            organization_identifier=_attr(cert.subject, NameOID.ORGANIZATION_IDENTIFIER),
            serial=f"{cert.serial_number:x}",
            issuer=cert.issuer.rfc4514_string(),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "commonName": self.common_name,
            "organisation": self.organisation,
            "country": self.country,
            "organizationIdentifier": self.organization_identifier,
            "serial": self.serial,
            "issuer": self.issuer,
        }


@functools.lru_cache(maxsize=1024)
def _identity_of(cert: x509.Certificate) -> SignerIdentity:
    return SignerIdentity._make(cert)


@dataclass(frozen=True)
class TimestampInfo:
    """An RFC 3161 timestamp: the proof of existence (POE) of what it stamps."""

    gen_time: dt.datetime
    tsa: str | None
    serial: str
    policy: str
    accuracy_seconds: float | None = None
    trusted: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "genTime": _iso(self.gen_time),
            "tsa": self.tsa,
            "serial": self.serial,
            "policy": self.policy,
            "accuracySeconds": self.accuracy_seconds,
            "trusted": self.trusted,
        }


@dataclass(frozen=True)
class RevocationInfo:
    """What the revocation data said about the signing certificate."""

    source: str  # ocsp | crl | embedded-ocsp | embedded-crl | none
    status: str  # good | revoked | unknown
    produced_at: dt.datetime | None = None
    revoked_at: dt.datetime | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "producedAt": _iso(self.produced_at),
            "revokedAt": _iso(self.revoked_at),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of validating one signature, seal or timestamp."""

    indication: Indication
    sub_indication: SubIndication | None
    format: str
    integrity: Check
    identity: Check
    status: Check
    validation_time: dt.datetime
    signer: SignerIdentity | None = None
    qualification: str | None = None
    claimed_signing_time: dt.datetime | None = None
    timestamp: TimestampInfo | None = None
    revocation: RevocationInfo | None = None
    #: what was hashed, e.g. "RFC 8785 canonical JSON" or "PDF byte range"
    signed_data: str | None = None
    notes: tuple[str, ...] = field(default=())

    @property
    def passed(self) -> bool:
        return self.indication is Indication.TOTAL_PASSED

    @property
    def summary(self) -> str:
        head = str(self.indication)
        if self.sub_indication is not None:
            head += f"/{self.sub_indication}"
        who = ""
        if self.signer is not None:
            who = f" — {self.signer.common_name or self.signer.subject}"
        return f"{head} ({self.format}){who}"

    def to_json(self) -> dict[str, Any]:
        return {
            "indication": str(self.indication),
            "subIndication": str(self.sub_indication) if self.sub_indication else None,
            "format": self.format,
            "signer": self.signer.to_json() if self.signer else None,
            "qualification": self.qualification,
            "claimedSigningTime": _iso(self.claimed_signing_time),
            "timestamp": self.timestamp.to_json() if self.timestamp else None,
            "validationTime": _iso(self.validation_time),
            "signedData": self.signed_data,
            "checks": {
                "integrity": self.integrity.to_json(),
                "identity": self.identity.to_json(),
                "status": self.status.to_json(),
            },
            "revocation": self.revocation.to_json() if self.revocation else None,
            "notes": list(self.notes),
            "summary": self.summary,
        }

    def to_json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, ensure_ascii=False)


def _iso(when: dt.datetime | None) -> str | None:
    if when is None:
        return None
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


_STYLE = {PASSED: "green", FAILED: "red", INDETERMINATE: "yellow"}
_INDICATION_STYLE = {
    Indication.TOTAL_PASSED: "bold green",
    Indication.TOTAL_FAILED: "bold red",
    Indication.INDETERMINATE: "bold yellow",
}


def render_lines(report: ValidationReport) -> list[str]:
    """The report as rich-markup lines (``rich.console.Console.print`` each)."""
    from rich.markup import escape

    head = f"[{_INDICATION_STYLE[report.indication]}]{report.indication}[/]"
    if report.sub_indication is not None:
        head += f" / [bold]{report.sub_indication}[/]"
    lines = [head, f"format:         {report.format}"]
    if report.signer is not None:
        s = report.signer
        who = ", ".join(
            p for p in (s.common_name, s.organisation, s.country, s.organization_identifier) if p
        )
        lines.append(f"signer:         {escape(who)} (serial {s.serial})")
        lines.append(f"issuer:         {escape(s.issuer)}")
    if report.qualification:
        lines.append(f"qualification:  {escape(report.qualification)}")
    if report.claimed_signing_time:
        lines.append(f"claimed time:   {_iso(report.claimed_signing_time)}")
    if report.timestamp is not None:
        ts = report.timestamp
        lines.append(
            f"timestamp:      {_iso(ts.gen_time)} by {escape(ts.tsa or '?')} "
            f"(serial {ts.serial}, policy {ts.policy})"
        )
    if report.signed_data:
        lines.append(f"signed data:    {escape(report.signed_data)}")
    lines.append(f"validated at:   {_iso(report.validation_time)}")
    for name, check in (
        ("integrity", report.integrity),
        ("identity", report.identity),
        ("status", report.status),
    ):
        style = _STYLE.get(check.result, "white")
        lines.append(f"{name + ':':<15} [{style}]{check.result}[/] — {escape(check.message)}")
        lines.extend(f"                  · {escape(n)}" for n in check.notes)
    lines.extend(f"note:           {escape(n)}" for n in report.notes)
    return lines


# ----------------------------------------------------------------- qualification
def qc_statement_ids(cert: x509.Certificate) -> tuple[set[str], set[str], str | None]:
    """(statement OIDs, QcType OIDs, QcCClegislation country) of a certificate."""
    from ._crypto import der_children, der_oid

    try:
        ext = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(QC_STATEMENTS_OID))
    except x509.ExtensionNotFound:
        return set(), set(), None
    value = ext.value
    if not isinstance(value, x509.UnrecognizedExtension):  # pragma: no cover
        return set(), set(), None
    ids: set[str] = set()
    types: set[str] = set()
    country: str | None = None
    try:
        for _tag, stmt in der_children(value.value):
            children = der_children(b"\x30" + _length(stmt) + stmt)
            oid = der_oid(children[0][1])
            ids.add(oid)
            if len(children) > 1 and oid in (QC_TYPE, QC_CC_LEGISLATION):
                inner = children[1][1]
                for tag, item in der_children(b"\x30" + _length(inner) + inner):
                    if oid == QC_TYPE and tag == 0x06:
                        types.add(der_oid(item))
                    elif oid == QC_CC_LEGISLATION:
                        country = item.decode(errors="replace")
    except (ValueError, IndexError):
        return set(), set(), None
    return ids, types, country


def _length(body: bytes) -> bytes:
    n = len(body)
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


@functools.lru_cache(maxsize=1024)
def qualification_of(cert: x509.Certificate) -> str:
    """The qualification a certificate claims (EN 319 412-5 QCStatements).

    Caravan's certificates are qualified under the issuing country's law
    (QcCClegislation), not under eIDAS: the country is part of the answer.
    """
    ids, types, country = qc_statement_ids(cert)
    seal = QC_TYPE_ESEAL in types
    kind = "seal" if seal or (QC_TYPE_ESIGN not in types and _is_legal(cert)) else "signature"
    if QC_COMPLIANCE not in ids:
        return f"advanced electronic {kind}"
    text = f"qualified electronic {kind}"
    if QC_SSCD in ids:
        text += " (QSCD)"
    if country:
        text += f" under {country} legislation"
    return text


def _is_legal(cert: x509.Certificate) -> bool:
    return bool(cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER))

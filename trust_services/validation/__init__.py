"""Validation of Caravan's signatures, seals and timestamps (ETSI EN 319 102-1).

>>> # from trust_services.validation import CertificateValidator, verify
>>> # validator = CertificateValidator(roots, source=HttpRevocationSource())
>>> # for report in verify(pdf_bytes, validator=validator):
>>> #     print(report.summary)

* :func:`validate_cades` — detached CAdES B-B/B-T/B-LT (and JSON seals, RFC 8785);
* :func:`validate_timestamp` — an RFC 3161 response or token, with or without data;
* :func:`validate_pades` — every signature of a PDF, B-B to B-LTA;
* :func:`verify` — detects which of the three applies.

Each returns a frozen :class:`ValidationReport` with an ETSI indication and
sub-indication, the signer, the qualification, the best proof of existence and
separate integrity / identity / status results. Trust (anchors, revocation source,
validation time) is injected; a :class:`CertificateValidator` caches what does not
change between signatures, so keep one per trust configuration.
"""

from __future__ import annotations

import datetime as dt

from .cades import validate_cades
from .chain import CertificateValidator, ChainResult, EmbeddedRevocation, Usage
from .detect import Kind, detect, unarmor
from .pades import validate_pades
from .report import (
    Check,
    Indication,
    RevocationInfo,
    SignerIdentity,
    SubIndication,
    TimestampInfo,
    ValidationReport,
    qualification_of,
    render_lines,
)
from .timestamp import validate_timestamp

__all__ = [
    "CertificateValidator",
    "ChainResult",
    "Check",
    "EmbeddedRevocation",
    "Indication",
    "Kind",
    "RevocationInfo",
    "SignerIdentity",
    "SubIndication",
    "TimestampInfo",
    "Usage",
    "ValidationReport",
    "detect",
    "qualification_of",
    "render_lines",
    "validate_cades",
    "validate_pades",
    "validate_timestamp",
    "verify",
]


def verify(
    file: bytes,
    signature: bytes | None = None,
    *,
    validator: CertificateValidator,
    at: dt.datetime | None = None,
) -> list[ValidationReport]:
    """Validate whatever ``file`` (with ``signature``) is; one report per signature."""
    at = at or dt.datetime.now(dt.UTC)
    kind = detect(file, signature)
    if kind is Kind.PADES:
        return validate_pades(file, validator, at=at)
    if signature is None:
        der = unarmor(file)
        if kind is Kind.TIMESTAMP:
            return [validate_timestamp(der, validator, at=at)]
        return [validate_cades(der, None, validator, at=at)]
    der = unarmor(signature)
    if kind is Kind.TIMESTAMP:
        return [validate_timestamp(der, validator, data=file, at=at)]
    return [validate_cades(der, file, validator, at=at)]

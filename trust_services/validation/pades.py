"""PAdES (ETSI EN 319 142-1) validation: B-B, B-T, B-LT, B-LTA.

>>> # reports = validate_pades(pdf_bytes, validator)    # one report per signature
>>> # reports[0].indication, reports[0].format

pyHanko reads the PDF: it finds the signature fields, checks that each signature's
/ByteRange covers its whole revision (coverage) and that later revisions only add what
PAdES allows (DSS, document timestamps — its diff analysis), computes the byte-range
digest and reads the Document Security Store. The CMS inside is then validated by the
same engine as CAdES (:func:`~.cades.validate_signed_data`), so a PDF seal and a
detached seal of the same signer get the same chain, revocation and qualification
decisions, the same :class:`~.chain.RevocationSource` and the same caches — and the
ETSI mapping is written once. Document timestamps (B-LTA) are checked as RFC 3161
tokens over their byte range and serve as proofs of existence for the signatures they
cover.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import logging
from collections.abc import Callable
from typing import Any

from ..errors import InputError
from ._der_parse import parse_signed_data, tlv
from .cades import validate_signed_data
from .chain import CertificateValidator, EmbeddedRevocation
from .report import Check, Indication, SubIndication, ValidationReport
from .timestamp import TokenCheck, check_token

__all__ = ["validate_pades"]

logging.getLogger("pyhanko").setLevel(logging.ERROR)


def _trim(contents: bytes) -> bytes:
    """/Contents is zero-padded after the DER SignedData."""
    try:
        _tag, _start, end = tlv(contents, 0, len(contents))
    except ValueError:
        return contents
    return contents[:end]


def _open(pdf: bytes) -> Any:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader

    if pdf[:1024].lstrip()[:5] != b"%PDF-":
        raise InputError("not a PDF (no %PDF- header)")
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        _ = reader.root  # force the trailer and catalogue to be read
    except (PdfError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InputError(f"not a readable PDF ({_one_line(exc)})") from None
    return reader


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _dss(reader: Any) -> EmbeddedRevocation:
    from pyhanko.sign.validation.dss import DocumentSecurityStore
    from pyhanko.sign.validation.errors import NoDSSFoundError

    try:
        dss = DocumentSecurityStore.read_dss(reader)
    except NoDSSFoundError:
        return EmbeddedRevocation()
    except Exception:  # a damaged DSS is "no embedded data", noted by the level
        return EmbeddedRevocation()
    return EmbeddedRevocation(
        tuple(bytes(b) for b in dss._ocsps_seen), tuple(bytes(b) for b in dss._crls_seen)
    )


def _byte_range_digest(emb: Any) -> Callable[[str], bytes]:
    def digest(name: str) -> bytes:
        value: bytes = emb.compute_digest(name)
        return value

    return digest


def validate_pades(
    pdf: bytes, validator: CertificateValidator, *, at: dt.datetime | None = None
) -> list[ValidationReport]:
    """One report per signature of the PDF (document timestamps are not reported alone)."""
    from pyhanko.pdf_utils.misc import PdfError

    at = at or dt.datetime.now(dt.UTC)
    reader = _open(pdf)
    try:
        signatures = list(reader.embedded_regular_signatures)
        doc_timestamps = list(reader.embedded_timestamp_signatures)
    except (PdfError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"cannot read the PDF's signature fields ({_one_line(exc)})") from None
    if not signatures:
        raise InputError("the PDF holds no signature")
    dss = _dss(reader)

    checked_ts: list[tuple[int, TokenCheck]] = []
    for ts in doc_timestamps:
        try:
            token = parse_signed_data(_trim(ts.pkcs7_content))
            checked = check_token(
                token,
                validator,
                at=at,
                imprint_for=_byte_range_digest(ts),
                embedded=dss,
            )
        except (InputError, ValueError, PdfError):
            continue
        checked_ts.append((ts.signed_revision, checked))

    reports = []
    for emb in signatures:
        reports.append(_validate_one(emb, validator, at, dss, checked_ts))
    return reports


def _validate_one(
    emb: Any,
    validator: CertificateValidator,
    at: dt.datetime,
    dss: EmbeddedRevocation,
    doc_timestamps: list[tuple[int, TokenCheck]],
) -> ValidationReport:
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.sign.diff_analysis import DEFAULT_DIFF_POLICY
    from pyhanko.sign.diff_analysis.policy_api import SuspiciousModification
    from pyhanko.sign.validation.status import SignatureCoverageLevel

    try:
        sd = parse_signed_data(_trim(emb.pkcs7_content))
    except ValueError as exc:
        return _failed(
            at, SubIndication.FORMAT_FAILURE, f"the signature's CMS is malformed ({exc})"
        )
    notes: list[str] = []
    try:
        coverage = emb.evaluate_signature_coverage()
        emb.coverage = coverage
    except (PdfError, ValueError) as exc:
        return _failed(at, SubIndication.FORMAT_FAILURE, f"bad /ByteRange ({_one_line(exc)})")
    if coverage < SignatureCoverageLevel.ENTIRE_REVISION:
        return _failed(
            at,
            SubIndication.FORMAT_FAILURE,
            "the signature's /ByteRange does not cover its whole revision",
        )
    modified_badly: str | None = None
    if coverage is SignatureCoverageLevel.ENTIRE_REVISION:
        try:
            diff = emb.evaluate_modifications(DEFAULT_DIFF_POLICY)
        except Exception as exc:  # pyHanko's diff analysis on odd files
            diff = None
            notes.append(f"later revisions could not be analysed: {_one_line(exc)}")
        if isinstance(diff, SuspiciousModification):
            modified_badly = f"the document was changed after signing: {_one_line(diff)}"
        elif diff is not None:
            notes.append(f"later changes: {diff.modification_level.name.lower()}")

    def content_digest(name: str, _hints: str | None) -> bytes:
        digest: bytes = emb.compute_digest(name)
        return digest

    covering = [tc for rev, tc in doc_timestamps if rev > emb.signed_revision]
    report = validate_signed_data(
        sd,
        validator,
        content_digest,
        at=at,
        format_family="PAdES",
        described=[f"PDF byte range of revision {emb.signed_revision + 1} ({emb.field_name})"],
        extra_revocation=dss,
        extra_timestamps=covering,
    )
    level = report.format.rsplit("-", 1)[-1]
    has_sig_ts = level in ("T", "LT", "LTA") and (report.timestamp is not None)
    if covering and (dss.ocsp or dss.crls):
        level = "LTA"
    elif has_sig_ts and (dss.ocsp or dss.crls):
        level = "LT"
    all_notes = (*report.notes, *notes)
    if any(not tc.passed for tc in covering):
        all_notes += ("a document timestamp did not validate",)
    report = dataclasses.replace(report, format=f"PAdES-BASELINE-{level}", notes=all_notes)
    if report.claimed_signing_time is None:
        claimed = emb.self_reported_timestamp
        if claimed is not None:
            report = dataclasses.replace(report, claimed_signing_time=claimed)
    if modified_badly is not None and report.indication is Indication.TOTAL_PASSED:
        report = dataclasses.replace(
            report,
            indication=Indication.TOTAL_FAILED,
            sub_indication=SubIndication.HASH_FAILURE,
            integrity=Check.failed(modified_badly),
        )
    return report


def _failed(at: dt.datetime, sub: SubIndication, message: str) -> ValidationReport:
    return ValidationReport(
        indication=Indication.TOTAL_FAILED,
        sub_indication=sub,
        format="PAdES",
        integrity=Check.failed(message),
        identity=Check.indeterminate("not checked"),
        status=Check.indeterminate("not checked"),
        validation_time=at,
    )

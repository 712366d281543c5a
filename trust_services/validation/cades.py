"""CAdES (ETSI EN 319 122-1) detached signature validation: B-B, B-T, B-LT.

>>> # validator = CertificateValidator([kz_root], source=HttpRevocationSource())
>>> # report = validate_cades(p7s_der, data, validator)
>>> # report.indication, report.qualification

Integrity (message-digest, signing-certificate-v2, signature), then the
signature-time-stamp(s) — whose genTime becomes the proof of existence (POE) —, then the
signer's chain and revocation status with the data embedded in the signature (the
``crls`` field: CRLs and id-ri-ocsp-response) before any :class:`RevocationSource`.
A JSON record sealed with content-hints ``application/json; canonicalization=RFC8785``
is hashed in its RFC 8785 canonical form.

Everything that does not change between signatures (trust anchors, chains per
certificate, parsed and verified revocation data) is cached in the
:class:`CertificateValidator`, so reuse one validator for many signatures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass

from ._cms import ATTR_SIGNATURE_TIMESTAMP, check_signer, embedded_revocation, load_signed_data
from ._der_parse import ParsedSignedData
from .chain import CertificateValidator, EmbeddedRevocation
from .report import (
    Check,
    Indication,
    RevocationInfo,
    SignerIdentity,
    SubIndication,
    TimestampInfo,
    ValidationReport,
    qualification_of,
)
from .timestamp import TokenCheck, check_token

__all__ = ["JSON_CONTENT_HINT", "validate_cades", "validate_signed_data"]

ID_DATA = "1.2.840.113549.1.7.1"
JSON_CONTENT_HINT = "application/json; canonicalization=RFC8785"
ATTR_ARCHIVE_TIMESTAMP_V3 = "0.4.0.1733.2.4"


@dataclass(frozen=True)
class _Verdict:
    indication: Indication
    sub_indication: SubIndication | None


def _canonical_json(data: bytes) -> bytes | None:
    import rfc8785

    try:
        return bytes(rfc8785.dumps(json.loads(data)))
    except (ValueError, TypeError, UnicodeDecodeError, rfc8785.CanonicalizationError):
        return None


def validate_cades(
    signature: bytes,
    data: bytes | None,
    validator: CertificateValidator,
    *,
    at: dt.datetime | None = None,
) -> ValidationReport:
    """Validate a CAdES signature (DER ContentInfo) over ``data`` (detached).

    ``data`` may be None when the content is encapsulated. Malformed DER raises
    :class:`~trust_services.errors.InputError`; everything else is in the report.
    """
    sd = load_signed_data(signature, "signature")
    content = data if data is not None else sd.econtent
    if sd.econtent_type != ID_DATA:
        return _format_failure(
            at, "the signature does not sign id-data content (not a CAdES signature)"
        )
    if content is None:
        return _format_failure(at, "detached signature: the signed data is needed")
    body = content
    hashes: dict[tuple[str, bool], bytes] = {}
    described: list[str] = ["the data as given"]

    def content_digest(name: str, hints: str | None) -> bytes:
        canonical = hints == JSON_CONTENT_HINT
        key = (name, canonical)
        if key not in hashes:
            payload: bytes | None = body
            if canonical:
                payload = _canonical_json(body)
                described[0] = (
                    "RFC 8785 canonical form of the JSON data"
                    if payload is not None
                    else "data declared JSON but not parseable as JSON"
                )
            hashes[key] = hashlib.new(name, payload).digest() if payload is not None else b""
        return hashes[key]

    return validate_signed_data(
        sd, validator, content_digest, at=at, format_family="CAdES", described=described
    )


def _format_failure(at: dt.datetime | None, message: str) -> ValidationReport:
    return ValidationReport(
        indication=Indication.TOTAL_FAILED,
        sub_indication=SubIndication.FORMAT_FAILURE,
        format="CAdES",
        integrity=Check.failed(message),
        identity=Check.indeterminate("not checked"),
        status=Check.indeterminate("not checked"),
        validation_time=at or dt.datetime.now(dt.UTC),
    )


def _timestamps(sd: ParsedSignedData) -> tuple[list[bytes], bool]:
    """Signature-time-stamp tokens, and whether an archive timestamp is present."""
    if len(sd.signer_infos) != 1:
        return [], False
    unsigned = sd.signer_infos[0].unsigned
    return list(unsigned.get(ATTR_SIGNATURE_TIMESTAMP, ())), ATTR_ARCHIVE_TIMESTAMP_V3 in unsigned


def validate_signed_data(
    sd: ParsedSignedData,
    validator: CertificateValidator,
    content_digest: Callable[[str, str | None], bytes],
    *,
    at: dt.datetime | None = None,
    format_family: str = "CAdES",
    described: list[str] | None = None,
    extra_revocation: EmbeddedRevocation | None = None,
    extra_timestamps: list[TokenCheck] | None = None,
) -> ValidationReport:
    """The shared AdES core: integrity, signature timestamps, chain and status."""
    at = at or dt.datetime.now(dt.UTC)
    signer = check_signer(sd, validator, content_digest=content_digest)
    signed_data = described[0] if described else None
    notes: list[str] = []
    identity_of = SignerIdentity.of(signer.certificate) if signer.certificate else None
    qualification = qualification_of(signer.certificate) if signer.certificate else None

    embedded = embedded_revocation(sd)
    if extra_revocation is not None:
        embedded = EmbeddedRevocation(
            embedded.ocsp + extra_revocation.ocsp, embedded.crls + extra_revocation.crls
        )

    # -------------------------------------------------------------- timestamps
    tokens, archive = _timestamps(sd)
    best: TokenCheck | None = None
    signature_value = signer.signature
    for token in tokens:

        def imprint_for(name: str) -> bytes:
            return hashlib.new(name, signature_value).digest()

        try:
            checked = check_token(
                token, validator, at=at, imprint_for=imprint_for, embedded=embedded
            )
        except Exception as exc:  # InputError from a damaged token: not a POE
            notes.append(f"a signature timestamp could not be read: {exc}")
            continue
        if not checked.passed:
            notes.append(
                f"signature timestamp not usable as proof of existence: "
                f"{checked.sub_indication} — {_first_problem(checked)}"
            )
            continue
        assert checked.info is not None
        if best is None or best.info is None or checked.info.gen_time < best.info.gen_time:
            best = checked
    for extra in extra_timestamps or ():
        if (
            extra.passed
            and extra.info is not None
            and (best is None or best.info is None or extra.info.gen_time < best.info.gen_time)
        ):
            best = extra
    poe = best.info.gen_time if best is not None and best.info is not None else None
    ts_info: TimestampInfo | None = best.info if best is not None else None
    if ts_info is None and tokens:
        # show the (unusable) timestamp anyway, untrusted
        try:
            shown = check_token(tokens[0], validator, at=at)
            ts_info = shown.info
        except Exception:  # noqa: S110 - already noted above
            pass

    has_revocation = bool(embedded.ocsp or embedded.crls)
    level = "B"
    if tokens or extra_timestamps:
        level = "T"
        if has_revocation:
            level = "LT"
        if archive:
            level = "LTA"
            notes.append("archive timestamps are present but not validated")
    fmt = f"{format_family}-BASELINE-{level}"

    if (
        poe is not None
        and best is not None
        and signer.signing_time is not None
        and signer.signing_time > poe + best.accuracy
    ):
        notes.append(
            f"the claimed signing time {signer.signing_time.isoformat()} is later than the"
            f" signature timestamp {poe.isoformat()}"
        )

    # -------------------------------------------------------------- integrity failure
    def report(
        verdict: _Verdict,
        identity: Check,
        status: Check,
        revocation: RevocationInfo | None = None,
    ) -> ValidationReport:
        return ValidationReport(
            indication=verdict.indication,
            sub_indication=verdict.sub_indication,
            format=fmt,
            integrity=signer.integrity,
            identity=identity,
            status=status,
            validation_time=at,
            signer=identity_of,
            qualification=qualification,
            claimed_signing_time=signer.signing_time,
            timestamp=ts_info,
            revocation=revocation,
            signed_data=signed_data,
            notes=tuple(notes),
        )

    if signer.certificate is None or signer.failure is not None:
        ind, sub, _msg = signer.failure or (
            Indication.INDETERMINATE,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            "",
        )
        if signer.certificate is None:
            return report(
                _Verdict(ind, sub),
                Check.indeterminate("not checked: no signing certificate"),
                Check.indeterminate("not checked: no signing certificate"),
            )
        if ind is Indication.TOTAL_FAILED:
            return report(
                _Verdict(ind, sub),
                Check.indeterminate("not checked: the signature is broken"),
                Check.indeterminate("not checked: the signature is broken"),
            )

    # -------------------------------------------------------------- identity + status
    assert signer.certificate is not None
    chain = validator.validate(
        signer.certificate,
        signer.certificates,
        at=at,
        poe=poe,
        claimed_time=signer.signing_time,
        embedded=embedded,
    )
    notes.extend(chain.notes)
    identity = chain.identity
    if chain.chain and qualification:
        identity = Check(
            identity.result, identity.message, (*identity.notes, f"qualification: {qualification}")
        )
    if signer.failure is not None:
        return report(
            _Verdict(signer.failure[0], signer.failure[1]), identity, chain.status, chain.revocation
        )
    if chain.indication is not None:
        return report(
            _Verdict(chain.indication, chain.sub_indication),
            identity,
            chain.status,
            chain.revocation,
        )
    return report(_Verdict(Indication.TOTAL_PASSED, None), identity, chain.status, chain.revocation)


def _first_problem(check: TokenCheck) -> str:
    for group in (check.integrity, check.identity, check.status):
        if not group.ok:
            return group.message
    return "?"

"""RFC 3161 timestamp validation (ETSI EN 319 422 profile).

A token is checked as any CMS signature (signer, ESSCertID(v2), message-digest over
the TSTInfo, signature), then its TSA certificate chain (critical id-kp-timeStamping
EKU alone, revocation) and, when the stamped data or digest is given, its
messageImprint. The same check validates CAdES signature-time-stamps.

>>> # report = validate_timestamp(tsr_der, validator, data=b"…")
>>> # report.timestamp.gen_time
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable
from dataclasses import dataclass

from ..errors import InputError
from ._cms import check_signer, embedded_revocation, load_signed_data
from ._crypto import HASH_NAMES_BY_OID
from ._der_parse import (
    INTEGER,
    OID,
    SEQUENCE,
    ParsedSignedData,
    children,
    integer,
    parse_tst_info,
    tlv,
)
from .chain import CertificateValidator, ChainResult, EmbeddedRevocation, Usage
from .report import (
    Check,
    Indication,
    SignerIdentity,
    SubIndication,
    TimestampInfo,
    ValidationReport,
)

__all__ = ["TokenCheck", "check_token", "validate_timestamp"]

ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
FORMAT = "RFC3161-TOKEN"


@dataclass(frozen=True)
class TokenCheck:
    """A checked timestamp token: its details and the three check groups."""

    info: TimestampInfo | None
    integrity: Check
    identity: Check
    status: Check
    indication: Indication | None
    sub_indication: SubIndication | None
    imprint_digest: str | None = None
    imprint: bytes | None = None
    chain: ChainResult | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.indication is None

    @property
    def accuracy(self) -> dt.timedelta:
        if self.info is None or self.info.accuracy_seconds is None:
            return dt.timedelta(0)
        return dt.timedelta(seconds=self.info.accuracy_seconds)


def _tsa_name(der: bytes | None) -> str | None:
    """The TSTInfo ``tsa`` GeneralName, readable (only used when no certificate)."""
    if der is None:
        return None
    from asn1crypto import x509 as asn1_x509

    try:
        name = asn1_x509.GeneralName.load(der)
        if name.name == "directory_name":
            return str(name.chosen.human_friendly)
        return str(name.native)
    except (ValueError, TypeError):
        return None


def _not_checked(msg: str = "not checked") -> Check:
    return Check.indeterminate(msg)


def check_token(
    token: bytes | ParsedSignedData,
    validator: CertificateValidator,
    *,
    at: dt.datetime,
    imprint_for: Callable[[str], bytes] | None = None,
    embedded: EmbeddedRevocation | None = None,
) -> TokenCheck:
    """Check a timestamp token; ``imprint_for(digest)`` gives the expected imprint."""
    try:
        sd = load_signed_data(token, "timestamp token") if isinstance(token, bytes) else token
        if sd.econtent_type != ID_CT_TST_INFO or sd.econtent is None:
            raise InputError("the timestamp token does not hold a TSTInfo")
        tst_der = sd.econtent
        tst = parse_tst_info(tst_der)
    except ValueError as exc:
        raise InputError(f"the timestamp token is not a valid RFC 3161 TSTInfo ({exc})") from None
    gen_time = tst.gen_time
    imprint_digest = HASH_NAMES_BY_OID.get(tst.imprint_oid)
    hashed = tst.hashed_message
    serial = f"{tst.serial:x}"
    policy = tst.policy
    accuracy = tst.accuracy

    def tst_digest(name: str, _hints: str | None) -> bytes:
        return hashlib.new(name, tst_der).digest()

    signer = check_signer(sd, validator, content_digest=tst_digest)
    if signer.certificate is not None:
        tsa_display = SignerIdentity.of(signer.certificate).common_name
    else:
        tsa_display = _tsa_name(tst.tsa_name_der)
    info = TimestampInfo(gen_time, tsa_display, serial, policy, accuracy, False)
    if signer.failure is not None:
        ind, sub, _msg = signer.failure
        return TokenCheck(
            info, signer.integrity, _not_checked(), _not_checked(), ind, sub, imprint_digest, hashed
        )
    integrity_msg = "TSTInfo digest and TSA signature verified"
    if imprint_digest is None or imprint_digest == "sha1":
        return TokenCheck(
            info,
            Check.indeterminate("unsupported or too weak messageImprint hash algorithm"),
            _not_checked(),
            _not_checked(),
            Indication.INDETERMINATE,
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
        )
    notes: list[str] = []
    if imprint_for is not None:
        if imprint_for(imprint_digest) != hashed:
            return TokenCheck(
                info,
                Check.failed("the messageImprint does not match the stamped data"),
                _not_checked(),
                _not_checked(),
                Indication.TOTAL_FAILED,
                SubIndication.HASH_FAILURE,
                imprint_digest,
                hashed,
            )
        integrity_msg += "; messageImprint matches the data"
    else:
        notes.append("no data given: the messageImprint was not compared")
    integrity = Check.passed(integrity_msg)

    assert signer.certificate is not None
    tsa_cert = signer.certificate
    if not tsa_cert.not_valid_before_utc <= gen_time <= tsa_cert.not_valid_after_utc:
        return TokenCheck(
            info,
            integrity,
            Check.failed("the genTime lies outside the validity of the TSA certificate"),
            _not_checked(),
            Indication.TOTAL_FAILED,
            SubIndication.EXPIRED
            if gen_time > tsa_cert.not_valid_after_utc
            else SubIndication.NOT_YET_VALID,
            imprint_digest,
            hashed,
        )
    chain = validator.validate(
        signer.certificate,
        signer.certificates,
        at=at,
        usage=Usage.TIMESTAMPING,
        claimed_time=gen_time,
        embedded=embedded,
        revocation_time=gen_time,
    )
    trusted = chain.passed
    info = TimestampInfo(gen_time, tsa_display, serial, policy, accuracy, trusted)
    return TokenCheck(
        info,
        integrity,
        chain.identity,
        chain.status,
        chain.indication,
        chain.sub_indication,
        imprint_digest,
        hashed,
        chain,
        tuple(notes) + chain.notes,
    )


_STATUS = {0: "granted", 1: "granted with modifications", 2: "rejection", 3: "waiting"}


def _split_response(der: bytes) -> bytes:
    """The token of a TimeStampResp, or ``der`` itself when it is a bare token."""
    try:
        tag, start, end = tlv(der, 0, len(der))
        if tag != SEQUENCE or end != len(der):
            raise ValueError("not a SEQUENCE")
        parts = children(der, start, end)
        if not parts:
            raise ValueError("empty")
        if parts[0][0] == OID:
            return der
        if parts[0][0] != SEQUENCE:
            raise ValueError("neither a token nor a response")
        status_info = children(der, parts[0][1], parts[0][2])
        if not status_info or status_info[0][0] != INTEGER:
            raise ValueError("bad PKIStatusInfo")
        status = integer(der[status_info[0][1] : status_info[0][2]])
        texts: list[str] = []
        if len(status_info) > 1 and status_info[1][0] == SEQUENCE:
            for t, s, e, _el in children(der, status_info[1][1], status_info[1][2]):
                if t == 0x0C:
                    texts.append(der[s:e].decode(errors="replace"))
    except (ValueError, IndexError):
        raise InputError("not a DER timestamp response or token") from None
    if status not in (0, 1) or len(parts) < 2:
        detail = f": {'; '.join(texts)}" if texts else ""
        raise InputError(
            f"the timestamp response is a refusal ({_STATUS.get(status, status)}){detail}"
        )
    return der[parts[1][3] : parts[1][2]]


def validate_timestamp(
    der: bytes,
    validator: CertificateValidator,
    *,
    data: bytes | None = None,
    digest: bytes | None = None,
    at: dt.datetime | None = None,
) -> ValidationReport:
    """Validate a TimeStampResp (.tsr) or a bare token, optionally against its data."""
    at = at or dt.datetime.now(dt.UTC)
    token = _split_response(der)
    imprint_for: Callable[[str], bytes] | None = None
    if data is not None:

        def imprint_for(name: str) -> bytes:
            return hashlib.new(name, data).digest()

    elif digest is not None:
        given = digest

        def imprint_for(_name: str) -> bytes:
            return given

    sd = load_signed_data(token, "timestamp token")
    check = check_token(
        sd, validator, at=at, imprint_for=imprint_for, embedded=embedded_revocation(sd)
    )
    signer = None
    if check.chain is not None and check.chain.chain:
        signer = SignerIdentity.of(check.chain.chain[0])
    indication = check.indication or Indication.TOTAL_PASSED
    return ValidationReport(
        indication=indication,
        sub_indication=check.sub_indication,
        format=FORMAT,
        integrity=check.integrity,
        identity=check.identity,
        status=check.status,
        validation_time=at,
        signer=signer,
        qualification=None,
        timestamp=check.info,
        revocation=check.chain.revocation if check.chain else None,
        signed_data="data given" if imprint_for is not None else "no data given",
        notes=check.notes,
    )

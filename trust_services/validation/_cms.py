"""The signer half of CMS SignedData validation, shared by CAdES and RFC 3161 tokens.

Parsing is the small DER walker of :mod:`._der_parse` (asn1crypto only for the rare,
cached signing-certificate attribute); cryptography does the signature maths. Nothing
here goes to the network.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ..errors import InputError
from ._crypto import HASH_NAMES_BY_OID, der_children, verify_signature
from ._der_parse import (
    OCTET_STRING,
    OID,
    ParsedSignedData,
    ParsedSignerInfo,
    oid_text,
    parse_signed_data,
    parse_time,
    tlv,
)
from .chain import CertificateValidator, EmbeddedRevocation
from .report import Check, Indication, SubIndication

__all__ = ["SignerCheck", "check_signer", "load_signed_data"]

ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ATTR_SIGNING_TIME = "1.2.840.113549.1.9.5"
ATTR_SIGNING_CERTIFICATE = "1.2.840.113549.1.9.16.2.12"
ATTR_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
ATTR_CONTENT_HINTS = "1.2.840.113549.1.9.16.2.4"
ATTR_SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"
RSASSA_PSS = "1.2.840.113549.1.1.10"
SHA256 = "sha256"


@dataclass
class SignerCheck:
    """What the signer half of a SignedData showed."""

    certificate: x509.Certificate | None
    certificates: list[x509.Certificate]
    digest: str | None
    signing_time: dt.datetime | None = None
    content_hints: str | None = None
    content_type: str | None = None
    signature: bytes = b""
    failure: tuple[Indication, SubIndication, str] | None = None
    integrity: Check = field(default_factory=lambda: Check.passed("signature verified"))


def load_signed_data(der: bytes, what: str = "signature") -> ParsedSignedData:
    """The parsed SignedData of a DER ContentInfo; InputError when it is not one."""
    try:
        return parse_signed_data(der)
    except ValueError as exc:
        raise InputError(f"the {what} is not DER-encoded CMS SignedData ({exc})") from None


def embedded_revocation(sd: ParsedSignedData) -> EmbeddedRevocation:
    """CRLs and OCSP responses from the SignedData ``crls`` field (RFC 5940)."""
    return EmbeddedRevocation(tuple(sd.ocsp), tuple(sd.crls))


def certificates_of(
    sd: ParsedSignedData, validator: CertificateValidator
) -> list[x509.Certificate]:
    out: list[x509.Certificate] = []
    for der in sd.certificates:
        try:
            out.append(validator.certificate(der))
        except ValueError:
            continue
    return out


@functools.lru_cache(maxsize=1024)
def _issuer_der(cert: x509.Certificate) -> bytes:
    return cert.issuer.public_bytes()


def _find_signer(si: ParsedSignerInfo, certs: list[x509.Certificate]) -> x509.Certificate | None:
    if si.sid_kind == "issuer_serial":
        for cert in certs:
            if cert.serial_number == si.sid_serial and _issuer_der(cert) == si.sid_issuer:
                return cert
        return None
    for cert in certs:
        try:
            value = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
        except x509.ExtensionNotFound:
            continue
        if value.digest == si.sid_ski:
            return cert
    return None


def _fail(check: SignerCheck, ind: Indication, sub: SubIndication, msg: str) -> SignerCheck:
    check.failure = (ind, sub, msg)
    if ind is Indication.TOTAL_FAILED:
        check.integrity = Check.failed(msg)
    else:
        check.integrity = Check.indeterminate(msg)
    return check


def check_signer(
    sd: ParsedSignedData,
    validator: CertificateValidator,
    *,
    content_digest: Callable[[str, str | None], bytes],
    extra_certificates: list[x509.Certificate] | None = None,
) -> SignerCheck:
    """Find the signer, check signing-certificate, message-digest and the signature.

    ``content_digest(digest_name, content_hints)`` hashes the signed content.
    """
    certs = certificates_of(sd, validator)
    pool = certs + list(extra_certificates or ())
    check = SignerCheck(None, certs, None)
    if len(sd.signer_infos) != 1:
        return _fail(
            check,
            Indication.TOTAL_FAILED,
            SubIndication.FORMAT_FAILURE,
            f"expected one SignerInfo, found {len(sd.signer_infos)}",
        )
    try:
        return _check_signer_info(check, sd.signer_infos[0], pool, content_digest)
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        return _fail(
            check,
            Indication.TOTAL_FAILED,
            SubIndication.FORMAT_FAILURE,
            f"malformed signed attribute ({type(exc).__name__})",
        )


def _single(value: bytes, tag: int) -> bytes:
    t, s, e = tlv(value, 0, len(value))
    if t != tag or e != len(value):
        raise ValueError("unexpected attribute value")
    return value[s:e]


def _check_signer_info(
    check: SignerCheck,
    si: ParsedSignerInfo,
    pool: list[x509.Certificate],
    content_digest: Callable[[str, str | None], bytes],
) -> SignerCheck:
    cert = _find_signer(si, pool)
    check.certificate = cert
    check.signature = si.signature
    digest = HASH_NAMES_BY_OID.get(si.digest_oid)
    check.digest = digest
    if cert is None:
        return _fail(
            check,
            Indication.INDETERMINATE,
            SubIndication.NO_SIGNING_CERTIFICATE_FOUND,
            "the signing certificate is not in the signature",
        )
    if digest is None or digest == "sha1":
        return _fail(
            check,
            Indication.INDETERMINATE,
            SubIndication.CRYPTO_CONSTRAINTS_FAILURE,
            "unsupported or too weak digest algorithm",
        )
    if si.signed_attrs is None:
        return _fail(
            check,
            Indication.TOTAL_FAILED,
            SubIndication.FORMAT_FAILURE,
            "no signed attributes (CAdES and RFC 3161 need them)",
        )
    if si.duplicate_attr is not None:
        return _fail(
            check,
            Indication.TOTAL_FAILED,
            SubIndication.FORMAT_FAILURE,
            f"signed attribute {si.duplicate_attr} appears twice",
        )
    attrs: dict[str, bytes] = {}
    for oid, values in si.attrs.items():
        if len(values) != 1:
            return _fail(
                check,
                Indication.TOTAL_FAILED,
                SubIndication.FORMAT_FAILURE,
                f"signed attribute {oid} must have exactly one value",
            )
        attrs[oid] = values[0]

    if ATTR_CONTENT_TYPE in attrs:
        check.content_type = oid_text(_single(attrs[ATTR_CONTENT_TYPE], OID))
    if ATTR_SIGNING_TIME in attrs:
        value = attrs[ATTR_SIGNING_TIME]
        check.signing_time = parse_time(value[0], _single(value, value[0]))
    if ATTR_CONTENT_HINTS in attrs:
        check.content_hints = _content_hints(attrs[ATTR_CONTENT_HINTS])

    # signing-certificate(-v2): the signer's certificate is bound by hash
    problem = _check_signing_certificate(attrs, cert)
    if problem is not None:
        return _fail(
            check, Indication.INDETERMINATE, SubIndication.NO_SIGNING_CERTIFICATE_FOUND, problem
        )

    if ATTR_MESSAGE_DIGEST not in attrs:
        return _fail(
            check, Indication.TOTAL_FAILED, SubIndication.FORMAT_FAILURE, "no message-digest"
        )
    expected = _single(attrs[ATTR_MESSAGE_DIGEST], OCTET_STRING)
    actual = content_digest(digest, check.content_hints)
    if expected != actual:
        return _fail(
            check,
            Indication.TOTAL_FAILED,
            SubIndication.HASH_FAILURE,
            "the data does not match the message-digest of the signature",
        )

    salt: int | None = None
    if si.sig_oid == RSASSA_PSS:
        digest, salt = _pss_params(si.sig_params, digest)
    if not verify_signature(
        cert.public_key(),
        si.signature,
        si.signed_attrs,
        digest=digest,
        signature_oid=si.sig_oid,
        pss_salt=salt,
    ):
        return _fail(
            check,
            Indication.TOTAL_FAILED,
            SubIndication.SIG_CRYPTO_FAILURE,
            "the signature value does not verify with the signing certificate's key",
        )
    what = "message digest matches the data; signature verified"
    if check.content_hints:
        what += f" (content-hints: {check.content_hints})"
    check.integrity = Check.passed(what)
    return check


def _pss_params(params: bytes, digest: str) -> tuple[str, int | None]:
    from asn1crypto import algos

    if not params:
        return "sha1", 20
    parsed = algos.RSASSAPSSParams.load(params)
    name = HASH_NAMES_BY_OID.get(parsed["hash_algorithm"]["algorithm"].dotted, digest)
    return name, int(parsed["salt_length"].native)


_SIGNING_CERT_CACHE: dict[tuple[bytes, bytes], str | None] = {}


def _check_signing_certificate(attrs: dict[str, bytes], cert: x509.Certificate) -> str | None:
    """Cached per (attribute, certificate): a signer's attribute is the same every time."""
    attr = attrs.get(ATTR_SIGNING_CERTIFICATE_V2) or attrs.get(ATTR_SIGNING_CERTIFICATE) or b""
    key = (attr, cert.public_bytes(serialization.Encoding.DER))
    if key not in _SIGNING_CERT_CACHE:
        if len(_SIGNING_CERT_CACHE) > 4096:
            _SIGNING_CERT_CACHE.clear()
        try:
            _SIGNING_CERT_CACHE[key] = _signing_certificate_problem(attrs, key[1])
        except (ValueError, TypeError, KeyError, IndexError):
            _SIGNING_CERT_CACHE[key] = "the signing-certificate attribute is malformed"
    return _SIGNING_CERT_CACHE[key]


def _signing_certificate_problem(attrs: dict[str, bytes], cert_der: bytes) -> str | None:
    from asn1crypto import tsp

    if ATTR_SIGNING_CERTIFICATE_V2 in attrs:
        v2 = tsp.SigningCertificateV2.load(attrs[ATTR_SIGNING_CERTIFICATE_V2], strict=True)
        first = v2["certs"][0]
        alg_oid = first["hash_algorithm"]["algorithm"].dotted
        name = HASH_NAMES_BY_OID.get(alg_oid, SHA256)
    elif ATTR_SIGNING_CERTIFICATE in attrs:
        v1 = tsp.SigningCertificate.load(attrs[ATTR_SIGNING_CERTIFICATE], strict=True)
        first = v1["certs"][0]
        name = "sha1"
    else:
        return "no signing-certificate(-v2) attribute binds the signer's certificate"
    expected = first["cert_hash"].native
    if hashlib.new(name, cert_der).digest() != expected:
        return "the signing-certificate attribute does not match the signer's certificate"
    issuer_serial = first["issuer_serial"]
    if issuer_serial.native is not None:
        cert = x509.load_der_x509_certificate(cert_der)
        if issuer_serial["serial_number"].native != cert.serial_number:
            return "the signing-certificate attribute names another serial number"
    return None


def _content_hints(value: bytes) -> str | None:
    """ContentHints ::= SEQUENCE { contentDescription UTF8String OPTIONAL, contentType }."""
    try:
        for tag, contents in der_children(value):
            if tag == 0x0C:  # UTF8String
                return contents.decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return None

"""CMS SignedData (RFC 5652) for timestamp tokens and CAdES signatures, built fast.

A :class:`SignerTemplate` precomputes everything about a signer that does not change
between signatures (its certificate chain, IssuerAndSerialNumber, the ESS
signing-certificate-v2 attribute, algorithm identifiers); :func:`build_signed_data`
then only encodes the per-signature attributes and signs. The output is plain DER that
OpenSSL, pyHanko and asn1crypto parse (tests/test_cms.py, tests/test_interop_*.py).

>>> # template = SignerTemplate.create(key, seal_cert, [issuing_cert])
>>> # der = build_signed_data(template, content_type=ID_DATA, message_digest=h)
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from . import _der
from .keystore import DIGESTS, KeyAlgorithm, SigningKey, signature_algorithm_oid

__all__ = [
    "ID_CT_TST_INFO",
    "ID_DATA",
    "ID_SIGNED_DATA",
    "SignedAttributes",
    "SignerTemplate",
    "assemble_signed_data",
    "build_signed_data",
    "digest_algorithm_identifier",
    "sign_attributes",
]

ID_DATA = "1.2.840.113549.1.7.1"
ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
ATTR_SIGNING_TIME = "1.2.840.113549.1.9.5"
ATTR_SIGNING_CERTIFICATE_V2 = "1.2.840.113549.1.9.16.2.47"
ATTR_SIGNATURE_TIMESTAMP = "1.2.840.113549.1.9.16.2.14"
ID_RI_OCSP_RESPONSE = "1.3.6.1.5.5.7.16.2"


def digest_algorithm_identifier(digest: str) -> bytes:
    """AlgorithmIdentifier for a SHA-2 digest, parameters absent (RFC 5754 §2)."""
    return _der.seq(_der.oid(DIGESTS[digest][0]))


def attribute(oid: str, *values: bytes) -> bytes:
    return _der.seq(_der.oid(oid), _der.set_of(*values))


def ess_cert_id_v2(cert: x509.Certificate) -> bytes:
    """ESSCertIDv2 with SHA-256 (the DEFAULT, so omitted) and IssuerSerial (RFC 5035)."""
    cert_hash = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).digest()
    issuer_serial = _der.seq(
        _der.seq(_der.explicit(4, cert.issuer.public_bytes())),
        _der.integer(cert.serial_number),
    )
    return _der.seq(_der.octet_string(cert_hash), issuer_serial)


@dataclass(frozen=True)
class SignerTemplate:
    """The per-signer parts of a SignedData, encoded once."""

    key: SigningKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    digest: str
    digest_alg: bytes
    signature_alg: bytes
    sid: bytes
    signing_certificate_attr: bytes
    certificates_der: tuple[bytes, ...]

    @classmethod
    def create(
        cls,
        key: SigningKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        digest: str | None = None,
    ) -> SignerTemplate:
        digest = digest or key.algorithm.default_digest
        sig_oid = signature_algorithm_oid(key.algorithm, digest)
        sig_alg = (
            _der.seq(_der.oid(sig_oid))
            if key.algorithm is not KeyAlgorithm.RSA_3072
            else _der.seq(_der.oid(sig_oid), _der.null())
        )
        sid = _der.seq(certificate.issuer.public_bytes(), _der.integer(certificate.serial_number))
        signing_cert = attribute(
            ATTR_SIGNING_CERTIFICATE_V2, _der.seq(_der.seq(ess_cert_id_v2(certificate)))
        )
        certs = (certificate, *chain)
        return cls(
            key=key,
            certificate=certificate,
            chain=tuple(chain),
            digest=digest,
            digest_alg=digest_algorithm_identifier(digest),
            signature_alg=sig_alg,
            sid=sid,
            signing_certificate_attr=signing_cert,
            certificates_der=tuple(c.public_bytes(serialization.Encoding.DER) for c in certs),
        )

    def hash(self, data: bytes) -> bytes:
        return hashlib.new(self.digest, data).digest()


@dataclass(frozen=True)
class SignedAttributes:
    """The DER SET OF signed attributes and the signature over it."""

    encoded: bytes
    signature: bytes


def sign_attributes(
    template: SignerTemplate,
    *,
    content_type: str,
    message_digest: bytes,
    signing_time: dt.datetime | None = None,
    extra_signed_attributes: Sequence[bytes] = (),
) -> SignedAttributes:
    """Encode the signed attributes and sign them with the template's key.

    ``message_digest`` is the hash of the (possibly detached) content with the
    template's digest; ``extra_signed_attributes`` are encoded Attributes (see
    :func:`attribute`), e.g. CAdES content-hints.
    """
    signed_attrs = [
        attribute(ATTR_CONTENT_TYPE, _der.oid(content_type)),
        attribute(ATTR_MESSAGE_DIGEST, _der.octet_string(message_digest)),
        template.signing_certificate_attr,
    ]
    if signing_time is not None:
        signed_attrs.append(attribute(ATTR_SIGNING_TIME, _der.utc_time(signing_time)))
    signed_attrs.extend(extra_signed_attributes)
    signed_set = _der.set_of(*signed_attrs)
    return SignedAttributes(signed_set, template.key.sign(signed_set, template.digest))


def assemble_signed_data(
    template: SignerTemplate,
    signed: SignedAttributes,
    *,
    content_type: str,
    econtent: bytes | None = None,
    include_certificates: bool = True,
    extra_certificates: Sequence[bytes] = (),
    revocation_info: Sequence[bytes] = (),
    unsigned_attributes: Sequence[bytes] = (),
) -> bytes:
    """The ContentInfo DER around already signed attributes.

    Unsigned attributes (a signature timestamp) and validation data (B-LT) depend on the
    signature value, so they are added here, after :func:`sign_attributes`.
    ``revocation_info`` holds RevocationInfoChoice encodings (a CRL as is, an OCSP
    response wrapped by :func:`ocsp_revocation_info`).
    """
    signer_info_parts = [
        _der.integer(1),
        template.sid,
        template.digest_alg,
        b"\xa0" + signed.encoded[1:],  # [0] IMPLICIT SET OF Attribute
        template.signature_alg,
        _der.octet_string(signed.signature),
    ]
    if unsigned_attributes:
        signer_info_parts.append(_der.context(1, b"".join(sorted(unsigned_attributes))))
    encap = [_der.oid(content_type)]
    if econtent is not None:
        encap.append(_der.explicit(0, _der.octet_string(econtent)))
    parts = [
        _der.integer(1 if content_type == ID_DATA else 3),
        _der.set_of(template.digest_alg),
        _der.seq(*encap),
    ]
    certificates = (template.certificates_der if include_certificates else ()) + tuple(
        extra_certificates
    )
    if certificates:
        parts.append(_der.context(0, b"".join(sorted(_unique(certificates)))))
    if revocation_info:
        parts.append(_der.context(1, b"".join(revocation_info)))
    parts.append(_der.set_of(_der.seq(*signer_info_parts)))
    signed_data = _der.seq(*parts)
    return _der.seq(_der.oid(ID_SIGNED_DATA), _der.explicit(0, signed_data))


def build_signed_data(
    template: SignerTemplate,
    *,
    content_type: str,
    message_digest: bytes,
    econtent: bytes | None = None,
    signing_time: dt.datetime | None = None,
    include_certificates: bool = True,
    extra_certificates: Sequence[bytes] = (),
    revocation_info: Sequence[bytes] = (),
    unsigned_attributes: Sequence[bytes] = (),
    extra_signed_attributes: Sequence[bytes] = (),
) -> tuple[bytes, bytes]:
    """Sign and assemble in one go: ``(ContentInfo DER, signature value)``."""
    signed = sign_attributes(
        template,
        content_type=content_type,
        message_digest=message_digest,
        signing_time=signing_time,
        extra_signed_attributes=extra_signed_attributes,
    )
    der = assemble_signed_data(
        template,
        signed,
        content_type=content_type,
        econtent=econtent,
        include_certificates=include_certificates,
        extra_certificates=extra_certificates,
        revocation_info=revocation_info,
        unsigned_attributes=unsigned_attributes,
    )
    return der, signed.signature


def ocsp_revocation_info(ocsp_response_der: bytes) -> bytes:
    """RevocationInfoChoice ``[1] OtherRevocationInfoFormat`` for an OCSP response (RFC 5940)."""
    return _der.context(1, _der.oid(ID_RI_OCSP_RESPONSE) + ocsp_response_der)


def _unique(items: Sequence[bytes]) -> list[bytes]:
    seen: set[bytes] = set()
    out = []
    for item in items:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return out

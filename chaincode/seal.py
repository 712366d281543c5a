"""Check a detached CAdES e-seal (CMS SignedData) over canonical JSON, stdlib + cryptography.

>>> signer = verify_seal(seal_der, canonical_json(record), roots, at_us)

The seal is accepted when: it is a detached SignedData with exactly one SignerInfo; the
signed attribute messageDigest equals the digest of the content and contentType equals
the encapsulated content type; the signature over the DER signed attributes verifies
with the signer certificate's key (ECDSA or RSA PKCS#1 v1.5); the signer certificate
is an e-seal certificate (QCStatements QcType eseal, not a CA) and chains, through CA
certificates carried in the CMS, to one of ``roots`` (the issuing
member's granted root anchors); and every certificate of the chain is valid at
``at_us``. Any failure raises :class:`Forbidden` with the reason.

The chain rule is public, for CRL issuers and for the node's check of a creator:

>>> path = verify_chain(cert, carried, roots, at_us, "creator", owner="KZ-CUSTOMS")
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from . import der
from .errors import Forbidden
from .timeutil import datetime_us

__all__ = ["CERT_PARSE_ERRORS", "MAX_CHAIN", "load_certificate", "verify_chain", "verify_seal"]

HashType = type[hashes.SHA256] | type[hashes.SHA384] | type[hashes.SHA512]

ID_SIGNED_DATA = "1.2.840.113549.1.7.2"
ATTR_CONTENT_TYPE = "1.2.840.113549.1.9.3"
ATTR_MESSAGE_DIGEST = "1.2.840.113549.1.9.4"
DIGESTS: dict[str, tuple[str, HashType]] = {
    "2.16.840.1.101.3.4.2.1": ("sha256", hashes.SHA256),
    "2.16.840.1.101.3.4.2.2": ("sha384", hashes.SHA384),
    "2.16.840.1.101.3.4.2.3": ("sha512", hashes.SHA512),
}
ECDSA: dict[str, HashType] = {
    "1.2.840.10045.4.3.2": hashes.SHA256,
    "1.2.840.10045.4.3.3": hashes.SHA384,
    "1.2.840.10045.4.3.4": hashes.SHA512,
}
RSA: dict[str, HashType] = {
    "1.2.840.113549.1.1.11": hashes.SHA256,
    "1.2.840.113549.1.1.12": hashes.SHA384,
    "1.2.840.113549.1.1.13": hashes.SHA512,
}
ECDSA_KEY = "1.2.840.10045.2.1"
QC_STATEMENTS = x509.ObjectIdentifier("1.3.6.1.5.5.7.1.3")
QC_TYPE = "0.4.0.1862.1.6"
QC_TYPE_ESEAL = "0.4.0.1862.1.6.2"
RSA_KEY = "1.2.840.113549.1.1.1"
MAX_CHAIN = 5
#: cryptography parses certificates lazily: a damaged field surfaces as one of these
CERT_PARSE_ERRORS = (
    ValueError,
    TypeError,
    UnsupportedAlgorithm,
    x509.InvalidVersion,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
)


def _reject(reason: str) -> Forbidden:
    return Forbidden(f"seal rejected: {reason}")


def _algorithm(el: der.Element, what: str) -> str:
    parts = el.expect(der.SEQUENCE, what).children()
    if not parts:
        raise _reject(f"empty {what}")
    return der.oid_value(parts[0])


def _attributes(signed_attrs: der.Element) -> dict[str, list[der.Element]]:
    found: dict[str, list[der.Element]] = {}
    for attr in signed_attrs.children():
        oid_el, values = attr.expect(der.SEQUENCE, "Attribute").children()
        oid = der.oid_value(oid_el)
        if oid in found:
            raise _reject(f"signed attribute {oid} appears twice")
        found[oid] = values.expect(der.SET, "Attribute values").children()
    return found


def _single(attrs: dict[str, list[der.Element]], oid: str, name: str) -> der.Element:
    values = attrs.get(oid)
    if not values or len(values) != 1:
        raise _reject(f"the signed attribute {name} is missing or not single-valued")
    return values[0]


def _validity_error(cert: x509.Certificate, at_us: int, what: str) -> str | None:
    if datetime_us(cert.not_valid_before_utc) <= at_us <= datetime_us(cert.not_valid_after_utc):
        return None
    return (
        f"the {what} certificate ({cert.subject.rfc4514_string()}) is not valid "
        "at the transaction time"
    )


@functools.lru_cache(maxsize=512)
def load_certificate(data: bytes) -> x509.Certificate:
    """Parse a DER certificate (cached by its bytes: anchors and seal chains repeat).

    A serial number that is not positive (RFC 5280 §4.1.2.2) is refused before
    ``cryptography`` sees it (it only warns about such certificates today).
    """
    tbs = der.parse(data).expect(der.SEQUENCE, "Certificate").children()
    fields = tbs[0].expect(der.SEQUENCE, "TBSCertificate").children() if tbs else []
    serial_at = 1 if fields and fields[0].tag == 0xA0 else 0
    if len(fields) <= serial_at or der.int_value(fields[serial_at]) <= 0:
        raise ValueError("certificate serial number is missing or not positive")
    return x509.load_der_x509_certificate(data)


@functools.lru_cache(maxsize=1024)
def _link_verifies(cert_der: bytes, issuer_der: bytes) -> bool:
    # A pure function of the two certificates' bytes, so caching it keeps determinism.
    cert, issuer = load_certificate(cert_der), load_certificate(issuer_der)
    if cert.issuer != issuer.subject:
        return False
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@functools.lru_cache(maxsize=256)
def _path(cert: bytes, carried: tuple[bytes, ...], roots: tuple[bytes, ...]) -> tuple[int, ...]:
    """The chain from ``cert`` as indices: carried CA certificates (0…), then the root
    as ``-1 - j`` when the chain reaches ``roots[j]`` (absent when it does not).

    A pure function of the bytes (cached, so determinism holds): at each step the first
    granted root that issued the current certificate ends the chain, else the first
    carried CA certificate that issued it continues it, at most MAX_CHAIN steps.
    """
    path: list[int] = []
    current = cert
    for _ in range(MAX_CHAIN):
        for j, root in enumerate(roots):
            if _link_verifies(current, root):
                return (*path, -1 - j)
        parents = [
            i
            for i, c in enumerate(carried)
            if c != current and _is_ca(load_certificate(c)) and _link_verifies(current, c)
        ]
        if not parents:
            break
        path.append(parents[0])
        current = carried[parents[0]]
    return tuple(path)


def _verify_chain(
    cert: x509.Certificate,
    carried: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at_us: int,
    what: str,
    owner: str,
    prefix: str,
) -> list[x509.Certificate]:
    if not roots:
        raise Forbidden(f"{prefix}{owner} has no granted root anchor")
    cert_der, root_ders = _der(cert), tuple(_der(r) for r in roots)
    if cert_der in root_ders:
        found: tuple[int, ...] = (-1 - root_ders.index(cert_der),)  # a granted root itself
        steps = [(roots[-1 - found[0]], what)]
    else:
        found = _path(cert_der, tuple(_der(c) for c in carried), root_ders)
        steps = [(cert, what)]
        steps += [(carried[i], "intermediate CA") for i in found if i >= 0]
        steps += [(roots[-1 - j], "root anchor") for j in found if j < 0]
    for step, name in steps:
        error = _validity_error(step, at_us, name)
        if error:
            raise Forbidden(prefix + error)
    if not found or found[-1] >= 0:
        raise Forbidden(
            f"{prefix}the {what} certificate does not chain to a granted root anchor of {owner}"
        )
    return [step for step, _name in steps]


def verify_chain(
    cert: x509.Certificate,
    carried: Sequence[x509.Certificate],
    roots: Sequence[x509.Certificate],
    at_us: int,
    what: str,
    *,
    owner: str = "the issuer",
    prefix: str = "",
) -> list[x509.Certificate]:
    """The path ``[cert, intermediates…, root]`` from ``cert`` to one of ``roots``.

    >>> verify_chain(creator, [], member_roots, ctx.now, "creator", owner="KZ-CUSTOMS")

    Each link is ``cert.issuer == issuer.subject`` and ``verify_directly_issued_by``
    (cached by the certificates' bytes); intermediates come from ``carried`` and must be
    CA certificates (basicConstraints cA); the first granted root, in the order given,
    that issued the current certificate ends the path, at most MAX_CHAIN links. A
    certificate that is one of ``roots`` is its own path ``[root]``. Every certificate of
    the path must be valid at ``at_us`` (bounds included). Raises :class:`Forbidden`
    (message = ``prefix`` + reason): ``{owner} has no granted root anchor``; ``the {what}
    | intermediate CA | root anchor certificate (SUBJECT) is not valid at the transaction
    time``; ``the {what} certificate does not chain to a granted root anchor of {owner}``;
    or ``a certificate of the {what} chain cannot be parsed``.
    """
    try:
        return _verify_chain(cert, carried, roots, at_us, what, owner, prefix)
    except CERT_PARSE_ERRORS:
        raise Forbidden(f"{prefix}a certificate of the {what} chain cannot be parsed") from None


def _chain(
    signer: x509.Certificate,
    carried: list[x509.Certificate],
    roots: list[x509.Certificate],
    at_us: int,
) -> None:
    if not roots:
        raise _reject("the issuing member has no granted root anchor")
    # parse errors propagate to verify_seal, which names them as a malformed CMS
    _verify_chain(signer, carried, roots, at_us, "seal", "the issuer", "seal rejected: ")


def _qc_types(cert: x509.Certificate) -> set[str]:
    """The QcType OIDs of the certificate's QCStatements (ETSI EN 319 412-5)."""
    try:
        ext = cert.extensions.get_extension_for_oid(QC_STATEMENTS).value
    except x509.ExtensionNotFound:
        return set()
    raw = ext.value if isinstance(ext, x509.UnrecognizedExtension) else b""
    types: set[str] = set()
    for statement in der.parse(raw).expect(der.SEQUENCE, "QCStatements").children():
        parts = statement.expect(der.SEQUENCE, "QCStatement").children()
        if parts and der.oid_value(parts[0]) == QC_TYPE and len(parts) == 2:
            types.update(der.oid_value(t) for t in parts[1].children())
    return types


def _check_seal_certificate(cert: x509.Certificate) -> None:
    if _is_ca(cert):
        raise _reject("the signer certificate is a CA certificate, not a seal certificate")
    if QC_TYPE_ESEAL not in _qc_types(cert):
        raise _reject("the signer certificate is not an e-seal certificate (QcType eseal)")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return
    if not (usage.digital_signature or usage.content_commitment):
        raise _reject("the signer certificate's key usage does not allow signatures")


def _parse_certificates(el: der.Element) -> list[x509.Certificate]:
    certs = []
    for child in el.children():
        if child.tag != der.SEQUENCE:
            continue  # other certificate choices (attribute certificates) are ignored
        try:
            certs.append(load_certificate(child.raw))
        except ValueError:
            raise _reject("a certificate in the seal cannot be parsed") from None
    return certs


def _find_signer(sid: der.Element, certs: list[x509.Certificate]) -> x509.Certificate:
    if sid.tag == der.SEQUENCE:  # IssuerAndSerialNumber
        issuer_el, serial_el = sid.children()
        serial = der.int_value(serial_el)
        for cert in certs:
            if cert.serial_number == serial and cert.issuer.public_bytes() == issuer_el.raw:
                return cert
    elif sid.tag == 0x80:  # [0] SubjectKeyIdentifier
        for cert in certs:
            try:
                ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
            except x509.ExtensionNotFound:
                continue
            if ski.digest == sid.content:
                return cert
    raise _reject("the signer certificate is not in the seal")


def _verify_signature(
    cert: x509.Certificate,
    sig_alg: str,
    digest_alg: HashType,
    signature: bytes,
    data: bytes,
) -> None:
    key = cert.public_key()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey) and sig_alg in (*ECDSA, ECDSA_KEY):
            key.verify(signature, data, ec.ECDSA(ECDSA.get(sig_alg, digest_alg)()))
        elif isinstance(key, rsa.RSAPublicKey) and sig_alg in (*RSA, RSA_KEY):
            key.verify(signature, data, padding.PKCS1v15(), RSA.get(sig_alg, digest_alg)())
        else:
            raise _reject(f"unsupported signature algorithm {sig_alg} for the seal key")
    except InvalidSignature:
        raise _reject("the signature does not verify with the seal certificate") from None


def verify_seal(
    seal: bytes, content: bytes, roots: list[x509.Certificate], at_us: int
) -> x509.Certificate:
    """Check the seal; return the signer certificate or raise Forbidden (see module doc)."""
    try:
        return _verify(seal, content, roots, at_us)
    except der.DerError as exc:
        raise _reject(f"malformed CMS: {exc}") from None
    except CERT_PARSE_ERRORS:
        # cryptography parses certificates lazily: a damaged field surfaces here
        raise _reject("malformed CMS structure or certificate") from None


def _verify(
    seal: bytes, content: bytes, roots: list[x509.Certificate], at_us: int
) -> x509.Certificate:
    info = der.parse(seal).expect(der.SEQUENCE, "ContentInfo").children()
    if len(info) != 2 or der.oid_value(info[0]) != ID_SIGNED_DATA:
        raise _reject("not a CMS SignedData")
    (signed_data,) = info[1].expect(0xA0, "ContentInfo.content").children()
    parts = signed_data.expect(der.SEQUENCE, "SignedData").children()
    if len(parts) < 4:
        raise _reject("truncated SignedData")
    encap = parts[2].expect(der.SEQUENCE, "EncapsulatedContentInfo").children()
    if len(encap) != 1:
        raise _reject("the seal must be detached (no encapsulated content)")
    e_content_type = der.oid_value(encap[0])
    certs: list[x509.Certificate] = []
    rest = parts[3:]
    if rest and rest[0].tag == 0xA0:
        certs = _parse_certificates(rest[0])
        rest = rest[1:]
    if rest and rest[0].tag == 0xA1:
        rest = rest[1:]
    if len(rest) != 1:
        raise _reject("malformed SignedData")
    signer_infos = rest[0].expect(der.SET, "SignerInfos").children()
    if len(signer_infos) != 1:
        raise _reject("the seal must have exactly one SignerInfo")
    si = signer_infos[0].expect(der.SEQUENCE, "SignerInfo").children()
    if len(si) < 6:
        raise _reject("truncated SignerInfo")
    sid, digest_el, signed_attrs, sig_alg_el, signature_el = si[1], si[2], si[3], si[4], si[5]
    digest_oid = _algorithm(digest_el, "DigestAlgorithm")
    if digest_oid not in DIGESTS:
        raise _reject(f"unsupported digest algorithm {digest_oid}")
    digest_name, digest_alg = DIGESTS[digest_oid]
    signed_attrs.expect(0xA0, "signedAttrs")
    attrs = _attributes(signed_attrs)
    if der.oid_value(_single(attrs, ATTR_CONTENT_TYPE, "content-type")) != e_content_type:
        raise _reject("the content-type attribute differs from the encapsulated content type")
    message_digest = (
        _single(attrs, ATTR_MESSAGE_DIGEST, "message-digest")
        .expect(der.OCTET_STRING, "messageDigest")
        .content
    )
    if message_digest != hashlib.new(digest_name, content).digest():
        raise _reject("the message digest does not match the canonical JSON of the record")
    sig_alg = _algorithm(sig_alg_el, "SignatureAlgorithm")
    signer = _find_signer(sid, certs)
    _check_seal_certificate(signer)
    _verify_signature(
        signer,
        sig_alg,
        digest_alg,
        signature_el.expect(der.OCTET_STRING, "signature").content,
        b"\x31" + signed_attrs.raw[1:],
    )
    _chain(signer, certs, roots, at_us)
    return signer

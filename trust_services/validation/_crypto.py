"""Signature checks with cryptography, shared by CMS, OCSP and CRL validation."""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes

from .._der import decode_oid
from ._der_parse import children, tlv

__all__ = ["HASHES_BY_OID", "HASH_NAMES_BY_OID", "verify_signature"]

HASH_NAMES_BY_OID = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_HASH_CLASSES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
HASHES_BY_OID = {oid: _HASH_CLASSES[name] for oid, name in HASH_NAMES_BY_OID.items()}

#: signature algorithm OID → digest name it implies (None: the digest comes separately)
_SIG_DIGESTS: dict[str, str | None] = {
    "1.2.840.10045.4.3.2": "sha256",
    "1.2.840.10045.4.3.3": "sha384",
    "1.2.840.10045.4.3.4": "sha512",
    "1.2.840.113549.1.1.11": "sha256",
    "1.2.840.113549.1.1.12": "sha384",
    "1.2.840.113549.1.1.13": "sha512",
    "1.2.840.113549.1.1.1": None,  # rsaEncryption: digest from digestAlgorithm
    "1.2.840.10045.2.1": None,  # id-ecPublicKey used as a signature algorithm
    "1.3.101.112": None,
    "1.3.101.113": None,
}
RSASSA_PSS = "1.2.840.113549.1.1.10"


def hash_class(name: str) -> type[hashes.HashAlgorithm]:
    return _HASH_CLASSES[name]


def verify_signature(
    public_key: PublicKeyTypes,
    signature: bytes,
    data: bytes,
    *,
    digest: str,
    signature_oid: str | None = None,
    pss_salt: int | None = None,
) -> bool:
    """True when ``signature`` over ``data`` verifies; False for any mismatch.

    ``digest`` is the CMS digestAlgorithm; a signature algorithm that names its own
    digest (ecdsa-with-SHA256 …) wins.
    """
    if signature_oid is not None and signature_oid != RSASSA_PSS:
        implied = _SIG_DIGESTS.get(signature_oid, digest)
        digest = implied or digest
    try:
        algo = _HASH_CLASSES[digest]()
    except KeyError:
        return False
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(algo))
        elif isinstance(public_key, rsa.RSAPublicKey):
            if signature_oid == RSASSA_PSS:
                pad: padding.AsymmetricPadding = padding.PSS(
                    mgf=padding.MGF1(algo),
                    salt_length=pss_salt if pss_salt is not None else algo.digest_size,
                )
            else:
                pad = padding.PKCS1v15()
            public_key.verify(signature, data, pad, algo)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, UnsupportedAlgorithm, ValueError):
        return False
    return True


def der_read(der: bytes) -> tuple[int, bytes]:
    """(tag, contents) of a single DER TLV that fills ``der`` (raises ValueError)."""
    tag, start, stop = tlv(der, 0, len(der))
    if stop != len(der):
        raise ValueError("trailing bytes after a DER value")
    return tag, der[start:stop]


def der_children(der: bytes) -> list[tuple[int, bytes]]:
    """(tag, contents) of each element inside one DER SEQUENCE/SET (raises ValueError)."""
    tag, start, stop = tlv(der, 0, len(der))
    if tag & 0x20 == 0 or stop != len(der):
        raise ValueError("not a single constructed DER value")
    return [(t, der[cs:ce]) for t, cs, ce, _pos in children(der, start, stop)]


def der_oid(contents: bytes) -> str:
    """Dotted form of OBJECT IDENTIFIER contents."""
    return decode_oid(contents)

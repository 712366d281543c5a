"""Detached CAdES baseline signatures and e-seals (ETSI EN 319 122-1): B-B, B-T, B-LT.

>>> # signer = CadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))
>>> # p7s = signer.sign(document_bytes, Level.B_T)          # DER ContentInfo, detached
>>> # seal = signer.sign_json({"aeo_id": "KZ-AEO-2025-000123", "status": "valid"})

Every signature is a detached CMS SignedData (RFC 5652) with the signed attributes
content-type, message-digest, signing-time and signing-certificate-v2 (RFC 5035).
Signatures are built from precomputed templates (:mod:`trust_services.cms`) because this
is the hot path of the ledger (thousands of seals a second); nothing here goes through
pyHanko.

* **B-T** adds an RFC 3161 token over the SignerInfo signature value in the unsigned
  attribute id-aa-signatureTimeStampToken (1.2.840.113549.1.9.16.2.14).
* **B-LT** also embeds the validation data: every certificate needed (signer chain,
  root, TSA chain) in ``SignedData.certificates`` and, in ``SignedData.crls``, OCSP
  responses for the end-entity certificates (RFC 5940 ``id-ri-ocsp-response``) and the
  root's CRL covering each issuing CA.

**JSON records.** :meth:`CadesSigner.sign_json` seals a record over its RFC 8785
(JCS) canonical form, not over the bytes it arrived in, so any key order or whitespace
of the same record verifies. Such a seal carries the signed attribute content-hints
(id-aa-contentHint 1.2.840.113549.1.9.16.2.4, RFC 2634 §2.9) with the description
``application/json; canonicalization=RFC8785`` and content type id-data: a verifier
that finds this hint MUST canonicalise the JSON (:func:`canonical_json`) before
hashing it for the message-digest check.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Any

import rfc8785
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from . import _der
from .cms import (
    ATTR_SIGNATURE_TIMESTAMP,
    ID_DATA,
    SignerTemplate,
    assemble_signed_data,
    attribute,
    build_signed_data,
    ocsp_revocation_info,
    sign_attributes,
)
from .errors import InputError, PkiError, TimestampError, TrustServiceError
from .keystore import SigningKey
from .pki import OrgPki
from .profiles import crl_urls as _crl_urls
from .revocation import RevocationSource
from .tsa import Timestamper

__all__ = [
    "ATTR_CONTENT_HINT",
    "JSON_CONTENT_HINT",
    "CadesSigner",
    "Level",
    "canonical_json",
    "content_hints_attribute",
    "signature_timestamp_time",
    "signature_timestamp_token",
]

ATTR_CONTENT_HINT = "1.2.840.113549.1.9.16.2.4"
JSON_CONTENT_HINT = "application/json; canonicalization=RFC8785"


class Level(StrEnum):
    """CAdES baseline levels (ETSI EN 319 122-1 §6)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"


def content_hints_attribute(description: str, content_type: str = ID_DATA) -> bytes:
    """The content-hints Attribute: ``SEQUENCE { contentDescription UTF8String, contentType }``."""
    if not description:
        raise InputError("a content hint needs a description")
    hints = _der.seq(_der.utf8_string(description), _der.oid(content_type))
    return attribute(ATTR_CONTENT_HINT, hints)


_JSON_HINT_ATTR = content_hints_attribute(JSON_CONTENT_HINT)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise InputError(f"not I-JSON: duplicate member {key!r}")
        result[key] = value
    return result


def canonical_json(obj: Mapping[str, Any] | Sequence[Any] | bytes | str | int | None) -> bytes:
    """The RFC 8785 canonical form of a JSON value (or of JSON text given as bytes)."""
    if isinstance(obj, bytes | bytearray):
        try:
            obj = json.loads(bytes(obj), object_pairs_hook=_no_duplicates)
        except UnicodeDecodeError:
            raise InputError("not JSON: the text is not UTF-8") from None
        except json.JSONDecodeError as exc:
            raise InputError(
                f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
            ) from None
    try:
        return rfc8785.dumps(obj)
    except rfc8785.CanonicalizationError as exc:
        raise InputError(f"JSON cannot be canonicalised (RFC 8785): {exc}") from None
    except (TypeError, ValueError) as exc:
        raise InputError(f"JSON cannot be canonicalised (RFC 8785): {exc}") from None


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _der_of(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string()


class CadesSigner:
    """Signs detached CAdES with one key and certificate; keep one per key (it caches)."""

    def __init__(
        self,
        key: SigningKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        roots: Sequence[x509.Certificate] = (),
        timestamper: Timestamper | None = None,
        revocation: RevocationSource | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.template = SignerTemplate.create(key, certificate, chain)
        self.certificate = certificate
        self.chain = tuple(chain)
        self.roots = tuple(roots)
        self.timestamper = timestamper
        self.revocation = revocation
        self.clock = clock

    @classmethod
    def for_org(
        cls,
        pki: OrgPki,
        label: str = "seal",
        *,
        timestamper: Timestamper | None = None,
        revocation: RevocationSource | None = None,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> CadesSigner:
        """The org's e-seal (``label="seal"``) or an officer's key issued by its CA."""
        certificate = certificate_for_label(pki, label)
        return cls(
            pki.key(label),
            certificate,
            [pki.certificate("issuing")],
            roots=[pki.certificate("root")],
            timestamper=timestamper,
            revocation=revocation,
            clock=clock,
        )

    # ------------------------------------------------------------------ signing
    def sign(
        self, data: bytes, level: Level | str = Level.B_B, *, content_hint: str | None = None
    ) -> bytes:
        """A detached CAdES signature (DER ContentInfo) over ``data`` at ``level``."""
        extra = (content_hints_attribute(content_hint),) if content_hint else ()
        return self._sign_digest(self.template.hash(data), _level(level), extra)

    def sign_json(self, record: Mapping[str, Any] | bytes, level: Level | str = Level.B_B) -> bytes:
        """Seal a JSON record over its RFC 8785 canonical form (with the JSON content hint)."""
        canonical = canonical_json(record)
        return self._sign_digest(self.template.hash(canonical), _level(level), (_JSON_HINT_ATTR,))

    def _sign_digest(self, digest: bytes, level: Level, extra: Sequence[bytes]) -> bytes:
        if level is Level.B_B:
            der, _sig = build_signed_data(
                self.template,
                content_type=ID_DATA,
                message_digest=digest,
                signing_time=self.clock(),
                extra_signed_attributes=extra,
            )
            return der
        if self.timestamper is None:
            raise TimestampError(f"CAdES {level} needs a timestamp authority (none configured)")
        if level is Level.B_LT and self.revocation is None:
            raise TrustServiceError(
                "CAdES B-LT needs a revocation source to embed OCSP responses and CRLs"
            )
        # The timestamp covers the signature value, so the signed attributes are signed
        # first and the SignedData is assembled around them once the token is back.
        signed = sign_attributes(
            self.template,
            content_type=ID_DATA,
            message_digest=digest,
            signing_time=self.clock(),
            extra_signed_attributes=extra,
        )
        token = self._timestamp(signed.signature)
        extra_certs: tuple[bytes, ...] = ()
        revocation_info: tuple[bytes, ...] = ()
        if level is Level.B_LT:
            extra_certs, revocation_info = self._validation_data(token)
        return assemble_signed_data(
            self.template,
            signed,
            content_type=ID_DATA,
            unsigned_attributes=(attribute(ATTR_SIGNATURE_TIMESTAMP, token),),
            extra_certificates=extra_certs,
            revocation_info=sorted(revocation_info),
        )

    def _timestamp(self, signature: bytes) -> bytes:
        assert self.timestamper is not None
        digest_name = self.template.digest
        imprint = hashlib.new(digest_name, signature).digest()
        token = self.timestamper.issue(digest_name, imprint, nonce=secrets.randbits(63))
        if imprint not in token:  # cheap sanity check: the token must carry our imprint
            raise TimestampError("the TSA returned a token over another message imprint")
        return token

    # ------------------------------------------------------------------ B-LT
    def _validation_data(self, token: bytes) -> tuple[tuple[bytes, ...], tuple[bytes, ...]]:
        """Certificates and RevocationInfoChoices for B-LT (signer chain, roots, TSA)."""
        assert self.revocation is not None
        certs: dict[bytes, x509.Certificate] = {}
        for cert in (self.certificate, *self.chain, *self.roots, *_token_certificates(token)):
            certs.setdefault(_der_of(cert), cert)
        by_subject = {c.subject.public_bytes(): c for c in certs.values()}
        revocation: list[bytes] = []
        seen_crls: set[bytes] = set()
        for cert in certs.values():
            if cert.issuer == cert.subject:
                continue  # a trust anchor: no revocation data
            issuer = by_subject.get(cert.issuer.public_bytes())
            if issuer is None:
                raise PkiError(
                    f"cannot embed validation data: the issuer of {_subject(cert)} is unknown"
                )
            item = None
            if not _is_ca(cert):
                item = self._ocsp_item(cert, issuer)
            if item is None:
                item = self._crl_item(cert)
                if item is not None and item in seen_crls:
                    continue
                if item is not None:
                    seen_crls.add(item)
            if item is None:
                raise PkiError(
                    f"cannot embed validation data: no OCSP response or CRL for {_subject(cert)}"
                )
            revocation.append(item)
        return tuple(certs), tuple(revocation)

    def _ocsp_item(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        assert self.revocation is not None
        der = self.revocation.ocsp(cert, issuer)
        if der is None:
            return None
        try:
            response = ocsp.load_der_ocsp_response(der)
        except ValueError:
            raise PkiError(f"the OCSP response about {_subject(cert)} is malformed") from None
        if response.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return None
        if response.certificate_status is ocsp.OCSPCertStatus.REVOKED:
            raise PkiError(f"certificate {_subject(cert)} is revoked: refusing to sign")
        if response.certificate_status is not ocsp.OCSPCertStatus.GOOD:
            return None
        return ocsp_revocation_info(der)

    def _crl_item(self, cert: x509.Certificate) -> bytes | None:
        assert self.revocation is not None
        for url in _crl_urls(cert):
            der = self.revocation.crl(url)
            if der is None:
                continue
            try:
                crl = x509.load_der_x509_crl(der)
            except ValueError:
                raise PkiError(f"the CRL at {url} is malformed") from None
            if crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None:
                raise PkiError(f"certificate {_subject(cert)} is revoked: refusing to sign")
            return der
        return None


def _level(level: Level | str) -> Level:
    try:
        return Level(level)
    except ValueError:
        raise InputError(f"unknown CAdES level {level!r} (one of B-B, B-T, B-LT)") from None


def _token_certificates(token: bytes) -> list[x509.Certificate]:
    from asn1crypto import cms

    try:
        signed = cms.ContentInfo.load(token)["content"]
        return [
            x509.load_der_x509_certificate(choice.chosen.dump())
            for choice in signed["certificates"] or ()
            if choice.name == "certificate"
        ]
    except (ValueError, TypeError, KeyError):
        raise TimestampError("the timestamp token is malformed") from None


def certificate_for_label(pki: OrgPki, label: str) -> x509.Certificate:
    """The certificate of key ``label``: a service certificate or the newest one issued."""
    if label in ("seal", "tsa"):
        return pki.certificate(label)
    matches = [e for e in pki.list_issued() if e.get("label") == label and e.get("revoked") is None]
    if not matches:
        raise PkiError(f"{pki.org} has issued no valid certificate for key {label!r}")
    newest = max(matches, key=lambda e: str(e.get("not_after", "")))
    return pki.issued(int(newest["serial"], 16)).certificate


def signature_timestamp_token(signature_der: bytes) -> tuple[bytes, bytes] | None:
    """(signature value, RFC 3161 token DER) of a CAdES signature's signature timestamp —
    ``openssl ts -verify -token_in -in TOKEN -data VALUE`` checks it — or None (B-B)."""
    from asn1crypto import cms

    try:
        content = cms.ContentInfo.load(signature_der)["content"]
        signer_info = content["signer_infos"][0]
        for attr in signer_info["unsigned_attrs"] or ():
            if attr["type"].dotted == ATTR_SIGNATURE_TIMESTAMP:
                return signer_info["signature"].native, attr["values"][0].dump()
    except (ValueError, TypeError, KeyError, IndexError):
        raise InputError("not a CAdES signature") from None
    return None


def signature_timestamp_time(signature_der: bytes) -> dt.datetime | None:
    """The genTime of the signature timestamp of a CAdES signature, or None (B-B)."""
    from asn1crypto import cms, tsp

    found = signature_timestamp_token(signature_der)
    if found is None:
        return None
    try:
        token = cms.ContentInfo.load(found[1])
        tst = token["content"]["encap_content_info"]["content"].parsed
    except (ValueError, TypeError, KeyError):
        raise InputError("the signature timestamp is not an RFC 3161 token") from None
    if not isinstance(tst, tsp.TSTInfo):
        return None
    when: dt.datetime = tst["gen_time"].native
    return when

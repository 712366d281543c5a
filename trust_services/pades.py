"""PAdES baseline signatures (ETSI EN 319 142-1) B-B, B-T, B-LT and B-LTA with pyHanko.

>>> # signer = PadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))
>>> # signed_pdf = sign_pdf(pdf_bytes, signer, "B-LTA")

Our keys reach pyHanko through :class:`KeyStoreSigner`, a ``pyhanko`` ``Signer`` whose
``async_sign_raw`` calls :meth:`SigningKey.sign` — a key on a PKCS#11 token works the same
as a file key, and the key stays loaded between documents. Our timestamp authority
reaches pyHanko through :class:`TimestamperAdapter` (the in-process
:class:`~trust_services.tsa.TimestampAuthority` or any
:class:`~trust_services.tsa.Timestamper`, e.g. the HTTP client).

* **B-T** adds a signature timestamp;
* **B-LT** embeds, in the document security store (DSS), the certificates, OCSP
  responses and CRLs that validate the signer and TSA chains. They come from a
  :class:`~trust_services.revocation.RevocationSource` (the org's own PKI, in process),
  through a ``ValidationContext`` with ``allow_fetching=False``: signing needs no
  network, and fails when validation data is missing rather than embedding too little;
* **B-LTA** adds a document timestamp over all of it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from asn1crypto import cms as asn1_cms
from asn1crypto import tsp
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.timestamps.common_utils import TimestampRequestError
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .cades import certificate_for_label
from .errors import InputError, PkiError, TimestampError, TrustServiceError
from .keystore import SigningKey
from .pki import OrgPki
from .profiles import crl_urls as _crl_urls
from .revocation import RevocationSource
from .tsa import Timestamper

__all__ = [
    "KeyStoreSigner",
    "PadesLevel",
    "PadesSigner",
    "TimestamperAdapter",
    "async_sign_pdf",
    "sign_pdf",
]

_DIGEST_BY_OID = {
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}


class _FetchingWarningFilter(logging.Filter):
    """Drop pyHanko's warning that fetching is off: offline signing is what we want."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_FetchingWarningFilter())


class PadesLevel(StrEnum):
    """PAdES baseline levels (ETSI EN 319 142-1 §6)."""

    B_B = "B-B"
    B_T = "B-T"
    B_LT = "B-LT"
    B_LTA = "B-LTA"


def _asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class KeyStoreSigner(signers.Signer):
    """A pyHanko signer backed by a :class:`SigningKey` (file store or PKCS#11 token)."""

    def __init__(
        self,
        key: SigningKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
    ) -> None:
        super().__init__(
            signing_cert=_asn1(certificate),
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [_asn1(c) for c in chain]
            ),
            embed_roots=False,
        )
        self._key = key
        if key.algorithm.is_ec:
            # the longest DER Ecdsa-Sig-Value for the curve (size estimation only)
            order_bytes = 32 if key.algorithm.value == "ec-p256" else 48
            self._placeholder = bytes(2 * (3 + order_bytes) + 2)
        else:
            self._placeholder = bytes(384)

    async def async_sign_raw(
        self, data: bytes, digest_algorithm: str, dry_run: bool = False
    ) -> bytes:
        if dry_run:
            return self._placeholder
        return self._key.sign(data, digest_algorithm)


class TimestamperAdapter(TimeStamper):
    """pyHanko's view of our TSA: requests are handed over as DER and answered in process.

    An object with ``respond(request_der) -> response_der`` (the in-process
    :class:`~trust_services.tsa.TimestampAuthority`) gets the request as is; any other
    :class:`~trust_services.tsa.Timestamper` is asked for a token over the imprint.
    """

    def __init__(self, timestamper: Timestamper) -> None:
        super().__init__(include_nonce=True)  # type: ignore[no-untyped-call]
        self._timestamper = timestamper

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        respond = getattr(self._timestamper, "respond", None)
        try:
            if callable(respond):
                return tsp.TimeStampResp.load(respond(req.dump()))
            imprint = req["message_imprint"]
            digest = _DIGEST_BY_OID.get(imprint["hash_algorithm"]["algorithm"].dotted)
            if digest is None:
                raise TimestampError("pyHanko asked for a timestamp with an unsupported digest")
            token = self._timestamper.issue(
                digest,
                imprint["hashed_message"].native,
                nonce=req["nonce"].native,
                cert_req=True,
            )
            return tsp.TimeStampResp(
                {
                    "status": {"status": "granted"},
                    "time_stamp_token": asn1_cms.ContentInfo.load(token),
                }
            )
        except (ValueError, TypeError) as exc:
            raise TimestampError(f"the TSA returned a malformed response: {exc}") from None


class PadesSigner:
    """Everything needed to sign PDFs with one key; keep it (the key stays loaded)."""

    def __init__(
        self,
        key: SigningKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate] = (),
        *,
        roots: Sequence[x509.Certificate] = (),
        timestamper: Timestamper | None = None,
        revocation: RevocationSource | None = None,
        signer_name: str | None = None,
    ) -> None:
        self.key = key
        self.certificate = certificate
        self.chain = tuple(chain)
        self.roots = tuple(roots)
        self.revocation = revocation
        self.digest = key.algorithm.default_digest
        self.pyhanko_signer = KeyStoreSigner(key, certificate, chain)
        self.timestamper = TimestamperAdapter(timestamper) if timestamper is not None else None
        self.signer_name = signer_name

    @classmethod
    def for_org(
        cls,
        pki: OrgPki,
        label: str = "seal",
        *,
        timestamper: Timestamper | None = None,
        revocation: RevocationSource | None = None,
    ) -> PadesSigner:
        """The org's e-seal (``label="seal"``) or an officer's key issued by its CA."""
        certificate = certificate_for_label(pki, label)
        return cls(
            pki.key(label),
            certificate,
            [pki.certificate("issuing")],
            roots=[pki.certificate("root")],
            timestamper=timestamper,
            revocation=revocation,
        )

    # ------------------------------------------------------------------ validation data
    def validation_context(self, tsa_certs: Iterable[asn1_x509.Certificate] = ()) -> Any:
        """A ValidationContext trusting our roots, fed from the revocation source only."""
        if self.revocation is None:
            raise TrustServiceError(
                "PAdES B-LT/B-LTA needs a revocation source to embed OCSP responses and CRLs"
            )
        certs: dict[bytes, x509.Certificate] = {}
        for cert in (self.certificate, *self.chain, *self.roots):
            certs.setdefault(cert.public_bytes(serialization.Encoding.DER), cert)
        for acert in tsa_certs:
            der = acert.dump()
            certs.setdefault(der, x509.load_der_x509_certificate(der))
        by_subject = {c.subject.public_bytes(): c for c in certs.values()}
        ocsps: list[bytes] = []
        crls: list[bytes] = []
        for cert in certs.values():
            if cert.issuer == cert.subject:
                continue
            issuer = by_subject.get(cert.issuer.public_bytes())
            response = self.revocation.ocsp(cert, issuer) if issuer is not None else None
            if response is not None:
                ocsps.append(response)
            for url in _crl_urls(cert):
                crl = self.revocation.crl(url)
                if crl is not None and crl not in crls:
                    crls.append(crl)
        return ValidationContext(
            trust_roots=[_asn1(r) for r in self.roots],
            other_certs=[_asn1(c) for c in certs.values()],
            allow_fetching=False,
            ocsps=ocsps,
            crls=crls,
            revocation_mode="require",
        )


def _level(level: PadesLevel | str) -> PadesLevel:
    try:
        return PadesLevel(level)
    except ValueError:
        raise InputError(f"unknown PAdES level {level!r} (one of B-B, B-T, B-LT, B-LTA)") from None


def _open_pdf(pdf_bytes: bytes) -> IncrementalPdfFileWriter:
    if not pdf_bytes.lstrip(b"\x00\t\n\f\r ").startswith(b"%PDF-"):
        raise InputError("not a PDF: the file does not start with %PDF-")
    if b"%%EOF" not in pdf_bytes[-1024:]:
        raise InputError("not a PDF: no %%EOF marker at the end (truncated?)")
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf_bytes), strict=True)
    except (PdfError, ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise InputError(f"not a PDF: {_one_line(exc)}") from None
    if writer.prev.encrypted:
        raise InputError("not a PDF: the document is encrypted (decrypt it before signing)")
    return writer


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


async def _tsa_certs(timestamper: TimestamperAdapter, digest: str) -> list[asn1_x509.Certificate]:
    token = await timestamper.async_dummy_response(digest)
    certs = token["content"]["certificates"] or ()
    return [c.chosen for c in certs if c.name == "certificate"]


async def async_sign_pdf(
    pdf_bytes: bytes, signer: PadesSigner, level: PadesLevel | str = PadesLevel.B_B
) -> bytes:
    """Sign ``pdf_bytes`` (an incremental update) at the PAdES baseline ``level``."""
    lvl = _level(level)
    writer = _open_pdf(pdf_bytes)
    timestamper = None
    validation_context = None
    if lvl is not PadesLevel.B_B:
        if signer.timestamper is None:
            raise TimestampError(f"PAdES {lvl} needs a timestamp authority (none configured)")
        timestamper = signer.timestamper
    if lvl in (PadesLevel.B_LT, PadesLevel.B_LTA):
        assert timestamper is not None
        validation_context = signer.validation_context(await _tsa_certs(timestamper, signer.digest))
    meta = signers.PdfSignatureMetadata(
        field_name=_free_field_name(writer),
        md_algorithm=signer.digest,
        subfilter=fields.SigSeedSubFilter.PADES,
        name=signer.signer_name,
        embed_validation_info=validation_context is not None,
        validation_context=validation_context,
        use_pades_lta=lvl is PadesLevel.B_LTA,
    )
    pdf_signer = signers.PdfSigner(meta, signer.pyhanko_signer, timestamper=timestamper)
    try:
        out = await pdf_signer.async_sign_pdf(writer)
    except TrustServiceError:
        raise
    except TimestampRequestError as exc:
        raise TimestampError(f"timestamp refused: {_one_line(exc)}") from None
    except SigningError as exc:
        raise PkiError(f"cannot sign the PDF: {_one_line(exc)}") from None
    except PdfError as exc:
        raise InputError(f"not a PDF: {_one_line(exc)}") from None
    data: bytes = out.getvalue()
    return data


def sign_pdf(
    pdf_bytes: bytes, signer: PadesSigner, level: PadesLevel | str = PadesLevel.B_B
) -> bytes:
    """Synchronous :func:`async_sign_pdf` (not for use inside a running event loop)."""
    return asyncio.run(async_sign_pdf(pdf_bytes, signer, level))


def _free_field_name(writer: IncrementalPdfFileWriter) -> str:
    existing = {name for name, _value, _ref in fields.enumerate_sig_fields(writer.prev)}
    n = 1
    while f"Signature{n}" in existing:
        n += 1
    return f"Signature{n}"

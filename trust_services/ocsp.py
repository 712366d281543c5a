"""An RFC 6960 OCSP responder for an organisation's issuing CA.

The responder signs with its delegated OCSP certificate (id-kp-OCSPSigning, ocsp-nocheck)
and answers from the CA's own index, so a revocation is visible at once. A malformed
request gets ``malformedRequest``; a certificate of another CA gets ``unauthorized``.

>>> # responder = OcspResponder(pki)           # pki unlocked (needs the OCSP key)
>>> # der = responder.respond(request_der)
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from .errors import KeyStoreError
from .pki import REVOCATION_REASONS, OrgPki

__all__ = ["OcspResponder", "build_ocsp_request"]

MAX_OCSP_REQUEST_BYTES = 16 * 1024
_HASHES: dict[str, hashes.HashAlgorithm] = {
    "sha1": hashes.SHA1(),  # noqa: S303 - RFC 6960 CertID hashing, not a signature
    "sha256": hashes.SHA256(),
    "sha384": hashes.SHA384(),
    "sha512": hashes.SHA512(),
}


def build_ocsp_request(
    cert: x509.Certificate, issuer: x509.Certificate, *, nonce: bytes | None = None
) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


class OcspResponder:
    """Answers OCSP requests about certificates issued by ``pki``'s issuing CA."""

    def __init__(
        self,
        pki: OrgPki,
        *,
        validity: dt.timedelta = dt.timedelta(hours=1),
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.pki = pki
        self.issuer = pki.certificate("issuing")
        self.responder_cert = pki.certificate("ocsp")
        key = pki.key("ocsp").certificate_signer()
        if key is None:
            raise KeyStoreError("the OCSP responder key must be a software key")
        self._key = key
        self._digest = hashes.SHA384() if pki.config.algorithm.value == "ec-p384" else None
        self.validity = validity
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        issuer_name = self.issuer.subject.public_bytes()
        issuer_key = _spki_bits(self.issuer)
        self._issuer_hashes = {
            name: (_h(algo, issuer_name), _h(algo, issuer_key)) for name, algo in _HASHES.items()
        }

    def _unsuccessful(self, status: ocsp.OCSPResponseStatus) -> bytes:
        return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(
            serialization.Encoding.DER
        )

    def respond(self, request_der: bytes) -> bytes:
        """A DER OCSPResponse; never raises for bad input."""
        if len(request_der) > MAX_OCSP_REQUEST_BYTES:
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = request.hash_algorithm
            name_hash = request.issuer_name_hash
            key_hash = request.issuer_key_hash
            serial = request.serial_number
            nonce = _nonce(request)
        except (ValueError, x509.UnsupportedGeneralNameType, x509.DuplicateExtension):
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        except Exception:  # cryptography raises UnsupportedAlgorithm for odd hashes
            return self._unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        expected = self._issuer_hashes.get(algorithm.name)
        if expected is None or expected != (name_hash, key_hash):
            return self._unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        return self._sign(serial, algorithm, name_hash, key_hash, nonce)

    def response_for(self, cert: x509.Certificate) -> bytes:
        """A signed response about ``cert`` (for embedding in B-LT signatures)."""
        algo = hashes.SHA256()
        name_hash, key_hash = self._issuer_hashes["sha256"]
        if cert.issuer != self.issuer.subject:
            return self._unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        return self._sign(cert.serial_number, algo, name_hash, key_hash, None)

    def _sign(
        self,
        serial: int,
        algorithm: hashes.HashAlgorithm,
        name_hash: bytes,
        key_hash: bytes,
        nonce: bytes | None,
    ) -> bytes:
        now = self.clock().replace(microsecond=0)
        status = self.pki.status(serial, "issuing")
        if status.status == "good":
            cert_status, rev_time, reason = ocsp.OCSPCertStatus.GOOD, None, None
        elif status.status == "revoked":
            cert_status = ocsp.OCSPCertStatus.REVOKED
            rev_time = status.revoked_at
            flag = REVOCATION_REASONS[status.reason or "unspecified"]
            reason = None if flag is x509.ReasonFlags.unspecified else flag
        else:
            cert_status, rev_time, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                issuer_name_hash=name_hash,
                issuer_key_hash=key_hash,
                serial_number=serial,
                algorithm=algorithm,
                cert_status=cert_status,
                this_update=now,
                next_update=now + self.validity,
                revocation_time=rev_time,
                revocation_reason=reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, self.responder_cert)
            .certificates([self.responder_cert])
        )
        if nonce is not None:
            builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
        response = builder.sign(self._key, self._digest or hashes.SHA256())
        return response.public_bytes(serialization.Encoding.DER)


def _nonce(request: ocsp.OCSPRequest) -> bytes | None:
    try:
        ext = request.extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return None
    return ext.value.nonce


def _h(algorithm: hashes.HashAlgorithm, data: bytes) -> bytes:
    h = hashes.Hash(algorithm)
    h.update(data)
    return h.finalize()


def _spki_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING contents (what CertID's issuerKeyHash hashes)."""
    from asn1crypto import keys

    spki = keys.PublicKeyInfo.load(
        cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return bytes(spki["public_key"].contents[1:])

"""Where revocation data comes from: the signer's own PKI, or the network.

A :class:`RevocationSource` gives the DER OCSP response about a certificate and the DER
CRL behind a distribution-point URL, or None when it has none. Signing at level B-LT
embeds what a source gives; validation asks a source when the signature carries nothing.

>>> # source = PkiRevocationSource(pki)       # in-process, for the org's own certificates
>>> # source.ocsp(seal_cert, issuing_cert)
"""

from __future__ import annotations

from typing import Protocol

from cryptography import x509

from .ocsp import OcspResponder
from .pki import OrgPki

__all__ = ["PkiRevocationSource", "RevocationSource"]


class RevocationSource(Protocol):
    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        """A DER OCSPResponse about ``cert``, or None."""
        ...

    def crl(self, url: str) -> bytes | None:
        """The DER CRL published at ``url``, or None."""
        ...


class PkiRevocationSource:
    """Answers from an organisation's own (unlocked) PKI, without any network."""

    def __init__(self, pki: OrgPki) -> None:
        self.pki = pki
        self._responder = OcspResponder(pki)
        self._crl_urls = {pki.config.endpoints.crl(ca): ca for ca in ("issuing", "root")}

    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        if issuer != self.pki.certificate("issuing"):
            return None
        return self._responder.response_for(cert)

    def crl(self, url: str) -> bytes | None:
        ca = self._crl_urls.get(url)
        return self.pki.crl(ca) if ca else None

"""The creator's identity: MSP id, subject and role attributes from its certificate.

>>> who = identity_of(stub.get_creator())
>>> who.msp_id, who.role, who.attrs.get("sez")
('KZ-CUSTOMS', 'sez-operator', 'KZ-KHORGOS')

Roles travel in the Fabric CA attribute extension (OID 1.2.3.4.5.6.7.8.1) whose value is
the JSON document ``{"attrs": {"role": …, "sez": …}}``. Checking the certificate chain
against the member's anchors is the ledger node's job (embedded) or the MSP's (Fabric);
the contracts decide by MSP id and role.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from cryptography import x509

from .errors import Forbidden
from .stub import Creator

__all__ = ["ROLES", "ROLE_ATTRIBUTE_OID", "Identity", "certificate_attributes", "identity_of"]

ROLE_ATTRIBUTE_OID = x509.ObjectIdentifier("1.2.3.4.5.6.7.8.1")
ROLES = ("admin", "officer", "sez-operator", "verifier", "node")


@dataclass(frozen=True)
class Identity:
    msp_id: str
    subject: str
    role: str | None
    attrs: Mapping[str, str] = field(default_factory=dict)

    def who(self) -> dict[str, str]:
        """The ``by`` block recorded with every step."""
        return {"msp_id": self.msp_id, "subject": self.subject}


@functools.lru_cache(maxsize=1024)
def _parse(certificate_der: bytes) -> tuple[str, tuple[tuple[str, str], ...]]:
    try:
        cert = x509.load_der_x509_certificate(certificate_der)
    except ValueError:
        raise Forbidden("the creator's certificate cannot be parsed") from None
    subject = cert.subject.rfc4514_string()
    try:
        ext = cert.extensions.get_extension_for_oid(ROLE_ATTRIBUTE_OID)
    except x509.ExtensionNotFound:
        return subject, ()
    value = ext.value
    raw = value.value if isinstance(value, x509.UnrecognizedExtension) else b""
    try:
        doc = json.loads(raw)
        attrs = doc["attrs"]
        if not isinstance(attrs, dict):
            raise TypeError
        pairs = tuple(sorted((str(k), str(v)) for k, v in attrs.items() if isinstance(v, str)))
    except (ValueError, KeyError, TypeError):
        raise Forbidden("the creator's role attribute extension is not valid JSON") from None
    return subject, pairs


def certificate_attributes(certificate_der: bytes) -> tuple[str, dict[str, str]]:
    """A certificate's subject (RFC 4514) and role attributes, read as the contracts read
    a creator's; :class:`Forbidden` when it or its attribute extension cannot be parsed."""
    subject, pairs = _parse(certificate_der)
    return subject, dict(pairs)


def identity_of(creator: Creator) -> Identity:
    """Parse the creator (cached by MSP id and certificate bytes: a pure function of them)."""
    if not creator.msp_id:
        raise Forbidden("the creator has no MSP id")
    return _identity(creator.msp_id, bytes(creator.certificate_der))


@functools.lru_cache(maxsize=1024)
def _identity(msp_id: str, certificate_der: bytes) -> Identity:
    # one Identity per creator, shared by its transactions: attrs is a read-only view
    subject, pairs = _parse(certificate_der)
    attrs = dict(pairs)
    return Identity(msp_id, subject, attrs.get("role"), MappingProxyType(attrs))

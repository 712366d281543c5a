"""Signed transaction proposals: what a member identity sends to a ledger node.

>>> signed = make_proposal(identity, "AnchorEvents", [batch_json], channel="caravan")
>>> proposal = parse_proposal(signed.proposal)          # strict; raises ProposalError
>>> verify_signature(signed)                             # raises Rejected("BAD_SIGNATURE")

The format, the strict parser, the signature check and the tx id binding live in
:mod:`chaincode.envelope` (the Fabric chaincode server applies them too, decision 0005);
this module re-exports them with ``node.errors`` (:class:`ProposalError` for
``BAD_PROPOSAL``, :class:`Rejected` otherwise, same codes, statuses and messages) and adds
the signing side: :func:`make_proposal` and :class:`KeySigner`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from chaincode import envelope as _envelope
from chaincode.canonical import canonical_json
from chaincode.envelope import (
    MAX_ARG_BYTES,
    MAX_CERT_BYTES,
    MAX_CHAIN,
    MAX_PROPOSAL_BYTES,
    NONCE_BYTES,
    VERSION,
    Proposal,
    ProposalRefused,
    digest_for,
    tx_id_for,
)

from .errors import NodeError, ProposalError, Rejected

__all__ = [
    "MAX_ARG_BYTES",
    "MAX_CERT_BYTES",
    "MAX_CHAIN",
    "MAX_PROPOSAL_BYTES",
    "KeySigner",
    "Proposal",
    "ProposalSigner",
    "SignedProposal",
    "check_envelope",
    "digest_for",
    "make_proposal",
    "node_error",
    "parse_proposal",
    "tx_id_for",
    "verify_signature",
]


def node_error(exc: ProposalRefused) -> NodeError:
    """The node error for a refusal: ProposalError for BAD_PROPOSAL, Rejected otherwise."""
    if exc.code == "BAD_PROPOSAL" and exc.status == 400:
        return ProposalError(exc.message)
    return Rejected(exc.code, exc.message, exc.status)


class SignedProposal(_envelope.SignedProposal):
    """Signed proposal bytes plus the creator certificate and its CA chain (DER)."""

    @classmethod
    def from_json(cls, value: Any) -> Self:
        try:
            return super().from_json(value)
        except ProposalRefused as exc:
            raise ProposalError(exc.message) from None


def parse_proposal(data: bytes) -> Proposal:
    """Parse and check proposal bytes strictly; they must be canonical JSON."""
    try:
        return _envelope.parse_proposal(data)
    except ProposalRefused as exc:
        raise node_error(exc) from None


def verify_signature(signed: _envelope.SignedProposal) -> None:
    """Check the signature with the carried certificate's key (raises Rejected)."""
    try:
        _envelope.verify_signature(signed)
    except ProposalRefused as exc:
        raise node_error(exc) from None


def check_envelope(signed: _envelope.SignedProposal, channel: str) -> Proposal:
    """Parse, channel, chain length and signature (raises ProposalError or Rejected)."""
    try:
        return _envelope.check_envelope(signed, channel)
    except ProposalRefused as exc:
        raise node_error(exc) from None


class ProposalSigner(Protocol):
    """Who signs: an MSP id, a certificate (+ CA chain) and a key (a trust_services
    SigningKey fits: ``sign(data, digest)``)."""

    @property
    def msp_id(self) -> str: ...

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def chain(self) -> Sequence[x509.Certificate]: ...

    def sign(self, data: bytes, digest: str) -> bytes: ...


def make_proposal(
    signer: ProposalSigner,
    function: str,
    args: Sequence[str],
    *,
    channel: str,
    timestamp: tuple[int, int],
    nonce: bytes | None = None,
) -> SignedProposal:
    """Build and sign a proposal (the nonce is random unless given)."""
    cert_der = signer.certificate.public_bytes(Encoding.DER)
    cert_sha256 = hashlib.sha256(cert_der).hexdigest()
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    body = {
        "args": list(args),
        "channel": channel,
        "creator": {"cert_sha256": cert_sha256, "msp_id": signer.msp_id},
        "function": function,
        "nonce": base64.b64encode(nonce).decode("ascii"),
        "timestamp": [timestamp[0], timestamp[1]],
        "tx_id": tx_id_for(nonce, signer.msp_id, cert_sha256),
        "v": VERSION,
    }
    data = canonical_json(body)
    signature = signer.sign(data, digest_for(signer.certificate.public_key()))
    chain = tuple(c.public_bytes(Encoding.DER) for c in signer.chain)
    return SignedProposal(data, signature, cert_der, chain)


@dataclass(frozen=True)
class KeySigner:
    """A member identity that signs with a key store key (never the key bytes)."""

    msp_id: str
    certificate: x509.Certificate
    chain: Sequence[x509.Certificate]
    key: _SigningKey

    def sign(self, data: bytes, digest: str) -> bytes:
        return self.key.sign(data, digest)


class _SigningKey(Protocol):
    def sign(self, data: bytes, digest: str) -> bytes: ...

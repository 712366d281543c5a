"""Is a proposal's creator a trusted, unrevoked identity of a consortium member?

>>> verifier = CreatorVerifier()
>>> creator = verifier.check(view, signed, proposal)   # chaincode Creator, or Rejected

The trust list is ledger state (chaincode/registry.py): the creator's MSP must be a
member; its certificate must chain, through the CA certificates carried with the
proposal, to one of that member's *granted* root anchors, every certificate valid at the
transaction time (``chaincode.seal.verify_chain`` — the same rule the contracts apply to
seals); and no certificate of the path may be revoked, at or before the transaction
time, by the member's CRL on the ledger (``PublishCrl``). Block 0 is special: its
``InitLedger`` creator is checked against the anchors in the genesis argument itself.

Chain results are cached by certificate bytes until the trust list changes (the ledger
calls :meth:`invalidate` after any block that writes member, anchor or CRL keys).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

from chaincode.errors import Forbidden
from chaincode.registry import path_revocation, revocation_message
from chaincode.seal import load_certificate, verify_chain
from chaincode.stub import Creator, create_composite_key
from chaincode.timeutil import datetime_us

from ..errors import Rejected
from ..proposal import Proposal, SignedProposal
from .stub import StateView

__all__ = ["TRUST_PREFIXES", "CreatorVerifier"]

#: state keys whose change invalidates cached trust decisions
TRUST_PREFIXES = ("\x00member\x00", "\x00anchor\x00", "\x00crl\x00")


@dataclass(frozen=True)
class _Path:
    certs: tuple[x509.Certificate, ...]  # creator, intermediates…, root
    not_before_us: int
    not_after_us: int


def _untrusted(message: str) -> Rejected:
    return Rejected("UNTRUSTED_CREATOR", message)


class CreatorVerifier:
    """Checks creators against the trust list on the ledger; caches by certificate."""

    def __init__(self) -> None:
        self._paths: dict[tuple[str, bytes, tuple[bytes, ...]], _Path] = {}
        self._crls: dict[tuple[str, str], Any] = {}

    def invalidate(self) -> None:
        self._paths.clear()
        self._crls.clear()

    # ------------------------------------------------------------------ checks
    def check(self, view: StateView, signed: SignedProposal, proposal: Proposal) -> Creator:
        if hashlib.sha256(signed.certificate).hexdigest() != proposal.cert_sha256:
            raise Rejected(
                "BAD_PROPOSAL", "the carried certificate is not the one the proposal names", 400
            )
        at_us = proposal.time_us
        key = (proposal.msp_id, signed.certificate, signed.chain)
        path = self._paths.get(key)
        if path is None:
            roots = self._roots(view, proposal.msp_id)
            path = self._build(signed, roots, at_us, proposal.msp_id)
            self._paths[key] = path
        if not path.not_before_us <= at_us <= path.not_after_us:
            raise _untrusted("the creator's certificate chain is not valid at the transaction time")
        self._not_revoked(view, proposal.msp_id, path, at_us)
        return Creator(proposal.msp_id, signed.certificate)

    def check_genesis(
        self, signed: SignedProposal, proposal: Proposal, genesis: dict[str, Any]
    ) -> Creator:
        """Block 0: the InitLedger creator against the anchors it brings."""
        if hashlib.sha256(signed.certificate).hexdigest() != proposal.cert_sha256:
            raise Rejected(
                "BAD_PROPOSAL", "the carried certificate is not the one the proposal names", 400
            )
        roots: list[x509.Certificate] = []
        for member in genesis.get("members", []):
            if isinstance(member, dict) and member.get("msp_id") == proposal.msp_id:
                for anchor in member.get("anchors", []):
                    if isinstance(anchor, dict) and anchor.get("kind") == "root":
                        roots.append(_certificate(anchor.get("certificate")))
        if not roots:
            raise _untrusted(f"{proposal.msp_id} is not a founding member in the genesis")
        path = self._build(signed, roots, proposal.time_us, proposal.msp_id)
        if not path.not_before_us <= proposal.time_us <= path.not_after_us:
            raise _untrusted("the creator's certificate chain is not valid at the transaction time")
        return Creator(proposal.msp_id, signed.certificate)

    # --------------------------------------------------------------- internals
    def _roots(self, view: StateView, msp_id: str) -> list[x509.Certificate]:
        if view.get(create_composite_key("member", [msp_id])) is None:
            raise _untrusted(f"{msp_id} is not a member of the consortium")
        start = create_composite_key("anchor", [msp_id])
        roots = []
        for _key, _ver, raw in view.range(start, start + "\U0010ffff"):
            anchor = json.loads(raw)
            if anchor.get("kind") == "root" and anchor.get("status") == "granted":
                roots.append(_certificate(anchor["certificate"]))
        if not roots:
            raise _untrusted(f"{msp_id} has no granted root anchor")
        return roots

    def _build(
        self, signed: SignedProposal, roots: Sequence[x509.Certificate], at_us: int, owner: str
    ) -> _Path:
        try:
            cert = load_certificate(signed.certificate)
            carried = [load_certificate(c) for c in signed.chain]
        except ValueError:
            raise _untrusted("a certificate of the creator's chain cannot be parsed") from None
        try:
            certs = verify_chain(cert, carried, list(roots), at_us, "creator", owner=owner)
        except Forbidden as exc:
            raise _untrusted(exc.message) from None
        nb = max(datetime_us(c.not_valid_before_utc) for c in certs)
        na = min(datetime_us(c.not_valid_after_utc) for c in certs)
        return _Path(tuple(certs), nb, na)

    def _not_revoked(self, view: StateView, msp_id: str, path: _Path, at_us: int) -> None:
        def crl_of(aki: str) -> Any:
            if (msp_id, aki) not in self._crls:
                found = view.get(create_composite_key("crl", [msp_id, aki]))
                self._crls[(msp_id, aki)] = None if found is None else json.loads(found[1])
            return self._crls[(msp_id, aki)]

        revoked = path_revocation(path.certs, crl_of, at_us)
        if revoked is not None:
            raise Rejected("REVOKED_CREATOR", revocation_message("creator", path.certs, revoked))


def _certificate(value: object) -> x509.Certificate:
    try:
        return load_certificate(base64.b64decode(str(value), validate=True))
    except ValueError:
        raise _untrusted("a root anchor on the ledger cannot be parsed") from None

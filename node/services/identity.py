"""Who is calling: a certificate chain checked against the trust list on the ledger.

>>> # check = caller_trust(ctx)
>>> # member = check(certificate, carried_ca_certificates)   # TrustedMember or 403
>>> # member.msp_id, member.path                             # 'KZ-CUSTOMS', [cert, CA, root]

The rule is the one the node applies to a proposal's creator
(``node.embedded.creators``): the certificate chains, through the carried CA
certificates, to a **granted root anchor** of a consortium member
(``chaincode.seal.verify_chain``, every certificate valid now), and no certificate of
the path is revoked, at or before now, by its issuer's CRL on the ledger
(``PublishCrl``; ``chaincode.registry.creator_revocation``). Unlike a creator, a caller
names no MSP: the member is the one whose root anchor ends the path.

The trust list and CRLs are read through contract queries (``GetMembers``,
``GetTrustList``, ``GetCrls``) and kept per ledger height, so a new block (which may
change them) is seen by the next request; decisions are cached per certificate chain
for the same height. Refusals are :class:`UntrustedIdentity` (403 ``UNTRUSTED_CALLER``)
or :class:`RevokedIdentity` (403 ``REVOKED_CALLER``).
"""

from __future__ import annotations

import base64
import binascii
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.errors import Forbidden
from chaincode.registry import path_revocation, revocation_message
from chaincode.seal import load_certificate, verify_chain
from chaincode.timeutil import datetime_us

from ..errors import NodeError
from .context import NodeContext

__all__ = [
    "RevokedIdentity",
    "TrustSnapshot",
    "TrustedMember",
    "UntrustedIdentity",
    "caller_trust",
    "ledger_height",
]

#: decisions kept per height (a bounded cache: a flood of distinct chains cannot grow it)
_MAX_DECISIONS = 4096


class UntrustedIdentity(NodeError):
    """403: the certificate does not chain to a granted root anchor of any member."""

    code = "UNTRUSTED_CALLER"
    status = 403


class RevokedIdentity(NodeError):
    """403: a certificate of the caller's path is on its issuer's CRL on the ledger."""

    code = "REVOKED_CALLER"
    status = 403


@dataclass(frozen=True)
class TrustedMember:
    """A caller certificate the trust list accepts: its member and its verified path."""

    msp_id: str
    certificate: x509.Certificate
    path: tuple[x509.Certificate, ...]

    @property
    def not_before_us(self) -> int:
        return max(datetime_us(c.not_valid_before_utc) for c in self.path)

    @property
    def not_after_us(self) -> int:
        return min(datetime_us(c.not_valid_after_utc) for c in self.path)


@dataclass(frozen=True)
class TrustSnapshot:
    """The members' granted root anchors and CRLs at one ledger height."""

    height: int
    roots: dict[str, list[x509.Certificate]]
    crls: dict[str, dict[str, dict[str, Any]]]  # msp_id -> issuer_key_id -> stored CRL
    decisions: dict[tuple[bytes, tuple[bytes, ...]], TrustedMember] = field(default_factory=dict)


def ledger_height(ctx: NodeContext) -> int:
    """The ledger's height (cheap: no counting)."""
    return ctx.ledger.height


def _anchor_certificate(value: object) -> x509.Certificate | None:
    try:
        return load_certificate(base64.b64decode(str(value), validate=True))
    except (ValueError, binascii.Error):
        return None  # an anchor the contract accepted always parses; skip, never crash


def load_snapshot(ctx: NodeContext, height: int) -> TrustSnapshot:
    """Read the trust list (granted root anchors of members) and every member's CRLs."""
    members = {str(m["msp_id"]) for m in ctx.query("GetMembers")}
    roots: dict[str, list[x509.Certificate]] = {}
    for anchor in ctx.query("GetTrustList"):
        msp_id = anchor.get("msp_id")
        if msp_id not in members or anchor.get("kind") != "root":
            continue
        if anchor.get("status") != "granted":
            continue
        cert = _anchor_certificate(anchor.get("certificate"))
        if cert is not None:
            roots.setdefault(str(msp_id), []).append(cert)
    crls = {
        msp_id: {str(c["issuer_key_id"]): c for c in ctx.query("GetCrls", {"msp_id": msp_id})}
        for msp_id in sorted(members)
    }
    return TrustSnapshot(height, roots, crls)


def _decide(
    snapshot: TrustSnapshot,
    certificate: x509.Certificate,
    chain: Sequence[x509.Certificate],
    now_us: int,
) -> TrustedMember:
    try:
        cert = load_certificate(certificate.public_bytes(Encoding.DER))
        carried = [load_certificate(c.public_bytes(Encoding.DER)) for c in chain]
    except ValueError:
        raise UntrustedIdentity("a certificate of the caller's chain cannot be parsed") from None
    issuer = certificate.issuer
    reasons: list[str] = []
    # try the members whose root issued the top of the chain first: usually one
    candidates = sorted(
        snapshot.roots,
        key=lambda msp: (
            not any(
                r.subject == issuer or any(c.issuer == r.subject for c in carried)
                for r in snapshot.roots[msp]
            )
        ),
    )
    for msp_id in candidates:
        try:
            path = verify_chain(
                cert, carried, snapshot.roots[msp_id], now_us, "caller", owner=msp_id
            )
        except Forbidden as exc:
            reasons.append(exc.message)
            continue
        _not_revoked(snapshot, msp_id, path, now_us)
        return TrustedMember(msp_id, certificate, tuple(path))
    valid_now = [r for r in reasons if "not valid at" in r]
    if valid_now:  # it chained, but a certificate is expired or not yet valid
        raise UntrustedIdentity(valid_now[0].replace("the transaction time", "this time"))
    raise UntrustedIdentity(
        "the caller certificate does not chain to a granted root anchor of any member "
        "(the trust list on the ledger)"
    )


def _not_revoked(
    snapshot: TrustSnapshot, msp_id: str, path: Sequence[x509.Certificate], now_us: int
) -> None:
    revoked = path_revocation(path, snapshot.crls.get(msp_id, {}).get, now_us)
    if revoked is not None:
        raise RevokedIdentity(revocation_message("caller", path, revoked))


def caller_trust(
    ctx: NodeContext,
) -> Callable[[x509.Certificate, list[x509.Certificate]], TrustedMember]:
    """The check of a caller's certificate (+ carried CA certificates) at the node's now.

    Returns the member whose granted root anchor ends the path; raises
    :class:`UntrustedIdentity` or :class:`RevokedIdentity` (both 403). Thread-safe.
    """
    lock = threading.Lock()
    current: list[TrustSnapshot] = []

    def snapshot() -> TrustSnapshot:
        height = ledger_height(ctx)
        with lock:
            if current and current[0].height == height:
                return current[0]
        fresh = load_snapshot(ctx, height)
        with lock:
            current[:] = [fresh]
        return fresh

    def check(certificate: x509.Certificate, chain: list[x509.Certificate]) -> TrustedMember:
        snap = snapshot()
        key = (
            certificate.public_bytes(Encoding.DER),
            tuple(c.public_bytes(Encoding.DER) for c in chain),
        )
        found = snap.decisions.get(key)
        now_us = ctx.now_us()
        if found is not None and found.not_before_us <= now_us <= found.not_after_us:
            return found
        decided = _decide(snap, certificate, chain, now_us)
        if len(snap.decisions) >= _MAX_DECISIONS:
            snap.decisions.clear()
        snap.decisions[key] = decided
        return decided

    return check

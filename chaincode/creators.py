"""Is a proposal's creator a trusted, unrevoked identity of a consortium member?

>>> verifier = CreatorVerifier()
>>> creator = verifier.check(reader, signed, proposal)   # Creator, or ProposalRefused

The trust list is ledger state (chaincode/registry.py): the creator's MSP must be a
member; its certificate must chain, through the CA certificates carried with the
proposal, to one of that member's *granted* root anchors, every certificate valid at the
transaction time (``chaincode.seal.verify_chain`` — the same rule the contracts apply to
seals); and no certificate of the path may be revoked, at or before the transaction
time, by the member's CRL on the ledger (``PublishCrl``). Block 0 is special: its
``InitLedger`` creator is checked against the anchors in the genesis argument itself.

The member's granted roots and the CAs it has published CRLs for come from one derived
record, ``trust~MSP`` (``chaincode.registry.trust_record``): one read, and a CRL is read
only for a CA of the path that has one. A ledger written before that record existed is
read the older way (the member, its anchors, a CRL read per CA of the path).

State is read through a :class:`TrustReader` (``get_state`` and partial composite key
ranges: a subset of the Stub), so the embedded ledger's committed view and the Fabric
chaincode server's stub both feed it. Two caching modes:

- ``CreatorVerifier()``: chain results and CRLs are cached by certificate bytes until
  :meth:`invalidate` (the embedded ledger calls it after any block that writes member,
  anchor or CRL keys);
- ``CreatorVerifier(reread=True)``: for a server that cannot know when the trust list
  changes (a Fabric chaincode): the trust record and the published CRLs of the path are
  read on every check (so they are in the transaction's read set) and only the work done
  on equal bytes is cached (parsing the record, chain building, CRL parsing).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography import x509

from .envelope import Proposal, ProposalRefused, SignedProposal
from .errors import Forbidden
from .registry import path_revocation, revocation_message
from .seal import load_certificate, verify_chain
from .stub import Creator, create_composite_key
from .timeutil import datetime_us

__all__ = ["TRUST_PREFIXES", "CreatorVerifier", "TrustReader"]

#: state keys whose change invalidates cached trust decisions
TRUST_PREFIXES = ("\x00member\x00", "\x00anchor\x00", "\x00crl\x00", "\x00trust\x00")
_CACHE_LIMIT = 10_000


class TrustReader(Protocol):
    """The state reads a creator check needs (a Stub has both)."""

    def get_state(self, key: str) -> bytes | None: ...

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> Iterable[tuple[str, bytes]]: ...


@dataclass(frozen=True)
class _Trust:
    roots: tuple[str, ...]  # granted root anchors, base64 DER, in fingerprint order
    crl_issuers: frozenset[str] | None  # None: unknown (a ledger without trust~MSP)


@dataclass(frozen=True)
class _Path:
    certs: tuple[x509.Certificate, ...]  # creator, intermediates…, root
    not_before_us: int
    not_after_us: int


def _untrusted(message: str) -> ProposalRefused:
    return ProposalRefused("UNTRUSTED_CREATOR", message)


def _not_named() -> ProposalRefused:
    return ProposalRefused(
        "BAD_PROPOSAL", "the carried certificate is not the one the proposal names", 400
    )


class CreatorVerifier:
    """Checks creators against the trust list on the ledger; see the module docstring."""

    def __init__(self, *, reread: bool = False) -> None:
        self.reread = reread
        self._paths: dict[tuple[Any, ...], _Path] = {}
        self._crls: dict[tuple[str, str], Any] = {}
        self._crl_bytes: dict[tuple[str, str], tuple[bytes, Any]] = {}
        self._trusts: dict[str, _Trust] = {}
        self._trust_bytes: dict[bytes, _Trust] = {}

    def invalidate(self) -> None:
        self._paths.clear()
        self._crls.clear()
        self._crl_bytes.clear()
        self._trusts.clear()
        self._trust_bytes.clear()

    # ------------------------------------------------------------------ checks
    def check(self, reader: TrustReader, signed: SignedProposal, proposal: Proposal) -> Creator:
        """The proposal's creator, or :class:`ProposalRefused` (UNTRUSTED/REVOKED_CREATOR)."""
        if hashlib.sha256(signed.certificate).hexdigest() != proposal.cert_sha256:
            raise _not_named()
        at_us = proposal.time_us
        msp_id = proposal.msp_id
        trust: _Trust | None = None
        if self.reread:
            trust = self._read_trust(reader, msp_id)
            key: tuple[Any, ...] = (msp_id, signed.certificate, signed.chain, trust.roots)
        else:
            key = (msp_id, signed.certificate, signed.chain)
        path = self._paths.get(key)
        if path is None:
            if trust is None:
                trust = self._trust(reader, msp_id)
            path = self._build(signed, [_certificate(r) for r in trust.roots], at_us, msp_id)
            if len(self._paths) >= _CACHE_LIMIT:
                self._paths.clear()
            self._paths[key] = path
        if not path.not_before_us <= at_us <= path.not_after_us:
            raise _untrusted("the creator's certificate chain is not valid at the transaction time")
        if trust is None:
            trust = self._trust(reader, msp_id)
        self._not_revoked(reader, msp_id, path, at_us, trust.crl_issuers)
        return Creator(msp_id, signed.certificate)

    def check_genesis(
        self, signed: SignedProposal, proposal: Proposal, genesis: dict[str, Any]
    ) -> Creator:
        """Block 0: the InitLedger creator against the anchors it brings."""
        if hashlib.sha256(signed.certificate).hexdigest() != proposal.cert_sha256:
            raise _not_named()
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
    def _trust(self, reader: TrustReader, msp_id: str) -> _Trust:
        """:meth:`_read_trust`, cached until :meth:`invalidate` (not in reread mode)."""
        found = self._trusts.get(msp_id)
        if found is None:
            found = self._trusts[msp_id] = self._read_trust(reader, msp_id)
        return found

    def _read_trust(self, reader: TrustReader, msp_id: str) -> _Trust:
        """The member's granted roots and CRL issuers, read from the ledger now."""
        raw = reader.get_state(create_composite_key("trust", [msp_id]))
        if raw is None:
            return self._legacy_trust(reader, msp_id)
        trust = self._trust_bytes.get(raw)
        if trust is None:
            record = json.loads(raw)
            roots = tuple(str(r["certificate"]) for r in record["roots"])
            trust = _Trust(roots, frozenset(record["crl_issuers"]))
            if len(self._trust_bytes) >= _CACHE_LIMIT:
                self._trust_bytes.clear()
            self._trust_bytes[raw] = trust
        if not trust.roots:
            raise _untrusted(f"{msp_id} has no granted root anchor")
        return trust

    @staticmethod
    def _legacy_trust(reader: TrustReader, msp_id: str) -> _Trust:
        """A ledger written before ``trust~MSP``: the member and its anchors."""
        if reader.get_state(create_composite_key("member", [msp_id])) is None:
            raise _untrusted(f"{msp_id} is not a member of the consortium")
        roots = []
        for _key, raw in reader.get_state_by_partial_composite_key("anchor", [msp_id]):
            anchor = json.loads(raw)
            if anchor.get("kind") == "root" and anchor.get("status") == "granted":
                roots.append(str(anchor["certificate"]))
        if not roots:
            raise _untrusted(f"{msp_id} has no granted root anchor")
        return _Trust(tuple(roots), None)

    @staticmethod
    def _build(
        signed: SignedProposal, roots: Sequence[x509.Certificate], at_us: int, owner: str
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

    def _not_revoked(
        self,
        reader: TrustReader,
        msp_id: str,
        path: _Path,
        at_us: int,
        crl_issuers: frozenset[str] | None,
    ) -> None:
        def crl_of(aki: str) -> Any:
            if (msp_id, aki) not in self._crls:
                found = reader.get_state(create_composite_key("crl", [msp_id, aki]))
                self._crls[(msp_id, aki)] = None if found is None else json.loads(found)
            return self._crls[(msp_id, aki)]

        def crl_now(aki: str) -> Any:
            found = reader.get_state(create_composite_key("crl", [msp_id, aki]))
            if found is None:
                return None
            cached = self._crl_bytes.get((msp_id, aki))
            if cached is not None and cached[0] == found:
                return cached[1]
            parsed = json.loads(found)
            self._crl_bytes[(msp_id, aki)] = (found, parsed)
            return parsed

        read = crl_now if self.reread else crl_of

        def published(aki: str) -> Any:
            return read(aki) if crl_issuers is None or aki in crl_issuers else None

        revoked = path_revocation(path.certs, published, at_us)
        if revoked is not None:
            raise ProposalRefused(
                "REVOKED_CREATOR", revocation_message("creator", path.certs, revoked)
            )


def _certificate(value: object) -> x509.Certificate:
    return _certificate_of(str(value))


@functools.lru_cache(maxsize=256)
def _certificate_of(value: str) -> x509.Certificate:
    try:
        return load_certificate(base64.b64decode(value, validate=True))
    except ValueError:
        raise _untrusted("a root anchor on the ledger cannot be parsed") from None

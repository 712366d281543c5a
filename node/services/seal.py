"""Seal a record with a hosted organisation's e-seal, as the AEO contract expects it.

>>> # sealers = OrgSealers(node.pkis, clock=node.clock)
>>> # sealed = sealers.seal("KZ-CUSTOMS", record, caller_msp="KZ-CUSTOMS", caller_role="officer")
>>> # {"record": record, "record_hash": sealed.record_hash, "seal": sealed.seal}  # IssueAeo arg

The seal is a detached CAdES over the record's RFC 8785 canonical JSON, made with the
organisation's ``seal`` key (``CadesSigner.for_org``): B-B, or B-T with a signature
timestamp from the organisation's own TSA (in process, sharing the TSA's serial file) —
exactly what :func:`node.services.aeo.prepare_issue` puts in an ``IssueAeo`` /
``AmendAeo`` / … argument. :func:`seal_record` is the one place a record is sealed
(the services, the API and the CLI all call it). Only an ``admin`` or ``officer`` of
that organisation may ask for it (the key is the administration's; who may then write
the record is the contract's rule).
"""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from chaincode.canonical import CanonicalJsonError, sha256_hex
from trust_services.cades import CadesSigner, Level
from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki
from trust_services.tsa import TimestampAuthority

from .context import Clock
from .errors import Forbidden, InvalidArguments, NotFound

__all__ = ["SEALING_ROLES", "OrgSealers", "SealedRecord", "seal_record"]

#: roles whose holders may have a record sealed with their organisation's e-seal
SEALING_ROLES = ("admin", "officer")


@dataclass(frozen=True)
class SealedRecord:
    record_hash: str  #: SHA-256 hex of the record's canonical JSON
    seal: str  #: base64 detached CAdES over the canonical JSON
    sealed_by: str  #: the e-seal certificate's subject (RFC 4514), as the contract records it

    def to_json(self) -> dict[str, str]:
        return {"record_hash": self.record_hash, "seal": self.seal, "sealed_by": self.sealed_by}


def seal_record(signer: CadesSigner, record: Any, level: Level | str = Level.B_B) -> SealedRecord:
    """``record``'s canonical SHA-256 and ``signer``'s detached CAdES seal over it."""
    if not isinstance(record, dict):
        raise InvalidArguments("the record to seal is a JSON object")
    try:
        record_hash = sha256_hex(record)
        seal = signer.sign_json(record, level)
    except CanonicalJsonError as exc:
        raise InvalidArguments(f"the record is not canonical JSON: {exc}") from None
    except TrustServiceError as exc:
        raise InvalidArguments(f"cannot seal the record: {exc}") from None
    return SealedRecord(
        record_hash,
        base64.b64encode(seal).decode("ascii"),
        signer.certificate.subject.rfc4514_string(),
    )


class OrgSealers:
    """One :class:`CadesSigner` per hosted organisation (created on first use)."""

    def __init__(self, pkis: Mapping[str, OrgPki], *, clock: Clock | None = None) -> None:
        self.pkis = dict(pkis)
        self.clock = clock
        self._signers: dict[tuple[str, bool], CadesSigner] = {}
        self._lock = threading.Lock()

    @property
    def orgs(self) -> list[str]:
        return sorted(self.pkis)

    def _now(self) -> dt.datetime:
        if self.clock is None:
            return dt.datetime.now(dt.UTC)
        return dt.datetime.fromtimestamp(self.clock() / 1e9, dt.UTC)

    def _signer(self, org: str, level: Level) -> CadesSigner:
        """The org's e-seal; for B-T with its own TSA (built on first use)."""
        timestamped = level is not Level.B_B
        with self._lock:
            signer = self._signers.get((org, timestamped))
            if signer is None:
                pki = self.pkis.get(org)
                if pki is None:
                    hosted = ", ".join(self.orgs) or "none"
                    raise NotFound(f"{org} is not hosted on this node (hosted: {hosted})")
                try:
                    tsa = TimestampAuthority.for_org(pki) if timestamped else None
                    signer = CadesSigner.for_org(pki, timestamper=tsa, clock=self._now)
                except TrustServiceError as exc:
                    raise InvalidArguments(f"the e-seal of {org} cannot be used: {exc}") from None
                self._signers[(org, timestamped)] = signer
            return signer

    def seal(
        self,
        org: str,
        record: Any,
        *,
        caller_msp: str,
        caller_role: str | None,
        level: Level | str = Level.B_B,
    ) -> SealedRecord:
        """Seal ``record`` for ``org`` (B-B or B-T); the caller must be its admin or officer."""
        if caller_msp != org or caller_role not in SEALING_ROLES:
            raise Forbidden(
                f"only an admin or officer of {org} may use its e-seal (the caller is "
                f"{caller_role or 'a member without a role'} of {caller_msp})"
            )
        try:
            wanted = Level(level)
        except ValueError:
            raise InvalidArguments(f"level must be B-B or B-T (got {level!r})") from None
        if wanted not in (Level.B_B, Level.B_T):
            raise InvalidArguments(f"level must be B-B or B-T (got {level!r})")
        return seal_record(self._signer(org, wanted), record, wanted)

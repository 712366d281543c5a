"""Set-up shared by the ledger benchmarks: member identities, genesis, proposal times.

>>> admin = member(pki, "kz-admin", "admin")
>>> init = {"members": genesis_members(pkis)}          # the InitLedger argument
"""

from __future__ import annotations

import base64
import time
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from node.proposal import KeySigner
from trust_services.pki import OrgPki
from trust_services.profiles import CertProfile

__all__ = ["existing_member", "genesis_members", "member", "now_pair"]


def member(pki: OrgPki, label: str, role: str, sez: str | None = None) -> KeySigner:
    """A new member identity of ``pki`` with ``role`` (key in the PKI's key store)."""
    issued = pki.issue_with_new_key(
        CertProfile.MEMBER, label, common_name=f"{label} (bench)", role=role, sez=sez
    )
    return KeySigner(pki.org, issued.certificate, [pki.certificate("issuing")], pki.key(label))


def existing_member(pki: OrgPki, label: str) -> KeySigner:
    """The identity that :func:`member` issued as ``label`` (its latest certificate)."""
    serials = [int(e["serial"], 16) for e in pki.list_issued() if e.get("label") == label]
    if not serials:
        raise SystemExit(f"{pki.org} issued no certificate labelled {label}")
    issued = pki.issued(max(serials))
    return KeySigner(pki.org, issued.certificate, [pki.certificate("issuing")], pki.key(label))


def genesis_members(pkis: dict[str, OrgPki]) -> list[dict[str, Any]]:
    """One founding member per country, its root CA as its root anchor."""
    return [
        {
            "msp_id": pki.org,
            "country": cc,
            "name": f"{cc} Customs",
            "anchors": [
                {
                    "kind": "root",
                    "certificate": base64.b64encode(
                        pki.certificate("root").public_bytes(Encoding.DER)
                    ).decode(),
                }
            ],
        }
        for cc, pki in pkis.items()
    ]


def now_pair() -> tuple[int, int]:
    """The proposal timestamp for now: (seconds, nanoseconds)."""
    ns = time.time_ns()
    return ns // 10**9, ns % 10**9

"""Fixtures for the contract tests: member identities from the real consortium PKIs,
a genesis, a ledger (MemStub) with a transaction clock, and real CAdES seals."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from chaincode.canonical import sha256_hex
from chaincode.memstub import MemStub
from chaincode.router import Response
from chaincode.stub import Creator
from tests.conftest import Consortium
from trust_services.cades import CadesSigner
from trust_services.pki import OrgPki
from trust_services.profiles import CertProfile

DER = serialization.Encoding.DER


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def cert_b64(pki: OrgPki, name: str) -> str:
    return b64(pki.certificate(name).public_bytes(DER))


@dataclass(frozen=True)
class Identities:
    """Creators of each administration and role (certificates from the real PKIs)."""

    by_name: dict[str, Creator]
    base_time: int  # seconds: a time at which every certificate is valid

    def __getitem__(self, name: str) -> Creator:
        return self.by_name[name]


MSP = {"KZ": "KZ-CUSTOMS", "UZ": "UZ-CUSTOMS", "KG": "KG-CUSTOMS"}


@pytest.fixture(scope="session")
def identities(consortium: Consortium) -> Identities:
    spec = [
        ("kz-admin", "KZ", "admin", None),
        ("kz-officer", "KZ", "officer", None),
        ("kz-verifier", "KZ", "verifier", None),
        ("uz-admin", "UZ", "admin", None),
        ("uz-officer", "UZ", "officer", None),
        ("kg-admin", "KG", "admin", None),
        ("kz-khorgos", "KZ", "sez-operator", "KZ-KHORGOS"),
        ("kz-khorgos-2", "KZ", "sez-operator", "KZ-KHORGOS"),
        ("kz-aktau", "KZ", "sez-operator", "KZ-AKTAU"),
        ("uz-navoi", "UZ", "sez-operator", "UZ-NAVOI"),
    ]
    pkis = {"KZ": consortium.kz, "UZ": consortium.uz, "KG": consortium.kg}
    creators = {}
    for name, cc, role, sez in spec:
        issued = pkis[cc].issue_with_new_key(
            CertProfile.MEMBER, f"cc-{name}", common_name=f"{name} (test)", role=role, sez=sez
        )
        creators[name] = Creator(MSP[cc], issued.certificate.public_bytes(DER))
    not_before = max(p.certificate("seal").not_valid_before_utc for p in pkis.values())
    return Identities(creators, int(not_before.timestamp()) + 86400)


def genesis(consortium: Consortium, *countries: str) -> dict[str, Any]:
    pkis = {"KZ": consortium.kz, "UZ": consortium.uz, "KG": consortium.kg}
    names = {"KZ": "State Revenue Committee", "UZ": "Customs Committee", "KG": "Customs Service"}
    return {
        "members": [
            {
                "msp_id": MSP[cc],
                "country": cc,
                "name": names[cc],
                "anchors": [
                    {"kind": "root", "certificate": cert_b64(pkis[cc], "root")},
                    {"kind": "tsa", "certificate": cert_b64(pkis[cc], "tsa")},
                ],
            }
            for cc in countries
        ]
    }


@dataclass
class Ledger:
    """A MemStub plus a clock that advances one second per transaction."""

    ids: Identities
    stub: MemStub = field(default_factory=MemStub)
    clock: int = 0

    def __post_init__(self) -> None:
        self.clock = self.ids.base_time

    def call(self, who: str | Creator, function: str, arg: Any = None, **kw: Any) -> Response:
        creator = self.ids[who] if isinstance(who, str) else who
        self.clock += 1
        args = [] if arg is None else [arg if isinstance(arg, str) else json.dumps(arg)]
        return self.stub.invoke(function, args, creator=creator, timestamp=(self.clock, 0), **kw)

    def ok(self, who: str | Creator, function: str, arg: Any = None) -> Any:
        response = self.call(who, function, arg)
        assert response.status == 200, (response.status, response.message)
        return json.loads(response.payload)

    def fails(self, who: str | Creator, function: str, arg: Any, status: int) -> str:
        before = dict(self.stub.state)
        response = self.call(who, function, arg)
        assert response.status == status, (response.status, response.message)
        assert self.stub.state == before, "a refused transaction changed the state"
        return response.message

    def iso(self, offset_s: int = 0) -> str:
        t = dt.datetime.fromtimestamp(self.clock + offset_s, dt.UTC)
        return t.strftime("%Y-%m-%dT%H:%M:%SZ")

    def last_event(self) -> dict[str, Any]:
        event = self.stub.events[-1]
        assert event.name == "caravan"
        payload: dict[str, Any] = json.loads(event.payload)
        return payload


@pytest.fixture
def ledger(identities: Identities, consortium: Consortium) -> Ledger:
    led = Ledger(identities)
    led.ok("kz-admin", "InitLedger", genesis(consortium, "KZ", "UZ", "KG"))
    return led


_SIGNERS: dict[str, CadesSigner] = {}


def seal(pki: OrgPki, record: dict[str, Any]) -> str:
    signer = _SIGNERS.get(str(pki.path))
    if signer is None:
        signer = _SIGNERS[str(pki.path)] = CadesSigner.for_org(pki)
    return b64(signer.sign_json(record))


def aeo_record(
    ledger: Ledger, aeo_id: str = "KZ-AEO-2026-000123", **changes: Any
) -> dict[str, Any]:
    cc = aeo_id[:2]
    record: dict[str, Any] = {
        "aeo_id": aeo_id,
        "holder": {
            "tin": f"{cc}123456789012",
            "name": "Khorgos Logistics LLP",
            "address": {
                "street": "1 Dostyk",
                "city": "Zharkent",
                "postcode": "041300",
                "country": cc,
            },
        },
        "issuer": {"administration": MSP[cc], "country": cc},
        "aeo_type": "AEOF",
        "supply_chain_roles": ["exporter", "carrier"],
        "status": "valid",
        "status_reason": None,
        "status_effective_at": ledger.iso(),
        "validated_at": ledger.iso(),
        "valid_until": ledger.iso(3 * 365 * 86400),
        "next_reassessment": ledger.iso(365 * 86400),
        "mra_sharing_consent": True,
    }
    for key, value in changes.items():
        record[key] = value
    return copy.deepcopy(record)


def aeo_write(pki: OrgPki, record: dict[str, Any]) -> dict[str, Any]:
    return {"record": record, "record_hash": sha256_hex(record), "seal": seal(pki, record)}


@pytest.fixture
def pkis(consortium: Consortium) -> Iterator[dict[str, OrgPki]]:
    yield {"KZ": consortium.kz, "UZ": consortium.uz, "KG": consortium.kg}

"""A member identity revoked by its administration's CRL on the ledger (PublishCrl) is
refused everywhere at once: RFC 9421 signed calls (the e-seal service, confidential
reads) with 403 problem+json, and its signed proposals with REVOKED_CREATOR — while its
colleagues of the same CA carry on."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from tests.api.test_routes_support import Api, api_fixture  # noqa: F401 (fixture)
from tests.chaincode.conftest import aeo_record

VICTIM = "kz-customs-officer-lost"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def seal(api: Api, who: str, record: dict[str, Any]) -> Any:
    with api.signed(who) as client:
        return client.post("/v1/orgs/KZ-CUSTOMS/seal", json={"record": record})


def test_a_revoked_caller_is_refused_and_others_are_not(api: Api) -> None:
    pki = api.node.pki("KZ-CUSTOMS")
    api.node.wallet.issue(pki, VICTIM, role="officer")
    record = aeo_record(api.clock, "KZ-AEO-2026-000777", aeo_type="AEOF")
    assert seal(api, VICTIM, record).status_code == 200  # trusted before

    victim = api.node.signer(VICTIM)
    when = dt.datetime.fromtimestamp(api.clock.clock, dt.UTC)
    pki.revoke(victim.certificate.serial_number, "key-compromise", when=when)
    crl = pki.build_crl("issuing", now=when)
    issuing = pki.certificate("issuing").public_bytes(Encoding.DER)
    api.write(
        "kz-customs-admin", "PublishCrl", {"crl": b64(crl), "issuer_certificate": b64(issuing)}
    )
    height = api.anonymous.get("/v1/ledger").json()["height"]

    refused = seal(api, VICTIM, record)
    assert refused.status_code == 403, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert "revoked" in refused.json()["detail"], refused.json()
    assert f"{victim.certificate.serial_number:x}" in refused.json()["detail"]

    with api.signed(VICTIM) as client:  # a confidential read: refused, not served redacted
        listed = client.get("/v1/aeo-certificates", params={"country": "KZ"})
    assert listed.status_code == 403, listed.text

    proposal = api.propose(VICTIM, "GetMembers")
    answer = api.post(proposal)
    assert answer.status_code == 403, answer.text
    assert answer.json()["code"] == "REVOKED_CREATOR"
    assert api.anonymous.get("/v1/ledger").json()["height"] == height  # nothing recorded

    assert seal(api, "kz-customs-officer", record).status_code == 200  # same CA, not revoked

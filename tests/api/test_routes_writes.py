"""Writes on POST /v1/transactions and /batch, refusals with their codes; the e-seal
service (RFC 9421 callers checked against the trust list) and validation."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from api.httpsig import SignedRequestAuth
from chaincode.canonical import canonical_json
from node.proposal import SignedProposal
from tests.api.test_routes_support import Api, api_fixture  # noqa: F401 (fixture)
from tests.chaincode.conftest import aeo_record
from tests.node.conftest import member_signer
from trust_services.cades import signature_timestamp_time


def record(api: Api, aeo_id: str, **changes: Any) -> dict[str, Any]:
    clock: Any = api.clock  # the chaincode helpers take any object with iso()
    return aeo_record(clock, aeo_id, **changes)


def seal(api: Api, who: str, org: str, rec: dict[str, Any], **extra: Any) -> Any:
    with api.signed(who) as client:
        return client.post(f"/v1/orgs/{org}/seal", json={"record": rec, **extra})


def issue_arg(api: Api, rec: dict[str, Any]) -> dict[str, Any]:
    sealed = seal(api, "kz-customs-admin", "KZ-CUSTOMS", rec).json()
    return {"record": rec, "record_hash": sealed["record_hash"], "seal": sealed["seal"]}


def test_a_valid_write_and_its_receipt(api: Api) -> None:
    rec = record(api, "KZ-AEO-2026-000500")
    response = api.post(api.propose("kz-customs-officer", "IssueAeo", issue_arg(api, rec)))
    assert response.status_code == 200
    receipt = response.json()
    assert receipt["code"] == "VALID" and receipt["status"] == 200 and receipt["block"] >= 1
    assert receipt["payload"]["aeo_id"] == rec["aeo_id"]
    assert receipt["event"]["name"] == "caravan"
    assert receipt["event"]["payload"]["entries"][0]["type"] == "AeoIssued"
    # the index follows: the list shows it at once
    listed = api.anonymous.get("/v1/aeo-certificates", params={"issuer": "KZ-CUSTOMS"})
    assert rec["aeo_id"] in [i["aeo_id"] for i in listed.json()["items"]]


def test_refusals_keep_their_codes(api: Api) -> None:
    rec = record(api, "KZ-AEO-2026-000501")
    good = api.propose("kz-customs-officer", "IssueAeo", issue_arg(api, rec))
    assert api.post(good).status_code == 200
    duplicate = api.post(good)
    problem = duplicate.json()
    assert (duplicate.status_code, problem["code"]) == (409, "DUPLICATE_TXID")
    assert duplicate.headers["content-type"] == "application/problem+json"
    assert problem["tx_id"] == json.loads(good.proposal)["tx_id"]

    wrong_country = api.post(
        api.propose("uz-customs-admin", "IssueAeo", issue_arg(api, record(api, "KZ-AEO-2026-502")))
    )
    assert (wrong_country.status_code, wrong_country.json()["code"]) == (403, "CHAINCODE_ERROR")

    other = api.propose("kz-customs-officer", "IssueAeo", issue_arg(api, record(api, "KZ-AEO-9")))
    forged = SignedProposal(other.proposal, good.signature, other.certificate, other.chain)
    bad_signature = api.post(forged)
    assert (bad_signature.status_code, bad_signature.json()["code"]) == (401, "BAD_SIGNATURE")

    unknown = api.post(api.propose("kz-customs-admin", "GetAeo", {"aeo_id": "KZ-AEO-2026-999"}))
    assert (unknown.status_code, unknown.json()["code"]) == (404, "CHAINCODE_ERROR")

    not_base64 = api.anonymous.post(
        "/v1/transactions",
        json={"proposal": "***", "signature": "AA==", "certificate": "AA==", "chain": []},
    )
    assert (not_base64.status_code, not_base64.json()["code"]) == (400, "BAD_PROPOSAL")
    malformed = api.anonymous.post(
        "/v1/transactions", content=b'{"proposal": ', headers={"content-type": "application/json"}
    )
    assert (malformed.status_code, malformed.json()["code"]) == (422, "VALIDATION_FAILED")
    extra = api.anonymous.post("/v1/transactions", json={**good.to_json(), "x": 1})
    assert extra.status_code == 422
    oversize = api.anonymous.post(
        "/v1/transactions", json={**good.to_json(), "proposal": "A" * (70 * 1024)}
    )
    assert (oversize.status_code, oversize.json()["code"]) == (413, "BODY_TOO_LARGE")


def test_a_batch_answers_one_receipt_each(api: Api) -> None:
    ok = api.propose("kz-customs-officer", "IssueAeo", issue_arg(api, record(api, "KZ-AEO-600")))
    refused = api.propose(
        "uz-customs-admin", "IssueAeo", issue_arg(api, record(api, "KZ-AEO-2026-601"))
    )
    response = api.anonymous.post(
        "/v1/transactions/batch",
        json={"proposals": [ok.to_json(), refused.to_json(), ok.to_json()]},
    )
    assert response.status_code == 200
    codes = [(r["code"], r["status"]) for r in response.json()["receipts"]]
    assert codes == [("VALID", 200), ("CHAINCODE_ERROR", 403), ("DUPLICATE_TXID", 409)]
    empty = api.anonymous.post("/v1/transactions/batch", json={"proposals": []})
    assert empty.status_code == 422


def test_seal_needs_a_signed_admin_or_officer_of_the_org(api: Api) -> None:
    rec = record(api, "KZ-AEO-2026-000700")
    sealed = seal(api, "kz-customs-officer", "KZ-CUSTOMS", rec)
    assert sealed.status_code == 200
    assert sealed.json()["record_hash"] == hashlib.sha256(canonical_json(rec)).hexdigest()
    assert seal(api, "uz-customs-officer", "KZ-CUSTOMS", rec).status_code == 403
    assert seal(api, "kz-khorgos", "KZ-CUSTOMS", rec).status_code == 403  # an operator
    assert seal(api, "kz-customs-admin", "TJ-CUSTOMS", rec).status_code == 403
    assert seal(api, "kz-customs-admin", "KZ-CUSTOMS", {"x": 1.5} | rec).status_code == 400
    anonymous = api.anonymous.post("/v1/orgs/KZ-CUSTOMS/seal", json={"record": rec})
    assert (anonymous.status_code, anonymous.json()["code"]) == (401, "SIGNATURE_MISSING")
    assert "Accept-Signature" in anonymous.headers


def test_seal_is_timestamped_by_the_org_tsa_unless_b_b_is_asked(api: Api) -> None:
    rec = record(api, "KZ-AEO-2026-000771")
    stamped = base64.b64decode(seal(api, "kz-customs-officer", "KZ-CUSTOMS", rec).json()["seal"])
    plain = seal(api, "kz-customs-officer", "KZ-CUSTOMS", rec, level="B-B").json()["seal"]
    assert signature_timestamp_time(stamped) is not None  # B-T: KZ's own TSA
    assert signature_timestamp_time(base64.b64decode(plain)) is None
    bad = seal(api, "kz-customs-officer", "KZ-CUSTOMS", rec, level="B-LTA")
    assert bad.status_code == 422


def test_a_caller_outside_the_trust_list_is_refused(api: Api, signers: Any) -> None:
    # a member identity of the session PKIs: same names, other roots, not on this ledger
    stranger = member_signer(signers.pkis["KZ"], "api-stranger", "admin")
    auth = SignedRequestAuth(stranger, clock=lambda: float(api.clock.clock))
    response = api.anonymous.post("/v1/orgs/KZ-CUSTOMS/seal", json={"record": {"a": 1}}, auth=auth)
    assert (response.status_code, response.json()["code"]) == (403, "UNTRUSTED_CALLER")
    read = api.anonymous.get("/v1/aeo-certificates/KZ-AEO-2026-000700", auth=auth)
    assert read.status_code == 403  # a signature that is there must pass


def test_validation_of_a_seal_made_by_the_node(api: Api) -> None:
    rec = record(api, "KZ-AEO-2026-000800")
    sealed = seal(api, "kz-customs-officer", "KZ-CUSTOMS", rec).json()
    content = base64.b64encode(canonical_json(rec)).decode()
    response = api.anonymous.post(
        "/v1/validation", json={"signature": sealed["seal"], "content": content}
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["indication"] == "TOTAL-PASSED"
    assert result["reports"][0]["signer"]["organisation"] == "State Revenue Committee"
    tampered = base64.b64encode(canonical_json({**rec, "aeo_type": "AEOC"})).decode()
    failed = api.anonymous.post(
        "/v1/validation", json={"signature": sealed["seal"], "content": tampered}
    ).json()
    assert failed["indication"] == "TOTAL-FAILED"
    garbage = api.anonymous.post(
        "/v1/validation", content=b"%PDF-1.7 nonsense", headers={"content-type": "application/pdf"}
    )
    assert (garbage.status_code, garbage.json()["code"]) == (400, "BAD_DOCUMENT")
    unsupported = api.anonymous.post(
        "/v1/validation", content=b"x", headers={"content-type": "text/plain"}
    )
    assert unsupported.status_code == 415

"""The /v1 routes on a real node over loopback HTTP: KZ issues a sealed AEO (sealed by
the API), UZ and KZ sign an MRA, an SEZ operator anchors a trail — every write a signed
proposal on POST /v1/transactions — then every read route, the SSE stream, the mounted
trust services, refusals with their codes and the confidentiality of holder data."""

from __future__ import annotations

import urllib.parse
from typing import Any

import httpx
import pytest

from tests.api.test_routes_support import Api, api_fixture  # noqa: F401 (fixture)
from tests.chaincode.conftest import aeo_record
from tests.chaincode.test_mra import ACT, proposal
from tests.chaincode.test_scenario import STEPS, trail_events

AEO = "KZ-AEO-2026-000001"
PRIVATE = "KZ-AEO-2026-000002"
MRA = "MRA-KZ-UZ-2026"
REF = "26KZ0000042/KHG"


def sealed_args(api: Api, record: dict[str, Any]) -> dict[str, Any]:
    """Seal through the API (RFC 9421 signed by the KZ officer), as a client would."""
    with api.signed("kz-customs-officer") as client:
        response = client.post("/v1/orgs/KZ-CUSTOMS/seal", json={"record": record})
    assert response.status_code == 200, response.text
    sealed = response.json()
    assert sealed["sealed_by"].startswith("CN=State Revenue Committee e-Seal")
    return {"record": record, "record_hash": sealed["record_hash"], "seal": sealed["seal"]}


@pytest.fixture(scope="module")
def story(api: Api) -> dict[str, Any]:
    clock: Any = api.clock  # the chaincode helpers take any object with iso()
    shared = aeo_record(clock, AEO, aeo_type="AEOF")
    private = aeo_record(clock, PRIVATE, aeo_type="AEOF", mra_sharing_consent=False)
    issued = api.write("kz-customs-officer", "IssueAeo", sealed_args(api, shared))
    api.write("kz-customs-officer", "IssueAeo", sealed_args(api, private))
    api.write("uz-customs-admin", "ProposeMra", proposal(clock))
    api.write("uz-customs-admin", "SignMra", {"mra_id": MRA, **ACT})
    api.write("kz-customs-admin", "SignMra", {"mra_id": MRA, **ACT})
    clock.clock += 60  # past effective_from
    operator = api.node.signer("kz-khorgos")
    api.write(
        "kz-customs-admin",
        "RegisterSezOperator",
        {
            "sez": "KZ-KHORGOS",
            "name": "Khorgos - Eastern Gate",
            "operator_subject": operator.certificate.subject.rfc4514_string(),
        },
    )
    events = trail_events(REF, AEO)
    anchored = api.write("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events})
    return {"issued": issued, "events": events, "anchored": anchored, "record": shared}


def test_health_ledger_and_blocks(api: Api, story: dict[str, Any]) -> None:
    health = api.anonymous.get("/v1/health").json()
    assert health["status"] == "ok" and health["channel"] == "caravan"
    assert health["orgs"] == ["KG-CUSTOMS", "KZ-CUSTOMS", "UZ-CUSTOMS"]
    ledger = api.anonymous.get("/v1/ledger").json()
    assert ledger["height"] == health["height"] >= 8
    assert ledger["valid_tx_count"] == ledger["tx_count"]
    issued = story["issued"]
    block = api.anonymous.get(f"/v1/blocks/{issued['block']}").json()
    assert block["number"] == issued["block"] and block["hash"] != ledger["last_hash"]
    assert block["timestamped"] is False and block["timestamp_token"] is None
    assert [(t["tx_id"], t["code"], t["function"], t["creator_msp"]) for t in block["txs"]] == [
        (issued["tx_id"], "VALID", "IssueAeo", "KZ-CUSTOMS")
    ]
    assert block["txs"][0]["timestamp"].endswith("Z")
    missing = api.anonymous.get(f"/v1/blocks/{ledger['height']}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert api.anonymous.get("/v1/blocks/-1").status_code == 422


def test_members_trust_list_and_crls(api: Api, story: dict[str, Any]) -> None:
    members = api.anonymous.get("/v1/members").json()
    assert [m["msp_id"] for m in members] == ["KG-CUSTOMS", "KZ-CUSTOMS", "UZ-CUSTOMS"]
    assert api.anonymous.get("/v1/members/UZ-CUSTOMS").json()["country"] == "UZ"
    assert api.anonymous.get("/v1/members/TJ-CUSTOMS").json()["code"] == "NOT_FOUND"
    anchors = api.anonymous.get("/v1/trust-list", params={"msp_id": "KZ-CUSTOMS"}).json()
    assert [(a["kind"], a["status"]) for a in anchors] == [("root", "granted")]
    assert len(api.anonymous.get("/v1/trust-list").json()) == 3
    history = api.anonymous.get(
        f"/v1/members/KZ-CUSTOMS/anchors/{anchors[0]['fingerprint']}/history"
    ).json()
    assert [h["value"]["status"] for h in history] == ["granted"]
    assert api.anonymous.get("/v1/members/KZ-CUSTOMS/crls").json() == []


def test_aeo_reads_and_lists(api: Api, story: dict[str, Any]) -> None:
    current = api.anonymous.get(f"/v1/aeo-certificates/{AEO}").json()
    assert current["status_now"] == "valid" and current["version"] == 1
    assert current["tx_id"] == story["issued"]["tx_id"]
    history = api.anonymous.get(f"/v1/aeo-certificates/{AEO}/history").json()
    assert [v["version"] for v in history] == [1]
    status = api.anonymous.get(
        f"/v1/aeo-certificates/{AEO}/status", params={"at": "2020-01-01T00:00:00Z"}
    ).json()
    assert status["status"] == "not_issued"
    assert api.anonymous.get(f"/v1/aeo-certificates/{AEO}/status").json()["status"] == "valid"
    unknown = api.anonymous.get("/v1/aeo-certificates/KZ-AEO-2026-999999")
    assert (unknown.status_code, unknown.json()["code"]) == (404, "NOT_FOUND")
    bad_time = api.anonymous.get(f"/v1/aeo-certificates/{AEO}/status", params={"at": "soon"})
    assert bad_time.status_code == 422

    page = api.anonymous.get("/v1/aeo-certificates", params={"country": "KZ", "limit": 1}).json()
    assert [i["aeo_id"] for i in page["items"]] == [AEO] and page["next_cursor"]
    rest = api.anonymous.get(
        "/v1/aeo-certificates", params={"country": "KZ", "cursor": page["next_cursor"]}
    ).json()
    assert [i["aeo_id"] for i in rest["items"]] == [PRIVATE] and rest["next_cursor"] is None
    found = api.anonymous.get("/v1/aeo-certificates", params={"holder": "khorgos logistics"})
    assert len(found.json()["items"]) == 2
    bad = api.anonymous.get("/v1/aeo-certificates", params={"cursor": "nonsense"})
    assert (bad.status_code, bad.json()["code"]) == (400, "BAD_QUERY")


def holder(view: dict[str, Any]) -> set[str]:
    return set(view["record"]["holder"])


def test_confidential_fields(api: Api, story: dict[str, Any]) -> None:
    full = {"tin", "name", "address"}
    anonymous = api.anonymous.get(f"/v1/aeo-certificates/{AEO}").json()
    assert holder(anonymous) == {"name"}
    assert anonymous["redacted"] == ["record.holder.tin", "record.holder.address"]
    with api.signed("kz-customs-officer") as issuer:
        view = issuer.get(f"/v1/aeo-certificates/{AEO}").json()
        assert holder(view) == full and view.get("redacted") is None
        items = issuer.get("/v1/aeo-certificates", params={"issuer": "KZ-CUSTOMS"}).json()
        assert {i["holder_tin"] for i in items["items"]} == {"KZ123456789012"}
        by_tin = issuer.get("/v1/aeo-certificates", params={"tin": "KZ123456789012"}).json()
        assert len(by_tin["items"]) == 2
    with api.signed("uz-customs-officer") as partner:  # MRA in force, holder consented
        assert holder(partner.get(f"/v1/aeo-certificates/{AEO}").json()) == full
        assert holder(partner.get(f"/v1/aeo-certificates/{PRIVATE}").json()) == {"name"}
        assert holder(partner.get(f"/v1/aeo-certificates/{AEO}/history").json()[0]) == full
        by_tin = partner.get("/v1/aeo-certificates", params={"tin": "KZ123456789012"}).json()
        assert [i["aeo_id"] for i in by_tin["items"]] == [AEO]  # not the one without consent
    with api.signed("kg-customs-admin") as stranger:  # no MRA with KZ
        assert holder(stranger.get(f"/v1/aeo-certificates/{AEO}").json()) == {"name"}
        listed = stranger.get("/v1/aeo-certificates").json()["items"]
        assert all(i["holder_tin"] is None and i["redacted"] for i in listed)
        assert (
            stranger.get("/v1/aeo-certificates", params={"tin": "KZ123456789012"}).json()["items"]
            == []
        )
    for item in api.anonymous.get("/v1/aeo-certificates").json()["items"]:
        assert item["holder_tin"] is None and item["holder_city"] is None
    no_signature = api.anonymous.get("/v1/aeo-certificates", params={"tin": "KZ123456789012"})
    assert (no_signature.status_code, no_signature.json()["code"]) == (401, "SIGNATURE_MISSING")


def test_mras_and_recognition(api: Api, story: dict[str, Any]) -> None:
    mra = api.anonymous.get(f"/v1/mras/{MRA}").json()
    assert mra["state_now"] == "in_force" and mra["parties"] == ["KZ-CUSTOMS", "UZ-CUSTOMS"]
    assert api.anonymous.get(f"/v1/mras/{MRA}/state").json()["state"] == "in_force"
    early = api.anonymous.get(f"/v1/mras/{MRA}/state", params={"at": "2020-01-01"}).json()
    assert early["state"] != "in_force"
    listed = api.anonymous.get("/v1/mras", params={"party": "UZ-CUSTOMS", "state": "in_force"})
    assert [m["mra_id"] for m in listed.json()["items"]] == [MRA]
    assert api.anonymous.get("/v1/mras", params={"party": "KG-CUSTOMS"}).json()["items"] == []
    yes = api.anonymous.get("/v1/recognition", params={"aeo_id": AEO, "country": "UZ"}).json()
    assert yes["recognised"] is True and yes["evidence"]["mras"][0]["mra_id"] == MRA
    no = api.anonymous.get("/v1/recognition", params={"aeo_id": AEO, "country": "KG"}).json()
    assert no["recognised"] is False and no["reasons"]
    assert api.anonymous.get("/v1/recognition", params={"aeo_id": AEO}).status_code == 422
    assert api.anonymous.get("/v1/mras/MRA-NONE").status_code == 404


def test_sez_events_and_trail(api: Api, story: dict[str, Any]) -> None:
    events = story["events"]
    sez = api.anonymous.get("/v1/sez/KZ-KHORGOS").json()
    assert sez["msp_id"] == "KZ-CUSTOMS" and len(sez["operators"]) == 1
    ref = urllib.parse.quote(REF, safe="")
    trail = api.anonymous.get(f"/v1/consignments/{ref}/trail").json()
    assert [e["biz_step"] for e in trail] == STEPS
    verification = api.anonymous.get(f"/v1/consignments/{ref}/verification").json()
    assert verification == {
        "consignment_ref": REF,
        "ok": True,
        "events": len(STEPS),
        "problems": [],
        "corrections": [],
    }
    assert api.anonymous.get("/v1/consignments/NONE-1/trail").status_code == 404
    event_hash = events[0]["event_hash"]
    one = api.anonymous.get(f"/v1/events/{urllib.parse.quote(event_hash, safe='')}").json()
    assert one["event_hash"] == event_hash and one["seq"] == 1
    listed = api.anonymous.get(
        "/v1/events", params={"sez": "KZ-KHORGOS", "consignment_ref": REF, "limit": 2}
    ).json()
    assert [e["seq"] for e in listed["items"]] == [1, 2] and listed["next_cursor"]
    window = api.anonymous.get(
        "/v1/events", params={"since": "2026-11-24T00:00:00Z", "until": "2026-11-24T02:00:00Z"}
    ).json()
    assert all("2026-11-24T0" in e["event_time"] for e in window["items"])
    backwards = api.anonymous.get(
        "/v1/events", params={"since": "2026-12-01T00:00:00Z", "until": "2026-11-01T00:00:00Z"}
    )
    assert (backwards.status_code, backwards.json()["code"]) == (400, "BAD_QUERY")


def read_stream(api: Api, count: int, **kw: Any) -> list[tuple[str, str, str]]:
    """The first ``count`` SSE messages (id, event, data) of GET /v1/stream."""
    found: list[tuple[str, str, str]] = []
    current: dict[str, str] = {}
    with api.anonymous.stream("GET", "/v1/stream", **kw) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if "id" in current:
                    found.append((current["id"], current["event"], current["data"]))
                    if len(found) == count:
                        return found
                current = {}
            elif not line.startswith(":"):
                name, _, value = line.partition(": ")
                current[name] = value
    return found


def test_event_stream_resumes(api: Api, story: dict[str, Any]) -> None:
    issued = story["issued"]
    first = read_stream(api, 2, params={"from_block": issued["block"]})
    assert first[0][0] == f"{issued['block']}:{issued['tx_id']}"
    assert first[0][1] == "caravan" and '"AeoIssued"' in first[0][2]
    after = read_stream(api, 1, headers={"Last-Event-ID": first[0][0]})
    assert after[0] == first[1]
    bad = api.anonymous.get("/v1/stream", headers={"Last-Event-ID": "nope"})
    assert (bad.status_code, bad.json()["code"]) == (400, "BAD_EVENT_ID")


def test_trust_services_are_mounted(api: Api) -> None:
    crl = api.anonymous.get("/orgs/KZ-CUSTOMS/crl/issuing.crl")
    assert crl.status_code == 200 and crl.headers["content-type"] == "application/pkix-crl"
    cert = api.anonymous.get("/orgs/UZ-CUSTOMS/certs/root.cer")
    assert cert.status_code == 200 and cert.content[:1] == b"\x30"
    assert api.anonymous.get("/orgs/TJ-CUSTOMS/certs/root.cer").status_code == 404


def test_openapi_document(api: Api) -> None:
    spec = api.anonymous.get("/openapi.json").json()
    assert spec["info"]["title"] == "Caravan node API"
    paths = set(spec["paths"])
    for path in (
        "/v1/health",
        "/v1/aeo-certificates/{aeo_id}/status",
        "/v1/recognition",
        "/v1/transactions",
        "/v1/stream",
        "/v1/validation",
        "/v1/orgs/{org}/seal",
    ):
        assert path in paths
    problem = spec["paths"]["/v1/blocks/{n}"]["get"]["responses"]["404"]["content"]
    assert "application/problem+json" in problem
    assert httpx.get(f"{api.url}/docs").status_code == 200

"""GET /v1/sez on a real node over loopback HTTP: zones registered by three administrations
(``RegisterSezOperator`` through POST /v1/transactions) are listed by code from the index,
right after the writes; paging walks every zone once; a cursor that is not one this list
returned is a 400 problem; the list is public, as GET /v1/sez/{sez} is, and agrees with
it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.api.test_routes_support import Api, api_fixture  # noqa: F401 (fixture)

#: code -> (the administration that registers it, its name)
ZONES = {
    "KZ-KHORGOS": ("kz-customs-admin", "Khorgos - Eastern Gate"),
    "UZ-NAVOI": ("uz-customs-admin", "Navoi"),
    "KZ-AKTAU": ("kz-customs-admin", "Aktau Seaport"),
    "KG-BISHKEK": ("kg-customs-admin", "Bishkek"),
    "UZ-ANGREN": ("uz-customs-admin", "Angren"),
}


def register(api: Api, sez: str, subject: str) -> dict[str, Any]:
    admin, name = ZONES[sez]
    arg = {"sez": sez, "name": name, "operator_subject": subject}
    return api.write(admin, "RegisterSezOperator", arg)


@pytest.fixture(scope="module")
def zones(api: Api) -> dict[str, dict[str, Any]]:
    """The receipt of each zone's last registration (KZ-KHORGOS has two operators)."""
    last = {
        sez: register(api, sez, f"CN={sez.lower()}-operator,O=Operator,C={sez[:2]}")
        for sez in ZONES
    }
    last["KZ-KHORGOS"] = register(api, "KZ-KHORGOS", "CN=second operator,O=Operator,C=KZ")
    return last


def test_lists_every_zone_once_by_code(api: Api, zones: dict[str, dict[str, Any]]) -> None:
    page = api.anonymous.get("/v1/sez")
    assert page.status_code == 200, page.text
    body = page.json()
    assert body["next_cursor"] is None
    assert [z["sez"] for z in body["items"]] == sorted(ZONES)
    khorgos = next(z for z in body["items"] if z["sez"] == "KZ-KHORGOS")
    assert khorgos == {
        "sez": "KZ-KHORGOS",
        "country": "KZ",
        "msp_id": "KZ-CUSTOMS",
        "name": "Khorgos - Eastern Gate",
        "operators": 2,
        "block": zones["KZ-KHORGOS"]["block"],
        "tx_id": zones["KZ-KHORGOS"]["tx_id"],
    }
    # the same zones, operators and administrations as the ledger's GET /v1/sez/{sez}
    for item in body["items"]:
        one = api.anonymous.get(f"/v1/sez/{item['sez']}").json()
        assert (one["country"], one["msp_id"], one["name"]) == (
            item["country"],
            item["msp_id"],
            item["name"],
        )
        assert len(one["operators"]) == item["operators"]
        assert item["tx_id"] == zones[item["sez"]]["tx_id"]

    # page by page: every zone once, in code order, then no cursor
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} if cursor is None else {"limit": 2, "cursor": cursor}
        answer = api.anonymous.get("/v1/sez", params=params).json()
        assert 1 <= len(answer["items"]) <= 2
        seen += [z["sez"] for z in answer["items"]]
        pages += 1
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(ZONES) and pages == 3


def test_a_new_zone_is_listed_at_once(api: Api, zones: dict[str, dict[str, Any]]) -> None:
    receipt = api.write(
        "kg-customs-admin",
        "RegisterSezOperator",
        {"sez": "KG-OSH", "name": "Osh", "operator_subject": "CN=osh,O=Operator,C=KG"},
    )
    listed = api.anonymous.get("/v1/sez", params={"limit": 500}).json()["items"]
    osh = [z for z in listed if z["sez"] == "KG-OSH"]
    assert osh and osh[0]["tx_id"] == receipt["tx_id"] and osh[0]["operators"] == 1


@pytest.mark.parametrize(
    "cursor",
    [
        "nonsense",
        "WyJtcmEiLCJNUkEtMSJd",  # ["mra","MRA-1"]: a cursor of another list
        "WyJzZXoiLDFd",  # ["sez",1]: the key of the wrong type
    ],
)
def test_bad_cursor_is_a_400_problem(
    api: Api, zones: dict[str, dict[str, Any]], cursor: str
) -> None:
    answer = api.anonymous.get("/v1/sez", params={"cursor": cursor})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["code"] == "BAD_QUERY"
    assert problem["detail"] == "cursor is not one this list returned"


@pytest.mark.parametrize("limit", [0, 501, "many"])
def test_bad_limit_is_a_422_problem(api: Api, limit: int | str) -> None:
    answer = api.anonymous.get("/v1/sez", params={"limit": limit})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"


def test_documented_in_openapi(api: Api) -> None:
    operation = api.anonymous.get("/openapi.json").json()["paths"]["/v1/sez"]["get"]
    assert operation["summary"].startswith("The registered SEZs")
    assert {"200", "400", "422", "503"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} == {"limit", "cursor"}

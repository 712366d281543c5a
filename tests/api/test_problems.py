"""Every error of the API is RFC 9457 problem+json, over real HTTP."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import httpx
import pytest
from fastapi import FastAPI, Query
from pydantic import BaseModel, Field

from api.problems import (
    PROBLEM_MEDIA_TYPE,
    PROBLEM_RESPONSES,
    install_problem_handlers,
    problem_responses,
)
from node.errors import LedgerCorrupted, LedgerError, ProposalError, Rejected
from tests.api.conftest import serve


class Member(BaseModel):
    msp_id: str = Field(pattern=r"^[A-Z]{2}-[A-Z]+$")
    country: str = Field(min_length=2, max_length=2)


class Roster(BaseModel):
    members: list[Member]


def make_app() -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/blocks/{number}", responses=PROBLEM_RESPONSES)
    def block(number: int, verbose: Annotated[bool, Query()] = False) -> dict[str, int]:
        return {"number": number}

    @app.post("/v1/roster", responses=problem_responses(400, 422))
    def roster(body: Roster) -> dict[str, int]:
        return {"members": len(body.members)}

    @app.get("/v1/untrusted")
    def untrusted() -> None:
        raise Rejected("UNTRUSTED_CREATOR", "the creator does not chain to a granted root")

    @app.get("/v1/conflict")
    def conflict() -> None:
        raise LedgerError("the ledger at data/ledger.db belongs to channel other")

    @app.get("/v1/proposal")
    def proposal() -> None:
        raise ProposalError("proposal: nonce is not base64")

    @app.get("/v1/corrupted")
    def corrupted() -> None:
        raise LedgerCorrupted(7, "the block hash does not match")

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("secret: /srv/caravan/secrets/KZ-CUSTOMS.pass")

    @app.get("/v1/count")
    def count(limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict[str, Any]:
        return {"limit": limit}

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with serve(make_app()) as base, httpx.Client(base_url=base) as http:
        yield http


def problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code
    assert body["type"] == f"https://caravan.dev/problems/{code}"
    assert body["title"]
    return body


def test_node_errors_keep_their_status_and_code(client: httpx.Client) -> None:
    body = problem(client.get("/v1/untrusted"), 403, "UNTRUSTED_CREATOR")
    assert body == {
        "type": "https://caravan.dev/problems/UNTRUSTED_CREATOR",
        "title": "Forbidden",
        "status": 403,
        "detail": "the creator does not chain to a granted root",
        "instance": "/v1/untrusted",
        "code": "UNTRUSTED_CREATOR",
    }
    assert problem(client.get("/v1/conflict"), 409, "LEDGER_ERROR")["title"] == "Conflict"
    assert problem(client.get("/v1/proposal"), 400, "BAD_PROPOSAL")["detail"].startswith(
        "proposal: nonce"
    )


def test_a_corrupted_ledger_is_a_500_that_says_which_block(client: httpx.Client) -> None:
    body = problem(client.get("/v1/corrupted"), 500, "LEDGER_CORRUPTED")
    assert body["detail"] == "block 7: the block hash does not match"


def test_unknown_route_and_wrong_method(client: httpx.Client) -> None:
    body = problem(client.get("/v1/nothing-here"), 404, "NOT_FOUND")
    assert body["detail"] == "no resource at /v1/nothing-here"
    assert body["instance"] == "/v1/nothing-here"
    response = client.delete("/v1/roster")
    body = problem(response, 405, "METHOD_NOT_ALLOWED")
    assert response.headers["allow"] == "POST"
    assert body["detail"] == "DELETE is not allowed on /v1/roster"


def test_validation_errors_name_the_fields(client: httpx.Client) -> None:
    body = problem(
        client.post(
            "/v1/roster",
            json={"members": [{"msp_id": "KZ-CUSTOMS", "country": "KZ"}, {"country": "Uzb"}]},
        ),
        422,
        "VALIDATION_FAILED",
    )
    locations = {tuple(e["location"]): e for e in body["errors"]}
    assert set(locations) == {("body", "members", 1, "msp_id"), ("body", "members", 1, "country")}
    assert locations["body", "members", 1, "msp_id"]["type"] == "missing"
    assert "Uzb" not in response_text(body)  # the input is never echoed
    assert body["detail"].startswith("body.members.1.")
    assert body["detail"].endswith("(and 1 more)")

    body = problem(client.get("/v1/blocks/seven"), 422, "VALIDATION_FAILED")
    assert [e["location"] for e in body["errors"]] == [["path", "number"]]
    body = problem(client.get("/v1/count?limit=0"), 422, "VALIDATION_FAILED")
    assert body["errors"][0]["location"] == ["query", "limit"]
    assert body["errors"][0]["type"] == "greater_than_equal"


def response_text(body: dict[str, Any]) -> str:
    return repr(body)


def test_malformed_json_is_a_validation_problem(client: httpx.Client) -> None:
    response = client.post(
        "/v1/roster", content=b'{"members": [', headers={"content-type": "application/json"}
    )
    body = problem(response, 422, "VALIDATION_FAILED")
    assert body["errors"][0]["type"] == "json_invalid"


def test_unexpected_exception_is_a_bare_500(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="caravan.api"):
        response = client.get("/v1/boom")
    body = problem(response, 500, "INTERNAL_ERROR")
    assert body == {
        "type": "https://caravan.dev/problems/INTERNAL_ERROR",
        "title": "Internal Server Error",
        "status": 500,
        "instance": "/v1/boom",
        "code": "INTERNAL_ERROR",
    }
    assert "secret" not in response.text and "RuntimeError" not in response.text
    logged = [r for r in caplog.records if r.name == "caravan.api"]
    assert logged and logged[0].exc_info is not None  # the traceback stays on the node


def test_openapi_documents_problem_json() -> None:
    document = make_app().openapi()
    responses = document["paths"]["/v1/blocks/{number}"]["get"]["responses"]
    assert set(responses) == {"200", "400", "401", "403", "404", "409", "413", "422"}
    for status in ("400", "404", "413", "422"):
        assert responses[status]["content"] == {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
        }
    # routes without ``responses`` get the problem schema for FastAPI's default 422 too
    count = document["paths"]["/v1/count"]["get"]["responses"]["422"]
    assert count["content"][PROBLEM_MEDIA_TYPE]["schema"]["$ref"].endswith("/Problem")
    schemas = document["components"]["schemas"]
    assert {"Problem", "FieldError"} <= set(schemas)
    assert "HTTPValidationError" not in schemas
    assert set(schemas["Problem"]["required"]) == {"type", "title", "status", "code"}

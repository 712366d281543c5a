"""The recognition fast path (api/fastpath.py) answers exactly as the documented FastAPI
route does, and leaves every request it does not fully understand to that route."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from starlette.routing import Match

from api.app import create_app
from api.fastpath import PATH, RecognitionFastRoute
from tests.api.conftest import serve
from tests.api.test_routes_ledger import AEO, PRIVATE, story  # noqa: F401 (fixture)
from tests.api.test_routes_support import Api, api_fixture  # noqa: F401 (fixture)


class Client(httpx.Client):
    app: FastAPI


@pytest.fixture(scope="module")
def pair(api: Api, request: pytest.FixtureRequest) -> Iterator[tuple[Client, Client]]:
    """Two apps on the same node: as served (fast path first) and without the fast path."""
    request.getfixturevalue("story")  # the node's AEOs and MRA
    fast = create_app(api.node, trust_services=False)
    slow = create_app(api.node, trust_services=False)
    slow.router.routes[:] = [
        r for r in slow.router.routes if not isinstance(r, RecognitionFastRoute)
    ]
    with (
        serve(fast) as f_url,
        serve(slow) as s_url,
        Client(base_url=f_url, timeout=30) as f,
        Client(base_url=s_url, timeout=30) as s,
    ):
        f.app, s.app = fast, slow
        yield f, s


def _fast_route(app: FastAPI) -> RecognitionFastRoute:
    route = app.router.routes[0]
    assert isinstance(route, RecognitionFastRoute)
    return route


CASES = [
    {"aeo_id": AEO, "country": "UZ"},  # recognised under the MRA
    {"aeo_id": AEO, "country": "KG"},  # no MRA
    {"aeo_id": AEO, "country": "KZ"},  # the issuer's own country
    {"aeo_id": PRIVATE, "country": "UZ"},  # no consent to share under MRAs
    {"aeo_id": AEO, "country": "UZ", "at": "2020-01-01"},  # before it was issued
    {"aeo_id": AEO, "country": "UZ", "at": "2999-01-01T00:00:00+05:00"},
    {"aeo_id": "KZ-AEO-2026-999999", "country": "UZ"},  # unknown: 404 problem
    {"aeo_id": AEO, "country": "UZ", "at": "2026-13-45"},  # pattern ok, contract says 400
]


@pytest.mark.parametrize("params", CASES)
def test_same_answer_as_the_fastapi_route(
    pair: tuple[Client, Client], params: dict[str, str]
) -> None:
    fast, slow = pair
    assert (
        _fast_route(fast.app).matches(
            {"type": "http", "path": PATH, "method": "GET", "query_string": _qs(params)}
        )[0]
        is Match.FULL
    )
    got, want = fast.get(PATH, params=params), slow.get(PATH, params=params)
    assert got.status_code == want.status_code, (got.text, want.text)
    assert got.headers["content-type"] == want.headers["content-type"]
    assert got.json() == want.json()


def _qs(params: dict[str, str]) -> bytes:
    import urllib.parse

    return urllib.parse.urlencode(params).encode()


FALL_THROUGH = [
    "aeo_id=KZ-AEO-2026-000001",  # country missing
    "aeo_id=KZ-AEO-2026-000001&country=UZ&country=KG",  # given twice
    "aeo_id=KZ-AEO-2026-000001&country=uz",  # pattern
    "aeo_id=KZ-AEO-2026-000001%0A&country=UZ",  # trailing newline ($ in Python re)
    "aeo_id=KZ-AEO-2026-000001&country=UZ&at=",  # blank time
    "aeo_id=KZ-AEO-2026-000001&country=UZ&at=yesterday",
    "aeo_id=KZ-AEO-2026-000001&country=%FF%FE",  # not UTF-8
    "aeo_id=KZ-AEO-2026-000001&&country=UZ",  # empty pair
]


@pytest.mark.parametrize("query", FALL_THROUGH)
def test_invalid_requests_fall_through_to_the_validating_route(
    pair: tuple[Client, Client], query: str
) -> None:
    fast, slow = pair
    scope = {"type": "http", "path": PATH, "method": "GET", "query_string": query.encode()}
    assert _fast_route(fast.app).matches(scope)[0] is Match.NONE
    got, want = fast.get(f"{PATH}?{query}"), slow.get(f"{PATH}?{query}")
    assert (got.status_code, got.json()) == (want.status_code, want.json())
    assert got.status_code in (200, 422), got.text
    assert got.headers["content-type"] in ("application/json", "application/problem+json")


def test_other_methods_and_paths_are_not_taken(pair: tuple[Client, Client]) -> None:
    fast, _slow = pair
    route = _fast_route(fast.app)
    query = _qs(CASES[0])
    for method, path in (("POST", PATH), ("HEAD", PATH), ("GET", PATH + "/"), ("GET", "/v1/x")):
        scope = {"type": "http", "path": path, "method": method, "query_string": query}
        assert route.matches(scope)[0] is Match.NONE
    assert fast.post(PATH, params=CASES[0]).status_code == 405

"""The recognition check without FastAPI's per-request machinery: the API's hot path.

>>> app.router.routes.insert(0, RecognitionFastRoute(state))

Verifiers call ``GET /v1/recognition`` far more often than anything else, and FastAPI
spends most of such a request matching routes one by one and solving the query
parameters (about 200 µs of the 370 µs a check costs in the app; docs/benchmarks.md).
This route, put first, takes only a request whose parameters are each given once and
match the documented patterns exactly, asks the same service, and returns the
contract's canonical JSON as is. Any other request to the path, including every one
that is invalid, falls through to the documented FastAPI route (``api.routes.mra``),
which validates and answers it — so errors, the OpenAPI schema and the answer's content
stay those of that route; tests/api/test_fastpath.py checks both give the same answers.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl

from starlette.responses import Response
from starlette.routing import BaseRoute, Match
from starlette.types import Receive, Scope, Send

from node.services import recognition

from .deps import ApiState
from .routes.models import AEO_ID, COUNTRY, TIME

__all__ = ["PATH", "RecognitionFastRoute"]

PATH = "/v1/recognition"
_RULES = {
    "aeo_id": re.compile(AEO_ID),
    "country": re.compile(COUNTRY),
    "at": re.compile(TIME),
}
_REQUIRED = frozenset(("aeo_id", "country"))
_KEY = "caravan.recognition"


def _params(query: bytes) -> dict[str, str] | None:
    """The check's parameters when all are valid and given once; else None."""
    try:
        pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    found: dict[str, str] = {}
    for name, value in pairs:
        rule = _RULES.get(name)
        if rule is None:
            continue  # FastAPI ignores unknown parameters too
        if name in found or rule.fullmatch(value) is None:
            return None
        found[name] = value
    return found if found.keys() >= _REQUIRED else None


class RecognitionFastRoute(BaseRoute):
    """``GET /v1/recognition`` with valid parameters; everything else falls through."""

    def __init__(self, state: ApiState) -> None:
        self.state = state

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "GET":
            return Match.NONE, {}
        params = _params(scope.get("query_string", b""))
        if params is None:
            return Match.NONE, {}
        return Match.FULL, {_KEY: params}

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        params = scope[_KEY]
        body = await self.state.read(
            recognition.check_json,
            self.state.ctx,
            params["aeo_id"],
            params["country"],
            params.get("at"),
        )
        await Response(body, media_type="application/json")(scope, receive, send)

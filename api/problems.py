"""RFC 9457 problem details: every API error is one ``application/problem+json`` body.

>>> app = FastAPI()
>>> install_problem_handlers(app)
>>> @app.get("/v1/aeo/{aeo_id}", responses=PROBLEM_RESPONSES)
... def read_aeo(aeo_id: str) -> AeoPublic: ...

A :class:`node.errors.NodeError` becomes its ``status`` with its ``code`` and message; a
request that fails the route's schema becomes 422 ``VALIDATION_FAILED`` with the failing
fields in ``errors``; Starlette's 404/405 become problems too; anything unexpected is a
500 ``INTERNAL_ERROR`` without detail (the traceback goes to the server log only).

The ``type`` of a problem is ``https://caravan.dev/problems/<code>``: the code is the
machine-readable part a client switches on, the title the status phrase.
"""

from __future__ import annotations

import http
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from node.errors import NodeError

__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "PROBLEM_RESPONSES",
    "PROBLEM_TYPE_BASE",
    "FieldError",
    "Problem",
    "install_problem_handlers",
    "problem_response",
    "problem_responses",
]

log = logging.getLogger("caravan.api")

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://caravan.dev/problems/"

#: machine codes of the problems this module makes itself (routes' codes come from NodeError)
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    409: "CONFLICT",
    413: "BODY_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_FAILED",
    429: "TOO_MANY_REQUESTS",
    500: "INTERNAL_ERROR",
    503: "UNAVAILABLE",
}


class FieldError(BaseModel):
    """One failing field of a request: where it is, what is wrong, the pydantic type."""

    location: list[str | int] = Field(
        description='path to the field, e.g. ["body", "members", 0, "msp_id"] or '
        '["query", "from_block"]'
    )
    message: str
    type: str


class Problem(BaseModel):
    """An RFC 9457 problem details object with Caravan's ``code`` extension member."""

    type: str = Field(description=f"{PROBLEM_TYPE_BASE}<code>")
    title: str = Field(description="the HTTP status phrase")
    status: int
    detail: str | None = Field(default=None, description="one line about this occurrence")
    instance: str | None = Field(default=None, description="the request path")
    code: str = Field(description="machine-readable code, e.g. UNTRUSTED_CREATOR")
    errors: list[FieldError] | None = Field(
        default=None, description="the failing fields (422 VALIDATION_FAILED only)"
    )


def _title(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_response(
    status: int,
    code: str | None = None,
    detail: str | None = None,
    *,
    instance: str | None = None,
    errors: Sequence[FieldError] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A problem+json response; also a plain ASGI app (middleware can send it)."""
    code = code or _STATUS_CODES.get(status, "ERROR")
    problem = Problem(
        type=PROBLEM_TYPE_BASE + code,
        title=_title(status),
        status=status,
        detail=detail,
        instance=instance,
        code=code,
        errors=list(errors) if errors is not None else None,
    )
    return JSONResponse(
        problem.model_dump(mode="json", exclude_none=True),
        status_code=status,
        headers=dict(headers) if headers else None,
        media_type=PROBLEM_MEDIA_TYPE,
    )


def _node_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, NodeError)
    if exc.status >= 500:
        log.error("%s %s: %s %s", request.method, request.url.path, exc.code, exc.message)
    headers: Mapping[str, str] | None = getattr(exc, "headers", None)
    return problem_response(
        exc.status, exc.code, exc.message, instance=request.url.path, headers=headers
    )


def _field_errors(raw: Sequence[Any]) -> list[FieldError]:
    # never echo the input: it may be large or confidential
    return [
        FieldError(
            location=[p if isinstance(p, int) else str(p) for p in e.get("loc", ())],
            message=str(e.get("msg", "invalid")),
            type=str(e.get("type", "value_error")),
        )
        for e in raw
        if isinstance(e, Mapping)
    ]


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc.errors())
    first = errors[0] if errors else None
    detail = (
        "the request does not match the schema"
        if first is None
        else f"{'.'.join(str(p) for p in first.location)}: {first.message}"
        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else "")
    )
    return problem_response(422, None, detail, instance=request.url.path, errors=errors)


def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail != _title(status) else None
    if detail is None and status == 404:
        detail = f"no resource at {request.url.path}"
    elif detail is None and status == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
    code: str | None = getattr(exc, "code", None)
    return problem_response(status, code, detail, instance=request.url.path, headers=exc.headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("unexpected error in %s %s", request.method, request.url.path, exc_info=exc)
    return problem_response(500, "INTERNAL_ERROR", None, instance=request.url.path)


def install_problem_handlers(app: FastAPI) -> None:
    """Map every error of ``app`` to problem+json (see the module docstring)."""
    app.add_exception_handler(NodeError, _node_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_exception)
    app.add_exception_handler(Exception, _unexpected)
    _document_problems(app)


def _document_problems(app: FastAPI) -> None:
    """Make the OpenAPI document say what the handlers send: problem+json, not JSON.

    FastAPI files a ``responses`` model under application/json and gives every route a
    default 422 ``HTTPValidationError``; both move to ``application/problem+json`` with
    the :class:`Problem` schema.
    """
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = generate()
        ref = {"$ref": "#/components/schemas/Problem"}
        used = False
        for path in schema.get("paths", {}).values():
            for operation in path.values():
                for status, response in operation.get("responses", {}).items():
                    content = response.get("content", {})
                    if PROBLEM_MEDIA_TYPE in content or (
                        status == "422"
                        and content.get("application/json", {}).get("schema", {}).get("$ref", "")
                        == "#/components/schemas/HTTPValidationError"
                    ):
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": ref}}
                        used = True
        if used:
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            extra = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(extra.pop("$defs", {}))
            schemas["Problem"] = extra
            # FastAPI's own validation schemas, now referenced by nothing
            if "detail" in schemas.get("HTTPValidationError", {}).get("properties", {}):
                schemas.pop("HTTPValidationError")
                if "loc" in schemas.get("ValidationError", {}).get("properties", {}):
                    schemas.pop("ValidationError")
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


_DESCRIPTIONS = {
    400: "Bad request (a malformed proposal, query or header)",
    401: "Missing or invalid RFC 9421 request signature",
    403: "The caller or creator is not trusted or not allowed",
    404: "No such resource",
    409: "Conflict with the ledger state",
    413: "Request body larger than the node's limit",
    422: "The request does not match the schema (fields in errors)",
    500: "Internal error (no detail; logged on the node)",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` documenting these statuses as problem+json.

    >>> @app.get("/v1/aeo/{aeo_id}", responses=problem_responses(404, 422))
    """
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, _title(status)),
            "content": {PROBLEM_MEDIA_TYPE: {}},
        }
        for status in statuses
    }


#: the usual set for a route: 400, 401, 403, 404, 409, 413, 422
PROBLEM_RESPONSES = problem_responses(400, 401, 403, 404, 409, 413, 422)

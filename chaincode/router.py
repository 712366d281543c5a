"""The dispatcher: one entry point for both ledger backends.

>>> response = invoke(stub, "GetAeo", ['{"aeo_id": "KZ-AEO-2025-000123"}'])
>>> response.status, json.loads(response.payload)["record"]["status"]
(200, 'valid')

200 OK (payload = canonical JSON of the result), 400 malformed arguments or unknown
function, 403 unauthorised creator, 404 unknown record, 409 invalid lifecycle step or
conflict, 500 an internal error (the message names only the exception type). A
transaction's typed event entries are sent as ONE chaincode event named ``caravan``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import aeo, mra, recognition, registry, trace
from .canonical import Encoded, canonical_json
from .context import EVENT_NAME, Context
from .errors import ContractError
from .stub import Stub

__all__ = ["FUNCTIONS", "Response", "invoke"]


@dataclass(frozen=True)
class Response:
    status: int
    message: str
    payload: bytes = b""


Handler = Callable[[Context, list[str]], Any]

FUNCTIONS: dict[str, Handler] = {
    **registry.FUNCTIONS,
    **aeo.FUNCTIONS,
    **mra.FUNCTIONS,
    **recognition.FUNCTIONS,
    **trace.FUNCTIONS,
}


def invoke(stub: Stub, function: str, args: Sequence[str]) -> Response:
    """Run ``function`` with ``args`` (JSON strings) on ``stub``; never raises."""
    handler = FUNCTIONS.get(function)
    if handler is None:
        shown = function if len(function) <= 64 and function.isprintable() else function[:64]
        return Response(400, f"unknown function {shown!r}")
    if not all(isinstance(a, str) for a in args):
        return Response(400, "arguments must be strings")
    try:
        ctx = Context(stub)
        result = handler(ctx, list(args))
        payload = result.data if type(result) is Encoded else canonical_json(result)
        if ctx.entries:
            stub.set_event(EVENT_NAME, ctx.event_payload())
    except ContractError as exc:
        return Response(exc.status, exc.message)
    except Exception as exc:  # the boundary: nothing escapes as a traceback
        return Response(500, f"internal error in {function}: {type(exc).__name__}")
    return Response(200, "OK", payload)

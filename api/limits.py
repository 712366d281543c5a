"""Request body limit: a pure ASGI middleware answering 413 problem+json.

>>> app.add_middleware(BodyLimit, max_body_bytes=1024 * 1024)

A declared ``Content-Length`` over the limit is refused without handing the body to
the application: the body is read and discarded first when it is at most
``DRAIN_MAX_BYTES`` (closing a socket with unread data makes the kernel reset the
connection, and the client may then lose the 413 before reading it), larger ones are
refused at once. A body without one (``Transfer-Encoding: chunked``) is counted as the application
reads it; the chunk that crosses the limit raises :class:`BodyTooLarge` inside the
application's ``receive`` — a Starlette ``HTTPException`` (413), so FastAPI's body
parsing lets it through and the problem handlers answer it. If nothing in the
application answers it, the middleware does (when no response has started).
"""

from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .problems import problem_response

__all__ = ["DEFAULT_MAX_BODY_BYTES", "BodyLimit", "BodyTooLarge"]

#: 1 MiB (node.yaml ``limits.max_body_bytes``)
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: an over-limit body declared at most this long is drained before the 413 is sent
DRAIN_MAX_BYTES = 8 * 1024 * 1024


class BodyTooLarge(HTTPException):
    """The request body is over the node's limit (413 ``BODY_TOO_LARGE``)."""

    code = "BODY_TOO_LARGE"

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"the request body is larger than {limit} bytes")


class BodyLimit:
    """Refuse request bodies larger than ``max_body_bytes`` with 413 problem+json."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        if max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.limit:
            if declared <= DRAIN_MAX_BYTES:
                await _drain(receive)
            await self._refuse(scope, receive, send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        error = BodyTooLarge(self.limit)
        response = problem_response(
            413,
            BodyTooLarge.code,
            error.detail,
            instance=scope.get("path"),
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)


async def _drain(receive: Receive) -> None:
    """Read and drop the request body (nothing of it is kept)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None

"""The body limit: 413 problem+json for declared and for streamed (chunked) bodies."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from api.limits import DEFAULT_MAX_BODY_BYTES, DRAIN_MAX_BYTES, BodyLimit
from api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from tests.api.conftest import serve

LIMIT = 1024


class Note(BaseModel):
    text: str


def make_app(**limit: Any) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    app.add_middleware(BodyLimit, **limit)

    @app.post("/v1/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.post("/v1/stream")
    async def stream(request: Request) -> dict[str, int]:
        total = 0
        async for chunk in request.stream():
            total += len(chunk)
        return {"bytes": total}

    @app.post("/v1/notes")
    def notes(note: Note) -> dict[str, int]:
        return {"chars": len(note.text)}

    return app


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with serve(make_app(max_body_bytes=LIMIT)) as base, httpx.Client(base_url=base) as http:
        yield http


def chunks(total: int, size: int = 256) -> Iterator[bytes]:
    while total > 0:
        yield b"x" * min(size, total)
        total -= size


def too_large(response: httpx.Response, limit: int = LIMIT) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["code"] == "BODY_TOO_LARGE" and body["status"] == 413
    assert body["detail"] == f"the request body is larger than {limit} bytes"


@pytest.mark.parametrize("path", ["/v1/raw", "/v1/stream"])
def test_bodies_up_to_the_limit_pass(client: httpx.Client, path: str) -> None:
    assert client.post(path, content=b"x" * LIMIT).json() == {"bytes": LIMIT}
    assert client.post(path, content=chunks(LIMIT)).json() == {"bytes": LIMIT}


@pytest.mark.parametrize("path", ["/v1/raw", "/v1/stream", "/v1/notes"])
def test_declared_length_over_the_limit(client: httpx.Client, path: str) -> None:
    request = client.build_request("POST", path, content=b"x" * (LIMIT + 1))
    assert request.headers["content-length"] == str(LIMIT + 1)
    too_large(client.send(request))


@pytest.mark.parametrize("path", ["/v1/raw", "/v1/stream", "/v1/notes"])
def test_chunked_body_over_the_limit(client: httpx.Client, path: str) -> None:
    request = client.build_request(
        "POST", path, content=chunks(4 * LIMIT), headers={"content-type": "application/json"}
    )
    assert request.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in request.headers
    too_large(client.send(request))


def test_default_limit_is_one_mebibyte() -> None:
    assert DEFAULT_MAX_BODY_BYTES == 1024 * 1024
    with serve(make_app()) as base, httpx.Client(base_url=base) as http:
        fits = http.post("/v1/raw", content=b"z" * DEFAULT_MAX_BODY_BYTES)
        assert fits.json() == {"bytes": DEFAULT_MAX_BODY_BYTES}
        too_large(
            http.post("/v1/stream", content=chunks(DEFAULT_MAX_BODY_BYTES + 1, 64 * 1024)),
            DEFAULT_MAX_BODY_BYTES,
        )


def test_limit_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        BodyLimit(make_app(), max_body_bytes=-1)


def test_a_large_declared_body_is_drained_so_the_413_arrives(client: httpx.Client) -> None:
    """Several MiB over the limit: closing with unread data would reset the connection
    and could lose the answer; the body is read and dropped first, every time."""
    body = b"x" * (DRAIN_MAX_BYTES // 2)
    for _ in range(5):
        too_large(client.post("/v1/raw", content=body))


def test_a_body_declared_beyond_the_drain_bound_is_refused_unread(client: httpx.Client) -> None:
    """The 413 comes back before any of a 1 GiB body is sent."""
    url = httpx.URL(str(client.base_url))
    with socket.create_connection((url.host, url.port or 80), timeout=30) as sock:
        sock.sendall(
            b"POST /v1/raw HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n"
            + f"Content-Length: {1 << 30}\r\n\r\n".encode()
        )
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(4096)
            assert chunk, f"connection closed without an answer: {answer!r}"
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"connection: close" in answer.lower()

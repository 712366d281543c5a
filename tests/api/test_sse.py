"""The ledger event stream over real HTTP: replay, follow, disconnect, resume by id."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import anyio
import httpx
import pytest
from fastapi import FastAPI, Header, Query
from sse_starlette import EventSourceResponse

from api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from api.sse import BadEventId, event_id, parse_event_id, stream_events
from node.embedded.ledger import EmbeddedLedger
from tests.api.conftest import serve
from tests.node.conftest import Signers, propose
from tests.node.test_ledger import anchor_batch, event, with_sez

MakeLedger = Callable[..., EmbeddedLedger]


class Waiters:
    """The ``wake`` callable: returns when :meth:`notify` is called; counts who waits."""

    def __init__(self) -> None:
        self.active = 0
        self.commits = 0

    def notify(self) -> None:  # from the test thread, after a commit
        self.commits += 1

    async def wake(self) -> None:
        self.active += 1
        seen = self.commits
        try:
            while self.commits == seen:
                await anyio.sleep(0.01)
        finally:
            self.active -= 1


def make_app(ledger: EmbeddedLedger, waiters: Waiters | None, heartbeat: float = 15.0) -> FastAPI:
    """The stream wakes on ``waiters`` only (an hour's poll) or, without, polls at 50 ms."""
    app = FastAPI()
    install_problem_handlers(app)

    @app.get("/v1/events", response_class=EventSourceResponse)
    async def events(
        from_block: int | None = Query(None, ge=0),
        last_event_id: str | None = Header(None),
    ) -> EventSourceResponse:
        return await stream_events(
            ledger,
            from_block=from_block,
            last_event_id=last_event_id,
            poll_interval=0.05 if waiters is None else 3600,
            heartbeat=heartbeat,
            wake=None if waiters is None else waiters.wake,
        )

    return app


def messages(response: httpx.Response) -> Iterator[dict[str, str]]:
    """SSE messages (id/event/data) and comments ({"comment": …}) as they arrive."""
    current: dict[str, str] = {}
    for line in response.iter_lines():
        if line == "":
            if current:
                yield current
            current = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            current[name] = current[name] + "\n" + value if name in current else value


def next_events(stream: Iterator[dict[str, str]], n: int) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for message in stream:
        if "comment" not in message:
            found.append(message)
            if len(found) == n:
                return found
    raise AssertionError(f"the stream ended after {len(found)} of {n} events")


@contextmanager
def connect(
    http: httpx.Client, **kw: Any
) -> Iterator[tuple[httpx.Response, Iterator[dict[str, str]]]]:
    with http.stream("GET", "/v1/events", **kw) as response:
        yield response, messages(response)


def anchor(ledger: EmbeddedLedger, signers: Signers, *numbers: int) -> list[str]:
    """Anchor one event per number, all in one block; the tx ids in order."""
    receipts = ledger.submit_many(
        [propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(n))) for n in numbers]
    )
    assert all(r.valid for r in receipts), receipts
    assert len({r.block for r in receipts}) == 1
    return [r.tx_id for r in receipts]


def ids(ledger: EmbeddedLedger, from_block: int = 0) -> list[str]:
    return [event_id(b, tx) for b, tx, _name, _payload in ledger.events(from_block)]


@pytest.fixture
def ledger(make_ledger: MakeLedger, signers: Signers) -> EmbeddedLedger:
    ledger = make_ledger()
    with_sez(ledger, signers)  # block 1
    anchor(ledger, signers, 1, 2)  # block 2: two events
    return ledger


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_replay_follow_disconnect_and_resume(ledger: EmbeddedLedger, signers: Signers) -> None:
    waiters = Waiters()
    with serve(make_app(ledger, waiters)) as base, httpx.Client(base_url=base, timeout=10) as http:
        with connect(http) as (response, stream):
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            replayed = next_events(stream, 4)
            assert [m["id"] for m in replayed] == ids(ledger)
            assert [m["id"].split(":")[0] for m in replayed] == ["0", "1", "2", "2"]
            stored = [(name, json.loads(payload)) for _b, _t, name, payload in ledger.events()]
            assert [(m["event"], json.loads(m["data"])) for m in replayed] == stored
            # caught up: the stream waits for a commit, then follows it
            wait_until(lambda: waiters.active == 1, "the stream is not waiting for commits")
            (tx,) = anchor(ledger, signers, 3)
            waiters.notify()
            (followed,) = next_events(stream, 1)
            assert followed["id"] == event_id(3, tx)
            last = followed["id"]
            wait_until(lambda: waiters.active == 1, "the stream is not waiting for commits")
        # the client went away: the stream's task is cancelled (it stops waiting)
        wait_until(lambda: waiters.active == 0, "the stream did not stop on disconnect")

        missed = anchor(ledger, signers, 4) + anchor(ledger, signers, 5, 6)
        with connect(http, headers={"Last-Event-ID": last}) as (response, stream):
            resumed = next_events(stream, 3)
            assert [m["id"] for m in resumed] == [
                event_id(4, missed[0]),
                event_id(5, missed[1]),
                event_id(5, missed[2]),
            ]
            # nothing else was pending: the next event is the next commit
            (tx,) = anchor(ledger, signers, 7)
            waiters.notify()
            assert next_events(stream, 1)[0]["id"] == event_id(6, tx)


def test_resume_inside_a_block_and_from_a_block(ledger: EmbeddedLedger) -> None:
    all_ids = ids(ledger)
    with (
        serve(make_app(ledger, Waiters())) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        # after the first of block 2's two events: only the second
        with connect(http, headers={"Last-Event-ID": all_ids[2]}) as (_r, stream):
            assert next_events(stream, 1)[0]["id"] == all_ids[3]
        with connect(http, params={"from_block": 1}) as (_r, stream):
            assert [m["id"] for m in next_events(stream, 3)] == all_ids[1:]
        # the header wins over the query (a reconnecting EventSource repeats its URL)
        with connect(http, params={"from_block": 0}, headers={"Last-Event-ID": all_ids[1]}) as (
            _r,
            stream,
        ):
            assert next_events(stream, 1)[0]["id"] == all_ids[2]


def test_heartbeats_while_idle(ledger: EmbeddedLedger) -> None:
    app = make_app(ledger, Waiters(), heartbeat=0.05)
    with (
        serve(app) as base,
        httpx.Client(base_url=base, timeout=10) as http,
        connect(http, params={"from_block": 2}) as (_r, stream),
    ):
        assert len(next_events(stream, 2)) == 2
        assert next(stream) == {"comment": "heartbeat"}


def test_without_a_wake_callable_the_stream_polls(ledger: EmbeddedLedger, signers: Signers) -> None:
    with (
        serve(make_app(ledger, None)) as base,
        httpx.Client(base_url=base, timeout=10) as http,
        connect(http, params={"from_block": 2}) as (_r, stream),
    ):
        assert len(next_events(stream, 2)) == 2
        (tx,) = anchor(ledger, signers, 8)
        assert next_events(stream, 1)[0]["id"] == event_id(3, tx)


@pytest.mark.parametrize(
    ("headers", "params", "status", "code"),
    [
        ({"Last-Event-ID": "two:abc"}, {}, 400, "BAD_EVENT_ID"),
        ({"Last-Event-ID": "2:" + "0" * 64}, {}, 400, "BAD_EVENT_ID"),
        ({"Last-Event-ID": "99:" + "0" * 64}, {}, 400, "BAD_EVENT_ID"),
        ({}, {"from_block": -1}, 422, "VALIDATION_FAILED"),
        ({}, {"from_block": "x"}, 422, "VALIDATION_FAILED"),
    ],
)
def test_bad_positions_are_problems(
    ledger: EmbeddedLedger,
    headers: dict[str, str],
    params: dict[str, Any],
    status: int,
    code: str,
) -> None:
    with (
        serve(make_app(ledger, Waiters())) as base,
        httpx.Client(base_url=base, timeout=10) as http,
    ):
        response = http.get("/v1/events", headers=headers, params=params)
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.json()["code"] == code


def test_event_ids() -> None:
    tx = "ab" * 32
    assert parse_event_id(event_id(12, tx)) == (12, tx)
    for bad in ("", "12", "-1:" + tx, "01:" + tx, "1:" + tx.upper(), f"{2**40}:{tx}"):
        with pytest.raises(BadEventId):
            parse_event_id(bad)

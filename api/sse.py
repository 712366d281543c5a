"""The ledger event stream as Server-Sent Events, resumable by event id.

>>> @app.get("/v1/events", response_class=EventSourceResponse)
... async def events(
...     from_block: Annotated[int | None, Query(ge=0)] = None,
...     last_event_id: Annotated[str | None, Header()] = None,
... ) -> EventSourceResponse:
...     return await stream_events(ledger, from_block=from_block, last_event_id=last_event_id)

Each valid transaction's chaincode event is one SSE message::

    id: 12:3f9c…e1            <block>:<tx_id>
    event: caravan            the event name
    data: {"entries":[…]}     the payload (canonical JSON, one line)

The stream replays ``Ledger.events`` from ``from_block`` (default 0), then follows new
blocks: it polls the ledger every ``poll_interval`` seconds (an indexed range read that
finds nothing when nothing was committed) or sooner when ``wake`` returns (a callable the
node can complete on each commit). Comments (``: ping …``) every ``heartbeat`` seconds
keep proxies from closing an idle stream; the stream ends when the client goes away.

A client that reconnects sends the last id it received in ``Last-Event-ID`` (browsers do
this themselves); the stream then starts just after that event: the rest of its block,
then the following blocks. The header wins over ``from_block``, since a reconnecting
EventSource repeats the original URL. An id that is malformed or names no event of this
ledger is refused (400 ``BAD_EVENT_ID``) before the stream starts.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass

import anyio
import anyio.to_thread
from sse_starlette import EventSourceResponse, ServerSentEvent

from node.errors import NodeError
from node.ledger import Ledger

__all__ = [
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_POLL_INTERVAL_S",
    "BadEventId",
    "EventCursor",
    "event_id",
    "parse_event_id",
    "resume_cursor",
    "stream_events",
]

DEFAULT_POLL_INTERVAL_S = 0.5
DEFAULT_HEARTBEAT_S = 15.0
#: events read from the ledger per worker-thread call
BATCH = 256
MAX_BLOCK = 2**40
_EVENT_ID = re.compile(r"(0|[1-9][0-9]{0,12}):([0-9a-f]{64})\Z")

Event = tuple[int, str, str, bytes]


class BadEventId(NodeError):
    """A ``Last-Event-ID`` that is malformed or names no event of this ledger."""

    code = "BAD_EVENT_ID"
    status = 400


@dataclass(frozen=True)
class EventCursor:
    """Where a stream resumes: in ``block``, after its first ``skip`` events."""

    block: int
    skip: int = 0


def event_id(block: int, tx_id: str) -> str:
    """The SSE id of a transaction's event: ``<block>:<tx_id>``."""
    return f"{block}:{tx_id}"


def parse_event_id(value: str) -> tuple[int, str]:
    """``(block, tx_id)`` of an event id; raises :class:`BadEventId`."""
    match = _EVENT_ID.match(value.strip())
    if match is None or int(match[1]) >= MAX_BLOCK:
        raise BadEventId(
            "Last-Event-ID must be <block>:<tx_id> (a block number and 64 lower-case hex "
            "digits), as sent in an event's id"
        )
    return int(match[1]), match[2]


def _close(iterator: Iterator[Event]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _read(ledger: Ledger, cursor: EventCursor, limit: int) -> list[Event]:
    """Up to ``limit`` events after ``cursor`` (runs in a worker thread)."""
    found: list[Event] = []
    skip = cursor.skip
    events = ledger.events(cursor.block)
    try:
        for event in events:
            if skip and event[0] == cursor.block:
                skip -= 1
                continue
            found.append(event)
            if len(found) >= limit:
                break
    finally:
        _close(events)
    return found


def _locate(ledger: Ledger, block: int, tx_id: str) -> EventCursor | None:
    """The cursor just after the event of ``tx_id`` in ``block``, if there is one."""
    events = ledger.events(block)
    try:
        for n, (number, tx, _name, _payload) in enumerate(events):
            if number != block:
                return None
            if tx == tx_id:
                return EventCursor(block, n + 1)
    finally:
        _close(events)
    return None


async def resume_cursor(
    ledger: Ledger, *, from_block: int | None = None, last_event_id: str | None = None
) -> EventCursor:
    """The cursor for a request: after ``Last-Event-ID`` if given, else at ``from_block``."""
    if last_event_id is not None and last_event_id.strip():
        block, tx_id = parse_event_id(last_event_id)
        cursor = await anyio.to_thread.run_sync(_locate, ledger, block, tx_id)
        if cursor is None:
            raise BadEventId(f"no event of transaction {tx_id} in block {block} on this ledger")
        return cursor
    if from_block is not None and not 0 <= from_block < MAX_BLOCK:
        raise BadEventId(f"from_block must be between 0 and {MAX_BLOCK - 1}")
    return EventCursor(from_block or 0)


async def _follow(
    ledger: Ledger,
    cursor: EventCursor,
    poll_interval: float,
    wake: Callable[[], Awaitable[object]] | None,
) -> AsyncIterator[ServerSentEvent]:
    while True:
        batch = await anyio.to_thread.run_sync(_read, ledger, cursor, BATCH)
        for block, tx_id, name, payload in batch:
            yield ServerSentEvent(
                data=payload.decode("utf-8", "replace"),
                event=name,
                id=event_id(block, tx_id),
            )
            cursor = (
                EventCursor(block, cursor.skip + 1)
                if block == cursor.block
                else EventCursor(block, 1)
            )
        if len(batch) < BATCH:  # caught up: wait for a commit
            with anyio.move_on_after(poll_interval):
                if wake is None:
                    await anyio.sleep(poll_interval)
                else:
                    await wake()


async def stream_events(
    ledger: Ledger,
    *,
    from_block: int | None = None,
    last_event_id: str | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL_S,
    heartbeat: float = DEFAULT_HEARTBEAT_S,
    wake: Callable[[], Awaitable[object]] | None = None,
) -> EventSourceResponse:
    """The SSE response for a request (see the module docstring).

    Checks ``last_event_id`` / ``from_block`` first, so a bad one is a 400 problem rather
    than a broken stream.
    """
    cursor = await resume_cursor(ledger, from_block=from_block, last_event_id=last_event_id)
    return EventSourceResponse(
        _follow(ledger, cursor, poll_interval, wake),
        ping=heartbeat,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        sep="\n",
    )

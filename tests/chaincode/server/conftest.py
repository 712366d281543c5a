"""Fixtures: the chaincode server on a loopback port (in a thread with its own event loop)
and a test peer connected to it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

from chaincode.server import ChaincodeServer
from tests.node.conftest import Signers, genesis_arg, propose

from .helpers import submit
from .peer import TestPeer

CCID = "caravan_1.0:" + "ab" * 32
T = TypeVar("T")


@dataclass
class Running:
    server: ChaincodeServer
    address: str
    loop: asyncio.AbstractEventLoop
    thread: threading.Thread

    def on_loop(self, function: Callable[[], T]) -> T:
        """``function()`` called on the server's event loop; its result."""

        async def call() -> T:
            return function()

        return asyncio.run_coroutine_threadsafe(call(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def start_server(**options: object) -> Running:
    loop = asyncio.new_event_loop()
    server = ChaincodeServer("127.0.0.1:0", CCID, **options)  # type: ignore[arg-type]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    port = asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
    return Running(server, f"127.0.0.1:{port}", loop, thread)


@pytest.fixture(scope="module", params=["http2", "grpcio"])
def running(request: pytest.FixtureRequest) -> Iterator[Running]:
    """The server with each engine: its own HTTP/2 (the default) and grpc.aio."""
    run = start_server(engine=request.param)
    yield run
    run.stop()


@pytest.fixture
def peer(running: Running) -> Iterator[TestPeer]:
    peer = TestPeer.connect(running.address)
    yield peer
    peer.close()
    assert peer.violations == []


@pytest.fixture
def founded(peer: TestPeer, signers: Signers) -> TestPeer:
    """A peer whose world state has the genesis of KZ and UZ (KG is not a member)."""
    genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ", "UZ"))
    assert submit(peer, genesis).status == 200
    return peer

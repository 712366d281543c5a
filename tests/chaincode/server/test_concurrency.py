"""Transactions as greenlets on one stream: interleaving, isolation, a stream that goes
away mid-transaction; on both engines (the ``running`` fixture)."""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from greenlet import greenlet  # type: ignore[import-untyped]

from chaincode import router
from chaincode.context import Context
from chaincode.server import PeerError

from .conftest import Running
from .peer import Msg, TestPeer


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A test-only contract function ``Probe`` whose body the test sets."""
    box: dict[str, Any] = {}

    def handler(ctx: Context, args: list[str]) -> Any:
        return box["body"](ctx, args)

    monkeypatch.setitem(router.FUNCTIONS, "Probe", handler)
    yield box


def live_greenlets() -> list[Any]:
    """Greenlets started and not finished (a thread's main greenlet has no parent)."""
    gc.collect()
    return [g for g in gc.get_objects() if isinstance(g, greenlet) and g.parent is not None and g]


def test_500_transactions_interleave_their_stub_calls_on_one_stream(
    peer: TestPeer, running: Running, probe: dict[str, Any]
) -> None:
    for i in range(500):
        peer.state[f"k{i}"] = str(i).encode()
    peer.keys = sorted(peer.state)
    order: list[str] = []
    peer.on_call = lambda msg: order.append(msg.txid)

    def body(ctx: Context, args: list[str]) -> Any:
        n = json.loads(args[0])["n"]
        values = [ctx.stub.get_state(f"k{(n + j) % 500}") for j in range(3)]
        return [int(v or b"-1") for v in values]

    probe["body"] = body
    futures = [peer.invoke(["Probe", json.dumps({"n": n})]) for n in range(500)]
    answers = [TestPeer.response(f.result(60)) for f in futures]
    assert [a.status for a in answers] == [200] * 500
    assert [json.loads(a.payload) for a in answers] == [
        [(n + j) % 500 for j in range(3)] for n in range(500)
    ]
    # each transaction made its 3 calls, one at a time (the test peer records a second
    # request while one is pending as a violation) ...
    assert len(order) == 1500 and peer.violations == []
    # ... and they interleaved: some transaction's calls are not contiguous
    spans: dict[str, list[int]] = {}
    for index, txid in enumerate(order):
        spans.setdefault(txid, []).append(index)
    assert any(pos[-1] - pos[0] > 2 for pos in spans.values())
    assert running.on_loop(running.server.in_flight) == 0
    assert live_greenlets() == []


def test_a_contract_exception_does_not_touch_the_other_transactions(
    peer: TestPeer, probe: dict[str, Any]
) -> None:
    peer.state["shared"] = b"7"
    peer.keys = ["shared"]

    def body(ctx: Context, args: list[str]) -> Any:
        n = json.loads(args[0])["n"]
        first = ctx.stub.get_state("shared")
        if n % 3 == 0:
            raise RuntimeError("boom")
        second = ctx.stub.get_state("shared")
        return {"n": n, "values": [first.decode(), second.decode()]}  # type: ignore[union-attr]

    probe["body"] = body
    futures = [peer.invoke(["Probe", json.dumps({"n": n})]) for n in range(120)]
    answers = [TestPeer.response(f.result(60)) for f in futures]
    for n, answer in enumerate(answers):
        if n % 3 == 0:
            assert (answer.status, answer.message) == (500, "internal error in Probe: RuntimeError")
        else:
            assert answer.status == 200
            assert json.loads(answer.payload) == {"n": n, "values": ["7", "7"]}
    assert live_greenlets() == []


@pytest.mark.parametrize("how", ["cancel", "half-close"])
def test_a_stream_closed_mid_transaction_leaves_no_greenlet(
    running: Running, probe: dict[str, Any], how: str
) -> None:
    peer = TestPeer.connect(running.address)
    ended = threading.Event()
    seen: dict[str, Any] = {}

    def on_call(msg: Any) -> None:
        if msg.type == Msg.GET_STATE and b"hang-up" in msg.payload:
            if how == "cancel":
                peer.channel.close()  # the RPC is cancelled: RST_STREAM
            else:
                peer.send(None)  # the peer ends its side of the stream

    def body(ctx: Context, args: list[str]) -> Any:
        try:
            ctx.stub.get_state("before")
            ctx.stub.get_state("hang-up")  # no answer: the stream goes away
            seen["after"] = True
        except PeerError as exc:
            seen["error"] = str(exc)
            raise
        finally:
            ended.set()

    probe["body"] = body
    peer.on_call = on_call
    done = peer.invoke(["Probe"])
    assert ended.wait(10), "the transaction's greenlet was never resumed"
    assert "after" not in seen
    assert seen["error"] == "GET_STATE: the peer closed the stream"
    try:
        answer = done.result(10)
    except ConnectionError:
        pass  # the stream ended without the answer
    else:  # a half-closed stream may still carry it (grpc.aio does)
        assert (TestPeer.response(answer).status, how) == (500, "half-close")
    assert running.on_loop(running.server.in_flight) == 0
    assert live_greenlets() == []
    peer.close()
    # the server still serves a new peer
    again = TestPeer.connect(running.address)
    assert TestPeer.response(again.invoke(["GetMembers"]).result(10)).status == 200
    again.close()

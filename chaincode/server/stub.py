"""The Stub the contracts run on inside the chaincode server: every call is a round trip
to the peer on the transaction's stream.

Each transaction runs in its own **greenlet** on the event loop's thread (the contracts
are synchronous): a stub call queues its request on the stream's send queue and switches
back to the loop; the stream's reader switches into the transaction again with the peer's
RESPONSE or ERROR. No threads, locks or cross-thread wake-ups per call. One call at a time
per transaction (the peer drops a second request for a transaction that has one pending,
and a reply names only the channel and transaction id). An ERROR reply is raised as
:class:`PeerError`, never returned as data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from greenlet import getcurrent, greenlet  # type: ignore[import-untyped]

from ..errors import Forbidden
from ..stub import COMPOSITE_KEY_NAMESPACE, Creator, KeyModification, RangeReads
from ._pb import chaincode_shim_pb2 as shim
from ._pb import kv_query_result_pb2

__all__ = ["WRITES_NEED_SUBMIT", "PeerError", "PeerStub", "TxChannel"]

Msg = shim.ChaincodeMessage
#: the message of a write (or event) in a read: only caravan.submit may write
WRITES_NEED_SUBMIT = "writes need a member's signed proposal (caravan.submit)"
#: Fabric's substitute for an open range start: plain ranges never see composite keys
EMPTY_KEY_SUBSTITUTE = "\x01"

_RESPONSE = Msg.RESPONSE
_ERROR = Msg.ERROR
_NAMES = {v: k for k, v in Msg.Type.items()}


class PeerError(Exception):
    """The peer answered a stub call with ERROR, or the stream is gone."""


class TxChannel:
    """One transaction's line to the peer, and the greenlet that runs the transaction.

    :meth:`start` (on the loop) runs a function in a new greenlet until its first stub
    call or its end; :meth:`call` (in that greenlet) sends a request and switches back to
    the loop; :meth:`deliver` (on the loop, from the stream reader) switches into the
    greenlet with the reply. :meth:`abort` (the stream is gone) wakes a waiting call with
    :class:`PeerError`, so no greenlet is left suspended.
    """

    __slots__ = ("_glet", "_send", "channel_id", "closed", "txid", "waiting")

    def __init__(self, channel_id: str, txid: str, send: Callable[[Any], None]) -> None:
        self.channel_id = channel_id
        self.txid = txid
        self._send = send
        self._glet: Any = None
        self.waiting = False
        self.closed = False

    def start(self, run: Callable[[], None]) -> None:
        """On the loop: run ``run`` in this transaction's greenlet until it first waits.

        ``run`` must not raise (an exception would surface here, in the caller)."""
        self._glet = greenlet(run)
        self._glet.switch()

    def call(self, kind: int, payload: bytes) -> bytes:
        """Send a ``kind`` request and return the RESPONSE payload (ERROR raises)."""
        if self.closed:
            raise PeerError(f"{_NAMES[kind]}: the transaction is over or its stream closed")
        glet = self._glet
        if glet is None or getcurrent() is not glet:
            raise RuntimeError("a stub call outside its transaction's greenlet")
        self._send(Msg(type=kind, payload=payload, txid=self.txid, channel_id=self.channel_id))
        self.waiting = True
        reply = glet.parent.switch()
        if reply is None:
            raise PeerError(f"{_NAMES[kind]}: the peer closed the stream")
        if reply.type == _RESPONSE:
            return bytes(reply.payload)
        if reply.type == _ERROR:
            raise PeerError(f"{_NAMES[kind]} refused by the peer")
        raise PeerError(f"{_NAMES[kind]}: unexpected {_NAMES.get(reply.type, reply.type)} reply")

    def deliver(self, reply: Any) -> bool:
        """On the loop (the stream reader): resume the waiting call with ``reply``; it
        runs until its next stub call or its end. False if no call is waiting."""
        if not self.waiting:
            return False
        self.waiting = False
        self._glet.switch(reply)
        return True

    def abort(self) -> None:
        """The stream is gone: wake a waiting call with no reply; later calls fail."""
        self.closed = True
        self.deliver(None)


class PeerStub(RangeReads):
    """A chaincode Stub over a :class:`TxChannel` (see the module docstring).

    ``writable=False`` (a read: any input but caravan.submit) refuses put/del/set_event
    with 403 :data:`WRITES_NEED_SUBMIT`.
    """

    __slots__ = ("_channel", "_creator", "_timestamp", "_tx_id", "event", "writable")

    def __init__(
        self,
        channel: TxChannel,
        creator: Creator | Callable[[], Creator],
        tx_id: str,
        timestamp: tuple[int, int],
        *,
        writable: bool,
    ) -> None:
        self._channel = channel
        self._creator = creator
        self._tx_id = tx_id
        self._timestamp = timestamp
        self.writable = writable
        self.event: tuple[str, bytes] | None = None

    # ---------------------------------------------------------------- state
    def get_state(self, key: str) -> bytes | None:
        value = self._channel.call(Msg.GET_STATE, shim.GetState(key=key).SerializeToString())
        return value or None

    def put_state(self, key: str, value: bytes) -> None:
        if not self.writable:
            raise Forbidden(WRITES_NEED_SUBMIT)
        if not key:
            raise ValueError("empty key")
        payload = shim.PutState(key=key, value=bytes(value)).SerializeToString()
        self._channel.call(Msg.PUT_STATE, payload)

    def del_state(self, key: str) -> None:
        if not self.writable:
            raise Forbidden(WRITES_NEED_SUBMIT)
        if not key:
            raise ValueError("empty key")
        self._channel.call(Msg.DEL_STATE, shim.DelState(key=key).SerializeToString())

    def get_state_by_range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        # as the Go shim: an open start is "\x01", so composite keys ("\x00…") never match
        for key, value in self._range(start or EMPTY_KEY_SUBSTITUTE, end):
            if not key.startswith(COMPOSITE_KEY_NAMESPACE):
                yield key, value

    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        payload = shim.GetStateByRange(startKey=start, endKey=end).SerializeToString()
        kv = kv_query_result_pb2.KV.FromString
        for raw in self._pages(Msg.GET_STATE_BY_RANGE, payload):
            item = kv(raw)
            yield item.key, bytes(item.value)

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        payload = shim.GetHistoryForKey(key=key).SerializeToString()
        parse = kv_query_result_pb2.KeyModification.FromString
        for raw in self._pages(Msg.GET_HISTORY_FOR_KEY, payload):
            mod = parse(raw)
            ts = mod.timestamp
            yield KeyModification(
                mod.tx_id, (ts.seconds, ts.nanos), bytes(mod.value), mod.is_delete
            )

    def _pages(self, kind: int, payload: bytes) -> Iterator[bytes]:
        """The result bytes of a query, page by page (QUERY_STATE_NEXT while has_more);
        an iterator abandoned early sends QUERY_STATE_CLOSE."""
        page = shim.QueryResponse.FromString(self._channel.call(kind, payload))
        try:
            while True:
                for result in page.results:
                    yield result.resultBytes
                if not page.has_more:
                    return
                nxt = shim.QueryStateNext(id=page.id).SerializeToString()
                page = shim.QueryResponse.FromString(self._channel.call(Msg.QUERY_STATE_NEXT, nxt))
        except GeneratorExit:
            if page.has_more and not self._channel.closed:
                close = shim.QueryStateClose(id=page.id).SerializeToString()
                self._channel.call(Msg.QUERY_STATE_CLOSE, close)
            raise

    # ------------------------------------------------------------- transaction
    def get_creator(self) -> Creator:
        creator = self._creator
        if not isinstance(creator, Creator):
            creator = self._creator = creator()
        return creator

    def get_tx_id(self) -> str:
        return self._tx_id

    def get_tx_timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def set_event(self, name: str, payload: bytes) -> None:
        if not self.writable:
            raise Forbidden(WRITES_NEED_SUBMIT)
        if not name:
            raise ValueError("event name must not be empty")
        self.event = (name, bytes(payload))

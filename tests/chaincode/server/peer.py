"""A test "peer": the peer's side of Fabric's chaincode stream, over a real gRPC channel.

>>> peer = TestPeer.connect(address)               # dials, answers REGISTER, sends READY
>>> done = peer.invoke(["IsRecognised", arg], creator=(msp, cert_pem))
>>> done.result().type == COMPLETED

It keeps an in-memory world state with per-key history and answers the chaincode's stub
calls as core/chaincode/handler.go does: reads see committed state only, writes and the
chaincode event are buffered per transaction and committed when the transaction
completes with status 200 (in completion order: no MVCC here). Range queries page
(``page_size``) with QUERY_STATE_NEXT. A second request for a transaction that has one
pending is recorded in ``violations`` (the real peer drops it).
"""

from __future__ import annotations

import bisect
import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.ledger.queryresult import kv_query_result_pb2
from fabric_protos.msp import identities_pb2
from fabric_protos.peer import (
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_pb2,
    proposal_response_pb2,
)
from google.protobuf import timestamp_pb2

Msg = chaincode_shim_pb2.ChaincodeMessage
COMPLETED, ERROR, RESPONSE = Msg.COMPLETED, Msg.ERROR, Msg.RESPONSE
CHANNEL = "caravan"


@dataclass
class _Tx:
    txid: str
    timestamp: tuple[int, int]
    future: Future[Any]
    writes: dict[str, bytes | None] = field(default_factory=dict)
    pending: bool = False
    iterators: dict[str, Iterator[bytes]] = field(default_factory=dict)


@dataclass(frozen=True)
class Modification:
    tx_id: str
    timestamp: tuple[int, int]
    value: bytes | None


def fabric_proposal(
    channel: str, txid: str, timestamp: tuple[int, int], creator: tuple[str, bytes]
) -> Any:
    """A Fabric SignedProposal as the peer hands it to the chaincode (signature not
    checked by the chaincode, so empty)."""
    identity = identities_pb2.SerializedIdentity(mspid=creator[0], id_bytes=creator[1])
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.ENDORSER_TRANSACTION,
        channel_id=channel,
        tx_id=txid,
        timestamp=timestamp_pb2.Timestamp(seconds=timestamp[0], nanos=timestamp[1]),
    )
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=common_pb2.SignatureHeader(
            creator=identity.SerializeToString(), nonce=os.urandom(24)
        ).SerializeToString(),
    )
    proposal = proposal_pb2.Proposal(header=header.SerializeToString())
    return proposal_pb2.SignedProposal(proposal_bytes=proposal.SerializeToString())


class TestPeer:
    """See the module docstring."""

    __test__ = False  # not a pytest class

    def __init__(self, channel: grpc.Channel, *, page_size: int = 3) -> None:
        self.channel = channel
        self.page_size = page_size
        self.state: dict[str, bytes] = {}
        self.keys: list[str] = []
        self.history: dict[str, list[Modification]] = {}
        self.events: list[tuple[str, str, bytes]] = []  # (txid, name, payload)
        self.received: list[int] = []  # message types from the chaincode, in order
        self.violations: list[str] = []
        self.registered_as: str | None = None
        self.keepalives = 0
        self.fail_keys: set[str] = set()  # GET_STATE of these keys answers ERROR
        self.on_call: Callable[[Any], None] | None = None
        self._txs: dict[str, _Tx] = {}
        self._lock = threading.Lock()
        self._out: queue.Queue[Any] = queue.Queue()
        self._registered = threading.Event()
        self._keepalive = threading.Event()
        self._ids = itertools.count()
        stub = chaincode_shim_pb2_grpc.ChaincodeStub(channel)
        self._stream = stub.Connect(iter(self._out.get, None))
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def connect(
        cls,
        address: str,
        *,
        credentials: grpc.ChannelCredentials | None = None,
        server_name: str | None = None,
        options: Sequence[tuple[str, Any]] = (),
        **kw: Any,
    ) -> TestPeer:
        """Dial ``address`` (TLS with ``credentials``, checking ``server_name``; gRPC
        channel ``options``) and wait for the chaincode's REGISTER."""
        if credentials is None:
            channel = grpc.insecure_channel(address, options=list(options))
        else:
            if server_name:
                options = [*options, ("grpc.ssl_target_name_override", server_name)]
            channel = grpc.secure_channel(address, credentials, options=list(options))
        peer = cls(channel, **kw)
        if not peer._registered.wait(10):
            raise TimeoutError("the chaincode did not register")
        return peer

    def close(self) -> None:
        self._out.put(None)
        self.channel.close()
        self._reader.join(5)

    # ------------------------------------------------------------------ driving
    def send(self, msg: Any) -> None:
        self._out.put(msg)

    def invoke(
        self,
        args: Sequence[bytes | str],
        *,
        creator: tuple[str, bytes] = ("KZ-CUSTOMS", b""),
        timestamp: tuple[int, int] | None = None,
        txid: str | None = None,
        channel: str = CHANNEL,
    ) -> Future[Any]:
        """Send a TRANSACTION; the future gets the COMPLETED or ERROR message."""
        txid = txid or f"fabric-tx-{next(self._ids):06d}-{os.urandom(4).hex()}"
        if timestamp is None:
            ns = time.time_ns()
            timestamp = (ns // 10**9, ns % 10**9)
        future: Future[Any] = Future()
        with self._lock:
            self._txs[txid] = _Tx(txid, timestamp, future)
        payload = chaincode_pb2.ChaincodeInput(
            args=[a.encode() if isinstance(a, str) else a for a in args]
        ).SerializeToString()
        self.send(
            Msg(
                type=Msg.TRANSACTION,
                payload=payload,
                txid=txid,
                channel_id=channel,
                proposal=fabric_proposal(channel, txid, timestamp, creator),
            )
        )
        return future

    def keepalive(self, timeout: float = 5) -> bool:
        self._keepalive.clear()
        self.send(Msg(type=Msg.KEEPALIVE))
        return self._keepalive.wait(timeout)

    @staticmethod
    def response(done: Any) -> Any:
        """The peer Response inside a COMPLETED message."""
        assert done.type == COMPLETED, done
        return proposal_response_pb2.Response.FromString(done.payload)

    # ------------------------------------------------------------------ the peer
    def _read(self) -> None:
        try:
            for msg in self._stream:
                self.received.append(msg.type)
                self._handle(msg)
        except grpc.RpcError:
            pass
        finally:
            with self._lock:
                txs = list(self._txs.values())
                self._txs.clear()
            for tx in txs:
                if not tx.future.done():
                    tx.future.set_exception(ConnectionError("stream closed"))

    def _handle(self, msg: Any) -> None:
        if msg.type == Msg.REGISTER:
            self.registered_as = chaincode_pb2.ChaincodeID.FromString(msg.payload).name
            self.send(Msg(type=Msg.REGISTERED))
            self.send(Msg(type=Msg.READY))
            self._registered.set()
            return
        if msg.type == Msg.KEEPALIVE:
            self.keepalives += 1
            self._keepalive.set()
            return
        with self._lock:
            tx = self._txs.get(msg.txid)
        if tx is None:
            self.violations.append(f"{Msg.Type.Name(msg.type)} for unknown tx {msg.txid}")
            return
        if msg.type in (COMPLETED, ERROR):
            if tx.pending:
                self.violations.append(f"{msg.txid} completed with a call pending")
            with self._lock:
                del self._txs[msg.txid]
            if msg.type == COMPLETED and self.response(msg).status == 200:
                self._commit(tx, msg)
            tx.future.set_result(msg)
            return
        if tx.pending:
            self.violations.append(f"{msg.txid}: a second request while one is pending")
            return
        tx.pending = True
        if self.on_call is not None:
            self.on_call(msg)
        try:
            reply = Msg(type=RESPONSE, payload=self._answer(tx, msg))
        except LookupError as exc:
            reply = Msg(type=ERROR, payload=str(exc).encode())
        reply.txid, reply.channel_id = msg.txid, msg.channel_id
        tx.pending = False
        self.send(reply)

    def _answer(self, tx: _Tx, msg: Any) -> bytes:
        kind = msg.type
        if kind == Msg.GET_STATE:
            key = chaincode_shim_pb2.GetState.FromString(msg.payload).key
            if key in self.fail_keys:
                raise LookupError(f"GET_STATE failed: ledger unavailable for {msg.txid}")
            return self.state.get(key, b"")
        if kind == Msg.PUT_STATE:
            put = chaincode_shim_pb2.PutState.FromString(msg.payload)
            tx.writes[put.key] = put.value
            return b""
        if kind == Msg.DEL_STATE:
            tx.writes[chaincode_shim_pb2.DelState.FromString(msg.payload).key] = None
            return b""
        if kind == Msg.GET_STATE_BY_RANGE:
            q = chaincode_shim_pb2.GetStateByRange.FromString(msg.payload)
            lo = bisect.bisect_left(self.keys, q.startKey)
            hi = bisect.bisect_left(self.keys, q.endKey) if q.endKey else len(self.keys)
            items = [
                kv_query_result_pb2.KV(namespace="caravan", key=k, value=self.state[k])
                for k in self.keys[lo:hi]
            ]
            return self._page(tx, iter([i.SerializeToString() for i in items]))
        if kind == Msg.GET_HISTORY_FOR_KEY:
            key = chaincode_shim_pb2.GetHistoryForKey.FromString(msg.payload).key
            mods = [
                kv_query_result_pb2.KeyModification(
                    tx_id=m.tx_id,
                    value=m.value or b"",
                    is_delete=m.value is None,
                    timestamp=timestamp_pb2.Timestamp(seconds=m.timestamp[0], nanos=m.timestamp[1]),
                ).SerializeToString()
                for m in self.history.get(key, [])
            ]
            return self._page(tx, iter(mods))
        if kind == Msg.QUERY_STATE_NEXT:
            qid = chaincode_shim_pb2.QueryStateNext.FromString(msg.payload).id
            if qid not in tx.iterators:
                raise LookupError(f"query iterator {qid} not found")
            return self._page(tx, tx.iterators.pop(qid), qid)
        if kind == Msg.QUERY_STATE_CLOSE:
            qid = chaincode_shim_pb2.QueryStateClose.FromString(msg.payload).id
            tx.iterators.pop(qid, None)
            return chaincode_shim_pb2.QueryResponse(has_more=False, id=qid).SerializeToString()
        raise LookupError(f"{Msg.Type.Name(kind)} is not supported by this peer")

    def _page(self, tx: _Tx, items: Iterator[bytes], qid: str | None = None) -> bytes:
        qid = qid or f"q{next(self._ids)}"
        batch = list(itertools.islice(items, self.page_size))
        rest = list(items)
        more = bool(rest)
        if more:
            tx.iterators[qid] = iter(rest)
        return chaincode_shim_pb2.QueryResponse(
            results=[chaincode_shim_pb2.QueryResultBytes(resultBytes=b) for b in batch],
            has_more=more,
            id=qid,
        ).SerializeToString()

    def _commit(self, tx: _Tx, msg: Any) -> None:
        for key in sorted(tx.writes):
            value = tx.writes[key]
            if value is None:
                if key in self.state:
                    del self.state[key]
                    self.keys.pop(bisect.bisect_left(self.keys, key))
            else:
                if key not in self.state:
                    bisect.insort(self.keys, key)
                self.state[key] = value
            self.history.setdefault(key, []).append(Modification(tx.txid, tx.timestamp, value))
        if msg.HasField("chaincode_event"):
            event = msg.chaincode_event
            self.events.append((tx.txid, event.event_name, bytes(event.payload)))

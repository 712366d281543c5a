"""Fabric's ``Chaincode`` gRPC service (chaincode-as-a-service): a peer dials us.

>>> server = ChaincodeServer("0.0.0.0:9999", "caravan_1.0:0123…")   # the package id
>>> await server.start(); await server.wait_closed()
>>> serve("0.0.0.0:9999", "caravan_1.0:0123…")                       # until SIGTERM/Ctrl-C

Per ``Connect`` stream (chaincode_shim.proto; the Go shim's handler.go and the peer's
core/chaincode/handler.go are the reference):

- we send REGISTER (``ChaincodeID{name: package id}``); the peer answers REGISTERED, then
  READY; KEEPALIVE is echoed;
- TRANSACTION and INIT run concurrently, keyed by (channel id, tx id), each in its own
  greenlet on the event loop's thread (the contracts are synchronous, CPU-bound and
  short: a few ms); their stub calls and the final COMPLETED (payload: a peer
  ``Response``; the chaincode event in ``chaincode_event``) or ERROR go through ONE send
  queue that only the stream's writer drains;
- the peer's RESPONSE/ERROR to a stub call switches back into the waiting transaction
  (ERROR raises); no threads and no cross-thread wake-ups per call;
- an exception outside the contracts answers ERROR at once; the contracts' own
  exceptions are 500 responses from the router.

Logs name message types, short tx ids, functions and statuses — never state values,
arguments or proposals.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import grpc

from ..creators import CreatorVerifier
from ._pb import (
    chaincode_event_pb2,
    chaincode_pb2,
    chaincode_shim_pb2,
    chaincode_shim_pb2_grpc,
    proposal_response_pb2,
)
from .stub import PeerError, TxChannel
from .transactions import Transaction, TransactionError, execute

__all__ = ["DEFAULT_WORKERS", "ChaincodeServer", "TlsFiles", "serve"]

log = logging.getLogger("chaincode.server")

Msg = chaincode_shim_pb2.ChaincodeMessage
_REGISTERED, _READY, _KEEPALIVE = Msg.REGISTERED, Msg.READY, Msg.KEEPALIVE
_TRANSACTION, _INIT = Msg.TRANSACTION, Msg.INIT
_RESPONSE, _ERROR, _COMPLETED = Msg.RESPONSE, Msg.ERROR, Msg.COMPLETED
_NAMES = {v: k for k, v in Msg.Type.items()}
#: kept for the ``workers`` option's compatibility: transactions no longer use threads
DEFAULT_WORKERS = 64
_MAX_MESSAGE = 100 * 1024 * 1024  # the peer's default gRPC message limit
_GRPC_OPTIONS = [
    ("grpc.max_send_message_length", _MAX_MESSAGE),
    ("grpc.max_receive_message_length", _MAX_MESSAGE),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
]


def _short(txid: str) -> str:
    return txid[:8]


class _Session:
    """One Connect stream: handshake state, transactions in flight, the send queue."""

    def __init__(self, ccid: str, verifier: CreatorVerifier) -> None:
        self.ccid = ccid
        self.verifier = verifier
        self.outbox: asyncio.Queue[Any] = asyncio.Queue()
        self.state = "created"
        self.txs: dict[tuple[str, str], TxChannel] = {}

    # ------------------------------------------------------------------- sending
    def send(self, msg: Any) -> None:
        """From the loop's thread (the loop or a transaction's greenlet)."""
        self.outbox.put_nowait(msg)

    async def messages(self) -> AsyncIterator[Any]:
        """The writer: REGISTER first, then whatever is queued, until the stream ends."""
        name = chaincode_pb2.ChaincodeID(name=self.ccid).SerializeToString()
        yield Msg(type=Msg.REGISTER, payload=name)
        while True:
            msg = await self.outbox.get()
            if msg is None:
                return
            yield msg

    # ------------------------------------------------------------------- reading
    async def read(self, requests: AsyncIterator[Any]) -> None:
        try:
            async for msg in requests:
                self.handle(msg)
        except (grpc.aio.AioRpcError, asyncio.CancelledError):
            pass
        finally:
            self.close()

    def close(self) -> None:
        for line in list(self.txs.values()):
            line.abort()
        self.txs.clear()
        self.outbox.put_nowait(None)

    def handle(self, msg: Any) -> None:
        kind = msg.type
        if kind in (_RESPONSE, _ERROR):
            line = self.txs.get((msg.channel_id, msg.txid))
            if line is None or not line.deliver(msg):
                log.warning(
                    "%s for tx %s, which has no call pending: ignored",
                    _NAMES.get(kind),
                    _short(msg.txid),
                )
            return
        if kind == _KEEPALIVE:
            self.send(msg)
            return
        if self.state == "ready" and kind in (_TRANSACTION, _INIT):
            self.start(msg)
            return
        if self.state == "created" and kind == _REGISTERED:
            self.state = "established"
            return
        if self.state == "established" and kind == _READY:
            self.state = "ready"
            log.info("registered with the peer as %s", self.ccid)
            return
        text = f"cannot handle {_NAMES.get(kind, kind)} in state {self.state}"
        log.warning("%s (tx %s)", text, _short(msg.txid))
        self.send(Msg(type=_ERROR, payload=text.encode(), txid=msg.txid, channel_id=msg.channel_id))

    def start(self, msg: Any) -> None:
        key = (msg.channel_id, msg.txid)
        if key in self.txs:
            text = f"transaction {msg.txid} is already running on channel {msg.channel_id}"
            self.send(
                Msg(type=_ERROR, payload=text.encode(), txid=msg.txid, channel_id=msg.channel_id)
            )
            return
        line = self.txs[key] = TxChannel(msg.channel_id, msg.txid, self.send)
        line.start(lambda: self.run(line, msg))

    # ----------------------------------------------------------------- executing
    def run(self, line: TxChannel, msg: Any) -> None:
        """In the transaction's greenlet: execute, then answer COMPLETED or ERROR."""
        try:
            tx = Transaction(msg.channel_id, msg.txid, msg.payload, msg.proposal)
            response, event = execute(tx, line, self.verifier)
        except (TransactionError, PeerError) as exc:
            self._finish(line, Msg(type=_ERROR, payload=str(exc).encode()))
            log.warning("tx %s failed: %s", _short(line.txid), exc)
            return
        except Exception as exc:
            self._finish(
                line, Msg(type=_ERROR, payload=f"internal error: {type(exc).__name__}".encode())
            )
            log.error("tx %s: internal error %s", _short(line.txid), type(exc).__name__)
            return
        out = Msg(
            type=_COMPLETED,
            payload=proposal_response_pb2.Response(
                status=response.status, message=response.message, payload=response.payload
            ).SerializeToString(),
        )
        if event is not None:
            out.chaincode_event.CopyFrom(
                chaincode_event_pb2.ChaincodeEvent(event_name=event[0], payload=event[1])
            )
        self._finish(line, out)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("tx %s -> %d", _short(line.txid), response.status)

    def _finish(self, line: TxChannel, out: Any) -> None:
        """The transaction leaves the table, then its answer is queued."""
        out.txid = line.txid
        out.channel_id = line.channel_id
        line.closed = True
        key = (line.channel_id, line.txid)
        if self.txs.get(key) is line:
            del self.txs[key]
        self.outbox.put_nowait(out)


class _Servicer(chaincode_shim_pb2_grpc.ChaincodeServicer):  # type: ignore[misc]
    def __init__(self, ccid: str, verifier: CreatorVerifier) -> None:
        self.ccid = ccid
        self.verifier = verifier
        self.sessions: set[_Session] = set()

    async def Connect(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        session = _Session(self.ccid, self.verifier)
        log.info("peer connected")
        reader = asyncio.create_task(session.read(request_iterator))
        self.sessions.add(session)
        try:
            async for msg in session.messages():
                yield msg
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            self.sessions.discard(session)
            log.info("peer stream closed")


@dataclass(frozen=True)
class TlsFiles:
    """PEM contents: the server's certificate and key, and optionally the client CA
    (then the peer must present a client certificate it issued)."""

    certificate: bytes
    key: bytes
    client_ca: bytes | None = None


class ChaincodeServer:
    """The gRPC server; see the module docstring."""

    def __init__(
        self,
        address: str,
        chaincode_id: str,
        *,
        tls: TlsFiles | None = None,
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if not chaincode_id:
            raise ValueError("the chaincode id (the package id) must not be empty")
        self.address = address
        self.chaincode_id = chaincode_id
        self.tls = tls
        self.port = 0
        del workers  # accepted for compatibility; transactions run as greenlets
        # a Fabric chaincode cannot know when the trust list changes: read it every time
        self._verifier = CreatorVerifier(reread=True)
        self._servicer = _Servicer(chaincode_id, self._verifier)
        self._server: Any = None

    def in_flight(self) -> int:
        """Transactions started and not finished, over all streams (call on the loop)."""
        return sum(len(session.txs) for session in self._servicer.sessions)

    async def start(self) -> int:
        """Bind and start serving; the bound port (useful with port 0)."""
        server = grpc.aio.server(options=_GRPC_OPTIONS)
        chaincode_shim_pb2_grpc.add_ChaincodeServicer_to_server(self._servicer, server)
        if self.tls is None:
            port = server.add_insecure_port(self.address)
        else:
            credentials = grpc.ssl_server_credentials(
                [(self.tls.key, self.tls.certificate)],
                root_certificates=self.tls.client_ca,
                require_client_auth=self.tls.client_ca is not None,
            )
            port = server.add_secure_port(self.address, credentials)
        if not port:
            raise OSError(f"cannot listen on {self.address}")
        await server.start()
        self._server, self.port = server, port
        log.info("chaincode server listening on port %d (tls: %s)", port, self.tls is not None)
        return int(port)

    async def stop(self, grace: float | None = 5.0) -> None:
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()


def serve(
    address: str,
    chaincode_id: str,
    *,
    tls: TlsFiles | None = None,
    workers: int = DEFAULT_WORKERS,
    ready: Any = None,
) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (5 s grace for running calls).

    ``ready(port)`` is called once listening.
    """

    async def main() -> None:
        server = ChaincodeServer(address, chaincode_id, tls=tls, workers=workers)
        port = await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        if ready is not None:
            ready(port)
        await stop.wait()
        log.info("stopping")
        await server.stop()

    asyncio.run(main())

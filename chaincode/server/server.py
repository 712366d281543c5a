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
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
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
from .http2 import Http2Connection, StreamSink
from .stub import PeerError, TxChannel
from .transactions import Transaction, TransactionError, execute

__all__ = ["DEFAULT_WORKERS", "ENGINES", "ChaincodeServer", "Session", "TlsFiles", "serve"]

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


class Session:
    """One Connect stream, whatever carries it: handshake state, transactions in flight.

    ``send`` queues one outgoing ChaincodeMessage on the stream's single writer; it is
    called on the loop's thread only (by the loop or a transaction's greenlet)."""

    def __init__(self, ccid: str, verifier: CreatorVerifier, send: Callable[[Any], None]) -> None:
        self.ccid = ccid
        self.verifier = verifier
        self.send = send
        self.state = "created"
        self.txs: dict[tuple[str, str], TxChannel] = {}

    def register(self) -> None:
        """The first message on the stream: REGISTER with the package id."""
        name = chaincode_pb2.ChaincodeID(name=self.ccid).SerializeToString()
        self.send(Msg(type=Msg.REGISTER, payload=name))

    # ------------------------------------------------------------------- reading
    def close(self) -> None:
        """The stream is gone: every waiting transaction is woken with PeerError and
        runs to its end (its answer goes nowhere); no greenlet stays suspended."""
        for line in list(self.txs.values()):
            line.abort()
        self.txs.clear()

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
        self.send(out)


class _Servicer(chaincode_shim_pb2_grpc.ChaincodeServicer):  # type: ignore[misc]
    def __init__(self, ccid: str, verifier: CreatorVerifier) -> None:
        self.ccid = ccid
        self.verifier = verifier
        self.sessions: set[Session] = set()

    async def Connect(
        self, request_iterator: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        outbox: asyncio.Queue[Any] = asyncio.Queue()
        session = Session(self.ccid, self.verifier, outbox.put_nowait)
        log.info("peer connected")
        session.register()

        async def read() -> None:
            try:
                async for msg in request_iterator:
                    session.handle(msg)
            except (grpc.aio.AioRpcError, asyncio.CancelledError):
                pass
            finally:
                session.close()
                outbox.put_nowait(None)

        reader = asyncio.create_task(read())
        self.sessions.add(session)
        try:
            while (msg := await outbox.get()) is not None:
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


ENGINES = ("http2", "grpcio")


class ChaincodeServer:
    """The chaincode server; see the module docstring.

    ``engine``: ``"http2"`` (default) speaks HTTP/2 and gRPC framing itself on the event
    loop (:mod:`chaincode.server.http2`, ~5x less CPU per message); ``"grpcio"`` serves
    the same streams with ``grpc.aio`` (kept for comparison and as a fallback).
    """

    def __init__(
        self,
        address: str,
        chaincode_id: str,
        *,
        tls: TlsFiles | None = None,
        workers: int = DEFAULT_WORKERS,
        engine: str = "http2",
    ) -> None:
        if not chaincode_id:
            raise ValueError("the chaincode id (the package id) must not be empty")
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r}: one of {', '.join(ENGINES)}")
        self.address = address
        self.chaincode_id = chaincode_id
        self.tls = tls
        self.engine = engine
        self.port = 0
        del workers  # accepted for compatibility; transactions run as greenlets
        # a Fabric chaincode cannot know when the trust list changes: read it every time
        self._verifier = CreatorVerifier(reread=True)
        self._servicer = _Servicer(chaincode_id, self._verifier)
        self._server: Any = None
        self._listener: asyncio.Server | None = None
        self._connections: set[Http2Connection] = set()
        self._stopped: asyncio.Event | None = None

    def in_flight(self) -> int:
        """Transactions started and not finished, over all streams (call on the loop)."""
        return sum(len(session.txs) for session in self._servicer.sessions)

    async def start(self) -> int:
        """Bind and start serving; the bound port (useful with port 0)."""
        port = await (self._start_http2() if self.engine == "http2" else self._start_grpcio())
        self.port = port
        log.info(
            "chaincode server listening on port %d (engine: %s, tls: %s)",
            port,
            self.engine,
            self.tls is not None,
        )
        return port

    async def _start_grpcio(self) -> int:
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
        self._server = server
        return int(port)

    async def _start_http2(self) -> int:
        host, sep, port_text = self.address.rpartition(":")
        if not sep or not port_text.isdigit():
            raise OSError(f"cannot listen on {self.address}: expected HOST:PORT")
        host = host.strip("[]")
        context = None if self.tls is None else _ssl_context(self.tls)

        def connection() -> Http2Connection:
            conn = Http2Connection(self._open_stream, self._connections.discard)
            self._connections.add(conn)
            return conn

        loop = asyncio.get_running_loop()
        try:
            self._listener = await loop.create_server(
                connection, host or None, int(port_text), ssl=context, reuse_address=True
            )
        except OSError as exc:
            raise OSError(f"cannot listen on {self.address}: {exc.strerror}") from None
        self._stopped = asyncio.Event()
        return int(self._listener.sockets[0].getsockname()[1])

    def _open_stream(self, send: Callable[[Any], None]) -> StreamSink:
        """A new Connect stream on an HTTP/2 connection: its session."""
        session = Session(self.chaincode_id, self._verifier, send)
        sessions = self._servicer.sessions
        sessions.add(session)
        log.info("peer connected")
        session.register()

        def close() -> None:
            session.close()
            sessions.discard(session)
            log.info("peer stream closed")

        return StreamSink(session.handle, close)

    async def stop(self, grace: float | None = 5.0) -> None:
        """Stop listening; calls in flight get ``grace`` seconds to finish."""
        if self._server is not None:
            await self._server.stop(grace)
            self._server = None
        if self._listener is not None:
            listener, self._listener = self._listener, None
            listener.close()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + (grace or 0.0)
            while self.in_flight() and loop.time() < deadline:
                await asyncio.sleep(0.02)
            for conn in list(self._connections):
                conn.close()
            await listener.wait_closed()
            if self._stopped is not None:
                self._stopped.set()

    async def wait_closed(self) -> None:
        if self._server is not None:
            await self._server.wait_for_termination()
        elif self._stopped is not None:
            await self._stopped.wait()


def _ssl_context(tls: TlsFiles) -> ssl.SSLContext:
    """Server TLS with ALPN h2 (gRPC clients require it); client certificates from
    ``tls.client_ca`` when given."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["h2"])
    with tempfile.TemporaryDirectory(prefix="caravan-cc-tls-") as tmp:
        cert, key = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
        cert.write_bytes(tls.certificate)
        key.touch(mode=0o600)
        key.write_bytes(tls.key)
        try:
            context.load_cert_chain(cert, key)
        except ssl.SSLError as exc:
            raise ValueError(f"the TLS certificate or key cannot be used: {exc.reason}") from None
    if tls.client_ca is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        try:
            context.load_verify_locations(cadata=tls.client_ca.decode("ascii"))
        except (ssl.SSLError, UnicodeDecodeError, ValueError):
            raise ValueError("the TLS client CA is not a PEM certificate") from None
    return context


def serve(
    address: str,
    chaincode_id: str,
    *,
    tls: TlsFiles | None = None,
    workers: int = DEFAULT_WORKERS,
    ready: Any = None,
    engine: str = "http2",
) -> None:
    """Serve until SIGTERM or SIGINT, then stop cleanly (5 s grace for running calls).

    ``ready(port)`` is called once listening.
    """

    async def main() -> None:
        server = ChaincodeServer(address, chaincode_id, tls=tls, workers=workers, engine=engine)
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

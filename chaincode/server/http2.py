"""The ``Chaincode.Connect`` stream over HTTP/2 on asyncio, without grpcio's machinery.

Why: grpcio costs ~90 µs of CPU per streamed message in this process (its completion
queue, poller thread and event-engine thread hand every message across threads; the
same with ``grpc.aio``, ``context.read/write`` or the synchronous server), and one
Caravan write is ~28 messages (13 stub round trips, TRANSACTION, COMPLETED). This module
speaks just enough HTTP/2 (RFC 9113) and gRPC framing for the one bidi method a peer
calls, in the event loop's thread: frames are parsed from ``data_received``, messages go
straight to :class:`~chaincode.server.server.Session`, and outgoing frames are gathered
and written with one ``write`` per batch of received data.

Scope, on purpose small:

- server side of one connection at a time per protocol object, any number of streams;
  every stream is taken as a ``Chaincode.Connect`` call (the only method a peer calls):
  request header blocks are not decoded (HPACK state is never needed for them), our own
  headers are HPACK literals without indexing or Huffman coding, which any decoder reads;
- flow control: a 2**31-1 receive window on the connection and the streams (topped up
  when half is used); sends respect the peer's windows and frame size and wait for its
  WINDOW_UPDATE; SETTINGS are acknowledged, PINGs answered; RST_STREAM or END_STREAM
  ends the stream's session (a GOAWAY from the peer needs nothing: it closes later);
- gRPC framing: 1-byte compression flag (compressed messages are refused: we never offer
  an encoding) + 4-byte length; trailers ``grpc-status`` (+ ``grpc-message``) end the
  stream; messages over :data:`MAX_MESSAGE` are refused (RESOURCE_EXHAUSTED).

TLS (ALPN ``h2``, optional client certificates) is asyncio's ``ssl`` transport.
"""

from __future__ import annotations

import asyncio
import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from ._pb import chaincode_shim_pb2

__all__ = ["MAX_MESSAGE", "Http2Connection", "StreamSink"]

log = logging.getLogger("chaincode.server")

Msg = chaincode_shim_pb2.ChaincodeMessage
MAX_MESSAGE = 100 * 1024 * 1024  # the peer's default gRPC message limit

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS = 0x0, 0x1, 0x2, 0x3, 0x4
PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, CONTINUATION = 0x5, 0x6, 0x7, 0x8, 0x9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY_FLAG = 0x1, 0x1, 0x4, 0x8, 0x20
SETTINGS_INITIAL_WINDOW_SIZE, SETTINGS_MAX_FRAME_SIZE = 0x4, 0x5
NO_ERROR, PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR = 0x0, 0x1, 0x3, 0x6
CANCEL = 0x8

_MAX_WINDOW = 2**31 - 1
_DEFAULT_WINDOW = 65_535
_MAX_FRAME = 16_384  # ours (the default): the peer never sends larger frames
_HEAD = struct.Struct(">IBI")  # length (24 bits) and type; flags; R + stream id
_FRAME = struct.Struct(">HBBBI")  # length hi 16, length lo 8, type, flags, stream id
_WINDOW = struct.Struct(">I")
_GRPC_PREFIX = struct.Struct(">BI")


def _frame(kind: int, flags: int, stream: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return _FRAME.pack(n >> 8, n & 0xFF, kind, flags, stream) + payload


def _literal(name: bytes, value: bytes) -> bytes:
    """HPACK: literal header field without indexing, new name, no Huffman coding."""
    return b"\x00" + _hpack_int(len(name), 7) + name + _hpack_int(len(value), 7) + value


def _hpack_int(value: int, prefix: int) -> bytes:
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([value])
    out = bytearray([limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


# :status 200 is index 8 of HPACK's static table
_RESPONSE_HEADERS = b"\x88" + _literal(b"content-type", b"application/grpc")


def _trailers(status: int, message: str) -> bytes:
    block = _literal(b"grpc-status", str(status).encode())
    if message:
        block += _literal(b"grpc-message", message.encode("ascii", "replace"))
    return block


class StreamSink:
    """What a stream's handler gives the connection: its message handler and close."""

    __slots__ = ("close", "handle")

    def __init__(self, handle: Callable[[Any], None], close: Callable[[], None]) -> None:
        self.handle = handle
        self.close = close


class _Stream:
    __slots__ = (
        "buffer",
        "closed",
        "ended",
        "headers_sent",
        "id",
        "pending",
        "received",
        "sink",
        "trailers",
        "window",
    )

    def __init__(self, stream_id: int, window: int) -> None:
        self.id = stream_id
        self.window = window  # what we may still send
        self.received = 0  # DATA bytes since our last WINDOW_UPDATE for it
        self.buffer = bytearray()  # incoming gRPC bytes not yet a whole message
        self.pending: deque[memoryview] = deque()  # outgoing DATA not yet sent
        self.headers_sent = False
        self.trailers: bytes | None = None  # to send once pending is empty
        self.ended = False  # the peer sent END_STREAM
        self.closed = False  # trailers or RST_STREAM sent / received
        self.sink: StreamSink | None = None


class Http2Connection(asyncio.Protocol):
    """One peer connection; ``open_stream(send)`` makes the handler of each new stream,
    ``send(msg)`` being the stream's single writer (see the module docstring)."""

    def __init__(
        self,
        open_stream: Callable[[Callable[[Any], None]], StreamSink],
        on_close: Callable[[Http2Connection], None] | None = None,
    ) -> None:
        self.open_stream = open_stream
        self.on_close = on_close
        self.transport: Any = None
        self.streams: dict[int, _Stream] = {}
        self._in = bytearray()
        self._preface = False
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._reading = False  # in data_received: it flushes at its end
        self._send_window = _DEFAULT_WINDOW  # connection-level, what we may send
        self._received = 0  # connection-level DATA bytes since our last WINDOW_UPDATE
        self._peer_window = _DEFAULT_WINDOW  # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self._peer_frame = _MAX_FRAME  # the peer's SETTINGS_MAX_FRAME_SIZE
        self._continuation: int | None = None  # a stream whose header block goes on
        self._blocked: set[_Stream] = set()  # streams with DATA waiting for a window
        self._last_stream = 0
        self._closing = False
        self._loop = asyncio.get_running_loop()

    # ------------------------------------------------------------------ writing
    def _write(self, data: bytes) -> None:
        self._out.append(data)
        if not self._flush_scheduled and not self._reading:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        if not self._out:
            return
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(self._out))
        self._out.clear()

    def _send_message(self, stream: _Stream, msg: Any) -> None:
        if stream.closed or stream.trailers is not None or self._closing:
            return  # the stream is over: answers of aborted transactions go nowhere
        body = msg.SerializeToString()
        if len(body) > MAX_MESSAGE:
            self._end(stream, 8, "message larger than the limit")  # RESOURCE_EXHAUSTED
            return
        if not stream.headers_sent:
            self._headers(stream)
        n = len(body) + 5
        if (
            not stream.pending
            and n <= stream.window
            and n <= self._send_window
            and n <= self._peer_frame
        ):  # the usual case: one DATA frame, now
            stream.window -= n
            self._send_window -= n
            self._write(
                _FRAME.pack(n >> 8, n & 0xFF, DATA, 0, stream.id)
                + _GRPC_PREFIX.pack(0, n - 5)
                + body
            )
            return
        stream.pending.append(memoryview(_GRPC_PREFIX.pack(0, len(body)) + body))
        self._pump(stream)

    def _headers(self, stream: _Stream) -> None:
        stream.headers_sent = True
        self._write(_frame(HEADERS, END_HEADERS, stream.id, _RESPONSE_HEADERS))

    def _pump(self, stream: _Stream) -> None:
        """Send what the windows allow; trailers once everything is out."""
        pending = stream.pending
        while pending:
            room = min(stream.window, self._send_window, self._peer_frame)
            if room <= 0:
                self._blocked.add(stream)
                return
            chunk = pending[0]
            if len(chunk) <= room:
                pending.popleft()
            else:
                pending[0], chunk = chunk[room:], chunk[:room]
            n = len(chunk)
            stream.window -= n
            self._send_window -= n
            self._write(_FRAME.pack(n >> 8, n & 0xFF, DATA, 0, stream.id) + chunk)
        self._blocked.discard(stream)
        if stream.trailers is not None and not stream.closed:
            stream.closed = True
            self._write(_frame(HEADERS, END_HEADERS | END_STREAM, stream.id, stream.trailers))
            self._forget(stream)

    def _end(self, stream: _Stream, status: int, message: str = "") -> None:
        """End our side with gRPC ``status`` (after any pending DATA)."""
        if stream.closed or stream.trailers is not None:
            return
        if not stream.headers_sent:
            self._headers(stream)
        stream.trailers = _trailers(status, message)
        self._detach(stream)
        self._pump(stream)

    def _detach(self, stream: _Stream) -> None:
        sink, stream.sink = stream.sink, None
        if sink is not None:
            sink.close()

    def _forget(self, stream: _Stream) -> None:
        if stream.closed and (stream.ended or stream.trailers is not None):
            self.streams.pop(stream.id, None)

    # ------------------------------------------------------------------ reading
    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        settings = struct.pack(">HI", SETTINGS_INITIAL_WINDOW_SIZE, _MAX_WINDOW)
        self._write(_frame(SETTINGS, 0, 0, settings))
        self._write(_frame(WINDOW_UPDATE, 0, 0, _WINDOW.pack(_MAX_WINDOW - _DEFAULT_WINDOW)))

    def data_received(self, data: bytes) -> None:
        """Handle every whole frame received; what they make us send goes out in one
        write at the end."""
        self._reading = True
        try:
            self._receive(data)
        finally:
            self._reading = False
            self._flush()

    def _receive(self, data: bytes) -> None:
        buf = self._in
        buf += data
        if not self._preface:
            if len(buf) < len(PREFACE):
                if not PREFACE.startswith(bytes(buf)):
                    self._abort(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                return
            if bytes(buf[: len(PREFACE)]) != PREFACE:
                self._abort(PROTOCOL_ERROR, "not an HTTP/2 client preface")
                return
            del buf[: len(PREFACE)]
            self._preface = True
        pos, size = 0, len(buf)
        view = memoryview(buf)
        try:
            while size - pos >= 9 and not self._closing:
                head, flags, stream_id = _HEAD.unpack_from(buf, pos)
                length = head >> 8
                if length > _MAX_FRAME:
                    self._abort(FRAME_SIZE_ERROR, "frame larger than SETTINGS_MAX_FRAME_SIZE")
                    return
                end = pos + 9 + length
                if end > size:
                    break
                kind = head & 0xFF
                stream_id &= 0x7FFFFFFF
                if kind == DATA and self._continuation is None:
                    self._data(flags, stream_id, view[pos + 9 : end])
                elif kind == WINDOW_UPDATE and self._continuation is None:
                    self._window_update(stream_id, view[pos + 9 : end])
                else:
                    self._frame_received(kind, flags, stream_id, bytes(view[pos + 9 : end]))
                pos = end
        finally:
            view.release()
        if pos:
            del buf[:pos]

    def _frame_received(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        if self._continuation is not None and kind != CONTINUATION:
            self._abort(PROTOCOL_ERROR, "a header block was interrupted")
            return
        if kind == DATA:
            self._data(flags, stream_id, payload)
        elif kind == HEADERS:
            self._headers_received(flags, stream_id)
        elif kind == CONTINUATION:
            if self._continuation != stream_id:
                self._abort(PROTOCOL_ERROR, "unexpected CONTINUATION")
                return
            if flags & END_HEADERS:
                self._continuation = None
        elif kind == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
        elif kind == PING:
            if not flags & ACK:
                self._write(_frame(PING, ACK, 0, payload))
        elif kind == WINDOW_UPDATE:
            self._window_update(stream_id, payload)
        elif kind == RST_STREAM:
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                stream.closed = stream.ended = True
                stream.pending.clear()
                self._blocked.discard(stream)
                self._detach(stream)
        elif kind == GOAWAY:
            pass  # no new streams from the peer; it closes the connection when done
        elif kind == PUSH_PROMISE:
            self._abort(PROTOCOL_ERROR, "a client must not push")
        # PRIORITY and unknown frame types are ignored (RFC 9113 §5.5)

    def _headers_received(self, flags: int, stream_id: int) -> None:
        if not flags & END_HEADERS:
            self._continuation = stream_id
        if (known := self.streams.get(stream_id)) is not None:
            if flags & END_STREAM and not known.ended:  # trailers from the client
                self._remote_end(known)
            return
        if stream_id % 2 == 0 or stream_id == 0:
            self._abort(PROTOCOL_ERROR, "a client stream id must be odd")
            return
        if stream_id <= self._last_stream:
            return  # a stream we already closed: nothing to do
        self._last_stream = stream_id
        stream = self.streams[stream_id] = _Stream(stream_id, self._peer_window)
        stream.sink = self.open_stream(lambda msg: self._send_message(stream, msg))
        if flags & END_STREAM:
            self._remote_end(stream)

    def _data(self, flags: int, stream_id: int, payload: bytes | memoryview) -> None:
        n = len(payload)
        self._received += n
        if self._received > _MAX_WINDOW // 2:
            self._write(_frame(WINDOW_UPDATE, 0, 0, _WINDOW.pack(self._received)))
            self._received = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.ended:
            return  # closed or reset: dropped (its window was counted above)
        stream.received += n
        if stream.received > _MAX_WINDOW // 2:
            self._write(_frame(WINDOW_UPDATE, 0, stream_id, _WINDOW.pack(stream.received)))
            stream.received = 0
        if flags & PADDED:
            if not payload or payload[0] >= n:
                self._abort(PROTOCOL_ERROR, "bad padding")
                return
            payload = payload[1 : n - payload[0]]
        buf = stream.buffer
        if buf:
            buf += payload
            data: bytes | bytearray | memoryview = buf
        else:  # the usual case: whole messages in this frame, parsed in place
            data = payload
        pos, size = 0, len(data)
        while size - pos >= 5 and stream.sink is not None:
            compressed, length = _GRPC_PREFIX.unpack_from(data, pos)
            if compressed:
                self._end(stream, 12, "compressed messages are not supported")  # UNIMPLEMENTED
                break
            if length > MAX_MESSAGE:
                self._end(stream, 8, "message larger than the limit")  # RESOURCE_EXHAUSTED
                break
            if size - pos < 5 + length:
                break
            try:
                msg = Msg.FromString(data[pos + 5 : pos + 5 + length])
            except Exception:  # a DecodeError; its class differs between protobuf backends
                self._end(stream, 13, "undecodable ChaincodeMessage")  # INTERNAL
                break
            pos += 5 + length
            stream.sink.handle(msg)
        if stream.sink is None:
            buf.clear()  # we ended the stream: what follows is dropped
        elif data is buf:
            del buf[:pos]
        else:
            buf += data[pos:]
        if flags & END_STREAM:
            self._remote_end(stream)

    def _remote_end(self, stream: _Stream) -> None:
        """The peer closed its side: the stream's session ends, we answer OK."""
        stream.ended = True
        self._end(stream, 0)
        self._forget(stream)

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            self._abort(FRAME_SIZE_ERROR, "SETTINGS length")
            return
        for ident, value in struct.iter_unpack(">HI", payload):
            if ident == SETTINGS_INITIAL_WINDOW_SIZE:
                if value > _MAX_WINDOW:
                    self._abort(FLOW_CONTROL_ERROR, "initial window too large")
                    return
                delta, self._peer_window = value - self._peer_window, value
                for stream in self.streams.values():
                    stream.window += delta
            elif ident == SETTINGS_MAX_FRAME_SIZE:
                if not _MAX_FRAME <= value <= 2**24 - 1:
                    self._abort(PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                    return
                self._peer_frame = value
        self._write(_frame(SETTINGS, ACK, 0))
        for stream in list(self.streams.values()):
            self._pump(stream)

    def _window_update(self, stream_id: int, payload: bytes | memoryview) -> None:
        if len(payload) != 4:
            self._abort(FRAME_SIZE_ERROR, "WINDOW_UPDATE length")
            return
        increment = _WINDOW.unpack(payload)[0] & 0x7FFFFFFF
        if stream_id == 0:
            self._send_window += increment
            for stream in list(self._blocked):
                self._pump(stream)
        elif (target := self.streams.get(stream_id)) is not None:
            target.window += increment
            if target in self._blocked:
                self._pump(target)

    # ------------------------------------------------------------------ closing
    def _abort(self, code: int, reason: str) -> None:
        """A connection error: GOAWAY with ``code`` and close."""
        log.warning("HTTP/2 connection error: %s", reason)
        self._write(
            _frame(GOAWAY, 0, 0, struct.pack(">II", self._last_stream, code) + reason.encode())
        )
        self._shutdown()

    def _shutdown(self) -> None:
        if self._closing:
            return
        self._closing = True
        for stream in list(self.streams.values()):
            stream.closed = True
            self._detach(stream)
        self.streams.clear()
        self._flush()
        if self.transport is not None:
            self.transport.close()

    def close(self) -> None:
        """Server shutdown: GOAWAY (no error), the sessions end, the connection closes."""
        if not self._closing:
            payload = struct.pack(">II", self._last_stream, NO_ERROR)
            self._write(_frame(GOAWAY, 0, 0, payload))
            for stream in list(self.streams.values()):
                self._end(stream, 14, "the chaincode server is stopping")  # UNAVAILABLE
            self._shutdown()

    def connection_lost(self, exc: Exception | None) -> None:
        self._shutdown()
        self.transport = None
        if self.on_close is not None:
            self.on_close(self)

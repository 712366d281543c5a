"""The trust-services HTTP service: RFC 3161 TSA, OCSP, CRLs and CA certificates.

A raw ASGI application (this is a hot path: no framework between uvicorn and the TSA)
serving one or more organisations. For each hosted organisation, under
``/orgs/{ORG}``; when exactly one is hosted, also at the root:

=========================  ===============================================================
``POST /tsa``              RFC 3161 over HTTP (§3.4): ``application/timestamp-query`` in,
                           ``application/timestamp-reply`` out — rejections included (200)
``POST /ocsp``             RFC 6960: ``application/ocsp-request`` → ``ocsp-response``
``GET /ocsp/{base64}``     RFC 6960 Appendix A.1 (the request base64 and URL encoded)
``GET /crl/issuing.crl``   the CA's current CRL (DER, ``application/pkix-crl``); an
``GET /crl/root.crl``      expired one is re-issued, one written by ``pki revoke`` is seen
``GET /certs/{name}.cer``  root, issuing, seal, tsa, ocsp (DER, ``application/pkix-cert``)
``GET /health``            ``{"status": "ok", "orgs": [...]}``
=========================  ===============================================================

HTTP errors are RFC 9457 problem+json (400, 404, 405 with Allow, 413, 415); no client
input gives a 5xx (tests/test_tsa_server.py fuzzes it).

>>> # app = TrustServicesApp([kz_pki, uz_pki])      # PKIs unlocked
>>> # app.add_org(online_pki)                        # orgs can be added while serving
>>> # serve([kz_pki], "127.0.0.1", 8318, workers=2)  # uvicorn + httptools + uvloop
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, Self

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from .errors import PkiError, TrustServiceError
from .ocsp import OcspResponder
from .pki import ORG_PATTERN, SERVICE_CERTS, OrgPki
from .tsa import DEFAULT_POLICY, SerialAllocator, TimestampAuthority

__all__ = [
    "MAX_BODY_BYTES",
    "BackgroundServer",
    "OrgServices",
    "TrustServicesApp",
    "serve",
]

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: the largest request body accepted (Content-Length and streamed length)
MAX_BODY_BYTES = 64 * 1024
CRL_NAMES = ("issuing", "root")
TSQ = "application/timestamp-query"
TSR = b"application/timestamp-reply"
OCSP_REQ = "application/ocsp-request"
OCSP_RESP = b"application/ocsp-response"
PROBLEM = b"application/problem+json"

_PHRASES = {
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
}
_GET = ("GET", "HEAD")


class _Problem(Exception):
    """An HTTP error answered as problem+json."""

    def __init__(self, status: int, detail: str, *, allow: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.allow = allow


@dataclass
class _CachedCrl:
    stamp: tuple[int, int, int]
    der: bytes
    next_update: dt.datetime


class OrgServices:
    """One organisation's TSA, OCSP responder, CRLs and certificates (PKI unlocked)."""

    def __init__(
        self,
        pki: OrgPki,
        *,
        policy: str = DEFAULT_POLICY,
        accuracy_ms: int = 1000,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        self.pki = pki
        self._clock = clock or (lambda: dt.datetime.now(dt.UTC))
        self.tsa = TimestampAuthority.for_org(
            pki, policy=policy, accuracy_ms=accuracy_ms, clock=clock
        )
        self.ocsp = OcspResponder(pki, clock=clock)
        self.certificates = {
            name: pki.certificate(name).public_bytes(serialization.Encoding.DER)
            for name in SERVICE_CERTS
        }
        self._crls: dict[str, _CachedCrl] = {}
        self._crl_lock = threading.Lock()

    @property
    def serial_path(self) -> Path:
        return self.pki.path / "tsa" / "serial"

    def renew_serials(self) -> None:
        """A SerialAllocator of this process's own (after a fork): no block is shared."""
        self.tsa.serials = SerialAllocator(self.serial_path)

    def crl(self, ca: str) -> bytes:
        """The CA's current CRL: as published on disk, re-issued when past nextUpdate."""
        with self._crl_lock:
            cached = self._load_crl(ca)
            if cached.next_update > self._clock():
                return cached.der
            lock_path = self.pki.path / "crl" / ".reissue.lock"
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # another worker may be re-issuing it
                cached = self._load_crl(ca)
                if cached.next_update <= self._clock():
                    log.info("re-issuing the %s CRL of %s", ca, self.pki.org)
                    self.pki.write_crl(ca, now=self._clock())
                    cached = self._load_crl(ca)
            finally:
                os.close(fd)
            return cached.der

    def _load_crl(self, ca: str) -> _CachedCrl:
        path = self.pki.path / "crl" / f"{ca}.crl"
        try:
            st = path.stat()
        except FileNotFoundError:
            self.pki.write_crl(ca, now=self._clock())
            st = path.stat()
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        cached = self._crls.get(ca)
        if cached is None or cached.stamp != stamp:
            der = path.read_bytes()
            next_update = x509.load_der_x509_crl(der).next_update_utc
            if next_update is None:  # never produced by Caravan; treat as stale
                next_update = dt.datetime.min.replace(tzinfo=dt.UTC)
            cached = _CachedCrl(stamp, der, next_update)
            self._crls[ca] = cached
        return cached


class TrustServicesApp:
    """The ASGI application. Organisations can be added while it serves."""

    def __init__(
        self,
        pkis: Iterable[OrgPki] = (),
        *,
        max_body: int = MAX_BODY_BYTES,
        policy: str = DEFAULT_POLICY,
        accuracy_ms: int = 1000,
    ) -> None:
        self.max_body = max_body
        self.policy = policy
        self.accuracy_ms = accuracy_ms
        self._orgs: dict[str, OrgServices] = {}
        for pki in pkis:
            self.add_org(pki)

    @property
    def orgs(self) -> list[str]:
        """The mount names of the hosted organisations (``/orgs/{name}``)."""
        return list(self._orgs)

    def services(self, mount: str) -> OrgServices:
        try:
            return self._orgs[mount]
        except KeyError:
            raise PkiError(f"no organisation {mount!r} is hosted here") from None

    def add_org(self, pki: OrgPki, *, mount: str | None = None) -> str:
        """Host ``pki`` (unlocked) under ``/orgs/{mount}`` (default: its org id)."""
        mount = mount or pki.org
        if not ORG_PATTERN.match(mount):
            raise PkiError(f"invalid mount name {mount!r}")
        if mount in self._orgs:
            raise PkiError(f"{mount} is already hosted")
        self._orgs[mount] = OrgServices(pki, policy=self.policy, accuracy_ms=self.accuracy_ms)
        return mount

    def renew_serials(self) -> None:
        for services in self._orgs.values():
            services.renew_serials()

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            try:
                await self._http(scope, receive, send)
            except _Problem as problem:
                await _send_problem(send, problem)
            except Exception:  # a bug or a broken key store, never a client's input
                log.exception("internal error on %s %s", scope.get("method"), scope.get("path"))
                await _send_problem(send, _Problem(500, "internal error"))
        elif kind == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if path == "/health":
            _allow(method, _GET)
            body = json.dumps({"status": "ok", "orgs": self.orgs}).encode()
            await _send(send, 200, b"application/json", body, head=method == "HEAD")
            return
        services: OrgServices | None = None
        if path.startswith("/orgs/"):
            mount, _, rest = path[6:].partition("/")
            services = self._orgs.get(mount)
            if services is None:
                raise _Problem(404, f"no organisation {mount!r} is hosted here")
            path = "/" + rest
        elif len(self._orgs) == 1:
            services = next(iter(self._orgs.values()))
        if services is None:
            raise _Problem(404, f"no such resource: {scope['path']}")

        if path == "/tsa":
            _allow(method, ("POST",))
            request = await self._body(scope, receive, TSQ)
            await _send(send, 200, TSR, services.tsa.respond(request))
        elif path == "/ocsp":
            _allow(method, ("POST",))
            request = await self._body(scope, receive, OCSP_REQ)
            await _send(send, 200, OCSP_RESP, services.ocsp.respond(request))
        elif path.startswith("/ocsp/"):
            _allow(method, _GET)
            request = _ocsp_get_request(path[6:])
            await _send(send, 200, OCSP_RESP, services.ocsp.respond(request), head=method == "HEAD")
        elif path.startswith("/crl/") and path.endswith(".crl") and path[5:-4] in CRL_NAMES:
            _allow(method, _GET)
            der = services.crl(path[5:-4])
            await _send(send, 200, b"application/pkix-crl", der, head=method == "HEAD")
        elif path.startswith("/certs/") and path.endswith(".cer") and path[7:-4] in SERVICE_CERTS:
            _allow(method, _GET)
            der = services.certificates[path[7:-4]]
            await _send(send, 200, b"application/pkix-cert", der, head=method == "HEAD")
        else:
            raise _Problem(404, f"no such resource: {scope['path']}")

    async def _body(self, scope: Scope, receive: Receive, content_type: str) -> bytes:
        declared_type: bytes | None = None
        declared_length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                declared_type = value
            elif name == b"content-length":
                declared_length = value
        media = (declared_type or b"").split(b";", 1)[0].strip().lower()
        if media != content_type.encode():
            shown = declared_type.decode("latin-1")[:80] if declared_type else "none"
            raise _Problem(415, f"expected Content-Type {content_type}, got {shown}")
        if declared_length is not None:
            if not declared_length.isdigit() or len(declared_length) > 18:
                raise _Problem(400, "invalid Content-Length")
            if int(declared_length) > self.max_body:
                raise _Problem(413, f"request body over {self.max_body} bytes")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                raise _Problem(400, "request body incomplete")
            chunk = message.get("body", b"")
            if chunk:
                size += len(chunk)
                if size > self.max_body:
                    raise _Problem(413, f"request body over {self.max_body} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        if not size:
            raise _Problem(400, "empty request body")
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _allow(method: str, allowed: tuple[str, ...]) -> None:
    if method not in allowed:
        raise _Problem(405, f"{method} is not allowed here", allow=", ".join(allowed))


def _ocsp_get_request(encoded: str) -> bytes:
    """RFC 6960 A.1: base64 of the DER request, URL-encoded (uvicorn already decoded it)."""
    text = encoded.strip()
    if not text or len(text) > MAX_BODY_BYTES:
        raise _Problem(400, "missing or oversized base64 OCSP request")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise _Problem(400, "the OCSP request in the URL is not base64") from None


async def _send(
    send: Send,
    status: int,
    content_type: bytes,
    body: bytes,
    *,
    head: bool = False,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
    ]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_problem(send: Send, problem: _Problem) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": _PHRASES.get(problem.status, "Error"),
            "status": problem.status,
            "detail": problem.detail,
        }
    ).encode()
    extra = [(b"allow", problem.allow.encode())] if problem.allow else None
    await _send(send, problem.status, PROBLEM, body, extra=extra)


# ---------------------------------------------------------------------- serving
def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket (bound in the parent, shared by the worker processes)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise TrustServiceError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


def uvicorn_config(app: TrustServicesApp, *, log_level: str = "warning", **overrides: Any) -> Any:
    """The uvicorn configuration of the service: httptools + uvloop, no access log."""
    import uvicorn

    options: dict[str, Any] = {
        "http": "httptools",
        "ws": "none",  # no WebSocket endpoints: an Upgrade request is plain HTTP
        "loop": "uvloop",
        "lifespan": "on",
        "access_log": False,
        "proxy_headers": False,  # client addresses are not used: skip the middleware
        "log_level": log_level,
        "server_header": False,
        "date_header": False,
        "timeout_keep_alive": 30,
        "backlog": 2048,
    }
    options.update(overrides)
    return uvicorn.Config(app, **options)


class BackgroundServer:
    """The service in a background thread of this process, on ``host`` and a free port.

    For the demo and the tests; production runs :func:`serve`. Organisations can be
    added while it runs (:meth:`add`), so a PKI whose certificates name this server's
    URLs can be created after the port is known (:meth:`base_url_for`).
    """

    def __init__(self, app: TrustServicesApp, host: str = "127.0.0.1", port: int = 0) -> None:
        import uvicorn

        self.app = app
        self._sock = bind_socket(host, port)
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://{host}:{self.port}"
        self._server = uvicorn.Server(uvicorn_config(app, log_config=None))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def url(self, org: str | OrgPki, path: str = "") -> str:
        """``{base}/orgs/{org}{path}``, e.g. ``url("KZ-CUSTOMS", "/ocsp")``."""
        name = org.org if isinstance(org, OrgPki) else org
        return f"{self.base_url}/orgs/{name}{path}"

    def base_url_for(self, mount: str) -> str:
        """What to give ``init_pki(base_url=...)`` for a PKI hosted as ``mount``."""
        return f"{self.base_url}/orgs/{mount}"

    def add(self, pki: OrgPki, mount: str | None = None) -> str:
        """Host one more (unlocked) PKI; returns its mount name."""
        return self.app.add_org(pki, mount=mount)

    def start(self, timeout: float = 30.0) -> Self:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise TrustServiceError("the trust-services server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def serve(
    pkis: list[OrgPki],
    host: str = "127.0.0.1",
    port: int = 8318,
    workers: int = 1,
    *,
    log_level: str = "warning",
    on_ready: Callable[[TrustServicesApp, socket.socket], None] | None = None,
) -> None:
    """Serve the organisations' trust services until SIGINT or SIGTERM.

    The PKIs must be unlocked. Keys are loaded and the socket bound here, in the parent;
    with ``workers > 1`` the parent forks that many processes which each run a
    uvicorn server on the shared socket with serial allocators of their own (no secret
    ever travels through the environment).
    """
    if not pkis:
        raise TrustServiceError("no organisation to serve")
    if not 1 <= workers <= 64:
        raise TrustServiceError("workers must be between 1 and 64")
    if workers > 1 and any(p.config.hsm is not None for p in pkis):
        raise TrustServiceError(
            "keys on a PKCS#11 token cannot be shared with forked workers: use --workers 1"
        )
    app = TrustServicesApp(pkis)  # loads every key: a wrong passphrase fails here
    for mount in app.orgs:
        for ca in CRL_NAMES:
            app.services(mount).crl(ca)  # publish or renew the CRLs before serving
    sock = bind_socket(host, port)
    stopping: list[int] = []
    children: list[int] = []

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not stopping:
            stopping.append(signum)
            for pid in children:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if on_ready is not None:
            on_ready(app, sock)
        if workers == 1:
            _run_worker(app, sock, log_level)
            return
        parent = os.getpid()
        for _ in range(workers):
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 0
                try:
                    os.setpgid(0, 0)  # Ctrl-C reaches the parent only; it stops us
                    app.renew_serials()
                    _run_worker(app, sock, log_level, parent=parent)
                except BaseException:
                    log.exception("worker failed")
                    code = 1
                finally:
                    os._exit(code)
            children.append(pid)
        if stopping:  # a signal arrived while forking
            stop(stopping[0], None)
        _wait_for(children, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        sock.close()


def _wait_for(children: list[int], stop: Callable[[int, FrameType | None], None]) -> None:
    remaining = set(children)
    while remaining:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        remaining.discard(pid)
        if os.waitstatus_to_exitcode(status) != 0:
            log.error("worker %d stopped with status %d", pid, os.waitstatus_to_exitcode(status))
        if remaining:
            stop(signal.SIGTERM, None)  # one worker gone: stop the others too


def _run_worker(
    app: TrustServicesApp, sock: socket.socket, log_level: str, *, parent: int | None = None
) -> None:
    import uvicorn

    server = uvicorn.Server(uvicorn_config(app, log_level=log_level))
    if parent is not None:
        # stop when the parent goes away (killed without the chance to stop us)
        def watch() -> None:
            while not server.should_exit:
                if os.getppid() != parent:
                    server.should_exit = True
                    return
                time.sleep(0.5)

        threading.Thread(target=watch, name="parent-watch", daemon=True).start()
        for sig in (signal.SIGINT, signal.SIGTERM):  # uvicorn re-raises what it caught
            signal.signal(sig, lambda _s, _f: None)
    server.run(sockets=[sock])
    sys.stdout.flush()

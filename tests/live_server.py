"""The trust-services HTTP service running for tests, on 127.0.0.1 and a free port.

Use the fixtures by importing them into a test module::

    from tests.live_server import make_online_pki, trust_server  # noqa: F401 (fixtures)

    def test_x(trust_server: LiveServer) -> None:
        url = trust_server.url("KZ-CUSTOMS", "/tsa")          # the consortium's KZ TSA

* ``trust_server`` (session): the real ASGI app under uvicorn (httptools + uvloop) in a
  background thread, hosting the three ``consortium`` organisations; ``.url(org, path)``
  gives an endpoint, ``.add(pki)`` hosts one more PKI while it runs.
* ``make_online_pki`` (per test): ``make_online_pki(org="KZ-CUSTOMS", country="KZ")``
  creates a PKI in the test's tmp_path whose certificates point at *this* server
  (AIA OCSP, CRL distribution point, caIssuers), hosts it and returns it unlocked, so a
  validation that fetches revocation data by the URLs in the certificates reaches it.
  (The consortium's certificates name http://127.0.0.1:8318, which tests cannot own.)

``LiveServer`` itself is a context manager for tests that want a server of their own.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import TracebackType

import pytest
import uvicorn

from tests.conftest import PASSPHRASE, Consortium
from trust_services.pki import OrgPki, init_pki
from trust_services.server import TrustServicesApp, bind_socket, uvicorn_config

__all__ = ["LiveServer", "make_online_pki", "trust_server"]

_mounts = itertools.count(1)


class LiveServer:
    """The trust-services app served by uvicorn in a thread, on 127.0.0.1:<free port>."""

    def __init__(self, pkis: Iterable[OrgPki] = ()) -> None:
        self.app = TrustServicesApp(pkis)
        self._sock = bind_socket("127.0.0.1", 0)
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._server = uvicorn.Server(uvicorn_config(self.app, log_config=None))
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

    def start(self) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the trust-services test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


#: one server per consortium and process, however many test modules import the fixture
_SHARED: dict[Path, LiveServer] = {}


@pytest.fixture(scope="session")
def trust_server(consortium: Consortium) -> Iterator[LiveServer]:
    """The service hosting KZ-CUSTOMS, UZ-CUSTOMS and KG-CUSTOMS of ``consortium``."""
    shared = _SHARED.get(consortium.root)
    if shared is not None:  # set up by the same fixture imported into another module
        yield shared
        return
    server = LiveServer([consortium.kz, consortium.uz, consortium.kg]).start()
    _SHARED[consortium.root] = server
    try:
        yield server
    finally:
        _SHARED.pop(consortium.root, None)
        server.stop()


OnlinePkiFactory = Callable[..., OrgPki]


@pytest.fixture
def make_online_pki(trust_server: LiveServer, tmp_path: Path) -> OnlinePkiFactory:
    """A factory of PKIs whose certificates point at ``trust_server`` (and are hosted)."""

    def make(org: str = "KZ-CUSTOMS", country: str = "KZ", name: str | None = None) -> OrgPki:
        mount = f"{org}-T{next(_mounts)}"[:32]
        pki = init_pki(
            tmp_path / mount,
            org,
            country=country,
            name=name or f"{org} (online test PKI)",
            passphrase=PASSPHRASE,
            base_url=trust_server.base_url_for(mount),
        )
        trust_server.add(pki, mount=mount)
        return pki

    return make

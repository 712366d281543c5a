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
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, Consortium
from trust_services.pki import OrgPki, init_pki
from trust_services.server import BackgroundServer, TrustServicesApp

__all__ = ["LiveServer", "make_online_pki", "trust_server"]

_mounts = itertools.count(1)


class LiveServer(BackgroundServer):
    """The trust-services app served by uvicorn in a thread, on 127.0.0.1:<free port>."""

    def __init__(self, pkis: Iterable[OrgPki] = ()) -> None:
        super().__init__(TrustServicesApp(pkis))


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

"""Shared set-up of the route tests (no tests here): a KZ/UZ/KG node directory opened
with a test clock, its API served by uvicorn on loopback, and helpers that write through
``POST /v1/transactions`` with proposals built by ``node.services.submit.propose``."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from api.app import create_app
from api.httpsig import SignedRequestAuth
from node.node import Node, init_node, parse_org_spec
from node.proposal import SignedProposal
from node.services import submit
from tests.api.conftest import serve
from tests.conftest import PASSPHRASE
from tests.node.test_scenario import Clock

ORGS = (
    "KZ-CUSTOMS:KZ:State Revenue Committee",
    "UZ-CUSTOMS:UZ:Customs Committee",
    "KG-CUSTOMS:KG:Customs Service",
)


@dataclass
class Api:
    """The node, its clock, the served API and clients (anonymous or signed)."""

    node: Node
    clock: Clock
    url: str
    anonymous: httpx.Client

    def signed(self, who: str) -> httpx.Client:
        auth = SignedRequestAuth(self.node.signer(who), clock=lambda: float(self.clock.clock))
        return httpx.Client(base_url=self.url, auth=auth, timeout=30)

    def propose(self, who: str, function: str, arg: Any = None) -> SignedProposal:
        self.clock.tick()
        return submit.propose(
            self.node.signer(who),
            function,
            arg,
            channel=self.node.context.channel,
            clock=self.node.context.clock,
        )

    def post(self, proposal: SignedProposal) -> httpx.Response:
        return self.anonymous.post("/v1/transactions", json=proposal.to_json())

    def write(self, who: str, function: str, arg: Any = None) -> dict[str, Any]:
        response = self.post(self.propose(who, function, arg))
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        assert body["code"] == "VALID"
        return body


@pytest.fixture(scope="module", name="api")
def api_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    directory = tmp_path_factory.mktemp("api") / "node"
    init_node(directory, [parse_org_spec(o) for o in ORGS], PASSPHRASE, store_passphrase=True)
    clock = Clock()
    node = Node.open(directory, clock=clock, workers=0)
    node.wallet.issue(node.pki("KZ-CUSTOMS"), "kz-khorgos", role="sez-operator", sez="KZ-KHORGOS")
    node.wallet.issue(node.pki("KG-CUSTOMS"), "kg-customs-officer2", role="officer")
    app = create_app(node, max_body_bytes=64 * 1024)
    try:
        with serve(app) as url, httpx.Client(base_url=url, timeout=30) as client:
            yield Api(node, clock, url, client)
    finally:
        state = app.state.caravan
        if state.index is not None:
            state.index.close()
        node.close()

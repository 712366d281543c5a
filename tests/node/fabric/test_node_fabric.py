"""``ledger: {backend: fabric, …}`` in node.yaml: Node.open builds a FabricLedger on the
configured peer (TLS, server name override) and the node's services run on it."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.canonical import canonical_json
from node.config import ConfigError, NodeConfig, load_config, save_config
from node.fabric import FabricLedger
from node.index.index import Index
from node.node import Node, init_node, parse_org_spec
from node.proposal import make_proposal
from node.services import trust
from tests.conftest import PASSPHRASE

from .peer import FakePeer, serve
from .test_gateway import tls_material


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("fabric-node") / "node"
    init_node(
        directory,
        [parse_org_spec("KZ-CUSTOMS:KZ:State Revenue Committee")],
        PASSPHRASE,
        store_passphrase=True,
    )
    yield directory


def fabric_config(directory: Path, **peer: Any) -> dict[str, Any]:
    data = load_config(directory).model_dump(mode="json", exclude_none=True)
    data["ledger"] = {
        "backend": "fabric",
        "node_identity": "kz-customs-node",
        "msp_id": "KZ-CUSTOMS",
        "chaincode": "caravan",
        "peer": peer,
    }
    return data


def test_node_open_builds_a_fabric_ledger(node_dir: Path, tmp_path: Path) -> None:
    ca, server_pair = tls_material(tmp_path)
    (node_dir / "tls").mkdir(exist_ok=True)
    (node_dir / "tls" / "ca.pem").write_bytes(ca)
    peer = FakePeer("caravan")
    server, address = serve(peer, tls=server_pair)
    original = load_config(node_dir).model_dump(mode="json", exclude_none=True)
    try:
        data = fabric_config(
            node_dir, endpoint=address, tls_ca="tls/ca.pem", server_name="peer0.kz.example"
        )
        save_config(NodeConfig.build(node_dir, data))
        with Node.open(node_dir) as node:
            assert isinstance(node.ledger, FabricLedger)
            admin = node.signer("kz-customs-admin")
            root = node.pki("KZ-CUSTOMS").certificate("root").public_bytes(Encoding.DER)
            genesis = {
                "members": [
                    {
                        "msp_id": "KZ-CUSTOMS",
                        "country": "KZ",
                        "name": "State Revenue Committee",
                        "anchors": [
                            {"kind": "root", "certificate": base64.b64encode(root).decode()}
                        ],
                    }
                ]
            }
            signed = make_proposal(
                admin,
                "InitLedger",
                [canonical_json(genesis).decode()],
                channel="caravan",
                timestamp=divmod(time.time_ns(), 10**9),
            )
            assert node.ledger.submit(signed).valid
            members = trust.members(node.context)
            assert [m["msp_id"] for m in members] == ["KZ-CUSTOMS"]
            with Index("sqlite://") as index:
                assert index.catch_up(node.ledger) == 1
                assert [m.msp_id for m in index.members().items] == ["KZ-CUSTOMS"]

        # the node identity must be of ledger.msp_id; the CA file must exist and be PEM
        data["ledger"]["msp_id"] = "UZ-CUSTOMS"
        save_config(NodeConfig.build(node_dir, data))
        with pytest.raises(ConfigError, match=r"ledger\.msp_id: UZ-CUSTOMS but"):
            Node.open(node_dir)
        data["ledger"]["msp_id"] = "KZ-CUSTOMS"
        data["ledger"]["peer"]["tls_ca"] = "tls/missing.pem"
        save_config(NodeConfig.build(node_dir, data))
        with pytest.raises(ConfigError, match=r"ledger.peer.tls_ca: cannot read .*missing.pem"):
            Node.open(node_dir)
        data["ledger"]["peer"]["tls_ca"] = "node.yaml"
        save_config(NodeConfig.build(node_dir, data))
        with pytest.raises(ConfigError, match="is not a PEM file"):
            Node.open(node_dir)
    finally:
        save_config(NodeConfig.build(node_dir, original))
        server.stop(None)
        peer.close()
    assert peer.violations == []


@pytest.mark.parametrize(
    ("ledger", "message"),
    [
        ({"backend": "fabric"}, "ledger: backend fabric needs peer and msp_id"),
        ({"peer": {"endpoint": "p:1", "tls_ca": "ca.pem"}}, "ledger: peer is only for backend"),
        (
            {"backend": "fabric", "msp_id": "KZ-CUSTOMS", "peer": {"endpoint": "peer0"}},
            "ledger.peer.endpoint: must be HOST:PORT",
        ),
        (
            {"backend": "fabric", "msp_id": "KZ-CUSTOMS", "peer": {"endpoint": "p:7051"}},
            "missing key ledger.peer.tls_ca",
        ),
        (
            {
                "backend": "fabric",
                "msp_id": "KZ-CUSTOMS",
                "peer": {"endpoint": "p:7051", "tls_ca": "ca.pem", "tls_client_key": "k.pem"},
            },
            "ledger.peer: mutual TLS needs both",
        ),
        (
            {
                "backend": "fabric",
                "msp_id": "KZ-CUSTOMS",
                "chaincode": "no spaces",
                "peer": {"endpoint": "p:7051", "tls_ca": "ca.pem"},
            },
            "ledger.chaincode: must be a chaincode name",
        ),
    ],
)
def test_fabric_ledger_config_is_strict(tmp_path: Path, ledger: Any, message: str) -> None:
    data = {
        "version": 1,
        "ledger": {"node_identity": "kz-node", **ledger},
        "orgs": [{"org": "KZ-CUSTOMS", "country": "KZ", "name": "SRC"}],
    }
    with pytest.raises(ConfigError) as caught:
        NodeConfig.build(tmp_path, data)
    assert message in str(caught.value)

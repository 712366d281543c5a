"""FabricLedger.invoke/evaluate(chaincode=…) on a real Fabric 2.5 network, against a
trivial Go chaincode deployed next to Caravan's (bench/_fabric_gocc.py).

Needs CARAVAN_FABRIC_BIN (peer, orderer, configtxgen, osnadmin) and
CARAVAN_GO_CHAINCODE: a chaincode-as-a-service binary on Fabric's Go shim answering
``put(key, value)`` (PutState + event "put" with the key), ``get(key)`` (404 when absent)
and 500 for anything else — the comparison chaincode of bench/fabric.py.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE
from tests.network.conftest import consortium_on_free_ports, fabric_bin

pytestmark = pytest.mark.fabric

FABRIC_BIN = fabric_bin()
GO_CHAINCODE = os.environ.get("CARAVAN_GO_CHAINCODE")
if FABRIC_BIN is None or not GO_CHAINCODE or not Path(GO_CHAINCODE).is_file():
    pytest.skip(
        "needs Fabric 2.5 binaries (CARAVAN_FABRIC_BIN: peer, orderer, configtxgen, osnadmin) "
        "and a Go ccaas chaincode with put/get (CARAVAN_GO_CHAINCODE)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from bench._fabric_gocc import GoChaincode
    from node.fabric import FabricLedger
    from node.network.generate import generate
    from node.network.runner import FabricBinaries, LocalNetwork
    from node.node import Node

    assert FABRIC_BIN is not None and GO_CHAINCODE is not None
    network = generate(
        consortium_on_free_ports(), tmp_path_factory.mktemp("fabric") / "net", PASSPHRASE
    )
    binaries = FabricBinaries.find(FABRIC_BIN)
    runner = LocalNetwork(network, binaries)
    kz = network.consortium.administrations[0]
    try:
        runner.up(passphrase=PASSPHRASE)
        with (
            GoChaincode(network, binaries, Path(GO_CHAINCODE)) as gocc,
            Node.open(network.node_dir(kz.msp_id), {kz.msp_id: PASSPHRASE}) as node,
        ):
            assert isinstance(node.ledger, FabricLedger)
            assert len(gocc.pids) == len(network.consortium.administrations)
            yield node.ledger
    finally:
        runner.down()
        assert not any(s.running for s in runner.status())


def test_a_put_commits_and_a_get_reads_it_back(ledger: object) -> None:
    from node.fabric import FabricLedger

    assert isinstance(ledger, FabricLedger)
    receipt = ledger.invoke("put", ["k1", b"hello"], chaincode="gocc")
    assert receipt.code == "VALID", receipt
    assert re.fullmatch(r"[0-9a-f]{64}", receipt.tx_id)
    assert receipt.event == ("put", b"k1")  # the chaincode's event, as endorsed
    assert receipt.block is not None and receipt.block > 0
    got = ledger.evaluate("get", ["k1"], chaincode="gocc")
    assert (got.status, got.payload) == (200, b"hello")
    missing = ledger.evaluate("get", ["nope"], chaincode="gocc")
    assert missing.status == 404 and "not found" in missing.message
    # Caravan's chaincode on the same channel did not see the key
    assert ledger.evaluate("GetMembers", []).status == 200


def test_a_chaincode_error_comes_back_as_a_receipt(ledger: object) -> None:
    from node.fabric import FabricLedger

    assert isinstance(ledger, FabricLedger)
    receipt = ledger.invoke("put", ["only-a-key"], chaincode="gocc")
    assert receipt.code == "CHAINCODE_ERROR" and receipt.status == 500, receipt
    # a write sent to Caravan's chaincode without a member's proposal is refused (403)
    arg = '{"sez": "KZ-TEST", "name": "Test", "operator_subject": "CN=Test"}'
    refused = ledger.invoke("RegisterSezOperator", [arg])
    assert (refused.code, refused.status) == ("CHAINCODE_ERROR", 403), refused
    assert ledger.evaluate("GetSez", ['{"sez": "KZ-TEST"}']).status == 404

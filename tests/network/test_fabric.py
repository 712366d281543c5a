"""A real Fabric 2.5 network from `caravan network up` (needs CARAVAN_FABRIC_BIN).

Three administrations as local processes on loopback: Raft orderers joined with
osnadmin, peers joined to the channel, the ccaas chaincode installed, approved by each
organisation and committed. When Caravan's chaincode server is installed, the issue-3
scenario then runs through a Caravan node's Fabric backend and must give the world
state and recognition answers of the embedded ledger.
"""

from __future__ import annotations

import importlib.util
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from node.network.generate import GeneratedNetwork, generate
from node.network.runner import FabricBinaries, LocalNetwork, NetworkRunError
from tests.conftest import PASSPHRASE
from tests.network.conftest import consortium_on_free_ports, fabric_bin

pytestmark = pytest.mark.fabric

FABRIC_BIN = fabric_bin()
if FABRIC_BIN is None:
    pytest.skip(
        "needs Fabric 2.5 binaries: set CARAVAN_FABRIC_BIN to the directory holding peer, "
        "orderer, configtxgen and osnadmin",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNetwork, list[str]]]:
    assert FABRIC_BIN is not None
    network = generate(
        consortium_on_free_ports(), tmp_path_factory.mktemp("fabric") / "net", PASSPHRASE
    )
    steps: list[str] = []
    runner = LocalNetwork(network, FabricBinaries.find(FABRIC_BIN), progress=steps.append)
    try:
        # a port in use is named before anything starts
        kz = network.consortium.administrations[0]
        with socket.socket() as squatter:
            squatter.bind((kz.orderer.host, kz.orderer.admin_port))
            squatter.listen()
            with pytest.raises(NetworkRunError, match=f"port 127.0.0.1:{kz.orderer.admin_port}"):
                runner.up()
        runner.down()
        runner.up()
        yield runner, steps
    finally:
        runner.down()
        assert not any(s.running for s in runner.status())


def _peer_channels(runner: LocalNetwork, admin: Any) -> list[str]:
    assert runner.binaries is not None
    out = runner._run(  # the runner's own admin environment for the peer CLI
        [runner.binaries("peer"), "channel", "list"], runner._admin_env(admin), "channel list"
    )
    return out.split()


def test_up_joins_every_peer_and_commits_the_chaincode(
    running: tuple[LocalNetwork, list[str]],
) -> None:
    runner, steps = running
    statuses = {s.name: s.running for s in runner.status()}
    consortium = runner.consortium
    for admin in consortium.administrations:
        assert statuses[admin.orderer_id] and statuses[admin.peer_id(admin.peers[0])]
        assert consortium.channel in _peer_channels(runner, admin)
        assert f"{admin.msp_id} approves caravan 1.0 (sequence 1)" in steps
    assert runner.committed_sequence() == 1
    assert "committing caravan on caravan" in steps
    # up again: everything is found done, nothing is started or approved twice
    steps.clear()
    runner.up()
    assert not any(s.startswith(("starting", "installing", "committing")) for s in steps), steps
    assert "chaincode caravan sequence 1 is committed" in steps


def _network_signers(network: GeneratedNetwork) -> Any:
    """Member identities issued by the generated network's own PKIs."""
    from tests.conftest import Consortium
    from tests.node.conftest import build_signers
    from trust_services.pki import OrgPki

    pkis = {
        a.country: OrgPki(network.node_dir(a.msp_id) / "pki", a.msp_id).unlock(PASSPHRASE)
        for a in network.consortium.administrations
    }
    return build_signers(Consortium(network.root, pkis["KZ"], pkis["UZ"], pkis["KG"])), pkis


def test_scenario_on_fabric_matches_the_embedded_ledger(
    running: tuple[LocalNetwork, list[str]], tmp_path: Path
) -> None:
    if importlib.util.find_spec("chaincode.server.__main__") is None:
        pytest.skip("Caravan's chaincode server (python -m chaincode.server) is not installed")
    fabric_mod = pytest.importorskip("node.fabric")
    from node.embedded.ledger import EmbeddedLedger
    from node.proposal import parse_proposal
    from node.wallet import Wallet
    from tests.node.conftest import CHANNEL
    from tests.node.fabric.test_gateway import comparable, run_scenario
    from tests.node.test_scenario import Clock

    runner, steps = running
    network = runner.network
    signers, pkis = _network_signers(network)
    kz = network.consortium.administrations[0]
    node_signer = Wallet(network.node_dir(kz.msp_id) / "wallet").signer(
        f"{kz.slug}-node", {kz.msp_id: pkis["KZ"]}
    )
    peer = fabric_mod.PeerConnection(
        kz.peers[0].address,
        tls_ca=(network.org_dir(kz.msp_id) / "tls-ca.pem").read_bytes(),
        server_name=kz.peers[0].host,
    )
    # `up` could not open KZ's key store (no passphrase given): the genesis is ours to send
    assert any(step.startswith("the Caravan ledger is not initialised") for step in steps)
    genesis = runner.init_ledger(PASSPHRASE)
    assert genesis is not None
    assert parse_proposal(genesis.proposal).function == "InitLedger"
    assert runner.init_ledger(PASSPHRASE) is None  # once only
    ledger = fabric_mod.FabricLedger(peer, node_signer, channel=CHANNEL)
    try:
        clock: Any = Clock()
        sent = run_scenario(ledger, signers, clock)
        fabric_changes = list(ledger.changes(0))
        fabric_answers = _recognition(ledger, clock)
    finally:
        ledger.close()

    embedded = EmbeddedLedger.create(
        tmp_path / "ledger.db", CHANNEL, genesis, signers["kz-node"], clock=clock
    )
    try:
        for signed in sent:
            embedded.submit(signed)
        embedded_changes = list(embedded.changes(0))
        embedded_answers = _recognition(embedded, clock)
    finally:
        embedded.close()
    assert fabric_changes[0].function == "InitLedger"
    assert comparable(fabric_changes) == comparable(embedded_changes)
    assert all(not k.startswith("\x00txid\x00") for c in fabric_changes for k, _ in c.writes)
    # the same world state, and the same answers to every recognition question
    assert _world_state(fabric_changes) == _world_state(embedded_changes)
    assert len(_world_state(fabric_changes)) > 10
    assert fabric_answers == embedded_answers
    assert fabric_answers[("KZ-AEO-2026-000001", "UZ")] is False  # suspended at the end


def _world_state(changes: list[Any]) -> dict[str, bytes]:
    """The state the writes of valid transactions leave (txid marker keys excluded)."""
    state: dict[str, bytes] = {}
    for change in changes:
        for key, value in change.writes:
            if key.startswith("\x00txid\x00"):
                continue
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def _recognition(ledger: Any, clock: Any) -> dict[tuple[str, str], bool]:
    import json

    answers = {}
    for aeo_id in ("KZ-AEO-2026-000001", "KZ-AEO-2026-000002"):
        for country in ("UZ", "KG", "KZ"):
            query = {"aeo_id": aeo_id, "country": country, "at": clock.iso()}
            response = ledger.evaluate("IsRecognised", [json.dumps(query)])
            assert response.status == 200, response
            answers[(aeo_id, country)] = bool(json.loads(response.payload)["recognised"])
    return answers

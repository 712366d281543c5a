"""Fixtures: an in-process Fabric peer (tests/node/fabric/peer.py) and a FabricLedger on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest

from node.fabric import FabricLedger, PeerConnection
from tests.node.conftest import CHANNEL, Signers, genesis_arg, propose

from .peer import FakePeer, serve


@dataclass
class Network:
    peer: FakePeer
    server: grpc.Server
    address: str
    ledger: FabricLedger


def start(signers: Signers, *countries: str, **options: Any) -> Network:
    peer = FakePeer(CHANNEL)
    server, address = serve(peer)
    ledger = FabricLedger(PeerConnection(address), signers["kz-node"], channel=CHANNEL, **options)
    genesis = propose(
        signers["kz-admin"],
        "InitLedger",
        genesis_arg(signers.pkis, *(countries or ("KZ", "UZ", "KG"))),
    )
    receipt = ledger.submit(genesis)
    assert receipt.code == "VALID", receipt
    return Network(peer, server, address, ledger)


def stop(network: Network) -> None:
    network.ledger.close()
    network.server.stop(None)
    network.peer.close()


@pytest.fixture
def fabric(signers: Signers) -> Iterator[Network]:
    network = start(signers)
    yield network
    stop(network)
    assert network.peer.violations == []


@pytest.fixture
def make_fabric(signers: Signers) -> Iterator[Callable[..., Network]]:
    made: list[Network] = []

    def make(*countries: str, **options: Any) -> Network:
        made.append(start(signers, *countries, **options))
        return made[-1]

    yield make
    for network in made:
        stop(network)

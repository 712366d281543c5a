"""A network generated once per test session from network-config/consortium.yaml, and a
consortium definition on free loopback ports for the runs of real Fabric processes."""

from __future__ import annotations

import copy
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pytest
import yaml

from node.network.consortium import Consortium, load_consortium, parse_consortium
from node.network.generate import GeneratedNetwork, generate
from tests.conftest import PASSPHRASE

ROOT = Path(__file__).parent.parent.parent
CONSORTIUM = ROOT / "network-config" / "consortium.yaml"


def consortium_data() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(CONSORTIUM.read_text())
    return copy.deepcopy(data)


@pytest.fixture(scope="session")
def definition() -> Consortium:
    """The shipped consortium definition (``consortium`` is the root conftest's PKIs)."""
    return load_consortium(CONSORTIUM)


@pytest.fixture(scope="session")
def network(tmp_path_factory: pytest.TempPathFactory, definition: Consortium) -> GeneratedNetwork:
    return generate(definition, tmp_path_factory.mktemp("network") / "net", PASSPHRASE)


def free_ports(count: int) -> list[int]:
    """Ports the kernel gives out now (all held open together, so all distinct)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def consortium_on_free_ports() -> Consortium:
    data = consortium_data()
    ports = iter(free_ports(8 * len(data["administrations"])))
    for admin in data["administrations"]:
        for peer in admin["peers"]:
            peer.update(port=next(ports), chaincode_port=next(ports), operations_port=next(ports))
        admin["orderer"].update(
            port=next(ports), admin_port=next(ports), operations_port=next(ports)
        )
        admin["chaincode"]["port"] = next(ports)
        admin["node"]["port"] = next(ports)
    return parse_consortium(data)


def fabric_bin() -> Path | None:
    """CARAVAN_FABRIC_BIN, when it names a directory."""
    value = os.environ.get("CARAVAN_FABRIC_BIN")
    return Path(value) if value and Path(value).is_dir() else None


def configtxgen() -> str | None:
    directory = fabric_bin()
    if directory is not None and (directory / "configtxgen").is_file():
        return str(directory / "configtxgen")
    return shutil.which("configtxgen")

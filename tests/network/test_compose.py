"""docker-compose.yml runs the generated network: the same paths, ports and commands."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from cli.main import app
from node.network.consortium import Consortium
from node.network.generate import GeneratedNetwork
from tests.network.conftest import ROOT
from tests.tools import require_tool

COMPOSE = ROOT / "docker-compose.yml"


def _services() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())["services"]
    return services


def test_compose_file_validates_with_docker_compose(tmp_path: Path) -> None:
    """Debian's docker-compose 1.29 checks the file without a Docker engine."""
    tool = require_tool("docker-compose")
    (tmp_path / "secrets").mkdir()
    for cc in ("kz", "uz", "kg"):
        (tmp_path / "secrets" / f"{cc}.pass").write_text("x")
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "--project-directory", str(tmp_path), "config", "-q"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text(COMPOSE.read_text().replace("network_mode: host", "network_mode: [host]", 1))
    result = subprocess.run(
        [tool, "-f", str(broken), "--project-directory", str(tmp_path), "config", "-q"],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0  # the check can fail


def _in_container(network: GeneratedNetwork, path: Path) -> str:
    return "/network/" + path.relative_to(network.root).as_posix()


def test_every_administration_has_its_processes(
    definition: Consortium, network: GeneratedNetwork
) -> None:
    services = _services()
    for admin in definition.administrations:
        m, slug = admin.msp_id, admin.slug
        orderer = services[f"orderer0.{slug}"]
        assert orderer["image"] == "hyperledger/fabric-orderer:2.5"
        assert orderer["environment"]["FABRIC_CFG_PATH"] == _in_container(
            network, network.orderer_dir(m)
        )
        assert orderer["working_dir"] == orderer["environment"]["FABRIC_CFG_PATH"]
        peer = services[f"peer0.{slug}"]
        assert peer["image"] == "hyperledger/fabric-peer:2.5"
        peer_dir = _in_container(network, network.peer_dir(m))
        assert peer["environment"]["FABRIC_CFG_PATH"] == peer_dir
        assert peer["environment"]["CORE_LEDGER_SNAPSHOTS_ROOTDIR"].startswith(peer_dir + "/")
        chaincode = services[f"chaincode.{slug}"]
        assert chaincode["build"]["dockerfile"] == "chaincode/Dockerfile"
        assert chaincode["environment"]["CHAINCODE_SERVER_ADDRESS"] == admin.chaincode.address
        package_id = _in_container(network, network.package(m).parent / "package-id")
        assert package_id in chaincode["command"][0]
        node = services[f"{admin.country.lower()}-node"]
        script = node["command"][0]
        assert f"/run/secrets/{admin.country.lower()}" in script
        assert f"--dir {_in_container(network, network.node_dir(m))}" in script
        assert node["secrets"] == [admin.country.lower()] and not node.get("environment")
        for service in (orderer, peer, chaincode, node):
            assert service["network_mode"] == "host"  # the generated loopback addresses
    assert services["postgres"]["image"].startswith("postgres:")


def test_node_service_calls_a_real_command() -> None:
    services = _services()
    result = CliRunner().invoke(app, ["node", "start", "--help"])
    assert result.exit_code == 0
    for cc in ("kz", "uz", "kg"):
        words = services[f"{cc}-node"]["command"][0].split()
        assert words[words.index("caravan") + 1 : words.index("caravan") + 3] == ["node", "start"]
        for option in (w for w in words if w.startswith("--")):
            assert option in result.output


def test_postgres_init_creates_each_index_database(definition: Consortium) -> None:
    sql = (ROOT / "network-config" / "postgres" / "init.sql").read_text()
    for admin in definition.administrations:
        assert f"CREATE DATABASE caravan_{admin.slug.replace('-', '_')} " in sql

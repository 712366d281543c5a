"""`caravan network …` from the command line: output, idempotence and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from typer.testing import CliRunner

from cli import network as network_cli
from cli._common import console, err_console
from node.network.generate import GeneratedNetwork, generate
from tests.conftest import PASSPHRASE
from tests.network.conftest import CONSORTIUM, consortium_on_free_ports

console.width = err_console.width = 200
app = typer.Typer()
network_cli.register(app)


def caravan(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        app, [str(a) for a in args], env={"CARAVAN_PASSPHRASE": "", **(env or {})}
    )
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_generate_then_status_and_down(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE)
    out = tmp_path / "net"
    code, stdout, stderr = caravan(
        "network", "generate", "--config", CONSORTIUM, "--out", out,
        "--passphrase-file", secret, "--store-passphrase",
        "--index-url", "postgresql://caravan@127.0.0.1:5432/caravan_{org}",
    )  # fmt: skip
    assert code == 0, stderr
    assert "network of 3 administrations" in stdout
    assert "creating the PKI of UZ-CUSTOMS" in stderr
    network = GeneratedNetwork.open(out)
    for admin in network.consortium.administrations:
        assert network.package_id(admin.msp_id) in stdout
        stored = network.node_dir(admin.msp_id) / "secrets" / f"{admin.msp_id}.pass"
        assert stored.read_bytes() == PASSPHRASE
        assert oct(stored.stat().st_mode & 0o777) == "0o600"
        node_yaml = (network.node_dir(admin.msp_id) / "node.yaml").read_text()
        assert f"caravan_{admin.slug.replace('-', '_')}" in node_yaml
    # a second run reuses the PKIs
    code, _, stderr = caravan(
        "network", "generate", "--config", CONSORTIUM, "--out", out, "--passphrase-file", secret
    )
    assert code == 0, stderr
    assert "reusing the PKI of KZ-CUSTOMS" in stderr
    code, stdout, _ = caravan("network", "status", "--dir", out, "--json")
    assert code == 0
    rows = json.loads(stdout)
    assert {r["name"] for r in rows} >= {"peer0.kz-customs", "orderer0.kg-customs"}
    assert not any(r["running"] for r in rows)
    code, stdout, _ = caravan("network", "down", "--dir", out)
    assert code == 0 and "nothing was running" in stdout


def test_input_errors_are_one_line_exit_3(tmp_path: Path) -> None:
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE)
    cases = [
        (
            ("network", "generate", "--config", tmp_path / "none.yaml", "--out", tmp_path / "o",
             "--passphrase-file", secret),
            "no consortium definition at",
        ),
        (
            ("network", "generate", "--config", CONSORTIUM, "--out", tmp_path / "o"),
            "passphrase",
        ),
        (
            ("network", "up", "--fabric-bin", tmp_path, "--dir", tmp_path),
            "is not a generated network",
        ),
        (("network", "down", "--dir", tmp_path / "nowhere"), "is not a generated network"),
        (("network", "status", "--dir", tmp_path), "is not a generated network"),
    ]  # fmt: skip
    for args, message in cases:
        code, _, stderr = caravan(*args)
        assert code == 3, (args, stderr)
        assert message in one_line(stderr), stderr


def test_up_names_the_missing_binary(network: GeneratedNetwork, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("peer", "orderer", "configtxgen"):
        (bin_dir / name).write_text("#!/bin/sh\nexit 1\n")
        (bin_dir / name).chmod(0o700)
    code, _, stderr = caravan("network", "up", "--fabric-bin", bin_dir, "--dir", network.root)
    assert code == 3
    assert one_line(stderr) == f"error: missing Fabric binary osnadmin in {bin_dir}"
    (bin_dir / "osnadmin").write_text("#!/bin/sh\nexit 1\n")
    (bin_dir / "osnadmin").chmod(0o700)
    code, _, stderr = caravan("network", "up", "--fabric-bin", bin_dir, "--dir", network.root)
    assert code == 3
    assert "missing the ccaas external builder" in one_line(stderr)
    code, _, stderr = caravan(
        "network", "up", "--fabric-bin", tmp_path / "absent", "--dir", network.root
    )
    assert code == 3 and "is not a directory" in one_line(stderr)


def test_init_ledger_needs_a_running_peer(tmp_path: Path) -> None:
    network = generate(consortium_on_free_ports(), tmp_path / "net", PASSPHRASE)
    secret = tmp_path / "pass"
    secret.write_bytes(PASSPHRASE)
    kz = network.consortium.administrations[0]
    code, _, stderr = caravan("network", "init-ledger", "--dir", network.root)
    assert code == 3
    assert one_line(stderr) == ("error: no passphrase for the key store of KZ-CUSTOMS")
    code, _, stderr = caravan(
        "network", "init-ledger", "--dir", network.root, "--passphrase-file", secret
    )
    assert code == 3
    assert one_line(stderr) == (
        f"error: peer0.kz-customs does not answer on {kz.peers[0].address}: start the network first"
    )

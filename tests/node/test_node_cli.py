"""`caravan node init|info|identity add` as a user runs them, then the node they made:
Node.open, a sealed write through the services, reads; errors are one line and exit 3."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.node import Node
from node.services import aeo, recognition, submit, trust
from node.wallet import Wallet
from tests.chaincode.conftest import aeo_record
from tests.conftest import PASSPHRASE
from tests.node.test_scenario import Clock

ENV = {"COLUMNS": "200", "CARAVAN_PASSPHRASE": ""}


def caravan(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={**ENV, **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.fixture(scope="module")
def passphrase_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secret") / "pass"
    path.write_bytes(PASSPHRASE + b"\n")
    return path


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory, passphrase_file: Path) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("cli") / "node"
    code, out, err = caravan(
        "node",
        "init",
        "--dir",
        str(directory),
        "--org",
        "KZ-CUSTOMS:KZ:State Revenue Committee",
        "--org",
        "UZ-CUSTOMS:uz:Customs Committee",
        "--passphrase-file",
        str(passphrase_file),
        "--port",
        "8711",
        "--public-base-url",
        "https://caravan.example.kz/",
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["ledger"]["height"] == 1
    assert summary["public_base_url"] == "https://caravan.example.kz"
    assert [o["org"] for o in summary["orgs"]] == ["KZ-CUSTOMS", "UZ-CUSTOMS"]
    yield directory


def test_init_makes_a_node_that_opens_and_takes_a_sealed_write(node_dir: Path) -> None:
    assert sorted(p.name for p in node_dir.iterdir()) == [
        "data",
        "node.yaml",
        "pki",
        "secrets",
        "wallet",
    ]
    assert Wallet(node_dir / "wallet").names() == [
        "kz-customs-admin",
        "kz-customs-node",
        "kz-customs-officer",
        "uz-customs-admin",
        "uz-customs-node",
        "uz-customs-officer",
    ]
    for org in ("KZ-CUSTOMS", "UZ-CUSTOMS"):
        secret = node_dir / "secrets" / f"{org}.pass"
        assert secret.read_bytes() == PASSPHRASE and secret.stat().st_mode & 0o777 == 0o600
    clock = Clock()
    with Node.open(node_dir, clock=clock) as node:
        assert node.config.listen.port == 8711
        assert node.node_signer.msp_id == "KZ-CUSTOMS"
        # certificates point at the node's public URL for CRLs and OCSP
        cdp = node.pki("UZ-CUSTOMS").certificate("seal").extensions
        assert "https://caravan.example.kz/orgs/UZ-CUSTOMS/crl/issuing.crl" in str(cdp)
        ctx = node.context
        members = trust.members(ctx)
        assert [(m["msp_id"], m["country"]) for m in members] == [
            ("KZ-CUSTOMS", "KZ"),
            ("UZ-CUSTOMS", "UZ"),
        ]
        block0 = node.ledger.block(0)
        assert block0.txs[0].creator_msp == "KZ-CUSTOMS"  # the first org's admin
        assert block0.header["signer"]["msp_id"] == "KZ-CUSTOMS"  # its node identity

        record = aeo_record(clock, "KZ-AEO-2026-000777")
        clock.tick()
        receipt = submit.submit(
            ctx,
            submit.propose(
                node.signer("kz-customs-officer"),
                "IssueAeo",
                aeo.prepare_issue(record, node.pki("KZ-CUSTOMS")),
                channel=ctx.channel,
                clock=ctx.clock,
            ),
        )
        assert receipt.valid and receipt.block == 1
        assert aeo.get(ctx, record["aeo_id"])["record"] == record
        assert recognition.check(ctx, record["aeo_id"], "KZ")["recognised"] is True

    code, out, err = caravan("node", "info", "--dir", str(node_dir), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["ledger"]["height"] == 2
    assert info["listen"] == {"host": "127.0.0.1", "port": 8711}
    officer = next(i for i in info["identities"] if i["name"] == "kz-customs-officer")
    assert officer["role"] == "officer"
    assert officer["cert_sha256"] == Wallet(node_dir / "wallet").get(officer["name"]).cert_sha256
    code, out, err = caravan("node", "info", "--dir", str(node_dir))
    assert code == 0, err
    assert "height 2" in out and "kz-customs-officer" in out


def test_identity_add_issues_a_member_identity(node_dir: Path) -> None:
    code, out, err = caravan(
        "node",
        "identity",
        "add",
        "--dir",
        str(node_dir),
        "--org",
        "KZ-CUSTOMS",
        "--name",
        "kz-khorgos",
        "--role",
        "sez-operator",
        "--sez",
        "KZ-KHORGOS",
        "--json",
    )
    assert code == 0, err
    added = json.loads(out)
    assert (added["msp_id"], added["role"], added["sez"]) == (
        "KZ-CUSTOMS",
        "sez-operator",
        "KZ-KHORGOS",
    )
    entry = Wallet(node_dir / "wallet").get("kz-khorgos")
    assert entry.cert_sha256 == added["cert_sha256"]
    with Node.open(node_dir) as node:
        signer = node.signer("kz-khorgos")  # its key is in the KZ key store
        assert signer.certificate == entry.certificate


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "KZ-CUSTOMS"], "--org must be MSP:CC:Name"),
        (["--org", "KZ-CUSTOMS:KAZ:Customs"], "country must be an ISO 3166-1 alpha-2 code"),
        (["--org", "KZ CUSTOMS:KZ:Customs"], "org must be 2-32 of"),
        (
            ["--org", "KZ-CUSTOMS:KZ:A", "--org", "KZ-CUSTOMS:UZ:B"],
            "orgs: org KZ-CUSTOMS appears more than once",
        ),
        (["--org", "KZ-CUSTOMS:KZ:A", "--port", "70000"], "--port: must be less than or equal"),
        (
            ["--org", "KZ-CUSTOMS:KZ:A", "--public-base-url", "ftp://x"],
            "--public-base-url: must be an http",
        ),
    ],
)
def test_init_input_errors_exit_3_with_one_line(
    tmp_path: Path, passphrase_file: Path, args: list[str], message: str
) -> None:
    target = tmp_path / "new"
    code, _out, err = caravan(
        "node", "init", "--dir", str(target), "--passphrase-file", str(passphrase_file), *args
    )
    assert code == 3
    line = one_line(err)
    assert line.startswith("error: ") and message in line, line
    assert not target.exists()


def test_init_refuses_a_non_empty_directory(node_dir: Path, passphrase_file: Path) -> None:
    before = sorted(p.name for p in node_dir.iterdir())
    code, _out, err = caravan(
        "node",
        "init",
        "--dir",
        str(node_dir),
        "--org",
        "KG-CUSTOMS:KG:Customs Service",
        "--passphrase-file",
        str(passphrase_file),
    )
    assert code == 3
    assert "exists and is not an empty directory" in one_line(err)
    assert sorted(p.name for p in node_dir.iterdir()) == before


def test_init_without_a_passphrase_source_fails_at_once(tmp_path: Path) -> None:
    code, _out, err = caravan("node", "init", "--dir", str(tmp_path / "n"), "--org", "KZ-C:KZ:X")
    assert code == 3
    assert "no key store passphrase" in one_line(err)
    assert not (tmp_path / "n").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--org", "KG-CUSTOMS", "--name", "kg-x", "--role", "admin"], "KG-CUSTOMS is not hosted"),
        (["--org", "KZ-CUSTOMS", "--name", "kz-x", "--role", "king"], "--role must be one of"),
        (
            ["--org", "KZ-CUSTOMS", "--name", "kz-x", "--role", "sez-operator"],
            "an sez-operator needs --sez",
        ),
        (
            ["--org", "KZ-CUSTOMS", "--name", "kz-x", "--role", "admin", "--sez", "KZ-KHORGOS"],
            "--sez is only for an sez-operator",
        ),
        (
            ["--org", "KZ-CUSTOMS", "--name", "kz-customs-admin", "--role", "admin"],
            "already has an identity 'kz-customs-admin'",
        ),
        (["--org", "KZ-CUSTOMS", "--name", "Bad Name", "--role", "admin"], "not a wallet name"),
    ],
)
def test_identity_add_errors_exit_3_with_one_line(
    node_dir: Path, args: list[str], message: str
) -> None:
    before = Wallet(node_dir / "wallet").names()
    code, _out, err = caravan("node", "identity", "add", "--dir", str(node_dir), *args)
    assert code == 3
    line = one_line(err)
    assert line.startswith("error: ") and message in line, line
    assert Wallet(node_dir / "wallet").names() == before


def test_identity_add_with_a_wrong_passphrase_makes_nothing(node_dir: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("not the passphrase\n")
    directory = tmp_path / "copy"
    shutil.copytree(node_dir, directory)
    (directory / "secrets" / "KZ-CUSTOMS.pass").unlink()
    keys = sorted((directory / "pki" / "orgs" / "KZ-CUSTOMS" / "keys").iterdir())
    code, _out, err = caravan(
        "node",
        "identity",
        "add",
        "--dir",
        str(directory),
        "--org",
        "KZ-CUSTOMS",
        "--name",
        "kz-auditor",
        "--role",
        "verifier",
        "--passphrase-file",
        str(wrong),
    )
    assert code == 3
    assert "passphrase" in one_line(err)
    assert "kz-auditor" not in Wallet(directory / "wallet")
    assert sorted((directory / "pki" / "orgs" / "KZ-CUSTOMS" / "keys").iterdir()) == keys


def test_info_on_a_directory_without_a_node(tmp_path: Path) -> None:
    code, _out, err = caravan("node", "info", "--dir", str(tmp_path))
    assert code == 3
    assert "no node.yaml in" in one_line(err)


def test_usage_errors_exit_3_from_the_console_script(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", "node", "init", "--dir", str(tmp_path / "n")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3
    assert "Missing option '--org'" in result.stderr


def test_ledger_commands_take_a_node_directory(node_dir: Path, tmp_path: Path) -> None:
    code, out, err = caravan("ledger", "info", "--ledger", str(node_dir), "--json")
    assert code == 0, err
    assert json.loads(out)["channel"] == "caravan"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "node.yaml").write_text("version: 1\nlisten: {port: 70000}\n")
    code, _, err = caravan("ledger", "info", "--ledger", str(broken))
    assert code == 3
    assert "listen.port" in one_line(err)

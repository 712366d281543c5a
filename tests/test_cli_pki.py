"""`caravan pki …` as a user runs it: one line and exit 3 on every error, never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
ENV = {"CARAVAN_PASSPHRASE": "cli-passphrase", "COLUMNS": "200"}


def caravan(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env if env is not None else ENV)
    return result.exit_code, result.stdout, result.stderr


def pki(
    command: str, node: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, str, str]:
    """``caravan pki COMMAND --dir NODE --org KG-CUSTOMS ARGS…``."""
    return caravan("pki", command, "--dir", str(node), "--org", "KG-CUSTOMS", *args, env=env)


@pytest.fixture
def node(tmp_path: Path) -> Path:
    code, out, err = caravan(
        "pki",
        "init",
        "--dir",
        str(tmp_path),
        "--org",
        "KG-CUSTOMS",
        "--country",
        "KG",
        "--name",
        "Customs Service of the Kyrgyz Republic",
    )
    assert code == 0, err
    assert "issuing" in out and "encrypted file" in out
    return tmp_path


def test_init_show_issue_revoke(node: Path) -> None:
    code, pem, _ = pki("show", node, "--pem", "tsa")
    assert code == 0 and pem.startswith("-----BEGIN CERTIFICATE-----")
    code, out, err = pki(
        "issue",
        node,
        "--profile",
        "member",
        "--name",
        "Bishkek Verifier",
        "--role",
        "verifier",
        "--json",
    )
    assert code == 0, err
    import json

    serial = json.loads(out)["serial"]
    code, out, err = pki(
        "revoke",
        node,
        "--serial",
        serial,
        "--reason",
        "superseded",
    )
    assert code == 0, err
    code, out, _ = pki("show", node, "--json")
    entries = {e["serial"]: e for e in json.loads(out)}
    assert entries[serial]["revoked"]["reason"] == "superseded"
    assert sum(e["revoked"] is not None for e in entries.values()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--profile", "member", "--name", "X"], "needs --role"),
        (["--profile", "member", "--name", "X", "--role", "sez-operator"], "needs --sez"),
        (["--profile", "root", "--name", "X"], "'officer' or 'member'"),
        (["--profile", "officer", "--name", "X", "--csr", "/nonexistent.csr"], "no such CSR"),
    ],
)
def test_issue_refusals(node: Path, args: list[str], message: str) -> None:
    code, _, err = pki("issue", node, *args)
    assert code == 3
    assert message in err
    assert "Traceback" not in err


def test_issue_from_csr(node: Path, tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")]))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "op.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    out_pem = tmp_path / "op.pem"
    code, _, err = pki(
        "issue",
        node,
        "--profile",
        "member",
        "--name",
        "Bishkek FEZ Operator",
        "--role",
        "sez-operator",
        "--sez",
        "KG-BISHKEK",
        "--csr",
        str(path),
        "-o",
        str(out_pem),
    )
    assert code == 0, err
    cert = x509.load_pem_x509_certificate(out_pem.read_bytes())
    assert cert.public_key() == key.public_key()


def test_wrong_passphrase_one_line(node: Path) -> None:
    code, _, err = pki(
        "issue",
        node,
        "--profile",
        "officer",
        "--name",
        "A B",
        env={"CARAVAN_PASSPHRASE": "wrong"},
    )
    assert code == 3
    assert "wrong passphrase" in err and "wrong\n" not in err.replace("wrong passphrase", "")
    assert len(err.strip().splitlines()) == 1


def test_no_passphrase_and_no_terminal_fails_fast(tmp_path: Path) -> None:
    """With no passphrase source and no terminal the command fails at once, never hangs."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cli.main",
            "pki",
            "init",
            "--dir",
            str(tmp_path),
            "--org",
            "TJ-CUSTOMS",
            "--country",
            "TJ",
            "--name",
            "Tajik Customs",
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=Path(__file__).parent.parent,
        check=False,
    )
    assert result.returncode == 3
    assert "no key store passphrase" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "orgs" / "TJ-CUSTOMS").exists()


def test_unknown_org(tmp_path: Path) -> None:
    code, _, err = caravan("pki", "show", "--dir", str(tmp_path), "--org", "MN-CUSTOMS")
    assert code == 3 and "no PKI for MN-CUSTOMS" in err


@pytest.mark.parametrize(
    "args",
    [["pki", "init", "--bogus"], ["verify"], ["no-such-command"], ["pki", "show", "--dir"]],
)
def test_usage_errors_exit_3_not_2(args: list[str]) -> None:
    """2 means INDETERMINATE for `verify`; a usage error is an input error (3)."""
    result = subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path(__file__).parent.parent,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 3, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip()

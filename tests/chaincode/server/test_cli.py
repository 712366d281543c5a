"""`caravan chaincode package` (the tarball Fabric installs) and `serve` (a real process)."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tarfile
from pathlib import Path

from typer.testing import CliRunner

from chaincode.server import package_id
from cli.chaincode import app

from .helpers import read
from .peer import TestPeer

ROOT = Path(__file__).parents[3]


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]


def test_package_is_what_the_ccaas_builder_reads(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    out = tmp_path / "caravan.tar.gz"
    args = ["package", "--label", "caravan_1.0", "--address", "cc.kz.example:9999"]
    result = CliRunner().invoke(app, [*args, "--tls", "--root-cert", str(ca), "--out", str(out)])
    assert result.exit_code == 0, result.output
    data = out.read_bytes()
    assert result.output.strip() == package_id("caravan_1.0", data)
    outer = members(data)
    assert set(outer) == {"metadata.json", "code.tar.gz"}
    assert json.loads(outer["metadata.json"]) == {"label": "caravan_1.0", "type": "ccaas"}
    connection = json.loads(members(outer["code.tar.gz"])["connection.json"])
    assert connection["address"] == "cc.kz.example:9999"
    assert connection["tls_required"] is True and connection["client_auth_required"] is False
    assert connection["root_cert"] == ca.read_text() and connection["dial_timeout"] == "10s"
    # the same options give the same bytes, so the same package id
    again = CliRunner().invoke(app, [*args, "--tls", "--root-cert", str(ca), "--out", str(out)])
    assert again.output == result.output


def test_package_refuses_bad_options_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "p.tar.gz"
    for args, message in [
        (["--label", "-bad", "--address", "h:1"], "label '-bad' must start"),
        (["--label", "ok", "--address", "nohost"], "address must be HOST:PORT"),
        (["--label", "ok", "--address", "h:1", "--root-cert", str(out)], "cannot read"),
    ]:
        result = CliRunner().invoke(app, ["package", *args, "--out", str(out)])
        assert result.exit_code == 3 and message in result.output, result.output
    assert not out.exists()


def test_serve_runs_until_sigterm(tmp_path: Path) -> None:
    code = "import sys; from cli.chaincode import app; app(prog_name='caravan chaincode')"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--address", "127.0.0.1:0", "--id", "cc:1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert "listening on port" in line, process.stderr.read() if process.stderr else ""
        port = int(line.rsplit(" ", 1)[1])
        peer = TestPeer.connect(f"127.0.0.1:{port}")
        assert peer.registered_as == "cc:1"
        assert read(peer, "GetMembers").status == 200
        peer.close()
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_without_an_id_is_an_input_error() -> None:
    result = CliRunner(env={"CHAINCODE_ID": ""}).invoke(app, ["serve", "--address", "h:1"])
    assert result.exit_code == 3 and "package id" in result.output

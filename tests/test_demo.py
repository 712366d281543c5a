"""`caravan demo` (what `make demo` runs): the consortium story over the API, end to end."""

from __future__ import annotations

import re
import socket
from pathlib import Path

from typer.testing import CliRunner

from cli._common import console, err_console
from cli.main import app
from tests.tools import require_tool, run_tool

ENV = {"COLUMNS": "200"}
# rich fixes a console's width when it is created (pytest-xdist workers have COLUMNS=80):
# the summary panel would fold the URLs the test looks for
console.width = err_console.width = 200


def test_the_consortium_story(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(
        app, ["demo", "--dir", str(out), "--port", "0", "--no-serve"], env=ENV
    )
    assert result.exit_code == 0, result.output
    text = result.output
    assert "Traceback" not in text
    year = re.search(r"KZ-AEO-(\d{4})-000123", text)
    assert year is not None, text
    aeo_id = f"KZ-AEO-{year[1]}-000123"

    # recognition: YES in UZ and NO in KG under the MRA, NO in UZ after the suspension
    yes = text.index(f"checks {aeo_id} in UZ: YES")
    assert f"checks {aeo_id} in KG: NO" in text
    received = re.search(
        rf"UZ received on the stream: AeoSuspended {aeo_id} version 2, status suspended, "
        r"in block (\d+)",
        text,
    )
    assert received is not None, text
    suspension = re.search(rf"KZ suspends {aeo_id} .*block (\d+)", text)
    assert suspension is not None and suspension[1] == received[1]
    no = text.index(f"UZ checks {aeo_id} again: NO")
    assert yes < received.start() < no
    assert f"AEO certificate {aeo_id} is suspended" in text

    # the sealed certificate validates on the node, a tampered copy does not; the trail holds
    assert re.search(r"validates the sealed certificate .*: TOTAL-PASSED", text)
    assert "CAdES-BASELINE-T" in text and "qualified electronic seal" in text
    assert re.search(r"tampered copy .*: TOTAL-FAILED / HASH_FAILURE", text)
    assert re.search(r"the trail of \S+: verified — 6 events", text)
    for url in ("/docs", f"/v1/aeo-certificates/{aeo_id}", "/v1/stream", "/orgs/KZ-CUSTOMS/tsa"):
        assert url in text

    # what it leaves behind checks with other tools: the ledger, the seal, its timestamp
    verified = CliRunner().invoke(app, ["ledger", "verify", "--ledger", str(out / "node")])
    assert verified.exit_code == 0, verified.output
    assert "ledger verify: OK" in verified.output
    require_tool("openssl")
    stem = out / aeo_id
    run_tool(
        "openssl",
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        stem.with_name(f"{aeo_id}.p7s"),
        "-content",
        stem.with_name(f"{aeo_id}.canonical.json"),
        "-CAfile",
        out / "kz-root.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    )
    run_tool(
        "openssl",
        "ts",
        "-verify",
        "-token_in",
        "-in",
        stem.with_name(f"{aeo_id}.seal-timestamp.tst"),
        "-data",
        stem.with_name(f"{aeo_id}.signature-value.bin"),
        "-CAfile",
        out / "kz-root.pem",
        "-untrusted",
        out / "kz-issuing.pem",
    )
    secrets = sorted((out / "node" / "secrets").iterdir())
    assert [p.name for p in secrets] == ["KG-CUSTOMS.pass", "KZ-CUSTOMS.pass", "UZ-CUSTOMS.pass"]
    assert all(p.stat().st_mode & 0o077 == 0 for p in secrets)


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["demo", "--dir", str(out), "--port", str(port), "--no-serve"]
        result = CliRunner().invoke(app, args, env=ENV)
        assert result.exit_code == 3, result.output
        assert result.stderr.count("\n") == 1
        assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
        # what it left is a demo directory: the next run replaces it (and meets the port)
        again = CliRunner().invoke(app, args, env=ENV)
        assert again.exit_code == 3, again.output
        assert f"cannot listen on 127.0.0.1:{port}" in again.stderr


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not delete")
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--no-serve"])
    assert result.exit_code == 3
    assert "not a Caravan demo directory" in result.stderr
    assert (tmp_path / "precious.txt").exists()

"""`caravan demo` (what `make demo` runs) plays its story end to end and says so."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from cli.main import app
from tests.tools import require_tool, run_tool


def test_demo_walkthrough(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--dir", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert result.output.count("TOTAL-PASSED") == 2
    assert "TOTAL-FAILED / HASH_FAILURE" in result.output
    assert "qualified electronic seal" in result.output
    # the artefacts it leaves verify with independent tools
    require_tool("openssl")
    run_tool(
        "openssl",
        "ts",
        "-verify",
        "-in",
        out / "declaration-KZ-2026-0042.tsr",
        "-data",
        out / "declaration-KZ-2026-0042.txt",
        "-CAfile",
        out / "kz-root.pem",
        "-untrusted",
        out / "kz-issuing.pem",
    )
    run_tool(
        "openssl",
        "cms",
        "-verify",
        "-binary",
        "-inform",
        "DER",
        "-in",
        out / "KZ-AEO-2026-000123.p7s",
        "-content",
        out / "KZ-AEO-2026-000123.canonical.json",
        "-CAfile",
        out / "kz-root.pem",
        "-purpose",
        "any",
        "-out",
        "/dev/null",
    )
    assert (out / "passphrase.txt").stat().st_mode & 0o077 == 0
    # a second run replaces its own directory
    again = CliRunner().invoke(app, ["demo", "--dir", str(out)])
    assert again.exit_code == 0, again.output


def test_demo_refuses_a_foreign_directory(tmp_path: Path) -> None:
    (tmp_path / "precious.txt").write_text("do not delete")
    result = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 3
    assert "not a Caravan demo directory" in result.stderr
    assert (tmp_path / "precious.txt").exists()

"""docker-compose.yml and the Dockerfile stay consistent with the CLI they call."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml
from typer.testing import CliRunner

from cli.main import app
from tests.tools import require_tool

ROOT = Path(__file__).parent.parent


def test_compose_services_call_real_commands() -> None:
    """Every `caravan …` a Compose service runs exists with the options it is given, and
    takes its passphrase from a secret, never from the environment."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"kz-trust", "uz-trust", "kg-trust", "kz-node", "uz-node", "kg-node"} <= set(services)
    runner = CliRunner()
    checked = 0
    for name, service in services.items():
        command = service.get("command") or [""]
        script = command[0] if isinstance(command, list) else command
        if name.endswith("-trust"):
            assert "--passphrase-file /run/secrets/" in script, name
        for part in script.split(";"):
            words = part.replace("exec ", "").split()
            if "caravan" not in words:
                continue  # Fabric's own images, the chaincode server, PostgreSQL
            start = words.index("caravan")
            group, cmd = words[start + 1], words[start + 2]
            result = runner.invoke(app, [group, cmd, "--help"])
            assert result.exit_code == 0, f"{name}: caravan {group} {cmd}: {result.output}"
            for option in (w for w in words if w.startswith("--")):
                assert option in result.output, f"{name}: {option} unknown to {group} {cmd}"
            assert service["secrets"], name
            assert "PASSPHRASE" not in str(service.get("environment", "")), name
            checked += 1
    assert checked >= 6


def test_compose_file_validates_with_docker_compose() -> None:
    """docker-compose validates the file without a Docker engine (FABRIC-NOTES.md)."""
    tool = require_tool("docker-compose")
    secrets = ROOT / "secrets"
    created = not secrets.exists()
    secrets.mkdir(exist_ok=True)
    try:
        for cc in ("kz", "uz", "kg"):
            (secrets / f"{cc}.pass").touch()
        result = subprocess.run(
            [tool, "-f", str(ROOT / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    finally:
        if created:
            shutil.rmtree(secrets)

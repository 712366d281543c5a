"""`caravan node start` as a user runs it: a real process serving the API and the
trust services of a node directory; Ctrl-C (SIGINT) stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from node.node import init_node, parse_org_spec
from tests.conftest import PASSPHRASE

CARAVAN = [sys.executable, "-c", "from cli.main import run; run()"]


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("start") / "node"
    init_node(
        directory,
        [parse_org_spec("KZ-CUSTOMS:KZ:State Revenue Committee")],
        PASSPHRASE,
        store_passphrase=True,
    )
    return directory


def test_start_serves_and_stops_on_ctrl_c(node_dir: Path) -> None:
    env = {**os.environ, "COLUMNS": "200"}
    process = subprocess.Popen(
        [*CARAVAN, "node", "start", "--dir", str(node_dir), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.search(r"on (http://127\.0\.0\.1:\d+)", first)
        assert match, first + (process.stderr.read() if process.stderr else "")
        base = match[1]
        lines = [process.stdout.readline() for _ in range(3)]
        assert f"{base}/docs" in lines[0] and f"{base}/v1/health" in lines[1]
        health = httpx.get(f"{base}/v1/health", timeout=30).json()
        assert health["orgs"] == ["KZ-CUSTOMS"] and health["height"] == 1
        crl = httpx.get(f"{base}/orgs/KZ-CUSTOMS/crl/issuing.crl", timeout=30)
        assert crl.status_code == 200
        assert httpx.get(f"{base}/v1/mras", timeout=30).json() == {"items": [], "next_cursor": None}
    finally:
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    assert process.returncode in (0, 130), err
    assert "Traceback" not in err


def test_start_without_a_passphrase_is_one_line(node_dir: Path, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    moved = node_dir / "secrets" / "KZ-CUSTOMS.pass"
    kept = tmp_path / "secrets" / "KZ-CUSTOMS.pass"
    moved.rename(kept)
    try:
        result = subprocess.run(
            [*CARAVAN, "node", "start", "--dir", str(node_dir), "--port", "0"],
            capture_output=True,
            text=True,
            timeout=60,
            env={k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")},
        )
    finally:
        kept.rename(moved)
    assert result.returncode == 3
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no passphrase"), result.stderr

"""`caravan ledger info|block|verify` on real ledgers: output, JSON and exit codes."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from node.embedded.inspect import block_json, block_view, ledger_info, stored_bytes
from node.embedded.ledger import EmbeddedLedger
from node.embedded.store import Store, ver_of
from node.errors import LedgerCorrupted, LedgerError
from tests.node.conftest import CHANNEL, Signers, genesis_arg, propose
from tests.node.test_ledger import anchor_batch, event, with_sez
from trust_services.tsa import SerialAllocator, TimestampAuthority

MakeLedger = Callable[..., EmbeddedLedger]
ROOT = Path(__file__).parent.parent.parent


def caravan(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "250"})
    return result.exit_code, result.stdout, result.stderr


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def populated(ledger: EmbeddedLedger, signers: Signers) -> None:
    """Block 1: an SEZ operator; block 2: a valid anchor and an MVCC-conflicted one."""
    with_sez(ledger, signers)
    ref = "26KZ0004242-KHG"
    a, b = ledger.submit_many(
        [
            propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(1, ref))),
            propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(2, ref))),
        ]
    )
    assert (a.code, b.code, a.block) == ("VALID", "MVCC_READ_CONFLICT", 2)


@pytest.fixture
def closed(make_ledger: MakeLedger, signers: Signers) -> tuple[Path, EmbeddedLedger]:
    """A populated ledger, closed (the CLI reads files no node holds open)."""
    ledger = make_ledger()
    populated(ledger, signers)
    ledger.close()
    return ledger.store.path, ledger


# ------------------------------------------------------------------------- inspect
def test_ledger_info_without_a_signer_matches_the_node(
    make_ledger: MakeLedger, signers: Signers
) -> None:
    ledger = make_ledger()
    populated(ledger, signers)
    store = Store.open(ledger.store.path, readonly=True)  # beside the running node
    try:
        assert ledger_info(store) == ledger.info()
        assert block_view(store, 2) == ledger.block(2)
    finally:
        store.close()


def test_block_view_refuses_missing_blocks(closed: tuple[Path, EmbeddedLedger]) -> None:
    store = Store.open(closed[0], readonly=True)
    try:
        with pytest.raises(LedgerError, match=r"no block 3 \(height 3\)"):
            block_view(store, 3)
        with pytest.raises(LedgerError, match="start at 0"):
            block_view(store, -1)
    finally:
        store.close()


# ---------------------------------------------------------------------------- info
def test_info(closed: tuple[Path, EmbeddedLedger]) -> None:
    path, _ = closed
    code, out, err = caravan("ledger", "info", "--ledger", str(path))
    assert code == 0, err
    assert CHANNEL in out and "3 block(s)" in out
    assert "4 (3 valid, 1 invalid)" in out

    code, out, err = caravan("ledger", "info", "--ledger", str(path), "--json")
    assert code == 0, err
    info = json.loads(out)
    store = Store.open(path, readonly=True)
    try:
        last = store.last_block()
        assert last is not None
        assert info == {
            "path": str(path),
            "channel": CHANNEL,
            "height": 3,
            "last_block_hash": bytes(last.hash).hex(),
            "tx_count": 4,
            "valid_tx_count": 3,
            "invalid_tx_count": 1,
            "state_keys": store.state_key_count(),
            "size_bytes": stored_bytes(path),
        }
    finally:
        store.close()
    assert info["state_keys"] > 0 and info["size_bytes"] >= path.stat().st_size > 0


def test_a_node_directory_is_a_ledger_path(tmp_path: Path, signers: Signers) -> None:
    genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ"))
    node = tmp_path / "node"
    EmbeddedLedger.create(node / "ledger.db", CHANNEL, genesis, signers["kz-node"]).close()
    code, out, err = caravan("ledger", "info", "--ledger", str(node), "--json")
    assert code == 0, err
    assert json.loads(out)["height"] == 1
    code, out, err = caravan("ledger", "verify", "--ledger", str(node))
    assert code == 0, err


# --------------------------------------------------------------------------- block
def run_caravan(*args: str, columns: int = 200) -> subprocess.CompletedProcess[str]:
    """The console script in a terminal of ``columns`` (rich reads COLUMNS at start)."""
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": str(columns)},
    )


def test_block_table(closed: tuple[Path, EmbeddedLedger]) -> None:
    path, _ = closed
    store = Store.open(path, readonly=True)
    try:
        view = block_view(store, 2)
    finally:
        store.close()
    wide = run_caravan("ledger", "block", "2", "--ledger", str(path), columns=200)
    assert wide.returncode == 0, wide.stderr
    out = wide.stdout
    assert view.hash in out and view.header["prev_hash"] in out
    assert "KZ-CUSTOMS" in out and "timestamp token" in out and "none" in out
    for tx in view.txs:
        assert tx.tx_id in out
    assert "MVCC_READ_CONFLICT" in out and "AnchorEvents" in out
    assert "2 transaction(s)" in out and "shortened" not in out
    # on a narrow terminal the ids are cut visibly, never silently
    narrow = run_caravan("ledger", "block", "2", "--ledger", str(path), columns=80)
    assert narrow.returncode == 0, narrow.stderr
    for tx in view.txs:
        assert tx.tx_id not in narrow.stdout and f"{tx.tx_id[:12]}…" in narrow.stdout
    assert "tx ids shortened: --json" in narrow.stdout


def test_block_json(closed: tuple[Path, EmbeddedLedger]) -> None:
    path, _ = closed
    code, out, err = caravan("ledger", "block", "0", "--ledger", str(path), "--json")
    assert code == 0, err
    block = json.loads(out)
    store = Store.open(path, readonly=True)
    try:
        stored = store.block(0)
        assert stored is not None
        assert block == json.loads(json.dumps(block_json(block_view(store, 0))))
    finally:
        store.close()
    assert block["number"] == 0 and block["hash"] == bytes(stored.hash).hex()
    assert base64.b64decode(block["signature"]) == bytes(stored.signature)
    assert block["timestamp_token"] is None
    assert block["header"]["prev_hash"] == "0" * 64
    (tx,) = block["txs"]
    assert (tx["index"], tx["code"], tx["function"]) == (0, "VALID", "InitLedger")
    assert tx["creator_msp"] == "KZ-CUSTOMS" and tx["record"]["code"] == "VALID"


def test_block_with_a_timestamp_token(
    make_ledger: MakeLedger, signers: Signers, tmp_path: Path
) -> None:
    kz = signers.pkis["KZ"]
    tsa = TimestampAuthority(
        kz.key("tsa"),
        kz.certificate("tsa"),
        [kz.certificate("issuing")],
        serials=SerialAllocator(tmp_path / "serial"),
    )
    ledger = make_ledger("KZ", timestamper=tsa)
    ledger.close()
    path = ledger.store.path
    code, out, err = caravan("ledger", "block", "0", "--ledger", str(path))
    assert code == 0, err
    assert "present (" in out
    code, out, err = caravan("ledger", "block", "0", "--ledger", str(path), "--json")
    token = base64.b64decode(json.loads(out)["timestamp_token"])
    assert token[:1] == b"\x30" and len(token) > 100


def test_missing_block(closed: tuple[Path, EmbeddedLedger]) -> None:
    code, out, err = caravan("ledger", "block", "7", "--ledger", str(closed[0]))
    assert code == 3 and out == ""
    assert "no block 7 (height 3)" in one_line(err)


def test_an_unreadable_block_is_named(closed: tuple[Path, EmbeddedLedger]) -> None:
    path, _ = closed
    conn = sqlite3.connect(path)
    conn.execute("UPDATE txs SET record = x'7b' WHERE ver = ?", (ver_of(2, 1),))
    conn.commit()
    conn.close()
    store = Store.open(path, readonly=True)
    try:
        with pytest.raises(LedgerCorrupted) as caught:
            block_view(store, 2)
    finally:
        store.close()
    assert caught.value.block == 2
    code, _out, err = caravan("ledger", "block", "2", "--ledger", str(path))
    assert code == 1
    assert "block 2: the stored block cannot be read" in one_line(err)
    code, _out, err = caravan("ledger", "verify", "--ledger", str(path))
    assert code == 1 and one_line(err).startswith("ledger verify: block 2: ")


# -------------------------------------------------------------------------- verify
def test_verify(closed: tuple[Path, EmbeddedLedger]) -> None:
    path, _ = closed
    code, out, err = caravan("ledger", "verify", "--ledger", str(path))
    assert code == 0, err
    line = one_line(out)
    assert line.startswith("ledger verify: OK")
    assert "3 blocks" in line and "4 transactions (3 valid)" in line and "writes" in line
    code, out, err = caravan("ledger", "verify", "--ledger", str(path), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["ok"] is True
    assert (report["height"], report["tx_count"], report["valid_tx_count"]) == (3, 4, 3)
    assert report["writes"] > 0 and report["seconds"] >= 0


# -------------------------------------------------------------------- input errors
@pytest.mark.parametrize("command", [["info"], ["block", "0"], ["verify"]])
def test_not_a_ledger_is_an_input_error(tmp_path: Path, command: list[str]) -> None:
    missing = tmp_path / "missing.db"
    code, out, err = caravan("ledger", *command, "--ledger", str(missing))
    assert code == 3 and out == ""
    assert f"no ledger at {missing}" in one_line(err)

    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    code, out, err = caravan("ledger", *command, "--ledger", str(junk))
    assert code == 3 and out == ""
    assert "error:" in one_line(err)

    other = tmp_path / "other.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL)")
    conn.commit()
    conn.close()
    code, out, err = caravan("ledger", *command, "--ledger", str(other))
    assert code == 3 and "is not a Caravan ledger" in one_line(err)

    code, out, err = caravan("ledger", *command, "--ledger", str(tmp_path))  # no ledger.db
    assert code == 3 and "no ledger at" in one_line(err)


def test_the_console_script_exit_codes(closed: tuple[Path, EmbeddedLedger]) -> None:
    """As a user runs it: usage error 3; corruption 1 with the block on one stderr line."""

    path, _ = closed
    usage = run_caravan("ledger", "block", "--ledger", str(path))  # no block number
    assert usage.returncode == 3 and "Traceback" not in usage.stderr
    conn = sqlite3.connect(path)
    conn.execute("UPDATE blocks SET header = CAST(header || ' ' AS BLOB) WHERE number = 1")
    conn.commit()
    conn.close()
    result = run_caravan("ledger", "verify", "--ledger", str(path))
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip() == "ledger verify: block 1: the header is not canonical JSON"

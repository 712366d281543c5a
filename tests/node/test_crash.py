"""A node killed with SIGKILL in the middle of its commit loop loses nothing it acknowledged.

A child process (crash_writer.py) commits batches of AnchorEvents and prints each
transaction id once ``submit_many`` has returned. The test kills it at a few different
moments, then checks the ledger file as it is left: it verifies, every acknowledged
transaction is there and VALID, no block is torn, and the node opens it and goes on.
(SIGKILL is a process crash: the OS keeps what was written. A power loss is what
``synchronous=FULL`` is for, which a test cannot pull the plug on.)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from node.embedded.ledger import EmbeddedLedger, read_block
from node.embedded.store import VER_SHIFT, Store
from node.embedded.verify import verify_ledger
from tests.node.conftest import CHANNEL, Signers, propose
from tests.node.test_ledger import SEZ, anchor_batch, event, with_sez

MakeLedger = Callable[..., EmbeddedLedger]
ROOT = Path(__file__).parent.parent.parent
BATCH = 20
FIRST_ANCHOR_BLOCK = 2  # block 0: genesis, block 1: the SEZ operator


def writer_config(tmp_path: Path, signers: Signers, ledger: Path) -> Path:
    kz = signers.pkis["KZ"]
    files = {}
    for name in ("kz-node", "kz-khorgos"):
        pem = tmp_path / f"{name}.pem"
        pem.write_bytes(signers[name].certificate.public_bytes(Encoding.PEM))
        files[name] = str(pem)
    config = tmp_path / "writer.json"
    config.write_text(
        json.dumps(
            {
                "ledger": str(ledger),
                "channel": CHANNEL,
                "pki_root": str(kz.root_dir),
                "org": kz.org,
                "node_label": "ln-kz-node",
                "node_cert": files["kz-node"],
                "operator_label": "ln-kz-khorgos",
                "operator_cert": files["kz-khorgos"],
                "sez": SEZ,
                "batch": BATCH,
                "max_batches": 500,  # an orphan stops by itself
            }
        )
    )
    return config


def run_and_kill(config: Path, kill_after: int) -> list[str]:
    """Start the writer, SIGKILL it once ``kill_after`` ids are acknowledged; all acks."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.node.crash_writer", str(config)],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    acked: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            acked.append(line.rstrip("\n"))
            if len(acked) >= kill_after:
                os.kill(proc.pid, signal.SIGKILL)
                break
        # the dead writer's pipe ends: read what it holds through the same buffer
        rest = proc.stdout.read()
        assert proc.stderr is not None
        err = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"the writer ended by itself: {err}"
    # ids already in the pipe when the kill came were acknowledged too (whole lines only)
    acked.extend(line for line in rest.split("\n")[:-1])
    return acked


@pytest.mark.parametrize("kill_after", [60, 230, 470])
def test_sigkill_in_the_commit_loop_loses_no_acknowledged_transaction(
    make_ledger: MakeLedger, signers: Signers, tmp_path: Path, kill_after: int
) -> None:
    ledger = make_ledger("KZ")
    with_sez(ledger, signers)
    path = ledger.store.path
    ledger.close()

    acked = run_and_kill(writer_config(tmp_path, signers, path), kill_after)
    assert len(acked) >= kill_after and len(acked) % BATCH == 0
    assert len(set(acked)) == len(acked)

    # the file as the dead node left it (WAL and all), read-only as `caravan ledger` reads it
    store = Store.open(path, readonly=True)
    try:
        report = verify_ledger(store)
        rows = store.reader().execute("SELECT ver, tx_id, code FROM txs").fetchall()
        committed = {bytes(tx_id).hex(): (ver, code) for ver, tx_id, code in rows}
        for tx_id in acked:
            assert tx_id in committed, f"acknowledged transaction {tx_id} is lost"
            assert committed[tx_id][1] == "VALID"
        # what was committed but not yet printed is at most the one batch in flight
        anchors = len(committed) - FIRST_ANCHOR_BLOCK
        assert 0 <= anchors - len(acked) <= BATCH
        # no torn block: every anchor block holds exactly one whole batch
        per_block: dict[int, int] = {}
        for ver, _tx_id, _code in rows:
            per_block[ver >> VER_SHIFT] = per_block.get(ver >> VER_SHIFT, 0) + 1
        anchor_blocks = range(FIRST_ANCHOR_BLOCK, report.height)
        assert [per_block[b] for b in anchor_blocks] == [BATCH] * len(anchor_blocks)
        last = read_block(store, report.height - 1)
        assert {t.tx_id for t in last.txs} <= set(committed)
    finally:
        store.close()
    assert report.tx_count == len(committed) == report.valid_count

    # the node opens the file again and goes on where the chain ends
    reopened = EmbeddedLedger.open(path, signers["kz-node"])
    try:
        receipt = reopened.submit(
            propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(10**6)))
        )
        assert receipt.code == "VALID" and receipt.block == report.height
        assert verify_ledger(reopened.store).height == report.height + 1
    finally:
        reopened.close()

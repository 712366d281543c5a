"""Committed transactions per second through the Fabric Gateway client, at several
concurrency levels, with p50/p99 latency (submit → committed receipt).

    .venv/bin/python bench/fabric.py [--tx 400] [--concurrency 1,50,200] [--json]
    .venv/bin/python bench/fabric.py --node-dir DIR --operator NAME [...]

Without ``--node-dir`` the Gateway is the **in-process test peer**
(tests/node/fabric/peer.py: Python, same process, blocks cut as soon as a transaction
waits): the figures measure the client and that stand-in, not Fabric. With
``--node-dir`` the node directory's ``ledger: {backend: fabric}`` peer is used (a real
network, e.g. one started with ``caravan network up``); ``--operator`` names a wallet
identity with role sez-operator of an SEZ already registered on that channel (``--sez``).

This process's CPU per transaction is reported (with the in-process peer it includes the
peer). Workload: one-event ``AnchorEvents`` per transaction, each on its own consignment (no
MVCC conflicts), proposals built and signed by the member before the clock starts.
Each level submits ``--tx`` transactions with ``FabricLedger.submit_many`` at most
``concurrency`` in flight. Prints one line per level, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.fabric import FabricLedger
from node.proposal import KeySigner, SignedProposal, make_proposal

CHANNEL = "caravan"


def events(sez: str, prefix: str, n: int) -> list[str]:
    out = []
    for i in range(n):
        event = {
            "event_hash": f"ni:///sha-256;{os.urandom(32).hex()}?ver=CBV2.0",
            "consignment_ref": f"{prefix}{i:08d}",
            "event_type": "ObjectEvent",
            "biz_step": "arriving",
            "disposition": "in_progress",
            "event_time": "2026-11-24T00:00:00+05:00",
            "location": "urn:epc:id:sgln:4870001.00001.0",
        }
        out.append(json.dumps({"sez": sez, "events": [event]}))
    return out


def signed_batch(operator: KeySigner, sez: str, prefix: str, n: int) -> list[SignedProposal]:
    return [
        make_proposal(
            operator,
            "AnchorEvents",
            [arg],
            channel=CHANNEL,
            timestamp=divmod(time.time_ns(), 10**9),
        )
        for arg in events(sez, prefix, n)
    ]


@contextmanager
def in_process() -> Iterator[tuple[FabricLedger, KeySigner, str]]:
    """The test peer with a fresh KZ consortium, the SEZ registered (not timed)."""
    from tests.node.conftest import build_signers, genesis_arg, propose
    from tests.node.fabric.peer import FakePeer, serve
    from trust_services.pki import init_pki

    with tempfile.TemporaryDirectory() as tmp:
        pkis = {
            cc: init_pki(Path(tmp), f"{cc}-CUSTOMS", country=cc, name=cc, passphrase=b"bench")
            for cc in ("KZ", "UZ", "KG")
        }

        class _Consortium:
            kz, uz, kg = pkis["KZ"], pkis["UZ"], pkis["KG"]

        signers = build_signers(_Consortium)  # type: ignore[arg-type]
        peer = FakePeer(CHANNEL)
        server, address = serve(peer)
        from node.fabric import PeerConnection

        ledger = FabricLedger(
            PeerConnection(address), signers["kz-node"], channel=CHANNEL, max_in_flight=400
        )
        try:
            genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(pkis, "KZ"))
            assert ledger.submit(genesis).valid
            operator = signers["kz-khorgos"]
            subject = operator.certificate.subject.rfc4514_string()
            arg = {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": subject}
            assert ledger.submit(propose(signers["kz-admin"], "RegisterSezOperator", arg)).valid
            yield ledger, operator, "KZ-KHORGOS"
        finally:
            ledger.close()
            server.stop(None)
            peer.close()


@contextmanager
def from_node(
    directory: Path, operator: str, sez: str
) -> Iterator[tuple[FabricLedger, KeySigner, str]]:
    from node.node import Node

    with Node.open(directory, max_in_flight=400) as node:
        if not isinstance(node.ledger, FabricLedger):
            raise SystemExit(f"error: {directory} does not use ledger backend fabric")
        yield node.ledger, node.signer(operator), sez


def run_level(
    ledger: FabricLedger, proposals: list[SignedProposal], concurrency: int
) -> dict[str, Any]:
    latencies: list[float] = []
    codes: dict[str, int] = {}

    def one(signed: SignedProposal) -> None:
        t0 = time.perf_counter()
        receipt = ledger.submit(signed)
        latencies.append(time.perf_counter() - t0)
        codes[receipt.code] = codes.get(receipt.code, 0) + 1

    from concurrent.futures import ThreadPoolExecutor

    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(one, proposals))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    latencies.sort()
    valid = codes.get("VALID", 0)
    return {
        "concurrency": concurrency,
        "tx": len(proposals),
        "valid": valid,
        "codes": codes,
        "tx_per_s": round(valid / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000, 1),
        "cpu_ms_per_tx": round(cpu * 1000 / len(proposals), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", type=int, default=400, help="transactions per level")
    parser.add_argument("--concurrency", default="1,50,200")
    parser.add_argument("--node-dir", type=Path, help="a node directory with ledger: fabric")
    parser.add_argument("--operator", default="kz-customs-khorgos", help="wallet name (--node-dir)")
    parser.add_argument("--sez", default="KZ-KHORGOS")
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",")]
    if any(not 1 <= c <= 400 for c in levels):
        print("error: --concurrency levels must be between 1 and 400", file=sys.stderr)
        return 3
    target = (
        "in-process test peer (not Fabric)"
        if args.node_dir is None
        else "Gateway peer of " + str(args.node_dir)
    )
    opener: Callable[[], Any] = (
        in_process
        if args.node_dir is None
        else lambda: from_node(args.node_dir, args.operator, args.sez)
    )
    results = []
    with opener() as (ledger, operator, sez):
        warm = signed_batch(operator, sez, f"W{os.getpid()}-", 20)
        ledger.submit_many(warm)
        for level in levels:
            n = args.tx if level > 1 else max(20, args.tx // 10)
            proposals = signed_batch(operator, sez, f"B{level}-{os.getpid()}-", n)
            result = run_level(ledger, proposals, level)
            results.append(result)
            if not args.json:
                print(
                    f"{target}: {level:>3} in flight: {result['tx_per_s']:>8} committed tx/s, "
                    f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
                    f"process CPU {result['cpu_ms_per_tx']} ms/tx, codes {result['codes']}"
                )
    print(json.dumps({"target": target, "levels": results}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

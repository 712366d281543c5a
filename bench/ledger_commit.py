"""Committed transactions per second on the embedded ledger.

    .venv/bin/python bench/ledger_commit.py [--tx N] [--events-per-tx K] [--block-size B]
                                            [--workers W] [--keep FILE] [--json]

Builds a KZ/UZ/KG consortium with real PKIs in a temporary directory, a ledger whose
genesis is signed by KZ's admin, and an accredited SEZ operator; signs N event-anchoring
proposals (``AnchorEvents``, K events each, distinct consignments) — signing is not
timed, a client signs its own — then times ``submit_many`` over all of them: every
proposal is parsed, its signature verified, its creator checked against the trust list,
the contract executed, the read set validated, and every block signed and committed
durably (WAL, synchronous=FULL) before the call returns. Proposals are endorsed in
``--workers`` processes (default: one per core; 0 = all in the committing process).
Prints figures, then last one JSON line ``{"tx", "seconds", "tx_per_s", …}``, with the
CPU time per transaction of the committing process and of the workers (Linux /proc).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import resource
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from _ledger import genesis_members, member, now_pair

from node.embedded.ledger import EmbeddedLedger
from node.proposal import make_proposal
from trust_services.pki import init_pki

CHANNEL = "caravan"
SEZ = "KZ-KHORGOS"


def _event(n: int) -> dict[str, Any]:
    return {
        "event_hash": f"ni:///sha-256;{hashlib.sha256(b'%d' % n).hexdigest()}?ver=CBV2.0",
        "consignment_ref": f"26KZ{n:09d}-KHG",
        "event_type": "ObjectEvent",
        "biz_step": "arriving",
        "disposition": "in_transit",
        "event_time": "2026-11-24T08:00:00+05:00",
        "location": "urn:epc:id:sgln:4870001.00001.0",
        "aeo_id": "KZ-AEO-2026-000123",
    }


def _cpu(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of processes, by pid (Linux /proc; else empty)."""
    times = {}
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # not Linux, or gone
            continue
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", type=int, default=50_000)
    parser.add_argument("--events-per-tx", type=int, default=1)
    parser.add_argument("--block-size", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=None, help="endorsing processes")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        help="copy the ledger file here (for caravan ledger verify)",
    )
    args = parser.parse_args()
    say = (lambda *a: None) if args.json else print

    with tempfile.TemporaryDirectory(prefix="caravan-bench-") as tmp:
        root = Path(tmp)
        pkis = {
            cc: init_pki(root, f"{cc}-CUSTOMS", country=cc, name=f"{cc} customs", passphrase=b"b")
            for cc in ("KZ", "UZ", "KG")
        }
        admin = member(pkis["KZ"], "admin", "admin")
        node = member(pkis["KZ"], "node", "node")
        operator = member(pkis["KZ"], "operator", "sez-operator", SEZ)
        genesis = {"members": genesis_members(pkis)}
        init = make_proposal(
            admin, "InitLedger", [json.dumps(genesis)], channel=CHANNEL, timestamp=now_pair()
        )
        ledger = EmbeddedLedger.create(
            root / "ledger.db",
            CHANNEL,
            init,
            node,
            max_block_tx=args.block_size,
            workers=args.workers,
        )
        register = {
            "sez": SEZ,
            "name": "Khorgos - Eastern Gate",
            "operator_subject": operator.certificate.subject.rfc4514_string(),
        }
        receipt = ledger.submit(
            make_proposal(
                admin,
                "RegisterSezOperator",
                [json.dumps(register)],
                channel=CHANNEL,
                timestamp=now_pair(),
            )
        )
        assert receipt.valid, receipt

        k = args.events_per_tx
        started = time.perf_counter()
        proposals = [
            make_proposal(
                operator,
                "AnchorEvents",
                [json.dumps({"sez": SEZ, "events": [_event(i * k + j) for j in range(k)]})],
                channel=CHANNEL,
                timestamp=now_pair(),
            )
            for i in range(args.tx)
        ]
        say(f"signed {args.tx} proposals in {time.perf_counter() - started:.1f} s (not timed)")

        ledger.start_workers()  # a node starts them once; not part of the timed work
        workers_before = _cpu(ledger.worker_pids())
        cpu_before = time.process_time()
        started = time.perf_counter()
        receipts = ledger.submit_many(proposals)
        seconds = time.perf_counter() - started
        cpu_main = time.process_time() - cpu_before
        pids = ledger.worker_pids()
        cpu_workers = sum(_cpu(pids).values()) - sum(workers_before.values())
        codes = Counter(r.code for r in receipts)
        if codes != {"VALID": args.tx}:
            raise SystemExit(f"not every transaction was valid: {dict(codes)} {receipts[0]}")
        info = ledger.info()
        ledger.close()  # checkpoints the WAL into the database file
        db_bytes = sum(p.stat().st_size for p in root.glob("ledger.db*") if p.is_file())
        if args.keep is not None:
            shutil.copyfile(root / "ledger.db", args.keep)

    result = {
        "tx": args.tx,
        "events_per_tx": k,
        "block_size": args.block_size,
        "seconds": round(seconds, 3),
        "tx_per_s": round(args.tx / seconds),
        "events_per_s": round(args.tx * k / seconds),
        "blocks": info.height,
        "db_bytes_per_tx": round(db_bytes / info.tx_count),
        "workers": len(pids),
        "cpu_us_per_tx_main": round(cpu_main / args.tx * 1e6),
        "cpu_us_per_tx_workers": round(cpu_workers / args.tx * 1e6) if pids else 0,
        "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }
    say(
        f"committed {args.tx} tx ({k} event(s) each) in {seconds:.2f} s: "
        f"{result['tx_per_s']} tx/s, {result['events_per_s']} events/s, "
        f"{info.height} blocks, {result['db_bytes_per_tx']} bytes/tx on disk; CPU per tx: "
        f"{result['cpu_us_per_tx_main']} µs committing process, "
        f"{result['cpu_us_per_tx_workers']} µs in {len(pids)} endorsing workers"
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""Trail queries on a ledger that ``bench/ledger_scale.py --keep`` left: first touch,
repeat, and with the OS page cache dropped.

    .venv/bin/python bench/trail_probe.py DIR --events N [--event-block 2]
        [--queries 2000] [--seed 7] [--drop-caches] [--json]

DIR is the ``caravan-scale-*`` directory the scale run printed (its ``ledger.db`` and the
three PKIs, passphrase ``bench``); ``--events`` and ``--event-block`` must be the run's,
so that the probe knows which consignments are complete (``complete_consignments``).
The ledger is opened by a new node identity (``kz-probe-<pid>``) issued by the run's KZ
PKI.

Why a separate probe: a checkpoint of the scale run measures once, in whatever state
the page cache is after growth, and a stopped run never reaches its last checkpoint.
Here, after ``os.sync()``:

1. ``first``: ``GetTrail`` and ``VerifyTrail``, each on ``--queries`` random complete
   consignments of its own, the caches as found (pages not read since growth);
2. ``repeat``: the same consignments again (their pages now cached);
3. ``cold`` (``--drop-caches``, needs root): ``sync; echo 3 > /proc/sys/vm/drop_caches``,
   then new random consignments: every page, inner B-tree pages included, from disk
   (the caches are dropped again before the second function).

Each function has its own consignments, so VerifyTrail never finds pages that GetTrail
has just read.

Every answer is checked (10 events, ``ok``). Besides the latencies, each phase reports the
KiB a query had read from disk (``read_bytes`` of ``/proc/self/io``: page-cache misses,
read-ahead included), a figure the host's noise does not move. Prints one line per phase,
then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
from pathlib import Path
from typing import Any

from _ledger import member
from ledger_scale import (
    TRAIL_FIGURES,
    complete_consignments,
    consignment_ref,
    machine,
    percentiles,
    timed_trail,
)

from node.embedded.ledger import EmbeddedLedger
from trust_services.pki import OrgPki


def read_bytes() -> int:
    """Bytes this process has had read from storage (page-cache misses; Linux /proc)."""
    try:
        with open("/proc/self/io", encoding="ascii") as io:
            for line in io:
                if line.startswith("read_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def run(ledger: EmbeddedLedger, function: str, refs: list[str]) -> dict[str, float]:
    """Latency percentiles of ``function`` on ``refs``, and KiB read from disk per query."""
    before = read_bytes()
    figures = percentiles([timed_trail(ledger, function, ref) for ref in refs])
    figures["disk_kib_per_query"] = round((read_bytes() - before) / 1024 / len(refs), 1)
    return figures


def drop_caches() -> None:
    os.sync()
    try:
        with open("/proc/sys/vm/drop_caches", "w", encoding="ascii") as f:
            f.write("3\n")
    except OSError as exc:
        raise SystemExit(f"--drop-caches: {exc} (needs root)") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dir", type=Path, help="the caravan-scale-* directory of a kept run")
    parser.add_argument("--events", type=int, required=True, help="events the run anchored")
    parser.add_argument("--event-block", type=int, default=2, help="the run's --event-block")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--drop-caches", action="store_true")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    opts = parser.parse_args()
    say = (lambda *_a: None) if opts.json else print
    db = opts.dir / "ledger.db"
    if not db.is_file():
        raise SystemExit(f"no ledger at {db}")
    complete = complete_consignments(opts.events, opts.event_block)
    if complete == 0:
        raise SystemExit(f"no complete consignment at {opts.events} events")
    pki = OrgPki(opts.dir, "KZ-CUSTOMS").unlock(b"bench")
    node = member(pki, f"kz-probe-{os.getpid()}", "node")
    rng = random.Random(opts.seed)
    result: dict[str, Any] = {
        "machine": machine(),
        "events": opts.events,
        "consignments_complete": complete,
        "db_bytes": db.stat().st_size,
    }
    os.sync()
    ledger = EmbeddedLedger.open(db, node)

    def pick() -> list[str]:
        return [consignment_ref(rng.randrange(complete)) for _ in range(opts.queries)]

    try:
        # each function its own consignments, so VerifyTrail does not find GetTrail's pages
        refs = {function: pick() for function in TRAIL_FIGURES}
        for phase in ("first", "repeat"):
            result[phase] = {k: run(ledger, f, refs[f]) for f, k in TRAIL_FIGURES.items()}
        if opts.drop_caches:
            result["cold"] = {}
            for f, k in TRAIL_FIGURES.items():
                drop_caches()
                result["cold"][k] = run(ledger, f, pick())
    finally:
        ledger.close()
    for name in ("first", "repeat", "cold"):
        if name in result:
            g, v = result[name]["get_trail"], result[name]["verify_trail"]
            say(
                f"{opts.events:>10,} events, {name:>6}: GetTrail p50 {g['p50_ms']:.3f} ms "
                f"p99 {g['p99_ms']:.3f} ms ({g['disk_kib_per_query']} KiB read from disk a "
                f"query); VerifyTrail p50 {v['p50_ms']:.3f} ms p99 {v['p99_ms']:.3f} ms "
                f"({v['disk_kib_per_query']} KiB)"
            )
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

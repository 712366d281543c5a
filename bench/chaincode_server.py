"""CPU per transaction of the chaincode server, driven by the test peer over loopback.

    .venv/bin/python bench/chaincode_server.py [--tx 2000] [--engine http2|grpcio]
        [--inflight 1,200] [--profile FILE] [--threads]

Starts ``python -m chaincode.server`` as its own process, connects the test peer of
tests/chaincode/server/peer.py (in-memory world state), founds a KZ/UZ ledger through
caravan.submit, and measures the server process's CPU time (user + system, from
/proc/PID/stat) per transaction for

- a read: ``IsRecognised`` of an AEO that is not on the ledger (plain [function, arg]
  input, the Fabric creator; answered 404, counted under non-200), and
- a write: ``AnchorEvents`` with one event through ``caravan.submit`` (envelope,
  signature, tx id, creator check against the trust list read from the peer, contract,
  one chaincode event); the proposals are signed before the clock starts,

at 1 and at 200 transactions in flight on one stream. Prints a table: CPU µs per tx
(user + system; the system part, mostly loopback TCP, shown too), the server's context
switches per tx (all threads), tx/s, non-200 answers. ``--profile`` runs the server
under cProfile (stats written at SIGTERM), ``--threads`` prints CPU by thread name.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._ledger import genesis_members, member, now_pair  # noqa: E402
from node.proposal import make_proposal  # noqa: E402
from tests.chaincode.server.helpers import submit, submit_async  # noqa: E402
from tests.chaincode.server.peer import TestPeer  # noqa: E402
from trust_services.pki import init_pki  # noqa: E402

CHANNEL = "caravan"
SEZ = "KZ-KHORGOS"


def cpu_seconds(pid: int) -> tuple[float, float]:
    """(user, system) CPU seconds of the process, all threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def context_switches(pid: int) -> int:
    """Voluntary + involuntary context switches of all the server's threads."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            text = (task / "status").read_text()
        except OSError:  # the thread ended meanwhile
            continue
        for line in text.splitlines():
            if "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of the server's threads, summed by thread name."""
    tick = os.sysconf("SC_CLK_TCK")
    cpu: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name = (task / "comm").read_text().strip()
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        cpu[name] = cpu.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return cpu


def run(
    pid: int, make: list[Callable[[], Future[Any]]], inflight: int
) -> tuple[float, float, float, float, int]:
    """(server CPU µs per tx, of which system µs, context switches per tx, tx/s, non-200
    answers)."""
    bad = 0
    pending: deque[Future[Any]] = deque()
    switches0 = context_switches(pid)
    cpu0, t0 = cpu_seconds(pid), time.perf_counter()
    for start in make:
        pending.append(start())
        if len(pending) >= inflight:
            bad += TestPeer.response(pending.popleft().result(60)).status != 200
    while pending:
        bad += TestPeer.response(pending.popleft().result(60)).status != 200
    wall, (user, system) = time.perf_counter() - t0, cpu_seconds(pid)
    user, system = user - cpu0[0], system - cpu0[1]
    switches = (context_switches(pid) - switches0) / len(make)
    n = len(make)
    return (user + system) / n * 1e6, system / n * 1e6, switches, n / wall, bad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", type=int, default=2000, help="transactions per measurement")
    parser.add_argument(
        "--profile", metavar="FILE", help="run the server under cProfile, stats to FILE"
    )
    parser.add_argument(
        "--engine", default="http2", choices=("http2", "grpcio"), help="the server's engine"
    )
    parser.add_argument(
        "--inflight",
        default="1,200",
        help="comma-separated numbers of transactions in flight (default 1,200)",
    )
    parser.add_argument(
        "--threads", action="store_true", help="also print the server's CPU by thread name"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="caravan-bench-") as tmp:
        root = Path(tmp)
        pkis = {
            cc: init_pki(root, f"{cc}-CUSTOMS", country=cc, name=f"{cc} customs", passphrase=b"b")
            for cc in ("KZ", "UZ")
        }
        admin = member(pkis["KZ"], "admin", "admin")
        operator = member(pkis["KZ"], "operator", "sez-operator", SEZ)
        port = free_port()
        env = {
            **os.environ,
            "CHAINCODE_SERVER_ADDRESS": f"127.0.0.1:{port}",
            "CHAINCODE_ID": "caravan_bench:0",
            "CHAINCODE_LOG_LEVEL": "WARNING",
            "CHAINCODE_ENGINE": args.engine,
            "PYTHONPATH": str(ROOT),
        }
        profile = ["-m", "cProfile", "-o", args.profile] if args.profile else []
        command = [sys.executable, *profile, "-m", "chaincode.server"]
        server = subprocess.Popen(command, env=env, cwd=ROOT)
        try:
            for _ in range(100):
                try:
                    socket.create_connection(("127.0.0.1", port), 0.1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            peer = TestPeer.connect(f"127.0.0.1:{port}", page_size=100)

            def propose(signer: Any, function: str, arg: Any) -> Any:
                return make_proposal(
                    signer, function, [json.dumps(arg)], channel=CHANNEL, timestamp=now_pair()
                )

            genesis = {"members": genesis_members(pkis)}
            assert submit(peer, propose(admin, "InitLedger", genesis)).status == 200
            subject = operator.certificate.subject.rfc4514_string()
            sez = {"sez": SEZ, "name": "Khorgos", "operator_subject": subject}
            assert submit(peer, propose(admin, "RegisterSezOperator", sez)).status == 200

            query = json.dumps(
                {"aeo_id": "KZ-AEO-2026-000001", "country": "UZ", "at": "2026-06-01"}
            )
            rows = []
            counter = 0
            for inflight in [int(n) for n in args.inflight.split(",")]:
                reads = [lambda: peer.invoke(["IsRecognised", query]) for _ in range(args.tx)]
                signed = []
                for _ in range(args.tx):
                    counter += 1
                    event = {
                        "event_hash": f"ni:///sha-256;{counter:064x}?ver=CBV2.0",
                        "consignment_ref": f"26KZ{counter:07d}-KHG",
                        "event_type": "ObjectEvent",
                        "biz_step": "arriving",
                        "event_time": "2026-01-05T10:00:00Z",
                        "location": "urn:epc:id:sgln:4870000.00001.0",
                    }
                    signed.append(
                        propose(operator, "AnchorEvents", {"sez": SEZ, "events": [event]})
                    )
                writes: list[Callable[[], Future[Any]]] = [
                    functools.partial(submit_async, peer, s) for s in signed
                ]
                run(server.pid, reads[:50], inflight)  # warm-up
                for name, calls in (("read IsRecognised", reads), ("write AnchorEvents", writes)):
                    rows.append((name, inflight, *run(server.pid, calls, inflight)))
            threads = thread_cpu(server.pid)
            peer.close()
        finally:
            server.terminate()
            server.wait(20)
    print(
        f"{'transaction':<22}{'in flight':>10}{'CPU µs/tx':>12}{'(system)':>10}"
        f"{'switches/tx':>13}{'tx/s':>10}{'non-200':>9}"
    )
    for name, inflight, us, sys_us, switches, rate, bad in rows:
        print(
            f"{name:<22}{inflight:>10}{us:>12.0f}{sys_us:>10.0f}{switches:>13.1f}"
            f"{rate:>10.0f}{bad:>9}"
        )
    if args.threads:
        print("server CPU by thread (s):", {k: round(v, 2) for k, v in sorted(threads.items())})


if __name__ == "__main__":
    main()

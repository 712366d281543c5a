"""Committed transactions per second through the Fabric Gateway client, at several
concurrency levels, with p50/p99 latency (submit → committed receipt).

    .venv/bin/python bench/fabric.py [--tx 400] [--concurrency 1,50,200] [--json]
    .venv/bin/python bench/fabric.py --node-dir NET/nodes/kz-customs [--setup] \
        [--go-chaincode GOCC --fabric-bin DIR] [--rounds 2] [--markdown]

Without ``--node-dir`` the Gateway is the **in-process test peer**
(tests/node/fabric/peer.py: Python, same process, blocks cut as soon as a transaction
waits): the figures measure the client and that stand-in, not Fabric. With
``--node-dir`` the node directory's ``ledger: {backend: fabric}`` peer is used (a real
network, e.g. one started with ``caravan network up``); ``--operator`` names a wallet
identity with role sez-operator of SEZ ``--sez`` registered on that channel.
``--setup`` makes what is missing first: the Caravan genesis (as ``caravan network
init-ledger``), the operator's identity in the node's wallet (issued by its
organisation's CA) and its registration by the organisation's admin
(``RegisterSezOperator``) — each through the ledger's own checks.

Workload: one-event ``AnchorEvents`` per transaction, each on its own consignment (no
MVCC conflicts), proposals built and signed by the member before the clock starts.
Each level submits ``--tx`` transactions (a tenth at level 1) through the node's
``FabricLedger`` at most ``concurrency`` in flight.

``--go-chaincode PATH`` compares with a trivial chaincode on the same network: the
user's chaincode-as-a-service binary (``put(key, value)``: PutState + one event) is
deployed as chaincode ``gocc`` with the ``peer`` CLI of ``--fabric-bin``
(bench/_fabric_gocc.py: one server per administration, the channel's default
endorsement policy, as Caravan's) and driven by the same client
(``FabricLedger.invoke("put", [fresh key, value])``, the value as long as Caravan's
transaction argument), the same concurrency and number of transactions; runs
alternate python, go (, go-mimic), python, go … (``--rounds`` each). Per run: tx/s,
p50/p99, the 1-minute load average before it, and the CPU seconds per transaction of this client
and of the network's processes (peers, orderers, chaincode servers: /proc/PID/stat of
the pids ``network up`` recorded and of the Go servers), and per peer the blocks it
committed during the run, read from its own log (``run/logs/peer*.log``, the kvledger
``Committed block`` line): transactions per block and the ms of ``state_commit``, which
includes the wait for the state database's write lock that every simulation in flight
on that peer holds (shared) until it ends. Prints one line per run, a summary per level,
then one JSON line.

``--go-mimic`` adds a third run per round, ``go-mimic``: the same Go server answering
``mimic(key, value)`` with the state traffic of one ``AnchorEvents`` through
``caravan.submit`` (reads of two stored keys and three absent ones, writes of 650, 133,
36, 164 and 64 bytes, one event: the sizes Caravan writes). It separates what Caravan's
ten state calls cost Fabric itself from what the Python server costs: the summary gives
Python / go-mimic and go-mimic / Go next to Python / Go.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from chaincode.canonical import canonical_json
from node.fabric import FabricLedger
from node.ledger import Receipt
from node.proposal import KeySigner, SignedProposal, make_proposal

CHANNEL = "caravan"


class BenchError(Exception):
    """The bench cannot run as asked (one line, exit 3)."""


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
            raise BenchError(f"{directory} does not use ledger backend fabric")
        yield node.ledger, node.signer(operator), sez


def network_root(node_dir: Path) -> Path | None:
    """The generated network a node directory belongs to (``<root>/nodes/<org>``)."""
    root = node_dir.resolve().parent.parent
    return root if (root / "consortium.yaml").is_file() else None


def setup(directory: Path, operator: str, sez: str, say: Callable[[str], None]) -> None:
    """The genesis, the operator's wallet identity and its registration, when missing."""
    from node.network.generate import GeneratedNetwork
    from node.network.runner import LocalNetwork
    from node.node import Node

    root = network_root(directory)
    with Node.open(directory) as node:
        ledger = node.ledger
        if not isinstance(ledger, FabricLedger):
            raise BenchError(f"{directory} does not use ledger backend fabric")
        members = ledger.evaluate("GetMembers", [])
        if members.status != 200 or not json.loads(members.payload or b"[]"):
            if root is None:
                raise BenchError("the ledger has no members: run caravan network init-ledger")
            say("setup: InitLedger (caravan network init-ledger)")
            LocalNetwork(GeneratedNetwork.open(root)).init_ledger()
        msp = ledger.identity.msp_id
        if operator not in node.wallet:
            say(f"setup: issuing {operator} (sez-operator of {sez}) from {msp}'s CA")
            node.wallet.issue(node.pki(msp), operator, role="sez-operator", sez=sez)
        entry = node.wallet.get(operator)
        if entry.role != "sez-operator" or entry.sez != sez:
            raise BenchError(f"wallet identity {operator} is not an sez-operator of {sez}")
        answer = ledger.evaluate("GetSez", [json.dumps({"sez": sez})])
        registered = answer.status == 200 and any(
            op["subject"] == entry.subject for op in json.loads(answer.payload)["operators"]
        )
        if registered:
            return
        admins = [e.name for e in node.wallet.entries() if e.role == "admin" and e.msp_id == msp]
        if not admins:
            raise BenchError(f"no admin of {msp} in the wallet to register {operator}")
        say(f"setup: {admins[0]} registers {operator} for {sez}")
        arg = {"sez": sez, "name": sez, "operator_subject": entry.subject}
        receipt = ledger.submit(
            make_proposal(
                node.signer(admins[0]),
                "RegisterSezOperator",
                [json.dumps(arg)],
                channel=ledger.channel,
                timestamp=divmod(time.time_ns(), 10**9),
            )
        )
        if not receipt.valid:
            raise BenchError(f"RegisterSezOperator: {receipt.code} {receipt.message}")


# ---------------------------------------------------------------------- CPU of processes
_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


def network_pids(root: Path | None) -> dict[str, int]:
    """name → pid of the processes ``network up`` recorded (``run/*.pid``)."""
    pids: dict[str, int] = {}
    for pid_file in sorted((root / "run").glob("*.pid")) if root is not None else ():
        try:
            pids[pid_file.stem] = int(json.loads(pid_file.read_text())["pid"])
        except (ValueError, KeyError, TypeError, OSError):
            continue
    return pids


def group_of(name: str) -> str:
    if name.startswith("peer"):
        return "peer"
    if name.startswith("orderer"):
        return "orderer"
    return "chaincode"


def cpu_by_group(pids: dict[str, int]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name, pid in pids.items():
        group = group_of(name)
        out[group] = out.get(group, 0.0) + cpu_seconds(pid)
    return out


def load1() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


# ------------------------------------------------------------- blocks, from peers' logs
#: the kvledger INFO line a Fabric 2.5 peer writes per committed block; ``state_commit``
#: includes the wait for the state database's write lock, which every simulation in
#: flight on that peer holds (shared) until it ends
_COMMITTED = re.compile(
    r"Committed block \[\d+\] with (\d+) transaction\(s\) in (\d+)ms "
    r"\(state_validation=(\d+)ms block_and_pvtdata_commit=(\d+)ms state_commit=(\d+)ms\)"
)


def peer_logs(root: Path | None, pids: dict[str, int]) -> dict[str, Path]:
    """name → log file of the peers ``network up`` started (``run/logs/NAME.log``)."""
    if root is None:
        return {}
    return {
        name: root / "run" / "logs" / f"{name}.log" for name in pids if group_of(name) == "peer"
    }


def log_sizes(logs: dict[str, Path]) -> dict[str, int]:
    sizes = {}
    for name, path in logs.items():
        try:
            sizes[name] = path.stat().st_size
        except OSError:
            continue
    return sizes


def block_stats(logs: dict[str, Path], since: dict[str, int]) -> dict[str, dict[str, float]]:
    """Per peer, over the blocks it committed since the ``since`` offsets: how many, the
    mean transactions per block and the mean ms of the commit and of its state part."""
    stats = {}
    for name, offset in since.items():
        try:
            with logs[name].open("rb") as log:
                log.seek(offset)
                text = log.read().decode("utf-8", "replace")
        except OSError:
            continue
        blocks = [tuple(map(int, m.groups())) for m in _COMMITTED.finditer(text)]
        if not blocks:
            continue
        n = len(blocks)
        stats[name] = {
            "blocks": n,
            "tx_per_block": round(sum(b[0] for b in blocks) / n, 1),
            "commit_ms": round(sum(b[1] for b in blocks) / n, 1),
            "state_commit_ms": round(sum(b[4] for b in blocks) / n, 1),
        }
    return stats


# ---------------------------------------------------------------------- runs
def run_level(
    submit: Callable[[Any], Receipt],
    items: list[Any],
    concurrency: int,
    pids: dict[str, int] | None = None,
    logs: dict[str, Path] | None = None,
) -> dict[str, Any]:
    latencies: list[float] = []

    def one(item: Any) -> str:
        t0 = time.perf_counter()
        receipt = submit(item)
        latencies.append(time.perf_counter() - t0)
        return receipt.code

    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor

    load = load1()
    each0 = {name: cpu_seconds(pid) for name, pid in (pids or {}).items()}
    before = cpu_by_group(pids or {})
    offsets = log_sizes(logs or {})
    cpu0, t0 = time.process_time(), time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        codes = dict(Counter(pool.map(one, items)))
    elapsed = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    after = cpu_by_group(pids or {})
    each = {
        name: round((cpu_seconds(pid) - each0[name]) * 1000 / len(items), 2)
        for name, pid in (pids or {}).items()
    }
    latencies.sort()
    valid = codes.get("VALID", 0)
    n = len(items)
    return {
        "concurrency": concurrency,
        "tx": n,
        "valid": valid,
        "codes": codes,
        "elapsed_s": round(elapsed, 3),
        "tx_per_s": round(valid / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 1),
        "p99_ms": round(latencies[min(n - 1, int(n * 0.99))] * 1000, 1),
        "cpu_ms_per_tx": round(cpu * 1000 / n, 2),
        "server_cpu_ms_per_tx": {
            g: round((after[g] - before.get(g, 0.0)) * 1000 / n, 2) for g in sorted(after)
        },
        "process_cpu_ms_per_tx": each,
        "total_cpu_ms_per_tx": round(
            cpu * 1000 / n + sum(after[g] - before.get(g, 0.0) for g in after) * 1000 / n, 2
        ),
        "load1_before": load,
        "peer_blocks": block_stats(logs or {}, offsets),
        "latencies_ms": [round(x * 1000, 1) for x in latencies],
    }


#: the chaincodes a run can drive: Caravan's, the trivial Go put, the Go mimic of AnchorEvents
KINDS = ("python", "go", "go-mimic")
#: the keys go-mimic reads that are stored (as Caravan's trust record and SEZ record are)
MIMIC_STORED = {"mimic~trust": 830, "mimic~sez": 309}


def put_items(prefix: str, n: int, value_size: int) -> list[tuple[str, str]]:
    return [
        (f"{prefix}{i:08d}", os.urandom(value_size // 2 + 1).hex()[:value_size]) for i in range(n)
    ]


def go_call(ledger: Any, chaincode: str, function: str) -> Callable[[tuple[str, str]], Any]:
    """One Go chaincode call ``function(key, value)`` through the ledger, for run_level."""

    def call(kv: tuple[str, str]) -> Any:
        return ledger.invoke(function, list(kv), chaincode=chaincode)

    return call


def summary(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per level and chaincode: tx/s over all its runs, p50/p99 over all their latencies."""
    rows = []
    for level in sorted({r["concurrency"] for r in runs}):
        row: dict[str, Any] = {"concurrency": level}
        for kind in KINDS:
            mine = [r for r in runs if r["concurrency"] == level and r["chaincode"] == kind]
            if not mine:
                continue
            lat = sorted(x for r in mine for x in r["latencies_ms"])
            cc = [r["server_cpu_ms_per_tx"].get("chaincode") for r in mine]
            row[kind] = {
                "runs": len(mine),
                "tx_per_s": round(
                    sum(r["valid"] for r in mine) / sum(r["elapsed_s"] for r in mine), 1
                ),
                "p50_ms": round(statistics.median(lat), 1),
                "p99_ms": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
                "chaincode_cpu_ms_per_tx": (
                    round(statistics.mean(c for c in cc if c is not None), 2)
                    if any(c is not None for c in cc)
                    else None
                ),
                "total_cpu_ms_per_tx": round(
                    statistics.mean(r["total_cpu_ms_per_tx"] for r in mine), 2
                ),
                "load1": [r["load1_before"] for r in mine],
                "peer_blocks": _peer_blocks(mine),
            }
        if "python" in row and "go" in row:
            py, go = row["python"], row["go"]
            row["ratio"] = round(py["tx_per_s"] / go["tx_per_s"], 2)
            # with the CPU the limit, throughput goes as 1 / (CPU per tx of every process)
            row["cpu_ratio"] = round(go["total_cpu_ms_per_tx"] / py["total_cpu_ms_per_tx"], 2)
            # runs alternate python, go, …: round i's pair saw the same machine, so the
            # spread of the pairs' ratios shows how far host noise moves one reading
            pairs = zip(
                (r for r in runs if r["concurrency"] == level and r["chaincode"] == "python"),
                (r for r in runs if r["concurrency"] == level and r["chaincode"] == "go"),
                strict=False,
            )
            row["pair_ratios"] = [round(p["tx_per_s"] / g["tx_per_s"], 2) for p, g in pairs]
        if "go-mimic" in row:
            mimic = row["go-mimic"]["tx_per_s"]
            if "python" in row:
                row["ratio_to_mimic"] = round(row["python"]["tx_per_s"] / mimic, 2)
            if "go" in row:
                row["mimic_to_go"] = round(mimic / row["go"]["tx_per_s"], 2)
        rows.append(row)
    return rows


def _peer_blocks(runs: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per peer over ``runs``: blocks, and tx per block and state-commit ms per block."""
    out: dict[str, dict[str, float]] = {}
    for name in sorted({n for r in runs for n in r.get("peer_blocks", {})}):
        seen = [r["peer_blocks"][name] for r in runs if name in r.get("peer_blocks", {})]
        blocks = sum(b["blocks"] for b in seen)
        out[name] = {
            "blocks": blocks,
            "tx_per_block": round(sum(b["tx_per_block"] * b["blocks"] for b in seen) / blocks, 1),
            "state_commit_ms": round(
                sum(b["state_commit_ms"] * b["blocks"] for b in seen) / blocks, 1
            ),
        }
    return out


def _slowest_commit(side: dict[str, Any]) -> str:
    """``tx/block, state-commit ms`` of the peer whose state commit took longest."""
    peers = side.get("peer_blocks") or {}
    if not peers:
        return "-"
    name = max(peers, key=lambda n: peers[n]["state_commit_ms"])
    return f"{peers[name]['tx_per_block']}, {peers[name]['state_commit_ms']} ({name})"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = [
        "| in flight | Python tx/s | p50 / p99 ms | Go tx/s | p50 / p99 ms | Python/Go | "
        "pairs min-max | chaincode CPU ms/tx Py / Go | all CPU ms/tx Py / Go | CPU ratio | "
        "Py: tx/block, state commit ms | Go: tx/block, state commit ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        py, go = row.get("python", {}), row.get("go", {})

        def both(key: str, py: dict[str, Any] = py, go: dict[str, Any] = go) -> str:
            return f"{py.get(key, '-')} / {go.get(key, '-')}"

        cells = [
            row["concurrency"],
            py.get("tx_per_s", "-"),
            f"{py.get('p50_ms', '-')} / {py.get('p99_ms', '-')}",
            go.get("tx_per_s", "-"),
            f"{go.get('p50_ms', '-')} / {go.get('p99_ms', '-')}",
            row.get("ratio", "-"),
            f"{min(pairs)} to {max(pairs)}" if (pairs := row.get("pair_ratios")) else "-",
            both("chaincode_cpu_ms_per_tx"),
            both("total_cpu_ms_per_tx"),
            row.get("cpu_ratio", "-"),
            _slowest_commit(py),
            _slowest_commit(go),
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    mimics = [row for row in rows if "go-mimic" in row]
    if mimics:
        lines += [
            "",
            "| in flight | go-mimic tx/s | p50 / p99 ms | Python / go-mimic | go-mimic / Go | "
            "all CPU ms/tx go-mimic | go-mimic: tx/block, state commit ms |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for row in mimics:
            m = row["go-mimic"]
            cells = [
                row["concurrency"],
                m["tx_per_s"],
                f"{m['p50_ms']} / {m['p99_ms']}",
                row.get("ratio_to_mimic", "-"),
                row.get("mimic_to_go", "-"),
                m["total_cpu_ms_per_tx"],
                _slowest_commit(m),
            ]
            lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tx", type=int, default=400, help="transactions per level")
    parser.add_argument("--concurrency", default="1,50,200")
    parser.add_argument("--node-dir", type=Path, help="a node directory with ledger: fabric")
    parser.add_argument("--operator", default="kz-customs-khorgos", help="wallet name (--node-dir)")
    parser.add_argument("--sez", default="KZ-KHORGOS")
    parser.add_argument("--setup", action="store_true", help="make the genesis/operator/SEZ first")
    parser.add_argument("--go-chaincode", type=Path, help="a Go ccaas chaincode binary to compare")
    parser.add_argument(
        "--go-mimic",
        action="store_true",
        help="also run the Go chaincode's mimic of AnchorEvents' state traffic (go-mimic)",
    )
    parser.add_argument(
        "--fabric-bin",
        type=Path,
        default=os.environ.get("CARAVAN_FABRIC_BIN"),
        help="Fabric binaries (peer) for --go-chaincode; default $CARAVAN_FABRIC_BIN",
    )
    parser.add_argument("--rounds", type=int, default=None, help="runs per chaincode and level")
    parser.add_argument(
        "--idle", type=float, default=5.0, help="seconds of idle CPU sampled first (--node-dir)"
    )
    parser.add_argument("--markdown", action="store_true", help="print the summary as a table")
    parser.add_argument("--json", action="store_true", help="only the JSON line")
    args = parser.parse_args(argv)
    try:
        levels = [int(c) for c in args.concurrency.split(",")]
    except ValueError:
        levels = [0]
    if any(not 1 <= c <= 400 for c in levels):
        print("error: --concurrency levels must be between 1 and 400", file=sys.stderr)
        return 3
    if args.node_dir is None and (args.setup or args.go_chaincode):
        print("error: --setup and --go-chaincode need --node-dir", file=sys.stderr)
        return 3
    if args.go_chaincode is not None and args.fabric_bin is None:
        print("error: --go-chaincode needs --fabric-bin (or CARAVAN_FABRIC_BIN)", file=sys.stderr)
        return 3
    if args.go_mimic and args.go_chaincode is None:
        print("error: --go-mimic needs --go-chaincode", file=sys.stderr)
        return 3
    rounds = args.rounds or (2 if args.go_chaincode else 1)
    say: Callable[[str], None] = (lambda m: None) if args.json else print
    from node.errors import NodeError

    try:
        return _run(args, levels, rounds, say)
    except NodeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 3
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3


def _run(args: Any, levels: list[int], rounds: int, say: Callable[[str], None]) -> int:
    target = (
        "in-process test peer (not Fabric)"
        if args.node_dir is None
        else "Gateway peer of " + str(args.node_dir)
    )
    if args.setup:
        setup(args.node_dir, args.operator, args.sez, say)
    root = network_root(args.node_dir) if args.node_dir is not None else None
    pids = network_pids(root)
    logs = peer_logs(root, pids)
    gocc_ctx: Any = contextlib.nullcontext()
    if args.go_chaincode is not None:
        from bench._fabric_gocc import GoChaincode
        from node.network.generate import GeneratedNetwork
        from node.network.runner import FabricBinaries

        if root is None:
            raise BenchError(f"{args.node_dir} is not in a generated network (NET/nodes/ORG)")
        gocc_ctx = GoChaincode(
            GeneratedNetwork.open(root),
            FabricBinaries.find(args.fabric_bin),
            args.go_chaincode,
            progress=say,
        )
    opener: Callable[[], Any] = (
        in_process
        if args.node_dir is None
        else lambda: from_node(args.node_dir, args.operator, args.sez)
    )
    runs: list[dict[str, Any]] = []
    with gocc_ctx as gocc, opener() as (ledger, operator, sez):
        kinds = ["python"] + (["go"] if gocc is not None else [])
        if gocc is not None and args.go_mimic:
            kinds.append("go-mimic")
        go_pids = {}
        if gocc is not None:
            fabric_procs = {k: v for k, v in pids.items() if group_of(k) != "chaincode"}
            go_pids = {**fabric_procs, **{f"gocc.{m}": p for m, p in gocc.pids.items()}}
        idle: dict[str, float] = {}
        if args.idle > 0 and pids:
            every = {**pids, **{k: v for k, v in go_pids.items() if k.startswith("gocc.")}}
            before = {k: cpu_seconds(v) for k, v in every.items()}
            time.sleep(args.idle)
            idle = {
                k: round((cpu_seconds(v) - before[k]) * 1000 / args.idle, 1)
                for k, v in every.items()
            }
            say(f"idle CPU, ms per s over {args.idle:g} s: {idle}")
        sample = signed_batch(operator, sez, f"S{os.getpid()}-", 1)[0]
        value_size = len(canonical_json(sample.to_json()))
        warm_up = ledger.submit_many(signed_batch(operator, sez, f"W{os.getpid()}-", 20))
        refused = [r for r in warm_up if r.code != "VALID"]
        if refused:
            raise BenchError(f"AnchorEvents as {args.operator}: {refused[0]} (try --setup)")
        if gocc is not None:
            from concurrent.futures import ThreadPoolExecutor

            warm = put_items(f"w{os.getpid()}-", 20, value_size)
            with ThreadPoolExecutor(max_workers=len(warm)) as pool:
                puts = list(pool.map(go_call(ledger, gocc.name, "put"), warm))
            got = ledger.evaluate("get", [warm[0][0]], chaincode=gocc.name)
            if any(r.code != "VALID" for r in puts) or got.payload != warm[0][1].encode():
                raise BenchError(f"{gocc.name} put/get did not work: {puts[0]}, get: {got}")
            if "go-mimic" in kinds:
                for key, size in MIMIC_STORED.items():
                    stored = go_call(ledger, gocc.name, "put")((key, "s" * size))
                    if stored.code != "VALID":
                        raise BenchError(f"{gocc.name} put {key}: {stored}")
                probe = go_call(ledger, gocc.name, "mimic")(put_items("m-", 1, value_size)[0])
                if probe.code != "VALID":
                    raise BenchError(f"{gocc.name} does not answer mimic (see --go-mimic): {probe}")
        for level in levels:
            n = args.tx if level > 1 else max(20, args.tx // 10)
            for r in range(rounds):
                for kind in kinds:
                    tag = f"{level}-{r}-{os.getpid()}-"
                    if kind == "python":
                        result = run_level(
                            ledger.submit,
                            signed_batch(operator, sez, f"B{tag}", n),
                            level,
                            pids,
                            logs,
                        )
                    else:
                        result = run_level(
                            go_call(ledger, gocc.name, "put" if kind == "go" else "mimic"),
                            put_items(f"g{tag}", n, value_size),
                            level,
                            go_pids,
                            logs,
                        )
                    result["chaincode"] = kind
                    runs.append(result)
                    say(
                        f"{target}: {kind:>8} {level:>3} in flight: {result['tx_per_s']:>7} "
                        f"tx/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, client "
                        f"{result['cpu_ms_per_tx']} ms/tx, servers {result['server_cpu_ms_per_tx']}"
                        f" ms/tx, load {result['load1_before']}, codes {result['codes']}"
                    )
    rows = summary(runs)
    if args.markdown and not args.json:
        print(markdown(rows))
    for run in runs:
        del run["latencies_ms"]
    out = {"target": target, "value_bytes": value_size, "idle_cpu_ms_per_s": idle}
    print(json.dumps({**out, "summary": rows, "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Set-up and load generators of bench/api.py: a node directory, its API in a process of
its own, recognition load over keep-alive connections, and event-anchoring client workers.

>>> # ids = build_node(Path("/tmp/x/node"), aeos=4)       # KZ + UZ, MRA in force, SEZ operator
>>> # with ApiServer(Path("/tmp/x/node")) as server:      # `caravan node start --port 0`
>>> # ...     figures = asyncio.run(http_get_load(server.base_url + "/v1/health", 32, 5.0))

Run as a script it serves a node directory like ``caravan node start`` but under cProfile
(every thread, merged into one stats file when stopped with SIGINT)::

    python bench/_api.py profile-serve NODE_DIR STATS_FILE
"""

from __future__ import annotations

import asyncio
import cProfile
import datetime as dt
import hashlib
import json
import os
import pstats
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
# the repository before bench/ (run as a script, in a spawned worker): the package ``api``
# must not resolve to bench/api.py
if sys.path[:1] != [str(ROOT)]:
    sys.path.insert(0, str(ROOT))

__all__ = [
    "MRA_ID",
    "OPERATOR",
    "SEZ",
    "AnchorJob",
    "AnchorResult",
    "ApiServer",
    "LoadFigures",
    "anchor_worker",
    "build_node",
    "http_get_load",
    "percentile",
    "rfc3339",
]

PASSPHRASE = b"bench-passphrase"
ORGS = (("KZ-CUSTOMS", "KZ", "State Revenue Committee"), ("UZ-CUSTOMS", "UZ", "Customs Committee"))
MRA_ID = "MRA-KZ-UZ-2026"
SEZ = "KZ-KHORGOS"
OPERATOR = "kz-khorgos"


def rfc3339(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def percentile(sorted_values: list[float], q: float) -> float:
    """The ``q`` quantile (0 to 1) of ascending values, nearest rank; 0.0 when empty."""
    if not sorted_values:
        return 0.0
    rank = max(1, min(len(sorted_values), round(q * len(sorted_values) + 0.5)))
    return sorted_values[rank - 1]


# --------------------------------------------------------------------------- set-up
def _aeo_record(aeo_id: str, now: dt.datetime) -> dict[str, Any]:
    day = dt.timedelta(days=1)
    return {
        "aeo_id": aeo_id,
        "holder": {
            "tin": "KZ" + aeo_id[-6:].rjust(12, "0"),
            "name": f"Khorgos Logistics {aeo_id[-3:]} LLP",
            "address": {
                "street": "1 Dostyk",
                "city": "Zharkent",
                "postcode": "041300",
                "country": "KZ",
            },
        },
        "issuer": {"administration": "KZ-CUSTOMS", "country": "KZ"},
        "aeo_type": "AEOF",
        "supply_chain_roles": ["exporter", "carrier"],
        "status": "valid",
        "status_reason": None,
        "status_effective_at": rfc3339(now - day),
        "validated_at": rfc3339(now - day),
        "valid_until": rfc3339(now + 3 * 365 * day),
        "next_reassessment": rfc3339(now + 365 * day),
        "mra_sharing_consent": True,
    }


def build_node(directory: Path, aeos: int = 4) -> list[str]:
    """A node directory hosting KZ and UZ customs (passphrases in secrets/): ``aeos`` KZ
    AEO certificates (AEOF, sealed by KZ's e-seal), the MRA KZ-UZ signed by both admins
    (in force since an hour ago) and the SEZ ``KZ-KHORGOS`` with its operator
    ``kz-khorgos`` registered. Returns the AEO ids."""
    from cli.client import seal_with
    from node.config import HostedOrg
    from node.node import Node, init_node
    from node.services import submit
    from trust_services.cades import CadesSigner

    init_node(
        directory,
        [HostedOrg(org=org, country=cc, name=name) for org, cc, name in ORGS],
        PASSPHRASE,
        store_passphrase=True,
    )
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ids = [f"KZ-AEO-2026-{n:06d}" for n in range(1, aeos + 1)]
    with Node.open(directory) as node:
        ctx = node.context
        wallet_entry = node.wallet.issue(
            node.pki("KZ-CUSTOMS"), OPERATOR, role="sez-operator", sez=SEZ
        )

        def write(identity: str, function: str, arg: dict[str, Any]) -> None:
            signed = submit.propose(node.signer(identity), function, arg, channel=ctx.channel)
            submit.submit(ctx, signed)

        seal = CadesSigner.for_org(node.pki("KZ-CUSTOMS"))
        for aeo_id in ids:
            record = _aeo_record(aeo_id, now)
            sealed = seal_with(seal, record)
            write(
                "kz-customs-officer",
                "IssueAeo",
                {"record": record, "record_hash": sealed["record_hash"], "seal": sealed["seal"]},
            )
        document_hash = hashlib.sha256(b"Decision KZ-UZ 2026/1").hexdigest()
        write(
            "uz-customs-admin",
            "ProposeMra",
            {
                "mra_id": MRA_ID,
                "title": "AEO MRA between Kazakhstan and Uzbekistan",
                "parties": ["KZ-CUSTOMS", "UZ-CUSTOMS"],
                "recognised_types": {"KZ-CUSTOMS": ["AEOS", "AEOF"], "UZ-CUSTOMS": ["AEOF"]},
                "benefits": ["fewer_controls", "priority_clearance"],
                "effective_from": rfc3339(now - dt.timedelta(hours=1)),
                "legal_instrument_ref": "Decision KZ-UZ 2026/1",
                "document_hash": document_hash,
            },
        )
        act = {"legal_instrument_ref": "Decision KZ-UZ 2026/1", "document_hash": document_hash}
        for admin in ("uz-customs-admin", "kz-customs-admin"):
            write(admin, "SignMra", {"mra_id": MRA_ID, **act})
        write(
            "kz-customs-admin",
            "RegisterSezOperator",
            {
                "sez": SEZ,
                "name": "Khorgos - Eastern Gate",
                "operator_subject": wallet_entry.certificate.subject.rfc4514_string(),
            },
        )
    return ids


# --------------------------------------------------------------------------- server
class ApiServer:
    """The node's API in a process of its own on 127.0.0.1 (a free port).

    Default: ``caravan node start --dir DIR --port 0``. With ``profile_to``, this module's
    ``profile-serve`` (the same app and uvicorn settings, under cProfile in every thread),
    whose stats are written to ``profile_to`` when it stops.
    """

    def __init__(
        self, directory: Path, *, profile_to: Path | None = None, index_thread: bool = False
    ) -> None:
        self.directory = directory
        self.profile_to = profile_to
        self.index_thread = index_thread
        self.base_url = ""
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ApiServer:
        if self.profile_to is None:
            command = [sys.executable, "-m", "cli.main", "node", "start"]
            command += ["--dir", str(self.directory), "--port", "0"]
            if self.index_thread:
                command.append("--index-thread")
        else:
            command = [sys.executable, __file__, "profile-serve", str(self.directory)]
            command.append(str(self.profile_to))
        env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
        if not match:
            proc.kill()
            _out, err = proc.communicate()
            raise SystemExit(f"the node did not start: {line}{err}")
        self.proc = proc
        self.base_url = f"http://127.0.0.1:{match.group(1)}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.base_url + "/v1/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                self.stop()
                raise SystemExit("the node's API does not answer /v1/health")
            time.sleep(0.1)
        return self

    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live child processes (the index
    feeder, endorsing workers) (Linux /proc; 0.0 elsewhere)."""
    return sum(own_cpu_seconds(p) for p in (pid, *child_pids(pid)))


def own_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def child_pids(pid: int) -> list[int]:
    """The live children of ``pid`` (every thread's), recursively."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *child_pids(child)]
    return found


def _profile_serve(directory: Path, out: Path) -> None:
    """``caravan node start`` under cProfile: one profiler per thread (the route handlers
    run in the thread pool) timing that thread's CPU (not its waits), merged into ``out``
    on SIGINT."""
    import uvicorn

    from api.app import create_app
    from node.node import Node
    from trust_services.server import bind_socket

    profiles: list[cProfile.Profile] = []

    def start_in_thread(_frame: FrameType, _event: str, _arg: Any) -> None:
        profile = cProfile.Profile(time.thread_time)
        profiles.append(profile)
        profile.enable()  # replaces this hook in the new thread

    main = cProfile.Profile(time.thread_time)
    threading.setprofile(start_in_thread)
    with Node.open(directory) as node:
        app = create_app(node, index_process=True)  # as `caravan node start`
        sock = bind_socket("127.0.0.1", 0)
        print(f"profiling on http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
        server = uvicorn.Server(
            uvicorn.Config(
                app,
                lifespan="on",
                log_level="warning",
                access_log=False,
                server_header=False,
                timeout_graceful_shutdown=5,
            )
        )
        main.enable()
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        finally:
            main.disable()
            sock.close()
    stats = pstats.Stats(main)
    for profile in profiles:
        profile.disable()
        stats.add(profile)
    stats.dump_stats(str(out))


# --------------------------------------------------------------------------- GET load
@dataclass
class LoadFigures:
    requests: int
    seconds: float
    errors: int
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def req_per_s(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


async def http_get_load(url: str, connections: int, seconds: float) -> LoadFigures:
    """GET ``url`` over ``connections`` keep-alive HTTP/1.1 connections (raw asyncio
    streams, one request in flight each) for ``seconds``; any status but 200 is an error."""
    parts = httpx.URL(url)
    port = parts.port or 80
    target = parts.raw_path.decode("ascii")
    request = (f"GET {target} HTTP/1.1\r\nHost: {parts.host}:{port}\r\nAccept: */*\r\n\r\n").encode(
        "ascii"
    )
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection(parts.host, port)
        try:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
                if length is None:
                    raise SystemExit(f"an answer without Content-Length: {head!r}")
                await reader.readexactly(int(length.group(1)))
                latencies.append((time.perf_counter() - started) * 1000)
                if not head.startswith(b"HTTP/1.1 200 "):
                    errors += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadFigures(len(latencies), elapsed, errors, latencies)


# --------------------------------------------------------------------------- anchoring
def anchor_event(n: int, per_consignment: int = 5) -> dict[str, Any]:
    """The ``AnchorEvents`` entry of bench event ``n``: consignments of ``per_consignment``
    events (5 in a transaction of many events; 1 when each event is its own transaction,
    else one-event transactions of the same consignment in a block would conflict)."""
    steps = ("arriving", "inspecting", "storing", "loading", "departing")
    digest = hashlib.sha256(b"caravan-bench-event-%d" % n).hexdigest()
    suffix = "KHG" if per_consignment > 1 else "KHS"
    return {
        "event_hash": f"ni:///sha-256;{digest}?ver=CBV2.0",
        "consignment_ref": f"26KZ{n // per_consignment:09d}-{suffix}",
        "event_type": "ObjectEvent",
        "biz_step": steps[n % per_consignment % len(steps)],
        "disposition": "in_transit",
        "event_time": f"2026-11-24T{8 + n % per_consignment:02d}:00:00+05:00",
        "location": "urn:epc:id:sgln:4870001.00001.0",
        "aeo_id": "KZ-AEO-2026-000001",
    }


@dataclass(frozen=True)
class AnchorJob:
    """One client worker's share: events ``first`` … ``first + count - 1``.

    ``mode``: ``presigned`` (all proposals built and signed before the start, B events
    each, POST /v1/transactions), ``inline`` (each built and signed just before it is
    sent) or ``batch`` (one-event proposals, ``per_request`` of them a
    POST /v1/transactions/batch, signed before the start).
    """

    directory: str
    base_url: str
    mode: str
    first: int
    count: int
    events_per_tx: int
    per_request: int = 1


@dataclass
class AnchorResult:
    started: float  # perf_counter (CLOCK_MONOTONIC: comparable across processes on Linux)
    finished: float
    sign_seconds: float
    requests: int
    tx: int
    errors: int
    latencies_ms: list[float]
    first_error: str | None = None


def _signer(directory: Path) -> Any:
    from cli.client import load_identity

    signer, _pki = load_identity(directory, OPERATOR)
    return signer


def _proposal_json(signer: Any, channel: str, events: list[dict[str, Any]]) -> dict[str, Any]:
    from node.services import submit

    signed = submit.propose(signer, "AnchorEvents", {"sez": SEZ, "events": events}, channel=channel)
    wire: dict[str, Any] = signed.to_json()
    return wire


def _bodies(job: AnchorJob, signer: Any, channel: str) -> list[tuple[bytes, int]]:
    """The request bodies of ``job`` (mode presigned or batch) and their proposal counts."""
    numbers = range(job.first, job.first + job.count)
    if job.mode == "batch":
        proposals = [_proposal_json(signer, channel, [anchor_event(n, 1)]) for n in numbers]
        step = job.per_request
        chunks = [proposals[i : i + step] for i in range(0, len(proposals), step)]
        return [(json.dumps({"proposals": chunk}).encode(), len(chunk)) for chunk in chunks]
    k = job.events_per_tx
    return [
        (
            json.dumps(
                _proposal_json(signer, channel, [anchor_event(n) for n in numbers[i : i + k]])
            ).encode(),
            1,
        )
        for i in range(0, job.count, k)
    ]


def anchor_worker(job: AnchorJob, go: Any, results: Any) -> None:
    """A client process: signs its share, puts ``"ready"`` on ``results`` and waits for
    the ``go`` event, sends its requests one after the other on one keep-alive connection
    and puts its :class:`AnchorResult` on ``results``."""
    directory = Path(job.directory)
    signer = _signer(directory)
    headers = {"content-type": "application/json"}
    with httpx.Client(base_url=job.base_url, timeout=120, headers=headers) as client:
        channel = client.get("/v1/health").json()["channel"]
        sign_started = time.perf_counter()
        bodies = _bodies(job, signer, channel) if job.mode != "inline" else []
        sign_seconds = time.perf_counter() - sign_started
        results.put("ready")
        go.wait()
        latencies: list[float] = []
        errors = tx = requests = 0
        first_error: str | None = None

        def send(path: str, body: bytes, proposals: int) -> None:
            nonlocal errors, tx, requests, first_error
            sent = time.perf_counter()
            reply = client.post(path, content=body)
            latencies.append((time.perf_counter() - sent) * 1000)
            requests += 1
            tx += proposals
            if reply.status_code != 200:
                errors += proposals
                first_error = first_error or f"{reply.status_code} {reply.text[:300]}"
                return
            if path.endswith("/batch"):
                refused = [r for r in reply.json()["receipts"] if r["code"] != "VALID"]
                errors += len(refused)
                if refused and first_error is None:
                    first_error = f"{refused[0]['code']}: {refused[0]['message']}"

        started = time.perf_counter()
        if job.mode == "inline":
            k = job.events_per_tx
            end = job.first + job.count
            for start in range(job.first, end, k):
                built = time.perf_counter()
                events = [anchor_event(n) for n in range(start, min(start + k, end))]
                body = json.dumps(_proposal_json(signer, channel, events)).encode()
                sign_seconds += time.perf_counter() - built
                send("/v1/transactions", body, 1)
        elif job.mode == "batch":
            for body, n in bodies:
                send("/v1/transactions/batch", body, n)
        else:
            for body, n in bodies:
                send("/v1/transactions", body, n)
        finished = time.perf_counter()
    results.put(
        AnchorResult(started, finished, sign_seconds, requests, tx, errors, latencies, first_error)
    )


def proposal_size(directory: Path, base_url: str) -> int:
    """Bytes of one single-event signed proposal in a batch body (for the body limit)."""
    signer = _signer(directory)
    channel = httpx.get(base_url + "/v1/health").json()["channel"]
    wire = _proposal_json(signer, channel, [anchor_event(10**8, 1)])
    return len(json.dumps(wire)) + 2


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "profile-serve":
        raise SystemExit("usage: python bench/_api.py profile-serve NODE_DIR STATS_FILE")
    _profile_serve(Path(sys.argv[2]), Path(sys.argv[3]))

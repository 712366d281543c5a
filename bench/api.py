"""The node API under load on loopback: recognition checks and anchored events per second.

    .venv/bin/python bench/api.py [--seconds 10] [--concurrency 32] [--events 50000]
                                  [--batch 500] [--batch-events 10000] [--workers 4]
                                  [--no-wrk] [--index-thread] [--profile] [--json]

Set-up (not timed): a node directory in a temporary directory (KZ and UZ customs, a few
KZ AEO certificates sealed by KZ's e-seal, the MRA KZ-UZ in force, the SEZ KZ-KHORGOS
and its operator registered), served by ``caravan node start --port 0`` in a process of
its own on 127.0.0.1 (uvicorn, httptools, uvloop): the load generators never share its GIL.

Recognition: ``GET /v1/recognition?aeo_id=…&country=UZ&at=…`` (one fixed URL) over
``--concurrency`` keep-alive connections for ``--seconds`` after a warm-up, driven by
``wrk`` when installed (Debian package wrk, no Lua script), else by an asyncio
raw-socket client in this process. Any answer but 200 is an error.

Events: ``AnchorEvents`` proposals signed by the SEZ operator in ``--workers`` client
processes, each sending its share one request at a time on one keep-alive connection:
(a) ``--batch`` events a transaction, ``POST /v1/transactions``, built and signed before
the clock starts; (b) the same, each built and signed just before it is sent (signing
included); (c) one-event transactions, ``--batch`` of them a
``POST /v1/transactions/batch`` (fewer when the node's body limit needs it), signed
before the start. (a) and (b) anchor ``--events`` new events each, (c)
``--batch-events``. A transaction is durable (its block
committed) when its answer arrives.

``--profile`` then runs the recognition load and ``--batch``-event transactions once more,
each against the same node directory served under cProfile (CPU time of every thread),
and prints where the server's time goes.

The load generators share the machine's cores with the server, so the figures are a
floor. Prints figures, then last one JSON line
``{"recognition": {…}, "events": {…}}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import io
import json
import multiprocessing
import os
import platform
import pstats
import queue
import re
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from _api import (
    AnchorJob,
    AnchorResult,
    ApiServer,
    LoadFigures,
    anchor_worker,
    build_node,
    cpu_seconds,
    http_get_load,
    own_cpu_seconds,
    percentile,
    proposal_size,
    rfc3339,
)

TARGET_REQ_PER_S = 2000
TARGET_P99_MS = 20.0
TARGET_EVENTS_PER_S = 5000


# --------------------------------------------------------------------------- recognition
def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise SystemExit(f"cannot read a wrk latency: {text!r}")
    return (
        float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[match.group(2)]
    )


def run_wrk(wrk: str, url: str, connections: int, seconds: float, threads: int) -> dict[str, Any]:
    """One wrk run: requests/s, p50/p99 (ms), errors (non-2xx answers + socket errors)."""
    result = subprocess.run(
        [wrk, f"-t{threads}", f"-c{connections}", f"-d{seconds:g}s", "--latency", url],
        capture_output=True,
        text=True,
        check=False,
    )
    out = result.stdout
    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE)
    total = re.search(r"(\d+) requests in", out)
    if result.returncode != 0 or not (rate and p50 and p99 and total):
        raise SystemExit(f"wrk failed ({result.returncode}): {out}{result.stderr}")
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    if sockets:
        errors += sum(int(g) for g in sockets.groups())
    return {
        "req_per_s": float(rate.group(1)),
        "p50_ms": _ms(p50.group(1)),
        "p99_ms": _ms(p99.group(1)),
        "errors": errors,
        "requests": int(total.group(1)),
    }


def run_python(url: str, connections: int, seconds: float) -> dict[str, Any]:
    figures: LoadFigures = asyncio.run(http_get_load(url, connections, seconds))
    return {
        "req_per_s": figures.req_per_s,
        "p50_ms": percentile(figures.latencies_ms, 0.50),
        "p99_ms": percentile(figures.latencies_ms, 0.99),
        "errors": figures.errors,
        "requests": figures.requests,
    }


def recognition_load(
    url: str, args: argparse.Namespace, wrk: str | None, seconds: float
) -> dict[str, Any]:
    if wrk is not None:
        return run_wrk(wrk, url, args.concurrency, seconds, args.wrk_threads)
    return run_python(url, args.concurrency, seconds)


def profile_summary(stats_file: Path, per: int, unit: str, top: int = 16) -> str:
    """The functions with the most CPU time of their own, per ``unit`` (µs), as text.

    cProfile counts each resumption of a coroutine as a call: calls of async functions
    are inflated, their times are not."""
    stats = pstats.Stats(str(stats_file), stream=io.StringIO())
    root = str(Path(__file__).resolve().parent.parent) + "/"
    rows = []
    entries = stats.stats.items()  # type: ignore[attr-defined]
    for (filename, line, name), (_cc, calls, tottime, cumtime, _callers) in entries:
        where = re.sub(r".*/site-packages/", "", filename.replace(root, ""))
        where = re.sub(r".*/lib/python3\.\d+/", "", where)
        rows.append((tottime, cumtime, calls, f"{where}:{line}({name})"))
    lines = [f"  {'self µs':>9} {'cum µs':>9} {'calls':>7}  per {unit}: function"]
    for tottime, cumtime, calls, label in sorted(rows, reverse=True)[:top]:
        lines.append(
            f"  {tottime / per * 1e6:9.1f} {cumtime / per * 1e6:9.1f} {calls / per:7.2f}  {label}"
        )
    return "\n".join(lines)


def endpoint_calls(stats_file: Path, function: str) -> int:
    """How many times the route handler ``function`` ran (the requests served)."""
    stats = pstats.Stats(str(stats_file), stream=io.StringIO())
    entries = stats.stats.items()  # type: ignore[attr-defined]
    return sum(calls for (_f, _l, name), (_cc, calls, *_rest) in entries if name == function)


# --------------------------------------------------------------------------- events
def anchor_phase(
    directory: Path,
    base_url: str,
    mode: str,
    first: int,
    events: int,
    events_per_tx: int,
    workers: int,
    per_request: int = 1,
) -> dict[str, Any]:
    """Run ``workers`` client processes over ``events`` events from number ``first``."""
    context = multiprocessing.get_context("spawn")
    unit = events_per_tx if mode != "batch" else per_request
    chunks = -(-events // unit)  # requests, spread over the workers
    shares = [chunks // workers + (1 if w < chunks % workers else 0) for w in range(workers)]
    jobs, start = [], first
    for share in shares:
        count = min(share * unit, first + events - start)
        if count > 0:
            jobs.append(
                AnchorJob(str(directory), base_url, mode, start, count, events_per_tx, per_request)
            )
            start += count
    go = context.Event()
    results: Any = context.Queue()
    procs = [
        context.Process(target=anchor_worker, args=(job, go, results), daemon=True) for job in jobs
    ]
    for proc in procs:
        proc.start()

    def collect(kind: type, count: int) -> list[Any]:
        got: list[Any] = []
        while len(got) < count:
            try:
                item = results.get(timeout=1)
            except queue.Empty:
                if any(p.exitcode not in (None, 0) for p in procs):
                    for p in procs:
                        p.kill()
                    raise SystemExit(f"an anchoring worker died (mode {mode})") from None
                continue
            if isinstance(item, kind):
                got.append(item)
        return got

    collect(str, len(procs))  # every worker has built and signed what it sends
    go.set()
    collected: list[AnchorResult] = collect(AnchorResult, len(procs))
    for proc in procs:
        proc.join(timeout=30)
    seconds = max(r.finished for r in collected) - min(r.started for r in collected)
    latencies = sorted(x for r in collected for x in r.latencies_ms)
    errors = sum(r.errors for r in collected)
    first_error = next((r.first_error for r in collected if r.first_error), None)
    return {
        "events": events,
        "seconds": seconds,
        "events_per_s": events / seconds,
        "tx": sum(r.tx for r in collected),
        "requests": sum(r.requests for r in collected),
        "errors": errors,
        "first_error": first_error,
        "sign_cpu_s": sum(r.sign_seconds for r in collected),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "workers": len(procs),
    }


# --------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="recognition load time")
    parser.add_argument("--warmup", type=float, default=2.0, help="recognition warm-up time")
    parser.add_argument("--concurrency", type=int, default=32, help="recognition connections")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    parser.add_argument(
        "--index-thread",
        action="store_true",
        help="the node feeds its index from a thread (default: a child process)",
    )
    parser.add_argument("--events", type=int, default=50_000, help="events per anchoring run")
    parser.add_argument(
        "--batch",
        type=int,
        default=500,
        help="events per AnchorEvents transaction; one-event transactions per batch request",
    )
    parser.add_argument(
        "--batch-events",
        type=int,
        default=10_000,
        help="events of the batch-endpoint run (one-event transactions)",
    )
    parser.add_argument("--workers", type=int, default=4, help="anchoring client processes")
    parser.add_argument("--aeos", type=int, default=4, help="AEO certificates issued")
    parser.add_argument(
        "--profile", action="store_true", help="profile the server (recognition, events)"
    )
    parser.add_argument(
        "--profile-stats",
        type=Path,
        default=None,
        help="with --profile: keep the pstats files (FILE.recognition.prof, FILE.events.prof)",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    args = parser.parse_args()
    positive = ("seconds", "concurrency", "events", "batch", "batch_events", "workers", "aeos")
    for name in (*positive, "wrk_threads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.batch > 4096:
        parser.error("--batch must be at most 4096 (events in one AnchorEvents transaction)")
    say: Callable[..., None] = (lambda *a: None) if args.json else print
    wrk = None if args.no_wrk else shutil.which("wrk")
    generator = f"wrk -t{args.wrk_threads}" if wrk else "python asyncio keep-alive"
    say(
        f"machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}; load generator: {generator}"
    )

    with tempfile.TemporaryDirectory(prefix="caravan-bench-api-") as tmp:
        directory = Path(tmp) / "node"
        started = time.perf_counter()
        ids = build_node(directory, args.aeos)
        say(
            f"node set up in {time.perf_counter() - started:.1f} s: KZ + UZ, {len(ids)} AEO "
            "certificates, MRA KZ-UZ in force, SEZ KZ-KHORGOS operator registered"
        )
        # the check's time: the next whole second, once passed (the MRA is in force then)
        when = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=1)
        time.sleep(max(0.0, (when - dt.datetime.now(dt.UTC)).total_seconds()))
        at = rfc3339(when)
        query = urllib.parse.urlencode({"aeo_id": ids[0], "country": "UZ", "at": at})
        with ApiServer(directory, index_thread=args.index_thread) as server:
            url = f"{server.base_url}/v1/recognition?{query}"
            answer = httpx.get(url)
            if answer.status_code != 200 or answer.json().get("recognised") is not True:
                raise SystemExit(f"the recognition check is not a yes: {answer.text[:500]}")
            recognition_load(url, args, wrk, args.warmup)  # warm-up
            cpu_before = cpu_seconds(server.pid())
            recog = recognition_load(url, args, wrk, args.seconds)
            server_cpu = cpu_seconds(server.pid()) - cpu_before
            recog["server_cpu_us_per_req"] = (
                server_cpu / recog["requests"] * 1e6 if recog["requests"] else 0.0
            )
            say(
                f"recognition: {recog['req_per_s']:,.0f} req/s, p50 {recog['p50_ms']:.2f} ms, "
                f"p99 {recog['p99_ms']:.2f} ms, {recog['errors']} errors "
                f"({args.concurrency} connections, {args.seconds:g} s, {recog['requests']} "
                f"requests; server CPU {recog['server_cpu_us_per_req']:.0f} µs/request)"
            )
            missed = recog["req_per_s"] < TARGET_REQ_PER_S or recog["p99_ms"] > TARGET_P99_MS
            say(
                f"  target ≥ {TARGET_REQ_PER_S} req/s, p99 ≤ {TARGET_P99_MS:g} ms: "
                f"{'missed' if missed else 'met'}"
            )

            main_before = own_cpu_seconds(server.pid())
            events = run_events(directory, server.base_url, args, say)
            events["server_main_cpu_s"] = round(own_cpu_seconds(server.pid()) - main_before, 1)
            anchoring_cpu = cpu_seconds(server.pid()) - cpu_before - server_cpu
            events["server_cpu_s"] = round(anchoring_cpu, 1)  # with the index feeder's
            events["index_feeder"] = "thread" if args.index_thread else "process"

        if args.profile:
            profile_runs(directory, query, args, wrk, say, Path(tmp))

    result = {
        "bench": "api",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "load_generator": generator,
        "recognition": {
            "req_per_s": round(recog["req_per_s"]),
            "p50_ms": round(recog["p50_ms"], 2),
            "p99_ms": round(recog["p99_ms"], 2),
            "errors": recog["errors"],
            "concurrency": args.concurrency,
            "seconds": args.seconds,
            "server_cpu_us_per_req": round(recog["server_cpu_us_per_req"]),
        },
        "events": events,
    }
    say("(figures are noisy: the load generators and other jobs share the same cores)")
    print(json.dumps(result))
    failed = recog["errors"] or events["errors"]
    if failed:
        raise SystemExit(1)


def profile_runs(
    directory: Path,
    query: str,
    args: argparse.Namespace,
    wrk: str | None,
    say: Callable[..., None],
    tmp: Path,
) -> None:
    """The recognition load, then ``--batch``-event transactions, each against a node
    under cProfile (CPU time of every thread); where the server's time goes."""
    stats_file = tmp / "recognition.prof"
    with ApiServer(directory, profile_to=stats_file) as profiled:
        url = f"{profiled.base_url}/v1/recognition?{query}"
        recognition_load(url, args, wrk, args.warmup)
        load = recognition_load(url, args, wrk, args.seconds)
    served = endpoint_calls(stats_file, "check_json")  # api/fastpath.py
    say(
        f"server profile, recognition ({load['req_per_s']:,.0f} req/s while profiled, "
        f"{served} requests):"
    )
    say(profile_summary(stats_file, served, "request"))
    events = min(args.events, 20 * args.batch)
    events_file = tmp / "events.prof"
    with ApiServer(directory, profile_to=events_file) as profiled:
        phase = anchor_phase(
            directory, profiled.base_url, "presigned", 10**7, events, args.batch, args.workers
        )
    say(
        f"server profile, {args.batch}-event transactions ({phase['events_per_s']:,.0f} "
        f"events/s while profiled, {events} events):"
    )
    say(profile_summary(events_file, events, "event"))
    if args.profile_stats is not None:
        shutil.copyfile(stats_file, args.profile_stats.with_suffix(".recognition.prof"))
        shutil.copyfile(events_file, args.profile_stats.with_suffix(".events.prof"))


def run_events(
    directory: Path, base_url: str, args: argparse.Namespace, say: Callable[..., None]
) -> dict[str, Any]:
    """The three anchoring runs; the JSON ``events`` object."""
    n, batch, workers = args.events, args.batch, args.workers
    presigned = anchor_phase(directory, base_url, "presigned", 0, n, batch, workers)
    _say_phase(say, f"{batch} events/tx, POST /v1/transactions, signed beforehand", presigned)
    inline = anchor_phase(directory, base_url, "inline", n, n, batch, workers)
    _say_phase(say, f"{batch} events/tx, POST /v1/transactions, signing included", inline)
    limit = _body_limit(directory)
    per_request = max(1, min(batch, 1000, int(limit * 0.97) // proposal_size(directory, base_url)))
    batched = anchor_phase(
        directory, base_url, "batch", 2 * n, args.batch_events, 1, workers, per_request
    )
    _say_phase(
        say,
        f"1 event/tx, {per_request} tx/request, POST /v1/transactions/batch, signed beforehand",
        batched,
    )
    met = presigned["events_per_s"] >= TARGET_EVENTS_PER_S
    say(f"  target ≥ {TARGET_EVENTS_PER_S} events/s with batches: {'met' if met else 'missed'}")
    return {
        "events_per_s": round(presigned["events_per_s"]),
        "events_per_s_signing_included": round(inline["events_per_s"]),
        "tx": presigned["tx"],
        "batch": batch,
        "errors": presigned["errors"] + inline["errors"] + batched["errors"],
        "workers": workers,
        "tx_p50_ms": round(presigned["p50_ms"], 1),
        "tx_p99_ms": round(presigned["p99_ms"], 1),
        "batch_endpoint": {
            "events_per_s": round(batched["events_per_s"]),
            "tx": batched["tx"],
            "tx_per_request": per_request,
            "requests": batched["requests"],
            "request_p50_ms": round(batched["p50_ms"], 1),
            "request_p99_ms": round(batched["p99_ms"], 1),
        },
    }


def _body_limit(directory: Path) -> int:
    from node.config import load_config

    return load_config(directory).limits.max_body_bytes


def _say_phase(say: Callable[..., None], what: str, phase: dict[str, Any]) -> None:
    say(
        f"events ({what}): {phase['events_per_s']:,.0f} events/s, {phase['events']} events in "
        f"{phase['seconds']:.2f} s, {phase['tx']} tx in {phase['requests']} requests from "
        f"{phase['workers']} workers, request p50 {phase['p50_ms']:.1f} ms, p99 "
        f"{phase['p99_ms']:.1f} ms, {phase['errors']} errors; client build+sign "
        f"{phase['sign_cpu_s']:.1f} s"
    )
    if phase["first_error"]:
        say(f"  first error: {phase['first_error']}")


if __name__ == "__main__":
    main()

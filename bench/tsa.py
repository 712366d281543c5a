"""RFC 3161 TSA throughput: in-process and over HTTP (uvicorn + httptools + uvloop).

    .venv/bin/python bench/tsa.py [--seconds 5] [--connections 16] [--workers 1 2]

(a) ``TimestampAuthority.respond`` in one thread (parse + TSTInfo + sign + encode);
(b) ``caravan tsa serve`` with 1 and 2 worker processes, driven over loopback by ``wrk``
    (Debian package wrk; a Lua script POSTs one fixed TimeStampReq) with a bounded number
    of keep-alive connections, or, without wrk, by an asyncio raw-socket keep-alive client.

The load generator shares the machine's cores with the server, so the HTTP figures are
a floor. Prints human-readable figures, then one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from trust_services.client import TimeStampResp
from trust_services.pki import init_pki
from trust_services.tsa import SerialAllocator, TimestampAuthority, build_request

PASSPHRASE = b"bench-passphrase"
ORG = "KZ-CUSTOMS"

LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/timestamp-query"
local f = assert(io.open(os.getenv("CARAVAN_TSQ"), "rb"))
wrk.body = f:read("*a")
f:close()
"""


def in_process(root: Path, seconds: float) -> dict[str, float]:
    from trust_services.pki import OrgPki

    pki = OrgPki(root, ORG).unlock(PASSPHRASE)
    tsa = TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(root / "bench-serial"),
    )
    request = build_request(b"bench")
    for _ in range(200):  # warm up
        tsa.respond(request)
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for _ in range(100):
            tsa.respond(request)
        count += 100
    elapsed = time.perf_counter() - start
    return {"tokens_per_s": count / elapsed, "us_per_token": elapsed / count * 1e6}


def start_server(root: Path, workers: int) -> tuple[subprocess.Popen[str], str]:
    passphrase = root / "passphrase"
    passphrase.write_bytes(PASSPHRASE)
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "tsa",
        "serve",
        "--dir",
        str(root),
        "--org",
        ORG,
        "--port",
        "0",
        "--workers",
        str(workers),
        "--passphrase-file",
        str(passphrase),
    ]
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.search(r"http://127\.0\.0\.1:(\d+)", line)
    if not match:
        proc.kill()
        raise SystemExit(f"the server did not start: {line}{proc.communicate()[1]}")
    return proc, f"http://127.0.0.1:{match.group(1)}/tsa"


def stop_server(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def check_reply(url: str, request: bytes) -> None:
    reply = httpx.post(
        url, content=request, headers={"content-type": "application/timestamp-query"}
    )
    status = TimeStampResp.load(reply.content)["status"]["status"].native
    if reply.status_code != 200 or status != "granted":
        raise SystemExit(f"the TSA did not grant the bench request: {reply.status_code} {status}")


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def run_wrk(
    wrk: str, url: str, request_file: Path, connections: int, seconds: float, threads: int
) -> dict[str, float]:
    script = request_file.with_suffix(".lua")
    script.write_text(LUA)
    result = subprocess.run(
        [
            wrk,
            f"-t{threads}",
            f"-c{connections}",
            f"-d{seconds:g}s",
            "--latency",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CARAVAN_TSQ": str(request_file)},
        check=True,
    )
    out = result.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors:.*", out)
    if errors or socket_errors:
        found = [m.group(0) for m in (errors, socket_errors) if m]
        print(f"  wrk reported errors: {'; '.join(found)}")
    return {"tokens_per_s": rate, "p50_ms": p50, "p99_ms": p99}


async def _python_load(
    url: str, request: bytes, connections: int, seconds: float
) -> dict[str, float]:
    host_port = url.split("/")[2]
    host, port = host_port.split(":")
    path = "/" + url.split("/", 3)[3]
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host_port}\r\n"
        "Content-Type: application/timestamp-query\r\n"
        f"Content-Length: {len(request)}\r\n\r\n"
    ).encode()
    message = head + request
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            writer.write(message)
            header = await reader.readuntil(b"\r\n\r\n")
            length = int(re.search(rb"content-length: (\d+)", header.lower()).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
        writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    latencies.sort()
    return {
        "tokens_per_s": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--no-wrk", action="store_true", help="use the Python load generator")
    args = parser.parse_args()

    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    results: dict[str, object] = {
        "bench": "tsa",
        "cores": os.cpu_count(),
        "python": platform.python_version(),
    }
    with tempfile.TemporaryDirectory(prefix="caravan-bench-") as tmp:
        root = Path(tmp)
        init_pki(root, ORG, country="KZ", name="KZ Customs (bench)", passphrase=PASSPHRASE)

        local = in_process(root, args.seconds)
        print(
            f"in-process respond(): {local['tokens_per_s']:,.0f} tokens/s "
            f"({local['us_per_token']:.0f} µs/token, one thread, EC P-256)"
        )
        results["in_process_tokens_per_s"] = round(local["tokens_per_s"])

        request = build_request(b"bench payload")
        request_file = root / "bench.tsq"
        request_file.write_bytes(request)
        wrk = None if args.no_wrk else shutil.which("wrk")
        generator = f"wrk -t{args.wrk_threads}" if wrk else "python asyncio keep-alive"
        results["load_generator"] = generator
        results["connections"] = args.connections
        http: dict[str, dict[str, float]] = {}
        for workers in args.workers:
            proc, url = start_server(root, workers)
            try:
                check_reply(url, request)
                if wrk:
                    figures = run_wrk(
                        wrk, url, request_file, args.connections, args.seconds, args.wrk_threads
                    )
                else:
                    figures = asyncio.run(
                        _python_load(url, request, args.connections, args.seconds)
                    )
            finally:
                stop_server(proc)
            http[f"workers_{workers}"] = {k: round(v, 2) for k, v in figures.items()}
            print(
                f"HTTP, {workers} worker(s), {args.connections} connections ({generator}): "
                f"{figures['tokens_per_s']:,.0f} tokens/s, p50 {figures['p50_ms']:.2f} ms, "
                f"p99 {figures['p99_ms']:.2f} ms"
            )
        results["http"] = http
    print("(figures are noisy: the load generator and other jobs share the same cores)")
    print(json.dumps(results))


if __name__ == "__main__":
    main()

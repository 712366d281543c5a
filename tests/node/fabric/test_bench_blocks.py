"""bench/fabric.py reads each run's committed blocks from the peers' own log lines, and
sums its runs per level and chaincode (Python, the trivial Go put, the Go mimic)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[3]

# the kvledger line of a Fabric 2.5.12 peer, colours and all, as `network up` logs it
LINE = (
    "\x1b[34m2026-11-24 00:42:18.366 UTC 45015 INFO\x1b[0m [kvledger] \x1b[34;1mcommit\x1b[0m "
    "-> [caravan] Committed block [{n}] with {tx} transaction(s) in {total}ms "
    "(state_validation=4ms block_and_pvtdata_commit=4ms state_commit={state}ms) "
    "commitHash=[1b4a2fd16e9a683c8858ca952edf1d25eca170eeb5215a347e4a76dff174e415]\n"
)
OTHER = (
    "\x1b[34m2026-11-24 00:42:18.360 UTC 45014 INFO\x1b[0m [endorser] callChaincode -> "
    "finished chaincode: caravan duration: 213ms channel=caravan txID=ee543aae\n"
)


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_fabric", ROOT / "bench" / "fabric.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_fabric"] = module
    spec.loader.exec_module(module)
    return module


def test_a_run_counts_only_the_blocks_logged_after_it_started(
    bench: ModuleType, tmp_path: Path
) -> None:
    (tmp_path / "run" / "logs").mkdir(parents=True)
    kz = tmp_path / "run" / "logs" / "peer0.kz-customs.log"
    kz.write_text(LINE.format(n=7, tx=500, total=900, state=800) + OTHER)
    (tmp_path / "run" / "logs" / "peer0.uz-customs.log").write_text(OTHER)
    pids = {"peer0.kz-customs": 1, "peer0.uz-customs": 2, "orderer0.kz-customs": 3}
    logs = bench.peer_logs(tmp_path, pids)
    assert sorted(logs) == ["peer0.kz-customs", "peer0.uz-customs"]  # no orderer

    since = bench.log_sizes(logs)
    with kz.open("a") as log:
        log.write(LINE.format(n=8, tx=40, total=150, state=120) + OTHER)
        log.write(LINE.format(n=9, tx=60, total=50, state=10))
    stats = bench.block_stats(logs, since)

    # block 7 came before the run; UZ committed nothing in it, so it has no entry
    assert stats == {
        "peer0.kz-customs": {
            "blocks": 2,
            "tx_per_block": 50.0,
            "commit_ms": 100.0,
            "state_commit_ms": 65.0,
        }
    }


def test_a_missing_log_gives_no_figures(bench: ModuleType, tmp_path: Path) -> None:
    logs = {"peer0.kz-customs": tmp_path / "gone.log"}
    assert bench.log_sizes(logs) == {}
    assert bench.block_stats(logs, {"peer0.kz-customs": 0}) == {}
    assert bench.peer_logs(None, {"peer0.kz-customs": 1}) == {}


def test_runs_are_summed_per_block(bench: ModuleType) -> None:
    runs = [
        {"peer_blocks": {"p": {"blocks": 1, "tx_per_block": 100.0, "state_commit_ms": 40.0}}},
        {"peer_blocks": {"p": {"blocks": 3, "tx_per_block": 20.0, "state_commit_ms": 0.0}}},
        {"peer_blocks": {}},
    ]
    assert bench._peer_blocks(runs) == {
        "p": {"blocks": 4, "tx_per_block": 40.0, "state_commit_ms": 10.0}
    }
    assert bench._slowest_commit({"peer_blocks": bench._peer_blocks(runs)}) == "40.0, 10.0 (p)"
    assert bench._slowest_commit({}) == "-"


def _run(kind: str, level: int, valid: int, seconds: float) -> dict[str, object]:
    return {
        "chaincode": kind,
        "concurrency": level,
        "valid": valid,
        "elapsed_s": seconds,
        "tx_per_s": valid / seconds,
        "latencies_ms": [10.0, 20.0, 30.0],
        "server_cpu_ms_per_tx": {"chaincode": 1.0},
        "total_cpu_ms_per_tx": 10.0,
        "load1_before": 0.5,
        "peer_blocks": {},
    }


def test_the_go_mimic_runs_get_their_own_ratios(bench: ModuleType) -> None:
    runs = [
        _run("python", 200, 800, 10.0),  # 80 tx/s
        _run("go", 200, 1000, 10.0),  # 100 tx/s
        _run("go-mimic", 200, 900, 10.0),  # 90 tx/s
        _run("python", 50, 500, 10.0),
        _run("go", 50, 500, 10.0),
    ]
    by_level = {row["concurrency"]: row for row in bench.summary(runs)}
    assert by_level[200]["ratio"] == 0.8
    assert by_level[200]["ratio_to_mimic"] == 0.89
    assert by_level[200]["mimic_to_go"] == 0.9
    assert "ratio_to_mimic" not in by_level[50] and "go-mimic" not in by_level[50]
    table = bench.markdown(list(by_level.values()))
    assert "| 200 | 90.0 | 20.0 / 30.0 | 0.89 | 0.9 | 10.0 | - |" in table.splitlines()


def test_go_mimic_needs_the_go_chaincode(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--go-mimic", "--tx", "10"]) == 3
    assert capsys.readouterr().err == "error: --go-mimic needs --go-chaincode\n"

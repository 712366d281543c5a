"""The index fed by a child process that reads the ledger file (node.index.feeder).

A real embedded ledger on disk is written by this process while a spawned child feeds
an index on SQLite and on a real PostgreSQL; the child's rows must equal an index fed in
this process, blocks committed after it started must reach it on a nudge, the node may
catch up at the same time without a block applied twice, and the child stops when
closed or when the node's end of the pipe goes away.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from node.index import Index
from node.index.feeder import IndexFeeder, LedgerFileFeed
from node.index.index import in_memory
from tests.chaincode.conftest import aeo_write
from tests.chaincode.test_mra import ACT
from tests.node.conftest import Signers
from tests.node.test_index import MRA_ID, SEZ, Story, new_ledger, tell_story, trail
from tests.node.test_scenario import Clock

WAIT_S = 60.0  # generous: the child imports SQLAlchemy on a loaded 2-core machine


def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Poll until ``condition`` holds; fail naming ``what`` after WAIT_S (not a timing
    assertion: only a child that never gets there fails)."""
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"the feeder did not {what} within {WAIT_S:.0f} s")
        time.sleep(0.02)


@pytest.fixture
def story(tmp_path: Path, signers: Signers) -> Iterator[Story]:
    clock = Clock()
    ledger = new_ledger(tmp_path / "ledger.db", signers, clock)
    yield tell_story(ledger, clock, signers)
    ledger.close()


def test_the_child_indexes_what_this_process_commits(
    story: Story, index_url: Callable[[], str], signers: Signers
) -> None:
    url = index_url()
    ledger = story.ledger
    feeder = IndexFeeder(ledger.store.path, url, interval=30.0)  # only nudges wake it soon
    with Index(url) as index:
        feeder.start()
        try:
            wait_for(lambda: index.checkpoint().block == ledger.height - 1, "catch up at start")
            # new blocks while the child runs: a suspension and more events
            aeo = story.aeos["KZ-AEO-2026-000001"]
            suspended = {**aeo, "status": "suspended", "status_reason": "audit findings"}
            suspended["status_effective_at"] = story.clock.iso(1)
            story.clock.clock += 60  # the MRA is in force
            story.ok("kz-officer", "SuspendAeo", aeo_write(signers.pkis["KZ"], suspended))
            story.ok("uz-admin", "SuspendMra", {"mra_id": MRA_ID, **ACT, "reason": "review"})
            story.ok(
                "kz-khorgos",
                "AnchorEvents",
                {"sez": SEZ, "events": trail("26KZ0000044-KHG", 200, 5, None)},
            )
            feeder.nudge()
            wait_for(lambda: index.checkpoint().block == ledger.height - 1, "follow a nudge")
            assert [a.aeo_id for a in index.aeos(status="suspended").items] == [aeo["aeo_id"]]

            # the node catching up itself meanwhile applies nothing twice
            assert index.catch_up(ledger) == 0
        finally:
            feeder.close()
        assert not feeder.alive()
        with Index(index_url()) as here:  # the same blocks, indexed in this process
            here.catch_up(ledger)
            assert index.dump() == here.dump()
            assert index.checkpoint() == here.checkpoint()


def test_node_and_child_feeding_at_once_apply_each_block_once(
    story: Story, index_url: Callable[[], str]
) -> None:
    url = index_url()
    feeder = IndexFeeder(story.ledger.store.path, url, interval=0.01)  # catches up non-stop
    with Index(url) as index, Index(index_url()) as reference:
        feeder.start()
        try:
            for n in range(20):
                events = trail(f"26KZ{n:07d}-RACE", 1000 + 10 * n, 2, None)
                story.ok("kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": events})
                index.catch_up(story.ledger)  # races the child for the same blocks
            wait_for(lambda: index.checkpoint().block == story.ledger.height - 1, "catch up")
        finally:
            feeder.close()
        reference.catch_up(story.ledger)
        assert index.dump() == reference.dump()  # no event twice, none missing


def test_the_child_exits_when_the_node_goes_away(story: Story, tmp_path: Path) -> None:
    feeder = IndexFeeder(story.ledger.store.path, f"sqlite:///{tmp_path / 'i.db'}", interval=30)
    feeder.start()
    assert feeder.alive() and feeder.pid != os.getpid()
    feeder._close_pipe()  # what the kernel does when the node's process dies
    wait_for(lambda: not feeder.alive(), "exit at the pipe's end")
    feeder.close()
    feeder.nudge()  # after close: a no-op, not an error


def test_a_missing_ledger_file_is_waited_for(tmp_path: Path, signers: Signers) -> None:
    """The child logs and retries without creating a ledger; once the ledger appears
    (a node initialised after its index feeder started), it indexes it."""
    missing = tmp_path / "later" / "ledger.db"
    url = f"sqlite:///{tmp_path / 'i.db'}"
    feeder = IndexFeeder(missing, url, interval=0.05)
    feeder.start()
    try:
        time.sleep(0.5)  # a few retries (interval 0.05 s)
        assert feeder.alive()
        assert not missing.exists() and not missing.parent.exists()
        clock = Clock()
        story = tell_story(new_ledger(missing, signers, clock), clock, signers)
        try:
            with Index(url) as index:
                wait_for(
                    lambda: index.checkpoint().block == story.ledger.height - 1,
                    "index a ledger created after it started",
                )
                assert [a.aeo_id for a in index.aeos().items] == sorted(story.aeos)
        finally:
            story.ledger.close()
    finally:
        feeder.close()


def test_ledger_file_feed_reads_what_the_ledger_reads(story: Story) -> None:
    feed = LedgerFileFeed(story.ledger.store.path)
    try:
        assert feed.height == story.ledger.height
        assert list(feed.changes(0)) == list(story.ledger.changes(0))
    finally:
        feed.close()


@pytest.mark.parametrize(
    ("url", "memory"),
    [
        ("sqlite://", True),
        ("sqlite:///:memory:", True),
        ("sqlite:////var/lib/caravan/index.db", False),
        ("postgresql://caravan@db/index", False),
        ("not a url", False),
    ],
)
def test_in_memory(url: str, memory: bool) -> None:
    assert in_memory(url) is memory

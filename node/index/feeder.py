"""Feed the index from a process of its own, reading the embedded ledger's file.

>>> feeder = IndexFeeder(Path("node/data/ledger.db"), "sqlite:///node/data/index.db")
>>> feeder.start()      # a child process: opens the ledger read-only and the index
>>> feeder.nudge()      # after a commit: catch up now (never blocks)
>>> feeder.close()      # stop the child (it also stops when this process goes away)

Indexing a block costs about as much CPU as committing it (decoding the transactions'
writes, building the rows, writing them). In the node's process that work competes
with endorsement for the one interpreter lock; in a child it runs on the other core.
The child only reads the ledger (SQLite WAL lets a reader in another process see each
committed block) and writes the index, so it needs no key and changes nothing the
ledger trusts.

Correctness does not depend on the child: :meth:`Index.catch_up` applies a block only
if the index's checkpoint (read under the index's write lock) is still before it, so
the node may catch up in its own process too (a list that must see the node's latest
write does) and neither feeder applies a block twice.

The node nudges the child through a pipe (one byte per commit; a full pipe means a
nudge is already pending). The child also catches up every ``interval`` seconds, and
exits when the pipe closes: a node that dies leaves no orphan.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import select
import signal
from collections.abc import Iterator
from pathlib import Path

from ..embedded.ledger import read_changes
from ..embedded.store import Store
from ..errors import NodeError
from ..ledger import TxChanges
from .index import Index

__all__ = ["IndexFeeder", "LedgerFileFeed"]

log = logging.getLogger(__name__)

#: seconds the node waits for the child to stop before it is killed
STOP_TIMEOUT_S = 5.0


class LedgerFileFeed:
    """The :class:`~node.index.index.ChangeFeed` of an embedded ledger file, read-only."""

    def __init__(self, path: Path) -> None:
        self.store = Store.open(path, readonly=True)

    @property
    def height(self) -> int:
        return self.store.height()

    def changes(self, from_block: int = 0) -> Iterator[TxChanges]:
        return read_changes(self.store, from_block)

    def close(self) -> None:
        self.store.close()


class IndexFeeder:
    """A child process that keeps the index at ``index_url`` caught up with the ledger."""

    def __init__(self, ledger_path: Path, index_url: str, *, interval: float = 2.0) -> None:
        self.ledger_path = ledger_path
        self.index_url = index_url
        self.interval = interval
        self._process: multiprocessing.process.BaseProcess | None = None
        self._wake: multiprocessing.connection.Connection | None = None

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def start(self) -> None:
        if self._process is not None:
            return
        ctx = multiprocessing.get_context("spawn")  # no threads or connections inherited
        # a Connection only to hand the read end to the spawned child; bytes go raw
        wake_r, wake_w = ctx.Pipe(duplex=False)
        os.set_blocking(wake_w.fileno(), False)
        process = ctx.Process(
            target=_run,
            args=(str(self.ledger_path), self.index_url, self.interval, wake_r),
            name="caravan-index-feeder",
            daemon=True,
        )
        try:
            process.start()
        finally:
            wake_r.close()  # the child has its own copy: EOF reaches it when wake_w closes
        self._process, self._wake = process, wake_w

    def nudge(self) -> None:
        """Ask the child to catch up now; returns at once."""
        if self._wake is None:
            return
        try:
            os.write(self._wake.fileno(), b"\x01")
        except BlockingIOError:
            pass  # the pipe is full: the child has nudges pending
        except OSError:
            log.warning("the index feeder is gone; lists catch up on demand")
            self._close_pipe()

    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def close(self) -> None:
        self._close_pipe()  # the child sees EOF and exits after its current block
        process, self._process = self._process, None
        if process is None:
            return
        process.join(STOP_TIMEOUT_S)
        if process.is_alive():
            process.kill()
            process.join()

    def _close_pipe(self) -> None:
        if self._wake is not None:
            self._wake.close()
            self._wake = None


def _run(
    ledger_path: str, index_url: str, interval: float, wake: multiprocessing.connection.Connection
) -> None:
    """The child: catch up, then wait for a nudge or the interval; stop at EOF."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the node's; it closes us
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s index feeder: %(message)s")
    feed: LedgerFileFeed | None = None
    index = Index(index_url)
    try:
        while True:
            if feed is None:
                feed = _open_feed(Path(ledger_path))
            if feed is not None:
                _catch_up(index, feed)
            ready, _, _ = select.select([wake], [], [], interval)
            if ready and not os.read(wake.fileno(), 4096):
                return  # EOF: the node closed the pipe or exited
    finally:
        index.close()
        if feed is not None:
            feed.close()
        wake.close()


def _open_feed(path: Path) -> LedgerFileFeed | None:
    try:
        return LedgerFileFeed(path)
    except NodeError as exc:
        log.warning("cannot open the ledger: %s", exc.message)
        return None


def _catch_up(index: Index, feed: LedgerFileFeed) -> None:
    try:
        index.catch_up(feed)
    except NodeError as exc:
        log.warning("catch-up failed: %s %s", exc.code, exc.message)
    except Exception:  # keep feeding: the next nudge retries from the checkpoint
        log.exception("catch-up failed")

"""`caravan ledger info|block|verify`: look into an embedded ledger file, read-only.

``caravan ledger verify --ledger node/ledger.db`` re-checks every block, transaction and
write; it exits 0 with a one-line summary, or 1 with ``ledger verify: block N: reason``
on stderr naming the first bad block. A path that is not a ledger is an input error
(exit 3). ``--ledger`` takes the database file or the node directory holding
``ledger.db``. Nothing here writes to the ledger or needs a key.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.table import Table

from node.embedded.inspect import (
    block_json,
    block_view,
    ledger_info,
    resolve_ledger_path,
    stored_bytes,
)
from node.embedded.store import Store
from node.embedded.verify import VerifyReport, verify_ledger
from node.errors import LedgerCorrupted, NodeError

from ._common import EXIT_FAILED, console, err_console, fail, handle_errors

__all__ = ["app", "register"]

app = typer.Typer(help="Inspect and verify an embedded ledger (read-only).", no_args_is_help=True)

LedgerOpt = Annotated[
    Path,
    typer.Option("--ledger", help="The ledger database, or the node directory holding ledger.db."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

#: terminal columns from which ``ledger block`` prints whole transaction ids
WIDE_TABLE = 160

P = ParamSpec("P")
R = TypeVar("R")


def handle_node_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A corrupted ledger exits 1 naming the block; any other node error is an input
    error (exit 3). One line on stderr either way."""

    @functools.wraps(func)
    @handle_errors
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except LedgerCorrupted as exc:
            raise fail(str(exc), EXIT_FAILED) from None
        except NodeError as exc:
            raise fail(str(exc)) from None
        except sqlite3.Error as exc:
            raise fail(f"cannot read the ledger: {exc}") from None

    return wrapper


@contextmanager
def _opened(path: Path) -> Iterator[Store]:
    store = Store.open(resolve_ledger_path(path), readonly=True)
    try:
        yield store
    finally:
        store.close()


def _time(time_us: int) -> str:
    when = dt.datetime.fromtimestamp(time_us / 1_000_000, dt.UTC)
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


@app.command("info")
@handle_node_errors
def info_command(ledger: LedgerOpt, as_json: JsonOpt = False) -> None:
    """Channel, height, last block hash, transaction counts, state keys and size."""
    with _opened(ledger) as store:
        info = ledger_info(store)
        size = stored_bytes(store.path)
        path = store.path
    summary = {
        "path": str(path),
        "channel": info.channel,
        "height": info.height,
        "last_block_hash": info.last_hash,
        "tx_count": info.tx_count,
        "valid_tx_count": info.valid_tx_count,
        "invalid_tx_count": info.tx_count - info.valid_tx_count,
        "state_keys": info.state_keys,
        "size_bytes": size,
    }
    if as_json:
        _print_json(summary)
        return
    table = Table(title=f"ledger {path}", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("channel", info.channel)
    table.add_row("height", f"{info.height} block(s), last is {info.height - 1}")
    table.add_row("last block hash", info.last_hash or "-")
    table.add_row(
        "transactions",
        f"{info.tx_count} ({info.valid_tx_count} valid, "
        f"{info.tx_count - info.valid_tx_count} invalid)",
    )
    table.add_row("state keys", str(info.state_keys))
    table.add_row("size", f"{size} bytes ({size / 1_048_576:.1f} MiB)")
    console.print(table)


@app.command("block")
@handle_node_errors
def block_command(
    number: Annotated[int, typer.Argument(help="Block number (0 is the genesis block).")],
    ledger: LedgerOpt,
    as_json: JsonOpt = False,
) -> None:
    """One block as stored: header, signer, timestamp token and its transactions."""
    with _opened(ledger) as store:
        view = block_view(store, number)
    if as_json:
        _print_json(block_json(view))
        return
    header = view.header
    signer = header.get("signer") or {}
    table = Table(title=f"block {view.number}", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    table.add_row("hash", view.hash)
    for name in ("channel", "prev_hash", "tx_root", "tx_count", "valid_count"):
        table.add_row(name, str(header.get(name, "-")))
    time_us = header.get("time_us")
    table.add_row("time", _time(time_us) if isinstance(time_us, int) else "-")
    table.add_row("signer", f"{signer.get('msp_id', '-')} (cert {signer.get('cert_sha256', '-')})")
    table.add_row("signature", f"{len(view.signature)} bytes")
    token = view.timestamp_token
    table.add_row("timestamp token", "none" if token is None else f"present ({len(token)} bytes)")
    console.print(table)
    # a tx id is copied, never cut: whole when the terminal is wide enough, else short
    whole = console.width >= WIDE_TABLE
    txs = Table(title=f"{len(view.txs)} transaction(s)")
    txs.add_column("index", justify="right")
    txs.add_column("tx id", no_wrap=True)
    for column in ("code", "function", "creator MSP", "time"):
        txs.add_column(column, overflow="fold")
    for tx in view.txs:
        style = None if tx.code == "VALID" else "yellow"
        txs.add_row(
            str(tx.index),
            tx.tx_id if whole else f"{tx.tx_id[:12]}…",
            tx.code,
            tx.function,
            tx.creator_msp,
            _time(tx.timestamp_us),
            style=style,
        )
    console.print(txs)
    if not whole and view.txs:
        console.print(f"tx ids shortened: --json or a terminal of {WIDE_TABLE} columns shows them")


def _verify(path: Path) -> VerifyReport:
    with _opened(path) as store:
        try:
            return verify_ledger(store)
        except (ValueError, KeyError, TypeError) as exc:
            # rows read outside any block (e.g. the channel) that hold the wrong bytes
            raise LedgerCorrupted(
                None, f"stored data cannot be read ({type(exc).__name__})"
            ) from None


@app.command("verify")
@handle_errors
def verify_command(ledger: LedgerOpt, as_json: JsonOpt = False) -> None:
    """Re-check every block, signature, transaction and write; name the first bad block."""
    try:
        report = _verify(ledger)
    except LedgerCorrupted as exc:
        reason = str(exc).removeprefix("ledger: ")
        if as_json:
            _print_json({"ok": False, "block": exc.block, "message": reason})
        err_console.print(f"ledger verify: {reason}", highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(EXIT_FAILED) from None
    except NodeError as exc:
        raise fail(str(exc)) from None
    except sqlite3.Error as exc:
        raise fail(f"cannot read the ledger: {exc}") from None
    if as_json:
        _print_json(
            {
                "ok": True,
                "channel": report.channel,
                "height": report.height,
                "tx_count": report.tx_count,
                "valid_tx_count": report.valid_count,
                "writes": report.writes,
                "seconds": round(report.seconds, 3),
            }
        )
        return
    console.print(
        f"ledger verify: OK, channel {report.channel}: {report.height} blocks, "
        f"{report.tx_count} transactions ({report.valid_count} valid), "
        f"{report.writes} writes, {report.seconds:.2f} s",
        highlight=False,
        soft_wrap=True,
    )


def register(main: typer.Typer) -> None:
    """Add ``caravan ledger …`` to the main app."""
    main.add_typer(app, name="ledger")

"""`caravan recognition check`: is an AEO certificate recognised in a country at a time?

``caravan recognition check --node http://127.0.0.1:8700 --aeo-id KZ-AEO-2026-000001
--country UZ`` asks the contract's recognition rule (docs/chaincode.md) and prints yes or
no with every reason and the evidence (the AEO version and MRA steps, by tx id). Exit
0 when recognised, 1 when not (docs/cli.md); 3 or 4 for errors.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ._common import console
from .client import (
    EXIT_NEGATIVE,
    DirOpt,
    JsonOpt,
    NodeOpt,
    connect,
    handle_client_errors,
    print_json,
)

__all__ = ["app", "register"]

app = typer.Typer(help="Recognition of AEO certificates under MRAs.", no_args_is_help=True)


def _show(answer: dict[str, Any], aeo_id: str, country: str) -> None:
    yes = bool(answer.get("recognised"))
    verdict = "[bold green]YES[/]" if yes else "[bold red]NO[/]"
    console.print(
        f"{verdict}: {escape(aeo_id)} is {'' if yes else 'not '}recognised in {escape(country)}",
        highlight=False,
        soft_wrap=True,
    )
    for reason in answer.get("reasons") or []:
        console.print(f"  - {escape(str(reason))}", highlight=False, soft_wrap=True)
    evidence = answer.get("evidence") or {}
    table = Table(title="evidence")
    for column in ("record", "state at the time", "version / tx ids"):
        table.add_column(column, overflow="fold")
    cert = evidence.get("aeo") or {}
    table.add_row(
        escape(f"AEO {cert.get('aeo_id')}"),
        escape(str(cert.get("status_at"))),
        escape(f"version {cert.get('version')}, tx {cert.get('tx_id')}"),
    )
    for m in evidence.get("mras") or []:
        table.add_row(
            escape(f"MRA {m.get('mra_id')}"),
            escape(str(m.get("state_at"))),
            escape(", ".join(m.get("tx_ids") or [])),
        )
    console.print(table)


@app.command("check")
@handle_client_errors
def check_command(
    aeo_id: Annotated[str, typer.Option("--aeo-id", help="e.g. KZ-AEO-2026-000123.")],
    country: Annotated[str, typer.Option("--country", help="Where: ISO 3166 code, e.g. UZ.")],
    at: Annotated[
        str | None, typer.Option("--at", help="When, RFC 3339 (default: the node's now).")
    ] = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Yes (exit 0) or no (exit 1), with the reasons and the evidence."""
    with connect(directory=directory, node=node) as conn:
        answer = conn.client.recognition(aeo_id, country.upper(), at)
    if as_json:
        print_json(answer)
    else:
        _show(answer, aeo_id, country.upper())
    if not answer.get("recognised"):
        raise typer.Exit(EXIT_NEGATIVE)


def register(main: typer.Typer) -> None:
    """Add ``caravan recognition …`` to the main app."""
    main.add_typer(app, name="recognition")

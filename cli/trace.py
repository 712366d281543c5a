"""`caravan trace anchor|trail|verify`: consignment events of special economic zones.

``caravan trace anchor events.json --sez KZ-KHORGOS --dir node --identity kz-khorgos``
reads an EPCIS 2.0 JSON document, computes each event's hash, maps it to the fields the
traceability contract indexes and submits ``AnchorEvents`` in batches, in document order.
``trace trail REF`` prints the consignment's trail; ``trace verify REF`` re-checks links,
sequence and Merkle proofs and exits 1 when the trail is broken (docs/cli.md).

**Event hash.** Each event's CBV 2.0 event hash (CBV 2.0 §8.9), computed by GS1's
reference implementation (``epcis-event-hash-generator``, through node/epcis.py, which
never fetches a JSON-LD context from the internet). An ``eventID`` that already is a
``ni:///sha-256;…?ver=CBV2.0`` hash must equal the computed one: a mismatch means the
event was changed after its hash was taken, and nothing is anchored.

**Corrections.** The mapping (node/epcis.py, :func:`node.epcis.anchor_plan`) turns EPCIS 2.0
error declarations into the contract's corrections: a declaration (the erroneous event
repeated with ``errorDeclaration``) is not anchored itself; each corrective event it names
is anchored with ``corrects``. ``trace trail`` shows ``corrects`` / ``corrected_by`` on
each event, ``trace verify`` lists the trail's corrections.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from chaincode.trace import EVENT_TYPES, MAX_BATCH
from node.epcis import AnchorPlan, anchor_plan, epcis_event_hash, event_fields
from node.errors import NodeError

from ._common import console, err_console, fail
from .client import (
    EXIT_NEGATIVE,
    DirOpt,
    IdentityDirOpt,
    IdentityOpt,
    JsonOpt,
    NodeOpt,
    connect,
    handle_client_errors,
    print_json,
)

__all__ = [
    "app",
    "epcis_event_hash",
    "event_fields",
    "register",
    "with_corrections",
]

app = typer.Typer(help="Consignment traceability events (EPCIS 2.0).", no_args_is_help=True)

MAX_FILE = 256 * 1024 * 1024

RefArg = Annotated[
    str, typer.Argument(help="Consignment reference (WCO UCR), e.g. 26KZ0000042-KHG.")
]


def _events(path: Path) -> tuple[list[Any], Any]:
    """The events of an EPCIS document (or a list of events) and the document's @context."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise fail(f"no such file: {path}") from None
    if size > MAX_FILE:
        raise fail(f"{path} is larger than {MAX_FILE // (1024 * 1024)} MiB")
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(f"{path} is not JSON: {exc}") from None
    if isinstance(doc, list):
        return doc, None
    if isinstance(doc, dict):
        body = doc.get("epcisBody")
        if isinstance(body, dict) and isinstance(body.get("eventList"), list):
            return list(body["eventList"]), doc.get("@context")
        if doc.get("type") in EVENT_TYPES:
            return [doc], doc.get("@context")
    raise fail(f"{path} is not an EPCIS 2.0 document (epcisBody.eventList) or a list of events")


@app.command("anchor")
@handle_client_errors
def anchor_command(
    file: Annotated[Path, typer.Argument(help="EPCIS 2.0 JSON document (or a list of events).")],
    sez: Annotated[str, typer.Option("--sez", help="The zone, e.g. KZ-KHORGOS.")],
    consignment_ref: Annotated[
        str | None,
        typer.Option(
            "--consignment-ref",
            help="The consignment of every event (default: each event's ucr bizTransaction).",
        ),
    ] = None,
    aeo_id: Annotated[
        str | None, typer.Option("--aeo-id", help="The trader's AEO certificate, if any.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=MAX_BATCH, help="Events per transaction.")
    ] = 1000,
    directory: DirOpt = None,
    node: NodeOpt = None,
    identity: IdentityOpt = None,
    identity_dir: IdentityDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Anchor the events' hashes on the ledger (an accredited operator of the zone).

    Every event is mapped and checked first (nothing is submitted if one is not usable);
    then one AnchorEvents transaction per batch, in document order. An event with an
    errorDeclaration is not anchored itself: its corrective events (correctiveEventIDs,
    in the same document) are, each with ``corrects`` naming the erroneous event.
    """
    events, context = _events(file)
    if not events:
        raise fail(f"{file} holds no events")
    try:
        plan = anchor_plan(events, context, consignment_ref=consignment_ref, aeo_id=aeo_id)
    except NodeError as exc:
        raise fail(str(exc)) from None
    entries = plan.entries
    batches: list[dict[str, Any]] = []
    with connect(
        directory=directory,
        node=node,
        identity=identity,
        identity_dir=identity_dir,
        need_identity=True,
    ) as conn:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err_console, transient=True, disable=as_json) as bar:
            task = bar.add_task("anchoring", total=len(entries))
            for start in range(0, len(entries), batch_size):
                chunk = entries[start : start + batch_size]
                try:
                    receipt = conn.client.submit(
                        conn.propose("AnchorEvents", {"sez": sez, "events": chunk})
                    )
                except NodeError as exc:
                    if batches:  # say what is already on the ledger (document positions)
                        first, last = plan.positions[start], plan.positions[start + len(chunk) - 1]
                        exc.message = (
                            f"events {first}-{last}: {exc.message} "
                            f"(the events before event {first} are anchored)"
                        )
                    raise
                payload = receipt.get("payload") or {}
                batches.append(
                    {
                        "tx_id": receipt.get("tx_id"),
                        "block": receipt.get("block"),
                        "batch_root": payload.get("batch_root"),
                        "size": payload.get("size"),
                        "proofs": payload.get("proofs") or [],
                    }
                )
                bar.advance(task, len(chunk))
    corrections = _corrections_of(plan)
    if as_json:
        print_json(
            {
                "sez": sez,
                "anchored": len(entries),
                "declarations": len(plan.declarations),
                "corrections": corrections,
                "batches": batches,
            }
        )
        return
    console.print(
        f"anchored {len(entries)} event(s) of {escape(sez)} in {len(batches)} transaction(s)",
        highlight=False,
    )
    table = Table(title="batches")
    for column in ("tx", "block", "events", "Merkle root"):
        table.add_column(column, overflow="fold")
    for b in batches:
        table.add_row(str(b["tx_id"]), str(b["block"]), str(b["size"]), str(b["batch_root"]))
    console.print(table)
    for d in plan.declarations:
        reason = d.declaration.reason or "no reason given"
        fixes = ", ".join(f"event {m} ({_short(h)})" for m, h in d.corrective)
        console.print(
            f"event {d.event} declares {_short(d.erroneous)} erroneous "
            f"({escape(reason)}, {d.declaration.declaration_time}): corrected by {fixes}",
            highlight=False,
            soft_wrap=True,
        )


def _corrections_of(plan: AnchorPlan) -> list[dict[str, Any]]:
    """The corrective events anchored, with the events they correct and why."""
    why: dict[str, list[dict[str, Any]]] = {}
    for d in plan.declarations:
        for _m, event_hash in d.corrective:
            why.setdefault(event_hash, []).append(
                {
                    "event": d.event,
                    "event_hash": d.erroneous,
                    "reason": d.declaration.reason,
                    "declaration_time": d.declaration.declaration_time,
                }
            )
    return [
        {
            "event": n,
            "event_hash": entry["event_hash"],
            "corrects": entry["corrects"],
            "declarations": why.get(entry["event_hash"], []),
        }
        for n, entry in zip(plan.positions, plan.entries, strict=True)
        if entry.get("corrects")
    ]


def _short(event_hash: str | None) -> str:
    if not event_hash:
        return "-"
    digest = event_hash.removeprefix("ni:///sha-256;").removesuffix("?ver=CBV2.0")
    return f"{digest[:12]}…"


def with_corrections(trail: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trail with ``corrected_by`` on each event: the later events whose ``corrects``
    name it (a correction never edits the event it corrects)."""
    corrected_by: dict[str, list[str]] = {}
    for e in trail:
        for corrected in e.get("corrects") or []:
            corrected_by.setdefault(str(corrected), []).append(str(e.get("event_hash")))
    return [{**e, "corrected_by": corrected_by.get(str(e.get("event_hash")), [])} for e in trail]


def _seqs(trail: list[dict[str, Any]]) -> dict[str, Any]:
    return {str(e.get("event_hash")): e.get("seq") for e in trail}


def _refs(hashes: list[str], seqs: dict[str, Any]) -> str:
    return ", ".join(f"#{seqs[h]}" if h in seqs else _short(h) for h in hashes)


def _correction_note(e: dict[str, Any], seqs: dict[str, Any]) -> str:
    notes = []
    if e.get("corrects"):
        notes.append(f"[yellow]corrects {_refs(e['corrects'], seqs)}[/]")
    if e.get("corrected_by"):
        notes.append(f"[red]corrected by {_refs(e['corrected_by'], seqs)}[/]")
    return "; ".join(notes) or "-"


@app.command("trail")
@handle_client_errors
def trail_command(
    consignment_ref: RefArg,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A consignment's anchored events in order, with their batches and corrections."""
    with connect(directory=directory, node=node) as conn:
        trail = with_corrections(conn.client.trail(consignment_ref))
    if as_json:
        print_json(trail)
        return
    seqs = _seqs(trail)
    table = Table(title=f"consignment {consignment_ref}: {len(trail)} event(s)")
    for column in ("seq", "event time", "type", "biz step", "disposition", "location", "SEZ"):
        table.add_column(column, overflow="fold")
    table.add_column("event hash", no_wrap=True)
    table.add_column("correction", overflow="fold")
    for e in trail:
        table.add_row(
            str(e.get("seq")),
            str(e.get("event_time")),
            str(e.get("event_type")),
            escape(str(e.get("biz_step"))),
            escape(str(e.get("disposition") or "-")),
            escape(str(e.get("location"))),
            escape(str(e.get("sez"))),
            _short(e.get("event_hash")),
            _correction_note(e, seqs),
        )
    console.print(table)


@app.command("verify")
@handle_client_errors
def verify_command(
    consignment_ref: RefArg,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-check the trail's links, sequence and Merkle proofs: exit 0 intact, 1 broken.

    The corrections in the trail are listed (``corrections`` in --json, empty when none).
    """
    with connect(directory=directory, node=node) as conn:
        report = conn.client.verify_trail(consignment_ref)
    fixes = report.get("corrections") or []
    if as_json:
        print_json(report)
    elif report.get("ok"):
        console.print(
            f"trail {escape(consignment_ref)}: [green]OK[/], {report.get('events')} event(s): "
            "links, sequence and Merkle proofs verify",
            highlight=False,
            soft_wrap=True,
        )
    else:
        problems = report.get("problems") or []
        err_console.print(
            f"trail {escape(consignment_ref)}: [red]BROKEN[/] ({len(problems)} problem(s))",
            highlight=False,
            soft_wrap=True,
        )
        for problem in problems:
            err_console.print(f"  - {escape(str(problem))}", highlight=False, soft_wrap=True)
    if not as_json:
        out = console if report.get("ok") else err_console
        for fix in fixes:
            fixed = ", ".join(
                f"event {c['seq']} ({_short(c['event_hash'])})" for c in fix["corrects"]
            )
            out.print(
                f"  correction: event {fix['seq']} ({_short(fix['event_hash'])}) corrects {fixed}",
                highlight=False,
                soft_wrap=True,
            )
    if not report.get("ok"):
        raise typer.Exit(EXIT_NEGATIVE)


def register(main: typer.Typer) -> None:
    """Add ``caravan trace …`` to the main app."""
    main.add_typer(app, name="trace")

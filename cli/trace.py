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
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from chaincode.trace import EVENT_HASH, EVENT_TYPES, MAX_BATCH
from node.epcis import event_hashes
from node.errors import NodeError
from node.services.errors import InvalidArguments

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

__all__ = ["app", "epcis_event_hash", "event_fields", "register"]

app = typer.Typer(help="Consignment traceability events (EPCIS 2.0).", no_args_is_help=True)

MAX_FILE = 256 * 1024 * 1024
#: CBV vocabulary prefixes stripped from bizStep / disposition (URN and web URI forms)
_CBV_PREFIXES = {
    "bizStep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    "disposition": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
}
_UCR_PREFIX = "urn:wco:ucr:"
_UCR_TYPE = re.compile(r"(?:^|[:/#-])ucr\Z", re.IGNORECASE)
#: left out of the hashed event: set by a repository, or the hash itself
_NOT_HASHED = ("eventID", "recordTime")

RefArg = Annotated[
    str, typer.Argument(help="Consignment reference (WCO UCR), e.g. 26KZ0000042-KHG.")
]


def epcis_event_hash(event: dict[str, Any], context: Any = None) -> str:
    """``ni:///sha-256;<hex>?ver=CBV2.0``: the event's CBV 2.0 hash (GS1's algorithm)."""
    return _checked_hashes([event], context)[0]


def _checked_hashes(events: list[dict[str, Any]], context: Any) -> list[str]:
    """CBV 2.0 hashes; an eventID that is a hash must be the computed one."""
    hashes = event_hashes(events, context)
    for n, (event, computed) in enumerate(zip(events, hashes, strict=True), start=1):
        given = event.get("eventID")
        if isinstance(given, str) and EVENT_HASH.match(given) and given != computed:
            raise InvalidArguments(
                f"event {n}: eventID {given} is not the event's CBV 2.0 hash ({computed}): "
                "the event was changed after its hash was taken"
            )
    return hashes


def _vocab(event: dict[str, Any], name: str) -> str | None:
    value = event.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidArguments(f"{name} must be a string")
    for prefix in _CBV_PREFIXES[name]:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _location(event: dict[str, Any]) -> str:
    for name in ("bizLocation", "readPoint"):
        where = event.get(name)
        if isinstance(where, dict) and isinstance(where.get("id"), str) and where["id"]:
            return str(where["id"])
    raise InvalidArguments("the event has no bizLocation.id or readPoint.id")


def _consignment(event: dict[str, Any]) -> str:
    items = event.get("bizTransactionList")
    if not isinstance(items, list) or not items:
        raise InvalidArguments(
            "the event names no consignment (no bizTransactionList): give --consignment-ref"
        )
    refs = [i for i in items if isinstance(i, dict) and isinstance(i.get("bizTransaction"), str)]
    ucr = [i for i in refs if isinstance(i.get("type"), str) and _UCR_TYPE.search(i["type"])]
    chosen = ucr or refs
    if len(chosen) != 1:
        raise InvalidArguments(
            "cannot tell the consignment: give one bizTransaction of type ucr, or --consignment-ref"
        )
    value = str(chosen[0]["bizTransaction"])
    return value[len(_UCR_PREFIX) :] if value.startswith(_UCR_PREFIX) else value


def _event_time(event: dict[str, Any]) -> str:
    when = event.get("eventTime")
    if not isinstance(when, str) or not when:
        raise InvalidArguments("the event has no eventTime")
    if re.search(r"(?:[Zz]|[+-]\d{2}:\d{2})\Z", when) is None:
        offset = event.get("eventTimeZoneOffset")
        if not isinstance(offset, str):
            raise InvalidArguments(
                "eventTime has no UTC offset and there is no eventTimeZoneOffset"
            )
        when += offset
    return when


def event_fields(
    event: Any,
    *,
    consignment_ref: str | None = None,
    aeo_id: str | None = None,
    event_hash: str | None = None,
) -> dict[str, Any]:
    """The ``AnchorEvents`` entry of one EPCIS 2.0 event (the contract checks the values).

    ``event_hash``: the CBV 2.0 hash when already computed for the whole document.
    """
    if not isinstance(event, dict):
        raise InvalidArguments("an event is a JSON object")
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise InvalidArguments(f"type must be one of {', '.join(EVENT_TYPES)} (got {kind!r})")
    biz_step = _vocab(event, "bizStep")
    if biz_step is None:
        raise InvalidArguments("the event has no bizStep")
    fields: dict[str, Any] = {
        "consignment_ref": consignment_ref or _consignment(event),
        "event_type": kind,
        "biz_step": biz_step,
        "event_time": _event_time(event),
        "location": _location(event),
    }
    disposition = _vocab(event, "disposition")
    if disposition is not None:
        fields["disposition"] = disposition
    if aeo_id is not None:
        fields["aeo_id"] = aeo_id
    # last: the fields above are checked before the hash library sees the event
    fields["event_hash"] = event_hash or epcis_event_hash(event)
    return fields


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
    then one AnchorEvents transaction per batch, in document order.
    """
    events, context = _events(file)
    if not events:
        raise fail(f"{file} holds no events")
    entries = []
    seen: dict[str, int] = {}
    for n, event in enumerate(events, start=1):
        try:
            entry = event_fields(
                event, consignment_ref=consignment_ref, aeo_id=aeo_id, event_hash="-"
            )
        except NodeError as exc:
            raise fail(f"event {n}: {exc}") from None
        entries.append(entry)
    try:
        hashes = _checked_hashes(events, context)
    except NodeError as exc:
        raise fail(str(exc)) from None
    for n, (entry, event_hash) in enumerate(zip(entries, hashes, strict=True), start=1):
        entry["event_hash"] = event_hash
        if entry["event_hash"] in seen:
            raise fail(f"event {n} is the same event as event {seen[entry['event_hash']]}")
        seen[entry["event_hash"]] = n
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
                    if batches:  # say what is already on the ledger
                        exc.message = (
                            f"events {start + 1}-{start + len(chunk)}: {exc.message} "
                            f"(events 1-{start} are anchored)"
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
    if as_json:
        print_json({"sez": sez, "anchored": len(entries), "batches": batches})
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


def _short(event_hash: str | None) -> str:
    if not event_hash:
        return "-"
    digest = event_hash.removeprefix("ni:///sha-256;").removesuffix("?ver=CBV2.0")
    return f"{digest[:12]}…"


@app.command("trail")
@handle_client_errors
def trail_command(
    consignment_ref: RefArg,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A consignment's anchored events in order, with their batches."""
    with connect(directory=directory, node=node) as conn:
        trail = conn.client.trail(consignment_ref)
    if as_json:
        print_json(trail)
        return
    table = Table(title=f"consignment {consignment_ref}: {len(trail)} event(s)")
    for column in ("seq", "event time", "type", "biz step", "disposition", "location", "SEZ"):
        table.add_column(column, overflow="fold")
    table.add_column("event hash", no_wrap=True)
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
    """Re-check the trail's links, sequence and Merkle proofs: exit 0 intact, 1 broken."""
    with connect(directory=directory, node=node) as conn:
        report = conn.client.verify_trail(consignment_ref)
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
    if not report.get("ok"):
        raise typer.Exit(EXIT_NEGATIVE)


def register(main: typer.Typer) -> None:
    """Add ``caravan trace …`` to the main app."""
    main.add_typer(app, name="trace")

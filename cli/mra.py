"""`caravan mra propose|sign|suspend|resume|terminate|show|list`: AEO mutual recognition.

``caravan mra propose --dir node --identity kz-customs-admin --file mra.json`` submits
``ProposeMra`` (the file is its argument, docs/chaincode.md); each party's admin then
runs ``mra sign MRA_ID`` (the act defaults to the proposed one). Suspension and
termination are unilateral and need the act that decides them (``--legal-instrument-ref``
with ``--document FILE`` or ``--document-hash``); only the suspending party resumes.
Exit codes: docs/cli.md (0 done, 3 input, 4 refused by the ledger).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ._common import console, fail, print_more
from .client import (
    Connection,
    CursorOpt,
    DirOpt,
    IdentityDirOpt,
    IdentityOpt,
    JsonOpt,
    LimitOpt,
    NodeOpt,
    connect,
    handle_client_errors,
    print_json,
)

__all__ = ["app", "register"]

app = typer.Typer(help="AEO mutual recognition agreements.", no_args_is_help=True)

MAX_FILE = 1024 * 1024
MAX_DOCUMENT = 512 * 1024 * 1024

MraIdArg = Annotated[str, typer.Argument(help="The MRA id, e.g. MRA-KZ-UZ-2026.")]
RefOpt = Annotated[
    str | None,
    typer.Option("--legal-instrument-ref", help="The act deciding this step (its reference)."),
]
DocumentOpt = Annotated[
    Path | None,
    typer.Option("--document", help="The act's text: its SHA-256 is recorded."),
]
DocHashOpt = Annotated[
    str | None,
    typer.Option("--document-hash", help="SHA-256 (hex) of the act's text, instead of --document."),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded with the step).")]


def _document_hash(document: Path | None, document_hash: str | None) -> str | None:
    if document is not None and document_hash is not None:
        raise fail("give --document or --document-hash, not both")
    if document is None:
        return document_hash
    try:
        if document.stat().st_size > MAX_DOCUMENT:
            raise fail(f"{document} is larger than {MAX_DOCUMENT // (1024 * 1024)} MiB")
        digest = hashlib.sha256()
        with document.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    except FileNotFoundError:
        raise fail(f"no such file: {document}") from None
    return digest.hexdigest()


def _act(
    conn: Connection | None,
    mra_id: str,
    ref: str | None,
    document: Path | None,
    document_hash: str | None,
    *,
    default_to_proposed: bool,
) -> dict[str, str]:
    digest = _document_hash(document, document_hash)
    if ref is not None and digest is not None:
        return {"legal_instrument_ref": ref, "document_hash": digest}
    if not default_to_proposed or conn is None:
        raise fail("give the act: --legal-instrument-ref and --document FILE (or --document-hash)")
    proposed = conn.client.get_mra(mra_id)
    return {
        "legal_instrument_ref": ref or str(proposed["legal_instrument_ref"]),
        "document_hash": digest or str(proposed["document_hash"]),
    }


def _done(receipt: dict[str, Any], verb: str, as_json: bool) -> None:
    if as_json:
        print_json(receipt)
        return
    payload = receipt.get("payload") or {}
    console.print(
        f"{verb} [bold]{escape(str(payload.get('mra_id')))}[/]: state {payload.get('state')}; "
        f"tx {receipt['tx_id']} in block {receipt.get('block')}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("propose")
@handle_client_errors
def propose_command(
    file: Annotated[Path, typer.Option("--file", help="JSON: the ProposeMra argument.")],
    directory: DirOpt = None,
    node: NodeOpt = None,
    identity: IdentityOpt = None,
    identity_dir: IdentityDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Propose an MRA (admin of a party): {mra_id, title, parties, recognised_types,
    benefits, effective_from, review_date?, legal_instrument_ref, document_hash}."""
    try:
        if file.stat().st_size > MAX_FILE:
            raise fail(f"{file} is larger than {MAX_FILE // 1024} KiB")
        value = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise fail(f"no such file: {file}") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(f"{file} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise fail(f"{file} must hold one JSON object (the ProposeMra argument)")
    with connect(
        directory=directory,
        node=node,
        identity=identity,
        identity_dir=identity_dir,
        need_identity=True,
    ) as conn:
        _done(conn.client.submit(conn.propose("ProposeMra", value)), "proposed", as_json)


def _step(
    function: str,
    verb: str,
    mra_id: str,
    ref: str | None,
    document: Path | None,
    document_hash: str | None,
    reason: str | None,
    as_json: bool,
    *,
    default_to_proposed: bool = False,
    **where: Any,
) -> None:
    if not default_to_proposed:
        _act(None, mra_id, ref, document, document_hash, default_to_proposed=False)
    with connect(**where, need_identity=True) as conn:
        arg: dict[str, Any] = {
            "mra_id": mra_id,
            **_act(
                conn, mra_id, ref, document, document_hash, default_to_proposed=default_to_proposed
            ),
        }
        if reason is not None:
            arg["reason"] = reason
        _done(conn.client.submit(conn.propose(function, arg)), verb, as_json)


def _step_command(
    name: str, function: str, verb: str, doc: str, *, with_reason: bool, signing: bool = False
) -> None:
    """Register ``caravan mra NAME``: one lifecycle step of an MRA (``function``)."""

    def run(
        mra_id: str,
        reason: str | None,
        ref: str | None,
        document: Path | None,
        document_hash: str | None,
        as_json: bool,
        **where: Any,
    ) -> None:
        _step(
            function,
            verb,
            mra_id,
            ref,
            document,
            document_hash,
            reason,
            as_json,
            default_to_proposed=signing,
            **where,
        )

    if with_reason:

        def command(
            mra_id: MraIdArg,
            reason: ReasonOpt,
            ref: RefOpt = None,
            document: DocumentOpt = None,
            document_hash: DocHashOpt = None,
            directory: DirOpt = None,
            node: NodeOpt = None,
            identity: IdentityOpt = None,
            identity_dir: IdentityDirOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            run(
                mra_id,
                reason,
                ref,
                document,
                document_hash,
                as_json,
                directory=directory,
                node=node,
                identity=identity,
                identity_dir=identity_dir,
            )

    else:

        def command(  # type: ignore[misc]  # the same command without a reason
            mra_id: MraIdArg,
            ref: RefOpt = None,
            document: DocumentOpt = None,
            document_hash: DocHashOpt = None,
            directory: DirOpt = None,
            node: NodeOpt = None,
            identity: IdentityOpt = None,
            identity_dir: IdentityDirOpt = None,
            as_json: JsonOpt = False,
        ) -> None:
            run(
                mra_id,
                None,
                ref,
                document,
                document_hash,
                as_json,
                directory=directory,
                node=node,
                identity=identity,
                identity_dir=identity_dir,
            )

    command.__doc__ = doc
    app.command(name)(handle_client_errors(command))


_step_command(
    "sign",
    "SignMra",
    "signed",
    "Sign an MRA as one party (admin). The act must be the proposed one, which is the "
    "default; giving it checks that you sign the text you mean.",
    with_reason=False,
    signing=True,
)
_step_command(
    "suspend",
    "SuspendMra",
    "suspended",
    "Suspend an MRA in force (any party, unilaterally).",
    with_reason=True,
)
_step_command(
    "resume",
    "ResumeMra",
    "resumed",
    "Resume a suspended MRA (only the party that suspended it).",
    with_reason=False,
)
_step_command(
    "terminate",
    "TerminateMra",
    "terminated",
    "Terminate an MRA for good (any party, unilaterally).",
    with_reason=True,
)


def _show(doc: dict[str, Any]) -> None:
    table = Table(title=f"MRA {doc.get('mra_id')}", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    state = str(doc.get("state_now"))
    colour = "green" if state == "in_force" else "yellow"
    types = doc.get("recognised_types") or {}
    signed = ", ".join(str(s.get("msp_id", s)) for s in doc.get("signatures") or [])
    rows = [
        ("title", escape(str(doc.get("title")))),
        ("state now", f"[{colour}]{escape(state)}[/]"),
        ("parties", escape(", ".join(doc.get("parties") or []))),
        (
            "recognised types",
            escape("; ".join(f"{p}: {', '.join(t)}" for p, t in sorted(types.items()))),
        ),
        ("benefits", escape(", ".join(doc.get("benefits") or []))),
        ("effective from", escape(str(doc.get("effective_from")))),
        ("review date", escape(str(doc.get("review_date") or "-"))),
        ("act", escape(f"{doc.get('legal_instrument_ref')} (SHA-256 {doc.get('document_hash')})")),
        ("signed by", escape(signed or "-")),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    steps = Table(title="steps")
    for column in ("action", "by", "at", "act", "reason", "tx"):
        steps.add_column(column, overflow="fold")
    for s in doc.get("steps") or []:
        by = s.get("by") or {}
        steps.add_row(
            str(s.get("action")),
            escape(str(by.get("msp_id", by))),
            str(s.get("at")),
            escape(str(s.get("legal_instrument_ref"))),
            escape(str(s.get("reason") or "-")),
            str(s.get("tx_id")),
        )
    console.print(steps)


@app.command("show")
@handle_client_errors
def show_command(
    mra_id: MraIdArg,
    at: Annotated[
        str | None, typer.Option("--at", help="Only the state at this RFC 3339 time.")
    ] = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An MRA with its parties, act, signatures, suspensions and steps (or its state at t)."""
    with connect(directory=directory, node=node) as conn:
        if at is not None:
            state = conn.client.mra_state(mra_id, at)
            if as_json:
                print_json(state)
            else:
                console.print(
                    f"{mra_id} at {state.get('at', at)}: [bold]{state.get('state')}[/]",
                    highlight=False,
                    soft_wrap=True,
                )
            return
        doc = conn.client.get_mra(mra_id)
    if as_json:
        print_json(doc)
    else:
        _show(doc)


@app.command("list")
@handle_client_errors
def list_command(
    party: Annotated[str | None, typer.Option("--party", help="A party's MSP id.")] = None,
    state: Annotated[
        str | None,
        typer.Option("--state", help="negotiating, signed, in_force, suspended or terminated."),
    ] = None,
    limit: LimitOpt = 100,
    cursor: CursorOpt = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """MRAs from the node's index, in mra_id order."""
    with connect(directory=directory, node=node) as conn:
        page = conn.client.list_mras(limit=limit, cursor=cursor, party=party, state=state)
    if as_json:
        print_json(page)
        return
    items = page.get("items") or []
    table = Table(title=f"{len(items)} MRA(s)")
    for column in ("mra id", "title", "parties", "state", "effective from"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(
            escape(str(item.get("mra_id"))),
            escape(str(item.get("title"))),
            escape(", ".join(item.get("parties") or [])),
            str(item.get("state")),
            str(item.get("effective_from")),
        )
    console.print(table)
    print_more(page)


def register(main: typer.Typer) -> None:
    """Add ``caravan mra …`` to the main app."""
    main.add_typer(app, name="mra")

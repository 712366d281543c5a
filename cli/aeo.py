"""`caravan aeo issue|show|list|amend|suspend|reinstate|revoke|import`: AEO certificates.

``caravan aeo issue --dir node --identity kz-customs-officer --record aeo.json`` seals the
record with the organisation's e-seal (timestamped by its TSA when it has one) and
submits ``IssueAeo`` signed by the identity. ``aeo suspend KZ-AEO-2026-000001 --reason
"audit findings"`` writes the next version of the current record. ``aeo import
register.csv`` validates every row with the contract's own rules first, then issues the
valid rows in batches with a progress bar and reports every rejected row with its reason.
Exit codes: docs/cli.md (0 done, 1 some rows rejected by ``import``, 3 input, 4 refused).
"""

from __future__ import annotations

import copy
import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from chaincode.aeo import parse_record
from chaincode.canonical import CanonicalJsonError, canonical_json
from chaincode.context import Fields
from chaincode.errors import ContractError
from chaincode.timeutil import format_time
from node.errors import NodeError
from node.services.errors import InvalidArguments
from trust_services.cades import CadesSigner, Level
from trust_services.errors import TrustServiceError

from ._common import EXIT_ERROR, console, err_console, fail, print_more
from .client import (
    EXIT_NEGATIVE,
    EXIT_REFUSED,
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
    seal_with,
)

__all__ = ["app", "register"]

app = typer.Typer(help="AEO certificates: issue, change, look up, import.", no_args_is_help=True)

MAX_FILE = 256 * 1024 * 1024
MAX_RECORD_FILE = 1024 * 1024
#: CSV columns of ``aeo import`` (docs/cli.md); ``issuer`` comes from the identity
CSV_REQUIRED = (
    "aeo_id",
    "holder_tin",
    "holder_name",
    "holder_street",
    "holder_city",
    "holder_postcode",
    "holder_country",
    "aeo_type",
    "supply_chain_roles",
    "validated_at",
    "valid_until",
    "mra_sharing_consent",
)
CSV_OPTIONAL = ("next_reassessment", "status", "status_reason", "status_effective_at")
_TRUE = {"true", "yes", "y", "1"}
_FALSE = {"false", "no", "n", "0"}

AeoIdArg = Annotated[str, typer.Argument(help="Authorisation number, e.g. KZ-AEO-2026-000123.")]
TimestampOpt = Annotated[
    bool,
    typer.Option(
        "--timestamp/--no-timestamp",
        help="Timestamp the seal with the organisation's TSA (CAdES B-T) when it has one.",
    ),
]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in status_reason).")]
EffectiveOpt = Annotated[
    str | None,
    typer.Option("--effective-at", help="When it takes effect, RFC 3339 (default: now)."),
]


# --------------------------------------------------------------------------- sealing
class Sealer:
    """Seals records for the identity's organisation: with its e-seal key when the key
    store here has it (optionally timestamped by its TSA), else on the node
    (``POST /v1/orgs/{org}/seal``)."""

    def __init__(self, conn: Connection, *, timestamp: bool) -> None:
        self.conn = conn
        self.timestamp = timestamp
        self.org = conn.require_signer().msp_id
        self.local: CadesSigner | None = None
        self.level = Level.B_B
        pki = conn.pki
        if pki is None or pki.org != self.org:
            return
        timestamper = None
        if timestamp:
            try:
                pki.key("tsa")
            except TrustServiceError:
                pass  # no TSA key here: the seal is not timestamped
            else:
                from .signing import org_timestamper

                timestamper = org_timestamper(pki, None)
                self.level = Level.B_T
        try:
            self.local = CadesSigner.for_org(pki, timestamper=timestamper)
        except TrustServiceError:  # no e-seal key here: the node seals
            self.local = None

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        """The argument of an AEO write: ``{record, record_hash, seal}``."""
        if self.local is not None:
            sealed = seal_with(self.local, record, self.level)
        else:
            level = Level.B_T if self.timestamp else Level.B_B
            sealed = self.conn.client.seal_record(self.org, record, level)
        return {"record": record, "record_hash": sealed["record_hash"], "seal": sealed["seal"]}


# --------------------------------------------------------------------------- input
def _read_json(path: Path, what: str, limit: int = MAX_RECORD_FILE) -> Any:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise fail(f"no such {what}: {path}") from None
    if size > limit:
        raise fail(f"{what} {path} is larger than {limit // 1024} KiB")
    try:
        return json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise fail(f"{what} {path} is not JSON: {exc}") from None


def _record_file(path: Path) -> dict[str, Any]:
    value = _read_json(path, "record file")
    if isinstance(value, dict) and isinstance(value.get("record"), dict):
        value = value["record"]
    if not isinstance(value, dict):
        raise fail(f"record file {path} must hold one AEO record (a JSON object)")
    return value


def _check_record(record: dict[str, Any]) -> None:
    """The contract's own validation of a record (400 reasons), before anything is sealed."""
    try:
        canonical_json(record)
        parse_record(Fields(record, "record"))
    except ContractError as exc:
        raise InvalidArguments(str(exc)) from None
    except CanonicalJsonError as exc:
        raise InvalidArguments(f"the record is not canonical JSON: {exc}") from None


def _now(conn: Connection) -> str:
    return format_time(conn.client.clock() // 1000)


def _write(conn: Connection, function: str, record: dict[str, Any], timestamp: bool) -> Any:
    _check_record(record)
    arg = Sealer(conn, timestamp=timestamp)(record)
    return conn.client.submit(conn.propose(function, arg))


def _done(receipt: dict[str, Any], verb: str, as_json: bool) -> None:
    if as_json:
        print_json(receipt)
        return
    payload = receipt.get("payload") or {}
    console.print(
        f"{verb} [bold]{escape(str(payload.get('aeo_id')))}[/]: version "
        f"{payload.get('version')}, status {payload.get('status')}; tx {receipt['tx_id']} "
        f"in block {receipt.get('block')}",
        highlight=False,
        soft_wrap=True,
    )


# --------------------------------------------------------------------------- commands
RecordOpt = Annotated[
    Path, typer.Option("--record", help="JSON file holding the whole AEO record to seal.")
]


def _record_command(name: str, function: str, verb: str, doc: str) -> None:
    """Register ``caravan aeo NAME``: seal a whole record from a file and submit it."""

    def command(
        record: RecordOpt,
        directory: DirOpt = None,
        node: NodeOpt = None,
        identity: IdentityOpt = None,
        identity_dir: IdentityDirOpt = None,
        timestamp: TimestampOpt = True,
        as_json: JsonOpt = False,
    ) -> None:
        value = _record_file(record)
        with connect(
            directory=directory,
            node=node,
            identity=identity,
            identity_dir=identity_dir,
            need_identity=True,
        ) as conn:
            _done(_write(conn, function, value, timestamp), verb, as_json)

    command.__doc__ = doc
    app.command(name)(handle_client_errors(command))


_record_command(
    "issue",
    "IssueAeo",
    "issued",
    "Issue an AEO certificate: seal the record and submit IssueAeo as the identity.",
)
_record_command(
    "amend",
    "AmendAeo",
    "amended",
    "Amend an AEO certificate (same status): seal the new record and submit AmendAeo.",
)


def _status_change(
    conn: Connection,
    aeo_id: str,
    function: str,
    status: str,
    reason: str | None,
    effective_at: str | None,
    timestamp: bool,
) -> Any:
    current = conn.client.get_aeo(aeo_id)
    if current.get("redacted"):
        raise InvalidArguments(
            f"{conn.require_signer().msp_id} sees a redacted record of {aeo_id}: only its "
            "issuer can change it"
        )
    record = copy.deepcopy(current["record"])
    record["status"] = status
    record["status_reason"] = reason
    record["status_effective_at"] = effective_at or _now(conn)
    return _write(conn, function, record, timestamp)


def _status(
    aeo_id: str,
    function: str,
    status: str,
    verb: str,
    reason: str | None,
    effective_at: str | None,
    timestamp: bool,
    as_json: bool,
    **where: Any,
) -> None:
    with connect(**where, need_identity=True) as conn:
        receipt = _status_change(conn, aeo_id, function, status, reason, effective_at, timestamp)
        _done(receipt, verb, as_json)


OptionalReasonOpt = Annotated[
    str | None, typer.Option("--reason", help="Why (recorded in status_reason).")
]


def _status_command(
    name: str, function: str, status: str, verb: str, doc: str, *, reason_required: bool
) -> None:
    """Register ``caravan aeo NAME``: a status change of an AEO certificate."""

    if reason_required:

        def command(
            aeo_id: AeoIdArg,
            reason: ReasonOpt,
            effective_at: EffectiveOpt = None,
            directory: DirOpt = None,
            node: NodeOpt = None,
            identity: IdentityOpt = None,
            identity_dir: IdentityDirOpt = None,
            timestamp: TimestampOpt = True,
            as_json: JsonOpt = False,
        ) -> None:
            _status(
                aeo_id,
                function,
                status,
                verb,
                reason,
                effective_at,
                timestamp,
                as_json,
                directory=directory,
                node=node,
                identity=identity,
                identity_dir=identity_dir,
            )

    else:

        def command(  # type: ignore[misc]  # the same command with an optional reason
            aeo_id: AeoIdArg,
            reason: OptionalReasonOpt = None,
            effective_at: EffectiveOpt = None,
            directory: DirOpt = None,
            node: NodeOpt = None,
            identity: IdentityOpt = None,
            identity_dir: IdentityDirOpt = None,
            timestamp: TimestampOpt = True,
            as_json: JsonOpt = False,
        ) -> None:
            _status(
                aeo_id,
                function,
                status,
                verb,
                reason,
                effective_at,
                timestamp,
                as_json,
                directory=directory,
                node=node,
                identity=identity,
                identity_dir=identity_dir,
            )

    command.__doc__ = doc
    app.command(name)(handle_client_errors(command))


_status_command(
    "suspend",
    "SuspendAeo",
    "suspended",
    "suspended",
    "Suspend a valid AEO certificate (SuspendAeo with the reason).",
    reason_required=True,
)
_status_command(
    "reinstate",
    "ReinstateAeo",
    "valid",
    "reinstated",
    "Reinstate a suspended AEO certificate (ReinstateAeo).",
    reason_required=False,
)
_status_command(
    "revoke",
    "RevokeAeo",
    "revoked",
    "revoked",
    "Revoke an AEO certificate for good (RevokeAeo with the reason).",
    reason_required=True,
)


# --------------------------------------------------------------------------- reads
def _address(holder: dict[str, Any]) -> str:
    address = holder.get("address")
    if not isinstance(address, dict):
        return "(redacted)"
    parts = (address.get("street"), address.get("postcode"), address.get("city"))
    return ", ".join(str(p) for p in parts if p) + f" ({address.get('country')})"


def _show_view(view: dict[str, Any]) -> None:
    record = view.get("record") or {}
    holder = record.get("holder") or {}
    issuer = record.get("issuer") or {}
    table = Table(title=f"AEO certificate {view.get('aeo_id')}", show_header=False)
    table.add_column("field", style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    status = str(view.get("status_now", record.get("status")))
    colour = "green" if status == "valid" else "red"
    rows = [
        ("status now", f"[{colour}]{escape(status)}[/]"),
        ("version", f"{view.get('version')} ({view.get('action')})"),
        ("holder", escape(str(holder.get("name")))),
        ("TIN", escape(str(holder.get("tin", "(redacted)")))),
        ("address", escape(_address(holder))),
        ("issuer", escape(f"{issuer.get('administration')} ({issuer.get('country')})")),
        ("type", escape(str(record.get("aeo_type")))),
        ("roles", escape(", ".join(record.get("supply_chain_roles") or []))),
        ("validated", escape(str(record.get("validated_at")))),
        ("valid until", escape(str(record.get("valid_until")))),
        ("next reassessment", escape(str(record.get("next_reassessment") or "-"))),
        ("MRA sharing consent", "yes" if record.get("mra_sharing_consent") else "no"),
        ("status reason", escape(str(record.get("status_reason") or "-"))),
        ("status effective", escape(str(record.get("status_effective_at")))),
        ("record SHA-256", escape(str(view.get("record_hash")))),
        ("sealed by", escape(str(view.get("sealed_by")))),
        ("written", escape(f"{view.get('at')} by {(view.get('by') or {}).get('msp_id')}")),
        ("tx", escape(str(view.get("tx_id")))),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if view.get("redacted"):
        console.print(
            f"redacted for this reader: {', '.join(view['redacted'])} (shown to the issuer and "
            "its MRA partners with the holder's consent)",
            highlight=False,
        )


@app.command("show")
@handle_client_errors
def show_command(
    aeo_id: AeoIdArg,
    history: Annotated[bool, typer.Option("--history", help="Every version.")] = False,
    at: Annotated[
        str | None, typer.Option("--at", help="Only the status at this RFC 3339 time.")
    ] = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    identity: IdentityOpt = None,
    identity_dir: IdentityDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """One AEO certificate as this reader may see it (holder TIN and address only for the
    issuer and its MRA partners: give --identity to read as one)."""
    if history and at is not None:
        raise fail("give --history or --at, not both")
    with connect(
        directory=directory, node=node, identity=identity, identity_dir=identity_dir
    ) as conn:
        if at is not None:
            status = conn.client.aeo_status(aeo_id, at)
            if as_json:
                print_json(status)
            else:
                console.print(
                    f"{aeo_id} at {status.get('at')}: [bold]{status.get('status')}[/] "
                    f"(version {status.get('version')}, tx {status.get('tx_id')})",
                    highlight=False,
                    soft_wrap=True,
                )
            return
        if history:
            versions = conn.client.aeo_history(aeo_id)
            if as_json:
                print_json(versions)
                return
            table = Table(title=f"{aeo_id}: {len(versions)} version(s)")
            for column in ("version", "action", "status", "effective", "reason", "at", "tx"):
                table.add_column(column, overflow="fold")
            for v in versions:
                record = v.get("record") or {}
                table.add_row(
                    str(v.get("version")),
                    str(v.get("action")),
                    str(record.get("status")),
                    str(v.get("effective_at")),
                    escape(str(record.get("status_reason") or "-")),
                    str(v.get("at")),
                    str(v.get("tx_id")),
                )
            console.print(table)
            return
        view = conn.client.get_aeo(aeo_id)
        if as_json:
            print_json(view)
        else:
            _show_view(view)


class AeoStatus(StrEnum):
    valid = "valid"
    suspended = "suspended"
    revoked = "revoked"
    expired = "expired"


@app.command("list")
@handle_client_errors
def list_command(
    country: Annotated[str | None, typer.Option("--country", help="Issuing country.")] = None,
    status: Annotated[AeoStatus | None, typer.Option("--status", help="Status now.")] = None,
    holder: Annotated[
        str | None, typer.Option("--holder", help="Holder name contains (any case).")
    ] = None,
    tin: Annotated[str | None, typer.Option("--tin", help="Holder TIN (issuer/partners).")] = None,
    issuer: Annotated[str | None, typer.Option("--issuer", help="Issuing MSP id.")] = None,
    limit: LimitOpt = 100,
    cursor: CursorOpt = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    identity: IdentityOpt = None,
    identity_dir: IdentityDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """AEO certificates from the node's index, in aeo_id order, one page at a time."""
    with connect(
        directory=directory, node=node, identity=identity, identity_dir=identity_dir
    ) as conn:
        page = conn.client.list_aeos(
            limit=limit,
            cursor=cursor,
            country=country,
            status=None if status is None else status.value,
            holder=holder,
            tin=tin,
            issuer=issuer,
        )
    if as_json:
        print_json(page)
        return
    items = page.get("items") or []
    table = Table(title=f"{len(items)} AEO certificate(s)")
    for column in ("aeo id", "status", "type", "holder", "TIN", "issuer", "valid until"):
        table.add_column(column, overflow="fold")
    for item in items:
        colour = "green" if item.get("status") == "valid" else "red"
        table.add_row(
            escape(str(item.get("aeo_id"))),
            f"[{colour}]{escape(str(item.get('status')))}[/]",
            str(item.get("aeo_type")),
            escape(str(item.get("holder_name"))),
            escape(str(item.get("holder_tin") or "(redacted)")),
            escape(str(item.get("issuer"))),
            str(item.get("valid_until")),
        )
    console.print(table)
    print_more(page)


# --------------------------------------------------------------------------- import
@dataclass
class Row:
    row: int
    aeo_id: str | None
    record: dict[str, Any] | None = None
    error: str | None = None


@dataclass
class ImportReport:
    file: str
    rows: int = 0
    issued: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "rows": self.rows,
            "issued_count": len(self.issued),
            "rejected_count": len(self.rejected),
            "issued": self.issued,
            "rejected": sorted(self.rejected, key=lambda r: r["row"]),
        }


class ImportFormat(StrEnum):
    csv = "csv"
    json = "json"


def _cell(line: dict[str, Any], name: str) -> str | None:
    value = line.get(name)
    if value is None:
        return None
    value = str(value).strip()
    return value or None


def _csv_record(line: dict[str, Any], issuer: str) -> dict[str, Any]:
    missing = [c for c in CSV_REQUIRED if _cell(line, c) is None]
    if missing:
        raise InvalidArguments(f"missing {', '.join(missing)}")
    consent = str(_cell(line, "mra_sharing_consent")).lower()
    if consent not in _TRUE | _FALSE:
        raise InvalidArguments(
            f"mra_sharing_consent must be true or false (got {line['mra_sharing_consent']!r})"
        )
    aeo_id = str(_cell(line, "aeo_id"))
    roles = [r.strip() for r in str(_cell(line, "supply_chain_roles")).split(";") if r.strip()]
    validated_at = _cell(line, "validated_at")
    return {
        "aeo_id": aeo_id,
        "holder": {
            "tin": _cell(line, "holder_tin"),
            "name": _cell(line, "holder_name"),
            "address": {
                "street": _cell(line, "holder_street"),
                "city": _cell(line, "holder_city"),
                "postcode": _cell(line, "holder_postcode"),
                "country": _cell(line, "holder_country"),
            },
        },
        "issuer": {"administration": issuer, "country": aeo_id[:2]},
        "aeo_type": _cell(line, "aeo_type"),
        "supply_chain_roles": roles,
        "status": _cell(line, "status") or "valid",
        "status_reason": _cell(line, "status_reason"),
        "status_effective_at": _cell(line, "status_effective_at") or validated_at,
        "validated_at": validated_at,
        "valid_until": _cell(line, "valid_until"),
        "next_reassessment": _cell(line, "next_reassessment"),
        "mra_sharing_consent": consent in _TRUE,
    }


def _json_record(value: Any, issuer: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidArguments("each record is a JSON object")
    record = dict(value)
    if "issuer" not in record and isinstance(record.get("aeo_id"), str):
        record["issuer"] = {"administration": issuer, "country": record["aeo_id"][:2]}
    return record


def _rows(path: Path, fmt: ImportFormat, issuer: str) -> Iterator[Row]:
    """Every row of the file as a record, or with the reason it is not one."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise fail(f"no such file: {path}") from None
    if size > MAX_FILE:
        raise fail(f"{path} is larger than {MAX_FILE // (1024 * 1024)} MiB")
    data = path.read_bytes()
    if fmt is ImportFormat.json:
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise fail(f"{path} is not JSON: {exc}") from None
        if isinstance(value, dict) and isinstance(value.get("records"), list):
            value = value["records"]
        if not isinstance(value, list):
            raise fail(f'{path} must hold a JSON array of AEO records (or {{"records": [...]}})')
        for n, item in enumerate(value, start=1):
            aeo_id = item.get("aeo_id") if isinstance(item, dict) else None
            try:
                yield Row(
                    n, aeo_id if isinstance(aeo_id, str) else None, _json_record(item, issuer)
                )
            except NodeError as exc:
                yield Row(n, None, error=str(exc))
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise fail(f"{path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = reader.fieldnames or []
    missing = [c for c in CSV_REQUIRED if c not in header]
    if missing:
        raise fail(f"{path}: the CSV header lacks {', '.join(missing)}")
    unknown = [c for c in header if c not in CSV_REQUIRED + CSV_OPTIONAL]
    if unknown:
        raise fail(f"{path}: unknown CSV column(s) {', '.join(unknown)}")
    try:
        for n, line in enumerate(reader, start=1):
            aeo_id = _cell(line, "aeo_id")
            if None in line:
                yield Row(n, aeo_id, error=f"line {reader.line_num}: more cells than columns")
                continue
            try:
                yield Row(n, aeo_id, _csv_record(line, issuer))
            except NodeError as exc:
                yield Row(n, aeo_id, error=f"line {reader.line_num}: {exc}")
    except csv.Error as exc:
        raise fail(f"{path}: line {reader.line_num}: {exc}") from None


def _validate(rows: list[Row]) -> None:
    seen: dict[str, int] = {}
    for row in rows:
        if row.error is not None or row.record is None:
            continue
        try:
            _check_record(row.record)
            if row.record.get("status") != "valid":
                raise InvalidArguments("a new certificate is issued with status valid")
        except NodeError as exc:
            row.error = str(exc)
            continue
        aeo_id = str(row.record["aeo_id"])
        if aeo_id in seen:
            row.error = f"{aeo_id} is also in row {seen[aeo_id]}"
        else:
            seen[aeo_id] = row.row


@app.command("import")
@handle_client_errors
def import_command(
    file: Annotated[Path, typer.Argument(help="The register: CSV (with a header) or JSON.")],
    fmt: Annotated[
        ImportFormat | None,
        typer.Option("--format", help="csv or json (default: from the file name)."),
    ] = None,
    atomic: Annotated[
        bool,
        typer.Option("--atomic", help="Submit nothing if any row is invalid."),
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=1000, help="Proposals per submission.")
    ] = 500,
    report: Annotated[
        Path | None, typer.Option("--report", help="Write the full JSON report here.")
    ] = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    identity: IdentityOpt = None,
    identity_dir: IdentityDirOpt = None,
    timestamp: TimestampOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Issue every AEO certificate of a national register.

    Every row is validated first with the contract's rules (a row is issued whole or
    rejected with its reason); the valid rows are sealed and submitted in batches, each
    row its own transaction. --atomic submits nothing when any row is invalid.
    """
    if fmt is None:
        suffix = file.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise fail(f"cannot tell the format of {file}: give --format csv or json")
        fmt = ImportFormat(suffix[1:])
    with connect(
        directory=directory,
        node=node,
        identity=identity,
        identity_dir=identity_dir,
        need_identity=True,
    ) as conn:
        issuer = conn.require_signer().msp_id
        rows = list(_rows(file, fmt, issuer))
        if not rows:
            raise fail(f"{file} holds no rows")
        _validate(rows)
        result = ImportReport(str(file), len(rows))
        invalid = [r for r in rows if r.error is not None]
        for r in invalid:
            result.rejected.append(
                {"row": r.row, "aeo_id": r.aeo_id, "stage": "validation", "reason": r.error}
            )
        valid = [r for r in rows if r.error is None]
        if atomic and invalid:
            _finish(result, report, as_json)
            raise fail(
                f"{len(invalid)} of {len(rows)} row(s) invalid (first: row {invalid[0].row}: "
                f"{invalid[0].error}); --atomic: nothing submitted"
            )
        if valid:
            _submit_rows(conn, valid, batch_size, timestamp, result, quiet=as_json)
    _finish(result, report, as_json)
    if not result.issued:
        refused = any(r["stage"] == "ledger" for r in result.rejected)
        raise typer.Exit(EXIT_REFUSED if refused else EXIT_ERROR)
    if result.rejected:
        raise typer.Exit(EXIT_NEGATIVE)


def _submit_rows(
    conn: Connection,
    rows: list[Row],
    batch_size: int,
    timestamp: bool,
    result: ImportReport,
    *,
    quiet: bool,
) -> None:
    sealer = Sealer(conn, timestamp=timestamp)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err_console, transient=True, disable=quiet) as progress:
        task = progress.add_task("issuing", total=len(rows))
        for start in range(0, len(rows), batch_size):
            batch = rows[start : start + batch_size]
            proposals = []
            for row in batch:
                assert row.record is not None
                proposals.append(conn.propose("IssueAeo", sealer(row.record)))
            receipts = conn.client.submit_many(proposals)
            for row, receipt in zip(batch, receipts, strict=True):
                if receipt.get("code") == "VALID":
                    result.issued.append(
                        {
                            "row": row.row,
                            "aeo_id": row.aeo_id,
                            "tx_id": receipt.get("tx_id"),
                            "block": receipt.get("block"),
                        }
                    )
                else:
                    result.rejected.append(
                        {
                            "row": row.row,
                            "aeo_id": row.aeo_id,
                            "stage": "ledger",
                            "reason": receipt.get("message"),
                            "status": receipt.get("status"),
                            "code": receipt.get("code"),
                            "tx_id": receipt.get("tx_id"),
                        }
                    )
            progress.advance(task, len(batch))


#: rejected rows listed on the terminal (all of them are in --report and --json)
SHOWN_REJECTED = 20


def _finish(result: ImportReport, report: Path | None, as_json: bool) -> None:
    summary = result.as_json()
    if report is not None:
        try:
            report.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
        except OSError as exc:
            raise fail(f"cannot write the report {report}: {exc.strerror}") from None
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{result.file}: {result.rows} row(s), [green]{len(result.issued)} issued[/], "
        f"[red]{len(result.rejected)} rejected[/]",
        highlight=False,
        soft_wrap=True,
    )
    if result.rejected:
        table = Table(title="rejected rows")
        for column in ("row", "aeo id", "stage", "reason"):
            table.add_column(column, overflow="fold")
        for r in summary["rejected"][:SHOWN_REJECTED]:
            table.add_row(str(r["row"]), escape(str(r["aeo_id"])), r["stage"], escape(r["reason"]))
        console.print(table)
        more = len(result.rejected) - SHOWN_REJECTED
        if more > 0:
            console.print(f"… and {more} more (--report FILE or --json lists every row)")
    if report is not None:
        console.print(f"report: {report}", highlight=False)


def register(main: typer.Typer) -> None:
    """Add ``caravan aeo …`` to the main app."""
    main.add_typer(app, name="aeo")

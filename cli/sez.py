"""`caravan sez register|show|list`: special economic zones and their accredited operators.

``caravan sez register KZ-KHORGOS --name "Khorgos - Eastern Gate" --operator kz-khorgos
--dir node --identity kz-customs-admin`` accredits the wallet identity ``kz-khorgos`` as
an operator of the zone: ``RegisterSezOperator`` signed by an admin of the zone's country
(the code's prefix, ``KZ-…`` → KZ), which registers the zone with its first operator.
``sez show KZ-KHORGOS`` prints the zone and its operators (``GetSez``); ``sez list`` the
zones of the ledger (from the node's index; ``GET /v1/sez`` with ``--node``). Exit
codes: docs/cli.md (0 done, 3 input or unknown zone, 4 refused: not an admin, another
country's administration, already an operator).

The operator is named by its certificate's subject (RFC 4514, as ``cryptography`` prints
it, which is what the contract compares with the anchoring identity's subject): taken from
a wallet identity (``--operator NAME``), a certificate file (``--operator-cert FILE``) or
given as text (``--subject``). For the first two the certificate must be one the zone's
operator can anchor with: role ``sez-operator`` and ``sez`` = the zone in its attribute
extension (OID 1.2.3.4.5.6.7.8.1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from rich.markup import escape
from rich.table import Table

from chaincode.errors import ContractError
from chaincode.identity import certificate_attributes
from node.errors import NodeError
from node.services.errors import InvalidArguments
from node.wallet import Wallet

from ._common import console, fail, print_more, read_input
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

__all__ = ["app", "operator_subject", "register"]

app = typer.Typer(
    help="Special economic zones: accredit operators, look zones up.", no_args_is_help=True
)

MAX_CERT_FILE = 64 * 1024

SezArg = Annotated[str, typer.Argument(help="The zone's code, e.g. KZ-KHORGOS.")]


# --------------------------------------------------------------------------- operator
def operator_subject(cert: x509.Certificate, sez: str, what: str) -> str:
    """The certificate's subject (RFC 4514), when it is an operator identity of ``sez``."""
    try:
        subject, attrs = certificate_attributes(cert.public_bytes(Encoding.DER))
    except ContractError as exc:
        raise InvalidArguments(f"{what}: {exc}") from None
    role, zone = attrs.get("role"), attrs.get("sez")
    if role != "sez-operator" or zone != sez:
        have = f"role {role}" if role else "no role"
        if zone:
            have += f", zone {zone}"
        raise InvalidArguments(
            f"{what} is not an operator identity of {sez} ({have}): issue one with "
            f"'caravan node identity add --role sez-operator --sez {sez}'"
        )
    return subject


def _load_certificate(path: Path) -> x509.Certificate:
    data = read_input(path, "certificate file", MAX_CERT_FILE)
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise fail(f"{path} is not an X.509 certificate (PEM or DER)") from None


def _subject(
    sez: str,
    operator: str | None,
    operator_cert: Path | None,
    subject: str | None,
    keys: Path | None,
) -> str:
    given = [o for o, v in (("--operator", operator), ("--operator-cert", operator_cert),
                            ("--subject", subject)) if v is not None]  # fmt: skip
    if len(given) != 1:
        raise fail("name the operator with one of --operator, --operator-cert or --subject")
    if operator is not None:
        if keys is None:
            raise fail("--operator needs --dir or --identity-dir (the wallet holding it)")
        entry = Wallet(keys / "wallet").get(operator)
        return operator_subject(entry.certificate, sez, f"identity {operator}")
    if operator_cert is not None:
        return operator_subject(_load_certificate(operator_cert), sez, str(operator_cert))
    assert subject is not None
    text = subject.strip()
    if not text:
        raise fail("--subject must be the operator certificate's subject, e.g. CN=…,O=…,C=KZ")
    return text


def _zone_name(conn: Connection, sez: str, name: str | None) -> str:
    """``--name``, else the registered zone's (the contract keeps the first name)."""
    if name is not None:
        if not name.strip():
            raise fail("--name must not be empty")
        return name
    try:
        return str(conn.client.get_sez(sez)["name"])
    except NodeError as exc:  # 404 over HTTP and here alike
        if exc.status != 404:
            raise
    raise fail(f"SEZ {sez} is not registered yet: give its --name")


# --------------------------------------------------------------------------- commands
@app.command("register")
@handle_client_errors
def register_command(
    sez: SezArg,
    name: Annotated[
        str | None,
        typer.Option("--name", help="The zone's name (needed when it is not registered yet)."),
    ] = None,
    operator: Annotated[
        str | None,
        typer.Option("--operator", help="Wallet identity of the operator (role sez-operator)."),
    ] = None,
    operator_cert: Annotated[
        Path | None,
        typer.Option("--operator-cert", help="The operator's certificate (PEM or DER)."),
    ] = None,
    subject: Annotated[
        str | None,
        typer.Option("--subject", help="The operator certificate's subject, RFC 4514 text."),
    ] = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    identity: IdentityOpt = None,
    identity_dir: IdentityDirOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accredit an operator of a zone (RegisterSezOperator, by an admin of its country)."""
    operator_subject_text = _subject(
        sez, operator, operator_cert, subject, identity_dir or directory
    )
    with connect(
        directory=directory,
        node=node,
        identity=identity,
        identity_dir=identity_dir,
        need_identity=True,
    ) as conn:
        arg = {
            "sez": sez,
            "name": _zone_name(conn, sez, name),
            "operator_subject": operator_subject_text,
        }
        receipt = conn.client.submit(conn.propose("RegisterSezOperator", arg))
    if as_json:
        print_json(receipt)
        return
    zone = receipt.get("payload") or {}
    console.print(
        f"registered [bold]{escape(operator_subject_text)}[/] as an operator of "
        f"{escape(sez)} ({escape(str(zone.get('name')))}, accredited by "
        f"{escape(str(zone.get('msp_id')))}): {len(zone.get('operators') or [])} operator(s); "
        f"tx {receipt.get('tx_id')} in block {receipt.get('block')}",
        highlight=False,
        soft_wrap=True,
    )


@app.command("show")
@handle_client_errors
def show_command(
    sez: SezArg,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A zone, the administration that accredits its operators, and the operators."""
    with connect(directory=directory, node=node) as conn:
        zone = conn.client.get_sez(sez)
    if as_json:
        print_json(zone)
        return
    operators = zone.get("operators") or []
    console.print(
        f"SEZ [bold]{escape(str(zone.get('sez')))}[/]: {escape(str(zone.get('name')))} "
        f"({escape(str(zone.get('country')))}), operators accredited by "
        f"{escape(str(zone.get('msp_id')))}",
        highlight=False,
        soft_wrap=True,
    )
    table = Table(title=f"{len(operators)} operator(s)")
    for column in ("subject", "registered", "by", "tx"):
        table.add_column(column, overflow="fold")
    for op in operators:
        step = op.get("registered") or {}
        table.add_row(
            escape(str(op.get("subject"))),
            escape(str(step.get("at"))),
            escape(str((step.get("by") or {}).get("msp_id"))),
            escape(str(step.get("tx_id"))),
        )
    console.print(table)


@app.command("list")
@handle_client_errors
def list_command(
    limit: LimitOpt = 100,
    cursor: CursorOpt = None,
    directory: DirOpt = None,
    node: NodeOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The zones registered on the ledger, by code (from the node's index)."""
    with connect(directory=directory, node=node) as conn:
        page = conn.client.list_sezs(limit=limit, cursor=cursor)
    if as_json:
        print_json(page)
        return
    items = page.get("items") or []
    table = Table(title=f"{len(items)} zone(s)")
    for column in ("SEZ", "country", "accredited by", "name", "operators", "block"):
        table.add_column(column, overflow="fold")
    for z in items:
        table.add_row(
            escape(str(z.get("sez"))),
            escape(str(z.get("country"))),
            escape(str(z.get("msp_id"))),
            escape(str(z.get("name"))),
            str(z.get("operators")),
            str(z.get("block")),
        )
    console.print(table)
    print_more(page)


def register(main: typer.Typer) -> None:
    """Add ``caravan sez …`` to the main app."""
    main.add_typer(app, name="sez")

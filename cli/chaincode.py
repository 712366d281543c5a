"""`caravan chaincode serve|package`: the Fabric chaincode server and its ccaas package.

``caravan chaincode serve --address 0.0.0.0:9999 --id caravan_1.0:<hash>`` serves the
contracts to a Fabric peer (chaincode-as-a-service) until SIGTERM or Ctrl-C; TLS with
``--tls-cert/--tls-key`` (and ``--tls-client-ca`` to require the peer's client
certificate). ``caravan chaincode package --label caravan_1.0 --address cc.kz:9999 --out
caravan.tar.gz`` writes the package for ``peer lifecycle chaincode install`` and prints
its package id (``label:sha256``), the id ``serve --id`` needs. Exit 3 with one line on
stderr for bad options or files. docs/chaincode-server.md.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated

import typer

from chaincode.server import ccaas_package, package_id
from chaincode.server.server import ENGINES, TlsFiles, serve

from ._common import console, fail, handle_errors

__all__ = ["app", "register"]

app = typer.Typer(
    help="Serve the contracts to a Fabric peer (ccaas) and build the chaincode package.",
    no_args_is_help=True,
)


def _read(path: Path | None, what: str) -> bytes | None:
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read the {what} {path}: {exc.strerror}") from None


@app.command("serve")
@handle_errors
def serve_command(
    address: Annotated[str, typer.Option("--address", help="HOST:PORT to listen on.")],
    chaincode_id: Annotated[
        str | None,
        typer.Option(
            "--id",
            help="The chaincode package id (label:sha256); default $CHAINCODE_ID.",
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None, typer.Option("--tls-cert", help="Server TLS certificate (PEM).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Server TLS key (PEM).")] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option("--tls-client-ca", help="CA of the peer's client certificate (PEM)."),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="HTTP/2 engine: http2 (ours, the default; decision 0006) or grpcio.",
        ),
    ] = "http2",
) -> None:
    """Serve the contracts to a Fabric peer until SIGTERM or Ctrl-C."""
    ccid = chaincode_id or os.environ.get("CHAINCODE_ID", "")
    if not ccid:
        raise fail("give the chaincode package id with --id or CHAINCODE_ID")
    if (tls_cert is None) != (tls_key is None):
        raise fail("TLS needs both --tls-cert and --tls-key")
    if engine not in ENGINES:
        raise fail(f"--engine must be one of {', '.join(ENGINES)} (got {engine!r})")
    if tls_client_ca is not None and tls_cert is None:
        raise fail("--tls-client-ca needs --tls-cert and --tls-key")
    tls = None
    cert, key = _read(tls_cert, "TLS certificate"), _read(tls_key, "TLS key")
    if cert is not None and key is not None:
        tls = TlsFiles(cert, key, _read(tls_client_ca, "TLS client CA"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    def ready(port: int) -> None:
        console.print(f"chaincode {ccid} listening on port {port}", highlight=False)

    try:
        serve(address, ccid, tls=tls, ready=ready, engine=engine)
    except (OSError, ValueError) as exc:
        raise fail(str(exc)) from None


@app.command("package")
@handle_errors
def package_command(
    label: Annotated[str, typer.Option("--label", help="Package label, e.g. caravan_1.0.")],
    address: Annotated[
        str, typer.Option("--address", help="HOST:PORT where the peer dials the server.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The package file to write (.tar.gz).")],
    tls: Annotated[bool, typer.Option("--tls", help="The peer must dial with TLS.")] = False,
    root_cert: Annotated[
        Path | None,
        typer.Option("--root-cert", help="CA of the server's TLS certificate (PEM); --tls."),
    ] = None,
    client_cert: Annotated[
        Path | None, typer.Option("--client-cert", help="The peer's client certificate (PEM).")
    ] = None,
    client_key: Annotated[
        Path | None, typer.Option("--client-key", help="The peer's client key (PEM).")
    ] = None,
    dial_timeout: Annotated[
        str, typer.Option("--dial-timeout", help="How long the peer tries to connect.")
    ] = "10s",
) -> None:
    """Write the ccaas package and print its package id."""

    def text(path: Path | None, what: str) -> str:
        data = _read(path, what)
        return "" if data is None else data.decode("ascii", "replace")

    try:
        data = ccaas_package(
            label,
            address,
            tls=tls,
            dial_timeout=dial_timeout,
            root_cert=text(root_cert, "root certificate"),
            client_cert=text(client_cert, "client certificate"),
            client_key=text(client_key, "client key"),
        )
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        out.write_bytes(data)
    except OSError as exc:
        raise fail(f"cannot write {out}: {exc.strerror}") from None
    console.print(package_id(label, data), highlight=False, soft_wrap=True)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="chaincode")

"""`caravan tsa serve` and `caravan timestamp`: the trust-services node and its client.

``caravan tsa serve --dir node --org KZ-CUSTOMS [--org UZ-CUSTOMS] [--workers 2]`` serves
the organisations' TSA, OCSP responder, CRLs and CA certificates over HTTP until Ctrl-C
(see :mod:`trust_services.server`). ``caravan timestamp FILE --tsa URL -o FILE.tsr``
asks a TSA for a timestamp and writes the DER TimeStampResp (what ``openssl ts -reply``
reads).
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from trust_services.client import request_timestamp
from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki

from ._common import (
    DirOpt,
    PassphraseFileOpt,
    PinFileOpt,
    console,
    err_console,
    handle_errors,
    open_pki,
    read_input,
)

__all__ = ["app", "register"]

app = typer.Typer(
    help="Run the trust-services node: RFC 3161 TSA, OCSP, CRLs and CA certificates.",
    no_args_is_help=True,
)

DIGEST_CHOICES = ("sha256", "sha384", "sha512")


@app.command("serve")
@handle_errors
def serve_command(
    root: DirOpt,
    org: Annotated[
        list[str],
        typer.Option("--org", help="Organisation to serve (repeat for several)."),
    ],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.", min=0, max=65535)] = 8318,
    workers: Annotated[
        int, typer.Option(help="Worker processes sharing the socket.", min=1, max=64)
    ] = 1,
    passphrase_file: PassphraseFileOpt = None,
    pin_file: PinFileOpt = None,
) -> None:
    """Serve the organisations' trust services until Ctrl-C."""
    from trust_services.server import TrustServicesApp, serve

    if len(set(org)) != len(org):
        raise TrustServiceError("each --org may be given once")
    pkis: list[OrgPki] = [open_pki(root, o, passphrase_file, pin_file) for o in org]

    def announce(app_: TrustServicesApp, sock: socket.socket) -> None:
        bound_port = sock.getsockname()[1]
        base = f"http://{host if ':' not in host else f'[{host}]'}:{bound_port}"
        console.print(
            f"Caravan trust services on {base} ({workers} worker(s))",
            highlight=False,
            soft_wrap=True,
        )
        for mount in app_.orgs:
            prefix = f"{base}/orgs/{mount}"
            console.print(f"  {mount}", highlight=False, soft_wrap=True)
            for what, path in (
                ("TSA  (RFC 3161)", "/tsa"),
                ("OCSP (RFC 6960)", "/ocsp"),
                ("CRL  issuing   ", "/crl/issuing.crl"),
                ("CRL  root      ", "/crl/root.crl"),
                ("CA certificate ", "/certs/issuing.cer"),
            ):
                console.print(f"    {what}  {prefix}{path}", highlight=False, soft_wrap=True)
        if len(app_.orgs) == 1:
            console.print(
                f"  (also at the root: {base}/tsa, {base}/ocsp …)", highlight=False, soft_wrap=True
            )
        console.print(f"  health: {base}/health — Ctrl-C to stop", highlight=False, soft_wrap=True)

    serve(pkis, host, port, workers, on_ready=announce)
    err_console.print("stopped", highlight=False, soft_wrap=True)


def register(main: typer.Typer) -> None:
    """Add ``caravan tsa …`` and ``caravan timestamp`` to the main app."""
    main.add_typer(app, name="tsa")
    main.command("timestamp")(timestamp_command)


@handle_errors
def timestamp_command(
    file: Annotated[Path, typer.Argument(help="The file to timestamp.")],
    tsa: Annotated[str, typer.Option("--tsa", help="The TSA URL, e.g. http://…/tsa.")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Where to write the DER TimeStampResp.")
    ],
    digest: Annotated[
        str, typer.Option(help="Digest of the file: sha256, sha384 or sha512.")
    ] = "sha256",
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the TSA.")] = 10.0,
) -> None:
    """Timestamp FILE at a TSA (RFC 3161) and write the reply, as openssl's .tsr."""
    if digest not in DIGEST_CHOICES:
        raise TrustServiceError(f"unsupported digest {digest!r} (sha256, sha384 or sha512)")
    data = read_input(file)
    reply, _token, info = request_timestamp(data, tsa, digest, timeout=timeout)
    try:
        output.write_bytes(reply)
    except OSError as exc:
        raise TrustServiceError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"serial:   {info.serial:#x}", highlight=False, soft_wrap=True)
    console.print(f"genTime:  {info.gen_time.isoformat()}", highlight=False, soft_wrap=True)
    console.print(f"TSA:      {info.tsa_name or '(not named)'}", highlight=False, soft_wrap=True)
    console.print(f"policy:   {info.policy}", highlight=False, soft_wrap=True)
    if info.accuracy:
        console.print(f"accuracy: {info.accuracy}", highlight=False, soft_wrap=True)
    console.print(f"written:  {output}", highlight=False, soft_wrap=True)

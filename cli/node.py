"""`caravan node init|info|identity add|start`: create, look after and serve a node directory.

``caravan node init --dir node --org KZ-CUSTOMS:KZ:"State Revenue Committee"`` makes each
organisation's PKI, its admin, officer and node identities (wallet
``kz-customs-admin`` …), ``node.yaml`` and the embedded ledger with every hosted
organisation as a founding member. Input errors are one line on stderr and exit 3.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.table import Table

from node.config import NodeConfig, load_config
from node.embedded.inspect import ledger_info
from node.embedded.store import Store
from node.errors import NodeError
from node.node import init_node, parse_org_spec, passphrase_for
from node.wallet import ROLES, Wallet, WalletEntry
from trust_services.keystore import PASSPHRASE_ENV, resolve_passphrase
from trust_services.pki import OrgPki

from ._common import PassphraseFileOpt, console, err_console, fail, handle_errors

__all__ = ["app", "register"]

app = typer.Typer(help="Create and inspect a node directory.", no_args_is_help=True)
identity_app = typer.Typer(help="Identities in the node's wallet.", no_args_is_help=True)
app.add_typer(identity_app, name="identity")

NodeDirOpt = Annotated[
    Path, typer.Option("--dir", help="The node directory (node.yaml, pki/, wallet/, data/).")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]

P = ParamSpec("P")
R = TypeVar("R")


def handle_node_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Node and trust-service errors: one line on stderr, exit 3."""

    @functools.wraps(func)
    @handle_errors
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except NodeError as exc:
            raise fail(str(exc)) from None

    return wrapper


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="node")


def _print_json(value: Any) -> None:
    console.print_json(json.dumps(value))


@app.command("init")
@handle_node_errors
def init(
    directory: NodeDirOpt,
    org: Annotated[
        list[str],
        typer.Option(
            "--org",
            help='An organisation to host, MSP:CC:"Name" (repeat for more; the first '
            "signs the genesis and its node identity signs blocks).",
        ),
    ],
    passphrase_file: PassphraseFileOpt = None,
    host: Annotated[str | None, typer.Option(help="Listen address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default 8700).")] = None,
    public_base_url: Annotated[
        str | None,
        typer.Option(help="Public URL of the node, for CRL/OCSP/TSA links in certificates."),
    ] = None,
    index_url: Annotated[
        str | None,
        typer.Option(help="Index database URL (default sqlite:///data/index.db)."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a node directory: PKIs, identities, node.yaml and the ledger's genesis.

    The key-store passphrase (one for every organisation created here) comes from
    --passphrase-file, else CARAVAN_PASSPHRASE, else a prompt. When it comes from a file
    or the environment it is also stored in DIR/secrets/<ORG>.pass (mode 0600) so that
    the node can start unattended; a typed passphrase is never stored.
    """
    orgs = [parse_org_spec(text) for text in org]
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise fail(f"{directory} exists and is not an empty directory")
    stored = passphrase_file is not None or bool(os.environ.get(PASSPHRASE_ENV))
    passphrase = resolve_passphrase(passphrase_file, confirm=True)
    with err_console.status("creating the node …") as status:
        config = init_node(
            directory,
            orgs,
            passphrase,
            store_passphrase=stored,
            host=host,
            port=port,
            public_base_url=public_base_url,
            index_url=index_url,
            progress=lambda message: status.update(f"{message} …"),
        )
    summary = _summary(config)
    if as_json:
        _print_json(summary)
        return
    console.print(f"node created in {config.directory}")
    _show(summary)
    if not stored:
        first = config.orgs[0].org
        console.print(
            f"the passphrase is not stored: give it to the node as "
            f"CARAVAN_PASSPHRASE_{first.replace('-', '_')} (one variable per organisation)"
        )


@app.command("info")
@handle_node_errors
def info(directory: NodeDirOpt, as_json: JsonOpt = False) -> None:
    """Configuration, hosted organisations, wallet identities and the ledger height."""
    summary = _summary(load_config(directory))
    if as_json:
        _print_json(summary)
    else:
        _show(summary)


@identity_app.command("add")
@handle_node_errors
def identity_add(
    directory: NodeDirOpt,
    org: Annotated[str, typer.Option("--org", help="The hosted organisation, e.g. KZ-CUSTOMS.")],
    name: Annotated[
        str, typer.Option("--name", help="Wallet name (also the key label), e.g. kz-khorgos.")
    ],
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    sez: Annotated[
        str | None, typer.Option("--sez", help="The zone an sez-operator writes for.")
    ] = None,
    passphrase_file: PassphraseFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Issue a member identity of a hosted organisation and add it to the wallet.

    The passphrase comes from CARAVAN_PASSPHRASE_<ORG> or DIR/secrets/<ORG>.pass, else
    from --passphrase-file, CARAVAN_PASSPHRASE or a prompt.
    """
    config = load_config(directory)
    config.org(org)
    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)} (got {role!r})")
    if role == "sez-operator" and not sez:
        raise fail("an sez-operator needs --sez (the zone it writes for)")
    if role != "sez-operator" and sez:
        raise fail("--sez is only for an sez-operator")
    wallet = Wallet(config.wallet_dir)
    if name in wallet:
        raise fail(f"the wallet already has an identity {name!r}")
    passphrase = passphrase_for(config.directory, org) or resolve_passphrase(passphrase_file)
    pki = OrgPki(config.pki_dir, org).unlock(passphrase)
    with err_console.status(f"issuing {name} …"):
        entry = wallet.issue(pki, name, role=role, sez=sez)
    if as_json:
        _print_json(_identity(entry))
    else:
        console.print(
            f"added {entry.name} ({entry.role}{' ' + entry.sez if entry.sez else ''}) of "
            f"{entry.msp_id}, certificate SHA-256 {entry.cert_sha256}"
        )


@app.command("start")
@handle_node_errors
def start(
    directory: NodeDirOpt,
    host: Annotated[
        str | None, typer.Option(help="Listen address (default: listen.host in node.yaml).")
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Listen port (default: listen.port in node.yaml; 0: a free port)."),
    ] = None,
    index_process: Annotated[
        bool,
        typer.Option(
            "--index-process/--index-thread",
            help="Feed the index from a child process reading the ledger file (embedded "
            "ledger, index not in memory), or from a thread of the node's process.",
        ),
    ] = True,
) -> None:
    """Serve the node: the /v1 API and each hosted organisation's TSA, OCSP and CRLs.

    One process writes the ledger (the embedded ledger has one writer); a child
    process feeds the index from the ledger file. Passphrases as for every node
    command: CARAVAN_PASSPHRASE_<ORG>, else DIR/secrets/<ORG>.pass. Ctrl-C stops it.
    """
    import uvicorn

    from api.app import create_app
    from node.node import Node
    from trust_services.server import bind_socket

    config = load_config(directory)
    if port is not None and not 0 <= port <= 65535:
        raise fail(f"--port must be between 0 and 65535 (got {port})")
    host = host or config.listen.host
    with Node.open(directory) as node:
        app = create_app(node, index_process=index_process)
        sock = bind_socket(host, config.listen.port if port is None else port)
        try:
            bound = sock.getsockname()[1]
            shown = f"[{host}]" if ":" in host else host
            base = f"http://{shown}:{bound}"
            console.print(
                f"caravan node serving channel {config.channel} on {base}", highlight=False
            )
            console.print(f"  API docs   {base}/docs", highlight=False)
            console.print(f"  health     {base}/v1/health", highlight=False)
            for org in config.org_ids:
                console.print(f"  {org}: TSA, OCSP, CRLs at {base}/orgs/{org}/", highlight=False)
            console.file.flush()
            server = uvicorn.Server(
                uvicorn.Config(
                    app,
                    lifespan="on",
                    log_level="warning",
                    access_log=False,
                    server_header=False,
                    timeout_graceful_shutdown=5,
                )
            )
            try:
                server.run(sockets=[sock])
            except KeyboardInterrupt:  # uvicorn re-raises the Ctrl-C it handled
                err_console.print("stopped")
                raise typer.Exit(130) from None
        finally:
            sock.close()
    err_console.print("stopped")


# --------------------------------------------------------------------------- output
def _identity(entry: WalletEntry) -> dict[str, Any]:
    return {
        "name": entry.name,
        "msp_id": entry.msp_id,
        "role": entry.role,
        "sez": entry.sez,
        "subject": entry.subject,
        "cert_sha256": entry.cert_sha256,
        "not_after": entry.certificate.not_valid_after_utc.isoformat(),
    }


def _summary(config: NodeConfig) -> dict[str, Any]:
    ledger: dict[str, Any] = {
        "backend": config.ledger.backend,
        "path": str(config.ledger_path),
        "node_identity": config.ledger.node_identity,
    }
    if config.ledger.backend == "embedded":
        store = Store.open(config.ledger_path, readonly=True)
        try:
            height = ledger_info(store)
        finally:
            store.close()
        ledger.update(
            height=height.height, last_block_hash=height.last_hash, channel=height.channel
        )
    return {
        "directory": str(config.directory),
        "channel": config.channel,
        "listen": {"host": config.listen.host, "port": config.listen.port},
        "public_base_url": config.base_url,
        "index_url": config.index_url,
        "orgs": [o.model_dump() for o in config.orgs],
        "ledger": ledger,
        "identities": [_identity(e) for e in Wallet(config.wallet_dir).entries()],
    }


def _show(summary: dict[str, Any]) -> None:
    ledger = summary["ledger"]
    console.print(
        f"channel [bold]{summary['channel']}[/], listening on "
        f"{summary['listen']['host']}:{summary['listen']['port']}, public URL "
        f"{summary['public_base_url']}"
    )
    height = f", height {ledger['height']}" if "height" in ledger else ""
    console.print(
        f"ledger: {ledger['backend']} at {ledger['path']}{height}; blocks signed by "
        f"{ledger['node_identity']}"
    )
    console.print(f"index: {summary['index_url']}")
    orgs = Table(title="hosted organisations")
    for col in ("org (MSP)", "country", "name"):
        orgs.add_column(col)
    for o in summary["orgs"]:
        orgs.add_row(o["org"], o["country"], o["name"])
    console.print(orgs)
    ids = Table(title="wallet")
    for col in ("name", "MSP", "role", "certificate SHA-256"):
        ids.add_column(col)
    for i in summary["identities"]:
        role = f"{i['role']} ({i['sez']})" if i["sez"] else i["role"]
        ids.add_row(i["name"], i["msp_id"], role, i["cert_sha256"])
    console.print(ids)

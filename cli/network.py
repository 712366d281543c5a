"""`caravan network generate|up|init-ledger|down|status`: the Fabric network of the consortium.

``caravan network generate --config network-config/consortium.yaml --out build/network``
writes every administration's MSPs (from its own Caravan PKI), TLS certificates,
configtx.yaml, core.yaml/orderer.yaml, connection profiles, node.yaml files and the
chaincode packages. ``caravan network up --fabric-bin DIR --dir build/network`` runs it
as local processes on loopback; ``caravan network down --dir build/network`` stops it.
Input and environment errors are one line on stderr and exit 3 (docs/cli.md).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from node.network.consortium import load_consortium
from node.network.generate import GeneratedNetwork, generate
from node.network.runner import FabricBinaries, LocalNetwork
from node.network.templates import CCAAS_BUILDER_IN_IMAGE
from trust_services.keystore import resolve_passphrase

from ._common import PassphraseFileOpt, console, err_console
from .node import handle_node_errors

__all__ = ["app", "register"]

app = typer.Typer(
    help="Generate and run the consortium's Hyperledger Fabric network.", no_args_is_help=True
)


NetworkDirOpt = Annotated[
    Path,
    typer.Option("--dir", help="The generated network directory (from 'network generate')."),
]


def register(main: typer.Typer) -> None:
    main.add_typer(app, name="network")


def _say(message: str) -> None:
    err_console.print(f"[dim]·[/] {message}", highlight=False)


@app.command("generate")
@handle_node_errors
def generate_command(
    out: Annotated[Path, typer.Option("--out", help="Directory to write the network into.")],
    config: Annotated[Path, typer.Option("--config", help="The consortium definition.")] = Path(
        "network-config/consortium.yaml"
    ),
    passphrase_file: PassphraseFileOpt = None,
    store_passphrase: Annotated[
        bool,
        typer.Option(
            "--store-passphrase",
            help="Write the passphrase to each node's secrets/ (0600) so it starts unattended.",
        ),
    ] = False,
    ccaas_builder: Annotated[
        str,
        typer.Option(
            "--ccaas-builder",
            help="The ccaas external builder's directory as the peers see it.",
        ),
    ] = CCAAS_BUILDER_IN_IMAGE,
    index_url: Annotated[
        str | None,
        typer.Option(
            "--index-url",
            help="Each node's index database, {org} for the administration "
            "(e.g. postgresql://caravan@127.0.0.1:5432/caravan_{org}); default SQLite.",
        ),
    ] = None,
) -> None:
    """Write the Fabric network of the consortium (PKIs are created once, then reused)."""
    consortium = load_consortium(config)
    passphrase = resolve_passphrase(passphrase_file, confirm=False)
    network = generate(
        consortium,
        out,
        passphrase,
        store_passphrase=store_passphrase,
        ccaas_builder=ccaas_builder,
        index_url=index_url,
        progress=_say,
    )
    console.print(f"network of {len(consortium.administrations)} administrations in {network.root}")
    for admin in consortium.administrations:
        console.print(
            f"  {admin.msp_id}: node {network.node_dir(admin.msp_id)}, "
            f"package {network.package_id(admin.msp_id)}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("up")
@handle_node_errors
def up_command(
    fabric_bin: Annotated[
        Path,
        typer.Option(
            "--fabric-bin",
            envvar="CARAVAN_FABRIC_BIN",
            help="Directory holding peer, orderer, configtxgen and osnadmin (Fabric 2.5).",
        ),
    ],
    directory: NetworkDirOpt = Path("build/network"),
    ccaas_builder: Annotated[
        Path | None,
        typer.Option(
            "--ccaas-builder",
            help="The ccaas external builder (holds bin/); default FABRIC_BIN/../builders/ccaas.",
        ),
    ] = None,
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            help="Key-store passphrase of the first administration, to submit the ledger's "
            "genesis (else CARAVAN_PASSPHRASE_<ORG> or its node's secrets/).",
        ),
    ] = None,
    init_ledger: Annotated[
        bool,
        typer.Option(
            "--init-ledger/--no-init-ledger",
            help="Submit the Caravan genesis (InitLedger) when the ledger has no members.",
        ),
    ] = True,
) -> None:
    """Start the network as local processes: orderers, channel, peers, chaincode."""
    network = GeneratedNetwork.open(directory)
    binaries = FabricBinaries.find(fabric_bin, ccaas_builder)
    passphrase = resolve_passphrase(passphrase_file) if passphrase_file is not None else None
    LocalNetwork(network, binaries, progress=_say).up(
        init_ledger=init_ledger, passphrase=passphrase
    )
    console.print(
        f"network up: channel {network.consortium.channel}, logs in {network.root}/run/logs",
        highlight=False,
        soft_wrap=True,
    )


@app.command("init-ledger")
@handle_node_errors
def init_ledger_command(
    directory: NetworkDirOpt = Path("build/network"),
    passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--passphrase-file",
            help="Key-store passphrase of the first administration (else "
            "CARAVAN_PASSPHRASE_<ORG> or its node's secrets/).",
        ),
    ] = None,
) -> None:
    """Submit the Caravan genesis to a running network (e.g. one of docker compose)."""
    network = GeneratedNetwork.open(directory)
    passphrase = resolve_passphrase(passphrase_file) if passphrase_file is not None else None
    genesis = LocalNetwork(network, progress=_say).init_ledger(passphrase)
    console.print("ledger initialised" if genesis is not None else "the ledger has its members")


@app.command("down")
@handle_node_errors
def down_command(
    directory: NetworkDirOpt = Path("build/network"),
    keep_data: Annotated[
        bool, typer.Option("--keep-data", help="Keep ledgers and the genesis block.")
    ] = False,
) -> None:
    """Stop every process `network up` started and remove the ledgers."""
    network = GeneratedNetwork.open(directory)
    stopped = LocalNetwork(network, progress=_say).down(keep_data=keep_data)
    console.print(f"stopped {len(stopped)} processes" if stopped else "nothing was running")


@app.command("status")
@handle_node_errors
def status_command(
    directory: NetworkDirOpt = Path("build/network"),
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Which processes of the local network run."""
    network = GeneratedNetwork.open(directory)
    rows = LocalNetwork(network).status()
    if as_json:
        data = [{"name": r.name, "pid": r.pid, "running": r.running} for r in rows]
        console.print_json(json.dumps(data))
        return
    for row in rows:
        state = f"running (pid {row.pid})" if row.running else "stopped"
        console.print(f"{row.name:28} {state}", highlight=False)

"""A node directory: create one (:func:`init_node`) and open it (:meth:`Node.open`).

>>> # init_node(Path("node"), [HostedOrg(org="KZ-CUSTOMS", country="KZ", name="SRC")],
>>> #           passphrase=b"…", store_passphrase=True)
>>> # with Node.open(Path("node")) as node:        # passphrases: secrets/ or environment
>>> #     officer = node.signer("kz-customs-officer")
>>> #     services.aeo.get(node.context, "KZ-AEO-2026-000001")

Layout (docs/node.md)::

    DIR/node.yaml              configuration (node.config)
    DIR/pki/orgs/<ORG>/…       each hosted organisation's PKI (trust_services.pki)
    DIR/wallet/<name>.json     identities (node.wallet); no key material
    DIR/secrets/<ORG>.pass     key-store passphrase (0600), only when given by file or env
    DIR/data/ledger.db         the embedded ledger

The key-store passphrase of organisation ``ORG`` comes from, in order: the
``passphrases`` given to :meth:`Node.open`, the environment variable
``CARAVAN_PASSPHRASE_<ORG>`` (``-`` written ``_``, e.g. ``CARAVAN_PASSPHRASE_KZ_CUSTOMS``),
then ``DIR/secrets/<ORG>.pass``. A PKCS#11 PIN likewise from ``pins``,
``CARAVAN_PKCS11_PIN_<ORG>`` or ``DIR/secrets/<ORG>.pin``. None of them is ever logged.
"""

from __future__ import annotations

import base64
import os
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import ValidationError

from chaincode.canonical import canonical_json
from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki, init_pki

from .config import (
    CONFIG_FILE,
    ConfigError,
    HostedOrg,
    NodeConfig,
    load_config,
    save_config,
)
from .embedded.ledger import EmbeddedLedger
from .errors import NodeError
from .fabric import FabricLedger, PeerConnection
from .proposal import KeySigner, make_proposal
from .services.context import Clock, NodeContext
from .wallet import Wallet, WalletEntry

__all__ = [
    "INITIAL_ROLES",
    "InitError",
    "KeyStoreLocked",
    "Node",
    "NodeContext",
    "identity_name",
    "init_node",
    "parse_org_spec",
    "passphrase_env",
    "passphrase_for",
]

#: the identities ``init_node`` issues for each organisation (wallet ``<org>-<role>``)
INITIAL_ROLES = ("admin", "officer", "node")
LEDGER_PATH = "data/ledger.db"
#: node.yaml keys and the `caravan node init` options that set them
_OPTIONS = {
    "listen.port": "--port",
    "listen.host": "--host",
    "public_base_url": "--public-base-url",
    "index.url": "--index-url",
}


class InitError(NodeError):
    """A node directory cannot be created from this input (nothing is left behind)."""

    code = "BAD_INPUT"
    status = 400


class KeyStoreLocked(NodeError):
    """An organisation's key store cannot be opened: no or a wrong passphrase."""

    code = "KEY_STORE_LOCKED"
    status = 500


def identity_name(org: str, role: str) -> str:
    """The wallet name (and key label) of an organisation's identity: ``kz-customs-admin``."""
    return f"{org.lower()}-{role}"


def passphrase_env(org: str, prefix: str = "CARAVAN_PASSPHRASE_") -> str:
    return prefix + org.upper().replace("-", "_")


def _secret(
    directory: Path, org: str, given: Mapping[str, bytes] | None, env: str, suffix: str
) -> bytes | None:
    if given is not None and org in given:
        return given[org]
    value = os.environ.get(env)
    if value:
        return value.encode("utf-8")
    path = directory / "secrets" / f"{org}{suffix}"
    try:
        data = path.read_bytes().rstrip(b"\r\n")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise KeyStoreLocked(f"cannot read {path}: {exc.strerror}") from None
    return data or None


def passphrase_for(
    directory: Path, org: str, given: Mapping[str, bytes] | None = None
) -> bytes | None:
    """The key-store passphrase of ``org``: given, else environment, else secrets file."""
    return _secret(directory, org, given, passphrase_env(org), ".pass")


def _write_secret(path: Path, value: bytes) -> None:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(value)


class Node:
    """An opened node directory: configuration, wallet, unlocked PKIs and the ledger."""

    def __init__(
        self,
        config: NodeConfig,
        wallet: Wallet,
        pkis: dict[str, OrgPki],
        ledger: EmbeddedLedger | FabricLedger,
        node_signer: KeySigner,
        clock: Clock,
    ) -> None:
        self.config = config
        self.wallet = wallet
        self.pkis = pkis
        self.ledger = ledger
        self.node_signer = node_signer
        self.clock = clock
        self.context = NodeContext(ledger, config.channel, clock)
        self._signers: dict[str, KeySigner] = {config.ledger.node_identity: node_signer}

    @property
    def directory(self) -> Path:
        return self.config.directory

    @classmethod
    def open(
        cls,
        directory: Path,
        passphrases: Mapping[str, bytes] | None = None,
        *,
        pins: Mapping[str, bytes] | None = None,
        clock: Clock = time.time_ns,
        **ledger_options: Any,
    ) -> Node:
        """Load ``node.yaml``, unlock each hosted organisation's key store and open the
        ledger with the node identity as block signer. ``ledger_options`` go to
        :meth:`EmbeddedLedger.open` (``max_skew_s``, ``timestamper`` …), or to
        :class:`FabricLedger` for ``backend: fabric`` (``max_in_flight`` …)."""
        config = load_config(directory)
        pkis = {o.org: _unlock(config, o.org, passphrases, pins) for o in config.orgs}
        wallet = Wallet(config.wallet_dir)
        node_signer = wallet.signer(config.ledger.node_identity, pkis)
        if node_signer.msp_id not in pkis:
            raise ConfigError(
                f"{CONFIG_FILE}: ledger.node_identity: {config.ledger.node_identity} belongs "
                f"to {node_signer.msp_id}, which is not hosted here"
            )
        if config.ledger.backend == "fabric":
            fabric = _fabric_ledger(config, node_signer, clock, ledger_options)
            return cls(config, wallet, pkis, fabric, node_signer, clock)
        ledger = EmbeddedLedger.open(config.ledger_path, node_signer, clock=clock, **ledger_options)
        if ledger.channel != config.channel:
            ledger.close()
            raise ConfigError(
                f"{CONFIG_FILE}: channel: {config.channel!r} but the ledger is on "
                f"{ledger.channel!r}"
            )
        return cls(config, wallet, pkis, ledger, node_signer, clock)

    def signer(self, name: str) -> KeySigner:
        """Wallet identity ``name`` as a proposal signer (its key from its org's store)."""
        if name not in self._signers:
            self._signers[name] = self.wallet.signer(name, self.pkis)
        return self._signers[name]

    def pki(self, org: str) -> OrgPki:
        """The unlocked PKI of a hosted organisation."""
        self.config.org(org)
        return self.pkis[org]

    def close(self) -> None:
        self.ledger.close()

    def __enter__(self) -> Node:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_pem(config: NodeConfig, key: str, path: str | None) -> bytes | None:
    if path is None:
        return None
    resolved = config.resolve(path)
    try:
        data = resolved.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{CONFIG_FILE}: ledger.peer.{key}: cannot read {resolved}: {exc.strerror}"
        ) from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"{CONFIG_FILE}: ledger.peer.{key}: {resolved} is not a PEM file")
    return data


def _fabric_ledger(
    config: NodeConfig, node_signer: KeySigner, clock: Clock, options: Mapping[str, Any]
) -> FabricLedger:
    """The ``fabric`` backend: the Gateway peer of ``ledger.peer``, as the node identity."""
    ledger = config.ledger
    peer = ledger.peer
    assert peer is not None  # LedgerConfig requires it for backend fabric
    if node_signer.msp_id != ledger.msp_id:
        raise ConfigError(
            f"{CONFIG_FILE}: ledger.msp_id: {ledger.msp_id} but ledger.node_identity "
            f"{ledger.node_identity} belongs to {node_signer.msp_id}"
        )
    timeout = float(peer.timeout_s)
    connection = PeerConnection(
        peer.endpoint,
        tls_ca=_read_pem(config, "tls_ca", peer.tls_ca),
        server_name=peer.server_name,
        client_cert=_read_pem(config, "tls_client_cert", peer.tls_client_cert),
        client_key=_read_pem(config, "tls_client_key", peer.tls_client_key),
        evaluate_timeout_s=timeout,
        endorse_timeout_s=timeout,
        submit_timeout_s=timeout,
        commit_timeout_s=2 * timeout,
    )
    return FabricLedger(
        connection,
        node_signer,
        channel=config.channel,
        chaincode=ledger.chaincode_name,
        clock=clock,
        **options,
    )


def _unlock(
    config: NodeConfig,
    org: str,
    passphrases: Mapping[str, bytes] | None,
    pins: Mapping[str, bytes] | None,
) -> OrgPki:
    try:
        pki = OrgPki(config.pki_dir, org)
    except TrustServiceError as exc:
        raise ConfigError(str(exc)) from None
    passphrase = passphrase_for(config.directory, org, passphrases)
    if passphrase is None:
        raise KeyStoreLocked(
            f"no passphrase for the key store of {org}: set {passphrase_env(org)} or write "
            f"it to secrets/{org}.pass"
        )
    pin = None
    if pki.config.hsm is not None:
        pin = _secret(
            config.directory, org, pins, passphrase_env(org, "CARAVAN_PKCS11_PIN_"), ".pin"
        )
    try:
        pki.unlock(passphrase, pin)
        pki.key("issuing")  # the passphrase is checked now, not at the first signature
    except TrustServiceError as exc:
        raise KeyStoreLocked(str(exc)) from None
    return pki


# --------------------------------------------------------------------------- init
def parse_org_spec(text: str) -> HostedOrg:
    """``MSP:CC:Name`` (e.g. ``KZ-CUSTOMS:KZ:State Revenue Committee``)."""
    parts = text.split(":", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise InitError(
            f'--org must be MSP:CC:Name, e.g. KZ-CUSTOMS:KZ:"State Revenue '
            f'Committee" (got {text!r})'
        )
    org, country, name = (p.strip() for p in parts)
    try:
        return HostedOrg(org=org, country=country.upper(), name=name)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        detail = f"{first['loc'][0]} {first['msg'].removeprefix('Value error, ')}"
        raise InitError(f"--org {text!r}: {detail}") from None


def _genesis_arg(pkis: Sequence[tuple[HostedOrg, OrgPki]]) -> dict[str, Any]:
    return {
        "members": [
            {
                "msp_id": hosted.org,
                "country": hosted.country,
                "name": hosted.name,
                "anchors": [
                    {
                        "kind": "root",
                        "certificate": base64.b64encode(
                            pki.certificate("root").public_bytes(Encoding.DER)
                        ).decode("ascii"),
                    }
                ],
            }
            for hosted, pki in pkis
        ]
    }


def init_node(
    directory: Path,
    orgs: Sequence[HostedOrg],
    passphrase: bytes,
    *,
    store_passphrase: bool = False,
    host: str | None = None,
    port: int | None = None,
    public_base_url: str | None = None,
    index_url: str | None = None,
    channel: str = "caravan",
    clock: Clock = time.time_ns,
    progress: Callable[[str], None] | None = None,
) -> NodeConfig:
    """Create a node directory: each organisation's PKI, its admin, officer and node
    identities, node.yaml, and the embedded ledger whose genesis (signed by the first
    organisation's admin) makes every hosted organisation a founding member.

    ``directory`` must be absent or empty; on any failure it is left as it was.
    """
    step = progress or (lambda _message: None)
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise InitError(f"{directory} exists and is not an empty directory")
    if not orgs:
        raise InitError("give at least one --org MSP:CC:Name")
    if not passphrase:
        raise InitError("the key-store passphrase must not be empty")
    first = identity_name(orgs[0].org, "node")
    data: dict[str, Any] = {
        "version": 1,
        "channel": channel,
        "listen": {k: v for k, v in (("host", host), ("port", port)) if v is not None},
        "ledger": {"backend": "embedded", "path": LEDGER_PATH, "node_identity": first},
        "orgs": [o.model_dump() for o in orgs],
    }
    if public_base_url is not None:
        data["public_base_url"] = public_base_url
    if index_url is not None:
        data["index"] = {"url": index_url}
    try:  # every input checked before any write
        config = NodeConfig.build(directory, data)
    except ConfigError as exc:
        message = str(exc).removeprefix(f"{CONFIG_FILE}: ")
        for key, option in _OPTIONS.items():
            message = message.replace(f"{key}: ", f"{option}: ", 1)
        raise InitError(message) from None

    existed = directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        wallet = Wallet(config.wallet_dir)
        made: list[tuple[HostedOrg, OrgPki]] = []
        entries: dict[str, WalletEntry] = {}
        for hosted in orgs:
            step(f"creating the PKI of {hosted.org}")
            pki = init_pki(
                config.pki_dir,
                hosted.org,
                country=hosted.country,
                name=hosted.name,
                passphrase=passphrase,
                base_url=config.org_base_url(hosted.org),
            )
            made.append((hosted, pki))
            for role in INITIAL_ROLES:
                name = identity_name(hosted.org, role)
                step(f"issuing {name}")
                entries[name] = wallet.issue(pki, name, role=role)
            if store_passphrase:
                _write_secret(config.secrets_dir / f"{hosted.org}.pass", passphrase)
        save_config(config)
        step("creating the ledger")
        pkis = {hosted.org: pki for hosted, pki in made}
        admin = wallet.signer(identity_name(orgs[0].org, "admin"), pkis)
        node_signer = wallet.signer(first, pkis)
        genesis = make_proposal(
            admin,
            "InitLedger",
            [canonical_json(_genesis_arg(made)).decode("utf-8")],
            channel=config.channel,
            timestamp=divmod(clock(), 10**9),
        )
        EmbeddedLedger.create(
            config.ledger_path, config.channel, genesis, node_signer, clock=clock
        ).close()
    except TrustServiceError as exc:
        _undo(directory, existed)
        raise InitError(str(exc)) from None
    except BaseException:
        _undo(directory, existed)
        raise
    return config


def _undo(directory: Path, existed: bool) -> None:
    if not existed:
        shutil.rmtree(directory, ignore_errors=True)
        return
    for child in directory.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)

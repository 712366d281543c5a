"""The consortium definition (``network-config/consortium.yaml``), strictly validated.

>>> # consortium = load_consortium(Path("network-config/consortium.yaml"))
>>> # [a.msp_id for a in consortium.administrations]    # ['KZ-CUSTOMS', 'UZ-CUSTOMS', …]
>>> # consortium.administration("KZ-CUSTOMS").peers[0].address   # '127.0.0.1:7051'

Every problem is one :class:`ConsortiumError` line naming the key, e.g.
``consortium.yaml: administrations.1.peers.0.port: must be ≤ 65535 (got 70000)``.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..config import CHANNEL, CountryCode, DisplayName, OrgId, describe_validation_error
from ..errors import NodeError

__all__ = [
    "Administration",
    "ChaincodeDefinition",
    "ChaincodeServer",
    "Consortium",
    "ConsortiumError",
    "NodeEndpoint",
    "OrdererDefinition",
    "OrdererSettings",
    "PeerDefinition",
    "load_consortium",
]

_MAX_BYTES = 256 * 1024
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = re.compile(rf"{_LABEL}(\.{_LABEL})*\Z")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,30}\Z")
_IMPLICIT_META = re.compile(r"(ANY|ALL|MAJORITY) (Endorsement|Writers|Readers|Admins)\Z")
_VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}\Z")
_DURATION = re.compile(r"[1-9][0-9]*(ms|s)\Z")

Port = Annotated[int, Field(ge=1, le=65535)]


class ConsortiumError(NodeError):
    """The consortium definition is missing, unreadable or invalid (one line)."""

    code = "BAD_CONSORTIUM"
    status = 400


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def _check_host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOST.match(value):
            raise ValueError("must be a host name or an IP address") from None
    return value


class _Endpoint(_Strict):
    host: str = "127.0.0.1"
    port: Port

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        return _check_host(value)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


class PeerDefinition(_Endpoint):
    """A peer of an administration: gRPC (endorsement, Gateway, gossip) and operations."""

    name: str = "peer0"
    chaincode_port: Port
    operations_port: Port

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-31 of a-z, 0-9, '-' (e.g. peer0)")
        return value


class OrdererDefinition(_Endpoint):
    """The administration's Raft orderer: client/cluster port, admin (osnadmin), operations."""

    name: str = "orderer0"
    admin_port: Port
    operations_port: Port

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-31 of a-z, 0-9, '-' (e.g. orderer0)")
        return value


class ChaincodeServer(_Endpoint):
    """Where this administration's chaincode-as-a-service process listens."""


class NodeEndpoint(_Endpoint):
    """The administration's Caravan node (HTTP API)."""


class Administration(_Strict):
    """A customs administration: one Fabric organisation, its MSP issued by its own PKI."""

    msp_id: OrgId
    country: CountryCode
    name: DisplayName
    peers: list[PeerDefinition] = Field(min_length=1, max_length=8)
    orderer: OrdererDefinition
    chaincode: ChaincodeServer
    node: NodeEndpoint

    @field_validator("peers")
    @classmethod
    def _peer_names(cls, value: list[PeerDefinition]) -> list[PeerDefinition]:
        names = [p.name for p in value]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"peer name {dupes[0]} appears more than once")
        return value

    @property
    def slug(self) -> str:
        """The directory and process name part: ``kz-customs``."""
        return self.msp_id.lower()

    def peer_id(self, peer: PeerDefinition) -> str:
        """The peer's unique name in the consortium: ``peer0.kz-customs``."""
        return f"{peer.name}.{self.slug}"

    @property
    def orderer_id(self) -> str:
        return f"{self.orderer.name}.{self.slug}"


class ChaincodeDefinition(_Strict):
    """The contracts as one Fabric chaincode, served as a service (ccaas)."""

    name: str = "caravan"
    version: str = "1.0"
    sequence: Annotated[int, Field(ge=1)] = 1
    #: the chaincode's endorsement policy: an implicit-meta rule over the orgs' Endorsement
    endorsement_policy: str = "MAJORITY Endorsement"
    #: who must approve a chaincode definition before it may be committed
    lifecycle_policy: str = "MAJORITY Endorsement"
    tls: bool = False

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[a-z][a-z0-9_-]{0,63}", value):
            raise ValueError("must start with a-z and be 1-64 of a-z, 0-9, '_', '-'")
        return value

    @field_validator("version")
    @classmethod
    def _version(cls, value: str) -> str:
        if not _VERSION.match(value):
            raise ValueError("must be 1-32 of A-Z, a-z, 0-9, '.', '_', '-'")
        return value

    @field_validator("endorsement_policy", "lifecycle_policy")
    @classmethod
    def _policy(cls, value: str) -> str:
        if not _IMPLICIT_META.match(value):
            raise ValueError(
                f"must be an implicit-meta rule: ANY|ALL|MAJORITY Endorsement (got {value!r})"
            )
        return value

    @property
    def label(self) -> str:
        """The package label (``caravan_1.0``)."""
        return f"{self.name}_{self.version}"


class OrdererSettings(_Strict):
    """Raft and block cutting, the same for every orderer of the channel."""

    batch_timeout: str = "250ms"
    max_message_count: Annotated[int, Field(ge=1, le=10000)] = 500

    @field_validator("batch_timeout")
    @classmethod
    def _timeout(cls, value: str) -> str:
        if not _DURATION.match(value):
            raise ValueError("must be a duration in ms or s, e.g. 250ms or 2s")
        return value


class Consortium(_Strict):
    """The content of ``consortium.yaml``."""

    version: Literal[1]
    channel: str = "caravan"
    chaincode: ChaincodeDefinition = Field(default_factory=ChaincodeDefinition)
    orderers: OrdererSettings = Field(default_factory=OrdererSettings)
    administrations: list[Administration] = Field(min_length=1, max_length=16)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        # Fabric channel names: lower case, digits, '.', '-'; starting with a letter
        if not re.fullmatch(r"[a-z][a-z0-9.-]{0,48}", value) or not CHANNEL.match(value):
            raise ValueError("must be a Fabric channel name: a-z first, then a-z, 0-9, '.', '-'")
        return value

    @model_validator(mode="after")
    def _unique(self) -> Consortium:
        for attr in ("msp_id", "country"):
            seen = [getattr(a, attr) for a in self.administrations]
            dupes = sorted({v for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"administrations: {attr} {dupes[0]} appears more than once")
        used: dict[tuple[str, int], str] = {}
        for admin in self.administrations:
            for where, host, port in _listeners(admin):
                key = (_canonical_host(host), port)
                if key in used:
                    raise ValueError(f"{where}: port {host}:{port} is also used by {used[key]}")
                used[key] = where
        return self

    def administration(self, msp_id: str) -> Administration:
        for admin in self.administrations:
            if admin.msp_id == msp_id:
                return admin
        known = ", ".join(a.msp_id for a in self.administrations)
        raise ConsortiumError(f"no administration {msp_id} in the consortium (known: {known})")

    def listeners(self) -> list[tuple[str, str, int]]:
        """Every (process, host, port) the network listens on."""
        return [entry for admin in self.administrations for entry in _listeners(admin)]


def _canonical_host(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


def _listeners(admin: Administration) -> list[tuple[str, str, int]]:
    out: list[tuple[str, str, int]] = []
    for peer in admin.peers:
        pid = admin.peer_id(peer)
        out += [
            (pid, peer.host, peer.port),
            (f"{pid} chaincode listener", peer.host, peer.chaincode_port),
            (f"{pid} operations", peer.host, peer.operations_port),
        ]
    o = admin.orderer
    out += [
        (admin.orderer_id, o.host, o.port),
        (f"{admin.orderer_id} admin", o.host, o.admin_port),
        (f"{admin.orderer_id} operations", o.host, o.operations_port),
        (f"chaincode server of {admin.msp_id}", admin.chaincode.host, admin.chaincode.port),
        (f"Caravan node of {admin.msp_id}", admin.node.host, admin.node.port),
    ]
    return out


def parse_consortium(data: object, source: str = "consortium.yaml") -> Consortium:
    """Validate a parsed YAML document."""
    if not isinstance(data, dict):
        raise ConsortiumError(f"{source}: must be a mapping (version, channel, administrations …)")
    try:
        return Consortium.model_validate(data)
    except ValidationError as exc:
        raise ConsortiumError(f"{source}: {describe_validation_error(exc)}") from None


def load_consortium(path: Path) -> Consortium:
    """Read and validate a consortium definition."""
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise ConsortiumError(f"{path} is larger than {_MAX_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConsortiumError(f"no consortium definition at {path}") from None
    except IsADirectoryError:
        raise ConsortiumError(f"{path} is a directory, not a consortium definition") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConsortiumError(f"cannot read {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConsortiumError(f"{path.name}: not valid YAML{where}") from None
    return parse_consortium(data, path.name)

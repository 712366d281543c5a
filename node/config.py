"""A node's configuration: ``DIR/node.yaml``, strictly validated, paths resolved against DIR.

>>> # config = load_config(Path("node"))          # raises ConfigError naming the bad key
>>> # config.ledger_path                          # /…/node/data/ledger.db
>>> # config.org("KZ-CUSTOMS").country            # 'KZ'
>>> # save_config(config)                         # writes DIR/node.yaml atomically

The file (docs/node.md); relative paths are relative to DIR, unknown keys are refused::

    version: 1
    channel: caravan
    listen: {host: 127.0.0.1, port: 8700}
    public_base_url: http://127.0.0.1:8700
    ledger: {backend: embedded, path: data/ledger.db, node_identity: kz-customs-node}
    index: {url: sqlite:///data/index.db}
    orgs:
      - {org: KZ-CUSTOMS, country: KZ, name: State Revenue Committee}
    limits: {max_body_bytes: 1048576}

Every problem is one :class:`ConfigError` line: ``node.yaml: listen.port: must be …``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from trust_services.pki import atomic_write

from .errors import NodeError

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "ConfigError",
    "HostedOrg",
    "IndexConfig",
    "LedgerConfig",
    "Limits",
    "Listen",
    "NodeConfig",
    "PeerConfig",
    "describe_validation_error",
    "load_config",
    "save_config",
]

CONFIG_FILE = "node.yaml"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700
#: an organisation (MSP) id, as trust_services.pki accepts it
ORG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{1,31}\Z")
COUNTRY = re.compile(r"[A-Z]{2}\Z")


def _org_id(value: str) -> str:
    if not ORG_ID.match(value):
        raise ValueError("must be 2-32 of A-Z, a-z, 0-9, '-' (e.g. KZ-CUSTOMS)")
    return value


def _country_code(value: str) -> str:
    if not COUNTRY.match(value):
        raise ValueError("must be an ISO 3166-1 alpha-2 code in capitals, e.g. KZ")
    return value


def _display_name(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value.strip()


#: an MSP id (organisation id), a country code and a display name, as node.yaml and
#: the consortium definition (node/network) take them
OrgId = Annotated[str, AfterValidator(_org_id)]
CountryCode = Annotated[str, AfterValidator(_country_code)]
DisplayName = Annotated[str, AfterValidator(_display_name)]
#: a wallet entry name (also the key label in the organisation's key store)
IDENTITY_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}\Z")
CHANNEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?\Z")
_MAX_CONFIG_BYTES = 1024 * 1024


class ConfigError(NodeError):
    """``node.yaml`` is missing, unreadable or invalid (one line naming the key)."""

    code = "CONFIG_ERROR"
    status = 500


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class Listen(_Strict):
    host: str = DEFAULT_HOST
    port: Annotated[int, Field(ge=1, le=65535)] = DEFAULT_PORT

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value) or "/" in value:
            raise ValueError("must be a host name or an IP address")
        return value


_ENDPOINT = re.compile(r"[A-Za-z0-9.-]{1,253}:[0-9]{1,5}\Z|\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}\Z")
CHAINCODE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,63}\Z")


class PeerConfig(_Strict):
    """The Gateway peer of the ``fabric`` backend (paths relative to the node directory)."""

    endpoint: str
    tls_ca: str
    server_name: str | None = None
    tls_client_cert: str | None = None
    tls_client_key: str | None = None
    timeout_s: Annotated[int, Field(ge=1, le=600)] = 30

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, value: str) -> str:
        match = _ENDPOINT.match(value)
        if not match or not 1 <= int(value.rsplit(":", 1)[1]) <= 65535:
            raise ValueError("must be HOST:PORT, e.g. peer0.kz.example:7051")
        return value

    @field_validator("tls_ca", "tls_client_cert", "tls_client_key", "server_name")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _pair(self) -> PeerConfig:
        if (self.tls_client_cert is None) != (self.tls_client_key is None):
            raise ValueError("mutual TLS needs both tls_client_cert and tls_client_key")
        return self


class LedgerConfig(_Strict):
    """``backend: embedded`` (path) or ``backend: fabric`` (peer, msp_id, chaincode)."""

    backend: Literal["embedded", "fabric"] = "embedded"
    path: str = "data/ledger.db"
    node_identity: str
    peer: PeerConfig | None = None
    msp_id: OrgId | None = None
    chaincode: str | None = None

    @field_validator("chaincode")
    @classmethod
    def _chaincode(cls, value: str | None) -> str | None:
        if value is not None and not CHAINCODE.match(value):
            raise ValueError("must be a chaincode name (A-Z, a-z, 0-9, '.', '_', '-'; up to 64)")
        return value

    @model_validator(mode="after")
    def _backend(self) -> LedgerConfig:
        fabric_keys = [k for k in ("peer", "msp_id", "chaincode") if getattr(self, k) is not None]
        if self.backend == "embedded" and fabric_keys:
            raise ValueError(f"{fabric_keys[0]} is only for backend: fabric")
        if self.backend == "fabric":
            missing = [k for k in ("peer", "msp_id") if getattr(self, k) is None]
            if missing:
                raise ValueError(f"backend fabric needs {' and '.join(missing)}")
        return self

    @property
    def chaincode_name(self) -> str:
        return self.chaincode or "caravan"

    @field_validator("node_identity")
    @classmethod
    def _identity(cls, value: str) -> str:
        if not IDENTITY_NAME.match(value):
            raise ValueError("must be a wallet name (a-z, 0-9, '-'; up to 64)")
        return value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class IndexConfig(_Strict):
    url: str = "sqlite:///data/index.db"

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in ("sqlite", "postgresql", "postgresql+psycopg"):
            raise ValueError("must be sqlite:///PATH or postgresql://USER@HOST/DB")
        return value


class HostedOrg(_Strict):
    """An organisation hosted on this node (its MSP id is ``org``)."""

    org: OrgId
    country: CountryCode
    name: DisplayName


class Limits(_Strict):
    max_body_bytes: Annotated[int, Field(ge=1024, le=64 * 1024 * 1024)] = 1024 * 1024


class NodeConfig(_Strict):
    """The content of ``node.yaml``; :attr:`directory` is where it was loaded from."""

    version: Literal[1]
    channel: str = "caravan"
    listen: Listen = Field(default_factory=Listen)
    public_base_url: str | None = None
    ledger: LedgerConfig
    index: IndexConfig = Field(default_factory=IndexConfig)
    orgs: list[HostedOrg] = Field(min_length=1)
    limits: Limits = Field(default_factory=Limits)

    _directory: Path = PrivateAttr(default_factory=Path)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not CHANNEL.match(value):
            raise ValueError("must be 1-64 of A-Z, a-z, 0-9, '.', '_', '-'")
        return value

    @field_validator("public_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is not None and not _URL.match(value):
            raise ValueError("must be an http:// or https:// URL without query or fragment")
        return None if value is None else value.rstrip("/")

    @field_validator("orgs")
    @classmethod
    def _unique(cls, value: list[HostedOrg]) -> list[HostedOrg]:
        for attr in ("org", "country"):
            seen = [getattr(o, attr) for o in value]
            dupes = sorted({v for v in seen if seen.count(v) > 1})
            if dupes:
                raise ValueError(f"{attr} {dupes[0]} appears more than once")
        return value

    # ------------------------------------------------------------------ derived
    @classmethod
    def build(cls, directory: Path, data: dict[str, Any]) -> NodeConfig:
        """Validate ``data`` (the YAML mapping) for the node in ``directory``."""
        try:
            config = cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(f"{CONFIG_FILE}: {describe_validation_error(exc)}") from None
        config._directory = directory.absolute()
        return config

    @property
    def directory(self) -> Path:
        return self._directory

    @property
    def base_url(self) -> str:
        """The public base URL (from ``listen`` when not set)."""
        if self.public_base_url is not None:
            return self.public_base_url
        return f"http://{self.listen.host}:{self.listen.port}"

    def org_base_url(self, org: str) -> str:
        """Where the node serves ``org``'s CRLs, OCSP, TSA and CA certificates."""
        return f"{self.base_url}/orgs/{org}"

    def resolve(self, path: str | Path) -> Path:
        path = Path(path).expanduser()
        return path if path.is_absolute() else self._directory / path

    @property
    def ledger_path(self) -> Path:
        return self.resolve(self.ledger.path)

    @property
    def index_url(self) -> str:
        """The index URL, a relative SQLite path made absolute against DIR."""
        url = self.index.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and not url[len(prefix) :].startswith("/"):
            return prefix + str(self.resolve(url[len(prefix) :]))
        return url

    @property
    def pki_dir(self) -> Path:
        return self._directory / "pki"

    @property
    def wallet_dir(self) -> Path:
        return self._directory / "wallet"

    @property
    def secrets_dir(self) -> Path:
        return self._directory / "secrets"

    @property
    def org_ids(self) -> list[str]:
        return [o.org for o in self.orgs]

    def org(self, org: str) -> HostedOrg:
        for hosted in self.orgs:
            if hosted.org == org:
                return hosted
        raise ConfigError(f"{org} is not hosted on this node (hosted: {', '.join(self.org_ids)})")

    def to_yaml(self) -> str:
        data = self.model_dump(mode="json", exclude_none=True)
        data["orgs"] = [dict(o) for o in data["orgs"]]
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def describe_validation_error(exc: ValidationError) -> str:
    """One line for the first problem, naming the key (``listen.port``); node.yaml and
    the consortium definition (node/network) report their errors with it."""
    error = exc.errors(include_url=False)[0]
    loc = ".".join(str(p) for p in error["loc"]) or "(top level)"
    kind = error["type"]
    if kind == "extra_forbidden":
        return f"unknown key {loc}"
    if kind == "missing":
        return f"missing key {loc}"
    message = str(error["msg"]).removeprefix("Value error, ").replace("Input should be", "must be")
    if kind == "too_short":
        return f"{loc}: must not be empty"
    if kind in ("greater_than_equal", "less_than_equal", "literal_error", "int_type"):
        return f"{loc}: {message} (got {error['input']!r})"
    if loc == "(top level)":
        return message
    return f"{loc}: {message}"


def load_config(directory: Path) -> NodeConfig:
    """Read and validate ``DIR/node.yaml``."""
    path = directory / CONFIG_FILE
    try:
        if path.stat().st_size > _MAX_CONFIG_BYTES:
            raise ConfigError(f"{path} is larger than {_MAX_CONFIG_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"no {CONFIG_FILE} in {directory} (create a node with 'caravan node init')"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{CONFIG_FILE}: not valid YAML{where}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{CONFIG_FILE}: must be a mapping of keys (version, ledger, orgs …)")
    return NodeConfig.build(directory, data)


def save_config(config: NodeConfig, directory: Path | None = None) -> Path:
    """Write ``node.yaml`` atomically into ``directory`` (default: where it came from)."""
    directory = config.directory if directory is None else directory
    path = directory / CONFIG_FILE
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(path, config.to_yaml().encode("utf-8"))
    return path

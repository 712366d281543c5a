"""The node's wallet: the identities it and its users act as, one JSON file each.

>>> # wallet = Wallet(Path("node/wallet"))
>>> # entry = wallet.issue(kz_pki, "kz-customs-officer", role="officer")   # new key + cert
>>> # wallet.names()                                       # ['kz-customs-officer']
>>> # signer = wallet.signer("kz-customs-officer", {"KZ-CUSTOMS": kz_pki})  # a KeySigner

``DIR/wallet/<name>.json`` holds ``{name, msp_id, role, sez, certificate (PEM), chain
(PEM list), key: {org, label}}``. The key stays in the organisation's key store
(encrypted PKCS#8 file or PKCS#11 token) and is used only through it: the wallet holds
no key material, and nothing here reads, prints or logs a passphrase.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki, atomic_write
from trust_services.profiles import CertProfile

from .config import IDENTITY_NAME
from .errors import NodeError
from .proposal import KeySigner

__all__ = [
    "ROLES",
    "IdentityExists",
    "KeyRef",
    "UnknownIdentity",
    "Wallet",
    "WalletEntry",
    "WalletError",
]

#: member roles a ledger identity may carry (chaincode/identity.py reads them)
ROLES = ("admin", "officer", "sez-operator", "verifier", "node")
_KEYS = frozenset(("name", "msp_id", "role", "sez", "certificate", "chain", "key"))
_MAX_ENTRY_BYTES = 64 * 1024
_PEM = serialization.Encoding.PEM


class WalletError(NodeError):
    """A wallet entry that cannot be read, written or used."""

    code = "WALLET_ERROR"
    status = 500


class UnknownIdentity(WalletError):
    code = "UNKNOWN_IDENTITY"
    status = 404


class IdentityExists(WalletError):
    code = "IDENTITY_EXISTS"
    status = 409


@dataclass(frozen=True)
class KeyRef:
    """Where the private key is: a label in an organisation's key store."""

    org: str
    label: str


@dataclass(frozen=True)
class WalletEntry:
    name: str
    msp_id: str
    role: str
    sez: str | None
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    key: KeyRef

    @property
    def cert_sha256(self) -> str:
        return hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "msp_id": self.msp_id,
            "role": self.role,
            "sez": self.sez,
            "certificate": self.certificate.public_bytes(_PEM).decode("ascii"),
            "chain": [c.public_bytes(_PEM).decode("ascii") for c in self.chain],
            "key": {"org": self.key.org, "label": self.key.label},
        }

    @classmethod
    def from_json(cls, data: Any, source: str = "wallet entry") -> WalletEntry:
        if not isinstance(data, dict) or set(data) != _KEYS:
            members = ", ".join(sorted(_KEYS))
            raise WalletError(f"{source}: must be an object with exactly {members}")
        name, msp_id, role, sez = data["name"], data["msp_id"], data["role"], data["sez"]
        if not isinstance(name, str) or not IDENTITY_NAME.match(name):
            raise WalletError(f"{source}: name must be a wallet name (a-z, 0-9, '-')")
        if not isinstance(msp_id, str) or not msp_id:
            raise WalletError(f"{source}: msp_id must be a non-empty string")
        _check_role(role, sez, source)
        key = data["key"]
        if (
            not isinstance(key, dict)
            or set(key) != {"org", "label"}
            or not all(isinstance(v, str) and v for v in key.values())
        ):
            raise WalletError(f"{source}: key must be {{org, label}} (strings)")
        chain = data["chain"]
        if not isinstance(chain, list) or len(chain) > 4:
            raise WalletError(f"{source}: chain must be a list of at most 4 PEM certificates")
        return cls(
            name,
            msp_id,
            role,
            sez,
            _load_pem(data["certificate"], f"{source}: certificate"),
            tuple(_load_pem(c, f"{source}: chain certificate") for c in chain),
            KeyRef(key["org"], key["label"]),
        )


def _check_role(role: Any, sez: Any, source: str) -> None:
    if role not in ROLES:
        raise WalletError(f"{source}: role must be one of {', '.join(ROLES)} (got {role!r})")
    if sez is not None and not (isinstance(sez, str) and sez):
        raise WalletError(f"{source}: sez must be a string or null")
    if role == "sez-operator" and sez is None:
        raise WalletError(f"{source}: an sez-operator needs the zone it writes for (sez)")
    if role != "sez-operator" and sez is not None:
        raise WalletError(f"{source}: only an sez-operator has an sez")


def _load_pem(value: Any, what: str) -> x509.Certificate:
    if not isinstance(value, str) or "-----BEGIN CERTIFICATE-----" not in value:
        raise WalletError(f"{what} must be a PEM certificate")
    try:
        return x509.load_pem_x509_certificate(value.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise WalletError(f"{what} cannot be parsed") from None


class Wallet:
    """The wallet entries in one directory (``DIR/wallet``)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _path(self, name: str) -> Path:
        if not isinstance(name, str) or not IDENTITY_NAME.match(name):
            raise UnknownIdentity(f"not a wallet name: {name!r} (a-z, 0-9, '-'; up to 64)")
        return self.directory / f"{name}.json"

    def names(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if IDENTITY_NAME.match(p.stem))

    def __contains__(self, name: object) -> bool:
        return (
            isinstance(name, str)
            and IDENTITY_NAME.match(name) is not None
            and self._path(name).is_file()
        )

    def get(self, name: str) -> WalletEntry:
        path = self._path(name)
        try:
            if path.stat().st_size > _MAX_ENTRY_BYTES:
                raise WalletError(f"wallet entry {name} is larger than {_MAX_ENTRY_BYTES} bytes")
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise UnknownIdentity(f"no identity {name!r} in the wallet") from None
        except (OSError, ValueError) as exc:
            raise WalletError(f"wallet entry {name} cannot be read: {exc}") from None
        entry = WalletEntry.from_json(data, f"wallet entry {name}")
        if entry.name != name:
            raise WalletError(f"wallet entry {name} names another identity ({entry.name})")
        return entry

    def entries(self) -> list[WalletEntry]:
        return [self.get(name) for name in self.names()]

    def add(self, entry: WalletEntry, *, replace: bool = False) -> Path:
        """Write ``entry`` (certificates and key reference only); refuse an existing name."""
        path = self._path(entry.name)
        _check_role(entry.role, entry.sez, f"identity {entry.name}")
        if path.exists() and not replace:
            raise IdentityExists(f"the wallet already has an identity {entry.name!r}")
        data = json.dumps(entry.to_json(), indent=2).encode()
        self.directory.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
        return path

    def issue(
        self,
        pki: OrgPki,
        name: str,
        *,
        role: str,
        sez: str | None = None,
        common_name: str | None = None,
    ) -> WalletEntry:
        """A new key in ``pki``'s key store (label = ``name``), a member certificate with
        ``role`` (and ``sez``) from its issuing CA, and the wallet entry naming both."""
        self._path(name)
        if name in self:
            raise IdentityExists(f"the wallet already has an identity {name!r}")
        _check_role(role, sez, f"identity {name}")
        try:
            pki.key("issuing")  # a wrong passphrase fails here, before a key is made
            issued = pki.issue_with_new_key(
                CertProfile.MEMBER,
                name,
                common_name=common_name or f"{pki.config.name} {name}",
                role=role,
                sez=sez,
            )
            chain = (pki.certificate("issuing"),)
        except TrustServiceError as exc:
            raise WalletError(f"cannot issue {name} for {pki.org}: {exc}") from None
        entry = WalletEntry(
            name, pki.org, role, sez, issued.certificate, chain, KeyRef(pki.org, name)
        )
        self.add(entry)
        return entry

    def signer(self, name: str, unlocked_pkis: Mapping[str, OrgPki]) -> KeySigner:
        """The identity ``name`` as a proposal signer, its key used through its org's store."""
        return signer_for(self.get(name), unlocked_pkis)


def signer_for(entry: WalletEntry, unlocked_pkis: Mapping[str, OrgPki]) -> KeySigner:
    pki = unlocked_pkis.get(entry.key.org)
    if pki is None:
        raise WalletError(
            f"identity {entry.name}: the key store of {entry.key.org} is not open on this node"
        )
    try:
        key = pki.key(entry.key.label)
    except TrustServiceError as exc:
        raise WalletError(f"identity {entry.name}: {exc}") from None
    ours = entry.certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    if ours != theirs:
        raise WalletError(
            f"identity {entry.name}: key {entry.key.label!r} of {entry.key.org} does not "
            "match its certificate"
        )
    chain: Sequence[x509.Certificate] = entry.chain
    return KeySigner(entry.msp_id, entry.certificate, chain, key)

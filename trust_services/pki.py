"""One customs administration's PKI: root CA → issuing CA → seal, TSA, OCSP and people.

On disk (``DIR/orgs/ORG``)::

    org.json          organisation, algorithm, public base URL, HSM token (if any)
    certs/*.pem       root, issuing, seal, tsa, ocsp and certs/issued/<serial>.pem
    keys/*.key.pem    encrypted PKCS#8 (a FileKeyStore); keys on a token stay there
    ca/index.json     every certificate issued, with its revocation status
    crl/*.crl         the current CRL of each CA

>>> # pki = init_pki(Path("node"), "KZ-CUSTOMS", country="KZ", name="KZ Customs",
>>> #                passphrase=b"…")
>>> # pki.certificate("seal").subject.rfc4514_string()
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPublicKeyTypes,
    PublicKeyTypes,
)
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import _der
from .errors import InputError, KeyStoreError, PkiError
from .keystore import (
    FileKeyStore,
    KeyAlgorithm,
    KeyStore,
    SigningKey,
    generate_software_key,
    x509_hash,
)
from .profiles import ROLE_ATTRIBUTE_OID, CertProfile, Endpoints, extensions_for, role_attributes

__all__ = [
    "FABRIC_ROLES",
    "REVOCATION_REASONS",
    "HsmConfig",
    "IssuedCertificate",
    "OrgConfig",
    "OrgPki",
    "RevocationStatus",
    "atomic_write",
    "init_pki",
    "load_pem_certificates",
]

ORG_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{1,31}$")
COUNTRY_PATTERN = re.compile(r"^[A-Z]{2}$")
SERVICE_CERTS = ("root", "issuing", "seal", "tsa", "ocsp")
DEFAULT_PORT = 8318

REVOCATION_REASONS: dict[str, x509.ReasonFlags] = {
    "unspecified": x509.ReasonFlags.unspecified,
    "key-compromise": x509.ReasonFlags.key_compromise,
    "ca-compromise": x509.ReasonFlags.ca_compromise,
    "affiliation-changed": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessation-of-operation": x509.ReasonFlags.cessation_of_operation,
    "certificate-hold": x509.ReasonFlags.certificate_hold,
    "privilege-withdrawn": x509.ReasonFlags.privilege_withdrawn,
}

_VALIDITY_DAYS = {
    CertProfile.ROOT: 20 * 365,
    CertProfile.ISSUING: 10 * 365,
    CertProfile.SEAL: 3 * 365,
    CertProfile.TSA: 6 * 365,
    CertProfile.OCSP: 2 * 365,
    CertProfile.OFFICER: 2 * 365,
    CertProfile.MEMBER: 2 * 365,
}
_CRL_DAYS = {"issuing": 7, "root": 90}
#: the node OUs a Hyperledger Fabric MSP with NodeOUs enabled expects (docs/fabric.md)
FABRIC_ROLES = ("client", "peer", "admin", "orderer")
_FABRIC_VALIDITY_DAYS = 2 * 365


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def default_base_url(org: str) -> str:
    return f"http://127.0.0.1:{DEFAULT_PORT}/orgs/{org}"


@dataclass(frozen=True)
class HsmConfig:
    """A PKCS#11 token holding the organisation's seal and TSA keys."""

    module: str
    token_label: str


@dataclass(frozen=True)
class OrgConfig:
    org: str
    country: str
    name: str
    org_identifier: str
    algorithm: KeyAlgorithm
    base_url: str
    hsm: HsmConfig | None = None
    #: which keys live on the token (the rest are in the file key store)
    hsm_keys: tuple[str, ...] = ()

    @property
    def endpoints(self) -> Endpoints:
        return Endpoints(self.base_url)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["algorithm"] = self.algorithm.value
        data["hsm_keys"] = list(self.hsm_keys)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OrgConfig:
        hsm = data.get("hsm")
        return cls(
            org=data["org"],
            country=data["country"],
            name=data["name"],
            org_identifier=data["org_identifier"],
            algorithm=KeyAlgorithm(data["algorithm"]),
            base_url=data["base_url"],
            hsm=HsmConfig(**hsm) if hsm else None,
            hsm_keys=tuple(data.get("hsm_keys", ())),
        )


@dataclass(frozen=True)
class RevocationStatus:
    serial: int
    status: str  # "good" | "revoked" | "unknown"
    revoked_at: dt.datetime | None = None
    reason: str | None = None


@dataclass(frozen=True)
class IssuedCertificate:
    serial: int
    profile: str
    label: str | None
    certificate: x509.Certificate
    path: Path


@dataclass
class _Index:
    """ca/index.json: the CA's record of what it issued and revoked."""

    certificates: dict[str, dict[str, Any]] = field(default_factory=dict)
    crl_numbers: dict[str, int] = field(default_factory=dict)


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``path`` whole or not at all: a synced temporary file renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).chmod(mode)
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_pem_certificates(data: bytes, source: str = "input") -> list[x509.Certificate]:
    """Certificates from PEM (one or many) or a single DER certificate."""
    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise InputError(f"{source} is not an X.509 certificate (PEM or DER)") from None
    return certs


class OrgPki:
    """An organisation's PKI on disk. Keys are reached only after :meth:`unlock`."""

    def __init__(self, root_dir: Path, org: str) -> None:
        if not ORG_PATTERN.match(org):
            raise PkiError(f"invalid organisation id {org!r} (2-32 of A-Z, a-z, 0-9, '-')")
        self.root_dir = root_dir
        self.path = root_dir / "orgs" / org
        config_path = self.path / "org.json"
        try:
            self.config = OrgConfig.from_json(json.loads(config_path.read_text()))
        except FileNotFoundError:
            raise PkiError(f"no PKI for {org} in {root_dir} (run 'caravan pki init')") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise PkiError(f"{config_path} is damaged: {exc}") from None
        self._certs: dict[str, x509.Certificate] = {}
        self._index_cache: tuple[int, _Index] | None = None
        self._files: FileKeyStore | None = None
        self._hsm: KeyStore | None = None

    # ---------------------------------------------------------------- identity
    @property
    def org(self) -> str:
        return self.config.org

    def certificate(self, name: str) -> x509.Certificate:
        if name not in self._certs:
            path = self.path / "certs" / f"{name}.pem"
            try:
                self._certs[name] = x509.load_pem_x509_certificate(path.read_bytes())
            except FileNotFoundError:
                raise PkiError(f"{self.org} has no {name!r} certificate") from None
        return self._certs[name]

    def pem(self, name: str) -> bytes:
        return self.certificate(name).public_bytes(serialization.Encoding.PEM)

    def chain(self, name: str = "seal") -> list[x509.Certificate]:
        """A service certificate followed by the issuing CA (the root is the anchor)."""
        return [self.certificate(name), self.certificate("issuing")]

    def issued(self, serial: int) -> IssuedCertificate:
        entry = self._index().certificates.get(f"{serial:x}")
        if entry is None:
            raise PkiError(f"{self.org} issued no certificate with serial {serial:x}")
        path = self.path / entry["path"]
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        return IssuedCertificate(serial, entry["profile"], entry.get("label"), cert, path)

    def list_issued(self) -> list[dict[str, Any]]:
        return [
            {"serial": s, **{k: v for k, v in e.items() if k != "path"}}
            for s, e in sorted(self._index().certificates.items())
        ]

    # ---------------------------------------------------------------- keys
    def unlock(self, passphrase: bytes, pin: bytes | None = None) -> OrgPki:
        """Open the key stores: the file store with ``passphrase``, the token with ``pin``."""
        self._files = FileKeyStore(self.path / "keys", passphrase)
        if self.config.hsm is not None:
            if pin is None:
                raise KeyStoreError(f"{self.org} keeps keys on a PKCS#11 token: a PIN is needed")
            from .pkcs11 import Pkcs11KeyStore

            self._hsm = Pkcs11KeyStore(self.config.hsm.module, self.config.hsm.token_label, pin)
        return self

    def _store_for(self, label: str) -> KeyStore:
        if label in self.config.hsm_keys:
            if self._hsm is None:
                raise KeyStoreError(f"the key store of {self.org} is locked")
            return self._hsm
        if self._files is None:
            raise KeyStoreError(f"the key store of {self.org} is locked")
        return self._files

    def key(self, label: str) -> SigningKey:
        key = self._store_for(label).load(label)
        self._check_key_matches(label, key)
        return key

    def _check_key_matches(self, label: str, key: SigningKey) -> None:
        cert_path = self.path / "certs" / f"{label}.pem"
        if (
            label in SERVICE_CERTS
            and cert_path.exists()
            and _spki(self.certificate(label).public_key()) != _spki(key.public_key())
        ):
            raise KeyStoreError(f"key {label!r} does not match the {label} certificate")

    # ---------------------------------------------------------------- issuing
    def _issuer(self, profile: CertProfile) -> tuple[str, x509.Certificate | None]:
        if profile is CertProfile.ROOT:
            return "root", None
        if profile is CertProfile.ISSUING:
            return "root", self.certificate("root")
        return "issuing", self.certificate("issuing")

    def _subject(
        self, profile: CertProfile, common_name: str, extra: Iterable[x509.NameAttribute[str]]
    ) -> x509.Name:
        attrs = [
            x509.NameAttribute(NameOID.COUNTRY_NAME, self.config.country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, self.config.name),
        ]
        if profile in (CertProfile.ROOT, CertProfile.ISSUING, CertProfile.SEAL, CertProfile.TSA):
            attrs.append(
                x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, self.config.org_identifier)
            )
        attrs.extend(extra)
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
        return x509.Name(attrs)

    def issue_certificate(
        self,
        profile: CertProfile,
        public_key: CertificateIssuerPublicKeyTypes,
        *,
        common_name: str,
        label: str | None,
        extra_name: Iterable[x509.NameAttribute[str]] = (),
        role: str | None = None,
        sez: str | None = None,
        sscd: bool = False,
        not_before: dt.datetime | None = None,
        not_after: dt.datetime | None = None,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """Issue a certificate of ``profile`` for ``public_key`` and record it in the index."""
        now = now or _utcnow()
        issuer_label, issuer_cert = self._issuer(profile)
        issuer_key = self.key(issuer_label)
        subject = self._subject(profile, common_name, extra_name)
        not_before = not_before or now - dt.timedelta(minutes=5)
        not_after = not_after or now + dt.timedelta(days=_VALIDITY_DAYS[profile])
        if issuer_cert is not None and not_after > issuer_cert.not_valid_after_utc:
            not_after = issuer_cert.not_valid_after_utc
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject if issuer_cert else subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
        )
        if issuer_cert is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key(issuer_cert)),
                False,
            )
        for ext, critical in extensions_for(
            profile,
            endpoints=self.config.endpoints,
            country=self.config.country,
            sscd=sscd,
            role=role,
            sez=sez,
        ):
            builder = builder.add_extension(ext, critical)
        cert = sign_certificate(builder, issuer_key)
        return self._record(cert, profile, label, issuer_label)

    def new_key(self, label: str, algorithm: KeyAlgorithm | None = None) -> SigningKey:
        """A new key in the organisation's key store (to certify with a Fabric profile)."""
        return self._store_for(label).generate(label, algorithm or self.config.algorithm)

    def issue_fabric_certificate(
        self,
        public_key: CertificateIssuerPublicKeyTypes,
        *,
        role: str,
        common_name: str,
        label: str,
        tls_hosts: Iterable[str] = (),
        tls: bool = False,
        member_role: str | None = None,
        now: dt.datetime | None = None,
    ) -> IssuedCertificate:
        """A certificate for a Hyperledger Fabric process or user, from the issuing CA.

        An identity certificate (``tls=False``) carries the node OU Fabric's MSP reads
        (``OU=client|peer|admin|orderer``); a TLS certificate (``tls=True``) is for a
        server and client both (EKU serverAuth + clientAuth) and names ``tls_hosts``
        (DNS names or IP addresses) as subject alternative names. The key is the
        caller's (Fabric reads its keys from files), or one made with :meth:`new_key`
        for an identity Caravan signs with; ``member_role`` then adds the Caravan role
        attribute a ledger member certificate carries.
        """
        import ipaddress

        if role not in FABRIC_ROLES:
            raise PkiError(f"a Fabric role is one of {', '.join(FABRIC_ROLES)} (got {role!r})")
        hosts = list(tls_hosts)
        if tls and not hosts:
            raise PkiError("a Fabric TLS certificate needs at least one host name or address")
        now = now or _utcnow()
        issuer_cert = self.certificate("issuing")
        subject = self._subject(
            CertProfile.MEMBER,
            common_name,
            [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role)],
        )
        not_after = min(
            now + dt.timedelta(days=_FABRIC_VALIDITY_DAYS), issuer_cert.not_valid_after_utc
        )
        endpoints = self.config.endpoints
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer_cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(not_after)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key(issuer_cert)),
                False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=tls,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                True,
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            full_name=[x509.UniformResourceIdentifier(endpoints.crl("issuing"))],
                            relative_name=None,
                            reasons=None,
                            crl_issuer=None,
                        )
                    ]
                ),
                False,
            )
        )
        if member_role is not None:
            builder = builder.add_extension(
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(ROLE_ATTRIBUTE_OID), role_attributes(member_role)
                ),
                False,
            )
        if tls:
            names: list[x509.GeneralName] = []
            for host in hosts:
                try:
                    names.append(x509.IPAddress(ipaddress.ip_address(host)))
                except ValueError:
                    names.append(x509.DNSName(host))
            builder = builder.add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            ).add_extension(x509.SubjectAlternativeName(names), False)
        cert = sign_certificate(builder, self.key("issuing"))
        return self._record_as(cert, f"fabric-{'tls' if tls else role}", label, "issuing")

    def _record(
        self, cert: x509.Certificate, profile: CertProfile, label: str | None, issuer: str
    ) -> IssuedCertificate:
        return self._record_as(cert, profile.value, label, issuer)

    def _record_as(
        self, cert: x509.Certificate, profile: str, label: str | None, issuer: str
    ) -> IssuedCertificate:
        serial_hex = f"{cert.serial_number:x}"
        rel = Path("certs") / "issued" / f"{serial_hex}.pem"
        atomic_write(self.path / rel, cert.public_bytes(serialization.Encoding.PEM))
        if profile in SERVICE_CERTS:
            atomic_write(
                self.path / "certs" / f"{profile}.pem",
                cert.public_bytes(serialization.Encoding.PEM),
            )
            self._certs.pop(profile, None)
        index = self._index()
        index.certificates[serial_hex] = {
            "profile": profile,
            "label": label,
            "subject": cert.subject.rfc4514_string(),
            "issuer": issuer,
            "not_after": cert.not_valid_after_utc.isoformat(),
            "path": rel.as_posix(),
            "revoked": None,
        }
        self._save_index(index)
        return IssuedCertificate(cert.serial_number, profile, label, cert, self.path / rel)

    def issue_with_new_key(
        self,
        profile: CertProfile,
        label: str,
        *,
        common_name: str,
        algorithm: KeyAlgorithm | None = None,
        **kwargs: Any,
    ) -> IssuedCertificate:
        """Generate a key in the organisation's key store and certify it."""
        store = self._store_for(label)
        key = store.generate(label, algorithm or self.config.algorithm)
        return self.issue_certificate(
            profile,
            key.public_key(),
            common_name=common_name,
            label=label,
            sscd=store.in_hsm,
            **kwargs,
        )

    # ---------------------------------------------------------------- revocation
    def revoke(
        self, serial: int, reason: str = "unspecified", *, when: dt.datetime | None = None
    ) -> RevocationStatus:
        if reason not in REVOCATION_REASONS:
            raise PkiError(
                f"unknown revocation reason {reason!r} (one of {', '.join(REVOCATION_REASONS)})"
            )
        index = self._index()
        entry = index.certificates.get(f"{serial:x}")
        if entry is None:
            raise PkiError(f"{self.org} issued no certificate with serial {serial:x}")
        if entry["profile"] == CertProfile.ROOT.value:
            raise PkiError("a root CA is withdrawn from the trust list, not revoked")
        if entry["revoked"] is not None:
            raise PkiError(f"certificate {serial:x} is already revoked")
        when = when or _utcnow()
        entry["revoked"] = {"at": when.isoformat(), "reason": reason}
        self._save_index(index)
        self.write_crl(entry["issuer"], now=when)
        return self.status(serial)

    def status(self, serial: int, issuer: str = "issuing") -> RevocationStatus:
        entry = self._index().certificates.get(f"{serial:x}")
        if entry is None or entry["issuer"] != issuer:
            return RevocationStatus(serial, "unknown")
        revoked = entry["revoked"]
        if revoked is None:
            return RevocationStatus(serial, "good")
        return RevocationStatus(
            serial, "revoked", dt.datetime.fromisoformat(revoked["at"]), revoked["reason"]
        )

    def build_crl(self, ca: str, *, now: dt.datetime | None = None) -> bytes:
        """A fresh CRL of ``ca`` (``issuing`` or ``root``), signed with its key."""
        now = now or _utcnow()
        index = self._index()
        number = index.crl_numbers.get(ca, 0) + 1
        index.crl_numbers[ca] = number
        ca_cert = self.certificate(ca)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca_cert.subject)
            .last_update(now - dt.timedelta(minutes=1))
            .next_update(now + dt.timedelta(days=_CRL_DAYS[ca]))
            .add_extension(x509.CRLNumber(number), False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_public_key(ca_cert)),
                False,
            )
        )
        for serial_hex, entry in sorted(index.certificates.items()):
            if entry["issuer"] != ca or entry["revoked"] is None:
                continue
            revoked = (
                x509.RevokedCertificateBuilder()
                .serial_number(int(serial_hex, 16))
                .revocation_date(dt.datetime.fromisoformat(entry["revoked"]["at"]))
            )
            reason = REVOCATION_REASONS[entry["revoked"]["reason"]]
            if reason is not x509.ReasonFlags.unspecified:
                revoked = revoked.add_extension(x509.CRLReason(reason), False)
            builder = builder.add_revoked_certificate(revoked.build())
        der = sign_crl(builder, self.key(ca))
        self._save_index(index)
        return der

    def write_crl(self, ca: str, *, now: dt.datetime | None = None) -> bytes:
        der = self.build_crl(ca, now=now)
        atomic_write(self.path / "crl" / f"{ca}.crl", der)
        return der

    def crl(self, ca: str) -> bytes:
        """The last published CRL of ``ca``."""
        if ca not in _CRL_DAYS:
            raise PkiError(f"no CRL named {ca!r}")
        try:
            return (self.path / "crl" / f"{ca}.crl").read_bytes()
        except FileNotFoundError:
            raise PkiError(f"{self.org} has published no {ca} CRL") from None

    # ---------------------------------------------------------------- index
    def _index(self) -> _Index:
        path = self.path / "ca" / "index.json"
        try:
            mtime = path.stat().st_mtime_ns
        except FileNotFoundError:
            return _Index()
        if self._index_cache is not None and self._index_cache[0] == mtime:
            cached = self._index_cache[1]
            return _Index(
                {k: dict(v) for k, v in cached.certificates.items()}, dict(cached.crl_numbers)
            )
        data = json.loads(path.read_text())
        index = _Index(data["certificates"], data.get("crl_numbers", {}))
        self._index_cache = (mtime, index)
        return _Index({k: dict(v) for k, v in index.certificates.items()}, dict(index.crl_numbers))

    def _save_index(self, index: _Index) -> None:
        payload = {"certificates": index.certificates, "crl_numbers": index.crl_numbers}
        atomic_write(
            self.path / "ca" / "index.json",
            json.dumps(payload, indent=1, sort_keys=True).encode(),
        )


def _spki(key: PublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def issuer_public_key(cert: x509.Certificate) -> CertificateIssuerPublicKeyTypes:
    """The public key of a certificate, refused unless it is one Caravan issues with."""
    key = cert.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        raise PkiError(f"unsupported public key type in {cert.subject.rfc4514_string()}")
    return key


def _digest_for(key: SigningKey) -> str:
    return key.algorithm.default_digest


def sign_certificate(builder: x509.CertificateBuilder, key: SigningKey) -> x509.Certificate:
    """Sign with a software key directly, or with a token key over the TBS bytes."""
    digest = _digest_for(key)
    software = key.certificate_signer()
    if software is not None:
        return builder.sign(software, x509_hash(digest))
    # A token key cannot be handed to cryptography: sign with a throw-away key of the
    # same algorithm to get the TBS bytes (which already name the signature
    # algorithm), then replace the signature with the token's.
    draft = builder.sign(generate_software_key(key.algorithm), x509_hash(digest))
    return x509.load_der_x509_certificate(_resign(draft.tbs_certificate_bytes, draft, key))


def sign_crl(builder: x509.CertificateRevocationListBuilder, key: SigningKey) -> bytes:
    digest = _digest_for(key)
    software = key.certificate_signer()
    if software is not None:
        crl = builder.sign(software, x509_hash(digest))
        return crl.public_bytes(serialization.Encoding.DER)
    draft = builder.sign(generate_software_key(key.algorithm), x509_hash(digest))
    return _resign(draft.tbs_certlist_bytes, draft, key)


def _resign(
    tbs: bytes, draft: x509.Certificate | x509.CertificateRevocationList, key: SigningKey
) -> bytes:
    from asn1crypto import core

    outer = core.Sequence.load(draft.public_bytes(serialization.Encoding.DER))
    algorithm_der = outer[1].dump()
    signature = key.sign(tbs, _digest_for(key))
    return _der.seq(tbs, algorithm_der, _der.bit_string(signature))


def init_pki(
    root_dir: Path,
    org: str,
    *,
    country: str,
    name: str,
    passphrase: bytes,
    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
    base_url: str | None = None,
    org_identifier: str | None = None,
    hsm: HsmConfig | None = None,
    hsm_pin: bytes | None = None,
    now: dt.datetime | None = None,
) -> OrgPki:
    """Create an administration's hierarchy: root → issuing → seal, TSA, OCSP; first CRLs."""
    if not ORG_PATTERN.match(org):
        raise PkiError(f"invalid organisation id {org!r} (2-32 of A-Z, a-z, 0-9, '-')")
    if not COUNTRY_PATTERN.match(country):
        raise PkiError(f"invalid country {country!r}: use ISO 3166-1 alpha-2, e.g. KZ")
    if not name.strip():
        raise PkiError("the organisation needs a name")
    path = root_dir / "orgs" / org
    if (path / "org.json").exists():
        raise PkiError(f"{org} already has a PKI in {root_dir}")
    now = now or _utcnow()
    base = (base_url or default_base_url(org)).rstrip("/")
    config = OrgConfig(
        org=org,
        country=country,
        name=name.strip(),
        org_identifier=org_identifier or f"NTR{country}-{org}",
        algorithm=algorithm,
        base_url=base,
        hsm=hsm,
        hsm_keys=("seal", "tsa") if hsm else (),
    )
    path.mkdir(parents=True, exist_ok=True)
    atomic_write(path / "org.json", json.dumps(config.to_json(), indent=2).encode())
    try:
        pki = OrgPki(root_dir, org).unlock(passphrase, hsm_pin)
        n = config.name
        pki.issue_with_new_key(CertProfile.ROOT, "root", common_name=f"{n} Root CA", now=now)
        pki.issue_with_new_key(
            CertProfile.ISSUING, "issuing", common_name=f"{n} Issuing CA", now=now
        )
        pki.issue_with_new_key(CertProfile.SEAL, "seal", common_name=f"{n} e-Seal", now=now)
        pki.issue_with_new_key(CertProfile.TSA, "tsa", common_name=f"{n} TSA", now=now)
        pki.issue_with_new_key(CertProfile.OCSP, "ocsp", common_name=f"{n} OCSP Responder", now=now)
        pki.write_crl("root", now=now)
        pki.write_crl("issuing", now=now)
    except BaseException:
        # leave nothing half made behind; keys on a token are removed by the caller's
        # token re-initialisation (tokens are never wiped implicitly)
        import shutil

        shutil.rmtree(path, ignore_errors=True)
        raise
    return pki

"""Key stores: the only way Caravan code touches a private key.

A :class:`SigningKey` signs bytes and exposes its public key; it never exposes the
private key material. Two stores implement :class:`KeyStore`:

* :class:`FileKeyStore` — encrypted PKCS#8 PEM files (one passphrase per store);
* :class:`trust_services.pkcs11.Pkcs11KeyStore` — keys generated on a PKCS#11 token
  (an HSM; SoftHSM2 in the tests), never extractable.

>>> import tempfile, pathlib
>>> store = FileKeyStore(pathlib.Path(tempfile.mkdtemp()), b"correct horse")
>>> key = store.generate("seal", KeyAlgorithm.EC_P256)
>>> len(key.sign(b"record", "sha256")) > 60
True
"""

from __future__ import annotations

import getpass
import os
import re
import sys
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificateIssuerPublicKeyTypes,
)

from .errors import KeyStoreError, PassphraseError

__all__ = [
    "DIGESTS",
    "FileKeyStore",
    "KeyAlgorithm",
    "KeyStore",
    "SigningKey",
    "resolve_passphrase",
    "signature_algorithm_oid",
]

PASSPHRASE_ENV = "CARAVAN_PASSPHRASE"  # noqa: S105 - a variable name, not a secret
_LABEL = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class KeyAlgorithm(StrEnum):
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    RSA_3072 = "rsa-3072"

    @property
    def is_ec(self) -> bool:
        return self is not KeyAlgorithm.RSA_3072

    @property
    def default_digest(self) -> str:
        return "sha384" if self is KeyAlgorithm.EC_P384 else "sha256"


#: digest name → (OID, cryptography hash class, output length)
DIGESTS: dict[str, tuple[str, type[hashes.HashAlgorithm], int]] = {
    "sha256": ("2.16.840.1.101.3.4.2.1", hashes.SHA256, 32),
    "sha384": ("2.16.840.1.101.3.4.2.2", hashes.SHA384, 48),
    "sha512": ("2.16.840.1.101.3.4.2.3", hashes.SHA512, 64),
}

_EC_SIG_OIDS = {
    "sha256": "1.2.840.10045.4.3.2",
    "sha384": "1.2.840.10045.4.3.3",
    "sha512": "1.2.840.10045.4.3.4",
}
_RSA_SIG_OIDS = {
    "sha256": "1.2.840.113549.1.1.11",
    "sha384": "1.2.840.113549.1.1.12",
    "sha512": "1.2.840.113549.1.1.13",
}


def signature_algorithm_oid(algorithm: KeyAlgorithm, digest: str) -> str:
    """The CMS/X.509 signature algorithm OID for a key algorithm and digest."""
    table = _EC_SIG_OIDS if algorithm.is_ec else _RSA_SIG_OIDS
    try:
        return table[digest]
    except KeyError:
        raise KeyStoreError(f"unsupported digest {digest!r}") from None


def hash_class(digest: str) -> type[hashes.HashAlgorithm]:
    try:
        return DIGESTS[digest][1]
    except KeyError:
        raise KeyStoreError(f"unsupported digest {digest!r}") from None


def x509_hash(digest: str) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """The hash object that cryptography's X.509 builders take."""
    if digest == "sha256":
        return hashes.SHA256()
    if digest == "sha384":
        return hashes.SHA384()
    if digest == "sha512":
        return hashes.SHA512()
    raise KeyStoreError(f"unsupported digest {digest!r}")


@runtime_checkable
class SigningKey(Protocol):
    """A private key that can sign but never be read."""

    label: str
    algorithm: KeyAlgorithm

    #: True when the key lives in a secure signature creation device (PKCS#11 token)
    in_hsm: bool

    def public_key(self) -> CertificateIssuerPublicKeyTypes: ...

    def sign(self, data: bytes, digest: str) -> bytes:
        """Sign ``data`` (hashing it with ``digest``); ECDSA signatures are DER encoded."""
        ...

    def certificate_signer(self) -> CertificateIssuerPrivateKeyTypes | None:
        """A cryptography key for X.509 builders, or None when the key is not software."""
        ...


class KeyStore(Protocol):
    def generate(self, label: str, algorithm: KeyAlgorithm) -> SigningKey: ...

    def load(self, label: str) -> SigningKey: ...

    def has(self, label: str) -> bool: ...

    @property
    def in_hsm(self) -> bool: ...


def check_label(label: str) -> str:
    if not _LABEL.match(label):
        raise KeyStoreError(f"invalid key label {label!r} (use a-z, 0-9, '.', '_', '-')")
    return label


def generate_software_key(algorithm: KeyAlgorithm) -> CertificateIssuerPrivateKeyTypes:
    if algorithm is KeyAlgorithm.EC_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm is KeyAlgorithm.EC_P384:
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


@dataclass(eq=False)
class SoftwareKey:
    """A key held in process memory after being decrypted from a :class:`FileKeyStore`."""

    label: str
    algorithm: KeyAlgorithm
    _key: CertificateIssuerPrivateKeyTypes = field(repr=False)
    in_hsm: bool = False

    def public_key(self) -> CertificateIssuerPublicKeyTypes:
        return self._key.public_key()

    def sign(self, data: bytes, digest: str) -> bytes:
        algo = hash_class(digest)()
        key = self._key
        if isinstance(key, ec.EllipticCurvePrivateKey):
            return key.sign(data, ec.ECDSA(algo))
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), algo)
        raise KeyStoreError(f"key {self.label!r} has an unsupported type")

    def certificate_signer(self) -> CertificateIssuerPrivateKeyTypes:
        return self._key

    def __repr__(self) -> str:  # never show key material
        return f"SoftwareKey(label={self.label!r}, algorithm={self.algorithm.value})"


def _algorithm_of(key: CertificateIssuerPrivateKeyTypes) -> KeyAlgorithm:
    if isinstance(key, ec.EllipticCurvePrivateKey):
        if key.curve.name == "secp256r1":
            return KeyAlgorithm.EC_P256
        if key.curve.name == "secp384r1":
            return KeyAlgorithm.EC_P384
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072:
        return KeyAlgorithm.RSA_3072
    raise KeyStoreError("unsupported key type in key store")


class FileKeyStore:
    """Encrypted PKCS#8 PEM files in one directory, all under one passphrase."""

    in_hsm = False

    def __init__(self, directory: Path, passphrase: bytes) -> None:
        if not passphrase:
            raise PassphraseError("an empty passphrase cannot protect a key store")
        self.directory = directory
        self._passphrase = passphrase
        self._cache: dict[str, SoftwareKey] = {}

    def __repr__(self) -> str:
        return f"FileKeyStore({str(self.directory)!r})"

    def _path(self, label: str) -> Path:
        return self.directory / f"{check_label(label)}.key.pem"

    def has(self, label: str) -> bool:
        return self._path(label).exists()

    def generate(self, label: str, algorithm: KeyAlgorithm) -> SoftwareKey:
        path = self._path(label)
        if path.exists():
            raise KeyStoreError(f"key {label!r} already exists in {self.directory}")
        key = generate_software_key(algorithm)
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(self._passphrase),
        )
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        handle = SoftwareKey(label, algorithm, key)
        self._cache[label] = handle
        return handle

    def load(self, label: str) -> SoftwareKey:
        if label in self._cache:
            return self._cache[label]
        path = self._path(label)
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise KeyStoreError(f"no key {label!r} in {self.directory}") from None
        except OSError as exc:
            raise KeyStoreError(f"cannot read key {label!r}: {exc.strerror}") from None
        try:
            key = serialization.load_pem_private_key(pem, password=self._passphrase)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise PassphraseError(
                f"wrong passphrase for the key store in {self.directory} "
                f"(or the key file {path.name} is damaged)"
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise KeyStoreError(f"key {label!r} has an unsupported type")
        handle = SoftwareKey(label, _algorithm_of(key), key)
        self._cache[label] = handle
        return handle


def resolve_passphrase(
    passphrase_file: Path | None = None,
    *,
    env_var: str = PASSPHRASE_ENV,
    what: str = "key store passphrase",
    confirm: bool = False,
) -> bytes:
    """Find the passphrase: a file, then an environment variable, then a terminal prompt.

    Without any of them and without a terminal it raises at once — it never waits.
    """
    if passphrase_file is not None:
        try:
            value = passphrase_file.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise KeyStoreError(
                f"cannot read passphrase file {passphrase_file}: {exc.strerror}"
            ) from None
        if not value:
            raise PassphraseError(f"passphrase file {passphrase_file} is empty")
        return value
    env = os.environ.get(env_var)
    if env:
        return env.encode("utf-8")
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise KeyStoreError(
            f"no {what}: give --passphrase-file, set {env_var}, or run in a terminal"
        )
    first = getpass.getpass(f"{what}: ")
    if confirm and getpass.getpass(f"{what} (again): ") != first:
        raise PassphraseError("the passphrases do not match")
    if not first:
        raise PassphraseError(f"empty {what}")
    return first.encode("utf-8")

"""PKCS#11 key store: keys generated on a token (an HSM; SoftHSM2 in the tests).

The private keys are created on the token as sensitive, never-extractable objects and are
only ever asked to sign. A :class:`Pkcs11KeyStore` keeps one logged-in session open for
its lifetime; stores that open the same token in one process share that session (PKCS#11
login state belongs to the whole process, so a second ``C_Login`` would fail and closing
one session's login would log out every other), each store still proving the PIN.

>>> # store = Pkcs11KeyStore("/usr/lib/softhsm/libsofthsm2.so", "caravan", b"1234")
>>> # key = store.generate("seal", KeyAlgorithm.EC_P256)
>>> # key.sign(b"record", "sha256")        # DER ECDSA signature, as a software key gives
"""

from __future__ import annotations

import collections
import contextlib
import hashlib
import hmac
import os
import secrets
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass
from pkcs11 import exceptions as p11e
from pkcs11.util.ec import encode_named_curve_parameters

from . import _der
from .errors import KeyStoreError, PassphraseError
from .keystore import DIGESTS, KeyAlgorithm, check_label

__all__ = ["Pkcs11Key", "Pkcs11KeyStore", "load_library", "reinitialize_module"]

_CURVES: dict[KeyAlgorithm, tuple[str, ec.EllipticCurve, int]] = {
    KeyAlgorithm.EC_P256: ("secp256r1", ec.SECP256R1(), 32),
    KeyAlgorithm.EC_P384: ("secp384r1", ec.SECP384R1(), 48),
}
_EC_PARAMS: dict[bytes, KeyAlgorithm] = {
    encode_named_curve_parameters(name): algorithm
    for algorithm, (name, _curve, _size) in _CURVES.items()
}
_RSA_BITS = 3072
_RSA_MECHANISMS = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
_WRONG_PIN = (p11e.PinIncorrect, p11e.PinLenRange, p11e.PinInvalid)

# python-pkcs11 cannot load (C_Initialize) one library twice in a process: one object per
# module, keyed by its real path so that a symlink and its target are the same module.
_LIBS: dict[str, Any] = {}
_SESSIONS: dict[tuple[str, str], _SharedSession] = {}
_REGISTRY = threading.RLock()
_PENDING: collections.deque[_SharedSession] = collections.deque()


def _module_key(module: str) -> str:
    return str(Path(module).resolve()) if os.sep in module else module


def load_library(module: str) -> Any:
    """The (cached) ``pkcs11.lib`` of ``module``; KeyStoreError when it is not a module."""
    if not module:
        raise KeyStoreError("no PKCS#11 module given")
    key = _module_key(module)
    with _REGISTRY:
        lib = _LIBS.get(key)
        if lib is not None:
            return lib
        if os.sep in module and not Path(key).is_file():
            raise KeyStoreError(f"PKCS#11 module {module} not found")
        try:
            lib = pkcs11.lib(key)
        except p11e.PKCS11Error as exc:
            text = str(exc)
            if "C_GetFunctionList" in text or "OS exception" in text:
                raise KeyStoreError(f"{module} is not a PKCS#11 library") from None
            if "already initialized" in text:
                raise KeyStoreError(
                    f"PKCS#11 module {module} is already loaded in this process under another path"
                ) from None
            raise KeyStoreError(
                f"cannot initialise PKCS#11 module {module} ({type(exc).__name__})"
            ) from None
        _LIBS[key] = lib
        return lib


def reinitialize_module(module: str) -> None:
    """Re-initialise ``module`` (C_Finalize + C_Initialize) if it is loaded.

    A module lists its tokens when it is initialised; this makes tokens created since then
    visible (and re-reads the module's configuration, e.g. ``SOFTHSM2_CONF``). Every
    session on the module ends: stores and keys opened on it before are closed.
    """
    key = _module_key(module)
    with _REGISTRY:
        _drain_pending()
        lib = _LIBS.get(key)
        if lib is None:
            return
        for session_key in [k for k in _SESSIONS if k[0] == key]:
            _SESSIONS.pop(session_key).invalidate()
        try:
            lib.reinitialize()
        except p11e.PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot re-initialise PKCS#11 module {module} ({type(exc).__name__})"
            ) from None


def _pin_digest(salt: bytes, pin: bytes) -> bytes:
    return hmac.new(salt, pin, hashlib.sha256).digest()


class _SharedSession:
    """One logged-in R/W session on a token, shared by every store on it in the process."""

    def __init__(self, key: tuple[str, str], session: Any, pin: bytes) -> None:
        self.key = key
        self.token_label = key[1]
        self.session = session
        self.lock = threading.Lock()  # python-pkcs11 sessions are not thread-safe
        self.closed = False
        self.users = 0
        self._salt = secrets.token_bytes(16)
        self._pin_check = _pin_digest(self._salt, pin)

    def pin_matches(self, pin: bytes) -> bool:
        return hmac.compare_digest(self._pin_check, _pin_digest(self._salt, pin))

    def invalidate(self) -> None:
        """Forget the session without touching the module (it was re-initialised)."""
        with self.lock:
            self.closed = True
            self.session = None

    def release(self) -> None:
        """One user fewer; the last one logs out and closes the session."""
        with _REGISTRY:
            self._release_locked()
            _drain_pending()

    def release_from_gc(self) -> None:
        """:meth:`release` for a finalizer, which may run inside any thread at any point.

        A finalizer must not wait for the registry lock (its thread may hold a session lock
        that the registry's holder is waiting for): if the lock is busy, the release is
        done by the next registry operation.
        """
        if not _REGISTRY.acquire(blocking=False):
            _PENDING.append(self)
            return
        try:
            self._release_locked()
        finally:
            _REGISTRY.release()

    def _release_locked(self) -> None:
        self.users -= 1
        if self.users > 0 or self.closed:
            return
        if _SESSIONS.get(self.key) is self:
            del _SESSIONS[self.key]
        with self.lock:
            session, self.session, self.closed = self.session, None, True
        if session is not None:
            with contextlib.suppress(p11e.PKCS11Error):
                session.close()  # C_Logout + C_CloseSession


def _drain_pending() -> None:
    """Finish the releases that finalizers left (called with the registry lock held)."""
    while _PENDING:
        _PENDING.popleft()._release_locked()


class _Lease:
    """One store's hold on a shared session; keys keep it (and so the session) alive."""

    def __init__(self, shared: _SharedSession) -> None:
        self.shared = shared
        self._finalizer = weakref.finalize(self, shared.release_from_gc)

    @property
    def closed(self) -> bool:
        return not self._finalizer.alive or self.shared.closed

    def close(self) -> None:
        if self._finalizer.detach() is not None:
            self.shared.release()


def _open_token(module: str, token_label: str, pin: bytes) -> _SharedSession:
    lib = load_library(module)
    key = (_module_key(module), token_label)
    with _REGISTRY:
        _drain_pending()
        shared = _SESSIONS.get(key)
        if shared is not None:
            if not shared.pin_matches(pin):
                raise PassphraseError(f"wrong PIN for PKCS#11 token {token_label!r}")
            shared.users += 1
            return shared
        token = _find_token(lib, module, token_label)
        try:
            pin_text = pin.decode("utf-8")
        except UnicodeDecodeError:
            raise PassphraseError(f"wrong PIN for PKCS#11 token {token_label!r}") from None
        try:
            session = token.open(rw=True, user_pin=pin_text)
        except _WRONG_PIN:
            raise PassphraseError(f"wrong PIN for PKCS#11 token {token_label!r}") from None
        except p11e.PinLocked:
            raise PassphraseError(f"the PIN of PKCS#11 token {token_label!r} is locked") from None
        except p11e.PinExpired:
            raise PassphraseError(f"the PIN of PKCS#11 token {token_label!r} has expired") from None
        except p11e.UserAlreadyLoggedIn:
            raise KeyStoreError(
                f"PKCS#11 token {token_label!r} is already logged in by another part of "
                "this process"
            ) from None
        except p11e.PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot open PKCS#11 token {token_label!r} ({type(exc).__name__})"
            ) from None
        shared = _SharedSession(key, session, pin)
        shared.users = 1
        _SESSIONS[key] = shared
        return shared


def _find_token(lib: Any, module: str, token_label: str) -> Any:
    def matching() -> list[Any]:
        try:
            return list(lib.get_tokens(token_label=token_label))
        except p11e.PKCS11Error as exc:
            raise KeyStoreError(
                f"cannot list the tokens of PKCS#11 module {module} ({type(exc).__name__})"
            ) from None

    tokens = matching()
    if not tokens and not any(k[0] == _module_key(module) for k in _SESSIONS):
        # the module lists tokens when initialised: look again for a token made since,
        # which is safe while no session of this process is open on the module
        reinitialize_module(module)
        tokens = matching()
    if not tokens:
        raise KeyStoreError(f"no PKCS#11 token labelled {token_label!r} in {module}")
    if len(tokens) > 1:
        raise KeyStoreError(f"more than one PKCS#11 token is labelled {token_label!r}")
    return tokens[0]


def _key_id(label: str) -> bytes:
    """CKA_ID of the pair labelled ``label``: stable, so other tools can pair the objects."""
    return hashlib.sha256(b"caravan-key:" + label.encode("ascii")).digest()[:16]


def _ec_point(raw: bytes, size: int) -> bytes:
    """The uncompressed point from CKA_EC_POINT (DER OCTET STRING, or bare on some tokens)."""
    if len(raw) == 2 * size + 1 and raw[0] == 0x04:
        return raw
    if len(raw) == 2 * size + 3 and raw[0] == 0x04 and raw[1] == 2 * size + 1:
        return raw[2:]
    raise KeyStoreError("the token returned an EC point that is not an uncompressed point")


class Pkcs11Key:
    """A private key on a token: it signs, and its public key can be read."""

    in_hsm: bool = True

    def __init__(
        self,
        label: str,
        algorithm: KeyAlgorithm,
        *,
        lease: _Lease,
        private: Any,
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey,
    ) -> None:
        self.label = label
        self.algorithm = algorithm
        self.in_hsm = True
        self._lease = lease  # keeps the session open while the key is in use
        self._private = private
        self._public = public_key

    def __repr__(self) -> str:
        return (
            f"Pkcs11Key(label={self.label!r}, algorithm={self.algorithm.value}, "
            f"token={self._lease.shared.token_label!r})"
        )

    def public_key(self) -> ec.EllipticCurvePublicKey | rsa.RSAPublicKey:
        return self._public

    def certificate_signer(self) -> CertificateIssuerPrivateKeyTypes | None:
        """None: a token key cannot be handed to cryptography (see ``pki.sign_certificate``)."""
        return None

    def sign(self, data: bytes, digest: str) -> bytes:
        """Sign ``data`` hashed with ``digest``: DER ECDSA or PKCS#1 v1.5, as software keys."""
        if digest not in DIGESTS:
            raise KeyStoreError(f"unsupported digest {digest!r}")
        if self.algorithm.is_ec:
            message = hashlib.new(digest, data).digest()
            mechanism = Mechanism.ECDSA
        else:
            message = data
            mechanism = _RSA_MECHANISMS[digest]
        lease = self._lease
        shared = lease.shared
        with shared.lock:
            if lease.closed:
                raise KeyStoreError(
                    f"the session to PKCS#11 token {shared.token_label!r} is closed"
                )
            try:
                signature: bytes = self._private.sign(message, mechanism=mechanism)
            except p11e.PKCS11Error as exc:
                raise KeyStoreError(
                    f"PKCS#11 token {shared.token_label!r} could not sign with key "
                    f"{self.label!r} ({type(exc).__name__})"
                ) from None
        return _der.ecdsa_raw_to_der(signature) if self.algorithm.is_ec else signature


class Pkcs11KeyStore:
    """Keys on the PKCS#11 token ``token_label`` of ``module``, opened with ``pin``."""

    in_hsm: bool = True

    def __init__(self, module: str, token_label: str, pin: bytes) -> None:
        self.module = module
        self.token_label = token_label
        self._keys: dict[str, Pkcs11Key] = {}
        self._lease = _Lease(_open_token(module, token_label, pin))

    def __repr__(self) -> str:
        return f"Pkcs11KeyStore(module={self.module!r}, token={self.token_label!r})"

    def __enter__(self) -> Pkcs11KeyStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """End this store; the token session ends with the last store open on it."""
        self._keys.clear()
        self._lease.close()

    @property
    def closed(self) -> bool:
        return self._lease.closed

    @contextlib.contextmanager
    def _locked(self) -> Iterator[_SharedSession]:
        """The shared session, locked, or KeyStoreError when this store is closed."""
        shared = self._lease.shared
        with shared.lock:
            if self._lease.closed:
                raise KeyStoreError(
                    f"the key store on PKCS#11 token {self.token_label!r} is closed"
                )
            yield shared

    def _find(self, shared: _SharedSession, label: str, cls: ObjectClass) -> list[Any]:
        return list(shared.session.get_objects({Attribute.CLASS: cls, Attribute.LABEL: label}))

    def _error(self, action: str, label: str, exc: Exception) -> KeyStoreError:
        return KeyStoreError(
            f"PKCS#11 token {self.token_label!r} could not {action} key {label!r} "
            f"({type(exc).__name__})"
        )

    def has(self, label: str) -> bool:
        check_label(label)
        with self._locked() as shared:
            if label in self._keys:
                return True
            try:
                return bool(self._find(shared, label, ObjectClass.PRIVATE_KEY))
            except p11e.PKCS11Error as exc:
                raise self._error("look up", label, exc) from None

    def generate(self, label: str, algorithm: KeyAlgorithm) -> Pkcs11Key:
        check_label(label)
        algorithm = KeyAlgorithm(algorithm)
        key_id = _key_id(label)
        common: dict[Attribute, Any] = {Attribute.TOKEN: True}
        private_template = {
            **common,
            Attribute.PRIVATE: True,
            Attribute.SENSITIVE: True,
            Attribute.EXTRACTABLE: False,
            Attribute.SIGN: True,
            Attribute.DECRYPT: False,
            Attribute.UNWRAP: False,
            Attribute.DERIVE: False,
        }
        public_template = {**common, Attribute.PRIVATE: False, Attribute.VERIFY: True}
        options: dict[str, Any] = {
            "id": key_id,
            "label": label,
            "store": True,
            "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
            "public_template": public_template,
            "private_template": private_template,
        }
        with self._locked() as shared:
            try:
                if self._find(shared, label, ObjectClass.PRIVATE_KEY) or self._find(
                    shared, label, ObjectClass.PUBLIC_KEY
                ):
                    raise KeyStoreError(
                        f"key {label!r} already exists on PKCS#11 token {self.token_label!r}"
                    )
                session = shared.session
                if algorithm.is_ec:
                    params = session.create_domain_parameters(
                        KeyType.EC,
                        {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[algorithm][0])},
                        local=True,
                    )
                    public, private = params.generate_keypair(**options)
                else:
                    public, private = session.generate_keypair(KeyType.RSA, _RSA_BITS, **options)
                key = self._make_key(label, private, public)
            except p11e.PKCS11Error as exc:
                raise self._error("generate", label, exc) from None
        self._keys[label] = key
        return key

    def load(self, label: str) -> Pkcs11Key:
        check_label(label)
        with self._locked() as shared:
            if label in self._keys:
                return self._keys[label]
            try:
                privates = self._find(shared, label, ObjectClass.PRIVATE_KEY)
                if not privates:
                    raise KeyStoreError(f"no key {label!r} on token {self.token_label!r}")
                if len(privates) > 1:
                    raise KeyStoreError(
                        f"more than one key {label!r} on token {self.token_label!r}"
                    )
                publics = self._find(shared, label, ObjectClass.PUBLIC_KEY)
                if len(publics) > 1:
                    raise KeyStoreError(
                        f"more than one public key {label!r} on token {self.token_label!r}"
                    )
                key = self._make_key(label, privates[0], publics[0] if publics else None)
            except p11e.PKCS11Error as exc:
                raise self._error("load", label, exc) from None
        self._keys[label] = key
        return key

    def _make_key(self, label: str, private: Any, public: Any) -> Pkcs11Key:
        """Build the key handle (called with the session lock held)."""
        key_type = private[Attribute.KEY_TYPE]
        public_key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey
        if key_type == KeyType.EC:
            if public is None:
                raise KeyStoreError(f"EC key {label!r} has no public key on the token")
            algorithm = _EC_PARAMS.get(bytes(public[Attribute.EC_PARAMS]))
            if algorithm is None:
                raise KeyStoreError(f"key {label!r} is on a curve Caravan does not use")
            _name, curve, size = _CURVES[algorithm]
            point = _ec_point(bytes(public[Attribute.EC_POINT]), size)
            try:
                public_key = ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
            except ValueError:
                raise KeyStoreError(f"key {label!r} has an invalid EC public key") from None
        elif key_type == KeyType.RSA:
            source = public if public is not None else private
            n = int.from_bytes(source[Attribute.MODULUS], "big")
            e = int.from_bytes(source[Attribute.PUBLIC_EXPONENT], "big")
            if n.bit_length() != _RSA_BITS:
                raise KeyStoreError(f"RSA key {label!r} is not {_RSA_BITS} bits")
            algorithm = KeyAlgorithm.RSA_3072
            public_key = rsa.RSAPublicNumbers(e, n).public_key()
        else:
            raise KeyStoreError(f"key {label!r} has an unsupported type")
        return Pkcs11Key(
            label, algorithm, lease=self._lease, private=private, public_key=public_key
        )

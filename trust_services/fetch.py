"""Revocation data from the network: CRLs by distribution point, OCSP by AIA.

:class:`HttpRevocationSource` implements :class:`~trust_services.revocation.RevocationSource`
with httpx: a CRL is fetched with GET from an http(s) distribution-point URL, an OCSP
response with POST ``application/ocsp-request`` (RFC 6960 appendix A) to the responder
named in the certificate's AIA, with a fresh nonce (RFC 8954) that must come back if the
responder echoes one. Responses are size-capped (CRL 10 MiB, OCSP 1 MiB) and time-capped;
any failure — refused connection, timeout, HTTP error, oversize, garbage — is ``None``
(the validator then says INDETERMINATE/TRY_LATER), never an exception.

What was fetched is kept in memory until its nextUpdate (at most ``max_age``), so
validating many signatures of one signer costs one fetch; :class:`CachingRevocationSource`
gives any other source the same cache.

>>> source = HttpRevocationSource(timeout=2.0)
>>> source.crl("file:///etc/passwd") is None        # only http and https
True
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from .ocsp import build_ocsp_request
from .profiles import ocsp_urls as _ocsp_urls
from .revocation import RevocationSource

__all__ = [
    "MAX_CRL_BYTES",
    "MAX_OCSP_BYTES",
    "CachingRevocationSource",
    "HttpRevocationSource",
    "RevocationCache",
]

MAX_CRL_BYTES = 10 * 1024 * 1024
MAX_OCSP_BYTES = 1024 * 1024
DEFAULT_MAX_AGE = dt.timedelta(hours=24)
_CACHE_LIMIT = 10_000


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class _Entry:
    der: bytes
    expires: dt.datetime


class RevocationCache:
    """DER revocation data kept until its nextUpdate (capped by ``max_age``)."""

    def __init__(
        self,
        *,
        max_age: dt.timedelta = DEFAULT_MAX_AGE,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self.max_age = max_age
        self.clock = clock
        self._entries: dict[tuple[str, bytes | str, int], _Entry] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, bytes | str, int]) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            if self.clock() >= entry.expires:
                del self._entries[key]
                return None
            return entry.der

    def put(
        self, key: tuple[str, bytes | str, int], der: bytes, next_update: dt.datetime | None
    ) -> None:
        now = self.clock()
        expires = now + self.max_age
        if next_update is not None:
            expires = min(expires, next_update)
        if expires <= now:
            return
        with self._lock:
            if len(self._entries) >= _CACHE_LIMIT:
                self._entries.clear()
            self._entries[key] = _Entry(der, expires)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _issuer_key(issuer: x509.Certificate) -> bytes:
    return hashlib.sha256(issuer.public_bytes(serialization.Encoding.DER)).digest()


def ocsp_next_update(der: bytes) -> tuple[bool, dt.datetime | None]:
    """(successful, earliest nextUpdate) of a DER OCSPResponse; (False, None) if garbage."""
    try:
        resp = ocsp.load_der_ocsp_response(der)
        if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
            return False, None
        updates = [s.next_update_utc for s in resp.responses if s.next_update_utc is not None]
    except (ValueError, TypeError):
        return False, None
    except Exception:  # UnsupportedAlgorithm and friends: unusable
        return False, None
    return True, min(updates) if updates else None


def crl_next_update(der: bytes) -> tuple[bool, dt.datetime | None]:
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        return False, None
    return True, crl.next_update_utc


class CachingRevocationSource:
    """Any :class:`RevocationSource`, remembered until each answer's nextUpdate."""

    def __init__(self, inner: RevocationSource, cache: RevocationCache | None = None) -> None:
        self.inner = inner
        self.cache = cache or RevocationCache()

    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        key = ("ocsp", _issuer_key(issuer), cert.serial_number)
        der = self.cache.get(key)
        if der is not None:
            return der
        der = self.inner.ocsp(cert, issuer)
        if der is not None:
            ok, next_update = ocsp_next_update(der)
            if ok:
                self.cache.put(key, der, next_update)
        return der

    def crl(self, url: str) -> bytes | None:
        key = ("crl", url, 0)
        der = self.cache.get(key)
        if der is not None:
            return der
        der = self.inner.crl(url)
        if der is not None:
            ok, next_update = crl_next_update(der)
            if ok:
                self.cache.put(key, der, next_update)
        return der


class HttpRevocationSource:
    """Fetches CRLs and OCSP responses over http(s), with limits and a cache."""

    def __init__(
        self,
        *,
        timeout: float = 5.0,
        max_crl_bytes: int = MAX_CRL_BYTES,
        max_ocsp_bytes: int = MAX_OCSP_BYTES,
        cache: RevocationCache | None = None,
        client: httpx.Client | None = None,
    ) -> None:
        self.timeout = timeout
        self.max_crl_bytes = max_crl_bytes
        self.max_ocsp_bytes = max_ocsp_bytes
        self.cache = cache if cache is not None else RevocationCache()
        self._client = client or httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False
        )
        #: how many network requests were made (for tests and the benchmark)
        self.requests = 0

    def close(self) -> None:
        self._client.close()

    # ------------------------------------------------------------------ transport
    def _fetch(self, method: str, url: str, limit: int, body: bytes | None = None) -> bytes | None:
        if urlsplit(url).scheme not in ("http", "https"):
            return None
        headers = {"Accept": "application/ocsp-response, application/pkix-crl, */*"}
        if body is not None:
            headers["Content-Type"] = "application/ocsp-request"
        self.requests += 1
        try:
            with self._client.stream(method, url, content=body, headers=headers) as resp:
                if resp.status_code != 200:
                    return None
                declared = resp.headers.get("content-length")
                if declared is not None and declared.isdigit() and int(declared) > limit:
                    return None
                chunks: list[bytes] = []
                size = 0
                for chunk in resp.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        return None
                    chunks.append(chunk)
                return b"".join(chunks)
        except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError):
            return None

    # ------------------------------------------------------------------ RevocationSource
    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        key = ("ocsp", _issuer_key(issuer), cert.serial_number)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        for url in _ocsp_urls(cert):
            nonce = secrets.token_bytes(16)
            try:
                request = build_ocsp_request(cert, issuer, nonce=nonce)
            except (ValueError, TypeError):
                return None
            der = self._fetch("POST", url, self.max_ocsp_bytes, request)
            if der is None:
                continue
            ok, next_update = ocsp_next_update(der)
            if not ok or not _nonce_ok(der, nonce):
                continue
            self.cache.put(key, der, next_update)
            return der
        return None

    def crl(self, url: str) -> bytes | None:
        key = ("crl", url, 0)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        der = self._fetch("GET", url, self.max_crl_bytes)
        if der is None:
            return None
        if der.startswith(b"-----BEGIN"):
            try:
                der = x509.load_pem_x509_crl(der).public_bytes(serialization.Encoding.DER)
            except ValueError:
                return None
        ok, next_update = crl_next_update(der)
        if not ok:
            return None
        self.cache.put(key, der, next_update)
        return der


def _nonce_ok(der: bytes, nonce: bytes) -> bool:
    """A responder may omit the nonce (RFC 8954 §2.1) but must not return another."""
    try:
        resp = ocsp.load_der_ocsp_response(der)
        ext = resp.extensions.get_extension_for_class(x509.OCSPNonce)
    except x509.ExtensionNotFound:
        return True
    except (ValueError, TypeError):
        return False
    return ext.value.nonce == nonce

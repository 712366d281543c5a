"""RFC 9421 HTTP Message Signatures for reads and services that are not ledger writes.

Client (any ``ProposalSigner``: a wallet identity whose key stays in its key store):

>>> client = httpx.Client(base_url=node, auth=SignedRequestAuth(officer))
>>> client.post("/v1/orgs/KZ-CUSTOMS/seal", json=record)

Node (a FastAPI dependency; ``trust`` checks the chain against the ledger's trust list):

>>> @app.post("/v1/orgs/{org}/seal")
... def seal(caller: Annotated[Caller, Depends(signed_caller(trust))]) -> ...

The client sends its certificate in the RFC 9440 ``Client-Cert`` header (``:base64 DER:``)
and the CA certificates above it in ``Client-Cert-Chain``, adds ``Content-Digest``
(RFC 9530, sha-256) when there is a body, and signs ``("@method" "@target-uri"
"content-digest" "client-cert")`` with ``created``, a random ``nonce``, ``keyid`` = the
certificate's SHA-256 (hex), ``alg`` from the key (ecdsa-p256-sha256, ecdsa-p384-sha384,
rsa-v1_5-sha256) and ``tag="caravan"``. :func:`verify_request` checks all of that with
the library, ``created`` within ±300 s of the node's clock, then asks ``trust`` who the
certificate belongs to, and, given a :class:`ReplayCache`, that no request with the same
``keyid`` and ``nonce`` came before (a signature is good for one request). Failures are
:class:`Unauthenticated` (401), :class:`UntrustedCaller` (403) or :class:`ReplayCacheFull`
(429).

The signing key is used only through ``signer.sign(data, digest)`` (it may live in a
PKCS#11 token), so the client uses the library's ``prepare()`` / ``apply()`` pair for
external signers rather than ``sign()``, which wants the key object from a key
resolver; the DER ECDSA signature is converted to RFC 9421's ``r ‖ s`` with the
algorithm class's ``signature_from_der``.
"""

from __future__ import annotations

import base64
import binascii
import collections
import datetime
import hashlib
import secrets
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import Request
from http_message_signatures import (
    HTTPMessageSigner,
    HTTPMessageVerifier,
    HTTPSignatureKeyResolver,
    InvalidSignature,
    algorithms,
)
from http_message_signatures.exceptions import HTTPMessageSignaturesException
from starlette.concurrency import run_in_threadpool

from chaincode.errors import ContractError
from chaincode.identity import identity_of
from chaincode.stub import Creator
from node.errors import NodeError
from node.proposal import ProposalSigner

__all__ = [
    "CLIENT_CERT",
    "CLIENT_CERT_CHAIN",
    "COVERED_COMPONENTS",
    "MAX_SKEW_S",
    "SIGNATURE_TAG",
    "Caller",
    "ReplayCache",
    "ReplayCacheFull",
    "SignedRequestAuth",
    "TrustCheck",
    "Unauthenticated",
    "UntrustedCaller",
    "caller_from",
    "certificate_keyid",
    "has_signature",
    "optional_caller",
    "signed_caller",
    "verify_request",
]

CLIENT_CERT = "Client-Cert"
CLIENT_CERT_CHAIN = "Client-Cert-Chain"
#: covered by every signature; ``content-digest`` is added when there is a body
COVERED_COMPONENTS = ("@method", "@target-uri", "client-cert")
SIGNATURE_TAG = "caravan"
SIGNATURE_LABEL = "caravan"
MAX_SKEW_S = 300
MAX_CERT_BYTES = 16 * 1024
MAX_CHAIN = 4
MAX_NONCE_CHARS = 256

_HINT = (
    'sign the request per RFC 9421: Signature-Input covering ("@method" "@target-uri" '
    '"content-digest" "client-cert") with created, nonce, keyid = SHA-256 hex of the '
    f'Client-Cert certificate and tag="{SIGNATURE_TAG}"; Content-Digest (sha-256) of the '
    "body; the certificate in Client-Cert (RFC 9440) and its CA chain in Client-Cert-Chain"
)
_ACCEPT_SIGNATURE = (
    f'{SIGNATURE_LABEL}=("@method" "@target-uri" "content-digest" "client-cert")'
    f';tag="{SIGNATURE_TAG}"'
)


@dataclass(frozen=True)
class Caller:
    """Who signed a request: member MSP id, certificate and role attributes."""

    msp_id: str
    certificate: x509.Certificate
    role: str | None
    attrs: Mapping[str, str]

    @property
    def keyid(self) -> str:
        return certificate_keyid(self.certificate)


#: the node's check of a caller certificate (+ carried CA certificates) against the
#: trust list: returns the Caller, raises a NodeError (403) or chaincode Forbidden
TrustCheck = Callable[[x509.Certificate, list[x509.Certificate]], Caller]


class Unauthenticated(NodeError):
    """401: no request signature, or one that does not verify (the detail says how to sign)."""

    status = 401
    code = "SIGNATURE_INVALID"

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message}; {_HINT}")
        self.code = code
        self.headers = {"Accept-Signature": _ACCEPT_SIGNATURE}


class UntrustedCaller(NodeError):
    """403: the signature verifies but the certificate is not trusted (or revoked)."""

    status = 403
    code = "UNTRUSTED_CALLER"


def certificate_keyid(certificate: x509.Certificate) -> str:
    """The ``keyid`` of a certificate: SHA-256 of its DER, lower-case hex."""
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()


def caller_from(msp_id: str, certificate: x509.Certificate) -> Caller:
    """A Caller with the role attributes of ``certificate`` (for ``trust`` functions)."""
    try:
        who = identity_of(Creator(msp_id, certificate.public_bytes(Encoding.DER)))
    except ContractError as exc:
        raise UntrustedCaller(str(exc)) from None
    return Caller(msp_id, certificate, who.role, who.attrs)


def _algorithm(public_key: object) -> tuple[type[algorithms.HTTPSignatureAlgorithm], str]:
    """The RFC 9421 algorithm class for a key and the digest ``signer.sign`` takes."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if isinstance(public_key.curve, ec.SECP256R1):
            return algorithms.ECDSA_P256_SHA256, "sha256"
        if isinstance(public_key.curve, ec.SECP384R1):
            return algorithms.ECDSA_P384_SHA384, "sha384"
    if isinstance(public_key, rsa.RSAPublicKey):
        return algorithms.RSA_V1_5_SHA256, "sha256"
    raise HTTPMessageSignaturesException(
        "the certificate key is not P-256, P-384 or RSA (no RFC 9421 algorithm)"
    )


_ECDSA = (algorithms.ECDSA_P256_SHA256, algorithms.ECDSA_P384_SHA384)


def _sf_binary(der: bytes) -> str:
    return ":" + base64.b64encode(der).decode("ascii") + ":"


@dataclass
class _Message:
    """The view of a request the library reads: method, absolute URL, header fields."""

    method: str
    url: str
    headers: Any


# ------------------------------------------------------------------------- client
class SignedRequestAuth(httpx.Auth):
    """httpx authentication that signs each request with ``signer``'s key (RFC 9421)."""

    requires_request_body = True

    def __init__(self, signer: ProposalSigner, *, clock: Callable[[], float] = time.time) -> None:
        self.signer = signer
        self.clock = clock
        self._der = signer.certificate.public_bytes(Encoding.DER)
        self._keyid = hashlib.sha256(self._der).hexdigest()
        self._chain = ", ".join(_sf_binary(c.public_bytes(Encoding.DER)) for c in signer.chain)
        self._algorithm, self._digest = _algorithm(signer.certificate.public_key())

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        self.sign(request)
        yield request

    def sign(self, request: httpx.Request) -> None:
        """Add Client-Cert(-Chain), Content-Digest (with a body) and the signature."""
        for name in ("Signature", "Signature-Input", "Content-Digest"):
            request.headers.pop(name, None)
        request.headers[CLIENT_CERT] = _sf_binary(self._der)
        if self._chain:
            request.headers[CLIENT_CERT_CHAIN] = self._chain
        else:
            request.headers.pop(CLIENT_CERT_CHAIN, None)
        body = request.content
        message = _Message(request.method, str(request.url), request.headers)
        signer = HTTPMessageSigner(signature_algorithm=self._algorithm)
        prepared = signer.prepare(
            message,
            key_id=self._keyid,
            created=datetime.datetime.fromtimestamp(self.clock(), datetime.UTC),
            nonce=secrets.token_urlsafe(18),
            label=SIGNATURE_LABEL,
            tag=SIGNATURE_TAG,
            covered_component_ids=COVERED_COMPONENTS,
            body=body or None,
        )
        signature = self.signer.sign(prepared.signature_base, self._digest)
        if issubclass(self._algorithm, _ECDSA):
            signature = self._algorithm.signature_from_der(signature)
        signer.apply(message, prepared, signature)


# ------------------------------------------------------------------------- server
class _StaleSignature(InvalidSignature):
    pass


class ReplayCacheFull(NodeError):
    """More signed requests in the replay window than the cache holds (429)."""

    code = "TOO_MANY_SIGNED_REQUESTS"
    status = 429


class ReplayCache:
    """The ``(keyid, nonce)`` of every signed request accepted in the last ``window_s``
    seconds (default twice 300 s: a signature created up to 300 s ahead of the node's clock
    stays acceptable until 300 s after that). Thread-safe; bounded: when ``max_entries``
    requests are in the window, new ones are refused (429) rather than an old entry
    dropped, which would let its request be replayed.
    """

    def __init__(
        self,
        *,
        window_s: float = 2 * MAX_SKEW_S,
        max_entries: int = 1_000_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window_s = window_s
        self.max_entries = max_entries
        self.clock = clock
        self._seen: set[bytes] = set()
        self._order: collections.deque[tuple[float, bytes]] = collections.deque()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._seen)

    def check_and_add(self, keyid: str, nonce: str) -> None:
        """Record the pair; :class:`Unauthenticated` (SIGNATURE_REPLAYED) if it is there."""
        digest = hashlib.sha256(f"{keyid}\x00{nonce}".encode()).digest()[:16]
        now = self.clock()
        with self._lock:
            order, seen = self._order, self._seen
            while order and order[0][0] <= now:
                seen.discard(order.popleft()[1])
            if digest in seen:
                raise Unauthenticated(
                    "SIGNATURE_REPLAYED",
                    "this signature (keyid and nonce) was already used: sign each request "
                    "afresh, with a new nonce",
                )
            if len(seen) >= self.max_entries:
                raise ReplayCacheFull(
                    f"more than {self.max_entries} signed requests in {self.window_s:g} s: "
                    "retry later"
                )
            seen.add(digest)
            order.append((now + self.window_s, digest))


class _Verifier(HTTPMessageVerifier):
    """The library's verifier with the node's clock and ±``MAX_SKEW_S`` for ``created``."""

    require_created = True

    def __init__(self, now: float, **kw: Any) -> None:
        super().__init__(**kw)
        self.now = now

    def validate_created_and_expires(self, sig_input: Any, max_age: Any = None) -> None:
        created = sig_input.params.get("created")
        if type(created) is not int:
            raise InvalidSignature('the signature has no integer "created" parameter')
        if abs(created - self.now) > MAX_SKEW_S:
            off = int(abs(self.now - created))
            when = "before" if created < self.now else "ahead of"
            raise _StaleSignature(
                f"the signature was created {off} s {when} the node's clock "
                f"(at most {MAX_SKEW_S} s either way)"
            )
        expires = sig_input.params.get("expires")
        if expires is not None and (type(expires) is not int or expires < self.now):
            raise _StaleSignature('the signature "expires" parameter is in the past')


class _CertificateKey(HTTPSignatureKeyResolver):
    """Resolves exactly one keyid: the SHA-256 of the Client-Cert certificate."""

    def __init__(self, certificate: x509.Certificate) -> None:
        self.certificate = certificate
        self.keyid = certificate_keyid(certificate)
        self.asked: str | None = None

    def resolve_public_key(self, key_id: str) -> Any:
        self.asked = key_id
        return self.certificate.public_key() if key_id == self.keyid else None

    def resolve_private_key(self, key_id: str) -> Any:
        raise HTTPMessageSignaturesException("the node never signs with a caller's key")


def _certificate(value: str, what: str) -> x509.Certificate:
    value = value.strip()
    if len(value) < 3 or value[0] != ":" or value[-1] != ":":
        raise Unauthenticated("BAD_CLIENT_CERT", f"{what} is not a byte sequence (:base64:)")
    text = value[1:-1]
    if len(text) > MAX_CERT_BYTES * 4 // 3 + 4:
        raise Unauthenticated("BAD_CLIENT_CERT", f"{what} is larger than {MAX_CERT_BYTES} bytes")
    try:
        return x509.load_der_x509_certificate(base64.b64decode(text, validate=True))
    except (binascii.Error, ValueError):
        raise Unauthenticated("BAD_CLIENT_CERT", f"{what} is not a DER certificate") from None


def _target_uri(request: Request) -> str:
    """The URI the client addressed: scheme, Host, the raw (still encoded) path, query."""
    scope = request.scope
    host = request.headers.get("host")
    if not host:
        server = scope.get("server") or ("localhost", None)
        host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    uri = f"{scope.get('scheme', 'http')}://{host}{path.decode('latin-1')}"
    return f"{uri}?{query.decode('latin-1')}" if query else uri


def has_signature(request: Request) -> bool:
    return "signature" in request.headers or "signature-input" in request.headers


def verify_request(
    request: Request,
    body: bytes,
    trust: TrustCheck,
    now: float,
    replays: ReplayCache | None = None,
) -> Caller:
    """Authenticate a signed request; ``now`` is the node's clock (Unix seconds).

    Raises :class:`Unauthenticated` (401: missing or invalid signature, Client-Cert,
    Content-Digest, ``created`` off by more than 300 s, ``keyid`` not the certificate's,
    no ``nonce``, or with ``replays`` a ``keyid`` and ``nonce`` already used),
    :class:`UntrustedCaller` / the ``trust`` function's NodeError (403) or
    :class:`ReplayCacheFull` (429). A request is recorded in ``replays`` only once it
    passed every other check (strangers cannot fill the cache).
    """
    if not has_signature(request):
        raise Unauthenticated("SIGNATURE_MISSING", "the request is not signed")
    cert_header = request.headers.get(CLIENT_CERT)
    if cert_header is None:
        raise Unauthenticated("BAD_CLIENT_CERT", f"the {CLIENT_CERT} header is missing")
    certificate = _certificate(cert_header, CLIENT_CERT)
    chain_header = request.headers.get(CLIENT_CERT_CHAIN, "")
    items = [i for i in chain_header.split(",") if i.strip()]
    if len(items) > MAX_CHAIN:
        raise Unauthenticated("BAD_CLIENT_CERT", f"{CLIENT_CERT_CHAIN} has more than {MAX_CHAIN}")
    chain = [_certificate(item, CLIENT_CERT_CHAIN) for item in items]
    try:
        algorithm, _digest = _algorithm(certificate.public_key())
    except (HTTPMessageSignaturesException, ValueError) as exc:
        raise Unauthenticated("SIGNATURE_INVALID", str(exc)) from None

    keys = _CertificateKey(certificate)
    verifier = _Verifier(now, signature_algorithm=algorithm, key_resolver=keys)
    message = _Message(request.method, _target_uri(request), request.headers)
    try:
        results = verifier.verify(
            message, max_age=None, expect_tag=SIGNATURE_TAG, require_components=COVERED_COMPONENTS
        )
    except _StaleSignature as exc:
        raise Unauthenticated("SIGNATURE_EXPIRED", str(exc)) from None
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        if keys.asked is not None and keys.asked != keys.keyid:
            raise Unauthenticated(
                "SIGNATURE_INVALID", "keyid is not the SHA-256 of the Client-Cert certificate"
            ) from None
        raise Unauthenticated(
            "SIGNATURE_INVALID", f"the request signature does not verify ({_reason(exc)})"
        ) from None
    nonce = results[0].nonce if results else None
    if not isinstance(nonce, str) or not 0 < len(nonce) <= MAX_NONCE_CHARS:
        raise Unauthenticated(
            "SIGNATURE_INVALID",
            f'the signature has no "nonce" parameter (a fresh random string of at most '
            f"{MAX_NONCE_CHARS} characters per request)",
        )
    try:
        verifier.verify_body(message, results, body)
    except (InvalidSignature, HTTPMessageSignaturesException) as exc:
        raise Unauthenticated("CONTENT_DIGEST_MISMATCH", _reason(exc)) from None
    try:
        caller = trust(certificate, chain)
    except ContractError as exc:
        raise UntrustedCaller(str(exc)) from None
    if replays is not None:
        replays.check_and_add(keys.keyid, nonce)
    return caller


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else "bad signature"


def signed_caller(
    trust: TrustCheck,
    *,
    clock: Callable[[], float] = time.time,
    replays: ReplayCache | None = None,
) -> Callable[[Request], Awaitable[Caller]]:
    """A FastAPI dependency: the verified :class:`Caller` of a signed request, else 401;
    with ``replays``, each signature is accepted once."""

    async def dependency(request: Request) -> Caller:
        body = await request.body()
        return await run_in_threadpool(verify_request, request, body, trust, clock(), replays)

    return dependency


def optional_caller(
    trust: TrustCheck,
    *,
    clock: Callable[[], float] = time.time,
    replays: ReplayCache | None = None,
) -> Callable[[Request], Awaitable[Caller | None]]:
    """Like :func:`signed_caller`, but ``None`` for a request with no signature at all."""
    required = signed_caller(trust, clock=clock, replays=replays)

    async def dependency(request: Request) -> Caller | None:
        if not has_signature(request):
            return None
        return await required(request)

    return dependency

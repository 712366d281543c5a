"""An RFC 3161 time-stamping authority profiled by ETSI EN 319 422.

:class:`TimestampAuthority` turns a DER ``TimeStampReq`` into a DER ``TimeStampResp``
and never raises for bad input: a malformed or unsupported request gets a rejection
with the RFC 3161 failure bit (badRequest, badAlg, badDataFormat, unacceptedPolicy,
unacceptedExtension). Tokens carry the policy OID, the stated accuracy, the echoed
nonce, an ESSCertIDv2 signing-certificate attribute and, when asked (certReq), the TSA
certificate chain. Serial numbers come from a :class:`SerialAllocator` that reserves
blocks on disk, so they stay unique across restarts and across worker processes.

>>> # tsa = TimestampAuthority.create(key, tsa_cert, [issuing], serials=SerialAllocator(p))
>>> # reply_der = tsa.respond(request_der)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import os
import secrets
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from asn1crypto import tsp
from cryptography import x509

from . import _der
from .cms import ID_CT_TST_INFO, SignerTemplate, build_signed_data
from .errors import InputError, TimestampError
from .keystore import DIGESTS, SigningKey

__all__ = [
    "DEFAULT_POLICY",
    "FailureInfo",
    "SerialAllocator",
    "TimestampAuthority",
    "Timestamper",
    "TimestampRequest",
    "build_request",
    "parse_request",
]

#: ETSI EN 319 421 best-practices time-stamp policy (BTSP)
DEFAULT_POLICY = "0.4.0.2023.1.1"
_DIGEST_BY_OID = {oid: name for name, (oid, _cls, _len) in DIGESTS.items()}
_LEN_BY_NAME = {name: length for name, (_oid, _cls, length) in DIGESTS.items()}
MAX_REQUEST_BYTES = 16 * 1024


class Timestamper(Protocol):
    """Anything that turns a digest into an RFC 3161 token: the in-process
    :class:`TimestampAuthority` or the HTTP client in :mod:`trust_services.client`."""

    def issue(
        self,
        digest: str,
        hashed_message: bytes,
        *,
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> bytes:
        """A timestamp token (DER ContentInfo) over ``hashed_message``."""
        ...


class FailureInfo(IntEnum):
    """PKIFailureInfo bit numbers (RFC 3161 §2.4.2)."""

    BAD_ALG = 0
    BAD_REQUEST = 2
    BAD_DATA_FORMAT = 5
    TIME_NOT_AVAILABLE = 14
    UNACCEPTED_POLICY = 15
    UNACCEPTED_EXTENSION = 16
    ADD_INFO_NOT_AVAILABLE = 17
    SYSTEM_FAILURE = 25


class Rejection(Exception):
    def __init__(self, failure: FailureInfo, text: str) -> None:
        super().__init__(text)
        self.failure = failure
        self.text = text


@dataclass(frozen=True)
class TimestampRequest:
    digest: str
    hashed_message: bytes
    nonce: int | None
    cert_req: bool
    policy: str | None


def parse_request(der: bytes) -> TimestampRequest:
    """Parse and check a TimeStampReq; raises :class:`Rejection` with the failure bit."""
    if len(der) > MAX_REQUEST_BYTES:
        raise Rejection(FailureInfo.BAD_REQUEST, "request too large")
    try:
        req = tsp.TimeStampReq.load(der, strict=True)
        version = req["version"].native
        imprint = req["message_imprint"]
        alg = imprint["hash_algorithm"]
        alg_oid = alg["algorithm"].dotted
        params = alg["parameters"]
        hashed = imprint["hashed_message"].native
        policy = req["req_policy"].dotted if req["req_policy"].native is not None else None
        nonce = req["nonce"].native
        cert_req = bool(req["cert_req"].native)
        extensions = req["extensions"].native
    except (ValueError, TypeError, KeyError, IndexError, OverflowError):
        raise Rejection(FailureInfo.BAD_REQUEST, "malformed TimeStampReq") from None
    if version != "v1":
        raise Rejection(FailureInfo.BAD_REQUEST, f"unsupported version {version}")
    digest = _DIGEST_BY_OID.get(alg_oid)
    if digest is None:
        raise Rejection(FailureInfo.BAD_ALG, f"unsupported hash algorithm {alg_oid}")
    if params.native is not None:
        raise Rejection(FailureInfo.BAD_ALG, "unexpected hash algorithm parameters")
    if not isinstance(hashed, bytes) or len(hashed) != _LEN_BY_NAME[digest]:
        raise Rejection(FailureInfo.BAD_DATA_FORMAT, f"hashed message is not a {digest} digest")
    if extensions:
        raise Rejection(FailureInfo.UNACCEPTED_EXTENSION, "request extensions are not supported")
    if nonce is not None and (nonce < 0 or nonce.bit_length() > 512):
        raise Rejection(FailureInfo.BAD_REQUEST, "nonce out of range")
    return TimestampRequest(digest, hashed, nonce, cert_req, policy)


def build_request(
    data: bytes, digest: str = "sha256", *, nonce: int | None = None, cert_req: bool = True
) -> bytes:
    """A DER TimeStampReq for ``data`` (a random 64-bit nonce unless one is given)."""
    if digest not in DIGESTS:
        raise InputError(f"unsupported digest {digest!r}")
    nonce = secrets.randbits(63) if nonce is None else nonce
    imprint = _der.seq(
        _der.seq(_der.oid(DIGESTS[digest][0])),
        _der.octet_string(hashlib.new(digest, data).digest()),
    )
    parts = [_der.integer(1), imprint, _der.integer(nonce)]
    if cert_req:
        parts.append(_der.boolean(True))
    return _der.seq(*parts)


def _failure_bits(failure: FailureInfo) -> bytes:
    n = int(failure)
    body = bytearray(n // 8 + 1)
    body[n // 8] = 0x80 >> (n % 8)
    return _der.bit_string(bytes(body), unused_bits=7 - (n % 8))


def rejection_response(failure: FailureInfo, text: str) -> bytes:
    status = _der.seq(_der.integer(2), _der.seq(_der.utf8_string(text)), _failure_bits(failure))
    return _der.seq(status)


class SerialAllocator:
    """Unique serial numbers that survive restarts: blocks reserved on disk with flock.

    The file holds the high-water mark; each process reserves ``block`` numbers at a
    time (one fsync per block), so a restart skips at most the unused rest of a block.
    """

    def __init__(self, path: Path, block: int = 4096) -> None:
        self.path = path
        self.block = block
        self._lock = threading.Lock()
        self._next = 0
        self._limit = 0

    def _reserve(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            raw = os.read(fd, 64).strip()
            high = int(raw) if raw else 1
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(high + self.block).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        self._next, self._limit = high, high + self.block

    def next(self) -> int:
        with self._lock:
            if self._next >= self._limit:
                self._reserve()
            value = self._next
            self._next += 1
            return value


class TimestampAuthority:
    """Issues RFC 3161 tokens with one TSA key and certificate."""

    def __init__(
        self,
        key: SigningKey,
        certificate: x509.Certificate,
        chain: Sequence[x509.Certificate],
        *,
        serials: SerialAllocator,
        policy: str = DEFAULT_POLICY,
        accuracy_ms: int = 1000,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        if not 1 <= accuracy_ms <= 60_000:
            raise TimestampError("accuracy must be between 1 ms and 60 s")
        self.template = SignerTemplate.create(key, certificate, chain)
        self.certificate = certificate
        self.serials = serials
        self.policy = policy
        self.accuracy_ms = accuracy_ms
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        seconds, millis = divmod(accuracy_ms, 1000)
        accuracy = []
        if seconds:
            accuracy.append(_der.integer(seconds))
        if millis:
            accuracy.append(_der.tlv(0x80, _der.integer(millis)[2:]))  # [0] IMPLICIT INTEGER
        self._head = _der.integer(1) + _der.oid(policy)
        self._accuracy = _der.seq(*accuracy)
        # tsa [0] GeneralName: directoryName [4] Name (both explicit: CHOICE types)
        self._tsa_name = _der.explicit(0, _der.explicit(4, certificate.subject.public_bytes()))

    # ------------------------------------------------------------------ tokens
    def tst_info(
        self, digest: str, hashed_message: bytes, nonce: int | None, gen_time: dt.datetime
    ) -> bytes:
        imprint = _der.seq(
            _der.seq(_der.oid(DIGESTS[digest][0])), _der.octet_string(hashed_message)
        )
        parts = [
            self._head,
            imprint,
            _der.integer(self.serials.next()),
            _der.generalized_time(gen_time),
            self._accuracy,
        ]
        if nonce is not None:
            parts.append(_der.integer(nonce))
        parts.append(self._tsa_name)
        return _der.seq(*parts)

    def issue(
        self,
        digest: str,
        hashed_message: bytes,
        *,
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> bytes:
        """A timestamp token (ContentInfo DER) for an already hashed message."""
        if digest not in DIGESTS or len(hashed_message) != _LEN_BY_NAME[digest]:
            raise TimestampError(f"not a {digest} digest")
        gen_time = _millis(self.clock())
        tst = self.tst_info(digest, hashed_message, nonce, gen_time)
        token, _sig = build_signed_data(
            self.template,
            content_type=ID_CT_TST_INFO,
            message_digest=self.template.hash(tst),
            econtent=tst,
            include_certificates=cert_req,
        )
        return token

    def stamp(self, data: bytes, digest: str = "sha256") -> bytes:
        """In-process convenience: a token over ``data``."""
        return self.issue(digest, hashlib.new(digest, data).digest())

    def respond(self, request_der: bytes) -> bytes:
        """A DER TimeStampResp for a DER TimeStampReq; never raises for bad input."""
        try:
            req = parse_request(request_der)
            if req.policy is not None and req.policy != self.policy:
                raise Rejection(
                    FailureInfo.UNACCEPTED_POLICY, f"this TSA issues under policy {self.policy}"
                )
        except Rejection as rej:
            return rejection_response(rej.failure, rej.text)
        token = self.issue(req.digest, req.hashed_message, nonce=req.nonce, cert_req=req.cert_req)
        return _der.seq(_GRANTED, token)


_GRANTED = _der.seq(_der.integer(0))


def _millis(when: dt.datetime) -> dt.datetime:
    when = when.astimezone(dt.UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)

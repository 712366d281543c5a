"""An RFC 3161 time-stamping authority profiled by ETSI EN 319 422.

:class:`TimestampAuthority` turns a DER ``TimeStampReq`` into a DER ``TimeStampResp``
and never raises for bad input: a malformed or unsupported request gets a rejection
with the RFC 3161 failure bit (badRequest, badAlg, badDataFormat, unacceptedPolicy,
unacceptedExtension). Tokens carry the policy OID, the stated accuracy, the echoed
nonce, an ESSCertIDv2 signing-certificate attribute and, when asked (certReq), the TSA
certificate chain. Serial numbers come from a :class:`SerialAllocator` that reserves
blocks on disk, so they stay unique across restarts and across worker processes.

This is a hot path (the HTTP service in :mod:`trust_services.server` answers thousands
of requests a second): requests are read by a small strict DER parser
(:func:`parse_request`, fuzzed against asn1crypto in tests/test_tsa.py) and tokens are
assembled from encodings precomputed once per TSA; only the TSTInfo, the message digest
attribute and the signature change from one token to the next.

>>> # tsa = TimestampAuthority(key, tsa_cert, [issuing], serials=SerialAllocator(p))
>>> # reply_der = tsa.respond(request_der)
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography import x509

from . import _der
from .cms import (
    ATTR_CONTENT_TYPE,
    ATTR_MESSAGE_DIGEST,
    ID_CT_TST_INFO,
    ID_SIGNED_DATA,
    SignerTemplate,
    attribute,
)
from .errors import InputError, TimestampError
from .keystore import DIGESTS, SigningKey

if TYPE_CHECKING:
    from .pki import OrgPki

__all__ = [
    "DEFAULT_POLICY",
    "FailureInfo",
    "Rejection",
    "SerialAllocator",
    "TimestampAuthority",
    "TimestampRequest",
    "Timestamper",
    "build_request",
    "parse_request",
    "rejection_response",
]

log = logging.getLogger(__name__)

#: ETSI EN 319 421 best-practices time-stamp policy (BTSP)
DEFAULT_POLICY = "0.4.0.2023.1.1"
_DIGEST_BY_OID = {oid: name for name, (oid, _cls, _len) in DIGESTS.items()}
_LEN_BY_NAME = {name: length for name, (_oid, _cls, length) in DIGESTS.items()}
#: the content octets of each supported hash OID → digest name
_DIGEST_BY_OID_BODY = {_der.oid(oid)[2:]: name for oid, name in _DIGEST_BY_OID.items()}
MAX_REQUEST_BYTES = 16 * 1024
MAX_NONCE_BITS = 512


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
    """A request the TSA refuses, with the RFC 3161 failure bit and a status text."""

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


# --------------------------------------------------------------------- parsing
class _Malformed(Exception):
    """Not exact DER, or not the TimeStampReq grammar."""


def _tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the DER element at ``pos``; strict DER."""
    if pos + 2 > end:
        raise _Malformed
    tag = buf[pos]
    if tag & 0x1F == 0x1F:  # high tag numbers appear nowhere in a TimeStampReq
        raise _Malformed
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 3 or pos + count > end:  # indefinite, or over 16 MiB
            raise _Malformed
        length = int.from_bytes(buf[pos : pos + count], "big")
        if length < 0x80 or buf[pos] == 0:  # not the shortest form
            raise _Malformed
        pos += count
    if pos + length > end:
        raise _Malformed
    return tag, pos, pos + length


def _integer(buf: bytes, start: int, end: int) -> int:
    if start == end:
        raise _Malformed
    if end - start > 1:
        first, second = buf[start], buf[start + 1]
        if (first == 0 and second < 0x80) or (first == 0xFF and second >= 0x80):
            raise _Malformed  # not minimal
    return int.from_bytes(buf[start:end], "big", signed=True)


def _check_oid(body: bytes) -> None:
    if not body or body[-1] & 0x80:
        raise _Malformed
    previous_ended = True
    for byte in body:
        if previous_ended and byte == 0x80:  # a sub-identifier with a leading 0x80
            raise _Malformed
        previous_ended = not byte & 0x80


@dataclass(frozen=True)
class _RawRequest:
    version: int
    alg_oid: bytes
    params: bytes | None  # the parameters' full encoding, None when absent
    hashed: bytes
    policy: bytes | None  # the policy OID's content octets
    nonce: int | None
    cert_req: bool
    has_extensions: bool


def _parse_raw(der: bytes) -> _RawRequest:
    """The TimeStampReq grammar (RFC 3161 §2.4.1), exact DER only."""
    end = len(der)
    tag, pos, seq_end = _tlv(der, 0, end)
    if tag != 0x30 or seq_end != end:
        raise _Malformed
    # version INTEGER
    tag, start, stop = _tlv(der, pos, seq_end)
    if tag != 0x02:
        raise _Malformed
    version = _integer(der, start, stop)
    # messageImprint SEQUENCE { hashAlgorithm AlgorithmIdentifier, hashedMessage OCTET STRING }
    tag, start, imprint_end = _tlv(der, stop, seq_end)
    if tag != 0x30:
        raise _Malformed
    pos = imprint_end
    tag, alg_start, alg_end = _tlv(der, start, imprint_end)
    if tag != 0x30:
        raise _Malformed
    tag, oid_start, oid_end = _tlv(der, alg_start, alg_end)
    if tag != 0x06:
        raise _Malformed
    alg_oid = der[oid_start:oid_end]
    _check_oid(alg_oid)
    params = None
    if oid_end < alg_end:
        _tag, _start, params_end = _tlv(der, oid_end, alg_end)
        if params_end != alg_end:
            raise _Malformed
        params = der[oid_end:alg_end]
    tag, start, stop = _tlv(der, alg_end, imprint_end)
    if tag != 0x04 or stop != imprint_end:
        raise _Malformed
    hashed = der[start:stop]
    # reqPolicy OBJECT IDENTIFIER OPTIONAL, nonce INTEGER OPTIONAL,
    # certReq BOOLEAN DEFAULT FALSE, extensions [0] IMPLICIT Extensions OPTIONAL
    policy = None
    nonce = None
    cert_req = False
    has_extensions = False
    stage = 0
    while pos < seq_end:
        tag, start, stop = _tlv(der, pos, seq_end)
        if tag == 0x06 and stage < 1:
            policy = der[start:stop]
            _check_oid(policy)
            stage = 1
        elif tag == 0x02 and stage < 2:
            nonce = _integer(der, start, stop)
            stage = 2
        elif tag == 0x01 and stage < 3:
            if stop - start != 1 or der[start] not in (0x00, 0xFF):
                raise _Malformed
            # DER omits a DEFAULT value; an explicit FALSE is accepted for interoperability
            cert_req = der[start] == 0xFF
            stage = 3
        elif tag == 0xA0 and stage < 4:
            _check_extensions(der, start, stop)
            has_extensions = True
            stage = 4
        else:
            raise _Malformed
        pos = stop
    return _RawRequest(version, alg_oid, params, hashed, policy, nonce, cert_req, has_extensions)


def _check_extensions(der: bytes, pos: int, end: int) -> None:
    """Extensions ::= SEQUENCE SIZE (1..MAX) OF Extension (well-formed, not interpreted)."""
    if pos == end:
        raise _Malformed
    while pos < end:
        tag, start, stop = _tlv(der, pos, end)
        if tag != 0x30:
            raise _Malformed
        tag, oid_start, oid_end = _tlv(der, start, stop)
        if tag != 0x06:
            raise _Malformed
        _check_oid(der[oid_start:oid_end])
        pos = stop


def parse_request(der: bytes) -> TimestampRequest:
    """Parse and check a TimeStampReq; raises :class:`Rejection` with the failure bit."""
    if len(der) > MAX_REQUEST_BYTES:
        raise Rejection(FailureInfo.BAD_REQUEST, "request too large")
    try:
        raw = _parse_raw(bytes(der))
    except (_Malformed, IndexError):
        raise Rejection(FailureInfo.BAD_REQUEST, "malformed TimeStampReq") from None
    if raw.version != 1:
        raise Rejection(FailureInfo.BAD_REQUEST, f"unsupported version {raw.version}")
    digest = _DIGEST_BY_OID_BODY.get(raw.alg_oid)
    if digest is None:
        raise Rejection(
            FailureInfo.BAD_ALG, f"unsupported hash algorithm {_der.decode_oid(raw.alg_oid)}"
        )
    if raw.params is not None and raw.params != b"\x05\x00":
        raise Rejection(FailureInfo.BAD_ALG, "unexpected hash algorithm parameters")
    if len(raw.hashed) != _LEN_BY_NAME[digest]:
        raise Rejection(FailureInfo.BAD_DATA_FORMAT, f"hashed message is not a {digest} digest")
    if raw.has_extensions:
        raise Rejection(FailureInfo.UNACCEPTED_EXTENSION, "request extensions are not supported")
    nonce = raw.nonce
    if nonce is not None and (nonce < 0 or nonce.bit_length() > MAX_NONCE_BITS):
        raise Rejection(FailureInfo.BAD_REQUEST, "nonce out of range")
    policy = _der.decode_oid(raw.policy) if raw.policy is not None else None
    return TimestampRequest(digest, raw.hashed, nonce, raw.cert_req, policy)


def build_request(
    data: bytes, digest: str = "sha256", *, nonce: int | None = None, cert_req: bool = True
) -> bytes:
    """A DER TimeStampReq for ``data`` (a random 64-bit nonce unless one is given)."""
    if digest not in DIGESTS:
        raise InputError(f"unsupported digest {digest!r}")
    return build_request_for_digest(
        digest, hashlib.new(digest, data).digest(), nonce=nonce, cert_req=cert_req
    )


def build_request_for_digest(
    digest: str, hashed_message: bytes, *, nonce: int | None = None, cert_req: bool = True
) -> bytes:
    """A DER TimeStampReq for an already hashed message."""
    if digest not in DIGESTS:
        raise InputError(f"unsupported digest {digest!r}")
    nonce = secrets.randbits(63) if nonce is None else nonce
    imprint = _der.seq(
        _der.seq(_der.oid(DIGESTS[digest][0])),
        _der.octet_string(hashed_message),
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
    """A TimeStampResp with status rejection (2), the status text and the failure bit."""
    status = _der.seq(_der.integer(2), _der.seq(_der.utf8_string(text)), _failure_bits(failure))
    return _der.seq(status)


# --------------------------------------------------------------------- serials
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


# --------------------------------------------------------------------- encoding
def _header(tag: int, length: int) -> bytes:
    if length < 0x80:
        return bytes((tag, length))
    if length < 0x100:
        return bytes((tag, 0x81, length))
    if length < 0x10000:
        return bytes((tag, 0x82, length >> 8, length & 0xFF))
    return bytes((tag, 0x83, length >> 16, (length >> 8) & 0xFF, length & 0xFF))


def _system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class _GenTimeCache:
    """DER GeneralizedTime at millisecond precision, the date part cached per second."""

    def __init__(self) -> None:
        self._second = -1
        self._prefix = b""

    def encode(self, millis: int) -> bytes:
        second, ms = divmod(millis, 1000)
        if second != self._second:
            when = dt.datetime.fromtimestamp(second, dt.UTC)
            self._prefix = when.strftime("%Y%m%d%H%M%S").encode("ascii")
            self._second = second
        if ms:
            text = self._prefix + b"." + f"{ms:03d}".rstrip("0").encode("ascii") + b"Z"
        else:
            text = self._prefix + b"Z"
        return bytes((0x18, len(text))) + text


class _TokenTemplate:
    """The constant parts of a timestamp token's SignedData around the variable ones.

    The output is byte for byte what :func:`trust_services.cms.build_signed_data` gives
    for the same TSTInfo and signature (checked in tests/test_tsa.py).
    """

    def __init__(self, template: SignerTemplate) -> None:
        self.key = template.key
        self.digest = template.digest
        digest_len = _LEN_BY_NAME[template.digest]
        placeholder = b"\x00" * digest_len
        content_type = attribute(ATTR_CONTENT_TYPE, _der.oid(ID_CT_TST_INFO))
        message_digest = attribute(ATTR_MESSAGE_DIGEST, _der.octet_string(placeholder))
        parts = sorted([content_type, message_digest, template.signing_certificate_attr])
        where = parts.index(message_digest)
        before = b"".join(parts[:where]) + message_digest[:-digest_len]
        after = b"".join(parts[where + 1 :])
        body_len = len(before) + digest_len + len(after)
        set_header = _header(0x31, body_len)
        #: signed attributes as signed (SET OF) = attrs_head + digest + attrs_tail
        self.attrs_head = set_header + before
        self.attrs_tail = after
        #: SignerInfo content up to the signature OCTET STRING
        self.signer_head = (
            _der.integer(1) + template.sid + template.digest_alg + b"\xa0" + set_header[1:] + before
        )
        self.signer_mid = after + template.signature_alg
        self.sd_head = _der.integer(3) + _der.set_of(
            template.digest_alg
        )  # version, digestAlgorithms
        self.tst_oid = _der.oid(ID_CT_TST_INFO)
        certs = sorted(set(template.certificates_der))
        self.certificates = _der.context(0, b"".join(certs)) if certs else b""
        self.content_info_oid = _der.oid(ID_SIGNED_DATA)

    def build(self, tst_info: bytes, include_certificates: bool) -> bytes:
        message_digest = hashlib.new(self.digest, tst_info).digest()
        signature = self.key.sign(self.attrs_head + message_digest + self.attrs_tail, self.digest)
        signer_info = (
            self.signer_head
            + message_digest
            + self.signer_mid
            + _header(0x04, len(signature))
            + signature
        )
        signer_info = _header(0x30, len(signer_info)) + signer_info
        signer_infos = _header(0x31, len(signer_info)) + signer_info
        econtent = _header(0x04, len(tst_info)) + tst_info
        econtent = _header(0xA0, len(econtent)) + econtent
        encap = self.tst_oid + econtent
        encap = _header(0x30, len(encap)) + encap
        certificates = self.certificates if include_certificates else b""
        signed_data = self.sd_head + encap + certificates + signer_infos
        signed_data = _header(0x30, len(signed_data)) + signed_data
        signed_data = _header(0xA0, len(signed_data)) + signed_data
        content_info = self.content_info_oid + signed_data
        return _header(0x30, len(content_info)) + content_info


def _int_der(value: int) -> bytes:
    if 0 <= value < 0x80:
        return bytes((0x02, 1, value))
    return _der.integer(value)


# --------------------------------------------------------------------- the TSA
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
        self.clock: Callable[[], dt.datetime] = clock or _system_clock
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
        self._imprint_alg = {
            name: _der.seq(_der.oid(oid)) for name, (oid, _cls, _len) in DIGESTS.items()
        }
        self._token = _TokenTemplate(self.template)
        self._times = _GenTimeCache()
        self._time_lock = threading.Lock()

    @classmethod
    def for_org(
        cls,
        pki: OrgPki,
        *,
        policy: str = DEFAULT_POLICY,
        accuracy_ms: int = 1000,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> TimestampAuthority:
        """The organisation's TSA (its ``tsa`` key), numbering tokens from the serial file
        every process of the organisation shares (``tsa/serial`` in its PKI, locked)."""
        return cls(
            pki.key("tsa"),
            pki.certificate("tsa"),
            [pki.certificate("issuing")],
            serials=SerialAllocator(pki.path / "tsa" / "serial"),
            policy=policy,
            accuracy_ms=accuracy_ms,
            clock=clock,
        )

    # ------------------------------------------------------------------ tokens
    def _gen_time(self) -> bytes:
        if self.clock is _system_clock:
            millis = time.time_ns() // 1_000_000
            with self._time_lock:
                return self._times.encode(millis)
        return _der.generalized_time(_millis(self.clock()))

    def _tst_info(self, digest: str, hashed_message: bytes, nonce: int | None) -> bytes:
        alg = self._imprint_alg[digest]
        imprint = alg + _header(0x04, len(hashed_message)) + hashed_message
        body = (
            self._head
            + _header(0x30, len(imprint))
            + imprint
            + _int_der(self.serials.next())
            + self._gen_time()
            + self._accuracy
            + (b"" if nonce is None else _int_der(nonce))
            + self._tsa_name
        )
        return _header(0x30, len(body)) + body

    def tst_info(
        self, digest: str, hashed_message: bytes, nonce: int | None, gen_time: dt.datetime
    ) -> bytes:
        """A TSTInfo (DER) with the next serial number and the given time."""
        imprint = _der.seq(self._imprint_alg[digest], _der.octet_string(hashed_message))
        parts = [
            self._head,
            imprint,
            _der.integer(self.serials.next()),
            _der.generalized_time(_millis(gen_time)),
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
        if nonce is not None and (nonce < 0 or nonce.bit_length() > MAX_NONCE_BITS):
            raise TimestampError("nonce out of range")
        tst = self._tst_info(digest, hashed_message, nonce)
        return self._token.build(tst, cert_req)

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
        try:
            token = self.issue(
                req.digest, req.hashed_message, nonce=req.nonce, cert_req=req.cert_req
            )
        except Exception:  # a token that went away, a full disk: not the client's fault
            log.exception("timestamp signing failed")
            return rejection_response(FailureInfo.SYSTEM_FAILURE, "the TSA cannot sign now")
        body = _GRANTED + token
        return _header(0x30, len(body)) + body


_GRANTED = _der.seq(_der.integer(0))


def _millis(when: dt.datetime) -> dt.datetime:
    when = when.astimezone(dt.UTC)
    return when.replace(microsecond=when.microsecond // 1000 * 1000)

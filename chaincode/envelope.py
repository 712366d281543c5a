"""The envelope of a write: a member's signed proposal, parsed and checked strictly.

>>> signed = SignedProposal.from_json(wire)            # raises ProposalRefused
>>> proposal = check_envelope(signed, "caravan")       # parse + channel + signature

A proposal is the RFC 8785 canonical JSON object

    {"args": [...], "channel": …, "creator": {"cert_sha256": …, "msp_id": …},
     "function": …, "nonce": base64(24 bytes), "timestamp": [seconds, nanos],
     "tx_id": …, "v": 1}

signed (ECDSA with SHA-256, or SHA-384 for P-384 keys; RSA PKCS#1 v1.5 with SHA-256) by
the creator's key. Like Fabric, the transaction id is bound to the creator and a fresh
nonce: ``tx_id = hex(SHA-256(nonce ‖ msp_id ‖ 0x00 ‖ cert_sha256))``, so nobody can reuse
another creator's id and a replay is a duplicate id. The signed bytes name the creator
certificate by hash; the certificate itself and the CA certificates between it and the
member's root travel beside them (a ledger stores each certificate once).

Both ledger backends apply these checks before a contract runs: the embedded ledger in
the node (``node.proposal`` re-exports this module, mapping :class:`ProposalRefused` to
``node.errors``) and the Fabric chaincode server in its container (decision 0005).
Standard library and ``cryptography`` only.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Self

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

__all__ = [
    "MAX_ARG_BYTES",
    "MAX_CERT_BYTES",
    "MAX_CHAIN",
    "MAX_PROPOSAL_BYTES",
    "NONCE_BYTES",
    "VERSION",
    "Proposal",
    "ProposalRefused",
    "SignedProposal",
    "check_envelope",
    "check_unsigned",
    "digest_for",
    "parse_proposal",
    "tx_id_for",
    "verify_signature",
]

VERSION = 1
MAX_PROPOSAL_BYTES = 8 * 1024 * 1024
MAX_ARG_BYTES = 4 * 1024 * 1024
MAX_CERT_BYTES = 16 * 1024
MAX_CHAIN = 4
NONCE_BYTES = 24
_KEYS = frozenset(("args", "channel", "creator", "function", "nonce", "timestamp", "tx_id", "v"))
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
_FUNCTION = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}\Z")
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False
).encode


class ProposalRefused(Exception):
    """A proposal refused before any contract runs: a refusal code, a status, a message.

    ``code`` is one of the ledger's refusal codes (``BAD_PROPOSAL``, ``WRONG_CHANNEL``,
    ``BAD_SIGNATURE``, ``UNTRUSTED_CREATOR``, ``REVOKED_CREATOR`` …); the message is one
    line, safe to show.
    """

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return self.message


def _bad(message: str) -> ProposalRefused:
    return ProposalRefused("BAD_PROPOSAL", message, 400)


@dataclass(frozen=True)
class Proposal:
    """The parsed, checked content of a proposal."""

    channel: str
    tx_id: str
    nonce: bytes
    msp_id: str
    cert_sha256: str
    timestamp: tuple[int, int]
    function: str
    args: tuple[str, ...]

    @property
    def time_us(self) -> int:
        return self.timestamp[0] * 1_000_000 + self.timestamp[1] // 1000


@dataclass(frozen=True)
class SignedProposal:
    """Signed proposal bytes plus the creator certificate and its CA chain (DER)."""

    proposal: bytes
    signature: bytes
    certificate: bytes
    chain: tuple[bytes, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The wire form (base64 members) that the API accepts."""
        return {
            "proposal": _b64(self.proposal),
            "signature": _b64(self.signature),
            "certificate": _b64(self.certificate),
            "chain": [_b64(c) for c in self.chain],
        }

    @classmethod
    def from_json(cls, value: Any) -> Self:
        if not isinstance(value, dict) or set(value) - {"chain"} != {
            "proposal",
            "signature",
            "certificate",
        }:
            raise _bad(
                "a signed proposal is an object with proposal, signature, certificate "
                "and optional chain"
            )
        chain = value.get("chain", [])
        if not isinstance(chain, list) or len(chain) > MAX_CHAIN:
            raise _bad(f"chain must be a list of at most {MAX_CHAIN} certificates")
        return cls(
            _unb64(value["proposal"], "proposal", MAX_PROPOSAL_BYTES),
            _unb64(value["signature"], "signature", 1024),
            _unb64(value["certificate"], "certificate", MAX_CERT_BYTES),
            tuple(_unb64(c, "chain certificate", MAX_CERT_BYTES) for c in chain),
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(value: Any, what: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > limit * 4 // 3 + 4:
        raise _bad(f"{what} must be a base64 string of at most {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise _bad(f"{what} is not valid base64") from None


def tx_id_for(nonce: bytes, msp_id: str, cert_sha256: str) -> str:
    return hashlib.sha256(
        nonce + msp_id.encode() + b"\x00" + bytes.fromhex(cert_sha256)
    ).hexdigest()


def digest_for(public_key: object) -> str:
    """The signature digest for a key: SHA-384 for P-384, SHA-256 otherwise."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.key_size >= 384:
        return "sha384"
    return "sha256"


def _fail(message: str) -> ProposalRefused:
    return _bad(f"proposal: {message}")


def parse_proposal(data: bytes) -> Proposal:
    """Parse and check proposal bytes strictly; they must be canonical JSON."""
    if len(data) > MAX_PROPOSAL_BYTES:
        raise _fail(f"larger than {MAX_PROPOSAL_BYTES} bytes")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        raise _fail("not valid UTF-8 JSON") from None
    if not isinstance(body, dict) or body.keys() != _KEYS:
        raise _fail(f"must be an object with exactly the members {', '.join(sorted(_KEYS))}")
    if body["v"] != VERSION or type(body["v"]) is not int:
        raise _fail(f"unsupported version {body['v']!r}")
    channel, tx_id, function = body["channel"], body["tx_id"], body["function"]
    if not isinstance(channel, str) or not _NAME.match(channel):
        raise _fail("channel has the wrong format")
    if not isinstance(function, str) or not _FUNCTION.match(function):
        raise _fail("function has the wrong format")
    if not isinstance(tx_id, str) or not _HEX64.match(tx_id):
        raise _fail("tx_id must be 64 lower-case hex digits")
    creator = body["creator"]
    if not isinstance(creator, dict) or creator.keys() != {"cert_sha256", "msp_id"}:
        raise _fail("creator must be an object with cert_sha256 and msp_id")
    msp_id, cert_sha256 = creator["msp_id"], creator["cert_sha256"]
    if not isinstance(msp_id, str) or not _NAME.match(msp_id):
        raise _fail("creator.msp_id has the wrong format")
    if not isinstance(cert_sha256, str) or not _HEX64.match(cert_sha256):
        raise _fail("creator.cert_sha256 must be 64 lower-case hex digits")
    ts = body["timestamp"]
    if (
        not isinstance(ts, list)
        or len(ts) != 2
        or any(type(t) is not int for t in ts)
        or not 0 <= ts[0] < 2**40
        or not 0 <= ts[1] < 1_000_000_000
    ):
        raise _fail("timestamp must be [seconds, nanoseconds]")
    args = body["args"]
    if not isinstance(args, list) or len(args) > 16 or any(type(a) is not str for a in args):
        raise _fail("args must be a list of at most 16 strings")
    if sum(len(a) for a in args) > MAX_ARG_BYTES:
        raise _fail(f"args are larger than {MAX_ARG_BYTES} bytes")
    try:
        nonce = base64.b64decode(body["nonce"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise _fail("nonce is not base64") from None
    if len(nonce) < 16:
        raise _fail("nonce must be at least 16 bytes")
    if tx_id_for(nonce, msp_id, cert_sha256) != tx_id:
        raise _fail("tx_id is not SHA-256(nonce ‖ msp_id ‖ 0x00 ‖ cert_sha256)")
    # Canonical check without the general RFC 8785 writer: every member name is ASCII
    # (so code-point order is UTF-16 order), the integers were range-checked above and
    # the C encoder escapes strings exactly as RFC 8785 does; a lone surrogate fails
    # the UTF-8 encoding.
    try:
        canonical = _CANONICAL(body).encode("utf-8")
    except UnicodeEncodeError:
        raise _fail("a string contains a lone surrogate") from None
    if canonical != data:
        raise _fail("not in RFC 8785 canonical form (duplicate members, spacing, order)")
    return Proposal(
        channel, tx_id, nonce, msp_id, cert_sha256, (ts[0], ts[1]), function, tuple(args)
    )


@functools.lru_cache(maxsize=4096)
def _public_key(cert_der: bytes) -> tuple[Any, str]:
    try:
        key = x509.load_der_x509_certificate(cert_der).public_key()
    except ValueError:
        raise ProposalRefused(
            "UNTRUSTED_CREATOR", "the creator certificate cannot be parsed"
        ) from None
    return key, digest_for(key)


_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384}


def verify_signature(signed: SignedProposal) -> None:
    """Check the signature over the proposal bytes with the carried certificate's key.

    Raises :class:`ProposalRefused` (``BAD_SIGNATURE``). The certificate's trust is
    checked separately, against the trust list on the ledger (``chaincode.creators``).
    """
    key, digest = _public_key(signed.certificate)
    algorithm = _HASHES[digest]()
    try:
        if isinstance(key, ec.EllipticCurvePublicKey):
            key.verify(signed.signature, signed.proposal, ec.ECDSA(algorithm))
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signed.signature, signed.proposal, padding.PKCS1v15(), algorithm)
        else:
            raise ProposalRefused("BAD_SIGNATURE", "the creator key type is not supported")
    except (InvalidSignature, ValueError, UnsupportedAlgorithm):
        raise ProposalRefused("BAD_SIGNATURE", "the proposal signature does not verify") from None


def check_unsigned(signed: object, channel: str) -> Proposal:
    """:func:`check_envelope` without its last step, the signature check (anything that
    is not a :class:`SignedProposal` is refused)."""
    if not isinstance(signed, SignedProposal):
        raise _bad("not a signed proposal")
    proposal = parse_proposal(signed.proposal)
    if proposal.channel != channel:
        raise ProposalRefused(
            "WRONG_CHANNEL", f"the proposal is for channel {proposal.channel!r}", 400
        )
    if len(signed.chain) > MAX_CHAIN:
        raise _bad(f"the carried certificate chain is longer than {MAX_CHAIN}")
    return proposal


def check_envelope(signed: SignedProposal, channel: str) -> Proposal:
    """Everything that needs no ledger state: parse, channel, chain length, signature."""
    proposal = check_unsigned(signed, channel)
    verify_signature(signed)
    return proposal

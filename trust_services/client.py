"""An RFC 3161 client: timestamps from a TSA over HTTP (RFC 3161 §3.4).

:class:`HttpTimestamper` implements the :class:`~trust_services.tsa.Timestamper`
protocol, so a signer takes it where it takes the in-process TSA. Each request carries a
random nonce; the reply must be a ``application/timestamp-reply`` of at most 1 MiB, be
granted, and its token must carry the request's message imprint and nonce — otherwise a
one-line :class:`~trust_services.errors.TimestampError` says what went wrong (including
the TSA's failure info and status text on a rejection). The token's signature is not
checked here: that is validation's job (it checks it against the trust list).

>>> # tsa = HttpTimestamper("http://127.0.0.1:8318/orgs/KZ-CUSTOMS/tsa")
>>> # token = tsa.issue("sha256", hashlib.sha256(data).digest())
>>> # reply, token, info = request_timestamp(data, url, "sha256")
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import threading
from dataclasses import dataclass
from types import TracebackType

import httpx
from asn1crypto import cms, core, tsp, x509

from .errors import TimestampError
from .keystore import DIGESTS
from .tsa import build_request_for_digest

__all__ = [
    "MAX_RESPONSE_BYTES",
    "HttpTimestamper",
    "TimeStampResp",
    "TimestampInfo",
    "check_response",
    "request_timestamp",
]

MAX_RESPONSE_BYTES = 1024 * 1024


class TimeStampResp(core.Sequence):  # type: ignore[misc]
    """RFC 3161 TimeStampResp. asn1crypto's ``tsp.TimeStampResp`` makes the token
    mandatory, so it cannot read a rejection; here it is OPTIONAL, as the RFC says."""

    _fields = [  # noqa: RUF012 - asn1crypto's declaration style
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


@dataclass(frozen=True)
class TimestampInfo:
    """What a token says (its TSTInfo)."""

    serial: int
    gen_time: dt.datetime
    tsa_name: str | None
    policy: str
    digest: str
    hashed_message: bytes
    nonce: int | None
    accuracy: str | None


class HttpTimestamper:
    """A :class:`~trust_services.tsa.Timestamper` that asks a TSA over HTTP."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        if not url.startswith(("http://", "https://")):
            raise TimestampError(f"not an http(s) TSA URL: {url!r}")
        self.url = url
        self.timeout = timeout
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"HttpTimestamper({self.url!r})"

    def __enter__(self) -> HttpTimestamper:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def issue(
        self,
        digest: str,
        hashed_message: bytes,
        *,
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> bytes:
        """A timestamp token (DER ContentInfo) over ``hashed_message``."""
        _response, token, _info = self.request(
            digest, hashed_message, nonce=nonce, cert_req=cert_req
        )
        return token

    def request(
        self,
        digest: str,
        hashed_message: bytes,
        *,
        nonce: int | None = None,
        cert_req: bool = True,
    ) -> tuple[bytes, bytes, TimestampInfo]:
        """``(TimeStampResp DER, token DER, what the token says)``."""
        if digest not in DIGESTS or len(hashed_message) != DIGESTS[digest][2]:
            raise TimestampError(f"not a {digest} digest")
        nonce = secrets.randbits(64) if nonce is None else nonce
        query = build_request_for_digest(digest, hashed_message, nonce=nonce, cert_req=cert_req)
        reply = self._post(query)
        token, info = check_response(reply, digest, hashed_message, nonce)
        return reply, token, info

    def _post(self, query: bytes) -> bytes:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(timeout=self.timeout, follow_redirects=False)
            client = self._client
        try:
            with client.stream(
                "POST",
                self.url,
                content=query,
                headers={"content-type": "application/timestamp-query"},
            ) as response:
                if response.status_code != 200:
                    raise TimestampError(
                        f"the TSA at {self.url} answered HTTP {response.status_code}"
                    )
                media = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if media != "application/timestamp-reply":
                    raise TimestampError(
                        f"the TSA at {self.url} answered {media or 'no content type'}, "
                        "not application/timestamp-reply"
                    )
                body = bytearray()
                for chunk in response.iter_bytes():
                    body.extend(chunk)
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise TimestampError(
                            f"the TSA at {self.url} sent a reply over {MAX_RESPONSE_BYTES} bytes"
                        )
                return bytes(body)
        except httpx.TimeoutException:
            raise TimestampError(
                f"cannot reach TSA at {self.url}: no answer within {self.timeout:g} s"
            ) from None
        except httpx.HTTPError as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise TimestampError(f"cannot reach TSA at {self.url}: {reason}") from None


def check_response(
    reply: bytes, digest: str, hashed_message: bytes, nonce: int | None
) -> tuple[bytes, TimestampInfo]:
    """The token of a granted TimeStampResp that answers this request, or TimestampError."""
    try:
        response = TimeStampResp.load(reply, strict=True)
        status = response["status"]
        granted = status["status"].native in ("granted", "granted_with_mods")
    except (ValueError, TypeError, KeyError):
        raise TimestampError("the TSA's reply is not a TimeStampResp") from None
    if not granted:
        raise TimestampError(_rejection_text(status))
    try:
        token = response["time_stamp_token"]
        if token["content_type"].native != "signed_data":
            raise ValueError
        encap = token["content"]["encap_content_info"]
        if encap["content_type"].native != "tst_info":
            raise ValueError
        tst = encap["content"].parsed
        imprint = tst["message_imprint"]
        info = TimestampInfo(
            serial=tst["serial_number"].native,
            gen_time=tst["gen_time"].native,
            tsa_name=_general_name(tst["tsa"]),
            policy=tst["policy"].dotted,
            digest=imprint["hash_algorithm"]["algorithm"].native,
            hashed_message=imprint["hashed_message"].native,
            nonce=tst["nonce"].native,
            accuracy=_accuracy(tst["accuracy"]),
        )
        token_der = token.dump()
    except (ValueError, TypeError, KeyError, AttributeError):
        raise TimestampError("the TSA's token is malformed") from None
    if info.digest != digest or info.hashed_message != hashed_message:
        raise TimestampError("the TSA's token is over another message imprint")
    if nonce is not None and info.nonce != nonce:
        raise TimestampError("the TSA's token does not echo the request nonce")
    return token_der, info


def request_timestamp(
    data: bytes, url: str, digest: str = "sha256", *, timeout: float = 10.0
) -> tuple[bytes, bytes, TimestampInfo]:
    """Timestamp ``data`` at the TSA at ``url``: ``(response DER, token DER, info)``."""
    if digest not in DIGESTS:
        raise TimestampError(f"unsupported digest {digest!r} (sha256, sha384 or sha512)")
    with HttpTimestamper(url, timeout) as client:
        return client.request(digest, hashlib.new(digest, data).digest())


def _rejection_text(status: tsp.PKIStatusInfo) -> str:
    code = status["status"].native
    parts = [f"the TSA refused the request ({code}"]
    fail_info = status["fail_info"]
    if fail_info.native:
        bits = fail_info.native if isinstance(fail_info.native, set) else set()
        names = sorted(str(b) for b in bits)
        parts.append(": " + ", ".join(names))
    parts.append(")")
    texts = status["status_string"].native or []
    if texts:
        parts.append(": " + "; ".join(" ".join(str(t).split()) for t in texts)[:300])
    return "".join(parts)


def _general_name(name: x509.GeneralName) -> str | None:
    if name.native is None:
        return None
    chosen = name.chosen
    if isinstance(chosen, x509.Name):
        return str(chosen.human_friendly)
    return str(chosen.native)


def _accuracy(accuracy: tsp.Accuracy) -> str | None:
    value = accuracy.native
    if not value:
        return None
    units = (("seconds", "s"), ("millis", "ms"), ("micros", "µs"))
    parts = [f"{value[key]} {unit}" for key, unit in units if value.get(key)]
    return " ".join(parts) or None

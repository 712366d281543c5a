"""POST /v1/orgs/{org}/seal (an organisation's e-seal) and POST /v1/validation.

Validation trusts the granted ``root`` and ``tsa`` anchors of the trust list on the
ledger (every member's), with revocation data from the signature itself (B-LT) and,
for the organisations hosted on this node, from their own PKI in process; the node
fetches nothing from the network on a client's behalf.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import threading
from typing import Annotated

from cryptography import x509
from fastapi import APIRouter, Path, Query, Request
from starlette.concurrency import run_in_threadpool

from api.problems import problem_responses
from node.errors import NodeError
from node.services import trust
from node.services.identity import ledger_height
from trust_services.errors import TrustServiceError
from trust_services.pki import OrgPki
from trust_services.revocation import PkiRevocationSource
from trust_services.validation import CertificateValidator, Indication, verify

from ..deps import ApiState, SignedCallerDep, StateDep
from .models import (
    MSP_ID,
    TIME,
    DetachedValidationRequest,
    SealedRecord,
    SealRequest,
    ValidationReportModel,
    ValidationResult,
)

__all__ = ["BadDocument", "router"]

router = APIRouter(prefix="/v1", tags=["services"])

#: raw bodies the validation route takes, and what they are
MEDIA_TYPES = (
    "application/pdf",
    "application/pkcs7-signature",
    "application/pkcs7-mime",
    "application/cms",
    "application/timestamp-reply",
    "application/timestamp-token",
)
_ANCHOR_KINDS = ("root", "tsa")


class BadDocument(NodeError):
    """The uploaded file is not a signature, seal, PDF or timestamp that can be read."""

    code = "BAD_DOCUMENT"
    status = 400


class UnsupportedMediaType(NodeError):
    code = "UNSUPPORTED_MEDIA_TYPE"
    status = 415


@router.post(
    "/orgs/{org}/seal",
    summary="Seal a record with the organisation's e-seal (admin or officer, RFC 9421)",
    response_model=SealedRecord,
    responses=problem_responses(400, 401, 403, 404, 413, 422),
)
def seal(
    org: Annotated[str, Path(pattern=MSP_ID, examples=["KZ-CUSTOMS"])],
    body: SealRequest,
    caller: SignedCallerDep,
    state: StateDep,
) -> SealedRecord:
    sealed = state.sealers.seal(
        org, body.record, caller_msp=caller.msp_id, caller_role=caller.role, level=body.level
    )
    return SealedRecord(
        record_hash=sealed.record_hash, seal=sealed.seal, sealed_by=sealed.sealed_by
    )


class _HostedRevocation:
    """Revocation data of the hosted organisations, from their PKIs (no network)."""

    def __init__(self, pkis: list[OrgPki]) -> None:
        self.sources = [PkiRevocationSource(p) for p in pkis]

    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        for source in self.sources:
            found = source.ocsp(cert, issuer)
            if found is not None:
                return found
        return None

    def crl(self, url: str) -> bytes | None:
        for source in self.sources:
            found = source.crl(url)
            if found is not None:
                return found
        return None


class Validators:
    """One CertificateValidator per trust-list state (it caches chains and revocation)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: tuple[tuple[int, int], CertificateValidator] | None = None

    def get(self, state: ApiState) -> CertificateValidator:
        key = (id(state.ctx.ledger), ledger_height(state.ctx))  # per ledger and height
        with self._lock:
            if self._current is not None and self._current[0] == key:
                return self._current[1]
        anchors: list[x509.Certificate] = []
        for anchor in trust.trust_list(state.ctx):
            if anchor.get("kind") in _ANCHOR_KINDS and anchor.get("status") == "granted":
                try:
                    der = base64.b64decode(str(anchor["certificate"]), validate=True)
                    anchors.append(x509.load_der_x509_certificate(der))
                except (KeyError, ValueError, binascii.Error):
                    continue
        if not anchors:
            raise BadDocument("the trust list on the ledger has no granted anchor to validate with")
        validator = CertificateValidator(
            anchors, source=_HostedRevocation(list(state.sealers.pkis.values()))
        )
        with self._lock:
            self._current = (key, validator)
        return validator


_VALIDATORS = Validators()


def _validate(
    state: ApiState, data: bytes, signature: bytes | None, at: dt.datetime
) -> ValidationResult:
    validator = _VALIDATORS.get(state)
    try:
        reports = verify(data, signature, validator=validator, at=at)
    except TrustServiceError as exc:
        raise BadDocument(str(exc)) from None
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise BadDocument(
            f"the file cannot be read as a signature ({type(exc).__name__})"
        ) from None
    if not reports:
        raise BadDocument("the file holds no signature to validate")
    indications = {r.indication for r in reports}
    worst = next(
        i
        for i in (Indication.TOTAL_FAILED, Indication.INDETERMINATE, Indication.TOTAL_PASSED)
        if i in indications
    )
    return ValidationResult(
        indication=str(worst),
        reports=[ValidationReportModel(**r.to_json()) for r in reports],
    )


def _b64(value: str, what: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise BadDocument(f"{what} is not base64") from None


_BODY = {
    "required": True,
    "content": {
        **{m: {"schema": {"type": "string", "format": "binary"}} for m in MEDIA_TYPES},
        "application/json": {
            "schema": DetachedValidationRequest.model_json_schema(),
            "example": {"signature": "MIIG…", "content": "eyJhZW9faWQiOiAi…"},
        },
    },
}


@router.post(
    "/validation",
    summary="Validate a PAdES PDF, a CAdES signature or an RFC 3161 timestamp",
    response_model=ValidationResult,
    responses=problem_responses(400, 413, 415, 422),
    openapi_extra={"requestBody": _BODY},
)
async def validation(
    request: Request,
    state: StateDep,
    at: Annotated[
        str | None, Query(pattern=TIME, description="validation time (default: now)")
    ] = None,
) -> ValidationResult:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    when = dt.datetime.now(dt.UTC) if at is None else _time(at)
    body = await request.body()
    if media == "application/json":
        try:
            detached = DetachedValidationRequest.model_validate_json(body)
        except ValueError:
            raise BadDocument(
                'a JSON body is {"signature": base64, "content": base64} (a detached signature '
                "or timestamp and the data it covers)"
            ) from None
        signature = _b64(detached.signature, "signature")
        content = _b64(detached.content, "content")
        return await run_in_threadpool(_validate, state, content, signature, when)
    if media not in MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"send the file as one of {', '.join(MEDIA_TYPES)}, or application/json for a "
            f"detached signature (got {media or 'no Content-Type'})"
        )
    if not body:
        raise BadDocument("the request body is empty")
    return await run_in_threadpool(_validate, state, body, None, when)


def _time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        raise BadDocument(f"at {text!r} is not an RFC 3339 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)

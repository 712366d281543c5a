"""The API's response and request models (pydantic), with OpenAPI examples.

Records the contracts answer keep their own fields: the models name and type the ones a
client relies on and allow the rest (``extra="allow"``), so a field the contract adds
later reaches the client without a new API version.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AEO_ID",
    "COUNTRY",
    "EVENT_HASH",
    "MRA_ID",
    "MSP_ID",
    "SEZ_CODE",
    "TIN",
]

# the contracts' identifier rules (chaincode/*.py), as OpenAPI patterns
MSP_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
COUNTRY = r"^[A-Z]{2}$"
AEO_ID = r"^[A-Z]{2}-AEO-[A-Za-z0-9][A-Za-z0-9-]{0,39}$"
TIN = r"^[A-Z]{2}[A-Za-z0-9-]{1,32}$"
MRA_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
SEZ_CODE = r"^[A-Z]{2}-[A-Z0-9][A-Z0-9-]{0,31}$"
EVENT_HASH = r"^ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0$"
CONSIGNMENT_REF = r"^[A-Za-z0-9][A-Za-z0-9./:_-]{0,127}$"
FINGERPRINT = r"^[0-9a-f]{64}$"
#: RFC 3339 with an offset, or a date (midnight UTC), as the contracts take it
TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"([Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2}))?$"
)

TX_ID_EXAMPLE = "4674d0a5facec8ab4fa452cf109a70efebf403fd6e8be9fb6971fcd34b0e5f99"
SUBJECT_EXAMPLE = "CN=State Revenue Committee kz-customs-officer,O=State Revenue Committee,C=KZ"


class _Open(BaseModel):
    """A record the contract answers: the named fields, and any others it carries."""

    model_config = ConfigDict(extra="allow")


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- node
class Health(_Closed):
    status: str = Field(examples=["ok"])
    channel: str = Field(examples=["caravan"])
    height: int = Field(ge=0, examples=[42])
    orgs: list[str] = Field(description="organisations hosted here", examples=[["KZ-CUSTOMS"]])


class LedgerSummary(_Closed):
    channel: str = Field(examples=["caravan"])
    height: int = Field(ge=0, description="number of blocks", examples=[42])
    last_hash: str = Field(description="SHA-256 hex of the last block header")
    tx_count: int = Field(ge=0, examples=[1002])
    valid_tx_count: int = Field(ge=0, examples=[1001])
    state_keys: int = Field(ge=0, examples=[4005])


class BlockTx(_Closed):
    index: int = Field(ge=0)
    tx_id: str = Field(examples=[TX_ID_EXAMPLE])
    code: str = Field(description="VALID or the refusal/conflict code", examples=["VALID"])
    function: str = Field(examples=["IssueAeo"])
    creator_msp: str = Field(examples=["KZ-CUSTOMS"])
    timestamp: str = Field(description="proposal time, RFC 3339 UTC")


class Block(_Closed):
    number: int = Field(ge=0)
    hash: str = Field(description="SHA-256 hex of the header")
    header: dict[str, Any] = Field(description="the canonical header as stored")
    signature: str = Field(description="the node's signature over the header, base64")
    timestamped: bool = Field(description="an RFC 3161 token over the header hash is stored")
    timestamp_token: str | None = Field(description="the RFC 3161 token, base64, or null")
    txs: list[BlockTx]


# ------------------------------------------------------------------------ members
class Actor(_Open):
    msp_id: str = Field(examples=["KZ-CUSTOMS"])
    subject: str = Field(examples=[SUBJECT_EXAMPLE])


class Change(_Open):
    at: str = Field(examples=["2026-06-01T00:00:00Z"])
    by: Actor
    tx_id: str = Field(examples=[TX_ID_EXAMPLE])


class Member(_Open):
    msp_id: str = Field(examples=["KZ-CUSTOMS"])
    country: str = Field(examples=["KZ"])
    name: str = Field(examples=["State Revenue Committee"])
    admitted: Change | None = None


class Anchor(_Open):
    msp_id: str = Field(examples=["KZ-CUSTOMS"])
    kind: str = Field(description="root, tsa or ocsp", examples=["root"])
    fingerprint: str = Field(description="SHA-256 hex of the certificate")
    subject: str
    not_before: str
    not_after: str
    certificate: str = Field(description="DER, base64")
    status: str = Field(description="granted or withdrawn", examples=["granted"])
    reason: str | None = None


class AnchorVersion(_Open):
    tx_id: str
    deleted: bool
    value: Anchor | None


class MemberCrl(_Open):
    msp_id: str
    issuer: str = Field(description="RFC 4514 name of the CA")
    issuer_key_id: str
    number: str = Field(description="CRL number, decimal string")
    this_update: str
    next_update: str | None = None
    revoked: list[dict[str, Any]]


# --------------------------------------------------------------------------- AEOs
class Holder(_Open):
    name: str = Field(examples=["Khorgos Logistics LLP"])
    tin: str | None = Field(default=None, description="confidential: issuer and MRA partners only")
    address: dict[str, Any] | None = Field(
        default=None, description="confidential: issuer and MRA partners only"
    )


class AeoRecord(_Open):
    aeo_id: str = Field(examples=["KZ-AEO-2026-000123"])
    holder: Holder
    issuer: dict[str, Any] = Field(examples=[{"administration": "KZ-CUSTOMS", "country": "KZ"}])
    aeo_type: str = Field(examples=["AEOF"])
    status: str = Field(examples=["valid"])


class AeoVersion(_Open):
    aeo_id: str = Field(examples=["KZ-AEO-2026-000123"])
    version: int = Field(ge=1)
    action: str = Field(examples=["IssueAeo"])
    record: AeoRecord
    record_hash: str = Field(description="SHA-256 hex of the full record's canonical JSON")
    seal: str = Field(description="the issuer's e-seal (detached CAdES, base64)")
    effective_at: str
    by: Actor
    at: str
    tx_id: str
    redacted: list[str] | None = Field(
        default=None,
        description="confidential fields withheld from this caller",
        examples=[["record.holder.tin", "record.holder.address"]],
    )


class AeoCertificate(AeoVersion):
    status_now: str = Field(description="valid, suspended, revoked or expired", examples=["valid"])


class AeoStatusAt(_Open):
    aeo_id: str
    at: str = Field(examples=["2026-06-01T00:00:00Z"])
    status: str = Field(examples=["valid", "not_issued"])
    version: int | None = None
    tx_id: str | None = None


class AeoListItem(_Closed):
    aeo_id: str = Field(examples=["KZ-AEO-2026-000123"])
    country: str
    issuer: str
    status: str = Field(examples=["valid"])
    status_effective_at: str
    aeo_type: str
    holder_name: str
    holder_tin: str | None = Field(description="null when withheld from this caller")
    holder_city: str | None = Field(description="null when withheld from this caller")
    holder_country: str
    valid_until: str
    mra_sharing_consent: bool
    version: int
    block: int
    tx_id: str
    redacted: list[str] | None = Field(default=None, examples=[["holder_tin", "holder_city"]])


class AeoPage(_Closed):
    items: list[AeoListItem]
    next_cursor: str | None = Field(description="pass back as ?cursor= (null: no more)")


# --------------------------------------------------------------------------- MRAs
class Mra(_Open):
    mra_id: str = Field(examples=["MRA-KZ-UZ-2026"])
    title: str
    parties: list[str] = Field(examples=[["KZ-CUSTOMS", "UZ-CUSTOMS"]])
    recognised_types: dict[str, list[str]]
    state: str = Field(description="stored state", examples=["signed"])
    state_now: str = Field(description="derived at the node's time", examples=["in_force"])
    effective_from: str


class MraStateAt(_Open):
    mra_id: str
    at: str
    state: str = Field(examples=["in_force"])


class MraListItem(_Closed):
    mra_id: str
    title: str
    parties: list[str]
    state: str
    effective_from: str
    review_date: str | None
    legal_instrument_ref: str
    block: int
    tx_id: str


class MraPage(_Closed):
    items: list[MraListItem]
    next_cursor: str | None


class Recognition(_Open):
    recognised: bool
    reasons: list[str] = Field(
        examples=[["AEO certificate KZ-AEO-2026-000123 is valid at 2026-06-01T00:00:00Z"]]
    )
    evidence: dict[str, Any] = Field(description="{aeo: {aeo_id, version, tx_id, status_at}, mras}")


# --------------------------------------------------------------------------- trace
class Sez(_Open):
    sez: str = Field(examples=["KZ-KHORGOS"])
    country: str
    msp_id: str
    name: str
    operators: list[dict[str, Any]]


class SezListItem(_Closed):
    """A zone as the index lists it: the operators are counted, GET /v1/sez/{sez} names them."""

    sez: str = Field(examples=["KZ-KHORGOS"])
    country: str = Field(examples=["KZ"])
    msp_id: str = Field(
        description="the administration that accredits its operators", examples=["KZ-CUSTOMS"]
    )
    name: str = Field(examples=["Khorgos - Eastern Gate"])
    operators: int = Field(ge=0, description="how many operators are accredited", examples=[2])
    block: int = Field(ge=0, description="the block of the zone's last registration")
    tx_id: str = Field(examples=[TX_ID_EXAMPLE])


class SezPage(_Closed):
    items: list[SezListItem]
    next_cursor: str | None = Field(description="pass back as ?cursor= (null: no more)")


class AnchoredEvent(_Open):
    event_hash: str = Field(
        examples=[
            "ni:///sha-256;5f1c0e8a2d3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5?ver=CBV2.0"
        ]
    )
    consignment_ref: str = Field(examples=["26KZ0000042-KHG"])
    seq: int
    event_type: str = Field(examples=["ObjectEvent"])
    biz_step: str = Field(examples=["arriving"])
    event_time: str
    location: str
    sez: str
    batch_root: str
    proof: list[str]


class CorrectedEvent(_Closed):
    seq: int | None = Field(description="its place in the trail (null: not an earlier event)")
    event_hash: str


class TrailCorrection(_Closed):
    """A later event that corrects earlier ones (EPCIS errorDeclaration); nothing is edited."""

    seq: int
    event_hash: str
    corrects: list[CorrectedEvent]


class TrailVerification(_Open):
    consignment_ref: str
    ok: bool
    events: int
    problems: list[str]
    corrections: list[TrailCorrection]


class EventListItem(_Closed):
    event_hash: str
    sez: str
    consignment_ref: str
    seq: int
    event_type: str
    biz_step: str
    disposition: str | None
    event_time: str
    location: str
    aeo_id: str | None
    prev_event_hash: str | None
    corrects: list[str]
    block: int
    tx_id: str


class EventPage(_Closed):
    items: list[EventListItem]
    next_cursor: str | None


# --------------------------------------------------------------------------- writes
class SignedProposalBody(_Closed):
    """``SignedProposal.to_json()``: the canonical proposal bytes, the creator's
    signature over them, its certificate and CA chain — all base64."""

    proposal: Annotated[str, Field(max_length=12 * 1024 * 1024)]
    signature: Annotated[str, Field(max_length=4096)]
    certificate: Annotated[str, Field(max_length=32 * 1024)]
    chain: Annotated[list[Annotated[str, Field(max_length=32 * 1024)]], Field(max_length=8)] = []

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "proposal": "eyJhcmdzIjpbXSwiY2hhbm5lbCI6ImNhcmF2YW4iLC4uLn0=",
                    "signature": "MEUCIQD…",
                    "certificate": "MIICkTCCAjegAwIBAgIU…",
                    "chain": ["MIICmTCCAkCgAwIBAgIU…"],
                }
            ]
        },
    )


class BatchRequest(_Closed):
    proposals: list[SignedProposalBody] = Field(min_length=1, max_length=1000)


class ChaincodeEvent(_Closed):
    name: str = Field(examples=["caravan"])
    payload: Any = Field(description="the event payload (parsed JSON)")


class TransactionReceipt(_Closed):
    tx_id: str = Field(examples=[TX_ID_EXAMPLE])
    code: str = Field(description="VALID, a conflict or a refusal code", examples=["VALID"])
    block: int | None = Field(description="the block it was ordered into (null: refused)")
    status: int = Field(description="the contract's status, or the refusal's HTTP status")
    message: str = Field(examples=["OK"])
    payload: Any = Field(description="the contract's answer (parsed JSON) or null")
    event: ChaincodeEvent | None


class BatchReceipts(_Closed):
    receipts: list[TransactionReceipt]


class SealRequest(_Closed):
    record: dict[str, Any] = Field(
        description="the record to seal (sealed over its RFC 8785 canonical JSON)",
        examples=[{"aeo_id": "KZ-AEO-2026-000123", "aeo_type": "AEOF"}],
    )
    level: Literal["B-B", "B-T"] = Field(
        "B-T",
        description="CAdES level: B-T adds a signature timestamp from the organisation's TSA",
    )


class SealedRecord(_Closed):
    record_hash: str = Field(description="SHA-256 hex of the record's canonical JSON")
    seal: str = Field(description="detached CAdES B-B or B-T, base64")
    sealed_by: str = Field(description="the e-seal certificate's subject")


# ----------------------------------------------------------------------- validation
class DetachedValidationRequest(_Closed):
    """A detached signature or timestamp and the data it covers, both base64."""

    signature: Annotated[
        str, Field(min_length=1, description="CAdES (.p7s) or RFC 3161 reply, base64")
    ]
    content: Annotated[str, Field(description="the signed data, base64")]


class ValidationReportModel(_Open):
    indication: str = Field(examples=["TOTAL-PASSED"])
    subIndication: str | None = None  # the report's JSON name
    format: str
    summary: str


class ValidationResult(_Closed):
    indication: str = Field(
        description="the worst of the reports' indications", examples=["TOTAL-PASSED"]
    )
    reports: list[ValidationReportModel]

"""AEO certificates: who may write, the lifecycle, the seal check, versions and status at t."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.chaincode.conftest import Ledger, aeo_record, aeo_write, cert_b64, seal
from tests.conftest import Consortium
from trust_services.pki import OrgPki

AEO = "KZ-AEO-2026-000123"


def write(
    ledger: Ledger,
    pkis: dict[str, OrgPki],
    fn: str,
    record: dict[str, Any],
    who: str = "kz-officer",
) -> Any:
    return ledger.ok(who, fn, aeo_write(pkis[record["aeo_id"][:2].upper()], record))


def refused(
    ledger: Ledger,
    pkis: dict[str, OrgPki],
    fn: str,
    record: dict[str, Any],
    status: int,
    who: str = "kz-officer",
) -> str:
    return ledger.fails(who, fn, aeo_write(pkis[record["aeo_id"][:2].upper()], record), status)


def issued(ledger: Ledger, pkis: dict[str, OrgPki], **changes: Any) -> dict[str, Any]:
    record = aeo_record(ledger, **changes)
    write(ledger, pkis, "IssueAeo", record)
    return record


def test_issue_and_read(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = aeo_record(ledger)
    result = write(ledger, pkis, "IssueAeo", record)
    assert result["version"] == 1 and result["status"] == "valid"
    doc = ledger.ok("uz-admin", "GetAeo", {"aeo_id": AEO})
    assert doc["record"] == record and doc["status_now"] == "valid"
    assert doc["sealed_by"].startswith("CN=") and doc["by"]["msp_id"] == "KZ-CUSTOMS"
    assert ledger.last_event()["entries"][0]["type"] == "AeoIssued"


def test_another_country_may_not_issue(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = aeo_record(ledger)
    assert refused(ledger, pkis, "IssueAeo", record, 403, who="uz-admin") == (
        "UZ-CUSTOMS (UZ) may not issue AEO certificates of KZ"
    )
    other = aeo_record(ledger, issuer={"administration": "UZ-CUSTOMS", "country": "KZ"})
    assert refused(ledger, pkis, "IssueAeo", other, 403) == (
        "record.issuer.administration must be KZ-CUSTOMS, the writing administration"
    )
    bad = aeo_record(ledger, issuer={"administration": "KZ-CUSTOMS", "country": "UZ"})
    assert "differs from the aeo_id prefix KZ" in refused(ledger, pkis, "IssueAeo", bad, 400)


@pytest.mark.parametrize("who", ["kz-verifier", "kz-khorgos"])
def test_roles_without_aeo_rights(ledger: Ledger, pkis: dict[str, OrgPki], who: str) -> None:
    message = refused(ledger, pkis, "IssueAeo", aeo_record(ledger), 403, who=who)
    assert message.endswith("may not do this (needs admin or officer)")


def test_lifecycle_and_history(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = issued(ledger, pkis)
    suspended = {
        **record,
        "status": "suspended",
        "status_reason": "audit",
        "status_effective_at": ledger.iso(1),
    }
    write(ledger, pkis, "SuspendAeo", suspended)
    assert ledger.last_event()["entries"][0] | {"record_hash": ""} == {
        "type": "AeoSuspended",
        "aeo_id": AEO,
        "version": 2,
        "status": "suspended",
        "effective_at": suspended["status_effective_at"],
        "record_hash": "",
    }
    amended = {**suspended, "holder": {**record["holder"], "name": "Khorgos Logistics JSC"}}
    write(ledger, pkis, "AmendAeo", amended)
    reinstated = {
        **amended,
        "status": "valid",
        "status_reason": None,
        "status_effective_at": ledger.iso(1),
    }
    write(ledger, pkis, "ReinstateAeo", reinstated, who="kz-admin")
    revoked = {
        **reinstated,
        "status": "revoked",
        "status_reason": "fraud",
        "status_effective_at": ledger.iso(1),
    }
    write(ledger, pkis, "RevokeAeo", revoked)
    history = ledger.ok("kg-admin", "GetAeoHistory", {"aeo_id": AEO})
    assert [(h["version"], h["action"], h["record"]["status"]) for h in history] == [
        (1, "IssueAeo", "valid"),
        (2, "SuspendAeo", "suspended"),
        (3, "AmendAeo", "suspended"),
        (4, "ReinstateAeo", "valid"),
        (5, "RevokeAeo", "revoked"),
    ]
    assert len({h["tx_id"] for h in history}) == 5


def test_invalid_lifecycle_steps(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = aeo_record(ledger)
    assert refused(
        ledger, pkis, "SuspendAeo", {**record, "status": "suspended", "status_reason": "x"}, 404
    ) == (f"AEO certificate {AEO} not found")
    assert refused(ledger, pkis, "IssueAeo", {**record, "status": "suspended"}, 409) == (
        "IssueAeo needs record.status valid, got suspended"
    )
    write(ledger, pkis, "IssueAeo", record)
    assert refused(ledger, pkis, "IssueAeo", record, 409) == f"AEO certificate {AEO} already exists"
    assert refused(ledger, pkis, "ReinstateAeo", record, 409) == (
        f"cannot reinstate AEO certificate {AEO}: it is valid"
    )
    assert (
        refused(ledger, pkis, "SuspendAeo", record, 409)
        == "SuspendAeo needs record.status suspended, got valid"
    )
    no_reason = {**record, "status": "suspended", "status_effective_at": ledger.iso(1)}
    assert (
        refused(ledger, pkis, "SuspendAeo", no_reason, 400)
        == "record.status_reason is required to suspend"
    )
    early = {**no_reason, "status_reason": "x", "status_effective_at": ledger.iso(-3600)}
    assert "precedes the current status" in refused(ledger, pkis, "SuspendAeo", early, 409)
    assert refused(ledger, pkis, "AmendAeo", {**record, "status": "suspended"}, 409) == (
        "AmendAeo cannot change the status (valid → suspended)"
    )
    assert refused(
        ledger, pkis, "AmendAeo", {**record, "status_effective_at": ledger.iso(5)}, 409
    ) == ("AmendAeo cannot change status_effective_at")
    revoked = {
        **record,
        "status": "revoked",
        "status_reason": "x",
        "status_effective_at": ledger.iso(1),
    }
    write(ledger, pkis, "RevokeAeo", revoked)
    for fn, status in (
        ("SuspendAeo", "suspended"),
        ("AmendAeo", "revoked"),
        ("RevokeAeo", "revoked"),
    ):
        step = {**revoked, "status": status, "status_effective_at": ledger.iso(2)}
        verb = {"SuspendAeo": "suspend", "AmendAeo": "amend", "RevokeAeo": "revoke"}[fn]
        assert (
            refused(ledger, pkis, fn, step, 409)
            == f"cannot {verb} AEO certificate {AEO}: it is revoked"
        )


def test_status_at(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    start = ledger.iso(1)
    record = issued(ledger, pkis, status_effective_at=start)
    until = record["valid_until"]
    suspend_at = ledger.iso(100)  # a suspension that takes effect later
    write(
        ledger,
        pkis,
        "SuspendAeo",
        {
            **record,
            "status": "suspended",
            "status_reason": "audit",
            "status_effective_at": suspend_at,
        },
    )

    def at(t: str) -> str:
        return str(ledger.ok("kg-admin", "GetAeoStatusAt", {"aeo_id": AEO, "at": t})["status"])

    assert at("2000-01-01") == "not_issued"
    assert at(start) == "valid"
    assert at(ledger.iso(50)) == "valid"
    assert at(suspend_at) == "suspended"
    reinstate = {**record, "status_effective_at": ledger.iso(200)}
    write(ledger, pkis, "ReinstateAeo", reinstate)
    assert at(ledger.iso(150)) == "suspended"
    assert at(ledger.iso(300)) == "valid"
    assert at(until) == "expired"
    assert "not an RFC 3339" in ledger.fails(
        "kg-admin", "GetAeoStatusAt", {"aeo_id": AEO, "at": "soon"}, 400
    )


# ------------------------------------------------------------------ the seal check
def test_wrong_hash_is_malformed(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = aeo_record(ledger)
    request = aeo_write(pkis["KZ"], record) | {"record_hash": "0" * 64}
    assert ledger.fails("kz-officer", "IssueAeo", request, 400) == (
        "record_hash does not match the SHA-256 of the record's canonical JSON"
    )


def test_tampered_record(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    from chaincode.canonical import sha256_hex

    record = aeo_record(ledger)
    request = aeo_write(pkis["KZ"], record)
    tampered = {**record, "aeo_type": "AEOC"}
    request |= {"record": tampered, "record_hash": sha256_hex(tampered)}
    assert ledger.fails("kz-officer", "IssueAeo", request, 403) == (
        "seal rejected: the message digest does not match the canonical JSON of the record"
    )


def test_seal_by_another_countrys_key(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = aeo_record(ledger)
    request = aeo_write(pkis["KZ"], record) | {"seal": seal(pkis["UZ"], record)}
    assert ledger.fails("kz-officer", "IssueAeo", request, 403) == (
        "seal rejected: the seal certificate does not chain to a granted root anchor of the issuer"
    )


def test_seal_not_chaining_to_a_granted_anchor(ledger: Ledger, fresh_pki: OrgPki) -> None:
    record = aeo_record(ledger)
    request = aeo_write(fresh_pki, record)  # another KZ-CUSTOMS PKI, root not on the ledger
    assert "does not chain to a granted root anchor" in ledger.fails(
        "kz-officer", "IssueAeo", request, 403
    )


def test_withdrawn_anchor(ledger: Ledger, pkis: dict[str, OrgPki], consortium: Consortium) -> None:
    import hashlib

    from cryptography.hazmat.primitives import serialization

    root = pkis["KZ"].certificate("root").public_bytes(serialization.Encoding.DER)
    ledger.ok(
        "kz-admin", "AddAnchor", {"kind": "root", "certificate": cert_b64(consortium.uz, "root")}
    )
    ledger.ok(
        "kz-admin",
        "WithdrawAnchor",
        {
            "msp_id": "KZ-CUSTOMS",
            "fingerprint": hashlib.sha256(root).hexdigest(),
            "reason": "compromise",
        },
    )
    message = ledger.fails("kz-officer", "IssueAeo", aeo_write(pkis["KZ"], aeo_record(ledger)), 403)
    assert "does not chain to a granted root anchor" in message


def test_seal_certificate_not_valid_at_tx_time(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = aeo_record(ledger)
    ledger.clock -= 30 * 86400  # a month before the PKIs were made
    message = ledger.fails("kz-officer", "IssueAeo", aeo_write(pkis["KZ"], record), 403)
    assert message.startswith("seal rejected: the seal certificate") and "not valid" in message


@pytest.mark.parametrize(
    ("seal_b64", "status", "message"),
    [
        ("%%%", 400, "request.seal is not base64"),
        (
            base64.b64encode(b"\x30\x80\x00\x00").decode(),
            403,
            "seal rejected: malformed CMS: indefinite",
        ),
        (base64.b64encode(b"\x30\x03\x02\x01\x01").decode(), 403, "seal rejected:"),
        (base64.b64encode(b"\x04\x00").decode(), 403, "seal rejected: malformed CMS"),
    ],
)
def test_malformed_seal(
    ledger: Ledger, pkis: dict[str, OrgPki], seal_b64: str, status: int, message: str
) -> None:
    request = aeo_write(pkis["KZ"], aeo_record(ledger)) | {"seal": seal_b64}
    assert ledger.fails("kz-officer", "IssueAeo", request, status).startswith(message)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"aeo_id": "kz-1"}, "request.record.aeo_id 'kz-1' has the wrong format"),
        ({"aeo_type": "AEOX"}, "request.record.aeo_type must be one of AEOC, AEOS, AEOF"),
        (
            {"supply_chain_roles": []},
            "request.record.supply_chain_roles must be a list of 1 to 7 strings",
        ),
        ({"status_effective_at": "yesterday"}, "not an RFC 3339 timestamp"),
        (
            {"mra_sharing_consent": "yes"},
            "request.record.mra_sharing_consent must be true or false",
        ),
        ({"valid_until": "2001-01-01"}, "valid_until must be after"),
        ({"surprise": 1}, "request.record has unknown member(s): surprise"),
    ],
)
def test_malformed_record(
    ledger: Ledger, pkis: dict[str, OrgPki], change: dict[str, Any], message: str
) -> None:
    record = aeo_record(ledger) | change
    assert message in refused(ledger, pkis, "IssueAeo", record, 400)


def test_seal_must_be_made_with_an_eseal_certificate(
    ledger: Ledger, pkis: dict[str, OrgPki]
) -> None:
    from trust_services.cades import CadesSigner
    from trust_services.profiles import CertProfile

    kz = pkis["KZ"]
    record = aeo_record(ledger)
    request = aeo_write(kz, record)
    # the issuing CA's own key
    ca_signer = CadesSigner(kz.key("issuing"), kz.certificate("issuing"), [kz.certificate("root")])
    request["seal"] = base64.b64encode(ca_signer.sign_json(record)).decode()
    assert ledger.fails("kz-officer", "IssueAeo", request, 403) == (
        "seal rejected: the signer certificate is a CA certificate, not a seal certificate"
    )
    # an officer's personal signing certificate (QcType esign) of the same administration
    kz.issue_with_new_key(CertProfile.OFFICER, "aeo-officer-sig", common_name="Officer A")
    officer = CadesSigner.for_org(kz, "aeo-officer-sig")
    request["seal"] = base64.b64encode(officer.sign_json(record)).decode()
    assert ledger.fails("kz-officer", "IssueAeo", request, 403) == (
        "seal rejected: the signer certificate is not an e-seal certificate (QcType eseal)"
    )

"""IsRecognised: AEO valid at t, MRA in force at t, type recognised, holder consent."""

from __future__ import annotations

from typing import Any

from tests.chaincode.conftest import Ledger, aeo_record, aeo_write
from tests.chaincode.test_mra import proposal, step
from trust_services.pki import OrgPki

AEO = "KZ-AEO-2026-000123"


def setup(ledger: Ledger, pkis: dict[str, OrgPki], **record_changes: Any) -> dict[str, Any]:
    record = aeo_record(ledger, **record_changes)
    ledger.ok("kz-officer", "IssueAeo", aeo_write(pkis["KZ"], record))
    ledger.ok("kz-admin", "ProposeMra", proposal(ledger))
    ledger.ok("kz-admin", "SignMra", step())
    ledger.ok("uz-admin", "SignMra", step())
    ledger.clock += 20
    return record


def ask(ledger: Ledger, country: str, at: str, aeo_id: str = AEO) -> dict[str, Any]:
    result: dict[str, Any] = ledger.ok(
        "kg-admin", "IsRecognised", {"aeo_id": aeo_id, "country": country, "at": at}
    )
    return result


def test_recognised_in_partner_country_with_evidence(
    ledger: Ledger, pkis: dict[str, OrgPki]
) -> None:
    setup(ledger, pkis)
    result = ask(ledger, "UZ", ledger.iso())
    assert result["recognised"] is True
    assert (
        result["reasons"][-1]
        == "MRA MRA-KZ-UZ-2026 is in force and UZ-CUSTOMS recognises AEOF under it"
    )
    evidence = result["evidence"]
    assert evidence["aeo"] | {"tx_id": None} == {
        "aeo_id": AEO,
        "version": 1,
        "tx_id": None,
        "status_at": "valid",
    }
    assert evidence["aeo"]["tx_id"]
    assert (
        evidence["mras"][0]["mra_id"] == "MRA-KZ-UZ-2026"
        and evidence["mras"][0]["state_at"] == "in_force"
    )
    assert len(evidence["mras"][0]["tx_ids"]) == 3


def test_not_recognised_without_mra(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    setup(ledger, pkis)
    result = ask(ledger, "KG", ledger.iso())
    assert result["recognised"] is False
    assert result["reasons"][-1].startswith(
        "no MRA between KZ-CUSTOMS and KG-CUSTOMS is in force at"
    )


def test_not_recognised_before_effective_from_or_when_suspended(
    ledger: Ledger, pkis: dict[str, OrgPki]
) -> None:
    setup(ledger, pkis)
    early = ask(ledger, "UZ", ledger.iso(-15))
    assert early["recognised"] is False and early["evidence"]["mras"][0]["state_at"] == "signed"
    ledger.ok("kz-admin", "SuspendMra", step("review"))
    assert ask(ledger, "UZ", ledger.iso(1))["recognised"] is False
    assert (
        ask(ledger, "UZ", ledger.iso(-3))["recognised"] is True
    )  # at a time before the suspension


def test_type_not_recognised(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    setup(ledger, pkis, aeo_type="AEOC")
    result = ask(ledger, "UZ", ledger.iso())
    assert result["recognised"] is False
    assert (
        result["reasons"][-1] == "UZ-CUSTOMS does not recognise type AEOC under MRA MRA-KZ-UZ-2026"
    )


def test_suspended_aeo_and_no_consent(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    record = setup(ledger, pkis, mra_sharing_consent=False)
    result = ask(ledger, "UZ", ledger.iso())
    assert result["recognised"] is False
    assert "the holder has not consented to sharing its data with MRA partners" in result["reasons"]
    suspended = {
        **record,
        "status": "suspended",
        "status_reason": "audit",
        "status_effective_at": ledger.iso(1),
    }
    ledger.ok("kz-officer", "SuspendAeo", aeo_write(pkis["KZ"], suspended))
    later = ask(ledger, "UZ", ledger.iso(5))
    assert later["recognised"] is False
    assert later["reasons"][0].startswith(f"AEO certificate {AEO} is suspended at")


def test_unknown_aeo_country_and_domestic(ledger: Ledger, pkis: dict[str, OrgPki]) -> None:
    assert (
        ledger.fails(
            "kg-admin", "IsRecognised", {"aeo_id": AEO, "country": "UZ", "at": "2026-01-01"}, 404
        )
        == f"AEO certificate {AEO} not found"
    )
    setup(ledger, pkis)
    unknown = ask(ledger, "TJ", ledger.iso())
    assert (
        unknown["recognised"] is False
        and unknown["reasons"][-1] == "no member administration for country TJ"
    )
    assert ask(ledger, "KZ", ledger.iso())["recognised"] is True
    assert "query.country 'uz' has the wrong format" in ledger.fails(
        "kg-admin", "IsRecognised", {"aeo_id": AEO, "country": "uz", "at": "2026-01-01"}, 400
    )

"""The issue-3 scenario on real PKIs: KZ, UZ, KG and the KZ-KHORGOS SEZ operator."""

from __future__ import annotations

import json
from typing import Any

from cryptography import x509

from chaincode.merkle import verify_inclusion
from tests.chaincode.conftest import Ledger, aeo_record, aeo_write
from tests.chaincode.test_mra import ACT, proposal
from tests.conftest import Consortium


def test_three_administrations_and_an_sez(ledger: Ledger, consortium: Consortium) -> None:
    kz = consortium.kz
    # KZ issues two AEO certificates, sealed with its real e-seal
    aeo = aeo_record(ledger, "KZ-AEO-2026-000001", aeo_type="AEOF")
    other = aeo_record(ledger, "KZ-AEO-2026-000002", aeo_type="AEOC")
    for record in (aeo, other):
        ledger.ok("kz-officer", "IssueAeo", aeo_write(kz, record))
    # UZ may not issue for KZ
    ledger.fails(
        "uz-admin", "IssueAeo", aeo_write(kz, aeo_record(ledger, "KZ-AEO-2026-000003")), 403
    )

    # an MRA KZ-UZ, signed by both, in force from effective_from
    ledger.ok("uz-admin", "ProposeMra", proposal(ledger))
    ledger.ok("uz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    ledger.ok("kz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    ledger.clock += 60

    def recognised(aeo_id: str, country: str) -> bool:
        query = {"aeo_id": aeo_id, "country": country, "at": ledger.iso(1)}
        return bool(ledger.ok("kg-admin", "IsRecognised", query)["recognised"])

    assert recognised("KZ-AEO-2026-000001", "UZ") is True
    assert recognised("KZ-AEO-2026-000001", "KG") is False
    assert recognised("KZ-AEO-2026-000002", "UZ") is False  # AEOC not recognised by UZ

    # KZ suspends the AEO: UZ learns it from the transaction's event, recognition stops
    suspended = {
        **aeo,
        "status": "suspended",
        "status_reason": "audit findings",
        "status_effective_at": ledger.iso(1),
    }
    ledger.ok("kz-officer", "SuspendAeo", aeo_write(kz, suspended))
    event = ledger.last_event()
    assert (
        event["entries"][0]["type"] == "AeoSuspended"
        and event["entries"][0]["aeo_id"] == aeo["aeo_id"]
    )
    assert recognised("KZ-AEO-2026-000001", "UZ") is False

    # the SEZ operator anchors a consignment trail; its proofs and the trail verify
    subject = x509.load_der_x509_certificate(
        ledger.ids["kz-khorgos"].certificate_der
    ).subject.rfc4514_string()
    ledger.ok(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": subject},
    )
    ref = "26KZ0000042-KHG"
    events = trail_events(ref, other["aeo_id"])
    first = ledger.ok("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[:3]})
    second = ledger.ok("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[3:]})
    for batch in (first, second):
        for proof in batch["proofs"]:
            assert verify_inclusion(
                bytes.fromhex(proof["leaf_hash"]),
                proof["leaf_index"],
                batch["size"],
                [bytes.fromhex(p) for p in proof["path"]],
                bytes.fromhex(batch["batch_root"]),
            )
    ledger.fails("kz-aktau", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[:1]}, 403)
    trail = ledger.ok("uz-admin", "GetTrail", {"consignment_ref": ref})
    assert [t["biz_step"] for t in trail] == STEPS
    assert ledger.ok("uz-admin", "VerifyTrail", {"consignment_ref": ref})["ok"] is True
    # every state change emitted exactly one event
    assert all(json.loads(e.payload)["entries"] for e in ledger.stub.events)


STEPS = ["arriving", "inspecting", "storing", "loading", "departing"]


def trail_events(ref: str, aeo_id: str) -> list[dict[str, Any]]:
    """A consignment's passage through the SEZ, one event per step."""
    return [
        {
            "event_hash": f"ni:///sha-256;{i + 1:064x}?ver=CBV2.0",
            "consignment_ref": ref,
            "event_type": "ObjectEvent",
            "biz_step": step,
            "disposition": "in_progress",
            "event_time": f"2026-11-24T0{i}:00:00+05:00",
            "location": "urn:epc:id:sgln:4870001.00001.0",
            "aeo_id": aeo_id,
        }
        for i, step in enumerate(STEPS)
    ]

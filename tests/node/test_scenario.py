"""The issue-3 scenario end to end on the embedded ledger, every step a signed proposal.

KZ, UZ and KG customs and the KZ-KHORGOS SEZ operator: KZ issues sealed AEO
certificates, KZ and UZ sign an MRA, recognition is checked in UZ (yes) and KG (no), KZ
suspends the AEO (UZ sees it on the event stream; recognition stops), the operator
anchors a consignment trail that verifies; then the whole chain verifies.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

from chaincode.merkle import verify_inclusion
from node.embedded.ledger import EmbeddedLedger
from node.embedded.verify import verify_ledger
from node.proposal import KeySigner
from tests.chaincode.conftest import aeo_record, aeo_write
from tests.chaincode.test_mra import ACT, proposal
from tests.chaincode.test_scenario import STEPS, trail_events
from tests.node.conftest import Signers, propose


class Clock:
    """Transaction time under the test's control: one second per proposal."""

    def __init__(self) -> None:
        self.clock = int(time.time())

    def __call__(self) -> int:
        return self.clock * 10**9

    def iso(self, offset_s: int = 0) -> str:
        return dt.datetime.fromtimestamp(self.clock + offset_s, dt.UTC).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

    def tick(self) -> tuple[int, int]:
        self.clock += 1
        return self.clock, 0


def test_three_administrations_and_an_sez(
    make_ledger: Callable[..., EmbeddedLedger], signers: Signers
) -> None:
    clock = Clock()
    ledger = make_ledger("KZ", "UZ", "KG", clock=clock)
    kz = signers.pkis["KZ"]

    def ok(who: str | KeySigner, function: str, arg: Any) -> Any:
        signer = signers[who] if isinstance(who, str) else who
        receipt = ledger.submit(propose(signer, function, arg, ts=clock.tick()))
        assert receipt.code == "VALID", (function, receipt)
        return json.loads(receipt.payload)

    def refused(who: str, function: str, arg: Any, status: int) -> None:
        receipt = ledger.submit(propose(signers[who], function, arg, ts=clock.tick()))
        assert (receipt.code, receipt.status) == ("CHAINCODE_ERROR", status), receipt

    def query(function: str, arg: Any) -> Any:
        response = ledger.evaluate(function, [json.dumps(arg)])
        assert response.status == 200, response
        return json.loads(response.payload)

    # KZ issues two sealed AEO certificates; UZ may not issue for KZ
    aeo = aeo_record(clock, "KZ-AEO-2026-000001", aeo_type="AEOF")
    other = aeo_record(clock, "KZ-AEO-2026-000002", aeo_type="AEOC")
    for record in (aeo, other):
        ok("kz-officer", "IssueAeo", aeo_write(kz, record))
    refused("uz-admin", "IssueAeo", aeo_write(kz, aeo_record(clock, "KZ-AEO-2026-000003")), 403)

    # an MRA KZ-UZ, proposed and signed by each party in its own transaction
    ok("uz-admin", "ProposeMra", proposal(clock))
    ok("uz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    ok("kz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    clock.clock += 60  # past effective_from

    def recognised(aeo_id: str, country: str) -> bool:
        answer = query("IsRecognised", {"aeo_id": aeo_id, "country": country, "at": clock.iso()})
        return bool(answer["recognised"])

    assert recognised("KZ-AEO-2026-000001", "UZ") is True
    assert recognised("KZ-AEO-2026-000001", "KG") is False
    assert recognised("KZ-AEO-2026-000002", "UZ") is False  # AEOC: not in UZ's types

    # KZ suspends the AEO; UZ, following the event stream, sees it; recognition stops
    checkpoint = ledger.height
    suspended = {
        **aeo,
        "status": "suspended",
        "status_reason": "audit findings",
        "status_effective_at": clock.iso(1),
    }
    ok("kz-officer", "SuspendAeo", aeo_write(kz, suspended))
    new_events = [json.loads(payload) for *_, payload in ledger.events(checkpoint)]
    assert [e["entries"][0]["type"] for e in new_events] == ["AeoSuspended"]
    assert new_events[0]["entries"][0]["aeo_id"] == aeo["aeo_id"]
    clock.clock += 5
    assert recognised("KZ-AEO-2026-000001", "UZ") is False

    # the SEZ operator anchors a consignment trail in two batches; proofs and trail verify
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    ok(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": "KZ-KHORGOS", "name": "Khorgos - Eastern Gate", "operator_subject": subject},
    )
    ref = "26KZ0000042-KHG"
    events = trail_events(ref, other["aeo_id"])
    batches = [
        ok("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[:3]}),
        ok("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[3:]}),
    ]
    for batch in batches:
        for item in batch["proofs"]:
            assert verify_inclusion(
                bytes.fromhex(item["leaf_hash"]),
                item["leaf_index"],
                batch["size"],
                [bytes.fromhex(p) for p in item["path"]],
                bytes.fromhex(batch["batch_root"]),
            )
    # an operator of another zone may not anchor KHORGOS events
    refused("kz-aktau", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[:1]}, 403)
    trail = query("GetTrail", {"consignment_ref": ref})
    assert [t["biz_step"] for t in trail] == STEPS
    assert query("VerifyTrail", {"consignment_ref": ref})["ok"] is True

    # the AEO's history keeps both versions; status at a time before the suspension
    history = query("GetAeoHistory", {"aeo_id": aeo["aeo_id"]})
    assert [v["record"]["status"] for v in history] == ["valid", "suspended"]

    report = verify_ledger(ledger.store)
    assert report.height == ledger.height and report.valid_count == report.tx_count

"""The issue-3 story through caravan.submit on the chaincode server gives exactly what the
embedded ledger gives for the same signed proposals: responses, refusals, events, state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.stub import Creator
from node.embedded.ledger import EmbeddedLedger
from node.ledger import Receipt
from node.proposal import KeySigner
from tests.chaincode.conftest import aeo_record, aeo_write
from tests.chaincode.test_mra import ACT, proposal
from tests.chaincode.test_scenario import STEPS, trail_events
from tests.node.conftest import CHANNEL, Signers, genesis_arg, propose
from tests.node.test_scenario import Clock

from .conftest import Running
from .helpers import fabric_creator, read, submit
from .peer import TestPeer


def same(receipt: Receipt, response: Any) -> None:
    """A Fabric response equals an embedded receipt."""
    if receipt.code == "VALID":
        assert (response.status, response.payload) == (200, receipt.payload)
    elif receipt.code == "CHAINCODE_ERROR":
        assert (response.status, response.message) == (receipt.status, receipt.message)
    else:
        assert (response.status, response.message) == (
            receipt.status,
            f"{receipt.code}: {receipt.message}",
        )


def embedded_state(ledger: EmbeddedLedger) -> dict[str, bytes]:
    state: dict[str, bytes] = {}
    for tx in ledger.changes(0):
        for key, value in tx.writes:
            if value is None:
                state.pop(key, None)
            else:
                state[key] = value
    return state


def test_story_on_the_chaincode_server_equals_the_embedded_ledger(
    running: Running, signers: Signers, tmp_path: Path
) -> None:
    clock = Clock()
    kz = signers.pkis["KZ"]
    genesis = propose(
        signers["kz-admin"],
        "InitLedger",
        genesis_arg(signers.pkis, "KZ", "UZ", "KG"),
        ts=clock.tick(),
    )
    ledger = EmbeddedLedger.create(
        tmp_path / "l.db", CHANNEL, genesis, signers["kz-node"], clock=clock, workers=0
    )
    peer = TestPeer.connect(running.address)
    try:
        assert submit(peer, genesis, relay=signers["kz-node"]).status == 200
        reader = signers["uz-officer"]

        def both(who: str, function: str, arg: Any) -> Receipt:
            signed = propose(signers[who], function, arg, ts=clock.tick())
            receipt = ledger.submit(signed)
            same(receipt, submit(peer, signed, relay=signers["kz-node"]))
            return receipt

        def query(function: str, arg: Any) -> Any:
            embedded = ledger.evaluate(
                function, [json.dumps(arg)], Creator(reader.msp_id, _der(reader))
            )
            fabric = read(
                peer, function, arg, creator=fabric_creator(reader), timestamp=(clock.clock, 0)
            )
            assert (fabric.status, fabric.message) == (embedded.status, embedded.message)
            assert fabric.payload == embedded.payload, function
            return json.loads(fabric.payload)

        aeo = aeo_record(clock, "KZ-AEO-2026-000001", aeo_type="AEOF")
        other = aeo_record(clock, "KZ-AEO-2026-000002", aeo_type="AEOC")
        for record in (aeo, other):
            assert both("kz-officer", "IssueAeo", aeo_write(kz, record)).code == "VALID"
        bad = aeo_write(kz, aeo_record(clock, "KZ-AEO-2026-000003"))
        assert both("uz-admin", "IssueAeo", bad).status == 403
        assert both("uz-admin", "ProposeMra", proposal(clock)).code == "VALID"
        assert both("uz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT}).code == "VALID"
        assert both("kz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT}).code == "VALID"
        clock.clock += 60

        def recognised(aeo_id: str, country: str) -> bool:
            arg = {"aeo_id": aeo_id, "country": country, "at": clock.iso()}
            return bool(query("IsRecognised", arg)["recognised"])

        assert recognised("KZ-AEO-2026-000001", "UZ") is True
        assert recognised("KZ-AEO-2026-000001", "KG") is False
        suspended = {
            **aeo,
            "status": "suspended",
            "status_reason": "audit findings",
            "status_effective_at": clock.iso(1),
        }
        assert both("kz-officer", "SuspendAeo", aeo_write(kz, suspended)).code == "VALID"
        clock.clock += 5
        assert recognised("KZ-AEO-2026-000001", "UZ") is False

        subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
        sez = {"sez": "KZ-KHORGOS", "name": "Khorgos - Eastern Gate", "operator_subject": subject}
        assert both("kz-admin", "RegisterSezOperator", sez).code == "VALID"
        ref = "26KZ0000042-KHG"
        events = trail_events(ref, other["aeo_id"])
        for batch in (events[:3], events[3:]):
            arg = {"sez": "KZ-KHORGOS", "events": batch}
            assert both("kz-khorgos", "AnchorEvents", arg).code == "VALID"
        assert (
            both("kz-aktau", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events[:1]}).status
            == 403
        )
        trail = query("GetTrail", {"consignment_ref": ref})
        assert [t["biz_step"] for t in trail] == STEPS
        assert query("VerifyTrail", {"consignment_ref": ref})["ok"] is True
        query("GetAeo", {"aeo_id": aeo["aeo_id"]})
        query("GetTrustList", {})

        # the same world state (plus the Caravan tx ids seen), the same events in order
        fabric_state = {k: v for k, v in peer.state.items() if not k.startswith("\x00txid\x00")}
        assert fabric_state == embedded_state(ledger)
        seen = {k for k in peer.state if k.startswith("\x00txid\x00")}
        assert len(seen) == sum(1 for _ in ledger.changes(0))
        assert [(n, p) for _t, n, p in peer.events] == [
            (name, payload) for _b, _t, name, payload in ledger.events(0)
        ]
    finally:
        peer.close()
        ledger.close()
    assert peer.violations == []


def _der(signer: KeySigner) -> bytes:
    return signer.certificate.public_bytes(Encoding.DER)

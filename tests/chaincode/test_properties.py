"""Property tests: AEO and MRA lifecycles against simple models, determinism, seal fuzzing."""

from __future__ import annotations

import base64
import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from chaincode.canonical import canonical_json
from chaincode.errors import Forbidden
from chaincode.memstub import MemStub
from chaincode.seal import verify_seal
from tests.chaincode.conftest import Identities, Ledger, aeo_record, aeo_write, genesis
from tests.chaincode.test_mra import ACT, proposal
from tests.conftest import Consortium
from trust_services.pki import OrgPki

AEO = "KZ-AEO-2026-000123"
STEPS = {
    # action: (allowed from, new status)
    "SuspendAeo": ({"valid"}, "suspended"),
    "ReinstateAeo": ({"suspended"}, "valid"),
    "RevokeAeo": ({"valid", "suspended"}, "revoked"),
    "AmendAeo": ({"valid", "suspended"}, None),
}


def test_aeo_lifecycle_state_machine(identities: Identities, consortium: Consortium) -> None:
    kz = consortium.kz
    seen: Counter[str] = Counter()

    class AeoMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.ledger = Ledger(identities)
            self.ledger.ok("kz-admin", "InitLedger", genesis(consortium, "KZ", "UZ"))
            self.status: str | None = None
            self.record: dict[str, Any] | None = None
            self.versions = 0

        @initialize(start=st.sampled_from(["none", "valid", "suspended", "revoked"]))
        def begin(self, start: str) -> None:
            if start == "none":
                return
            self.issue()
            if start == "suspended":
                self.change("SuspendAeo", "suspended")
            elif start == "revoked":
                self.change("RevokeAeo", "revoked")

        @rule()
        def issue(self) -> None:
            record = aeo_record(self.ledger, status_effective_at=self.ledger.iso(1))
            response = self.ledger.call("kz-officer", "IssueAeo", aeo_write(kz, record))
            if self.status is None:
                assert response.status == 200, response.message
                self.status, self.record, self.versions = "valid", record, 1
            else:
                assert response.status == 409

        @rule(
            action=st.sampled_from(sorted(STEPS)),
            requested=st.sampled_from(["valid", "suspended", "revoked"]),
        )
        def change(self, action: str, requested: str) -> None:
            base = self.record or aeo_record(self.ledger)
            allowed, target = STEPS[action]
            status = requested if target is None else target
            record = {**base, "status": status, "status_reason": "model step"}
            if action != "AmendAeo":
                record["status_effective_at"] = self.ledger.iso(1)
            response = self.ledger.call("kz-officer", action, aeo_write(kz, record))
            seen[f"{action} -> {response.status}"] += 1
            if self.status is None:
                assert response.status == 404
            elif self.status not in allowed or (target is None and status != self.status):
                assert response.status == 409, response.message
            else:
                assert response.status == 200, response.message
                self.status, self.record = status, record
                self.versions += 1

        @invariant()
        def ledger_agrees(self) -> None:
            if self.status is None:
                return
            doc = self.ledger.ok("kg-admin", "GetAeo", {"aeo_id": AEO})
            assert doc["record"]["status"] == self.status and doc["version"] == self.versions
            history = self.ledger.ok("kg-admin", "GetAeoHistory", {"aeo_id": AEO})
            assert [h["version"] for h in history] == list(range(1, self.versions + 1))

    run_state_machine_as_test(
        AeoMachine,
        settings=settings(
            max_examples=30,
            stateful_step_count=15,
            deadline=None,
            derandomize=True,  # the same walk on every run: the coverage checks below cannot flake
            suppress_health_check=list(HealthCheck),
        ),
    )
    # the machine exercised both accepted and refused steps of every kind
    for action in STEPS:
        assert seen[f"{action} -> 200"] and seen[f"{action} -> 409"], (action, seen)


PARTIES = ("kz-admin", "uz-admin", "kg-admin")
MSPS = {"kz-admin": "KZ-CUSTOMS", "uz-admin": "UZ-CUSTOMS", "kg-admin": "KG-CUSTOMS"}


def test_mra_lifecycle_state_machine(identities: Identities, consortium: Consortium) -> None:
    seen: Counter[str] = Counter()

    class MraMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.ledger = Ledger(identities)
            self.ledger.ok("kz-admin", "InitLedger", genesis(consortium, "KZ", "UZ", "KG"))
            self.effective_from = self.ledger.clock + 10  # proposal(): effective_from = now + 10 s
            self.ledger.ok("kz-admin", "ProposeMra", proposal(self.ledger))
            self.signed: set[str] = set()
            self.state = "negotiating"  # negotiating | signed | suspended | terminated
            self.suspended_by: str | None = None

        def derived(self) -> str:
            if self.state == "signed":
                return "in_force" if self.ledger.clock >= self.effective_from else "signed"
            return self.state

        def call(self, who: str, fn: str, reason: bool) -> int:
            arg: dict[str, Any] = {"mra_id": "MRA-KZ-UZ-2026", **ACT}
            if reason:
                arg["reason"] = "model"
            status = self.ledger.call(who, fn, arg).status
            seen[f"{fn} -> {status}"] += 1
            return status

        @initialize(
            start=st.sampled_from(
                ["negotiating", "half", "in_force", "suspended-kz", "suspended-uz"]
            )
        )
        def begin(self, start: str) -> None:
            if start == "negotiating":
                return
            self.sign("kz-admin")
            if start == "half":
                return
            self.sign("uz-admin")
            self.ledger.clock = self.effective_from
            if start.startswith("suspended"):
                self.suspend(f"{start[-2:]}-admin")

        @rule(seconds=st.integers(min_value=1, max_value=8))
        def wait(self, seconds: int) -> None:
            self.ledger.clock += seconds

        @rule(who=st.sampled_from(PARTIES))
        def sign(self, who: str) -> None:
            status = self.call(who, "SignMra", False)
            if who == "kg-admin":
                assert status == 403
            elif self.state != "negotiating" or who in self.signed:
                assert status == 409
            else:
                assert status == 200
                self.signed.add(who)
                if len(self.signed) == 2:
                    self.state = "signed"

        @rule(who=st.sampled_from(PARTIES))
        def suspend(self, who: str) -> None:
            status = self.call(who, "SuspendMra", True)
            now = self.derived()
            if who == "kg-admin":
                assert status == 403
            elif now != "in_force":
                assert status == 409
            else:
                assert status == 200
                self.state, self.suspended_by = "suspended", who

        @rule(who=st.sampled_from(PARTIES))
        def resume(self, who: str) -> None:
            status = self.call(who, "ResumeMra", False)
            if who == "kg-admin":
                assert status == 403
            elif self.state != "suspended":
                assert status == 409
            elif who != self.suspended_by:
                assert status == 403
            else:
                assert status == 200
                self.state, self.suspended_by = "signed", None

        @rule()
        def resume_by_suspender(self) -> None:
            if self.suspended_by is not None:
                self.resume(self.suspended_by)

        @rule(who=st.sampled_from(PARTIES))
        def terminate(self, who: str) -> None:
            status = self.call(who, "TerminateMra", True)
            if who == "kg-admin":
                assert status == 403
            elif self.state == "terminated":
                assert status == 409
            else:
                assert status == 200
                self.state = "terminated"

        @invariant()
        def ledger_agrees(self) -> None:
            self.ledger.clock += 1
            doc = self.ledger.ok("kg-admin", "GetMra", {"mra_id": "MRA-KZ-UZ-2026"})
            assert doc["state_now"] == self.derived()

    run_state_machine_as_test(
        MraMachine,
        settings=settings(
            max_examples=40,
            stateful_step_count=15,
            deadline=None,
            derandomize=True,  # the same walk on every run: the coverage checks below cannot flake
            suppress_health_check=list(HealthCheck),
        ),
    )
    for fn in ("SignMra", "SuspendMra", "ResumeMra", "TerminateMra"):
        assert seen[f"{fn} -> 200"] and seen[f"{fn} -> 409"] and seen[f"{fn} -> 403"], (fn, seen)


def test_determinism_same_inputs_same_bytes(identities: Identities, consortium: Consortium) -> None:
    """Two peers executing the same transactions end with byte-identical state and events."""
    probe = Ledger(identities)
    record = aeo_record(probe)
    issue = aeo_write(consortium.kz, record)  # one seal, reused: ECDSA signatures are randomised
    events = [
        {
            "event_hash": f"ni:///sha-256;{i:064x}?ver=CBV2.0",
            "consignment_ref": f"C-{i % 3}",
            "event_type": "ObjectEvent",
            "biz_step": "arriving",
            "event_time": "2026-11-24T08:00:00Z",
            "location": "urn:epc:id:sgln:4870001.00001.0",
        }
        for i in range(1, 12)
    ]
    from cryptography import x509

    subject = x509.load_der_x509_certificate(
        identities["kz-khorgos"].certificate_der
    ).subject.rfc4514_string()
    script: list[tuple[str, str, Any]] = [
        ("kz-admin", "InitLedger", genesis(consortium, "KZ", "UZ", "KG")),
        ("kz-officer", "IssueAeo", issue),
        ("kz-admin", "ProposeMra", proposal(probe)),
        ("uz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT}),
        (
            "kz-admin",
            "RegisterSezOperator",
            {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": subject},
        ),
        ("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events}),
        ("uz-admin", "IsRecognised", {"aeo_id": AEO, "country": "UZ", "at": probe.iso(100)}),
    ]
    peers = [Ledger(identities, MemStub()), Ledger(identities, MemStub())]
    answers: list[list[bytes]] = [[], []]
    for n, peer in enumerate(peers):
        for who, fn, arg in script:
            response = peer.call(
                who, fn, json.dumps(arg, indent=n)
            )  # different whitespace, same JSON
            assert response.status == 200, response.message
            answers[n].append(response.payload)
    a, b = (p.stub for p in peers)
    assert a.state == b.state and list(a.state) == list(b.state)
    assert a.events == b.events and len(a.events) == 6
    assert a.history == b.history
    assert answers[0] == answers[1]


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(position=st.integers(min_value=0), value=st.integers(min_value=1, max_value=255))
def test_seal_fuzz_only_forbidden(
    kz_seal: tuple[bytes, bytes, list[Any], int], position: int, value: int
) -> None:
    seal, content, roots, at = kz_seal
    data = bytearray(seal)
    data[position % len(data)] ^= value
    try:
        verify_seal(bytes(data), content, roots, at)
    except Forbidden as exc:
        assert exc.message.startswith("seal rejected:")


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def kz_seal(identities: Identities, consortium: Consortium) -> tuple[bytes, bytes, list[Any], int]:
    probe = Ledger(identities)
    record = aeo_record(probe)
    seal = base64.b64decode(aeo_write(consortium.kz, record)["seal"])
    at = probe.clock * 1_000_000
    roots = [consortium.kz.certificate("root")]
    assert (
        verify_seal(seal, canonical_json(record), roots, at).subject
        == consortium.kz.certificate("seal").subject
    )
    return seal, canonical_json(record), roots, at


def _unused(pki: OrgPki) -> None:  # keep the import for type checkers
    del pki

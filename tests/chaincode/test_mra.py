"""MRAs: parties only, every party signs, in force from effective_from, suspend/resume/terminate."""

from __future__ import annotations

from typing import Any

import pytest

from tests.chaincode.conftest import Ledger

DOC = "ab" * 32
ACT = {"legal_instrument_ref": "Decision KZ-UZ 2026/1", "document_hash": DOC}
MRA = "MRA-KZ-UZ-2026"


def proposal(ledger: Ledger, **changes: Any) -> dict[str, Any]:
    return {
        "mra_id": MRA,
        "title": "AEO MRA between Kazakhstan and Uzbekistan",
        "parties": ["KZ-CUSTOMS", "UZ-CUSTOMS"],
        "recognised_types": {"KZ-CUSTOMS": ["AEOS", "AEOF"], "UZ-CUSTOMS": ["AEOF"]},
        "benefits": ["fewer_controls", "priority_clearance"],
        "effective_from": ledger.iso(10),
        **ACT,
        **changes,
    }


def step(reason: str | None = None, **changes: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"mra_id": MRA, **ACT, **changes}
    if reason is not None:
        out["reason"] = reason
    return out


def state(ledger: Ledger, at: str) -> str:
    return str(ledger.ok("kg-admin", "GetMraStateAt", {"mra_id": MRA, "at": at})["state"])


def signed(ledger: Ledger) -> None:
    ledger.ok("kz-admin", "ProposeMra", proposal(ledger))
    ledger.ok("kz-admin", "SignMra", step())
    ledger.ok("uz-admin", "SignMra", step())


def test_full_lifecycle(ledger: Ledger) -> None:
    start = ledger.iso(1)
    ledger.ok("kz-admin", "ProposeMra", proposal(ledger))
    assert ledger.ok("kz-admin", "SignMra", step())["state"] == "negotiating"
    assert ledger.last_event()["entries"] == [
        {"type": "MraSigned", "mra_id": MRA, "party": "KZ-CUSTOMS", "all_signed": False}
    ]
    assert ledger.ok("uz-admin", "SignMra", step())["state"] == "signed"
    signed_at = ledger.iso()
    assert state(ledger, start) == "negotiating"
    assert state(ledger, signed_at) == "signed"
    in_force_at = ledger.iso(8)  # effective_from was proposal time + 10 s
    assert state(ledger, in_force_at) == "in_force"
    ledger.clock += 20
    ledger.ok("uz-admin", "SuspendMra", step("non-compliance"))
    suspended_at = ledger.iso()
    ledger.ok("uz-admin", "ResumeMra", step())
    resumed_at = ledger.iso()
    ledger.ok("kz-admin", "TerminateMra", step("denounced"))
    assert state(ledger, in_force_at) == "in_force"
    assert state(ledger, suspended_at) == "suspended"
    assert state(ledger, resumed_at) == "in_force"
    assert state(ledger, ledger.iso()) == "terminated"
    assert state(ledger, "2000-01-01") == "not_proposed"
    doc = ledger.ok("kg-admin", "GetMra", {"mra_id": MRA})
    assert [s["action"] for s in doc["steps"]] == [
        "ProposeMra",
        "SignMra",
        "SignMra",
        "SuspendMra",
        "ResumeMra",
        "TerminateMra",
    ]
    for s in doc["steps"]:
        assert s["by"]["subject"].startswith("CN=") and s["tx_id"] and s["at"]
        assert (
            s["legal_instrument_ref"] == ACT["legal_instrument_ref"] and s["document_hash"] == DOC
        )
    assert doc["state_now"] == "terminated"


def test_only_parties_act(ledger: Ledger) -> None:
    assert (
        ledger.fails("kg-admin", "ProposeMra", proposal(ledger), 403)
        == "KG-CUSTOMS is not a party to MRA MRA-KZ-UZ-2026"
    )
    signed(ledger)
    ledger.clock += 20
    for fn, arg in (
        ("SignMra", step()),
        ("SuspendMra", step("x")),
        ("ResumeMra", step()),
        ("TerminateMra", step("x")),
    ):
        assert (
            ledger.fails("kg-admin", fn, arg, 403)
            == "KG-CUSTOMS is not a party to MRA MRA-KZ-UZ-2026"
        )
    assert "needs admin" in ledger.fails("kz-officer", "SuspendMra", step("x"), 403)


def test_invalid_steps(ledger: Ledger) -> None:
    assert ledger.fails("kz-admin", "SignMra", step(), 404) == "MRA MRA-KZ-UZ-2026 not found"
    ledger.ok("kz-admin", "ProposeMra", proposal(ledger))
    assert (
        ledger.fails("uz-admin", "ProposeMra", proposal(ledger), 409)
        == "MRA MRA-KZ-UZ-2026 already exists"
    )
    assert ledger.fails("kz-admin", "SuspendMra", step("x"), 409) == (
        "MRA MRA-KZ-UZ-2026 is negotiating, not in force: it cannot be suspended"
    )
    assert ledger.fails("uz-admin", "SignMra", step(document_hash="cd" * 32), 409) == (
        "document_hash differs from the proposed text of MRA MRA-KZ-UZ-2026"
    )
    ledger.ok("kz-admin", "SignMra", step())
    assert (
        ledger.fails("kz-admin", "SignMra", step(), 409)
        == "KZ-CUSTOMS has already signed MRA MRA-KZ-UZ-2026"
    )
    ledger.ok("uz-admin", "SignMra", step())
    assert (
        ledger.fails("uz-admin", "SignMra", step(), 409)
        == "MRA MRA-KZ-UZ-2026 is signed: it cannot be signed"
    )
    # signed but before effective_from: not in force yet
    assert ledger.fails("uz-admin", "SuspendMra", step("x"), 409) == (
        "MRA MRA-KZ-UZ-2026 is signed, not in force: it cannot be suspended"
    )
    ledger.clock += 20
    assert ledger.fails("uz-admin", "ResumeMra", step(), 409) == (
        "MRA MRA-KZ-UZ-2026 is in_force, not suspended: it cannot be resumed"
    )
    ledger.ok("uz-admin", "SuspendMra", step("x"))
    assert ledger.fails("kz-admin", "SuspendMra", step("y"), 409) == (
        "MRA MRA-KZ-UZ-2026 is suspended, not in force: it cannot be suspended"
    )
    assert ledger.fails("kz-admin", "ResumeMra", step(), 403) == (
        "only UZ-CUSTOMS, which suspended MRA MRA-KZ-UZ-2026, may resume it"
    )
    ledger.ok("kz-admin", "TerminateMra", step("x"))
    for fn, arg in (("TerminateMra", step("x")), ("ResumeMra", step()), ("SignMra", step())):
        assert "terminated" in ledger.fails("uz-admin", fn, arg, 409)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"parties": ["KZ-CUSTOMS"]}, "mra.parties must be a list of 2 to 32 strings"),
        ({"parties": ["KZ-CUSTOMS", "KZ-CUSTOMS"]}, "mra.parties has duplicates"),
        (
            {
                "parties": ["KZ-CUSTOMS", "TJ-CUSTOMS"],
                "recognised_types": {"KZ-CUSTOMS": ["AEOF"], "TJ-CUSTOMS": ["AEOF"]},
            },
            "party TJ-CUSTOMS is not a member",
        ),
        (
            {"recognised_types": {"KZ-CUSTOMS": ["AEOF"]}},
            "mra.recognised_types.UZ-CUSTOMS is required",
        ),
        (
            {
                "recognised_types": {
                    "KZ-CUSTOMS": ["AEOF"],
                    "UZ-CUSTOMS": ["AEOF"],
                    "KG-CUSTOMS": ["AEOF"],
                }
            },
            "unknown member(s): KG-CUSTOMS",
        ),
        ({"document_hash": "xyz"}, "mra.document_hash 'xyz' has the wrong format"),
        ({"effective_from": 5}, "mra.effective_from must be an RFC 3339 timestamp string"),
    ],
)
def test_malformed_proposal(ledger: Ledger, change: dict[str, Any], message: str) -> None:
    assert message in ledger.fails("kz-admin", "ProposeMra", proposal(ledger, **change), 400)


def test_terminate_while_negotiating_is_final(ledger: Ledger) -> None:
    ledger.ok("kz-admin", "ProposeMra", proposal(ledger))
    ledger.ok("uz-admin", "TerminateMra", step("talks ended"))
    assert ledger.ok("kg-admin", "GetMra", {"mra_id": MRA})["state_now"] == "terminated"
    assert "terminated" in ledger.fails("kz-admin", "SignMra", step(), 409)


def test_mras_between(ledger: Ledger) -> None:
    signed(ledger)
    assert ledger.ok(
        "kg-admin", "GetMrasBetween", {"msp_a": "UZ-CUSTOMS", "msp_b": "KZ-CUSTOMS"}
    ) == [{"mra_id": MRA, "parties": ["KZ-CUSTOMS", "UZ-CUSTOMS"], "state_now": "signed"}]
    assert (
        ledger.ok("kg-admin", "GetMrasBetween", {"msp_a": "KG-CUSTOMS", "msp_b": "KZ-CUSTOMS"})
        == []
    )
    assert "must differ" in ledger.fails(
        "kg-admin", "GetMrasBetween", {"msp_a": "KZ-CUSTOMS", "msp_b": "KZ-CUSTOMS"}, 400
    )

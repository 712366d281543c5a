"""Registry and trust list: genesis, admission by majority, own anchors only, roles."""

from __future__ import annotations

import hashlib
import json

from cryptography.hazmat.primitives import serialization

from chaincode.stub import Creator, create_composite_key
from tests.chaincode.conftest import MSP, Ledger, cert_b64, genesis
from tests.conftest import Consortium

DER = serialization.Encoding.DER


def fingerprint(consortium_pki: object, name: str) -> str:
    cert = consortium_pki.certificate(name)  # type: ignore[attr-defined]
    return hashlib.sha256(cert.public_bytes(DER)).hexdigest()


def test_genesis_members_and_trust_list(ledger: Ledger, consortium: Consortium) -> None:
    members = ledger.ok("kg-admin", "GetMembers")
    assert [m["msp_id"] for m in members] == sorted(MSP.values())
    anchors = ledger.ok("kg-admin", "GetTrustList", {"msp_id": "KZ-CUSTOMS"})
    assert {(a["kind"], a["fingerprint"], a["status"]) for a in anchors} == {
        ("root", fingerprint(consortium.kz, "root"), "granted"),
        ("tsa", fingerprint(consortium.kz, "tsa"), "granted"),
    }
    assert ledger.ok("kz-admin", "GetMember", {"msp_id": "UZ-CUSTOMS"})["country"] == "UZ"


def test_genesis_only_once_and_only_by_a_founding_admin(
    identities: object, consortium: Consortium, ledger: Ledger
) -> None:
    doc = genesis(consortium, "KZ", "UZ", "KG")
    assert ledger.fails("uz-admin", "InitLedger", doc, 409) == "the ledger is already initialised"
    fresh = Ledger(ledger.ids)
    assert "needs admin" in fresh.fails("kz-officer", "InitLedger", doc, 403)
    only_uz = genesis(consortium, "UZ")
    assert (
        fresh.fails("kz-admin", "InitLedger", only_uz, 403)
        == "KZ-CUSTOMS is not a founding member in the genesis"
    )


def test_genesis_malformed(ledger: Ledger, consortium: Consortium) -> None:
    fresh = Ledger(ledger.ids)
    doc = genesis(consortium, "KZ")
    doc["members"][0]["anchors"] = [{"kind": "tsa", "certificate": cert_b64(consortium.kz, "tsa")}]
    assert "needs at least one root anchor" in fresh.fails("kz-admin", "InitLedger", doc, 400)
    doc = genesis(consortium, "KZ")
    doc["members"][0]["anchors"][0]["certificate"] = "not base64!"
    assert "not a base64 DER X.509" in fresh.fails("kz-admin", "InitLedger", doc, 400)
    doc = genesis(consortium, "KZ")
    doc["members"][0]["anchors"][0]["certificate"] = cert_b64(consortium.kz, "seal")
    assert "must be a CA certificate" in fresh.fails("kz-admin", "InitLedger", doc, 400)
    assert "unknown member(s): extra" in fresh.fails(
        "kz-admin", "InitLedger", {**genesis(consortium, "KZ"), "extra": 1}, 400
    )


def _candidate(consortium: Consortium) -> dict[str, object]:
    # a fourth administration, using KG's certificates as stand-ins for its anchors
    return {
        "msp_id": "TJ-CUSTOMS",
        "country": "TJ",
        "name": "Customs Service of Tajikistan",
        "anchors": [{"kind": "root", "certificate": cert_b64(consortium.kg, "issuing")}],
    }


def test_admission_needs_more_than_half(ledger: Ledger, consortium: Consortium) -> None:
    first = ledger.ok("kz-admin", "ProposeMember", _candidate(consortium))
    assert first == {
        "msp_id": "TJ-CUSTOMS",
        "status": "pending",
        "approvals": ["KZ-CUSTOMS"],
        "members": 3,
    }
    assert ledger.fails("kz-admin", "ApproveMember", {"msp_id": "TJ-CUSTOMS"}, 409) == (
        "KZ-CUSTOMS has already approved TJ-CUSTOMS"
    )
    second = ledger.ok("uz-admin", "ApproveMember", {"msp_id": "TJ-CUSTOMS"})
    assert second["status"] == "admitted"
    assert [e["type"] for e in ledger.last_event()["entries"]] == [
        "MemberApproved",
        "AnchorGranted",
        "MemberAdmitted",
    ]
    assert ledger.ok("kg-admin", "GetMember", {"msp_id": "TJ-CUSTOMS"})["country"] == "TJ"
    assert ledger.fails("kg-admin", "ApproveMember", {"msp_id": "TJ-CUSTOMS"}, 409) == (
        "TJ-CUSTOMS is already admitted"
    )


def test_admission_refusals(ledger: Ledger, consortium: Consortium) -> None:
    cand = _candidate(consortium)
    assert "needs admin" in ledger.fails("kz-officer", "ProposeMember", cand, 403)
    assert ledger.fails("kz-admin", "ProposeMember", {**cand, "msp_id": "UZ-CUSTOMS"}, 409) == (
        "UZ-CUSTOMS is already a member"
    )
    assert ledger.fails("kz-admin", "ProposeMember", {**cand, "country": "KG"}, 409) == (
        "country KG already has a member administration"
    )
    assert ledger.fails("kz-admin", "ApproveMember", {"msp_id": "TJ-CUSTOMS"}, 404) == (
        "no proposal to admit TJ-CUSTOMS"
    )
    ledger.ok("kz-admin", "ProposeMember", cand)
    assert "already proposed" in ledger.fails("uz-admin", "ProposeMember", cand, 409)
    assert "needs admin" in ledger.fails(
        "uz-officer", "ApproveMember", {"msp_id": "TJ-CUSTOMS"}, 403
    )


def test_single_founder_admits_alone(ledger: Ledger, consortium: Consortium) -> None:
    solo = Ledger(ledger.ids)
    solo.ok("kz-admin", "InitLedger", genesis(consortium, "KZ"))
    result = solo.ok("kz-admin", "ProposeMember", _candidate(consortium))
    assert result["status"] == "admitted"


def test_anchor_rotation_own_anchors_only(ledger: Ledger, consortium: Consortium) -> None:
    old_root = fingerprint(consortium.kz, "root")
    new_root = fingerprint(consortium.kz, "issuing")  # stands in for a successor root
    withdraw = {"msp_id": "KZ-CUSTOMS", "fingerprint": old_root, "reason": "key rollover"}
    assert ledger.fails("kz-admin", "WithdrawAnchor", withdraw, 409) == (
        "the last granted root anchor of KZ-CUSTOMS cannot be withdrawn"
    )
    added = ledger.ok(
        "kz-admin", "AddAnchor", {"kind": "root", "certificate": cert_b64(consortium.kz, "issuing")}
    )
    assert added["fingerprint"] == new_root and added["status"] == "granted"
    assert "already on the trust list" in ledger.fails(
        "kz-admin",
        "AddAnchor",
        {"kind": "root", "certificate": cert_b64(consortium.kz, "issuing")},
        409,
    )
    # another member may not withdraw KZ's anchor
    assert ledger.fails("uz-admin", "WithdrawAnchor", withdraw, 403) == (
        "UZ-CUSTOMS may not withdraw anchors of KZ-CUSTOMS"
    )
    assert "needs admin" in ledger.fails("kz-officer", "WithdrawAnchor", withdraw, 403)
    ledger.ok("kz-admin", "WithdrawAnchor", withdraw)
    assert ledger.last_event()["entries"] == [
        {"type": "AnchorWithdrawn", "msp_id": "KZ-CUSTOMS", "kind": "root", "fingerprint": old_root}
    ]
    assert "already withdrawn" in ledger.fails("kz-admin", "WithdrawAnchor", withdraw, 409)
    again = {"kind": "root", "certificate": cert_b64(consortium.kz, "root")}
    assert ledger.fails("kz-admin", "AddAnchor", again, 409) == (
        f"anchor {old_root} of KZ-CUSTOMS was withdrawn: it is not granted again"
    )
    history = ledger.ok(
        "kg-admin", "GetAnchorHistory", {"msp_id": "KZ-CUSTOMS", "fingerprint": old_root}
    )
    assert [h["value"]["status"] for h in history] == ["granted", "withdrawn"]
    missing = {"msp_id": "KZ-CUSTOMS", "fingerprint": "0" * 64, "reason": "x"}
    assert "not found" in ledger.fails("kz-admin", "WithdrawAnchor", missing, 404)


def trust_roots(ledger: Ledger, msp_id: str) -> list[str]:
    """The fingerprints in the member's derived trust record (what creator checks read)."""
    record = json.loads(ledger.stub.state[create_composite_key("trust", [msp_id])])
    assert record["msp_id"] == msp_id
    return [r["fingerprint"] for r in record["roots"]]


def test_the_trust_record_follows_the_granted_roots(ledger: Ledger, consortium: Consortium) -> None:
    old_root = fingerprint(consortium.kz, "root")
    new_root = fingerprint(consortium.kz, "issuing")
    # the genesis gave KZ a TSA anchor too: only roots are in the record
    assert trust_roots(ledger, "KZ-CUSTOMS") == [old_root]
    assert trust_roots(ledger, "UZ-CUSTOMS") == [fingerprint(consortium.uz, "root")]
    ledger.ok(
        "kz-admin", "AddAnchor", {"kind": "root", "certificate": cert_b64(consortium.kz, "issuing")}
    )
    assert trust_roots(ledger, "KZ-CUSTOMS") == sorted([old_root, new_root])
    withdraw = {"msp_id": "KZ-CUSTOMS", "fingerprint": old_root, "reason": "key rollover"}
    ledger.ok("kz-admin", "WithdrawAnchor", withdraw)
    assert trust_roots(ledger, "KZ-CUSTOMS") == [new_root]
    granted = [
        a["fingerprint"]
        for a in ledger.ok("kg-admin", "GetTrustList", {"msp_id": "KZ-CUSTOMS"})
        if a["kind"] == "root" and a["status"] == "granted"
    ]
    assert granted == trust_roots(ledger, "KZ-CUSTOMS")
    # an admitted member gets its record with its admission
    ledger.ok("kz-admin", "ProposeMember", _candidate(consortium))
    ledger.ok("uz-admin", "ApproveMember", {"msp_id": "TJ-CUSTOMS"})
    assert trust_roots(ledger, "TJ-CUSTOMS") == [fingerprint(consortium.kg, "issuing")]


def test_non_member_and_unparsable_creator_refused(ledger: Ledger, consortium: Consortium) -> None:
    stranger = Creator("TJ-CUSTOMS", ledger.ids["kz-admin"].certificate_der)
    cand = {**_candidate(consortium), "msp_id": "AZ-CUSTOMS", "country": "AZ"}
    assert ledger.fails(stranger, "ProposeMember", cand, 403) == (
        "TJ-CUSTOMS is not a member of the consortium"
    )
    garbage = Creator("KZ-CUSTOMS", b"not a certificate")
    assert ledger.fails(garbage, "ProposeMember", cand, 403) == (
        "the creator's certificate cannot be parsed"
    )
    assert ledger.fails("kz-admin", "ProposeMember", {**cand, "anchors": []}, 400) == (
        "member.anchors must be a list of 1 to 16 objects"
    )

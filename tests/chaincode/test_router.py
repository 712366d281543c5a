"""The dispatcher's boundary: unknown functions, malformed arguments, no exception escapes."""

from __future__ import annotations

import pytest

from chaincode.identity import identity_of
from chaincode.stub import Creator, create_composite_key
from tests.chaincode.conftest import Ledger


def test_unknown_function(ledger: Ledger) -> None:
    assert ledger.fails("kz-admin", "DropLedger", {}, 400) == "unknown function 'DropLedger'"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["{}", "{}"], "expected 1 argument (a JSON object), got 2"),
        ([], "expected 1 argument (a JSON object), got 0"),
        (["{not json"], "argument is not valid JSON: Expecting property name"),
        (["[1, 2]"], "argument must be a JSON object"),
        (['{"aeo_id": 1.5}'], "argument is not valid JSON: floats are not allowed"),
        (['{"aeo_id": "KZ-AEO-1", "aeo_id": "KZ-AEO-2"}'], "duplicate member 'aeo_id'"),
        (['{"aeo_id": 7}'], "query.aeo_id must be a non-empty string"),
        (['{"aeo_id": "KZ-AEO-1", "x": 1}'], "query has unknown member(s): x"),
    ],
)
def test_malformed_arguments(ledger: Ledger, args: list[str], message: str) -> None:
    response = ledger.stub.invoke(
        "GetAeo", args, creator=ledger.ids["kz-admin"], timestamp=(ledger.clock, 0)
    )
    assert response.status == 400
    assert message in response.message


def test_internal_error_is_a_500_without_details(ledger: Ledger) -> None:
    ledger.stub.state[create_composite_key("member", ["UZ-CUSTOMS"])] = b"\xff corrupt"
    response = ledger.call("kz-admin", "GetMember", {"msp_id": "UZ-CUSTOMS"})
    assert (response.status, response.message, response.payload) == (
        500,
        "internal error in GetMember: UnicodeDecodeError",
        b"",
    )


def test_refusal_sends_no_event(ledger: Ledger) -> None:
    events = len(ledger.stub.events)
    ledger.fails(
        "uz-admin",
        "WithdrawAnchor",
        {"msp_id": "KZ-CUSTOMS", "fingerprint": "0" * 64, "reason": "x"},
        403,
    )
    assert len(ledger.stub.events) == events


def test_identity_roles_from_the_certificate(ledger: Ledger) -> None:
    op = identity_of(ledger.ids["kz-khorgos"])
    assert (op.msp_id, op.role, dict(op.attrs)) == (
        "KZ-CUSTOMS",
        "sez-operator",
        {"role": "sez-operator", "sez": "KZ-KHORGOS"},
    )
    assert op.subject.startswith("CN=kz-khorgos (test)")
    assert identity_of(ledger.ids["uz-admin"]).role == "admin"


def test_certificate_without_role_has_no_rights(ledger: Ledger, pkis: dict[str, object]) -> None:
    from cryptography.hazmat.primitives import serialization

    seal_cert = pkis["KZ"].certificate("seal").public_bytes(serialization.Encoding.DER)  # type: ignore[attr-defined]
    creator = Creator("KZ-CUSTOMS", seal_cert)
    assert identity_of(creator).role is None
    message = ledger.fails(creator, "AddAnchor", {"kind": "root", "certificate": "AAAA"}, 400)
    assert "not a base64 DER" in message  # arguments are checked first …
    assert ledger.fails(creator, "ApproveMember", {"msp_id": "TJ-CUSTOMS"}, 403) == (
        "role none of KZ-CUSTOMS may not do this (needs admin)"
    )

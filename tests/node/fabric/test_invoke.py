"""FabricLedger.invoke (a plain Fabric transaction to any chaincode of the channel) and
evaluate(chaincode=…), against the in-process peer (tests/node/fabric/peer.py)."""

from __future__ import annotations

import json
import re

import pytest

from chaincode.canonical import canonical_json
from node.errors import LedgerError
from node.fabric.protocol import SUBMIT_FUNCTION
from node.proposal import SignedProposal, parse_proposal
from tests.node.conftest import Signers, propose

from .conftest import Network


def _register(signers: Signers) -> tuple[str, SignedProposal]:
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    arg = {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": subject}
    signed = propose(signers["kz-admin"], "RegisterSezOperator", arg)
    return parse_proposal(signed.proposal).tx_id, signed


def test_invoke_commits_the_raw_arguments_under_the_fabric_tx_id(
    fabric: Network, signers: Signers
) -> None:
    caravan_tx_id, signed = _register(signers)
    data = canonical_json(signed.to_json())
    receipt = fabric.ledger.invoke(SUBMIT_FUNCTION, [data])
    assert receipt.code == "VALID", receipt
    assert re.fullmatch(r"[0-9a-f]{64}", receipt.tx_id)
    assert receipt.tx_id != caravan_tx_id  # Fabric's id: SHA-256(nonce ‖ creator)
    assert receipt.block is not None and receipt.block > 0
    # what the raw transaction carried is what the chaincode applied: the SEZ exists now
    answer = fabric.ledger.evaluate("GetSez", [json.dumps({"sez": "KZ-KHORGOS"})])
    assert answer.status == 200, answer
    assert json.loads(answer.payload)["sez"] == "KZ-KHORGOS"
    changes = list(fabric.ledger.changes(receipt.block))
    assert [c.function for c in changes] == ["RegisterSezOperator"]
    # the same proposal again is a replay the chaincode refuses, with its status
    again = fabric.ledger.invoke(SUBMIT_FUNCTION, [data.decode()])
    assert again.code != "VALID" and again.status == 409, again


def test_invoke_of_anything_else_on_caravan_is_refused_with_the_chaincodes_status(
    fabric: Network,
) -> None:
    receipt = fabric.ledger.invoke("GetMembers")
    assert (receipt.code, receipt.status) == ("CHAINCODE_ERROR", 403), receipt
    assert "only caravan.submit writes" in receipt.message
    assert re.fullmatch(r"[0-9a-f]{64}", receipt.tx_id)


def test_invoke_and_evaluate_name_the_chaincode_they_are_given(fabric: Network) -> None:
    # the in-process peer serves only "caravan": another name reaches it and is refused
    with pytest.raises(LedgerError, match="wrong channel or chaincode"):
        fabric.ledger.invoke("put", ["k", b"v"], chaincode="gocc")
    assert fabric.peer.violations == ["wrong channel or chaincode"]
    fabric.peer.violations.clear()  # expected here; the fixture checks there are no others
    with pytest.raises(LedgerError, match="chaincode gocc not found"):
        fabric.ledger.evaluate("get", ["k"], chaincode="gocc")
    assert fabric.ledger.evaluate("GetMembers", [], chaincode="caravan").status == 200

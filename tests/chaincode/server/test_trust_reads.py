"""The creator check on the chaincode server reads the member's trust record
(``trust~MSP``): one GET_STATE instead of the member, a range of anchors and a CRL per CA;
a CRL only once one is published; and a ledger written before the record still works."""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fabric_protos.peer import chaincode_shim_pb2

from chaincode.registry import issuer_key_id
from chaincode.stub import create_composite_key
from tests.node.conftest import Signers, b64, member_signer, propose

from .helpers import submit
from .peer import Msg, TestPeer

TRUST_KZ = create_composite_key("trust", ["KZ-CUSTOMS"])


@pytest.fixture
def calls(founded: TestPeer) -> Iterator[list[tuple[str, str]]]:
    """(message type, key or range start) of every call the chaincode makes to the peer."""
    seen: list[tuple[str, str]] = []

    def record(msg: Msg) -> None:
        kind = Msg.Type.Name(msg.type)
        if msg.type == Msg.GET_STATE:
            seen.append((kind, chaincode_shim_pb2.GetState.FromString(msg.payload).key))
        elif msg.type == Msg.GET_STATE_BY_RANGE:
            query = chaincode_shim_pb2.GetStateByRange.FromString(msg.payload)
            seen.append((kind, query.startKey))
        else:
            seen.append((kind, ""))

    founded.on_call = record
    yield seen
    founded.on_call = None


TRUST_DATA = ("\x00member\x00", "\x00anchor\x00", "\x00crl\x00", "\x00trust\x00")
#: a contract read that touches no trust data (404: no such trail), so what trust data
#: is read, the creator check reads
TRAIL = {"consignment_ref": "26KZ0000001-KHG"}


def creator_reads(calls: list[tuple[str, str]]) -> list[tuple[str, str]]:
    return [c for c in calls if c[1].startswith(TRUST_DATA)]


def test_the_creator_check_reads_the_trust_record_and_published_crls_only(
    founded: TestPeer, calls: list[tuple[str, str]], signers: Signers
) -> None:
    record = json.loads(founded.state[TRUST_KZ])
    root = signers.pkis["KZ"].certificate("root").public_bytes(Encoding.DER)
    assert record["roots"] == [
        {"fingerprint": record["roots"][0]["fingerprint"], "certificate": b64(root)}
    ]
    assert record["crl_issuers"] == []

    assert submit(founded, propose(signers["kz-officer"], "GetTrail", TRAIL)).status == 404
    assert creator_reads(calls) == [("GET_STATE", TRUST_KZ)]
    assert not any(c[1].startswith("\x00anchor\x00") for c in calls)

    pki = signers.pkis["KZ"]
    victim = member_signer(pki, f"cc-revoked-{secrets.token_hex(4)}", "officer")
    assert submit(founded, propose(victim, "GetMembers")).status == 200
    pki.revoke(victim.certificate.serial_number, "key-compromise")
    issuing = pki.certificate("issuing")
    publish = {
        "crl": b64(pki.build_crl("issuing")),
        "issuer_certificate": b64(issuing.public_bytes(Encoding.DER)),
    }
    assert submit(founded, propose(signers["kz-admin"], "PublishCrl", publish)).status == 200
    key_id = issuer_key_id(issuing)
    assert json.loads(founded.state[TRUST_KZ])["crl_issuers"] == [key_id]

    calls.clear()
    refused = submit(founded, propose(victim, "GetTrail", TRAIL))
    assert refused.status == 403 and refused.message.startswith("REVOKED_CREATOR: ")
    crl_key = create_composite_key("crl", ["KZ-CUSTOMS", key_id])
    assert creator_reads(calls) == [("GET_STATE", TRUST_KZ), ("GET_STATE", crl_key)]
    assert submit(founded, propose(signers["kz-officer"], "GetMembers")).status == 200


def test_a_ledger_without_trust_records_is_read_the_older_way(
    founded: TestPeer, calls: list[tuple[str, str]], signers: Signers
) -> None:
    for msp_id in ("KZ-CUSTOMS", "UZ-CUSTOMS"):
        key = create_composite_key("trust", [msp_id])
        del founded.state[key]
        founded.keys.remove(key)
    assert submit(founded, propose(signers["kz-officer"], "GetMembers")).status == 200
    member = create_composite_key("member", ["KZ-CUSTOMS"])
    anchors = create_composite_key("anchor", ["KZ-CUSTOMS"])
    assert ("GET_STATE", member) in calls and ("GET_STATE_BY_RANGE", anchors) in calls
    assert submit(founded, propose(signers["kg-admin"], "GetMembers")).status == 403

    # the first change of KZ's trust data writes its record, from its anchors and CRLs
    pki = signers.pkis["KZ"]
    issuing = pki.certificate("issuing")
    publish = {
        "crl": b64(pki.build_crl("issuing")),
        "issuer_certificate": b64(issuing.public_bytes(Encoding.DER)),
    }
    assert submit(founded, propose(signers["kz-admin"], "PublishCrl", publish)).status == 200
    record = json.loads(founded.state[TRUST_KZ])
    root = pki.certificate("root").public_bytes(Encoding.DER)
    assert [r["certificate"] for r in record["roots"]] == [b64(root)]
    assert record["crl_issuers"] == [issuer_key_id(issuing)]
    calls.clear()
    assert submit(founded, propose(signers["kz-officer"], "GetMembers")).status == 200
    assert ("GET_STATE_BY_RANGE", anchors) not in calls

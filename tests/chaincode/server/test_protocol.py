"""The chaincode server against a test peer on loopback: handshake, every message type
the contracts use, concurrency on one stream, errors, caravan.submit refusals, logs."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from chaincode import router
from chaincode.context import Context
from chaincode.server import WRITES_NEED_SUBMIT
from chaincode.stub import create_composite_key
from node.embedded.ledger import EmbeddedLedger
from node.proposal import make_proposal
from tests.node.conftest import CHANNEL, Signers, now, propose

from .conftest import CCID
from .helpers import fabric_creator, read, submit, submit_async, wire
from .peer import COMPLETED, ERROR, Msg, TestPeer


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """A test-only contract function ``Probe`` whose body the test sets."""
    box: dict[str, Any] = {}

    def handler(ctx: Context, args: list[str]) -> Any:
        return box["body"](ctx, args)

    monkeypatch.setitem(router.FUNCTIONS, "Probe", handler)
    yield box


def test_handshake_registers_the_package_id_and_answers_keepalives(peer: TestPeer) -> None:
    assert peer.registered_as == CCID
    assert peer.received[0] == Msg.REGISTER
    assert peer.keepalive() and peer.keepalive()
    assert peer.keepalives == 2
    assert read(peer, "GetMembers").payload == b"[]"


def test_state_calls_ranges_paging_and_history(
    founded: TestPeer, signers: Signers, probe: dict[str, Any]
) -> None:
    peer = founded
    peer.page_size = 2
    plain = {f"p{i}": f"v{i}".encode() for i in range(5)}
    composite = {create_composite_key("t", [f"a{i}"]): f"c{i}".encode() for i in range(5)}
    for key, value in {**plain, **composite}.items():
        peer.state[key] = value
    peer.keys = sorted(peer.state)
    seen: dict[str, Any] = {}

    def body(ctx: Context, args: list[str]) -> Any:
        stub = ctx.stub
        seen["get"] = stub.get_state("p1"), stub.get_state("missing")
        seen["open"] = list(stub.get_state_by_range("", ""))  # composite keys excluded
        seen["bounded"] = [k for k, _ in stub.get_state_by_range("p1", "p4")]
        seen["partial"] = [k for k, _ in stub.get_state_by_partial_composite_key("t", [])]
        first = stub.get_state_by_range("", "")
        seen["first"] = next(iter(first))
        first.close()  # abandoned with more pages: QUERY_STATE_CLOSE
        stub.put_state("new", b"n")
        stub.del_state("p0")
        return {"ok": True}

    probe["body"] = body
    done = submit_async(peer, propose(signers["kz-admin"], "Probe")).result(30)
    assert TestPeer.response(done).status == 200
    assert seen["get"] == (b"v1", None)
    assert seen["open"] == sorted(plain.items())
    assert seen["bounded"] == ["p1", "p2", "p3"]
    assert seen["partial"] == sorted(composite)
    assert seen["first"] == ("p0", b"v0")
    for kind in ("GET_STATE", "GET_STATE_BY_RANGE", "QUERY_STATE_NEXT", "QUERY_STATE_CLOSE"):
        assert Msg.Type.Value(kind) in peer.received, kind
    assert peer.state["new"] == b"n" and "p0" not in peer.state

    def history(ctx: Context, args: list[str]) -> Any:
        mods = ctx.stub.get_history_for_key("p0")
        return [[m.tx_id, m.is_delete, m.value.decode()] for m in mods]

    probe["body"] = history
    answer = json.loads(TestPeer.response(read_probe(peer)).payload)
    assert answer == [[done.txid, True, ""]]
    assert Msg.GET_HISTORY_FOR_KEY in peer.received


def read_probe(peer: TestPeer) -> Any:
    return peer.invoke(["Probe"]).result(30)


def test_the_event_travels_in_completed(founded: TestPeer, signers: Signers) -> None:
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    arg = {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": subject}
    done = submit_async(founded, propose(signers["kz-admin"], "RegisterSezOperator", arg))
    message = done.result(30)
    assert message.type == COMPLETED and message.HasField("chaincode_event")
    assert message.chaincode_event.event_name == "caravan"
    assert json.loads(message.chaincode_event.payload)["entries"]
    assert founded.events[-1][1:] == ("caravan", message.chaincode_event.payload)


def test_hundreds_of_transactions_in_flight_on_one_stream(
    founded: TestPeer, signers: Signers
) -> None:
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    arg = {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": subject}
    assert submit(founded, propose(signers["kz-admin"], "RegisterSezOperator", arg)).status == 200
    before = len(founded.events)
    writes = []
    for i in range(150):
        event = {
            "event_hash": f"ni:///sha-256;{i + 1:064x}?ver=CBV2.0",
            "consignment_ref": f"26KZ{i:07d}-KHG",
            "event_type": "ObjectEvent",
            "biz_step": "arriving",
            "event_time": "2026-01-05T10:00:00Z",
            "location": "urn:epc:id:sgln:4870000.00001.0",
        }
        signed = propose(
            signers["kz-khorgos"], "AnchorEvents", {"sez": "KZ-KHORGOS", "events": [event]}
        )
        writes.append(submit_async(founded, signed))
    reads = [founded.invoke(["GetMembers"]) for _ in range(150)]
    answers = [TestPeer.response(f.result(60)) for f in writes + reads]
    assert [a.status for a in answers] == [200] * 300, {a.message for a in answers}
    assert len(founded.events) == before + 150
    assert len({tx for tx, _n, _p in founded.events[before:]}) == 150
    assert founded.violations == []


def test_a_contract_exception_is_a_500_at_once(peer: TestPeer, probe: dict[str, Any]) -> None:
    def body(ctx: Context, args: list[str]) -> Any:
        raise RuntimeError("secret detail")

    probe["body"] = body
    response = TestPeer.response(read_probe(peer))
    assert (response.status, response.message) == (500, "internal error in Probe: RuntimeError")


def test_an_undecodable_transaction_answers_error(peer: TestPeer) -> None:
    from .peer import fabric_proposal

    peer.send(
        Msg(
            type=Msg.TRANSACTION,
            payload=b"\xff\xff\xff",
            txid="bad-input",
            channel_id=CHANNEL,
            proposal=fabric_proposal(CHANNEL, "bad-input", now(), ("KZ-CUSTOMS", b"")),
        )
    )
    # the test peer did not register the tx: the ERROR is recorded as a message for it
    for _ in range(100):
        if ERROR in peer.received:
            break
        peer.keepalive()
    assert ERROR in peer.received
    peer.violations.clear()


def test_a_peer_error_reply_is_raised_not_returned(founded: TestPeer, signers: Signers) -> None:
    founded.fail_keys.add(create_composite_key("member", ["KZ-CUSTOMS"]))
    try:
        response = read(founded, "GetMember", {"msp_id": "KZ-CUSTOMS"})
        assert (response.status, response.message) == (
            500,
            "internal error in GetMember: PeerError",
        )
        # in caravan.submit's creator check (outside the contract): an ERROR message
        founded.fail_keys.add(create_composite_key("trust", ["KZ-CUSTOMS"]))
        done = submit_async(founded, propose(signers["kz-admin"], "GetMembers")).result(30)
        assert done.type == ERROR and b"GET_STATE refused by the peer" in done.payload
    finally:
        founded.fail_keys.clear()


def test_writes_in_a_read_are_refused(founded: TestPeer, signers: Signers) -> None:
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    arg = {"sez": "KZ-AKTAU", "name": "Aktau", "operator_subject": subject}
    before = dict(founded.state)
    response = read(
        founded, "RegisterSezOperator", arg, creator=fabric_creator(signers["kz-admin"])
    )
    assert (response.status, response.message) == (403, WRITES_NEED_SUBMIT)
    assert founded.state == before


def test_refusals_before_the_contract_match_the_embedded_ledger(
    founded: TestPeer, signers: Signers, make_ledger: Any
) -> None:
    ledger: EmbeddedLedger = make_ledger("KZ", "UZ")
    good = propose(signers["kz-admin"], "GetMembers")
    cases = {
        "BAD_SIGNATURE": dataclasses.replace(good, signature=good.signature[:-2] + b"\x00\x00"),
        "UNTRUSTED_CREATOR": propose(signers["kg-admin"], "GetMembers"),
        "WRONG_CHANNEL": make_proposal(
            signers["kz-admin"], "GetMembers", [], channel="other", timestamp=now()
        ),
        "BAD_PROPOSAL": dataclasses.replace(good, proposal=good.proposal + b" "),
    }
    for code, signed in cases.items():
        receipt = ledger.submit(signed)
        assert receipt.code == code
        response = submit(founded, signed)
        assert (response.status, response.message) == (receipt.status, f"{code}: {receipt.message}")


def test_a_replayed_caravan_tx_id_is_refused(founded: TestPeer, signers: Signers) -> None:
    signed = propose(signers["kz-admin"], "GetMembers")
    assert submit(founded, signed).status == 200
    again = submit(founded, signed)
    assert again.status == 409
    tx_id = json.loads(signed.proposal)["tx_id"]
    assert again.message == f"DUPLICATE_TXID: transaction {tx_id} was already submitted"


def test_a_proposal_far_from_the_fabric_time_is_refused(
    founded: TestPeer, signers: Signers
) -> None:
    signed = propose(signers["kz-admin"], "GetMembers")
    ts = json.loads(signed.proposal)["timestamp"]
    late = submit(founded, signed, timestamp=(ts[0] + 301, ts[1]))
    assert late.status == 400 and late.message.startswith("BAD_TIMESTAMP: ")
    assert submit(founded, signed, timestamp=(ts[0] + 299, ts[1])).status == 200


def test_no_values_arguments_or_proposals_in_logs(
    founded: TestPeer, signers: Signers, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Very Secret Operator Name 7731"
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    arg = {"sez": "KZ-KHORGOS", "name": secret, "operator_subject": subject}
    signed = propose(signers["kz-admin"], "RegisterSezOperator", arg)
    assert submit(founded, signed).status == 200
    founded.fail_keys.add(create_composite_key("sez", ["KZ-KHORGOS"]))
    try:
        read(founded, "GetSez", {"sez": "KZ-KHORGOS"})
    finally:
        founded.fail_keys.clear()
    assert read(founded, "GetSez", {"sez": "KZ-KHORGOS"}).status == 200
    text = caplog.text
    assert caplog.records  # the server does log
    for leak in (secret, "KZ-KHORGOS", wire(signed)[:40], signers["kz-admin"].msp_id + "\x00"):
        assert leak not in text

"""The services on a real node directory (KZ, UZ, KG): sealed writes, reads through the
contracts, errors with status and code, confidentiality of AEO holder data."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest

from chaincode.canonical import canonical_json, sha256_hex
from node.errors import NodeError
from node.ledger import Receipt
from node.node import Node, init_node, parse_org_spec
from node.proposal import SignedProposal, parse_proposal
from node.services import aeo, chain, mra, recognition, submit, trace, trust
from node.services.errors import (
    Forbidden,
    InvalidArguments,
    NotFound,
    TransactionRejected,
)
from tests.chaincode.conftest import aeo_record
from tests.chaincode.test_mra import ACT, proposal
from tests.chaincode.test_scenario import STEPS, trail_events
from tests.conftest import PASSPHRASE
from tests.node.test_scenario import Clock

ORGS = (
    "KZ-CUSTOMS:KZ:State Revenue Committee",
    "UZ-CUSTOMS:UZ:Customs Committee",
    "KG-CUSTOMS:KG:Customs Service",
)


@pytest.fixture(scope="module")
def clock() -> Clock:
    return Clock()


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, clock: Clock) -> Iterator[Node]:
    directory = tmp_path_factory.mktemp("services") / "node"
    init_node(directory, [parse_org_spec(o) for o in ORGS], PASSPHRASE, store_passphrase=True)
    opened = Node.open(directory, clock=clock)
    opened.wallet.issue(
        opened.pki("KZ-CUSTOMS"), "kz-khorgos", role="sez-operator", sez="KZ-KHORGOS"
    )
    yield opened
    opened.close()


def signed(node: Node, clock: Clock, who: str, function: str, arg: Any) -> SignedProposal:
    clock.tick()
    return submit.propose(
        node.signer(who), function, arg, channel=node.context.channel, clock=node.context.clock
    )


def write(node: Node, clock: Clock, who: str, function: str, arg: Any) -> Receipt:
    return submit.submit(node.context, signed(node, clock, who, function, arg))


def test_issue_a_sealed_aeo_and_read_it_back(node: Node, clock: Clock) -> None:
    ctx = node.context
    record = aeo_record(clock, "KZ-AEO-2026-000101")
    before = clock.iso()
    args = aeo.prepare_issue(record, node.pki("KZ-CUSTOMS"))
    assert set(args) == {"record", "record_hash", "seal"}
    assert args["record_hash"] == sha256_hex(record)
    receipt = write(node, clock, "kz-customs-officer", "IssueAeo", args)
    assert receipt.valid and receipt.block is not None
    assert json.loads(receipt.payload)["aeo_id"] == record["aeo_id"]

    current = aeo.get(ctx, record["aeo_id"])
    assert current["record"] == record and current["status_now"] == "valid"
    assert current["tx_id"] == receipt.tx_id
    assert [v["version"] for v in aeo.history(ctx, record["aeo_id"])] == [1]
    assert aeo.status_at(ctx, record["aeo_id"])["status"] == "valid"
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert aeo.status_at(ctx, record["aeo_id"], long_ago)["status"] == "not_issued"
    assert aeo.status_at(ctx, record["aeo_id"], before)["at"].startswith(before[:10])

    # the args travel as canonical JSON
    proposal_ = parse_proposal(signed(node, clock, "kz-customs-officer", "IssueAeo", args).proposal)
    assert proposal_.args == (canonical_json(args).decode(),)

    # a suspension is a sealed write of the next version
    suspended = {
        **record,
        "status": "suspended",
        "status_reason": "audit findings",
        "status_effective_at": clock.iso(1),
    }
    write(
        node,
        clock,
        "kz-customs-officer",
        "SuspendAeo",
        aeo.prepare_issue(suspended, node.pki("KZ-CUSTOMS"), "SuspendAeo"),
    )
    clock.clock += 5
    assert aeo.get(ctx, record["aeo_id"])["status_now"] == "suspended"


def test_refusals_carry_the_contract_or_node_status_and_code(node: Node, clock: Clock) -> None:
    ctx = node.context
    with pytest.raises(NotFound) as missing:
        aeo.get(ctx, "KZ-AEO-2026-999999")
    assert (missing.value.status, missing.value.code) == (404, "NOT_FOUND")
    assert "KZ-AEO-2026-999999 not found" in str(missing.value)
    with pytest.raises(InvalidArguments) as bad:
        aeo.status_at(ctx, "KZ-AEO-2026-000101", "yesterday")
    assert bad.value.status == 400
    with pytest.raises(InvalidArguments, match="must carry a UTC offset"):
        aeo.status_at(ctx, "KZ-AEO-2026-000101", dt.datetime(2026, 1, 1))

    # UZ may not issue a KZ certificate: the contract's 403, with the transaction id
    record = aeo_record(clock, "KZ-AEO-2026-000102")
    args = aeo.prepare_issue(record, node.pki("KZ-CUSTOMS"))
    proposal_ = signed(node, clock, "uz-customs-admin", "IssueAeo", args)
    with pytest.raises(Forbidden) as forbidden:
        submit.submit(ctx, proposal_)
    assert (forbidden.value.status, forbidden.value.code) == (403, "FORBIDDEN")
    assert forbidden.value.tx_id == parse_proposal(proposal_.proposal).tx_id

    # node-level refusals keep the ledger's code
    good = signed(node, clock, "kz-customs-officer", "IssueAeo", args)
    submit.submit(ctx, good)
    with pytest.raises(TransactionRejected) as duplicate:
        submit.submit(ctx, good)
    assert (duplicate.value.code, duplicate.value.status) == ("DUPLICATE_TXID", 409)
    other_channel = submit.propose(
        node.signer("kz-customs-admin"), "GetMembers", None, channel="other", clock=clock
    )
    with pytest.raises(TransactionRejected) as wrong:
        submit.submit(ctx, other_channel)
    assert (wrong.value.code, wrong.value.status) == ("WRONG_CHANNEL", 400)
    assert isinstance(wrong.value, NodeError)

    with pytest.raises(InvalidArguments, match="action must be one of"):
        aeo.prepare_issue(record, node.pki("KZ-CUSTOMS"), "DeleteAeo")
    with pytest.raises(InvalidArguments, match="arguments of IssueAeo"):
        submit.propose(node.signer("kz-customs-admin"), "IssueAeo", {"x": 1.5}, channel="caravan")


def test_mra_recognition_and_who_sees_holder_data(node: Node, clock: Clock) -> None:
    ctx = node.context
    kz = node.pki("KZ-CUSTOMS")
    shared = aeo_record(clock, "KZ-AEO-2026-000201", aeo_type="AEOF")
    private = aeo_record(clock, "KZ-AEO-2026-000202", aeo_type="AEOF", mra_sharing_consent=False)
    for record in (shared, private):
        write(node, clock, "kz-customs-officer", "IssueAeo", aeo.prepare_issue(record, kz))
    # before any MRA, UZ is not a partner: redacted
    assert aeo.view_for(ctx, shared["aeo_id"], "UZ-CUSTOMS")["redacted"]

    write(node, clock, "uz-customs-admin", "ProposeMra", proposal(clock))
    write(node, clock, "uz-customs-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    write(node, clock, "kz-customs-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    clock.clock += 60  # past effective_from

    assert mra.get(ctx, "MRA-KZ-UZ-2026")["state_now"] == "in_force"
    assert mra.state_at(ctx, "MRA-KZ-UZ-2026")["state"] == "in_force"
    assert [m["mra_id"] for m in mra.between(ctx, "KZ-CUSTOMS", "UZ-CUSTOMS")] == ["MRA-KZ-UZ-2026"]
    assert mra.in_force_between(ctx, "UZ-CUSTOMS", "KZ-CUSTOMS") is True
    assert mra.in_force_between(ctx, "KZ-CUSTOMS", "KG-CUSTOMS") is False
    with pytest.raises(NotFound):
        mra.get(ctx, "MRA-KZ-KG-2026")

    assert recognition.check(ctx, shared["aeo_id"], "UZ")["recognised"] is True
    assert recognition.check(ctx, shared["aeo_id"], "KG")["recognised"] is False

    def holder(view: dict[str, Any]) -> set[str]:
        return set(view["record"]["holder"])

    full = {"tin", "name", "address"}
    # the issuer and an MRA partner (consent given) see everything
    assert holder(aeo.view_for(ctx, shared["aeo_id"], "KZ-CUSTOMS")) == full
    uz_view = aeo.view_for(ctx, shared["aeo_id"], "UZ-CUSTOMS")
    assert holder(uz_view) == full and "redacted" not in uz_view
    # KG (no MRA) and an anonymous reader do not
    for viewer in ("KG-CUSTOMS", None):
        view = aeo.view_for(ctx, shared["aeo_id"], viewer)
        assert holder(view) == {"name"}
        assert view["redacted"] == ["record.holder.tin", "record.holder.address"]
        assert view["record_hash"] == sha256_hex(shared)  # still the full record's hash
    # without the holder's consent the partner does not, the issuer still does
    assert holder(aeo.view_for(ctx, private["aeo_id"], "UZ-CUSTOMS")) == {"name"}
    assert holder(aeo.view_for(ctx, private["aeo_id"], "KZ-CUSTOMS")) == full
    assert holder(aeo.history_for(ctx, private["aeo_id"], "UZ-CUSTOMS")[0]) == {"name"}


def test_redact_rules_without_a_ledger(clock: Clock) -> None:
    record = aeo_record(clock, "KZ-AEO-2026-000301")
    view = {"aeo_id": record["aeo_id"], "record": record, "status_now": "valid"}
    original = copy.deepcopy(view)
    assert aeo.redact(view, "KZ-CUSTOMS", set()) is view  # the issuer
    assert aeo.redact(view, "UZ-CUSTOMS", {"UZ-CUSTOMS"}) is view  # a partner, consent
    redacted = aeo.redact(view, "UZ-CUSTOMS", {"KG-CUSTOMS"})  # not a partner
    assert "tin" not in redacted["record"]["holder"]
    assert "address" not in redacted["record"]["holder"]
    assert redacted["record"]["holder"]["name"] == record["holder"]["name"]
    assert view == original  # the input is never changed
    no_consent = {**view, "record": {**record, "mra_sharing_consent": False}}
    assert "redacted" in aeo.redact(no_consent, "UZ-CUSTOMS", {"UZ-CUSTOMS"})
    # history follows the latest version's consent
    versions = [view, no_consent]
    assert all("redacted" in v for v in aeo.redact_history(versions, "UZ-CUSTOMS", {"UZ-CUSTOMS"}))
    assert aeo.redact_history(versions, "KZ-CUSTOMS", set()) == versions


def test_trace_anchor_and_trail(node: Node, clock: Clock) -> None:
    ctx = node.context
    operator = node.signer("kz-khorgos")
    write(
        node,
        clock,
        "kz-customs-admin",
        "RegisterSezOperator",
        {
            "sez": "KZ-KHORGOS",
            "name": "Khorgos - Eastern Gate",
            "operator_subject": operator.certificate.subject.rfc4514_string(),
        },
    )
    ref = "26KZ0000042-KHG"
    events = trail_events(ref, "KZ-AEO-2026-000201")
    receipt = write(
        node, clock, "kz-khorgos", "AnchorEvents", trace.prepare_anchor("KZ-KHORGOS", events)
    )
    assert json.loads(receipt.payload)["size"] == len(events)
    assert [e["biz_step"] for e in trace.trail(ctx, ref)] == STEPS
    assert trace.verify_trail(ctx, ref)["ok"] is True
    assert trace.event(ctx, events[0]["event_hash"])["consignment_ref"] == ref
    assert trace.sez(ctx, "KZ-KHORGOS")["operators"][0]["subject"] == (
        operator.certificate.subject.rfc4514_string()
    )
    with pytest.raises(NotFound):
        trace.trail(ctx, "26KZ0000000-NONE")
    with pytest.raises(InvalidArguments, match="a batch has 1 to 4096 events"):
        trace.prepare_anchor("KZ-KHORGOS", [])
    # an operator of this zone writing for another is refused by the contract
    with pytest.raises(Forbidden):
        write(node, clock, "kz-khorgos", "AnchorEvents", trace.prepare_anchor("KZ-AKTAU", events))


def test_trust_list_and_chain(node: Node, clock: Clock) -> None:
    ctx = node.context
    assert [m["msp_id"] for m in trust.members(ctx)] == ["KG-CUSTOMS", "KZ-CUSTOMS", "UZ-CUSTOMS"]
    assert trust.member(ctx, "UZ-CUSTOMS")["country"] == "UZ"
    anchors = trust.trust_list(ctx, "KZ-CUSTOMS")
    assert [(a["kind"], a["status"]) for a in anchors] == [("root", "granted")]
    assert len(trust.trust_list(ctx)) == 3
    history = trust.anchor_history(ctx, "KZ-CUSTOMS", anchors[0]["fingerprint"])
    assert [h["value"]["status"] for h in history] == ["granted"]
    assert trust.crls(ctx, "KZ-CUSTOMS") == []
    with pytest.raises(NotFound):
        trust.member(ctx, "TJ-CUSTOMS")
    with pytest.raises(NotFound):
        trust.crl(ctx, "KZ-CUSTOMS", "00" * 20)

    info = chain.info(ctx)
    assert info.channel == "caravan" and info.height >= 1
    genesis = chain.block(ctx, 0)
    assert [t.function for t in genesis.txs] == ["InitLedger"]
    assert genesis.txs[0].creator_msp == "KZ-CUSTOMS"
    with pytest.raises(NotFound, match=f"no block {info.height}"):
        chain.block(ctx, info.height)
    with pytest.raises(InvalidArguments):
        chain.block(ctx, -1)
    checkpoint = chain.info(ctx).height
    receipt = write(
        node,
        clock,
        "kz-customs-officer",
        "IssueAeo",
        aeo.prepare_issue(
            aeo_record(clock, "KZ-AEO-2026-000401"),
            node.pki("KZ-CUSTOMS"),
        ),
    )
    new = list(chain.events(ctx, checkpoint))
    assert [(b, tx) for b, tx, _name, _payload in new] == [(receipt.block, receipt.tx_id)]
    assert json.loads(new[0][3])["entries"][0]["type"] == "AeoIssued"

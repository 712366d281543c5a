"""The embedded ledger: signed proposals, creator checks, MVCC, blocks, persistence."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from node.embedded import ledger as ledger_module
from node.embedded import store as store_module
from node.embedded.blocks import tx_record, tx_record_json
from node.embedded.ledger import EmbeddedLedger
from node.embedded.store import Store
from node.embedded.verify import verify_ledger
from node.errors import LedgerError, ProposalError, Rejected
from node.ledger import INVALID_CODES, REJECTED_CODES
from node.proposal import SignedProposal, make_proposal
from tests.chaincode.test_trace import ev
from tests.node.conftest import CHANNEL, Signers, b64, genesis_arg, member_signer, propose
from trust_services.pki import OrgPki

MakeLedger = Callable[..., EmbeddedLedger]
SEZ = "KZ-KHORGOS"


def event(n: int, ref: str | None = None) -> dict[str, Any]:
    """Event n of its own consignment (or of ``ref``)."""
    return ev(n, ref or f"26KZ{n:07d}-KHG")


def anchor_batch(*events: dict[str, Any]) -> dict[str, Any]:
    return {"sez": SEZ, "events": list(events)}


def with_sez(ledger: EmbeddedLedger, signers: Signers) -> None:
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    receipt = ledger.submit(
        propose(
            signers["kz-admin"],
            "RegisterSezOperator",
            {"sez": SEZ, "name": "Khorgos - Eastern Gate", "operator_subject": subject},
        )
    )
    assert receipt.code == "VALID", receipt


def snapshot(ledger: EmbeddedLedger) -> tuple[Any, ...]:
    conn = ledger.store.conn
    return (
        ledger.info(),
        conn.execute("SELECT count(*) FROM vals").fetchone(),
        conn.execute("SELECT count(*) FROM kv").fetchone(),
    )


# ------------------------------------------------------------------ happy path
def test_genesis_block_and_a_transaction(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    info = ledger.info()
    assert (info.height, info.tx_count, info.valid_tx_count) == (1, 1, 1)
    block0 = ledger.block(0)
    assert block0.header["prev_hash"] == "0" * 64
    assert block0.txs[0].function == "InitLedger"
    assert block0.txs[0].creator_msp == "KZ-CUSTOMS"

    with_sez(ledger, signers)
    receipt = ledger.submit(propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(1))))
    assert (receipt.code, receipt.status, receipt.block) == ("VALID", 200, 2)
    assert json.loads(receipt.payload)["size"] == 1
    assert receipt.event is not None and receipt.event[0] == "caravan"

    trail = ledger.evaluate(
        "GetTrail", [json.dumps({"consignment_ref": event(1)["consignment_ref"]})]
    )
    assert trail.status == 200 and len(json.loads(trail.payload)) == 1
    block2 = ledger.block(2)
    assert block2.header["prev_hash"] == ledger.block(1).hash
    assert block2.txs[0].tx_id == receipt.tx_id and block2.txs[0].code == "VALID"
    assert verify_ledger(ledger.store).height == 3


def test_queries_cache_small_ranges_until_a_block_writes(
    make_ledger: MakeLedger,
    signers: Signers,
    fresh_pki: OrgPki,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """evaluate() keeps small range results like keys; every durable block drops them.
    Trails are read from the store each time."""
    ledger = make_ledger()
    admin = signers["kz-admin"]

    def trust_list() -> list[str]:
        response = ledger.evaluate("GetTrustList", [json.dumps({"msp_id": "KZ-CUSTOMS"})])
        return [a["fingerprint"] for a in json.loads(response.payload)]

    first = trust_list()
    assert len(first) == 1
    assert len(ledger._reads.ranges) == 1  # the member's anchors, kept
    assert trust_list() == first
    extra = fresh_pki.certificate("root").public_bytes(Encoding.DER)
    added = ledger.submit(propose(admin, "AddAnchor", {"kind": "root", "certificate": b64(extra)}))
    assert added.code == "VALID", added
    assert not ledger._reads.ranges
    assert sorted(trust_list()) == sorted([*first, hashlib.sha256(extra).hexdigest()])
    monkeypatch.setattr(ledger_module, "_RANGE_ROWS", 1)
    ledger._reads.ranges.clear()
    assert len(trust_list()) == 2  # larger than the limit: streamed whole, not kept
    assert not ledger._reads.ranges

    with_sez(ledger, signers)
    ref = event(1)["consignment_ref"]
    operator = signers["kz-khorgos"]
    assert ledger.submit(propose(operator, "AnchorEvents", anchor_batch(event(1)))).code == "VALID"
    trail = ledger.evaluate("GetTrail", [json.dumps({"consignment_ref": ref})])
    assert trail.status == 200 and len(json.loads(trail.payload)) == 1
    assert not ledger._reads.ranges  # a trail is not kept


def test_reopen_keeps_the_chain(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    with_sez(ledger, signers)
    path = ledger.store.path
    before = ledger.info()
    ledger.close()
    reopened = EmbeddedLedger.open(path, signers["kz-node"])
    try:
        assert reopened.info() == before
        receipt = reopened.submit(
            propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(2)))
        )
        assert receipt.code == "VALID" and receipt.block == before.height
        assert verify_ledger(reopened.store).height == before.height + 1
    finally:
        reopened.close()


def test_events_from_a_checkpoint(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    with_sez(ledger, signers)
    ledger.submit(propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(3))))
    events = list(ledger.events(0))
    assert [e[0] for e in events] == [0, 1, 2]
    later = list(ledger.events(2))
    assert len(later) == 1 and json.loads(later[0][3])["entries"][0]["type"] == "EventsAnchored"


# ------------------------------------------------------------------- rejections
def refused(ledger: EmbeddedLedger, signed: SignedProposal, code: str, status: int) -> str:
    before = snapshot(ledger)
    receipt = ledger.submit(signed)
    assert (receipt.code, receipt.status) == (code, status), receipt
    assert code in REJECTED_CODES and receipt.block is None
    assert snapshot(ledger) == before
    return receipt.message


def test_bad_signature_and_tampered_proposal(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    signed = propose(signers["kz-admin"], "GetMembers")
    forged = dataclasses.replace(signed, signature=signed.signature[:-2] + b"\x00\x01")
    assert "does not verify" in refused(ledger, forged, "BAD_SIGNATURE", 403)
    body = json.loads(signed.proposal)
    body["function"] = "GetTrustList"
    tampered = dataclasses.replace(
        signed, proposal=json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    )
    refused(ledger, tampered, "BAD_SIGNATURE", 403)
    other = signers["uz-admin"].certificate.public_bytes(Encoding.DER)
    swapped = dataclasses.replace(signed, certificate=other)
    refused(ledger, swapped, "BAD_SIGNATURE", 403)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[]", "exactly the members"),
        (b'{"v": 1}', "exactly the members"),
    ],
)
def test_malformed_proposal(
    make_ledger: MakeLedger, signers: Signers, data: bytes, message: str
) -> None:
    ledger = make_ledger()
    signed = propose(signers["kz-admin"], "GetMembers")
    assert message in refused(
        ledger, dataclasses.replace(signed, proposal=data), "BAD_PROPOSAL", 400
    )


def test_non_canonical_and_wrong_tx_id(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    signer = signers["kz-admin"]
    signed = propose(signer, "GetMembers")
    body = json.loads(signed.proposal)
    spaced = json.dumps(body, sort_keys=True).encode()
    resigned = dataclasses.replace(signed, proposal=spaced, signature=signer.sign(spaced, "sha256"))
    assert "canonical" in refused(ledger, resigned, "BAD_PROPOSAL", 400)
    body["tx_id"] = "0" * 64
    raw = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    wrong = dataclasses.replace(signed, proposal=raw, signature=signer.sign(raw, "sha256"))
    assert "tx_id" in refused(ledger, wrong, "BAD_PROPOSAL", 400)


def test_duplicate_transaction_id(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    with_sez(ledger, signers)
    signed = propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(4)))
    assert ledger.submit(signed).code == "VALID"
    refused(ledger, signed, "DUPLICATE_TXID", 409)
    again = propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(5)))
    first, second = ledger.submit_many([again, again])
    assert first.code == "VALID" and second.code == "DUPLICATE_TXID"


def test_wrong_channel_and_stale_timestamp(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    other = make_proposal(
        signers["kz-admin"], "GetMembers", [], channel="other", timestamp=(int(time.time()), 0)
    )
    refused(ledger, other, "WRONG_CHANNEL", 400)
    stale = propose(signers["kz-admin"], "GetMembers", ts=(int(time.time()) - 3600, 0))
    assert "node's clock" in refused(ledger, stale, "BAD_TIMESTAMP", 400)


def test_contract_refusals_are_not_recorded(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    with_sez(ledger, signers)
    assert "unknown function" in refused(
        ledger, propose(signers["kz-admin"], "NoSuchFunction"), "CHAINCODE_ERROR", 400
    )
    refused(ledger, propose(signers["kz-khorgos"], "AnchorEvents", "{"), "CHAINCODE_ERROR", 400)
    # a creator without the right role: an officer anchoring events
    refused(
        ledger,
        propose(signers["kz-officer"], "AnchorEvents", anchor_batch(event(6))),
        "CHAINCODE_ERROR",
        403,
    )
    # an SEZ operator of another zone
    batch = {"sez": "KZ-AKTAU", "events": [event(7)]}
    refused(ledger, propose(signers["kz-aktau"], "AnchorEvents", batch), "CHAINCODE_ERROR", 404)


def test_untrusted_creators(make_ledger: MakeLedger, signers: Signers, fresh_pki: OrgPki) -> None:
    ledger = make_ledger("KZ", "UZ")
    # KG is not a member of this ledger's consortium
    message = refused(ledger, propose(signers["kg-admin"], "GetMembers"), "UNTRUSTED_CREATOR", 403)
    assert "KG-CUSTOMS is not a member" in message
    # an impostor: a "KZ-CUSTOMS" identity from a PKI whose root is not on the trust list
    impostor = member_signer(fresh_pki, "impostor", "admin")
    message = refused(ledger, propose(impostor, "GetMembers"), "UNTRUSTED_CREATOR", 403)
    assert "does not chain to a granted root anchor of KZ-CUSTOMS" in message
    # the right certificate but without the CA certificate between it and the root
    bare = dataclasses.replace(signers["kz-admin"], chain=[])
    refused(ledger, propose(bare, "GetMembers"), "UNTRUSTED_CREATOR", 403)


def test_revoked_creator(make_ledger: MakeLedger, signers: Signers) -> None:
    ledger = make_ledger()
    pki = signers.pkis["KZ"]
    victim = member_signer(pki, "ln-revoked-admin", "admin")
    assert ledger.submit(propose(victim, "GetMembers")).code == "VALID"
    pki.revoke(victim.certificate.serial_number, "key-compromise")
    crl = pki.build_crl("issuing")
    issuing = pki.certificate("issuing").public_bytes(Encoding.DER)
    published = ledger.submit(
        propose(
            signers["kz-admin"], "PublishCrl", {"crl": b64(crl), "issuer_certificate": b64(issuing)}
        )
    )
    assert published.code == "VALID", published
    message = refused(ledger, propose(victim, "GetMembers"), "REVOKED_CREATOR", 403)
    assert f"serial {victim.certificate.serial_number:x}" in message
    # others of the same CA are unaffected
    assert ledger.submit(propose(signers["kz-officer"], "GetMembers")).code == "VALID"


# --------------------------------------------------------------------------- MVCC
def test_read_conflict_in_one_block_is_recorded_and_changes_nothing(
    make_ledger: MakeLedger, signers: Signers
) -> None:
    ledger = make_ledger()
    with_sez(ledger, signers)
    ref = "26KZ9999999-KHG"
    first = propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(10, ref)))
    second = propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(11, ref)))
    a, b = ledger.submit_many([first, second])
    assert (a.code, b.code) == ("VALID", "MVCC_READ_CONFLICT") and b.code in INVALID_CODES
    assert a.block == b.block and b.status == 409 and b.payload == b""
    block = ledger.block(a.block or 0)
    assert [t.code for t in block.txs] == ["VALID", "MVCC_READ_CONFLICT"]
    assert block.header["valid_count"] == 1
    trail = json.loads(ledger.evaluate("GetTrail", [json.dumps({"consignment_ref": ref})]).payload)
    assert [e["event_hash"] for e in trail] == [event(10)["event_hash"]]
    # resubmitted in a block of its own it succeeds (a new proposal: new tx id)
    again = propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(11, ref)))
    assert ledger.submit(again).code == "VALID"
    verify_ledger(ledger.store)


def test_anchor_changes_in_one_block_conflict_on_the_trust_record(
    make_ledger: MakeLedger, signers: Signers, fresh_pki: OrgPki
) -> None:
    ledger = make_ledger()
    admin = signers["kz-admin"]
    extra = [fresh_pki.certificate(n).public_bytes(Encoding.DER) for n in ("root", "issuing")]
    added = ledger.submit(
        propose(admin, "AddAnchor", {"kind": "root", "certificate": b64(extra[0])})
    )
    assert added.code == "VALID", added
    # in one block: a new root anchor, and a withdrawal; both rewrite trust~KZ-CUSTOMS
    add = propose(admin, "AddAnchor", {"kind": "root", "certificate": b64(extra[1])})
    withdraw = propose(
        admin,
        "WithdrawAnchor",
        {
            "msp_id": "KZ-CUSTOMS",
            "fingerprint": hashlib.sha256(extra[0]).hexdigest(),
            "reason": "rotation",
        },
    )
    a, b = ledger.submit_many([add, withdraw])
    assert (a.code, b.code) == ("VALID", "MVCC_READ_CONFLICT")
    query = json.dumps({"msp_id": "KZ-CUSTOMS"})
    trust = json.loads(ledger.evaluate("GetTrustList", [query]).payload)
    assert [a["status"] for a in trust] == ["granted"] * 3
    # the anchor's history comes from the ledger's history index
    history = ledger.evaluate(
        "GetAnchorHistory",
        [json.dumps({"msp_id": "KZ-CUSTOMS", "fingerprint": hashlib.sha256(extra[0]).hexdigest()})],
    )
    assert [h["tx_id"] for h in json.loads(history.payload)] == [added.tx_id]


def test_phantom_read_conflict(
    make_ledger: MakeLedger, signers: Signers, fresh_pki: OrgPki
) -> None:
    ledger = make_ledger()
    root = b64(fresh_pki.certificate("root").public_bytes(Encoding.DER))

    def candidate(msp_id: str, country: str) -> dict[str, Any]:
        anchors = [{"kind": "root", "certificate": root}]
        return {"msp_id": msp_id, "country": country, "name": msp_id, "anchors": anchors}

    first = ledger.submit(propose(signers["kz-admin"], "ProposeMember", candidate("TJ-C", "TJ")))
    assert first.code == "VALID", first
    # in one block: UZ's approval admits TJ (a new member key), and a proposal whose
    # majority rule scans the members: the scan's range gained a key, a phantom
    approve = propose(signers["uz-admin"], "ApproveMember", {"msp_id": "TJ-C"})
    second = propose(signers["kz-admin"], "ProposeMember", candidate("TM-C", "TM"))
    a, b = ledger.submit_many([approve, second])
    assert (a.code, b.code) == ("VALID", "PHANTOM_READ_CONFLICT")
    members = json.loads(ledger.evaluate("GetMembers", []).payload)
    assert [m["msp_id"] for m in members] == ["KG-CUSTOMS", "KZ-CUSTOMS", "TJ-C", "UZ-CUSTOMS"]
    verify_ledger(ledger.store)


# --------------------------------------------------------------------- lifecycle
def test_create_refuses_a_bad_genesis(tmp_path: Any, signers: Signers) -> None:
    genesis = propose(signers["kz-admin"], "GetMembers")
    with pytest.raises(ProposalError, match="InitLedger"):
        EmbeddedLedger.create(tmp_path / "g.db", CHANNEL, genesis, signers["kz-node"])
    assert not (tmp_path / "g.db").exists()
    outsider = propose(signers["kg-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ"))
    with pytest.raises(Rejected, match="not a founding member"):
        EmbeddedLedger.create(tmp_path / "g.db", CHANNEL, outsider, signers["kz-node"])
    assert not (tmp_path / "g.db").exists()


def test_one_process_writes_a_ledger_at_a_time(tmp_path: Any, signers: Signers) -> None:
    genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ"))
    path = tmp_path / "locked.db"
    EmbeddedLedger.create(path, CHANNEL, genesis, signers["kz-node"]).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, fcntl; f = open(sys.argv[1], 'a'); "
            "fcntl.flock(f, fcntl.LOCK_EX); print('locked', flush=True); sys.stdin.read()",
            str(path) + ".lock",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        with EmbeddedLedger.open(path, signers["kz-node"]) as ledger:
            # reads need no lock; a write, or claiming the ledger, is refused
            assert ledger.evaluate("GetMembers", []).status == 200
            with pytest.raises(LedgerError, match="being written by another process"):
                ledger.submit(propose(signers["kz-admin"], "GetMembers"))
            with pytest.raises(LedgerError, match="being written by another process"):
                ledger.claim_writer()
            assert ledger.height == 1
    finally:
        holder.communicate("")
    # the lock went with the process
    first = EmbeddedLedger.open(path, signers["kz-node"])
    second = EmbeddedLedger.open(path, signers["kz-node"])
    try:
        assert first.submit(propose(signers["kz-admin"], "GetMembers")).code == "VALID"
        with pytest.raises(LedgerError, match="being written by another process"):
            second.submit(propose(signers["kz-admin"], "GetMembers"))
        first.close()
        # free again, but the second opened the ledger before the first wrote a block
        with pytest.raises(LedgerError, match=r"written by another process after this one"):
            second.submit(propose(signers["kz-admin"], "GetMembers"))
        with pytest.raises(LedgerError, match="open it again"):
            second.submit(propose(signers["kz-admin"], "GetMembers"))
    finally:
        first.close()
        second.close()
    with EmbeddedLedger.open(path, signers["kz-node"]) as ledger:
        assert ledger.submit(propose(signers["kz-admin"], "GetMembers")).code == "VALID"
        assert ledger.height == 3
    verify_ledger(Store.open(path, readonly=True))


def test_open_refuses_what_is_not_a_ledger(tmp_path: Any, signers: Signers) -> None:
    with pytest.raises(LedgerError, match="no ledger"):
        EmbeddedLedger.open(tmp_path / "missing.db", signers["kz-node"])
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(LedgerError):
        EmbeddedLedger.open(junk, signers["kz-node"])


def test_changes_feed_an_index_with_every_valid_write_in_order(
    make_ledger: MakeLedger, signers: Signers
) -> None:
    ledger = make_ledger()
    register = {"sez": "KZ-KHORGOS", "name": "Khorgos", "operator_subject": "CN=x"}
    first = ledger.submit(propose(signers["kz-admin"], "RegisterSezOperator", register))
    assert first.valid
    refused = ledger.submit(propose(signers["uz-admin"], "RegisterSezOperator", register))
    assert not refused.valid
    changes = list(ledger.changes())
    assert [c.function for c in changes] == ["InitLedger", "RegisterSezOperator"]
    last = changes[-1]
    assert (last.tx_id, last.block, last.creator_msp) == (first.tx_id, first.block, "KZ-CUSTOMS")
    assert [k for k, _ in last.writes] == ["\x00sez\x00KZ-KHORGOS\x00"]
    assert json.loads(last.writes[0][1] or b"")["operators"][0]["subject"] == "CN=x"
    assert last.event is not None and last.event == first.event
    assert [c.function for c in ledger.changes(from_block=last.block)] == ["RegisterSezOperator"]
    assert list(ledger.changes(from_block=last.block + 1)) == []


# ------------------------------------------------------- endorsement in worker processes
def _recorded(ledger: EmbeddedLedger, first_block: int) -> list[tuple[str, str, bytes]]:
    """(tx id, code, record) of every transaction from ``first_block`` on."""
    out = []
    for number in range(first_block, ledger.height):
        out += [(t.tx_id, t.code, json.dumps(t.record).encode()) for t in ledger.block(number).txs]
    return out


def test_workers_endorse_exactly_as_the_committer_would(
    make_ledger: MakeLedger, signers: Signers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same batch on two ledgers, endorsed in process and in worker processes."""
    here = make_ledger(max_block_tx=2, workers=0)
    workers = make_ledger(max_block_tx=2, workers=2, parallel_min=1)
    for ledger in (here, workers):
        with_sez(ledger, signers)
    op = signers["kz-khorgos"]

    def anchor(n: int, ref: str) -> SignedProposal:
        return propose(op, "AnchorEvents", anchor_batch(event(n, f"26KZ{ref}-KHG")))

    p1, p2, p3, p7, p8, p9 = (
        anchor(101, "X"),
        anchor(102, "Y"),
        anchor(103, "X"),
        anchor(104, "Z"),
        anchor(105, "Y"),
        anchor(106, "W"),
    )
    forged = dataclasses.replace(p7, signature=p7.signature[:-2] + b"\x00\x01")
    officer = propose(signers["kz-officer"], "AnchorEvents", anchor_batch(event(107)))
    stale = propose(op, "GetSez", {"sez": SEZ}, ts=(int(time.time()) - 3600, 0))
    batch = [p1, p2, p3, p2, forged, officer, stale, p7, p8, p9]
    expected = [
        "VALID",
        "VALID",
        "MVCC_READ_CONFLICT",  # X was written by the block still being written
        "DUPLICATE_TXID",
        "BAD_SIGNATURE",
        "CHAINCODE_ERROR",
        "BAD_TIMESTAMP",
        "VALID",
        "VALID",  # Y's block is committed by now: a worker's older read is executed again
        "VALID",
    ]
    start = here.height
    assert workers.height == start
    # In process, p3 executes on the committed state while [p1, p2] is being written. A
    # write that finished first would let it read X's new version: still a conflict (the
    # block is not settled), but with another read set in its record. Hold each write
    # back a little so that p3 always reads what a worker's snapshot shows.
    write = here._write

    def held_back(built: Any) -> None:
        time.sleep(0.1)
        write(built)

    monkeypatch.setattr(here, "_write", held_back)
    results = [ledger.submit_many(batch) for ledger in (here, workers)]
    assert [r.code for r in results[0]] == expected
    assert results[1] == results[0]  # receipts: codes, messages, payloads, blocks, events
    assert _recorded(workers, start) == _recorded(here, start)
    assert [c.writes for c in workers.changes(start)] == [c.writes for c in here.changes(start)]
    for ledger in (here, workers):
        verify_ledger(ledger.store)


def test_workers_respect_a_trust_change_earlier_in_the_batch(
    make_ledger: MakeLedger, signers: Signers
) -> None:
    """A worker checked the creator against the old trust list: the committer re-checks."""
    ledger = make_ledger(max_block_tx=1, workers=2, parallel_min=1)
    pki = signers.pkis["KZ"]
    victim = member_signer(pki, "ln-revoked-by-batch", "admin")
    pki.revoke(victim.certificate.serial_number, "key-compromise")
    crl = pki.build_crl("issuing")
    issuing = pki.certificate("issuing").public_bytes(Encoding.DER)
    publish = propose(
        signers["kz-admin"], "PublishCrl", {"crl": b64(crl), "issuer_certificate": b64(issuing)}
    )
    batch = [
        propose(victim, "GetMembers"),
        publish,
        propose(victim, "GetMembers"),
        propose(signers["kz-officer"], "GetMembers"),
    ]
    codes = [r.code for r in ledger.submit_many(batch)]
    assert codes == ["VALID", "VALID", "REVOKED_CREATOR", "VALID"]
    # and the workers' own trust caches follow the ledger: a later batch is refused there
    again = ledger.submit_many([propose(victim, "GetMembers"), propose(victim, "GetMembers")])
    assert [r.code for r in again] == ["REVOKED_CREATOR"] * 2
    verify_ledger(ledger.store)


def test_workers_option_is_checked(tmp_path: Any, signers: Signers) -> None:
    genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ"))
    for bad in (-1, 65):
        with pytest.raises(LedgerError, match="workers"):
            EmbeddedLedger.create(
                tmp_path / "w.db", CHANNEL, genesis, signers["kz-node"], workers=bad
            )
        assert not (tmp_path / "w.db").exists()


def test_the_wal_restarts_although_readers_come_and_go(
    make_ledger: MakeLedger, signers: Signers, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store_module, "WAL_RESTART_BYTES", 1)
    ledger = make_ledger()
    with_sez(ledger, signers)
    op = signers["kz-khorgos"]

    def wal_frames() -> int:
        probe = ledger.store.connect_reader()
        try:
            return int(probe.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])
        finally:
            probe.close()

    def commit(n: int) -> None:
        receipt = ledger.submit(propose(op, "AnchorEvents", anchor_batch(event(n))))
        assert receipt.valid, receipt

    commit(300)
    one_block = wal_frames()
    # a long reader (an index catching up) pins its snapshot: the WAL cannot restart, and
    # the writer gives up waiting for it instead of stalling commits
    reader = ledger.store.connect_reader()
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM txs").fetchone()
    for n in range(301, 304):
        commit(n)
    assert wal_frames() > 2 * one_block
    reader.execute("COMMIT")
    reader.close()
    commit(304)  # the readers are gone: this block's checkpoint restarts the WAL
    commit(305)
    assert wal_frames() <= one_block + 2
    verify_ledger(ledger.store)


@pytest.mark.parametrize(
    ("reads", "ranges", "writes", "emitted", "status", "message"),
    [
        ({}, [], {}, None, 200, ""),
        (
            {"\x00sez\x00KZ-KHORGOS\x00": 5 << 20 | 3, "\x00event\x00ni\x00": None, "b": 0},
            [("\x00anchor\x00KZ\x00", "\x00anchor\x00KZ\x00\U0010ffff"), ("", "")],
            {"\x00trail\x00é\x00": b"{}", "\x00gone\x00": None, 'z"q\\': b"\x00\xff"},
            ("caravan", b'{"a":1}'),
            200,
            "ok — “quoted” \n\t\u2028 \U0001f600",
        ),
        ({"k": 1}, [], {"k": b"v"}, ("", b""), 403, "role officer may not do this"),
        ({"k": True}, [], {}, None, True, "not ints: the encoder's way"),
    ],
)
def test_the_assembled_record_is_the_encoders_bytes(
    signers: Signers,
    reads: dict[str, Any],
    ranges: list[tuple[str, str]],
    writes: dict[str, bytes | None],
    emitted: tuple[str, bytes] | None,
    status: Any,
    message: str,
) -> None:
    signed = propose(signers["kz-khorgos"], "AnchorEvents", anchor_batch(event(1)))
    chain = [hashlib.sha256(c).hexdigest() for c in signed.chain]
    args = (signed, chain, "VALID", status, message, b"payload", reads, ranges, writes, emitted)
    assert tx_record(*args) == tx_record_json(*args)


def test_a_dead_worker_fails_the_batch_cleanly_and_the_next_one_gets_new_workers(
    make_ledger: MakeLedger, signers: Signers
) -> None:
    ledger = make_ledger(workers=1, parallel_min=2)
    with_sez(ledger, signers)
    ledger.start_workers()
    (pid,) = ledger.worker_pids()
    os.kill(pid, signal.SIGKILL)
    op = signers["kz-khorgos"]
    batch = [propose(op, "AnchorEvents", anchor_batch(event(n))) for n in (400, 401)]
    with pytest.raises(LedgerError, match="worker process died"):
        ledger.submit_many(batch)
    assert [r.code for r in ledger.submit_many(batch)] == ["VALID", "VALID"]
    assert ledger.worker_pids() != [pid]
    verify_ledger(ledger.store)

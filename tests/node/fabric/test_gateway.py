"""FabricLedger against an in-process Fabric peer (tests/node/fabric/peer.py) on loopback.

The peer verifies every message the client sends (structure, tx id, creator signature
with a low S), endorses by running the contracts behind the embedded ledger's checks,
and cuts real Fabric blocks that the client reads back through qscc and Deliver.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
from collections.abc import Callable, Generator
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from chaincode.merkle import verify_inclusion
from node.embedded.ledger import EmbeddedLedger
from node.errors import LedgerError
from node.fabric import FabricLedger, PeerConnection, PeerUnavailable
from node.fabric.protocol import FabricIdentity, is_low_s, low_s
from node.index.index import Index
from node.ledger import TxChanges
from node.services import aeo as aeo_service
from node.services.context import NodeContext
from tests.chaincode.conftest import aeo_record, aeo_write
from tests.chaincode.test_mra import ACT, proposal
from tests.chaincode.test_scenario import STEPS, trail_events
from tests.node.conftest import CHANNEL, Signers, genesis_arg, propose
from tests.node.test_scenario import Clock

from .conftest import Network
from .peer import FakePeer, serve


def run_scenario(ledger: Any, signers: Signers, clock: Any) -> list[Any]:
    """The issue-3 story (tests/node/test_scenario.py) on any Ledger; the proposals sent."""
    kz = signers.pkis["KZ"]
    sent: list[Any] = []

    def submit(who: str, function: str, arg: Any) -> Any:
        signed = propose(signers[who], function, arg, ts=clock.tick())
        sent.append(signed)
        return ledger.submit(signed)

    def ok(who: str, function: str, arg: Any) -> Any:
        receipt = submit(who, function, arg)
        assert receipt.code == "VALID", (function, receipt)
        return json.loads(receipt.payload)

    def query(function: str, arg: Any) -> Any:
        response = ledger.evaluate(function, [json.dumps(arg)])
        assert response.status == 200, response
        return json.loads(response.payload)

    record = aeo_record(clock, "KZ-AEO-2026-000001", aeo_type="AEOF")
    other = aeo_record(clock, "KZ-AEO-2026-000002", aeo_type="AEOC")
    for rec in (record, other):
        ok("kz-officer", "IssueAeo", aeo_write(kz, rec))
    refused = submit("uz-admin", "IssueAeo", aeo_write(kz, aeo_record(clock, "KZ-AEO-2026-000003")))
    assert (refused.code, refused.status) == ("CHAINCODE_ERROR", 403), refused
    assert refused.block is None
    ok("uz-admin", "ProposeMra", proposal(clock))
    ok("uz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    ok("kz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **ACT})
    clock.clock += 60

    def recognised(aeo_id: str, country: str) -> bool:
        answer = query("IsRecognised", {"aeo_id": aeo_id, "country": country, "at": clock.iso()})
        return bool(answer["recognised"])

    assert recognised("KZ-AEO-2026-000001", "UZ") is True
    assert recognised("KZ-AEO-2026-000001", "KG") is False
    assert recognised("KZ-AEO-2026-000002", "UZ") is False
    suspended = {
        **record,
        "status": "suspended",
        "status_reason": "audit findings",
        "status_effective_at": clock.iso(1),
    }
    ok("kz-officer", "SuspendAeo", aeo_write(kz, suspended))
    clock.clock += 5
    assert recognised("KZ-AEO-2026-000001", "UZ") is False
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    ok(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": "KZ-KHORGOS", "name": "Khorgos - Eastern Gate", "operator_subject": subject},
    )
    ref = "26KZ0000042-KHG"
    events = trail_events(ref, other["aeo_id"])
    batch = ok("kz-khorgos", "AnchorEvents", {"sez": "KZ-KHORGOS", "events": events})
    item = batch["proofs"][0]
    assert verify_inclusion(
        bytes.fromhex(item["leaf_hash"]),
        item["leaf_index"],
        batch["size"],
        [bytes.fromhex(p) for p in item["path"]],
        bytes.fromhex(batch["batch_root"]),
    )
    assert [t["biz_step"] for t in query("GetTrail", {"consignment_ref": ref})] == STEPS
    assert query("VerifyTrail", {"consignment_ref": ref})["ok"] is True
    return sent


def comparable(changes: list[TxChanges]) -> list[tuple[Any, ...]]:
    return [
        (c.tx_id, c.function, c.creator_msp, c.timestamp_us, c.writes, c.event) for c in changes
    ]


def test_scenario_gives_the_embedded_ledgers_world_state(
    signers: Signers, make_fabric: Callable[..., Network], make_ledger: Callable[..., Any]
) -> None:
    """The same signed proposals on Fabric and on the embedded ledger: same receipts'
    payloads, same writes and events per transaction, the same index rows."""
    clock: Any = Clock()  # duck-types tests.chaincode's Ledger clock
    network = make_fabric()
    sent = run_scenario(network.ledger, signers, clock)
    assert network.peer.violations == []

    embedded: EmbeddedLedger = make_ledger(clock=clock)
    genesis = next(network.ledger.changes(0))
    for signed in sent:  # the very same signed proposals, replayed
        embedded.submit(signed)
    fabric_changes = list(network.ledger.changes(0))
    embedded_changes = list(embedded.changes(0))
    # the genesis proposals differ (each ledger has its own); everything after is identical
    assert genesis.function == "InitLedger"
    assert comparable(fabric_changes[1:]) == comparable(embedded_changes[1:])
    assert [c.function for c in fabric_changes].count("IssueAeo") == 2
    assert all(not k.startswith("\x00txid\x00") for c in fabric_changes for k, _ in c.writes)

    # the node's services and index work unchanged on the Fabric ledger
    ctx = NodeContext(network.ledger, CHANNEL, clock=clock)
    assert aeo_service.get(ctx, "KZ-AEO-2026-000001")["record"]["status"] == "suspended"
    with Index("sqlite://") as on_fabric, Index("sqlite://") as on_embedded:
        assert on_fabric.catch_up(network.ledger) == len(fabric_changes)
        on_embedded.catch_up(embedded)
        assert on_fabric.catch_up(network.ledger) == 0  # nothing twice
        rows, expected = on_fabric.dump(), on_embedded.dump()
        assert set(rows) == set(expected)
        for table in ("aeo", "mra", "events", "sez", "members"):
            keep = slice(0, 3)  # block numbers and tx ids differ between the two ledgers
            assert [r[keep] for r in rows[table]] == [r[keep] for r in expected[table]], table


def test_blocks_read_back_through_qscc(fabric: Network, signers: Signers) -> None:
    ledger = fabric.ledger
    signed = propose(signers["kz-admin"], "RegisterSezOperator", sez_arg(signers))
    receipt = ledger.submit(signed)
    assert receipt.code == "VALID" and receipt.block == 2
    assert receipt.event is not None and receipt.event[0] == "caravan"
    block = ledger.block(2)
    (tx,) = block.txs
    assert (tx.tx_id, tx.code, tx.function, tx.creator_msp) == (
        receipt.tx_id,
        "VALID",
        "RegisterSezOperator",
        "KZ-CUSTOMS",
    )
    assert tx.record["proposal"] == signed.to_json()["proposal"]
    assert block.header["previous_hash"] == ledger.block(1).hash
    assert ledger.block(0).txs[0].function == "CONFIG"
    info = ledger.info()
    assert (info.height, info.tx_count, info.valid_tx_count) == (3, 3, 3)
    assert info.last_hash == block.hash
    with pytest.raises(LedgerError, match=r"no block 3 \(height 3\)"):
        ledger.block(3)


def sez_arg(signers: Signers, sez: str = "KZ-KHORGOS") -> dict[str, str]:
    subject = signers["kz-khorgos"].certificate.subject.rfc4514_string()
    return {"sez": sez, "name": "Khorgos - Eastern Gate", "operator_subject": subject}


def test_refusals_keep_the_contracts_status_and_message(fabric: Network, signers: Signers) -> None:
    ledger = fabric.ledger
    height = ledger.height
    # the contract refuses: 403 with its own message, nothing recorded
    receipt = ledger.submit(propose(signers["uz-admin"], "RegisterSezOperator", sez_arg(signers)))
    assert (receipt.code, receipt.status, receipt.block) == ("CHAINCODE_ERROR", 403, None)
    assert "KZ" in receipt.message and not receipt.message.startswith("chaincode response")
    # bad arguments: 400
    receipt = ledger.submit(propose(signers["kz-admin"], "RegisterSezOperator", {"sez": 1}))
    assert (receipt.code, receipt.status) == ("CHAINCODE_ERROR", 400)
    # a REJECTED code of the envelope checks comes back as the receipt's code
    signed = propose(signers["kz-admin"], "RegisterSezOperator", sez_arg(signers))
    assert ledger.submit(signed).code == "VALID"
    again = ledger.submit(signed)
    assert (again.code, again.status) == ("DUPLICATE_TXID", 409)
    assert again.message == f"transaction {again.tx_id} was already submitted"
    forged = type(signed)(
        signed.proposal, signed.signature[:-2] + b"\x00\x00", signed.certificate, signed.chain
    )
    bad = ledger.submit(forged)
    assert (bad.code, bad.status, bad.message) == (
        "BAD_SIGNATURE",
        403,
        "the proposal signature does not verify",
    )
    stale = ledger.submit(propose(signers["kz-admin"], "GetMembers", ts=(1_000_000_000, 0)))
    assert stale.code == "BAD_TIMESTAMP"
    # a proposal the client cannot even parse never reaches the peer
    junk = ledger.submit(type(signed)(b"{}", b"", b""))
    assert (junk.code, junk.status) == ("BAD_PROPOSAL", 400)
    assert ledger.height == height + 1
    # reads: the contract's 404 comes back as a Response, not an exception
    response = ledger.evaluate("GetAeo", [json.dumps({"aeo_id": "KZ-AEO-2026-999999"})])
    assert response.status == 404 and "KZ-AEO-2026-999999" in response.message
    assert ledger.evaluate("NoSuchFunction", []).status == 400
    # a write function evaluated is refused by the read stub
    assert (
        ledger.evaluate("RegisterSezOperator", [json.dumps(sez_arg(signers, "KZ-AKTAU"))]).status
        == 403
    )


def test_mvcc_conflict_is_recorded_with_its_code(fabric: Network, signers: Signers) -> None:
    """Two transactions endorsed on the same state and ordered into one block: the second
    reads a key the first wrote, so Fabric marks it MVCC_READ_CONFLICT."""
    ledger, peer = fabric.ledger, fabric.peer
    kz = signers.pkis["KZ"]
    clock: Any = Clock()  # duck-types tests.chaincode's Ledger clock
    assert ledger.submit(
        propose(
            signers["kz-officer"],
            "IssueAeo",
            aeo_write(kz, aeo_record(clock, "KZ-AEO-2026-000010")),
            ts=clock.tick(),
        )
    ).valid
    peer.min_block_txs = 2  # hold the first until the second is endorsed too
    first = propose(signers["kz-admin"], "RegisterSezOperator", sez_arg(signers), ts=clock.tick())
    second = propose(signers["kz-admin"], "RegisterSezOperator", sez_arg(signers), ts=clock.tick())
    # submit_many sends both at once: either may reach the orderer first and win
    receipts = sorted(ledger.submit_many([first, second]), key=lambda r: not r.valid)
    assert [r.code for r in receipts] == ["VALID", "MVCC_READ_CONFLICT"]
    assert receipts[0].block == receipts[1].block
    assert (receipts[1].status, receipts[1].payload, receipts[1].event) == (409, b"", None)
    peer.min_block_txs = 1
    number = receipts[0].block
    assert number is not None
    block = ledger.block(number)
    assert {t.tx_id: t.code for t in block.txs} == {
        receipts[0].tx_id: "VALID",
        receipts[1].tx_id: "MVCC_READ_CONFLICT",
    }
    info = ledger.info()
    assert info.tx_count == info.valid_tx_count + 1
    # the invalid transaction changes nothing and is not in changes() or events()
    tx_ids = {c.tx_id for c in ledger.changes(number)}
    assert tx_ids == {receipts[0].tx_id}


def test_events_and_changes_resume_from_a_block(fabric: Network, signers: Signers) -> None:
    ledger = fabric.ledger
    clock: Any = Clock()  # duck-types tests.chaincode's Ledger clock
    kz = signers.pkis["KZ"]
    receipts = [
        ledger.submit(
            propose(
                signers["kz-officer"],
                "IssueAeo",
                aeo_write(kz, aeo_record(clock, f"KZ-AEO-2026-{n:06d}")),
                ts=clock.tick(),
            )
        )
        for n in range(1, 6)
    ]
    assert all(r.valid for r in receipts)
    everything = list(ledger.events(0))
    assert [e[1] for e in everything[1:]] == [r.tx_id for r in receipts]
    for start in range(ledger.height + 1):
        resumed = list(ledger.events(start))
        assert resumed == [e for e in everything if e[0] >= start]
        changes = list(ledger.changes(start))
        assert [c.tx_id for c in changes] == [e[1] for e in resumed]
    # a consumer that stops early and resumes from its checkpoint misses nothing
    seen: list[str] = []
    checkpoint = 0
    while checkpoint < ledger.height:
        stream = ledger.changes(checkpoint)
        assert isinstance(stream, Generator)
        change = next(stream, None)
        stream.close()  # the Deliver stream is cancelled
        if change is None:
            break
        seen.append(change.tx_id)
        checkpoint = change.block + 1
    assert seen == [e[1] for e in everything]
    assert list(ledger.events(ledger.height)) == []
    assert fabric.peer.requests["Deliver"] >= ledger.height


def test_submit_many_keeps_many_in_flight(
    signers: Signers, make_fabric: Callable[..., Network]
) -> None:
    network = make_fabric(max_in_flight=64)
    peer = network.peer
    peer.min_block_txs = 40  # a block is cut only once 40 transactions wait: all in flight
    clock: Any = Clock()  # duck-types tests.chaincode's Ledger clock
    kz = signers.pkis["KZ"]
    proposals = [
        propose(
            signers["kz-officer"],
            "IssueAeo",
            aeo_write(kz, aeo_record(clock, f"KZ-AEO-2026-{n:06d}")),
            ts=clock.tick(),
        )
        for n in range(100, 140)
    ]
    receipts = network.ledger.submit_many(proposals)
    assert [r.code for r in receipts] == ["VALID"] * 40
    assert len({r.block for r in receipts}) == 1  # one block: all 40 were in flight at once
    assert [r.tx_id for r in receipts] == [json.loads(p.proposal)["tx_id"] for p in proposals]
    assert peer.violations == []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_peer_down_is_a_ledger_error(signers: Signers) -> None:
    ledger = FabricLedger(
        PeerConnection(f"127.0.0.1:{free_port()}", evaluate_timeout_s=5, endorse_timeout_s=5),
        signers["kz-node"],
        channel=CHANNEL,
    )
    with ledger:
        with pytest.raises(PeerUnavailable, match="is unavailable") as caught:
            ledger.submit(propose(signers["kz-admin"], "GetMembers"))
        assert isinstance(caught.value, LedgerError) and caught.value.status == 503
        with pytest.raises(PeerUnavailable):
            ledger.evaluate("GetMembers", [])
        with pytest.raises(PeerUnavailable):
            _ = ledger.height
        with pytest.raises(PeerUnavailable):
            list(ledger.blocks(0, 3))


def test_a_peer_that_goes_away_mid_run(
    signers: Signers, make_fabric: Callable[..., Network]
) -> None:
    network = make_fabric()
    assert network.ledger.evaluate("GetMembers", []).status == 200
    network.server.stop(None)
    with pytest.raises(PeerUnavailable):
        network.ledger.evaluate("GetMembers", [])


def test_signatures_have_a_low_s(signers: Signers) -> None:
    identity = FabricIdentity(signers["kz-node"])
    key = signers["kz-node"].certificate.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    for n in range(64):  # about half of raw ECDSA signatures have a high S
        message = b"message %d" % n
        signature = identity.sign(message)
        assert is_low_s(signature, identity.order)
        key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
    # a high-S signature is lowered to the other valid signature of the same message
    private = ec.generate_private_key(ec.SECP256R1())
    while True:
        raw = private.sign(b"x", ec.ECDSA(hashes.SHA256()))
        if not is_low_s(raw, identity.order):
            break
    lowered = low_s(raw, identity.order)
    assert lowered != raw and is_low_s(lowered, identity.order)
    assert decode_dss_signature(lowered)[0] == decode_dss_signature(raw)[0]
    private.public_key().verify(lowered, b"x", ec.ECDSA(hashes.SHA256()))


def test_the_peer_refuses_a_high_s(signers: Signers, fabric: Network) -> None:
    """The fake peer's check is real: a client that forgot low-S is refused."""
    identity = fabric.ledger.identity
    original = identity.sign

    def high_s(message: bytes) -> bytes:
        r, s = decode_dss_signature(original(message))
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        return encode_dss_signature(r, identity.order - s)

    identity.sign = high_s  # type: ignore[method-assign]
    with pytest.raises(LedgerError, match="high S"):
        fabric.ledger.evaluate("GetMembers", [])
    identity.sign = original  # type: ignore[method-assign]
    fabric.peer.violations.clear()
    assert fabric.ledger.evaluate("GetMembers", []).status == 200


def tls_material(tmp_path: Any) -> tuple[bytes, tuple[bytes, bytes]]:
    """A CA and a peer certificate for peer0.kz.example (not the address dialled)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tls-ca.kz.example")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "peer0.kz.example")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("peer0.kz.example")]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ca.public_bytes(pem), (key_pem, cert.public_bytes(pem))


def test_tls_with_a_server_name_override(signers: Signers, tmp_path: Any) -> None:
    ca, server_pair = tls_material(tmp_path)
    peer = FakePeer(CHANNEL)
    server, address = serve(peer, tls=server_pair)
    try:
        genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, "KZ"))
        ok = FabricLedger(
            PeerConnection(address, tls_ca=ca, server_name="peer0.kz.example"),
            signers["kz-node"],
            channel=CHANNEL,
        )
        with ok:
            assert ok.submit(genesis).valid
            assert ok.height == 2
        wrong_name = FabricLedger(
            PeerConnection(address, tls_ca=ca, evaluate_timeout_s=5),
            signers["kz-node"],
            channel=CHANNEL,
        )
        with wrong_name, pytest.raises(PeerUnavailable):
            _ = wrong_name.height  # 127.0.0.1 is not the certificate's name
    finally:
        server.stop(None)
        peer.close()
    assert peer.violations == []

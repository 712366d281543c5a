"""SEZ consignment events: accredited operators, own zone only, links, Merkle proofs, trails."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from chaincode.canonical import canonical_json
from chaincode.merkle import leaf_hash, verify_inclusion
from chaincode.stub import create_composite_key
from tests.chaincode.conftest import Ledger

SEZ = "KZ-KHORGOS"
REF = "26KZ0001234-KHG-0001"


def event_hash(n: int) -> str:
    return f"ni:///sha-256;{hashlib.sha256(str(n).encode()).hexdigest()}?ver=CBV2.0"


def ev(n: int, ref: str = REF, **changes: Any) -> dict[str, Any]:
    return {
        "event_hash": event_hash(n),
        "consignment_ref": ref,
        "event_type": "ObjectEvent",
        "biz_step": "arriving",
        "disposition": "in_transit",
        "event_time": "2026-11-24T08:00:00+05:00",
        "location": "urn:epc:id:sgln:4870001.00001.0",
        "aeo_id": "KZ-AEO-2026-000123",
        **changes,
    }


def registered(ledger: Ledger) -> None:
    subject = ledger.ok(
        "kz-admin",
        "RegisterSezOperator",
        {
            "sez": SEZ,
            "name": "Khorgos - Eastern Gate",
            "operator_subject": subject_of(ledger, "kz-khorgos"),
        },
    )
    assert subject["operators"][0]["subject"] == subject_of(ledger, "kz-khorgos")


def subject_of(ledger: Ledger, who: str) -> str:
    from cryptography import x509

    return x509.load_der_x509_certificate(ledger.ids[who].certificate_der).subject.rfc4514_string()


def anchor(
    ledger: Ledger, events: list[dict[str, Any]], who: str = "kz-khorgos", sez: str = SEZ
) -> Any:
    return ledger.ok(who, "AnchorEvents", {"sez": sez, "events": events})


def test_anchor_batch_with_proofs_and_trail(ledger: Ledger) -> None:
    registered(ledger)
    first = anchor(ledger, [ev(1), ev(2, biz_step="inspecting"), ev(3, ref="OTHER-1")])
    assert first["size"] == 3
    for proof in first["proofs"]:
        assert verify_inclusion(
            bytes.fromhex(proof["leaf_hash"]),
            proof["leaf_index"],
            first["size"],
            [bytes.fromhex(p) for p in proof["path"]],
            bytes.fromhex(first["batch_root"]),
        )
    anchor(ledger, [ev(4, biz_step="departing", prev_event_hash=event_hash(2))])
    trail = ledger.ok("uz-admin", "GetTrail", {"consignment_ref": REF})
    assert [(t["seq"], t["event_hash"], t["prev_event_hash"]) for t in trail] == [
        (1, event_hash(1), None),
        (2, event_hash(2), event_hash(1)),
        (3, event_hash(4), event_hash(2)),
    ]
    assert trail[0]["event_time"] == "2026-11-24T03:00:00Z"
    assert ledger.ok("uz-admin", "VerifyTrail", {"consignment_ref": REF}) == {
        "consignment_ref": REF,
        "ok": True,
        "events": 3,
        "problems": [],
        "corrections": [],
    }
    assert ledger.last_event()["entries"][0]["type"] == "EventsAnchored"


def test_link_disagreeing_with_the_ledger_is_refused(ledger: Ledger) -> None:
    registered(ledger)
    anchor(ledger, [ev(1)])
    assert ledger.fails(
        "kz-khorgos",
        "AnchorEvents",
        {"sez": SEZ, "events": [ev(2, prev_event_hash=event_hash(9))]},
        409,
    ) == (
        f"prev_event_hash of {event_hash(2)} disagrees with the last event of "
        f"consignment {REF} ({event_hash(1)})"
    )
    assert ledger.fails("kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": [ev(1)]}, 409) == (
        f"event {event_hash(1)} is already anchored"
    )
    assert ledger.fails(
        "kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": [ev(5), ev(5)]}, 400
    ) == ("batch lists the same event hash twice")


def test_corrections_are_new_events(ledger: Ledger) -> None:
    registered(ledger)
    anchor(ledger, [ev(1), ev(7, ref="OTHER")])
    anchor(ledger, [ev(2, disposition="damaged", corrects=[event_hash(1)])])
    entries = ledger.last_event()["entries"]
    assert entries[1] == {
        "type": "EventCorrected",
        "event_hash": event_hash(2),
        "corrects": event_hash(1),
    }
    trail = ledger.ok("uz-admin", "GetTrail", {"consignment_ref": REF})
    assert trail[0]["disposition"] == "in_transit" and trail[1]["corrects"] == [event_hash(1)]
    report = ledger.ok("uz-admin", "VerifyTrail", {"consignment_ref": REF})
    assert report["ok"] and report["corrections"] == [
        {
            "seq": 2,
            "event_hash": event_hash(2),
            "corrects": [{"seq": 1, "event_hash": event_hash(1)}],
        }
    ]
    assert ledger.fails(
        "kz-khorgos",
        "AnchorEvents",
        {"sez": SEZ, "events": [ev(3, corrects=[event_hash(99)])]},
        404,
    ) == (f"corrected event {event_hash(99)} not found")
    assert ledger.fails(
        "kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": [ev(3, corrects=[event_hash(7)])]}, 409
    ) == (f"corrected event {event_hash(7)} belongs to another consignment")


def test_operator_rights(ledger: Ledger) -> None:
    batch = {"sez": SEZ, "events": [ev(1)]}
    assert (
        ledger.fails("kz-khorgos", "AnchorEvents", batch, 404) == "SEZ KZ-KHORGOS is not registered"
    )
    registered(ledger)
    # an operator of another zone
    assert ledger.fails("kz-aktau", "AnchorEvents", batch, 403) == (
        "an operator of KZ-AKTAU may not anchor events of KZ-KHORGOS"
    )
    # an operator writing for another zone (its own certificate names KZ-KHORGOS)
    assert ledger.fails(
        "kz-khorgos", "AnchorEvents", {"sez": "KZ-AKTAU", "events": [ev(1)]}, 403
    ) == ("an operator of KZ-KHORGOS may not anchor events of KZ-AKTAU")
    # an identity for the zone that is not registered as an operator
    assert "is not a registered operator of KZ-KHORGOS" in ledger.fails(
        "kz-khorgos-2", "AnchorEvents", batch, 403
    )
    assert "needs sez-operator" in ledger.fails("kz-admin", "AnchorEvents", batch, 403)
    # only the zone's own administration accredits its operators
    assert ledger.fails(
        "uz-admin",
        "RegisterSezOperator",
        {"sez": SEZ, "name": "x", "operator_subject": "CN=x"},
        403,
    ) == ("UZ-CUSTOMS (UZ) may not accredit operators of KZ-KHORGOS")
    assert "needs admin" in ledger.fails(
        "kz-officer",
        "RegisterSezOperator",
        {"sez": SEZ, "name": "x", "operator_subject": "CN=x"},
        403,
    )
    assert "already an operator" in ledger.fails(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": SEZ, "name": "x", "operator_subject": subject_of(ledger, "kz-khorgos")},
        409,
    )


def test_malformed_events(ledger: Ledger) -> None:
    registered(ledger)
    for change, message in (
        (
            {"event_hash": "sha256:abc"},
            "batch.events[0].event_hash 'sha256:abc' has the wrong format",
        ),
        ({"event_hash": event_hash(1).upper()}, "has the wrong format"),
        ({"event_type": "Event"}, "batch.events[0].event_type must be one of"),
        ({"event_time": "24.11.2026"}, "not an RFC 3339 timestamp"),
        ({"surprise": True}, "unknown member(s): surprise"),
    ):
        assert message in ledger.fails(
            "kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": [ev(1, **change)]}, 400
        )
    assert "1 to 4096 objects" in ledger.fails(
        "kz-khorgos", "AnchorEvents", {"sez": SEZ, "events": []}, 400
    )


def test_verify_trail_detects_tampering(ledger: Ledger) -> None:
    registered(ledger)
    anchor(ledger, [ev(1), ev(2), ev(3)])
    key = create_composite_key("trail", [REF, f"{2:012d}"])
    entry = json.loads(ledger.stub.state[key])
    entry["biz_step"] = "destroying"
    ledger.stub.state[key] = canonical_json(entry)
    result = ledger.ok("uz-admin", "VerifyTrail", {"consignment_ref": REF})
    assert result["ok"] is False
    assert result["problems"] == [f"event {event_hash(2)}: Merkle inclusion proof fails"]

    entry["corrects"] = [event_hash(3)]  # a correction of a later event: not possible
    ledger.stub.state[key] = canonical_json(entry)
    result = ledger.ok("uz-admin", "VerifyTrail", {"consignment_ref": REF})
    assert result["problems"] == [
        f"event {event_hash(2)}: corrects {event_hash(3)}, not an earlier event",
        f"event {event_hash(2)}: Merkle inclusion proof fails",
    ]
    assert result["corrections"] == [
        {
            "seq": 2,
            "event_hash": event_hash(2),
            "corrects": [{"seq": None, "event_hash": event_hash(3)}],
        }
    ]
    assert (
        ledger.fails("uz-admin", "GetTrail", {"consignment_ref": "NONE"}, 404)
        == "consignment NONE has no anchored events"
    )


def test_leaf_hash_is_domain_separated() -> None:
    assert leaf_hash(b"x") != hashlib.sha256(b"x").digest()


def test_get_event_and_sez(ledger: Ledger) -> None:
    registered(ledger)
    batch = anchor(ledger, [ev(1), ev(2)])
    found = ledger.ok("kg-admin", "GetEvent", {"event_hash": event_hash(2)})
    assert (found["seq"], found["batch_root"], found["proof"]) == (
        2,
        batch["batch_root"],
        batch["proofs"][1]["path"],
    )
    assert ledger.fails("kg-admin", "GetEvent", {"event_hash": event_hash(3)}, 404) == (
        f"event {event_hash(3)} is not anchored"
    )
    assert ledger.ok("kg-admin", "GetSez", {"sez": SEZ})["msp_id"] == "KZ-CUSTOMS"
    assert (
        ledger.fails("kg-admin", "GetSez", {"sez": "UZ-NAVOI"}, 404)
        == "SEZ UZ-NAVOI is not registered"
    )


def _slow_events(batch: dict[str, Any]) -> list[Any]:
    """The batch read member by member with Fields (the path with the messages)."""
    from chaincode.context import Fields
    from chaincode.trace import MAX_BATCH, _event

    f = Fields(batch, "batch")
    return [_event(e) for e in f.objs("events", min_items=1, max_items=MAX_BATCH)]


def _outcome(read: Any, batch: dict[str, Any]) -> Any:
    from chaincode.errors import BadRequest

    try:
        return read(batch)
    except BadRequest as exc:
        return exc.message


VARIANTS: list[dict[str, Any]] = [
    {},
    {"disposition": None, "aeo_id": None},
    {"corrects": [event_hash(7), event_hash(8)], "prev_event_hash": event_hash(6)},
    {"corrects": None, "event_time": "2026-11-24T08:00:00.000001-03:30"},
    {"event_time": "2026-11-24"},
    {"biz_step": "é" * 256, "location": "x" * 512},
    # refusals: the fast path must step aside so that Fields explains
    {"biz_step": "x" * 257},
    {"location": ""},
    {"disposition": ""},
    {"disposition": 5},
    {"aeo_id": "UZ-AEO"},
    {"corrects": [event_hash(7), event_hash(7)]},
    {"corrects": [event_hash(i) for i in range(65)]},
    {"corrects": "nope"},
    {"event_time": "2026-02-30T00:00:00Z"},
    {"event_time": None},
    {"event_type": ["ObjectEvent"]},
    {"prev_event_hash": "x", "biz_step": None},
    {"surprise": 1},
]


def test_event_fast_path_reads_as_fields(ledger: Ledger) -> None:
    from chaincode.context import Fields
    from chaincode.trace import _events

    for change in VARIANTS:
        events = [ev(1), ev(2, ref="OTHER", **change), ev(3)]
        batch = {"events": events}
        expected = _outcome(_slow_events, batch)
        assert _outcome(lambda b: _events(Fields(b, "batch")), batch) == expected, change
    assert "batch.events[1].biz_step is longer than 256" in str(
        _outcome(_slow_events, {"events": [ev(1), ev(2, biz_step="x" * 257)]})
    )
    assert "batch.events must be a list" in str(_outcome(_slow_events, {"events": {}}))


def test_stored_bytes_are_canonical_and_leaves_match(ledger: Ledger) -> None:
    # AnchorEvents assembles its records from canonical texts: each stored value must be
    # exactly canonical_json of its parsed self, and each leaf the leaf of the stored entry
    from chaincode.trace import leaf_of

    registered(ledger)
    result = anchor(
        ledger,
        [
            ev(1, biz_step='é\u2028"q"', disposition=None, aeo_id=None),
            ev(2, corrects=[event_hash(1)], event_time="2026-11-24T08:00:00.25+05:00"),
            ev(3, ref="OTHER-1"),
        ],
    )
    for raw in ledger.stub.state.values():
        assert canonical_json(json.loads(raw)) == raw
    trail = ledger.ok("uz-admin", "GetTrail", {"consignment_ref": REF})
    by_hash = {p["event_hash"]: p for p in result["proofs"]}
    for entry in trail:
        assert leaf_of(entry).hex() == by_hash[entry["event_hash"]]["leaf_hash"]
        assert entry["proof"] == by_hash[entry["event_hash"]]["path"]
    assert ledger.ok("uz-admin", "VerifyTrail", {"consignment_ref": REF})["ok"]


def test_malformed_batches_are_explained_by_fields(ledger: Ledger) -> None:
    registered(ledger)
    for batch, message in (
        ({"sez": SEZ, "events": [ev(1)], "x": 1}, "batch has unknown member(s): x"),
        ({"events": [ev(1)], "x": 1}, "batch.sez is required"),
        ({"sez": "kz-khorgos", "events": [ev(1)]}, "batch.sez 'kz-khorgos' has the wrong format"),
        ({"sez": SEZ, "events": "x"}, "batch.events must be a list of 1 to 4096 objects"),
        ({"sez": SEZ, "extra": [ev(1)]}, "batch.events is required"),
        ({"sez": SEZ, "events": [ev(1), 5]}, "batch.events[1] must be a JSON object"),
    ):
        assert ledger.fails("kz-khorgos", "AnchorEvents", batch, 400) == message

"""EPCIS 2.0 corrections through `caravan trace anchor`, and how `trace trail` / `trace
verify` show them, on a node directory and over the API (`--node URL`).

An error declaration repeats the erroneous event with an ``errorDeclaration``; its CBV 2.0
hash leaves the declaration out, so it is the erroneous event's hash. Its corrective
events (``correctiveEventIDs``) are anchored with ``corrects`` naming the erroneous event.
A malformed declaration stops the command before anything is anchored (exit 3)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.app import create_app
from node.epcis import anchor_plan, epcis_event_hash
from node.errors import NodeError
from node.node import Node
from tests.api.conftest import serve
from tests.cli.conftest import accredit_operator, caravan, ok_json, one_line

SEZ = "KZ-KHORGOS"
CONTEXT = ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"]
STEPS = ["arriving", "inspecting", "departing"]


def event(ref: str, hour: int, step: str, disposition: str = "in_progress") -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-11-24T{hour:02d}:00:00.000+05:00",
        "eventTimeZoneOffset": "+05:00",
        "epcList": ["urn:epc:id:sscc:4870001.0000000042"],
        "action": "OBSERVE",
        "bizStep": f"urn:epcglobal:cbv:bizstep:{step}",
        "disposition": f"urn:epcglobal:cbv:disp:{disposition}",
        "readPoint": {"id": "urn:epc:id:sgln:4870001.00001.0"},
        "bizTransactionList": [{"type": "urn:wco:ucr", "bizTransaction": f"urn:wco:ucr:{ref}"}],
    }


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-25T09:00:00+05:00",
        "epcisBody": {"eventList": list(events)},
    }


def correction(
    ref: str, wrong: dict[str, Any], **declaration: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The error declaration of ``wrong`` and its corrective event (non_conformant)."""
    fixed = {**event(ref, 1, "inspecting", "non_conformant"), "eventID": "urn:uuid:fix-" + ref}
    declared = {
        **copy.deepcopy(wrong),
        "eventID": epcis_event_hash(wrong, CONTEXT),
        "errorDeclaration": {
            "declarationTime": "2026-11-25T08:00:00+05:00",
            "reason": "urn:epcglobal:cbv:er:incorrect_data",
            "correctiveEventIDs": [fixed["eventID"]],
            **declaration,
        },
    }
    return declared, fixed


def write(path: Path, doc: dict[str, Any]) -> Path:
    path.write_text(json.dumps(doc))
    return path


@pytest.fixture(scope="module")
def zone(node_dir: Path) -> Path:
    """The Khorgos operator, accredited by KZ's admin with `caravan sez register`."""
    accredit_operator(node_dir, SEZ)
    return node_dir


def anchor(path: Path, *where: str | Path) -> tuple[int, str, str]:
    return caravan("trace", "anchor", path, "--sez", SEZ, *where, "--identity", "kz-khorgos")


def test_plan_maps_declarations_to_corrects() -> None:
    ref = "26KZ0000001-KHG"
    wrong = event(ref, 1, "inspecting")
    declared, fixed = correction(ref, wrong)
    erroneous = epcis_event_hash(wrong, CONTEXT)
    # the CBV 2.0 hash leaves errorDeclaration out: the declaration IS the erroneous event
    assert epcis_event_hash(declared, CONTEXT) == erroneous
    plan = anchor_plan([fixed, declared], CONTEXT)
    assert plan.positions == [1]
    assert plan.entries[0]["corrects"] == [erroneous]
    assert plan.entries[0]["disposition"] == "non_conformant"
    (d,) = plan.declarations
    assert (d.event, d.erroneous, d.corrective) == (
        2,
        erroneous,
        ((1, plan.entries[0]["event_hash"]),),
    )
    assert (d.declaration.reason, d.declaration.declaration_time) == (
        "incorrect_data",
        "2026-11-25T03:00:00Z",
    )
    # a corrective event named by its CBV 2.0 hash instead of its eventID
    plain = event(ref, 1, "inspecting", "conformant")
    by_hash, _ = correction(ref, wrong, correctiveEventIDs=[epcis_event_hash(plain, CONTEXT)])
    assert anchor_plan([by_hash, plain], CONTEXT).entries[0]["corrects"] == [erroneous]
    # an event without a declaration carries no corrects
    assert "corrects" not in anchor_plan([wrong], CONTEXT).entries[0]
    with pytest.raises(NodeError, match="is the erroneous event itself"):
        anchor_plan([correction(ref, wrong, correctiveEventIDs=[erroneous])[0], wrong], CONTEXT)


def test_anchor_correction_and_show_it(zone: Path, tmp_path: Path) -> None:
    where = ("--dir", zone)
    ref = "26KZ0000042-KHG"
    events = [event(ref, i, step) for i, step in enumerate(STEPS)]
    anchored = ok_json(
        "trace", "anchor", write(tmp_path / "a.json", document(*events)), "--sez", SEZ,
        *where, "--identity", "kz-khorgos",
    )  # fmt: skip
    assert anchored["anchored"] == 3 and anchored["corrections"] == []
    hashes = [p["event_hash"] for p in anchored["batches"][0]["proofs"]]

    declared, fixed = correction(ref, events[1])
    answer = ok_json(
        "trace", "anchor", write(tmp_path / "c.json", document(declared, fixed)), "--sez", SEZ,
        *where, "--identity", "kz-khorgos",
    )  # fmt: skip
    assert (answer["anchored"], answer["declarations"]) == (1, 1)
    ((proof,),) = [b["proofs"] for b in answer["batches"]]
    fix_hash = proof["event_hash"]
    assert proof["seq"] == 4 and fix_hash == epcis_event_hash(fixed, CONTEXT)
    assert answer["corrections"] == [
        {
            "event": 2,
            "event_hash": fix_hash,
            "corrects": [hashes[1]],
            "declarations": [
                {
                    "event": 1,
                    "event_hash": hashes[1],
                    "reason": "incorrect_data",
                    "declaration_time": "2026-11-25T03:00:00Z",
                }
            ],
        }
    ]

    # the trail: the correction, and the event it corrects (which is not edited)
    trail = ok_json("trace", "trail", ref, *where)
    assert [(e["seq"], e["corrects"], e["corrected_by"]) for e in trail] == [
        (1, [], []),
        (2, [], [fix_hash]),
        (3, [], []),
        (4, [hashes[1]], []),
    ]
    assert trail[1]["disposition"] == "in_progress" and trail[3]["disposition"] == "non_conformant"
    code, out, err = caravan("trace", "trail", ref, *where)
    assert code == 0, err
    assert "corrected by #4" in out and "corrects #2" in out

    report = ok_json("trace", "verify", ref, *where)
    assert report["ok"] is True and report["events"] == 4
    assert report["corrections"] == [
        {"seq": 4, "event_hash": fix_hash, "corrects": [{"seq": 2, "event_hash": hashes[1]}]}
    ]
    code, out, _err = caravan("trace", "verify", ref, *where)
    assert code == 0 and "OK, 4 event(s)" in out
    assert "correction: event 4 (" in out and "corrects event 2 (" in out

    # the same correction again: the corrective event is anchored already (409)
    code, _out, err = anchor(tmp_path / "c.json", *where)
    assert code == 4 and one_line(err).startswith("error: refused (409 CONFLICT): event ")


def malformed(ref: str, wrong: dict[str, Any]) -> list[tuple[dict[str, Any], str]]:
    """(document, the one line it gets): each stops the command before anything is sent."""
    declared, fixed = correction(ref, wrong)
    no_time = copy.deepcopy(declared)
    del no_time["errorDeclaration"]["declarationTime"]
    naive, _ = correction(ref, wrong, declarationTime="2026-11-25T08:00:00")
    date_only, _ = correction(ref, wrong, declarationTime="2026-11-25")
    not_list, _ = correction(ref, wrong, correctiveEventIDs="urn:uuid:fix")
    empty, _ = correction(ref, wrong, correctiveEventIDs=[])
    twice, _ = correction(ref, wrong, correctiveEventIDs=[fixed["eventID"]] * 2)
    unknown, _ = correction(ref, wrong, correctedBy="x")
    elsewhere, _ = correction(ref, wrong, correctiveEventIDs=["urn:uuid:not-here"])
    other_ref = {**fixed, "bizTransactionList": [{"type": "ucr", "bizTransaction": "26KZ-OTHER"}]}
    wrong_id = {**declared, "eventID": f"ni:///sha-256;{'ab' * 32}?ver=CBV2.0"}
    return [
        (document({**declared, "errorDeclaration": "oops"}, fixed),
         "error: event 1: errorDeclaration must be a JSON object"),
        (document(no_time, fixed), "error: event 1: errorDeclaration has no declarationTime"),
        (document(naive, fixed),
         "error: event 1: errorDeclaration.declarationTime must be an RFC 3339 date-time with a "
         "UTC offset (got '2026-11-25T08:00:00')"),
        (document(date_only, fixed),
         "error: event 1: errorDeclaration.declarationTime must be an RFC 3339 date-time with a "
         "UTC offset (got '2026-11-25')"),
        (document(not_list, fixed),
         "error: event 1: errorDeclaration.correctiveEventIDs must be a list of at most 64 event "
         "ids (non-empty strings)"),
        (document(twice, fixed),
         "error: event 1: errorDeclaration.correctiveEventIDs names an event twice"),
        (document(unknown, fixed),
         "error: event 1: errorDeclaration: unknown member 'correctedBy' (declarationTime, "
         "reason, correctiveEventIDs, or a namespaced extension such as ex:note)"),
        (document(empty, fixed),
         "error: event 1: its errorDeclaration names no corrective event (correctiveEventIDs): "
         "the ledger records a correction on the corrective events, anchored with the "
         "declaration"),
        (document(elsewhere, fixed),
         "error: event 1: corrective event urn:uuid:not-here is not an event of this document "
         "(anchor the corrective events with their error declaration)"),
        (document(declared, other_ref),
         f"error: event 1: corrective event 2 belongs to consignment 26KZ-OTHER, the erroneous "
         f"event to {ref}"),
        (document(wrong_id, fixed),
         f"error: event 1: eventID {wrong_id['eventID']} is not the event's CBV 2.0 hash "
         f"({epcis_event_hash(wrong, CONTEXT)}): the event was changed after its hash was taken"),
    ]  # fmt: skip


def test_malformed_declarations_anchor_nothing(zone: Path, tmp_path: Path) -> None:
    where = ("--dir", zone)
    ref = "26KZ0000043-KHG"
    wrong = event(ref, 2, "inspecting")
    ok_json("trace", "anchor", write(tmp_path / "a.json", document(wrong)), "--sez", SEZ,
            *where, "--identity", "kz-khorgos")  # fmt: skip
    for n, (doc, line) in enumerate(malformed(ref, wrong)):
        code, out, err = anchor(write(tmp_path / f"bad{n}.json", doc), *where)
        assert (code, one_line(err)) == (3, line), n
        assert out == ""
    # an extension member is allowed; the erroneous event must be on the ledger (404: 3)
    ghost = event(ref, 3, "storing")
    declared, fixed = correction(ref, ghost, **{"ex:note": "seal number mistyped"})
    code, _out, err = anchor(write(tmp_path / "ghost.json", document(declared, fixed)), *where)
    assert code == 3
    assert one_line(err) == (f"error: corrected event {epcis_event_hash(ghost, CONTEXT)} not found")
    assert [e["seq"] for e in ok_json("trace", "trail", ref, *where)] == [1]


@pytest.fixture(scope="module")
def api(zone: Path) -> Iterator[str]:
    with Node.open(zone) as node, serve(create_app(node, trust_services=False)) as url:
        yield url


def test_corrections_over_http(api: str, zone: Path, tmp_path: Path) -> None:
    where = ("--node", api, "--identity-dir", zone)
    ref = "26KZ0000044-KHG"
    wrong = event(ref, 4, "inspecting")
    declared, fixed = correction(ref, wrong)
    # the erroneous event, its declaration and the corrective event in one document
    code, out, err = anchor(write(tmp_path / "d.json", document(wrong, declared, fixed)), *where)
    assert code == 0, err
    assert f"event 2 declares {epcis_event_hash(wrong, CONTEXT)[14:26]}… erroneous" in out
    assert "(incorrect_data, 2026-11-25T03:00:00Z): corrected by event 3" in out
    trail = ok_json("trace", "trail", ref, "--node", api)
    assert [(e["seq"], len(e["corrects"]), len(e["corrected_by"])) for e in trail] == [
        (1, 0, 1),
        (2, 1, 0),
    ]
    assert trail[1]["corrects"] == [trail[0]["event_hash"]]
    report = ok_json("trace", "verify", ref, "--node", api)
    assert report["ok"] is True and report["corrections"][0]["corrects"][0]["seq"] == 1
    code, out, _err = caravan("trace", "trail", ref, "--node", api)
    assert code == 0 and "corrected by #2" in out and "corrects #1" in out
    # a malformed declaration over HTTP: the same one line, nothing sent
    bad, _ = correction(ref, wrong, declarationTime=12)
    code, _out, err = anchor(write(tmp_path / "bad.json", document(bad, fixed)), *where)
    assert (code, one_line(err)) == (
        3,
        "error: event 1: errorDeclaration.declarationTime must be an RFC 3339 date-time with "
        "a UTC offset (got 12)",
    )
    assert len(ok_json("trace", "trail", ref, "--node", api)) == 2

"""`caravan mra …`, `recognition check` and `trace …` against a node directory made by
`caravan node init`: an MRA KZ-UZ through its lifecycle, recognition yes (exit 0) and no
(exit 1) with reasons, an EPCIS 2.0 document anchored by the SEZ operator, its trail,
and a trail that no longer verifies (exit 1)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from cli.trace import epcis_event_hash
from node.errors import NodeError
from tests.cli.conftest import accredit_operator, aeo_record, caravan, iso, ok_json, one_line

MRA = "MRA-KZ-UZ-2026"
DOC = hashlib.sha256(b"Decision KZ-UZ 2026/1").hexdigest()
REF = "26KZ0000042-KHG"
STEPS = ["arriving", "inspecting", "storing", "loading", "departing"]


def mra_proposal() -> dict[str, Any]:
    return {
        "mra_id": MRA,
        "title": "AEO MRA between Kazakhstan and Uzbekistan",
        "parties": ["KZ-CUSTOMS", "UZ-CUSTOMS"],
        "recognised_types": {"KZ-CUSTOMS": ["AEOS", "AEOF"], "UZ-CUSTOMS": ["AEOF"]},
        "benefits": ["fewer_controls", "priority_clearance"],
        "effective_from": iso(-3600),
        "legal_instrument_ref": "Decision KZ-UZ 2026/1",
        "document_hash": DOC,
    }


def epcis_document() -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-24T09:00:00+05:00",
        "epcisBody": {
            "eventList": [
                {
                    "type": "ObjectEvent",
                    "eventTime": f"2026-11-24T0{i}:00:00.000+05:00",
                    "eventTimeZoneOffset": "+05:00",
                    "epcList": ["urn:epc:id:sscc:4870001.0000000042"],
                    "action": "OBSERVE",
                    "bizStep": f"urn:epcglobal:cbv:bizstep:{step}",
                    "disposition": "https://ref.gs1.org/cbv/Disp-in_progress",
                    "readPoint": {"id": "urn:epc:id:sgln:4870001.00001.0"},
                    "bizTransactionList": [
                        {"type": "urn:wco:ucr", "bizTransaction": f"urn:wco:ucr:{REF}"},
                        {"type": "po", "bizTransaction": "urn:epc:id:gdti:4870001.00001.77"},
                    ],
                    "sensorElementList": [
                        {"sensorReport": [{"type": "Temperature", "value": 21.5, "uom": "CEL"}]}
                    ],
                }
                for i, step in enumerate(STEPS)
            ]
        },
    }


@pytest.fixture(scope="module")
def story(node_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A KZ AEO certificate (AEOF), the MRA proposed and signed by both parties."""
    files = tmp_path_factory.mktemp("files")
    record = files / "aeo.json"
    record.write_text(json.dumps(aeo_record("KZ-AEO-2026-000001")))
    where = ("--dir", node_dir)
    ok_json("aeo", "issue", *where, "--identity", "kz-customs-officer", "--record", record)
    proposal = files / "mra.json"
    proposal.write_text(json.dumps(mra_proposal()))
    proposed = ok_json(
        "mra", "propose", *where, "--identity", "uz-customs-admin", "--file", proposal
    )
    assert proposed["payload"]["state"] == "negotiating"
    ok_json("mra", "sign", MRA, *where, "--identity", "uz-customs-admin")
    signed = ok_json(
        "mra",
        "sign",
        MRA,
        *where,
        "--identity",
        "kz-customs-admin",
        "--legal-instrument-ref",
        "Decision KZ-UZ 2026/1",
        "--document-hash",
        DOC,
    )
    assert signed["payload"]["state"] == "in_force"
    return node_dir


def test_mra_show_list_and_refusals(story: Path, tmp_path: Path) -> None:
    where = ("--dir", story)
    doc = ok_json("mra", "show", MRA, *where)
    assert doc["state_now"] == "in_force" and doc["parties"] == ["KZ-CUSTOMS", "UZ-CUSTOMS"]
    assert [s["action"] for s in doc["steps"]] == ["ProposeMra", "SignMra", "SignMra"]
    assert ok_json("mra", "show", MRA, *where, "--at", iso(-7200))["state"] == "not_proposed"
    listed = ok_json("mra", "list", *where, "--party", "UZ-CUSTOMS", "--state", "in_force")
    assert [m["mra_id"] for m in listed["items"]] == [MRA]
    assert ok_json("mra", "list", *where, "--party", "KG-CUSTOMS")["items"] == []
    code, out, err = caravan("mra", "show", MRA, *where)
    assert code == 0 and "in_force" in out and "SignMra" in out, err

    # KG is no party; an officer is no admin; a wrong act is a conflict
    code, _out, err = caravan(
        "mra",
        "suspend",
        MRA,
        *where,
        "--identity",
        "kg-customs-admin",
        "--reason",
        "x",
        "--legal-instrument-ref",
        "KG note",
        "--document-hash",
        DOC,
    )
    assert code == 4 and one_line(err) == (
        f"error: refused (403 FORBIDDEN): KG-CUSTOMS is not a party to MRA {MRA}"
    )
    other = tmp_path / "other.pdf"
    other.write_bytes(b"another text")
    code, _out, err = caravan(
        "mra",
        "sign",
        MRA,
        *where,
        "--identity",
        "kz-customs-admin",
        "--document",
        other,
        "--legal-instrument-ref",
        "Decision KZ-UZ 2026/1",
    )
    assert code == 4 and "409" in one_line(err)
    code, _out, err = caravan(
        "mra", "suspend", MRA, *where, "--identity", "kz-customs-admin", "--reason", "x"
    )
    assert code == 3 and "--legal-instrument-ref" in one_line(err)


def test_recognition_yes_and_no(story: Path) -> None:
    where = ("--dir", story)
    yes = ok_json(
        "recognition", "check", *where, "--aeo-id", "KZ-AEO-2026-000001", "--country", "UZ"
    )
    assert yes["recognised"] is True
    assert yes["evidence"]["aeo"]["version"] == 1 and yes["evidence"]["mras"][0]["mra_id"] == MRA
    code, out, _err = caravan(
        "recognition", "check", *where, "--aeo-id", "KZ-AEO-2026-000001", "--country", "uz"
    )
    assert code == 0 and "YES" in out and f"MRA {MRA} is in force" in out
    code, out, _err = caravan(
        "recognition", "check", *where, "--aeo-id", "KZ-AEO-2026-000001", "--country", "KG"
    )
    assert code == 1 and "NO" in out and "no MRA between KZ-CUSTOMS and KG-CUSTOMS" in out
    code, out, _err = caravan(
        "recognition",
        "check",
        *where,
        "--aeo-id",
        "KZ-AEO-2026-000001",
        "--country",
        "UZ",
        "--at",
        iso(-7200),
        "--json",
    )
    assert code == 1 and json.loads(out)["recognised"] is False
    code, _out, err = caravan(
        "recognition",
        "check",
        *where,
        "--aeo-id",
        "KZ-AEO-2026-000001",
        "--country",
        "UZ",
        "--at",
        "yesterday",
    )
    assert code == 3 and "not an RFC 3339 timestamp" in one_line(err)


def test_mra_suspend_resume_terminate(story: Path, tmp_path: Path) -> None:
    where = ("--dir", story)
    act = tmp_path / "act.pdf"
    act.write_bytes(b"Decision KZ 2026/7 to suspend")
    step = ("--legal-instrument-ref", "Decision KZ 2026/7", "--document", act)
    suspended = ok_json(
        "mra", "suspend", MRA, *where, "--identity", "kz-customs-admin", "--reason", "review", *step
    )
    assert suspended["payload"]["state"] == "suspended"
    code, _out, _err = caravan(
        "recognition", "check", *where, "--aeo-id", "KZ-AEO-2026-000001", "--country", "UZ"
    )
    assert code == 1
    # only the suspending party resumes
    code, _out, err = caravan("mra", "resume", MRA, *where, "--identity", "uz-customs-admin", *step)
    assert code == 4 and "403" in one_line(err)
    resumed = ok_json("mra", "resume", MRA, *where, "--identity", "kz-customs-admin", *step)
    assert resumed["payload"]["state"] == "in_force"
    doc = ok_json("mra", "show", MRA, *where)
    assert doc["steps"][-1]["document_hash"] == hashlib.sha256(act.read_bytes()).hexdigest()


def test_trace_anchor_trail_verify(story: Path, tmp_path: Path) -> None:
    where = ("--dir", story)
    accredit_operator(story, "KZ-KHORGOS")
    document = epcis_document()
    events = document["epcisBody"]["eventList"]
    epcis = tmp_path / "events.jsonld"
    epcis.write_text(json.dumps(document))

    # the CBV 2.0 hash (GS1's reference code): recordTime and eventID are not hashed, a
    # changed bizStep is another event, and an eventID that is a different hash is refused
    context = document["@context"]
    computed = epcis_event_hash(events[0], context)
    assert computed.startswith("ni:///sha-256;") and computed.endswith("?ver=CBV2.0")
    assert epcis_event_hash({**events[0], "recordTime": "2026-11-25T00:00:00Z"}, context) == (
        computed
    )
    assert epcis_event_hash({**events[0], "eventID": computed}, context) == computed
    moved = {**events[0], "bizStep": "https://ref.gs1.org/cbv/BizStep-departing"}
    assert epcis_event_hash(moved, context) != computed
    with pytest.raises(NodeError, match=r"is not the event's CBV 2\.0 hash"):
        epcis_event_hash({**events[0], "eventID": f"ni:///sha-256;{'ab' * 32}?ver=CBV2.0"})
    with pytest.raises(NodeError, match="is not fetched"):
        epcis_event_hash(events[0], "https://example.org/other-context.jsonld")

    # an operator of another zone, and an officer, are refused; nothing is anchored
    code, _out, err = caravan(
        "trace",
        "anchor",
        epcis,
        "--sez",
        "KZ-KHORGOS",
        *where,
        "--identity",
        "kz-customs-officer",
        "--aeo-id",
        "KZ-AEO-2026-000001",
    )
    assert code == 4 and "403" in one_line(err)

    anchored = ok_json(
        "trace",
        "anchor",
        epcis,
        "--sez",
        "KZ-KHORGOS",
        *where,
        "--identity",
        "kz-khorgos",
        "--aeo-id",
        "KZ-AEO-2026-000001",
        "--batch-size",
        "3",
    )
    assert anchored["anchored"] == 5 and [b["size"] for b in anchored["batches"]] == [3, 2]
    proofs = [p for b in anchored["batches"] for p in b["proofs"]]
    assert [p["seq"] for p in proofs] == [1, 2, 3, 4, 5]
    assert proofs[0]["event_hash"] == computed

    trail = ok_json("trace", "trail", REF, *where)
    assert [e["biz_step"] for e in trail] == STEPS
    assert trail[0]["disposition"] == "in_progress"
    assert trail[0]["event_time"] == "2026-11-23T19:00:00Z"
    assert trail[0]["location"] == "urn:epc:id:sgln:4870001.00001.0"
    code, out, _err = caravan("trace", "trail", REF, *where)
    assert code == 0 and "inspecting" in out
    assert ok_json("trace", "verify", REF, *where) == {
        "consignment_ref": REF,
        "ok": True,
        "events": 5,
        "problems": [],
        "corrections": [],
    }
    code, out, _err = caravan("trace", "verify", REF, *where)
    assert code == 0 and "OK, 5 event(s)" in out

    # the same document again: the contract refuses the duplicate hashes (409)
    code, _out, err = caravan(
        "trace", "anchor", epcis, "--sez", "KZ-KHORGOS", *where, "--identity", "kz-khorgos"
    )
    assert code == 4 and "409" in one_line(err)
    # unusable input: nothing is submitted
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps([{**events[0], "bizTransactionList": []}]))
    code, _out, err = caravan(
        "trace", "anchor", broken, "--sez", "KZ-KHORGOS", *where, "--identity", "kz-khorgos"
    )
    assert code == 3 and one_line(err).startswith("error: event 1: the event names no consignment")
    code, _out, err = caravan("trace", "verify", "26KZ-UNKNOWN", *where)
    assert code == 3 and "no anchored events" in one_line(err)

    # a copy of the node whose stored trail was edited: the trail no longer verifies
    copy = tmp_path / "copy"
    shutil.copytree(story, copy)
    key = f"\x00trail\x00{REF}\x00{2:012d}\x00".encode()
    with sqlite3.connect(copy / "data" / "ledger.db") as db:
        ((vid, value),) = db.execute(
            "SELECT vid, value FROM vals WHERE key = ? ORDER BY vid DESC LIMIT 1", (key,)
        ).fetchall()
        forged = value.replace(b'"inspecting"', b'"storing"')
        db.execute("UPDATE vals SET value = ? WHERE vid = ?", (forged, vid))
        # and the key-ordered copy that trails are read from (node/embedded/store.py)
        db.execute("UPDATE cur SET value = ? WHERE key = ?", (forged, key))
    code, _out, err = caravan("trace", "verify", REF, "--dir", copy)
    assert code == 1 and "BROKEN" in err and "Merkle inclusion proof fails" in err
    code, out, _err = caravan("trace", "verify", REF, "--dir", copy, "--json")
    assert code == 1 and json.loads(out)["ok"] is False


def test_mra_terminate(story: Path) -> None:
    where = ("--dir", story, "--identity", "uz-customs-admin")
    step = ("--legal-instrument-ref", "Note UZ 2026/9", "--document-hash", DOC)
    done = ok_json("mra", "terminate", MRA, *where, "--reason", "denounced", *step)
    assert done["payload"]["state"] == "terminated"
    code, _out, err = caravan("mra", "resume", MRA, *where, *step)
    assert code == 4 and "409" in one_line(err)

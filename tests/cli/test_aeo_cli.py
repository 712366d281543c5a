"""`caravan aeo …` against a node directory made by `caravan node init`: sealed writes by
the issuing administration, refusals (exit 4, one line), redaction, the status lifecycle
and a 2,000-row register import with bad rows reported row by row."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from tests.cli.conftest import aeo_record, caravan, iso, ok_json, one_line

OFFICER = ("--identity", "kz-customs-officer")


def write(path: Path, value: object) -> Path:
    path.write_text(json.dumps(value))
    return path


def test_issue_show_and_redaction(node_dir: Path, tmp_path: Path) -> None:
    record = aeo_record("KZ-AEO-2026-000001")
    receipt = ok_json(
        "aeo", "issue", "--dir", node_dir, *OFFICER, "--record", write(tmp_path / "r.json", record)
    )
    assert receipt["code"] == "VALID" and receipt["status"] == 200
    assert receipt["payload"] == {
        "aeo_id": "KZ-AEO-2026-000001",
        "version": 1,
        "status": "valid",
        "tx_id": receipt["tx_id"],
    }
    assert receipt["event"]["payload"]["entries"][0]["type"] == "AeoIssued"

    # the issuer sees the holder's TIN and address; an anonymous reader and KG do not
    mine = ok_json("aeo", "show", "KZ-AEO-2026-000001", "--dir", node_dir, *OFFICER)
    assert mine["record"] == record and "redacted" not in mine
    assert mine["status_now"] == "valid"
    for reader in ((), ("--identity", "kg-customs-officer")):
        theirs = ok_json("aeo", "show", "KZ-AEO-2026-000001", "--dir", node_dir, *reader)
        assert "tin" not in theirs["record"]["holder"]
        assert theirs["redacted"] == ["record.holder.tin", "record.holder.address"]
    code, out, err = caravan("aeo", "show", "KZ-AEO-2026-000001", "--dir", node_dir)
    assert code == 0 and "Khorgos Logistics LLP" in out and "(redacted)" in out, err

    listed = ok_json("aeo", "list", "--dir", node_dir, "--country", "KZ", *OFFICER)
    assert [i["aeo_id"] for i in listed["items"]] == ["KZ-AEO-2026-000001"]
    assert listed["items"][0]["holder_tin"] == "KZ123456789012"
    anonymous = ok_json("aeo", "list", "--dir", node_dir, "--holder", "khorgos")
    assert anonymous["items"][0]["holder_tin"] is None


def test_refusals_are_one_line_exit_4(node_dir: Path, tmp_path: Path) -> None:
    record = write(tmp_path / "r.json", aeo_record("KZ-AEO-2026-000002"))
    code, _out, err = caravan(
        "aeo", "issue", "--dir", node_dir, "--identity", "uz-customs-officer", "--record", record
    )
    assert code == 4
    assert one_line(err) == (
        "error: refused (403 FORBIDDEN): UZ-CUSTOMS (UZ) may not issue AEO certificates of KZ"
    )
    # issued once; the second time is a conflict with the ledger
    assert caravan("aeo", "issue", "--dir", node_dir, *OFFICER, "--record", record)[0] == 0
    code, _out, err = caravan("aeo", "issue", "--dir", node_dir, *OFFICER, "--record", record)
    assert code == 4 and "409 CONFLICT" in one_line(err) and "already exists" in err


def test_input_errors_exit_3(node_dir: Path, tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.json", aeo_record("KZ-AEO-2026-000003", aeo_type="AEOX"))
    cases = [
        (("aeo", "issue", "--dir", node_dir, *OFFICER, "--record", bad), "record.aeo_type"),
        (("aeo", "issue", "--dir", node_dir, *OFFICER, "--record", tmp_path / "no"), "no such"),
        (("aeo", "issue", "--dir", node_dir, "--record", bad), "--identity"),
        (("aeo", "show", "KZ-AEO-2026-000001"), "--dir DIR"),
        (("aeo", "show", "KZ-AEO-2026-999999", "--dir", node_dir), "not found"),
        (("aeo", "show", "X", "--dir", node_dir, "--identity", "nobody"), "nobody"),
        (("aeo", "show", "X", "--node", "ftp://example"), "--node"),
        (("aeo", "show", "X", "--node", "http://127.0.0.1:9"), "no answer from the node"),
    ]
    for args, words in cases:
        code, _out, err = caravan(*args)
        assert code == 3, (args, err)
        assert words in one_line(err), (args, err)


def test_status_lifecycle(node_dir: Path, tmp_path: Path) -> None:
    aeo_id = "KZ-AEO-2026-000010"
    assert (
        caravan(
            "aeo",
            "issue",
            "--dir",
            node_dir,
            *OFFICER,
            "--record",
            write(tmp_path / "r.json", aeo_record(aeo_id)),
        )[0]
        == 0
    )
    where = ("--dir", node_dir, *OFFICER)
    suspended = ok_json("aeo", "suspend", aeo_id, *where, "--reason", "audit findings")
    assert suspended["payload"]["status"] == "suspended"
    # KG may not touch a KZ certificate: it only sees the redacted record
    code, _out, err = caravan(
        "aeo", "reinstate", aeo_id, "--dir", node_dir, "--identity", "kg-customs-officer"
    )
    assert code == 3 and "redacted" in one_line(err)
    assert ok_json("aeo", "reinstate", aeo_id, *where)["payload"]["status"] == "valid"
    amended = aeo_record(aeo_id, aeo_type="AEOS")
    amended["status_effective_at"] = ok_json("aeo", "show", aeo_id, *where)["record"][
        "status_effective_at"
    ]
    receipt = ok_json("aeo", "amend", *where, "--record", write(tmp_path / "a.json", amended))
    assert receipt["payload"]["version"] == 4
    assert ok_json("aeo", "revoke", aeo_id, *where, "--reason", "fraud")["payload"]["status"] == (
        "revoked"
    )
    code, _out, err = caravan("aeo", "reinstate", aeo_id, *where)
    assert code == 4 and "it is revoked" in one_line(err)
    history = ok_json("aeo", "show", aeo_id, *where, "--history")
    assert [(v["action"], v["record"]["status"]) for v in history] == [
        ("IssueAeo", "valid"),
        ("SuspendAeo", "suspended"),
        ("ReinstateAeo", "valid"),
        ("AmendAeo", "valid"),
        ("RevokeAeo", "revoked"),
    ]
    assert history[1]["record"]["status_reason"] == "audit findings"
    before = ok_json("aeo", "show", aeo_id, *where, "--at", iso(-3600))
    assert before["status"] == "valid" and before["version"] == 1
    code, out, _err = caravan("aeo", "show", aeo_id, *where, "--history")
    assert code == 0 and "RevokeAeo" in out


COLUMNS = [
    "aeo_id",
    "holder_tin",
    "holder_name",
    "holder_street",
    "holder_city",
    "holder_postcode",
    "holder_country",
    "aeo_type",
    "supply_chain_roles",
    "validated_at",
    "valid_until",
    "mra_sharing_consent",
]


def register_rows(n: int) -> list[list[str]]:
    return [
        [
            f"KZ-AEO-REG-{i:06d}",
            f"KZ{i:012d}",
            f"Trader {i} LLP",
            f"{i} Abay avenue",
            "Almaty",
            "050000",
            "KZ",
            ("AEOC", "AEOS", "AEOF")[i % 3],
            "importer;exporter",
            iso(-86400),
            iso(700 * 86400),
            "true",
        ]
        for i in range(n)
    ]


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(COLUMNS)
        out.writerows(rows)
    return path


def test_import_a_register_of_2000_rows(node_dir: Path, tmp_path: Path) -> None:
    # on the ledger before the import (issued here: tests of a module may run on
    # different xdist workers, each with its own node directory)
    existing = write(tmp_path / "existing.json", aeo_record("KZ-AEO-2026-000999"))
    assert caravan("aeo", "issue", "--dir", node_dir, *OFFICER, "--record", existing)[0] == 0
    rows = register_rows(2000)
    rows[9][7] = "AEOX"  # row 10: not an AEO type
    rows[99][11] = "maybe"  # row 100: consent is not a boolean
    rows[499][0] = rows[498][0]  # row 500: the same certificate twice in the file
    rows[999][10] = iso(-2 * 86400)  # row 1000: valid_until before validated_at
    rows[1499][8] = "importer;smuggler"  # row 1500: not a supply-chain role
    rows[1999][0] = "KZ-AEO-2026-000999"  # row 2000: already on the ledger
    register = write_csv(tmp_path / "register.csv", rows)

    # --atomic: one invalid row refuses the file, nothing is submitted
    code, _out, err = caravan("aeo", "import", register, "--dir", node_dir, *OFFICER, "--atomic")
    assert code == 3 and "5 of 2000 row(s) invalid (first: row 10:" in one_line(err)
    assert ok_json("aeo", "list", "--dir", node_dir, "--holder", "Trader")["items"] == []

    report_file = tmp_path / "report.json"
    code, out, err = caravan(
        "aeo", "import", register, "--dir", node_dir, *OFFICER, "--report", report_file, "--json"
    )
    assert code == 1, err
    report = json.loads(out)
    assert report == json.loads(report_file.read_text())
    assert (report["rows"], report["issued_count"], report["rejected_count"]) == (2000, 1994, 6)
    rejected = {r["row"]: r for r in report["rejected"]}
    assert sorted(rejected) == [10, 100, 500, 1000, 1500, 2000]
    assert "record.aeo_type must be one of AEOC, AEOS, AEOF" in rejected[10]["reason"]
    assert "line 101: mra_sharing_consent must be true or false" in rejected[100]["reason"]
    assert rejected[500]["reason"] == "KZ-AEO-REG-000498 is also in row 499"
    assert "valid_until must be after record.validated_at" in rejected[1000]["reason"]
    assert "supply_chain_roles" in rejected[1500]["reason"]
    assert rejected[2000]["stage"] == "ledger" and rejected[2000]["status"] == 409
    assert "already exists" in rejected[2000]["reason"]

    # the good rows are on the ledger, the bad ones are not
    assert ok_json("aeo", "show", "KZ-AEO-REG-001998", "--dir", node_dir)["status_now"] == "valid"
    code, _out, err = caravan("aeo", "show", "KZ-AEO-REG-000009", "--dir", node_dir)
    assert code == 3 and "not found" in err
    page = ok_json("aeo", "list", "--dir", node_dir, "--holder", "Trader", "--limit", "500")
    seen = len(page["items"])
    while page["next_cursor"]:
        page = ok_json(
            "aeo",
            "list",
            "--dir",
            node_dir,
            "--holder",
            "Trader",
            "--limit",
            "500",
            "--cursor",
            page["next_cursor"],
        )
        seen += len(page["items"])
    assert seen == 1994

    # the terminal report names the rejected rows
    again = write_csv(tmp_path / "again.csv", [*register_rows(3)[:1], rows[9]])
    code, out, _err = caravan("aeo", "import", again, "--dir", node_dir, *OFFICER)
    assert code == 4  # row 1 is on the ledger already, row 2 is invalid: nothing issued
    assert "0 issued" in out and "already exists" in out and "AEOC, AEOS, AEOF" in out


def test_import_json_and_file_errors(node_dir: Path, tmp_path: Path) -> None:
    records = [aeo_record(f"KZ-AEO-JSON-{i:03d}") for i in range(3)]
    for r in records:
        del r["issuer"]  # filled in from the identity
    report = ok_json(
        "aeo", "import", write(tmp_path / "r.json", records), "--dir", node_dir, *OFFICER
    )
    assert report["issued_count"] == 3 and report["rejected"] == []
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("aeo_id,colour\nKZ-AEO-1,red\n")
    for args, words in [
        ((tmp_path / "r.txt",), "--format"),
        ((bad_header,), "the CSV header lacks"),
        ((write(tmp_path / "o.json", {"a": 1}),), "JSON array"),
    ]:
        code, _out, err = caravan("aeo", "import", *args, "--dir", node_dir, *OFFICER)
        assert code == 3 and words in one_line(err), err

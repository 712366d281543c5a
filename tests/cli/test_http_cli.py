"""The same commands over HTTP: `--node URL` against the real API (api.app.create_app on
uvicorn, loopback), identities from `--identity-dir`. Writes are signed proposals; the
issuer's reads and the seal of an officer's workstation without the e-seal key are RFC
9421 signed requests; refusals keep their status (exit 4, one line)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.app import create_app
from node.node import Node
from tests.api.conftest import serve
from tests.cli.conftest import aeo_record, caravan, ok_json, one_line
from tests.cli.test_aeo_cli import register_rows, write_csv
from tests.conftest import PASSPHRASE


@pytest.fixture(scope="module")
def api(node_dir: Path) -> Iterator[str]:
    with Node.open(node_dir) as node, serve(create_app(node, trust_services=False)) as url:
        yield url


@pytest.fixture(scope="module")
def workstation(node_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An officer's own directory: its wallet entry and key, no e-seal or TSA key."""
    home = tmp_path_factory.mktemp("officer")
    (home / "wallet").mkdir()
    shutil.copy(node_dir / "wallet" / "kz-customs-officer.json", home / "wallet")
    shutil.copytree(node_dir / "pki", home / "pki")
    for key in (home / "pki" / "orgs" / "KZ-CUSTOMS" / "keys").iterdir():
        if key.name != "kz-customs-officer.key.pem":
            key.unlink()
    return home


def test_issue_read_and_refuse_over_http(api: str, node_dir: Path, tmp_path: Path) -> None:
    record = aeo_record("KZ-AEO-2026-000101")
    path = tmp_path / "r.json"
    path.write_text(json.dumps(record))
    officer = ("--node", api, "--identity-dir", node_dir, "--identity", "kz-customs-officer")
    receipt = ok_json("aeo", "issue", *officer, "--record", path)
    assert receipt["code"] == "VALID" and receipt["payload"]["version"] == 1

    # the issuer's signed read shows the TIN; an anonymous one does not
    assert ok_json("aeo", "show", "KZ-AEO-2026-000101", *officer)["record"] == record
    anonymous = ok_json("aeo", "show", "KZ-AEO-2026-000101", "--node", api)
    assert "tin" not in anonymous["record"]["holder"]
    history = ok_json("aeo", "show", "KZ-AEO-2026-000101", *officer, "--history")
    assert [v["version"] for v in history] == [1]

    code, _out, err = caravan(
        "aeo",
        "issue",
        "--node",
        api,
        "--identity-dir",
        node_dir,
        "--identity",
        "uz-customs-officer",
        "--record",
        path,
    )
    assert code == 4
    assert one_line(err) == (
        "error: refused (403 FORBIDDEN): UZ-CUSTOMS (UZ) may not issue AEO certificates of KZ"
    )
    suspended = ok_json("aeo", "suspend", "KZ-AEO-2026-000101", *officer, "--reason", "audit")
    assert suspended["payload"]["status"] == "suspended"
    code, out, _err = caravan(
        "recognition", "check", "--node", api, "--aeo-id", "KZ-AEO-2026-000101", "--country", "UZ"
    )
    assert code == 1 and "is suspended" in out
    code, _out, err = caravan("aeo", "show", "KZ-AEO-2099-000001", "--node", api)
    assert code == 3 and "not found" in one_line(err)


def test_workstation_seals_on_the_node(api: str, workstation: Path, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps(aeo_record("KZ-AEO-2026-000102")))
    env = {"CARAVAN_PASSPHRASE": PASSPHRASE.decode()}
    officer = ("--node", api, "--identity-dir", workstation, "--identity", "kz-customs-officer")
    code, out, err = caravan("aeo", "issue", *officer, "--record", path, "--json", env=env)
    assert code == 0, err
    assert json.loads(out)["code"] == "VALID"
    view = ok_json("aeo", "show", "KZ-AEO-2026-000102", "--node", api)
    assert view["sealed_by"].startswith("CN=")  # the organisation's e-seal, made by the node
    # without a passphrase source the identity cannot be used: one line, exit 3
    code, _out, err = caravan("aeo", "issue", *officer, "--record", path)
    assert code == 3 and "passphrase" in one_line(err)


def test_import_through_the_batch_endpoint(api: str, node_dir: Path, tmp_path: Path) -> None:
    rows = [[f"KZ-AEO-HTTP-{i:04d}", *row[1:]] for i, row in enumerate(register_rows(60))]
    rows[6][7] = "AEOX"
    register = write_csv(tmp_path / "register.csv", rows)
    officer = ("--node", api, "--identity-dir", node_dir, "--identity", "kz-customs-officer")
    code, out, err = caravan("aeo", "import", register, *officer, "--batch-size", "25", "--json")
    assert code == 1, err
    report = json.loads(out)
    assert (report["issued_count"], [r["row"] for r in report["rejected"]]) == (59, [7])
    page = ok_json("aeo", "list", "--node", api, "--holder", "trader", "--limit", "100")
    assert len(page["items"]) == 59
    mine = ok_json("aeo", "list", *officer, "--tin", "KZ000000000001")
    assert [i["aeo_id"] for i in mine["items"]] == ["KZ-AEO-HTTP-0001"]

"""A node directory made by `caravan node init` (KZ, UZ, KG customs) for the user-facing
commands, and a `caravan` runner that returns (exit code, stdout, stderr)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from cli._common import console, err_console
from cli.main import app
from tests.conftest import PASSPHRASE

ENV = {"COLUMNS": "200", "CARAVAN_PASSPHRASE": ""}
# rich fixes a console's width when it is created if COLUMNS is set then, and pytest-xdist
# workers start with COLUMNS=80: tables would wrap the messages the tests look for
console.width = err_console.width = 200
ORGS = (
    "KZ-CUSTOMS:KZ:State Revenue Committee",
    "UZ-CUSTOMS:UZ:Customs Committee",
    "KG-CUSTOMS:KG:State Customs Service",
)


def caravan(*args: str | Path, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, [str(a) for a in args], env={**ENV, **(env or {})})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def ok_json(*args: str | Path) -> Any:
    code, out, err = caravan(*args, "--json")
    assert code == 0, err
    return json.loads(out)


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def iso(offset_s: int = 0) -> str:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=offset_s)
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def aeo_record(aeo_id: str, **changes: Any) -> dict[str, Any]:
    cc = aeo_id[:2]
    record: dict[str, Any] = {
        "aeo_id": aeo_id,
        "holder": {
            "tin": f"{cc}123456789012",
            "name": "Khorgos Logistics LLP",
            "address": {
                "street": "1 Dostyk",
                "city": "Zharkent",
                "postcode": "041300",
                "country": cc,
            },
        },
        "issuer": {"administration": f"{cc}-CUSTOMS", "country": cc},
        "aeo_type": "AEOF",
        "supply_chain_roles": ["exporter", "carrier"],
        "status": "valid",
        "status_reason": None,
        "status_effective_at": iso(-86400),
        "validated_at": iso(-86400),
        "valid_until": iso(3 * 365 * 86400),
        "next_reassessment": iso(365 * 86400),
        "mra_sharing_consent": True,
    }
    record.update(changes)
    return record


@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    base = tmp_path_factory.mktemp("caravan")
    secret = base / "pass"
    secret.write_bytes(PASSPHRASE + b"\n")
    directory = base / "node"
    args: list[str | Path] = ["node", "init", "--dir", directory, "--passphrase-file", secret]
    for org in ORGS:
        args += ["--org", org]
    code, _out, err = caravan(*args)
    assert code == 0, err
    yield directory


def accredit_operator(
    node_dir: Path, sez: str, *, name: str = "kz-khorgos", zone_name: str = "Khorgos - Eastern Gate"
) -> Any:
    """Add the SEZ operator identity ``name`` to the node's wallet (KZ customs' PKI) and
    have KZ's admin accredit it for ``sez`` with ``caravan sez register``; its JSON."""
    where = ("--dir", node_dir)
    code, _out, err = caravan(
        "node", "identity", "add", *where, "--org", "KZ-CUSTOMS", "--name", name,
        "--role", "sez-operator", "--sez", sez,
    )  # fmt: skip
    assert code == 0, err
    return ok_json(
        "sez", "register", sez, *where, "--identity", "kz-customs-admin",
        "--name", zone_name, "--operator", name,
    )  # fmt: skip

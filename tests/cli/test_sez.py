"""`caravan sez register|show|list` against a node directory made by `caravan node init`
and over its API (`--node URL`, uvicorn on loopback): KZ's admin accredits the Khorgos
operator; another country's administration, an officer, a second registration of the same
operator and an identity that is no operator of the zone are refused; an unknown zone is an
input error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from api.app import create_app
from node.node import Node
from node.wallet import Wallet
from tests.api.conftest import serve
from tests.cli.conftest import caravan, ok_json, one_line

SEZ = "KZ-KHORGOS"
NAME = "Khorgos - Eastern Gate"


def add_identity(directory: Path, name: str, *role: str, org: str = "KZ-CUSTOMS") -> str:
    """A new wallet identity; its certificate's subject (RFC 4514)."""
    code, _out, err = caravan(
        "node", "identity", "add", "--dir", directory, "--org", org, "--name", name, *role
    )
    assert code == 0, err
    return Wallet(directory / "wallet").get(name).subject


@pytest.fixture(scope="module")
def operators(node_dir: Path) -> dict[str, str]:
    return {
        name: add_identity(node_dir, name, "--role", "sez-operator", "--sez", zone)
        for name, zone in (
            ("kz-khorgos", SEZ),
            ("kz-khorgos-2", SEZ),
            ("kz-khorgos-3", SEZ),
            ("kz-aktau", "KZ-AKTAU"),
        )
    }


@pytest.fixture(scope="module")
def api(node_dir: Path, operators: dict[str, str]) -> Iterator[str]:
    with Node.open(node_dir) as node, serve(create_app(node, trust_services=False)) as url:
        yield url


def register_show_list(node_dir: Path, operators: dict[str, str], tmp_path: Path) -> None:
    admin = ("--dir", node_dir, "--identity", "kz-customs-admin")
    # a zone not registered yet needs its name
    code, _out, err = caravan("sez", "register", SEZ, *admin, "--operator", "kz-khorgos")
    assert code == 3
    assert one_line(err) == f"error: SEZ {SEZ} is not registered yet: give its --name"
    code, _out, err = caravan("sez", "show", SEZ, "--dir", node_dir)
    assert code == 3 and one_line(err) == f"error: SEZ {SEZ} is not registered"

    receipt = ok_json("sez", "register", SEZ, *admin, "--name", NAME, "--operator", "kz-khorgos")
    assert receipt["code"] == "VALID"
    zone = receipt["payload"]
    assert (zone["sez"], zone["country"], zone["msp_id"], zone["name"]) == (
        SEZ,
        "KZ",
        "KZ-CUSTOMS",
        NAME,
    )
    assert [op["subject"] for op in zone["operators"]] == [operators["kz-khorgos"]]
    assert receipt["event"]["payload"]["entries"] == [
        {"type": "SezOperatorRegistered", "sez": SEZ, "subject": operators["kz-khorgos"]}
    ]

    # a second operator from its certificate file, the zone's name from the ledger
    cert = tmp_path / "op2.pem"
    entry = Wallet(node_dir / "wallet").get("kz-khorgos-2")
    cert.write_bytes(entry.certificate.public_bytes(serialization.Encoding.PEM))
    code, out, err = caravan("sez", "register", SEZ, *admin, "--operator-cert", cert)
    assert code == 0, err
    assert f"as an operator of {SEZ} ({NAME}, accredited by KZ-CUSTOMS): 2 operator(s)" in out

    shown = ok_json("sez", "show", SEZ, "--dir", node_dir)
    assert [op["subject"] for op in shown["operators"]] == [
        operators["kz-khorgos"],
        operators["kz-khorgos-2"],
    ]
    assert shown["operators"][0]["registered"]["by"]["msp_id"] == "KZ-CUSTOMS"
    code, out, _err = caravan("sez", "show", SEZ, "--dir", node_dir)
    assert code == 0 and NAME in out and "2 operator(s)" in out
    assert operators["kz-khorgos-2"] in out

    listed = ok_json("sez", "list", "--dir", node_dir)
    assert [(z["sez"], z["operators"], z["msp_id"]) for z in listed["items"]] == [
        (SEZ, 2, "KZ-CUSTOMS")
    ]
    assert listed["next_cursor"] is None
    code, out, _err = caravan("sez", "list", "--dir", node_dir)
    assert code == 0 and SEZ in out and "1 zone(s)" in out


def register_refusals(node_dir: Path, operators: dict[str, str], tmp_path: Path) -> None:
    where = ("--dir", node_dir)
    op3 = ("--operator", "kz-khorgos-3", "--name", NAME)
    # another country's administration: the contract's reason, exit 4
    code, _out, err = caravan(
        "sez", "register", SEZ, *where, "--identity", "uz-customs-admin", *op3
    )
    assert code == 4
    assert one_line(err) == (
        f"error: refused (403 FORBIDDEN): UZ-CUSTOMS (UZ) may not accredit operators of {SEZ}"
    )
    # an officer is no admin
    code, _out, err = caravan(
        "sez", "register", SEZ, *where, "--identity", "kz-customs-officer", *op3
    )
    assert code == 4 and one_line(err).startswith("error: refused (403 FORBIDDEN): ")
    # the same operator twice
    code, _out, err = caravan(
        "sez", "register", SEZ, *where, "--identity", "kz-customs-admin", "--operator", "kz-khorgos"
    )
    assert code == 4 and one_line(err) == (
        f"error: refused (409 CONFLICT): {operators['kz-khorgos']} is already an operator of {SEZ}"
    )
    # identities that are no operator of the zone: nothing submitted
    admin = (*where, "--identity", "kz-customs-admin")
    code, _out, err = caravan("sez", "register", SEZ, *admin, "--operator", "kz-aktau")
    assert code == 3 and one_line(err) == (
        f"error: identity kz-aktau is not an operator identity of {SEZ} (role sez-operator, "
        f"zone KZ-AKTAU): issue one with 'caravan node identity add --role sez-operator "
        f"--sez {SEZ}'"
    )
    code, _out, err = caravan("sez", "register", SEZ, *admin, "--operator", "kz-customs-officer")
    assert code == 3 and "(role officer)" in one_line(err)
    code, _out, err = caravan("sez", "register", SEZ, *admin, "--operator", "nobody")
    assert code == 3 and "no identity 'nobody'" in one_line(err)
    not_cert = tmp_path / "x.pem"
    not_cert.write_text("hello")
    code, _out, err = caravan("sez", "register", SEZ, *admin, "--operator-cert", not_cert)
    assert (
        code == 3 and one_line(err) == f"error: {not_cert} is not an X.509 certificate (PEM or DER)"
    )
    # one way to name the operator, a well-formed zone code
    code, _out, err = caravan(
        "sez", "register", SEZ, *admin, "--operator", "kz-khorgos-3", "--subject", "CN=x"
    )
    assert code == 3 and "one of --operator, --operator-cert or --subject" in one_line(err)
    code, _out, err = caravan(
        "sez", "register", "khorgos", *admin, "--subject", "CN=x", "--name", "K"
    )
    assert code == 3 and "sez" in one_line(err)
    code, _out, err = caravan("sez", "register", SEZ, "--dir", node_dir, "--subject", "CN=x")
    assert code == 3 and "--identity" in one_line(err)
    shown = ok_json("sez", "show", SEZ, *where)
    assert len(shown["operators"]) == 2


def over_http(api: str, node_dir: Path, operators: dict[str, str]) -> None:
    admin = ("--node", api, "--identity-dir", node_dir, "--identity", "kz-customs-admin")
    receipt = ok_json("sez", "register", SEZ, *admin, "--subject", operators["kz-khorgos-3"])
    assert receipt["code"] == "VALID" and len(receipt["payload"]["operators"]) == 3
    shown = ok_json("sez", "show", SEZ, "--node", api)
    assert shown["operators"][-1]["subject"] == operators["kz-khorgos-3"]
    # the serving node is the ledger's only writer: a write through --dir is one line
    local = ("--dir", node_dir, "--identity", "kz-customs-admin")
    code, _out, err = caravan("sez", "register", SEZ, *local, "--operator", "kz-khorgos-2")
    assert code == 4 and "being written by another process (a running node?)" in one_line(err)
    assert ok_json("sez", "show", SEZ, "--dir", node_dir) == shown  # reads need no lock

    uz = ("--node", api, "--identity-dir", node_dir, "--identity", "uz-customs-admin")
    code, _out, err = caravan(
        "sez", "register", "KZ-AKTAU", *uz, "--name", "Aktau", "--operator", "kz-aktau"
    )
    assert code == 4 and one_line(err) == (
        "error: refused (403 FORBIDDEN): UZ-CUSTOMS (UZ) may not accredit operators of KZ-AKTAU"
    )
    code, _out, err = caravan("sez", "show", "KZ-AKTAU", "--node", api)
    assert code == 3 and one_line(err) == "error: SEZ KZ-AKTAU is not registered"
    code, _out, err = caravan("sez", "show", "not a zone", "--node", api)
    assert code == 3 and len(one_line(err)) > len("error: ")

    # the list comes from the node's index (GET /v1/sez), a write just made included
    admin_kz = ("--node", api, "--identity-dir", node_dir, "--identity", "kz-customs-admin")
    receipt = ok_json(
        "sez", "register", "KZ-AKTAU", *admin_kz, "--name", "Aktau", "--operator", "kz-aktau"
    )
    assert receipt["code"] == "VALID"
    listed = ok_json("sez", "list", "--node", api)
    assert [(z["sez"], z["name"], z["operators"]) for z in listed["items"]] == [
        ("KZ-AKTAU", "Aktau", 1),
        (SEZ, NAME, 3),
    ]
    assert listed["items"][0]["tx_id"] == receipt["tx_id"]
    assert listed["next_cursor"] is None
    # page by page, as with --dir
    first = ok_json("sez", "list", "--node", api, "--limit", "1")
    assert [z["sez"] for z in first["items"]] == ["KZ-AKTAU"] and first["next_cursor"]
    rest = ok_json("sez", "list", "--node", api, "--limit", "1", "--cursor", first["next_cursor"])
    assert [z["sez"] for z in rest["items"]] == [SEZ] and rest["next_cursor"] is None
    assert ok_json("sez", "list", "--dir", node_dir, "--limit", "1") == first
    code, out, err = caravan("sez", "list", "--node", api, "--limit", "1")
    assert code == 0, err
    assert "1 zone(s)" in out and "KZ-AKTAU" in out and f"--cursor {first['next_cursor']}" in out
    code, _out, err = caravan("sez", "list", "--node", api, "--cursor", "nonsense")
    assert code == 3 and one_line(err) == "error: cursor is not one this list returned"


def test_sez_story(
    request: pytest.FixtureRequest, node_dir: Path, operators: dict[str, str], tmp_path: Path
) -> None:
    """One story on one node directory, in order: each step needs the ledger the
    previous one left (a module-scoped directory split across xdist workers would not
    be shared, so the steps are one test). The API opens the node only after the
    steps through ``--dir``: one process writes a ledger at a time."""
    register_show_list(node_dir, operators, tmp_path)
    register_refusals(node_dir, operators, tmp_path)
    over_http(request.getfixturevalue("api"), node_dir, operators)

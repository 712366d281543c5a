"""node.yaml validation (one precise line per bad key), the wallet, and Node.open's refusals."""

from __future__ import annotations

import copy
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.serialization import Encoding

from node.config import CONFIG_FILE, ConfigError, NodeConfig, load_config, save_config
from node.node import (
    InitError,
    KeyStoreLocked,
    Node,
    init_node,
    parse_org_spec,
    passphrase_env,
)
from node.proposal import make_proposal, verify_signature
from node.wallet import IdentityExists, UnknownIdentity, Wallet, WalletEntry, WalletError
from tests.conftest import PASSPHRASE

VALID: dict[str, Any] = {
    "version": 1,
    "channel": "caravan",
    "listen": {"host": "127.0.0.1", "port": 8700},
    "public_base_url": "https://node.customs.kz",
    "ledger": {"backend": "embedded", "path": "data/ledger.db", "node_identity": "kz-node"},
    "index": {"url": "sqlite:///data/index.db"},
    "orgs": [{"org": "KZ-CUSTOMS", "country": "KZ", "name": "State Revenue Committee"}],
    "limits": {"max_body_bytes": 1048576},
}


def write(directory: Path, data: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else yaml.safe_dump(data)
    (directory / CONFIG_FILE).write_text(text)
    return directory


def changed(path: str, value: Any) -> dict[str, Any]:
    """VALID with ``path`` (dotted; a trailing ``-`` deletes) set to ``value``."""
    data = copy.deepcopy(VALID)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if last.endswith("-"):
        del node[last[:-1]]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


def test_a_valid_file_loads_with_paths_resolved_against_the_directory(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "n", VALID))
    assert config.directory == (tmp_path / "n").absolute()
    assert config.ledger_path == config.directory / "data" / "ledger.db"
    assert config.index_url == f"sqlite:///{config.directory}/data/index.db"
    assert config.base_url == "https://node.customs.kz"
    assert config.org_base_url("KZ-CUSTOMS") == "https://node.customs.kz/orgs/KZ-CUSTOMS"
    assert config.org("KZ-CUSTOMS").country == "KZ"
    with pytest.raises(ConfigError, match="UZ-CUSTOMS is not hosted on this node"):
        config.org("UZ-CUSTOMS")


def test_defaults_and_save_round_trip(tmp_path: Path) -> None:
    minimal = {"version": 1, "ledger": {"node_identity": "kz-node"}, "orgs": VALID["orgs"]}
    config = load_config(write(tmp_path, minimal))
    assert (config.channel, config.listen.host, config.listen.port) == (
        "caravan",
        "127.0.0.1",
        8700,
    )
    assert config.base_url == "http://127.0.0.1:8700"
    assert (config.ledger.backend, config.ledger.path) == ("embedded", "data/ledger.db")
    assert config.index.url == "sqlite:///data/index.db"
    assert config.limits.max_body_bytes == 1024 * 1024
    save_config(config, tmp_path / "copy")
    again = load_config(tmp_path / "copy")
    assert again.model_dump() == config.model_dump()
    # absolute paths and a PostgreSQL index stay as they are
    other = changed("ledger.path", "/srv/ledger.db")
    other["index"] = {"url": "postgresql://caravan@db/index"}
    config = load_config(write(tmp_path / "abs", other))
    assert config.ledger_path == Path("/srv/ledger.db")
    assert config.index_url == "postgresql://caravan@db/index"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (changed("surprise", 1), "node.yaml: unknown key surprise"),
        (changed("listen.tls", True), "node.yaml: unknown key listen.tls"),
        (changed("orgs.0.msp", "X"), "node.yaml: unknown key orgs.0.msp"),
        (changed("listen.port", 70000), "node.yaml: listen.port: must be less than or equal"),
        (changed("listen.port", 0), "node.yaml: listen.port: must be greater than or equal to 1"),
        (changed("listen.port", "8700"), "node.yaml: listen.port: must be a valid integer"),
        (changed("listen.host", "a b"), "node.yaml: listen.host: must be a host name"),
        (changed("ledger.backend", "couch"), "node.yaml: ledger.backend: must be 'embedded' or"),
        (changed("ledger.node_identity-", None), "node.yaml: missing key ledger.node_identity"),
        (changed("ledger.node_identity", "KZ Node"), "node.yaml: ledger.node_identity: must be"),
        (changed("orgs-", None), "node.yaml: missing key orgs"),
        (changed("orgs", []), "node.yaml: orgs: must not be empty"),
        (changed("orgs.0.country", "KAZ"), "node.yaml: orgs.0.country: must be an ISO 3166-1"),
        (changed("orgs.0.org", "KZ CUSTOMS"), "node.yaml: orgs.0.org: must be 2-32 of"),
        (changed("orgs.0.name", " "), "node.yaml: orgs.0.name: must not be empty"),
        (changed("orgs.0.name-", None), "node.yaml: missing key orgs.0.name"),
        (changed("version", 2), "node.yaml: version: must be 1 (got 2)"),
        (changed("version-", None), "node.yaml: missing key version"),
        (changed("channel", "no spaces"), "node.yaml: channel: must be 1-64 of"),
        (changed("public_base_url", "ftp://x"), "node.yaml: public_base_url: must be an http"),
        (changed("index.url", "mysql://x/y"), "node.yaml: index.url: must be sqlite:///PATH or"),
        (changed("limits.max_body_bytes", 1), "node.yaml: limits.max_body_bytes: must be greater"),
        (
            {**VALID, "orgs": VALID["orgs"] * 2},
            "node.yaml: orgs: org KZ-CUSTOMS appears more than once",
        ),
        ("version: 1\nledger: [", "node.yaml: not valid YAML at line"),
        ("- just\n- a list\n", "node.yaml: must be a mapping of keys"),
    ],
)
def test_each_bad_key_is_one_precise_line(tmp_path: Path, data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, data))
    text = str(caught.value)
    assert text.startswith(message), text
    assert "\n" not in text
    assert (caught.value.status, caught.value.code) == (500, "CONFIG_ERROR")


def test_a_missing_file_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"no node.yaml in .* 'caravan node init'"):
        load_config(tmp_path)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("KZ-CUSTOMS", "--org must be MSP:CC:Name"),
        ("KZ-CUSTOMS:KZ:", "--org must be MSP:CC:Name"),
        ("KZ-CUSTOMS:K1:Customs", "country must be an ISO 3166-1 alpha-2 code"),
        ("KZ CUSTOMS:KZ:Customs", "org must be 2-32 of"),
    ],
)
def test_org_specs(spec: str, message: str) -> None:
    with pytest.raises(InitError, match=message):
        parse_org_spec(spec)
    parsed = parse_org_spec("KZ-CUSTOMS:kz:State Revenue Committee: Astana")
    assert (parsed.org, parsed.country, parsed.name) == (
        "KZ-CUSTOMS",
        "KZ",
        "State Revenue Committee: Astana",
    )


# --------------------------------------------------------------------------- a real node
@pytest.fixture(scope="module")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    directory = tmp_path_factory.mktemp("cfg") / "node"
    init_node(
        directory,
        [parse_org_spec("KZ-CUSTOMS:KZ:State Revenue Committee")],
        PASSPHRASE,
        store_passphrase=True,
    )
    yield directory


def copy_of(node_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "node"
    shutil.copytree(node_dir, target)
    return target


def test_wallet_round_trip_holds_no_key_material(node_dir: Path, tmp_path: Path) -> None:
    wallet = Wallet(node_dir / "wallet")
    assert wallet.names() == ["kz-customs-admin", "kz-customs-node", "kz-customs-officer"]
    entry = wallet.get("kz-customs-officer")
    assert (entry.msp_id, entry.role, entry.sez) == ("KZ-CUSTOMS", "officer", None)
    assert entry.key.org == "KZ-CUSTOMS" and entry.key.label == "kz-customs-officer"
    # the same entry written elsewhere reads back equal
    other = Wallet(tmp_path / "w")
    other.add(entry)
    assert other.get(entry.name) == entry
    with pytest.raises(IdentityExists):
        other.add(entry)
    # no key bytes in any wallet file
    for path in (node_dir / "wallet").iterdir():
        text = path.read_text()
        assert "PRIVATE KEY" not in text and "ENCRYPTED" not in text
        assert set(json.loads(text)) == {
            "name",
            "msp_id",
            "role",
            "sez",
            "certificate",
            "chain",
            "key",
        }
    with pytest.raises(UnknownIdentity, match="no identity 'nobody'"):
        wallet.get("nobody")
    with pytest.raises(UnknownIdentity, match="not a wallet name"):
        wallet.get("../node")


def test_a_damaged_or_inconsistent_wallet_entry_is_refused(node_dir: Path, tmp_path: Path) -> None:
    wallet = Wallet(tmp_path)
    entry = Wallet(node_dir / "wallet").get("kz-customs-admin").to_json()
    cases = [
        ({**entry, "key": {"org": "KZ-CUSTOMS"}}, "key must be {org, label}"),
        ({**entry, "role": "king"}, "role must be one of"),
        ({**entry, "role": "sez-operator"}, "an sez-operator needs the zone"),
        ({**entry, "certificate": "garbage"}, "certificate must be a PEM certificate"),
        ({**entry, "private_key": "x"}, "must be an object with exactly"),
        ({**entry, "name": "someone-else"}, "names another identity"),
    ]
    for data, message in cases:
        (tmp_path / "kz-customs-admin.json").write_text(json.dumps(data))
        with pytest.raises(WalletError, match=message):
            wallet.get("kz-customs-admin")
    (tmp_path / "kz-customs-admin.json").write_text("{")
    with pytest.raises(WalletError, match="cannot be read"):
        wallet.get("kz-customs-admin")


def test_signer_uses_the_key_store_and_checks_the_key(node_dir: Path, tmp_path: Path) -> None:
    with Node.open(node_dir) as node:
        signer = node.signer("kz-customs-officer")
        signed = make_proposal(signer, "GetMembers", [], channel="caravan", timestamp=(1, 0))
        verify_signature(signed)
        assert signed.certificate == signer.certificate.public_bytes(Encoding.DER)
        # an entry pointing at another identity's key is refused, not used
        directory = copy_of(node_dir, tmp_path)
        wallet = Wallet(directory / "wallet")
        entry = wallet.get("kz-customs-officer")
        wrong = WalletEntry(
            entry.name,
            entry.msp_id,
            entry.role,
            None,
            entry.certificate,
            entry.chain,
            type(entry.key)("KZ-CUSTOMS", "kz-customs-admin"),
        )
        wallet.add(wrong, replace=True)
        with pytest.raises(WalletError, match="does not match its certificate"):
            wallet.signer("kz-customs-officer", node.pkis)
        with pytest.raises(WalletError, match="key store of KZ-CUSTOMS is not open"):
            Wallet(directory / "wallet").signer("kz-customs-admin", {})


def test_open_refuses_without_a_passphrase_or_with_a_wrong_one(
    node_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = copy_of(node_dir, tmp_path)
    assert (directory / "secrets" / "KZ-CUSTOMS.pass").stat().st_mode & 0o777 == 0o600
    (directory / "secrets" / "KZ-CUSTOMS.pass").unlink()
    monkeypatch.delenv(passphrase_env("KZ-CUSTOMS"), raising=False)
    with pytest.raises(KeyStoreLocked, match="no passphrase for the key store of KZ-CUSTOMS"):
        Node.open(directory)
    with pytest.raises(KeyStoreLocked, match="passphrase"):
        Node.open(directory, {"KZ-CUSTOMS": b"wrong"})
    monkeypatch.setenv("CARAVAN_PASSPHRASE_KZ_CUSTOMS", PASSPHRASE.decode())
    Node.open(directory).close()


def test_open_refuses_a_foreign_channel_and_fabric_without_a_peer(
    node_dir: Path, tmp_path: Path
) -> None:
    directory = copy_of(node_dir, tmp_path)
    config = load_config(directory)
    data = config.model_dump(mode="json", exclude_none=True)
    fabric = {**data, "ledger": {**data["ledger"], "backend": "fabric"}}
    with pytest.raises(ConfigError, match="backend fabric needs peer and msp_id"):
        NodeConfig.build(directory, fabric)
    data["channel"] = "other"
    save_config(NodeConfig.build(directory, data))
    with pytest.raises(ConfigError, match="channel: 'other' but the ledger is on 'caravan'"):
        Node.open(directory)


def test_init_refuses_a_non_empty_directory_and_leaves_nothing_on_failure(
    tmp_path: Path,
) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    kz = parse_org_spec("KZ-CUSTOMS:KZ:State Revenue Committee")
    with pytest.raises(InitError, match="exists and is not an empty directory"):
        init_node(tmp_path / "full", [kz], PASSPHRASE)
    with pytest.raises(InitError, match="--port: must be less than or equal to 65535"):
        init_node(tmp_path / "a", [kz], PASSPHRASE, port=70000)
    assert not (tmp_path / "a").exists()
    with pytest.raises(InitError, match="orgs: country KZ appears more than once"):
        init_node(tmp_path / "b", [kz, parse_org_spec("KZ-SEZ:KZ:Zone")], PASSPHRASE)
    # a failure half-way (after the first PKI and identities) removes what was made
    (tmp_path / "c").mkdir()

    def interrupt(message: str) -> None:
        if message == "creating the PKI of UZ-CUSTOMS":
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        init_node(
            tmp_path / "c",
            [kz, parse_org_spec("UZ-CUSTOMS:UZ:Customs Committee")],
            PASSPHRASE,
            store_passphrase=True,
            progress=interrupt,
        )
    assert (tmp_path / "c").is_dir() and not any((tmp_path / "c").iterdir())

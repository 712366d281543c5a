"""consortium.yaml: the shipped definition, and every refusal as one precise line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from node.network.consortium import Consortium, ConsortiumError, load_consortium, parse_consortium
from tests.network.conftest import CONSORTIUM, consortium_data


def test_shipped_definition_matches_the_embedded_ledger(definition: Consortium) -> None:
    # the MSP ids the embedded ledger's genesis and `caravan node init` use
    consortium = definition
    assert [a.msp_id for a in consortium.administrations] == [
        "KZ-CUSTOMS",
        "UZ-CUSTOMS",
        "KG-CUSTOMS",
    ]
    assert [a.country for a in consortium.administrations] == ["KZ", "UZ", "KG"]
    assert consortium.channel == "caravan"
    assert consortium.chaincode.name == "caravan"
    assert consortium.chaincode.endorsement_policy == "MAJORITY Endorsement"
    assert all(host == "127.0.0.1" for _, host, _ in consortium.listeners())


def _mutate(change: Any) -> dict[str, Any]:
    data = consortium_data()
    change(data)
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(colour="blue"), "consortium.yaml: unknown key colour"),
        (lambda d: d.pop("administrations"), "consortium.yaml: missing key administrations"),
        (lambda d: d.update(administrations=[]), "administrations: must not be empty"),
        (lambda d: d.update(version=2), "version: must be 1 (got 2)"),
        (
            lambda d: d.update(channel="Caravan Channel"),
            "channel: must be a Fabric channel name",
        ),
        (
            lambda d: d["administrations"][1].update(msp_id="KZ-CUSTOMS"),
            "administrations: msp_id KZ-CUSTOMS appears more than once",
        ),
        (
            lambda d: d["administrations"][0].update(msp_id="KZ CUSTOMS"),
            "administrations.0.msp_id: must be 2-32 of A-Z",
        ),
        (
            lambda d: d["administrations"][2].update(country="kg"),
            "administrations.2.country: must be an ISO 3166-1 alpha-2 code",
        ),
        (
            lambda d: d["administrations"][1]["peers"][0].update(port=70000),
            "administrations.1.peers.0.port: must be less than or equal to 65535 (got 70000)",
        ),
        (
            lambda d: d["administrations"][1]["orderer"].update(port=7050),
            "port 127.0.0.1:7050 is also used by orderer0.kz-customs",
        ),
        (
            lambda d: d["administrations"][0]["peers"][0].update(host="peer 0"),
            "administrations.0.peers.0.host: must be a host name or an IP address",
        ),
        (
            lambda d: d["administrations"][0]["peers"].append(
                dict(d["administrations"][0]["peers"][0], port=7061)
            ),
            "peer name peer0 appears more than once",
        ),
        (
            lambda d: d["chaincode"].update(endorsement_policy="OR('KZ-CUSTOMS.peer')"),
            "chaincode.endorsement_policy: must be an implicit-meta rule",
        ),
        (
            lambda d: d["orderers"].update(batch_timeout="soon"),
            "orderers.batch_timeout: must be a duration",
        ),
        (
            lambda d: d["administrations"][0].pop("orderer"),
            "missing key administrations.0.orderer",
        ),
    ],
)
def test_invalid_definitions_are_refused_with_the_key(change: Any, message: str) -> None:
    with pytest.raises(ConsortiumError) as refused:
        parse_consortium(_mutate(change))
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)
    assert refused.value.status == 400


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConsortiumError, match="no consortium definition at"):
        load_consortium(tmp_path / "absent.yaml")
    with pytest.raises(ConsortiumError, match="is a directory"):
        load_consortium(tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nchannel: [caravan\n")
    with pytest.raises(ConsortiumError, match="not valid YAML at line"):
        load_consortium(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConsortiumError, match="must be a mapping"):
        load_consortium(bad)


def test_shipped_file_is_what_the_tests_read() -> None:
    assert load_consortium(CONSORTIUM) == parse_consortium(consortium_data())

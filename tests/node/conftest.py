"""Fixtures for the embedded ledger: member signers from the real PKIs and a fresh ledger."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from node.embedded.ledger import EmbeddedLedger
from node.proposal import KeySigner, SignedProposal, make_proposal
from tests.conftest import Consortium
from tests.node.pg import PostgresNotInstalled, PostgresServer
from trust_services.pki import OrgPki
from trust_services.profiles import CertProfile

CHANNEL = "caravan"
MSP = {"KZ": "KZ-CUSTOMS", "UZ": "UZ-CUSTOMS", "KG": "KG-CUSTOMS"}
NAMES = {"KZ": "State Revenue Committee", "UZ": "Customs Committee", "KG": "Customs Service"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def member_signer(
    pki: OrgPki, label: str, role: str, sez: str | None = None, **kw: Any
) -> KeySigner:
    issued = pki.issue_with_new_key(
        CertProfile.MEMBER, label, common_name=f"{label} (test)", role=role, sez=sez, **kw
    )
    return KeySigner(pki.org, issued.certificate, [pki.certificate("issuing")], pki.key(label))


@dataclass(frozen=True)
class Signers:
    by_name: dict[str, KeySigner]
    pkis: dict[str, OrgPki]

    def __getitem__(self, name: str) -> KeySigner:
        return self.by_name[name]


def build_signers(consortium: Consortium) -> Signers:
    """The member identities every ledger test uses (the ``signers`` fixture, tests/conftest.py)."""
    pkis = {"KZ": consortium.kz, "UZ": consortium.uz, "KG": consortium.kg}
    spec = [
        ("kz-admin", "KZ", "admin", None),
        ("kz-officer", "KZ", "officer", None),
        ("kz-node", "KZ", "node", None),
        ("uz-admin", "UZ", "admin", None),
        ("uz-officer", "UZ", "officer", None),
        ("kg-admin", "KG", "admin", None),
        ("kz-khorgos", "KZ", "sez-operator", "KZ-KHORGOS"),
        ("kz-aktau", "KZ", "sez-operator", "KZ-AKTAU"),
    ]
    return Signers(
        {name: member_signer(pkis[cc], f"ln-{name}", role, sez) for name, cc, role, sez in spec},
        pkis,
    )


def genesis_arg(pkis: dict[str, OrgPki], *countries: str) -> str:
    return json.dumps(
        {
            "members": [
                {
                    "msp_id": MSP[cc],
                    "country": cc,
                    "name": NAMES[cc],
                    "anchors": [
                        {
                            "kind": "root",
                            "certificate": b64(
                                pkis[cc].certificate("root").public_bytes(Encoding.DER)
                            ),
                        }
                    ],
                }
                for cc in countries
            ]
        }
    )


def now() -> tuple[int, int]:
    ns = time.time_ns()
    return ns // 10**9, ns % 10**9


def propose(signer: KeySigner, function: str, arg: Any = None, **kw: Any) -> SignedProposal:
    args = [] if arg is None else [arg if isinstance(arg, str) else json.dumps(arg)]
    return make_proposal(
        signer, function, args, channel=CHANNEL, timestamp=kw.pop("ts", now()), **kw
    )


def ledger_factory(tmp_path: Path, signers: Signers) -> Iterator[Callable[..., EmbeddedLedger]]:
    """The ``make_ledger`` fixture (tests/conftest.py): fresh ledgers, closed afterwards."""
    opened: list[EmbeddedLedger] = []

    def make(*countries: str, **options: Any) -> EmbeddedLedger:
        countries = countries or ("KZ", "UZ", "KG")
        genesis = propose(signers["kz-admin"], "InitLedger", genesis_arg(signers.pkis, *countries))
        path = tmp_path / f"ledger-{len(opened)}.db"
        ledger = EmbeddedLedger.create(path, CHANNEL, genesis, signers["kz-node"], **options)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


# ------------------------------------------------------------------ index databases
@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    try:
        with PostgresServer.start() as server:
            yield server
    except PostgresNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def index_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], str]]:
    """A factory of fresh, empty index databases of the parametrised kind."""
    stack: list[Any] = []

    def fresh() -> str:
        if request.param == "sqlite":
            return f"sqlite:///{tmp_path / f'index-{uuid.uuid4().hex[:8]}.db'}"
        server: PostgresServer = request.getfixturevalue("pg_server")
        db = server.database(f"index_{uuid.uuid4().hex[:12]}")
        stack.append(db)
        return db.__enter__()

    yield fresh
    for db in reversed(stack):
        db.__exit__(None, None, None)

"""Shared fixtures: real PKIs of three administrations, made once per test worker."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trust_services.pki import OrgPki, init_pki

PASSPHRASE = b"test-passphrase"


@dataclass(frozen=True)
class Consortium:
    """Three administrations' PKIs in one directory, unlocked."""

    root: Path
    kz: OrgPki
    uz: OrgPki
    kg: OrgPki

    def pem_file(self, pki: OrgPki, name: str) -> Path:
        path = self.root / f"{pki.org}-{name}.pem"
        if not path.exists():
            path.write_bytes(pki.pem(name))
        return path


@pytest.fixture(scope="session")
def consortium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Consortium]:
    root = tmp_path_factory.mktemp("consortium")
    orgs = {}
    for org, cc, name in (
        ("KZ-CUSTOMS", "KZ", "State Revenue Committee of Kazakhstan"),
        ("UZ-CUSTOMS", "UZ", "Customs Committee of Uzbekistan"),
        ("KG-CUSTOMS", "KG", "Customs Service of the Kyrgyz Republic"),
    ):
        orgs[cc] = init_pki(root, org, country=cc, name=name, passphrase=PASSPHRASE)
    yield Consortium(root, orgs["KZ"], orgs["UZ"], orgs["KG"])


@pytest.fixture
def fresh_pki(tmp_path: Path) -> OrgPki:
    """A PKI of one's own, for tests that revoke or otherwise change it."""
    return init_pki(tmp_path, "KZ-CUSTOMS", country="KZ", name="KZ Customs", passphrase=PASSPHRASE)


# The ledger fixtures live here, not in tests/node/conftest.py, so that every test
# package shares ONE session-wide set of member identities (importing a fixture into
# another conftest defines it twice, and the second definition re-issues the same keys).
@pytest.fixture(scope="session")
def signers(consortium: Consortium) -> Any:
    from tests.node.conftest import build_signers

    return build_signers(consortium)


@pytest.fixture
def make_ledger(tmp_path: Path, signers: Any) -> Iterator[Any]:
    from tests.node.conftest import ledger_factory

    yield from ledger_factory(tmp_path, signers)

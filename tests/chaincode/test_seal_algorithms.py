"""The seal check with the other key algorithms the PKI offers (RSA 3072, EC P-384)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaincode.conftest import Identities, Ledger, aeo_record, aeo_write, cert_b64
from tests.conftest import PASSPHRASE
from trust_services.keystore import KeyAlgorithm
from trust_services.pki import init_pki


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.RSA_3072, KeyAlgorithm.EC_P384])
def test_seal_algorithms(identities: Identities, tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    pki = init_pki(
        tmp_path,
        "KZ-CUSTOMS",
        country="KZ",
        name="KZ Customs",
        passphrase=PASSPHRASE,
        algorithm=algorithm,
    )
    ledger = Ledger(identities)
    genesis = {
        "members": [
            {
                "msp_id": "KZ-CUSTOMS",
                "country": "KZ",
                "name": "KZ Customs",
                "anchors": [{"kind": "root", "certificate": cert_b64(pki, "root")}],
            }
        ]
    }
    ledger.ok("kz-admin", "InitLedger", genesis)
    record = aeo_record(ledger)
    assert ledger.ok("kz-officer", "IssueAeo", aeo_write(pki, record))["version"] == 1
    tampered = {**record, "aeo_type": "AEOC"}
    request = aeo_write(pki, record) | {"record": tampered}
    from chaincode.canonical import sha256_hex

    request["record_hash"] = sha256_hex(tampered)
    assert "message digest does not match" in ledger.fails("kz-officer", "AmendAeo", request, 403)

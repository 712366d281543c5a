"""Child process of test_crash.py: commits AnchorEvents batches until it is killed.

    python -m tests.node.crash_writer CONFIG.json      # from the repository root

CONFIG names the ledger, the PKI directory and the key labels and certificate files of
the node and of an SEZ operator already registered on the ledger. After each
``submit_many`` returns, the writer prints the id of every acknowledged (VALID)
transaction, one per line, and flushes: a printed id is a promise that the transaction
is durable. Anything but VALID is a bug: the writer says so on stderr and exits 2. It
stops by itself after ``max_batches`` so that an orphan never runs forever.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from cryptography import x509

from node.embedded.ledger import EmbeddedLedger
from node.proposal import KeySigner, make_proposal
from tests.conftest import PASSPHRASE
from trust_services.pki import OrgPki


def _signer(pki: OrgPki, label: str, cert_file: str) -> KeySigner:
    cert = x509.load_pem_x509_certificate(Path(cert_file).read_bytes())
    return KeySigner(pki.org, cert, [pki.certificate("issuing")], pki.key(label))


def _event(n: int) -> dict[str, Any]:
    return {
        "event_hash": f"ni:///sha-256;{hashlib.sha256(f'crash-{n}'.encode()).hexdigest()}"
        "?ver=CBV2.0",
        "consignment_ref": f"26KZ{n:07d}-KHG",
        "event_type": "ObjectEvent",
        "biz_step": "arriving",
        "disposition": "in_transit",
        "event_time": "2026-11-24T08:00:00+05:00",
        "location": "urn:epc:id:sgln:4870001.00001.0",
        "aeo_id": "KZ-AEO-2026-000123",
    }


def main(config_file: str) -> int:
    config = json.loads(Path(config_file).read_text())
    pki = OrgPki(Path(config["pki_root"]), config["org"]).unlock(PASSPHRASE)
    node = _signer(pki, config["node_label"], config["node_cert"])
    operator = _signer(pki, config["operator_label"], config["operator_cert"])
    batch, sez, channel = int(config["batch"]), config["sez"], config["channel"]
    ledger = EmbeddedLedger.open(Path(config["ledger"]), node)
    n = 0
    for _ in range(int(config["max_batches"])):
        proposals = []
        for _i in range(batch):
            n += 1
            ns = time.time_ns()
            arg = json.dumps({"sez": sez, "events": [_event(n)]})
            proposals.append(
                make_proposal(
                    operator, "AnchorEvents", [arg], channel=channel, timestamp=divmod(ns, 10**9)
                )
            )
        receipts = ledger.submit_many(proposals)
        bad = [r for r in receipts if r.code != "VALID"]
        if bad:
            sys.stderr.write(f"crash_writer: not committed: {bad[0]}\n")
            return 2
        sys.stdout.write("".join(f"{r.tx_id}\n" for r in receipts))
        sys.stdout.flush()
    ledger.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))

"""Contract execution cost: µs per call through ``chaincode.router.invoke``.

    .venv/bin/python bench/contracts.py [--rounds 5] [--profile AnchorEvents]

Measures only the contracts: each call runs in an open MemStub transaction that is rolled
back afterwards, so the figure excludes a ledger's commit (MemStub's put_state just
stores into the transaction's dict). The setup is a small consortium of its own (KZ and
UZ PKIs in a temporary directory, a registered SEZ operator, an AEO certificate and an
MRA in force). Figures: AnchorEvents with 1 event (a new consignment each call),
AnchorEvents with 100 events per batch (per event), IsRecognised (KZ certificate in UZ),
IssueAeo (the e-seal check included), GetTrail (10 events); and, for comparison with
earlier figures, AnchorEvents through MemStub.invoke with its commit. Best of
``--rounds`` rounds. Prints one JSON line last.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import datetime as dt
import hashlib
import json
import pstats
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cryptography.hazmat.primitives import serialization

from chaincode.canonical import sha256_hex
from chaincode.memstub import MemStub
from chaincode.router import invoke
from chaincode.stub import Creator
from trust_services.cades import CadesSigner
from trust_services.pki import OrgPki, init_pki
from trust_services.profiles import CertProfile

DER = serialization.Encoding.DER
SEZ = "KZ-KHORGOS"
AEO_ID = "KZ-AEO-2026-000123"


def iso(seconds: int) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event(n: int, ref: str) -> dict[str, Any]:
    return {
        "event_hash": f"ni:///sha-256;{hashlib.sha256(str(n).encode()).hexdigest()}?ver=CBV2.0",
        "consignment_ref": ref,
        "event_type": "ObjectEvent",
        "biz_step": "arriving",
        "disposition": "in_transit",
        "event_time": "2026-11-24T08:00:00+05:00",
        "location": "urn:epc:id:sgln:4870001.00001.0",
        "aeo_id": AEO_ID,
    }


class Bench:
    """A consortium on a MemStub, and a clock (one second per committed transaction)."""

    def __init__(self, root: Path) -> None:
        pw = b"bench-passphrase"
        self.kz = init_pki(root, "KZ-CUSTOMS", country="KZ", name="KZ Customs", passphrase=pw)
        self.uz = init_pki(root, "UZ-CUSTOMS", country="UZ", name="UZ Customs", passphrase=pw)
        self.who = {
            "kz-admin": self._member(self.kz, "bench-kz-admin", "admin", None),
            "kz-officer": self._member(self.kz, "bench-kz-officer", "officer", None),
            "uz-admin": self._member(self.uz, "bench-uz-admin", "admin", None),
            "operator": self._member(self.kz, "bench-khorgos", "sez-operator", SEZ),
        }
        not_before = max(p.certificate("seal").not_valid_before_utc for p in (self.kz, self.uz))
        self.clock = int(not_before.timestamp()) + 86400
        self.stub = MemStub()
        self.signer = CadesSigner.for_org(self.kz)

    @staticmethod
    def _member(pki: OrgPki, label: str, role: str, sez: str | None) -> Creator:
        issued = pki.issue_with_new_key(
            CertProfile.MEMBER, label, common_name=f"{label} (bench)", role=role, sez=sez
        )
        return Creator(pki.org, issued.certificate.public_bytes(DER))

    def ok(self, who: str, function: str, arg: Any) -> Any:
        self.clock += 1
        response = self.stub.invoke(
            function, [json.dumps(arg)], creator=self.who[who], timestamp=(self.clock, 0)
        )
        assert response.status == 200, (function, response.status, response.message)
        return json.loads(response.payload)

    def aeo_write(self, aeo_id: str) -> dict[str, Any]:
        record = {
            "aeo_id": aeo_id,
            "holder": {
                "tin": "KZ123456789012",
                "name": "Khorgos Logistics LLP",
                "address": {
                    "street": "1 Dostyk",
                    "city": "Zharkent",
                    "postcode": "041300",
                    "country": "KZ",
                },
            },
            "issuer": {"administration": "KZ-CUSTOMS", "country": "KZ"},
            "aeo_type": "AEOF",
            "supply_chain_roles": ["exporter", "carrier"],
            "status": "valid",
            "status_reason": None,
            "status_effective_at": iso(self.clock),
            "validated_at": iso(self.clock),
            "valid_until": iso(self.clock + 3 * 365 * 86400),
            "next_reassessment": iso(self.clock + 365 * 86400),
            "mra_sharing_consent": True,
        }
        seal = base64.b64encode(self.signer.sign_json(record)).decode()
        return {"record": record, "record_hash": sha256_hex(record), "seal": seal}

    def setup(self) -> None:
        members = [
            {
                "msp_id": pki.org,
                "country": pki.org[:2],
                "name": f"{pki.org[:2]} Customs",
                "anchors": [
                    {
                        "kind": "root",
                        "certificate": base64.b64encode(
                            pki.certificate("root").public_bytes(DER)
                        ).decode(),
                    }
                ],
            }
            for pki in (self.kz, self.uz)
        ]
        self.ok("kz-admin", "InitLedger", {"members": members})
        subject = self._subject("operator")
        self.ok(
            "kz-admin",
            "RegisterSezOperator",
            {"sez": SEZ, "name": "Khorgos - Eastern Gate", "operator_subject": subject},
        )
        self.ok("kz-officer", "IssueAeo", self.aeo_write(AEO_ID))
        act = {"legal_instrument_ref": "MRA KZ-UZ 2026", "document_hash": "ab" * 32}
        self.ok(
            "kz-admin",
            "ProposeMra",
            {
                "mra_id": "MRA-KZ-UZ-2026",
                "title": "KZ-UZ AEO MRA",
                "parties": ["KZ-CUSTOMS", "UZ-CUSTOMS"],
                "recognised_types": {"KZ-CUSTOMS": ["AEOF"], "UZ-CUSTOMS": ["AEOF", "AEOS"]},
                "benefits": ["fewer inspections"],
                "effective_from": iso(self.clock),
                **act,
            },
        )
        self.ok("kz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **act})
        self.ok("uz-admin", "SignMra", {"mra_id": "MRA-KZ-UZ-2026", **act})
        self.ok("operator", "AnchorEvents", {"sez": SEZ, "events": [event(0, "TRAIL-1")]})
        for n in range(1, 10):
            prev = event(n - 1, "TRAIL-1")["event_hash"]
            self.ok(
                "operator",
                "AnchorEvents",
                {"sez": SEZ, "events": [{**event(n, "TRAIL-1"), "prev_event_hash": prev}]},
            )
        self.clock += 10

    def _subject(self, who: str) -> str:
        from cryptography import x509

        cert = x509.load_der_x509_certificate(self.who[who].certificate_der)
        return cert.subject.rfc4514_string()

    def timed(self, who: str, function: str, args: list[str]) -> float:
        """Seconds spent in router.invoke for each argument, in an uncommitted tx."""
        stub, creator = self.stub, self.who[who]
        total = 0.0
        for arg in args:
            stub.begin(creator, (self.clock, 0))
            t0 = time.perf_counter()
            response = invoke(stub, function, [arg])
            total += time.perf_counter() - t0
            stub.rollback()
            assert response.status == 200, (function, response.status, response.message)
        return total

    def committed(self, who: str, function: str, args: list[str]) -> float:
        """Seconds per call of MemStub.invoke (the transaction is committed)."""
        creator = self.who[who]
        t0 = time.perf_counter()
        for arg in args:
            self.clock += 1
            response = self.stub.invoke(function, [arg], creator=creator, timestamp=(self.clock, 0))
            assert response.status == 200, (function, response.status, response.message)
        return (time.perf_counter() - t0) / len(args)


def cases(b: Bench, n: int) -> dict[str, tuple[str, str, list[str], int]]:
    """name -> (creator, function, arguments, units per call)."""
    ones = [json.dumps({"sez": SEZ, "events": [event(1000 + i, f"ONE-{i}")]}) for i in range(n)]
    batches = [
        json.dumps(
            {"sez": SEZ, "events": [event(10**6 + 100 * i + j, f"B{i}-{j}") for j in range(100)]}
        )
        for i in range(max(1, n // 100))
    ]
    recognise = json.dumps({"aeo_id": AEO_ID, "country": "UZ", "at": iso(b.clock)})
    issue = json.dumps(b.aeo_write("KZ-AEO-2026-000999"))
    trail = json.dumps({"consignment_ref": "TRAIL-1"})
    return {
        "anchor_us": ("operator", "AnchorEvents", ones, 1),
        "anchor_batch_event_us": ("operator", "AnchorEvents", batches, 100),
        "recognise_us": ("uz-admin", "IsRecognised", [recognise] * n, 1),
        "issue_aeo_us": ("kz-officer", "IssueAeo", [issue] * max(1, n // 10), 1),
        "get_trail_us": ("uz-admin", "GetTrail", [trail] * n, 1),
    }


LABELS = {
    "anchor_us": "AnchorEvents, 1 event",
    "anchor_batch_event_us": "AnchorEvents, 100 events (per event)",
    "recognise_us": "IsRecognised",
    "issue_aeo_us": "IssueAeo (seal check included)",
    "get_trail_us": "GetTrail (10 events)",
    "anchor_memstub_us": "AnchorEvents, 1 event, MemStub.invoke+commit",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000, help="calls per round")
    parser.add_argument("--profile", metavar="FIGURE", help="cProfile one figure, e.g. anchor_us")
    parser.add_argument("--only", metavar="FIGURE", action="append", help="measure only these")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Path(tmp))
        bench.setup()
        table = cases(bench, opts.calls)
        if opts.only:
            table = {name: table[name] for name in opts.only}
        if opts.profile:
            who, function, args, _units = table[opts.profile]
            profiler = cProfile.Profile()
            profiler.runcall(bench.timed, who, function, args * 5)
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        best: dict[str, float] = {}
        for _ in range(opts.rounds):
            for name, (who, function, args, units) in table.items():
                us = bench.timed(who, function, args) / (len(args) * units) * 1e6
                best[name] = min(best.get(name, us), us)
        if not opts.only:
            for i in range(opts.rounds):  # new consignments, committed (MemStub's commit too)
                args = [
                    json.dumps(
                        {"sez": SEZ, "events": [event(10**8 + i * opts.calls + n, f"C{i}-{n}")]}
                    )
                    for n in range(opts.calls)
                ]
                us = bench.committed("operator", "AnchorEvents", args) * 1e6
                best["anchor_memstub_us"] = min(best.get("anchor_memstub_us", us), us)
    for name, us in best.items():
        print(f"{LABELS[name]:<44} {us:9.1f} µs")
    print(json.dumps({k: round(v, 1) for k, v in best.items()}))


if __name__ == "__main__":
    main()

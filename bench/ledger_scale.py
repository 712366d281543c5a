"""Scale of the embedded ledger: recognition at 1M AEOs, trails at 100k…10M events, bytes.

    .venv/bin/python bench/ledger_scale.py [--aeos 1000000] [--events 10000000]
        [--max-events N] [--dir PATH] [--keep] [--queries 10000] [--trail-queries 2000]
        [--json]
    .venv/bin/python bench/ledger_scale.py --resume DIR --anchored N --events M

    smoke run (a couple of minutes):  --aeos 10000 --events 100000

``--resume`` grows the events of a kept run (its ``caravan-scale-*`` directory, ``--event-block``
as in that run) from ``--anchored`` N, the events it has (checked against the ledger: a
multiple of one round), to M, with the identities the run issued, and measures the
checkpoints above N; bytes per event are those of the added events. A run stopped by time
or disk thus continues where it stood instead of growing from nothing again.

One ledger database is grown in place and measured at checkpoints:

1. Setup, all through signed proposals: KZ, UZ and KG PKIs (``init_pki``) in the work
   directory; genesis signed by KZ's admin; an accredited operator of KZ-KHORGOS; an
   MRA between KZ-CUSTOMS and UZ-CUSTOMS in force (proposed, signed by both admins).
2. AEOs: the first ``--real-aeos`` (10,000) are ``IssueAeo`` transactions by KZ's
   officer, each record sealed with the real KZ seal key (``CadesSigner.sign_json``),
   the proposal signed by the officer, committed through ``EmbeddedLedger.submit_many``
   in blocks of ``--aeo-block``: node signature and creator checks, the contract's seal
   check, the state exactly as the node writes it (``aeo~``, ``aeo-version~…~000001``,
   ``aeo-status~`` per AEO). A tenth are AEOC (not recognised by UZ), a tenth have no MRA
   sharing consent, the rest AEOF/AEOS (recognised). Issuing goes at ~300-500 AEOs/s on
   the 2-core machine (seal ~0.4 ms + proposal ~0.2 ms client side, ~2.3 ms in the node,
   of which the seal check ~1.2 ms), i.e. ~50 min for 1M, so the AEOs beyond
   ``--real-aeos`` are REPLICATED (``replicate_aeos``): AEO n gets copies of the three
   state rows of contract-issued AEO ``n % min(real, 1000)`` (same type and consent) with
   the aeo_id, holder TIN and name and tx id replaced in the canonical JSON, written in
   node-signed, hash-chained blocks through ``Store.append_block``, one marker tx row
   per replica (``{"replica_of", "aeo_id", "writes"}``, no proposal; the copied seal no
   longer covers the changed record, and ``verify_ledger`` would refuse these blocks).
   The state index then really holds ``--aeos`` AEO records in the node's layout.
   Disk per AEO is taken from the contract-issued part (tx records included).
3. Recognition: ``ledger.evaluate("IsRecognised", {aeo_id, country: UZ, at: now})`` on
   ``--queries`` AEOs drawn at random from all (replicas included), at 10,000 AEOs and at
   ``--aeos``, and again on the contract-issued ones only; every answer is checked
   against the record's expected outcome (yes/no).
4. Events: ``AnchorEvents`` by the SEZ operator, up to 4096 events per transaction
   (one Merkle batch each), ``--event-block`` (2) transactions per block. Consignments
   come in waves of ``--event-block`` x 4096; a wave gets 10 rounds, one event per
   consignment each, one round per block — a consignment's 10 events sit in 10 batches
   of 10 blocks (the contract links them), and no transaction reads a consignment head
   that another transaction of its block writes (that would be an MVCC conflict).
   Consignment refs are sequential (``26KZ0000000042-KHG``); event hashes are random.
5. Trails: ``GetTrail`` and ``VerifyTrail`` on ``--trail-queries`` complete consignments
   drawn at random from the whole ledger, at 100,000, 1,000,000 and ``--events`` anchored
   events; the answers are checked (10 events, ``ok``). Then the first round's trails
   again ("again", ``*_repeat``): cached at every size, so the ratio of those figures
   compares like with like, while the first figures read from disk once the ledger
   outgrows the RAM.

At each checkpoint: the process RSS (VmRSS, VmHWM) and the database size (main file
after a WAL checkpoint, plus the WAL size before it); the queries start once the kernel
has written the checkpoint back (``os.sync()``). ``bench/trail_probe.py`` measures the
trails of a kept ledger again: first touch, repeat, and with the page cache dropped.
Disk: free space is checked before growing the events; after each checkpoint the bytes
per event measured so far project the size of the next step, and the run stops early
(saying so) if the projection exceeds the free space minus 10 GB. Proposals are signed
just before they are submitted (signing is not timed in the query figures; the growth
rates include it). Prints human lines, then last one JSON line with every figure.
"""

from __future__ import annotations

import argparse
import base64
import cProfile
import datetime as dt
import hashlib
import json
import os
import platform
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _ledger import existing_member, genesis_members, member, now_pair
from cryptography.hazmat.primitives.serialization import Encoding

from chaincode.canonical import canonical_json, sha256_hex
from chaincode.stub import create_composite_key
from node.embedded.blocks import block_hash, block_header, sign_header
from node.embedded.ledger import EmbeddedLedger
from node.embedded.store import BlockWrite, Store, ver_of
from node.proposal import ProposalSigner, SignedProposal, make_proposal
from trust_services.cades import CadesSigner
from trust_services.pki import OrgPki, init_pki

CHANNEL = "caravan"
SEZ = "KZ-KHORGOS"
MRA_ID = "MRA-KZ-UZ-2026"
GROUP = 4096  # consignments per group = events per AnchorEvents transaction
ROUNDS = 10  # events per consignment
GB = 1024**3
RESERVE = 10 * GB

Say = Callable[..., None]


# --------------------------------------------------------------------------- helpers
def iso(seconds: float) -> str:
    return dt.datetime.fromtimestamp(int(seconds), dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)
    n = len(ordered)
    return {
        "p50_ms": round(ordered[n // 2] / 1e6, 4),
        "p99_ms": round(ordered[min(n - 1, (n * 99) // 100)] / 1e6, 4),
        "mean_ms": round(sum(ordered) / n / 1e6, 4),
        "n": n,
    }


def proc_status() -> dict[str, int]:
    """VmRSS and VmHWM of this process in MiB."""
    out: dict[str, int] = {}
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name.lower() + "_mb"] = int(rest.split()[0]) // 1024
    return out


def db_bytes(ledger: EmbeddedLedger) -> dict[str, int]:
    """The WAL size as it stands, then the main file after a TRUNCATE checkpoint."""
    path = ledger.store.path
    wal = Path(f"{path}-wal")
    wal_bytes = wal.stat().st_size if wal.exists() else 0
    ledger.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    # wait for the kernel to write the checkpointed pages back: queries measured while
    # gigabytes of writeback are queued wait behind them (GetTrail at 1M: 0.58 ms, then
    # VerifyTrail, which reads more, 0.49 ms)
    os.sync()
    return {"db_bytes": path.stat().st_size, "wal_bytes_before_checkpoint": wal_bytes}


def machine() -> dict[str, Any]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="ascii") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo", encoding="ascii") as info:
            ram_gb = round(int(info.readline().split()[1]) / 1024**2, 1)
    except OSError:
        ram_gb = 0.0
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "ram_gb": ram_gb,
        "python": platform.python_version(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
    }


# ------------------------------------------------------------------------ consortium
@dataclass
class Consortium:
    pkis: dict[str, OrgPki]
    who: dict[str, ProposalSigner]
    sealer: CadesSigner
    ledger: EmbeddedLedger
    mra_from: int  # seconds

    def submit(self, who: str, function: str, arg: dict[str, Any]) -> None:
        signed = propose(self.who[who], function, arg)
        receipt = self.ledger.submit(signed)
        if receipt.code != "VALID":
            raise SystemExit(f"{function} refused: {receipt.code} {receipt.message}")


def propose(signer: ProposalSigner, function: str, arg: dict[str, Any]) -> SignedProposal:
    return make_proposal(signer, function, [json.dumps(arg)], channel=CHANNEL, timestamp=now_pair())


def build(root: Path, block_tx: int) -> Consortium:
    pkis = {
        cc: init_pki(root, f"{cc}-CUSTOMS", country=cc, name=f"{cc} Customs", passphrase=b"bench")
        for cc in ("KZ", "UZ", "KG")
    }
    who: dict[str, ProposalSigner] = {
        "kz-admin": member(pkis["KZ"], "kz-admin", "admin"),
        "kz-officer": member(pkis["KZ"], "kz-officer", "officer"),
        "kz-node": member(pkis["KZ"], "kz-node", "node"),
        "uz-admin": member(pkis["UZ"], "uz-admin", "admin"),
        "operator": member(pkis["KZ"], "kz-khorgos", "sez-operator", SEZ),
    }
    genesis = {"members": genesis_members(pkis)}
    ledger = EmbeddedLedger.create(
        root / "ledger.db",
        CHANNEL,
        propose(who["kz-admin"], "InitLedger", genesis),
        who["kz-node"],
        max_block_tx=block_tx,
    )
    mra_from = int(time.time()) - 60
    c = Consortium(pkis, who, CadesSigner.for_org(pkis["KZ"]), ledger, mra_from)
    subject = who["operator"].certificate.subject.rfc4514_string()
    c.submit(
        "kz-admin",
        "RegisterSezOperator",
        {"sez": SEZ, "name": "Khorgos - Eastern Gate", "operator_subject": subject},
    )
    act = {"legal_instrument_ref": "MRA KZ-UZ 2026", "document_hash": "ab" * 32}
    c.submit(
        "kz-admin",
        "ProposeMra",
        {
            "mra_id": MRA_ID,
            "title": "KZ-UZ AEO mutual recognition",
            "parties": ["KZ-CUSTOMS", "UZ-CUSTOMS"],
            "recognised_types": {"KZ-CUSTOMS": ["AEOF"], "UZ-CUSTOMS": ["AEOF", "AEOS"]},
            "benefits": ["fewer inspections"],
            "effective_from": iso(mra_from),
            **act,
        },
    )
    c.submit("kz-admin", "SignMra", {"mra_id": MRA_ID, **act})
    c.submit("uz-admin", "SignMra", {"mra_id": MRA_ID, **act})
    return c


def resume(root: Path, block_tx: int) -> Consortium:
    """The consortium of a kept run (``--keep``): its PKIs, identities and ledger."""
    pkis = {cc: OrgPki(root, f"{cc}-CUSTOMS").unlock(b"bench") for cc in ("KZ", "UZ", "KG")}
    labels = {"kz-admin": "KZ", "kz-officer": "KZ", "kz-node": "KZ", "uz-admin": "UZ"}
    who: dict[str, ProposalSigner] = {
        name: existing_member(pkis[cc], name) for name, cc in labels.items()
    }
    who["operator"] = existing_member(pkis["KZ"], "kz-khorgos")
    ledger = EmbeddedLedger.open(root / "ledger.db", who["kz-node"], max_block_tx=block_tx)
    return Consortium(pkis, who, CadesSigner.for_org(pkis["KZ"]), ledger, 0)


def check_resume_point(c: Consortium, anchored: int, per_block: int) -> None:
    """Refuse to resume unless exactly events 0..anchored-1 of the stream are anchored."""
    if anchored <= 0 or anchored % (per_block * GROUP):
        raise SystemExit(
            f"--anchored must be a positive multiple of {per_block * GROUP} (one round)"
        )
    for position, wanted in ((anchored - 1, 200), (anchored, 404)):
        event_hash = event_at(position, per_block)["event_hash"]
        response = c.ledger.evaluate("GetEvent", [json.dumps({"event_hash": event_hash})])
        if response.status != wanted:
            state = "is not" if wanted == 200 else "is already"
            raise SystemExit(f"event {position:,} of the stream {state} anchored: wrong --anchored")


# ------------------------------------------------------------------------------ AEOs
def aeo_id(n: int) -> str:
    return f"KZ-AEO-2026-{n:07d}"


def aeo_profile(n: int) -> tuple[str, bool]:
    """(aeo_type, mra_sharing_consent) of AEO n; recognised in UZ iff AEOF/AEOS + consent."""
    kind = n % 10
    if kind == 8:
        return "AEOC", True
    if kind == 9:
        return "AEOF", False
    return ("AEOS" if kind in (6, 7) else "AEOF"), True


def expected_recognised(n: int) -> bool:
    aeo_type, consent = aeo_profile(n)
    return consent and aeo_type in ("AEOF", "AEOS")


def issue_request(c: Consortium, n: int, issued_at: int) -> dict[str, Any]:
    aeo_type, consent = aeo_profile(n)
    record = {
        "aeo_id": aeo_id(n),
        "holder": {
            "tin": f"KZ{n:012d}",
            "name": f"Holder {n} LLP",
            "address": {
                "street": f"{n % 400 + 1} Dostyk",
                "city": "Zharkent",
                "postcode": "041300",
                "country": "KZ",
            },
        },
        "issuer": {"administration": "KZ-CUSTOMS", "country": "KZ"},
        "aeo_type": aeo_type,
        "supply_chain_roles": ["exporter", "carrier"],
        "status": "valid",
        "status_reason": None,
        "status_effective_at": iso(issued_at),
        "validated_at": iso(issued_at),
        "valid_until": iso(issued_at + 3 * 365 * 86400),
        "next_reassessment": iso(issued_at + 365 * 86400),
        "mra_sharing_consent": consent,
    }
    seal = base64.b64encode(c.sealer.sign_json(record)).decode()
    return {
        "record": record,
        "record_hash": sha256_hex(record),
        "seal": seal,
    }


def grow_aeos(c: Consortium, start: int, stop: int, block: int, say: Say) -> float:
    """Issue AEOs start..stop-1 through signed proposals; returns the seconds spent."""
    began = time.perf_counter()
    officer = c.who["kz-officer"]
    last_say = began
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        issued_at = int(time.time()) - 1
        batch = [
            propose(officer, "IssueAeo", issue_request(c, n, issued_at)) for n in range(lo, hi)
        ]
        receipts = c.ledger.submit_many(batch)
        bad = [r for r in receipts if r.code != "VALID"]
        if bad:
            raise SystemExit(f"IssueAeo refused: {bad[0].code} {bad[0].message}")
        if time.perf_counter() - last_say > 30:
            last_say = time.perf_counter()
            rate = (hi - start) / (last_say - began)
            say(f"  … {hi:,} AEOs ({rate:,.0f}/s)")
    return time.perf_counter() - began


def replicate_aeos(c: Consortium, real: int, start: int, stop: int, block: int, say: Say) -> float:
    """Write AEOs start..stop-1 as copies of contract-issued ones, in signed blocks.

    AEO n copies the state rows of real AEO ``n % min(real, 1000)`` (same type and consent,
    since real is a multiple of 10): the three keys ``aeo~``, ``aeo-version~…~000001`` and
    ``aeo-status~`` with the aeo_id, the holder's TIN and name and the tx id replaced in
    the contract's canonical JSON. Each block of ``block`` AEOs is hash-chained, carries a
    correct tx_root and is signed by the node's key like any block, and is written with
    ``Store.append_block`` (one durable SQLite transaction); each replica has its own
    transaction row whose record is a short JSON marker ``{"replica_of", "aeo_id",
    "writes"}`` (no proposal: ``verify_ledger`` would refuse these blocks, and the copied
    seal does not cover the changed record). The ledger object is reopened afterwards so
    its height and last hash follow the store.
    """
    began = time.perf_counter()
    path = c.ledger.store.path
    node = c.who["kz-node"]
    templates: list[tuple[str, bytes, list[bytes]]] = []
    conn = c.ledger.store.conn
    for t in range(min(real, 1000)):
        ident = aeo_id(t)
        rows = [
            conn.execute(
                "SELECT v.value FROM kv k JOIN vals v ON v.vid = k.vid WHERE k.key = ?",
                (key.encode(),),
            ).fetchone()[0]
            for key in aeo_keys(ident)
        ]
        tx_id = json.loads(rows[0])["tx_id"]
        templates.append((tx_id, tx_id.encode(), [bytes(r) for r in rows]))
    max_block_tx = c.ledger.max_block_tx
    c.ledger.close()
    store = Store.open(path)
    last = store.last_block()
    assert last is not None
    number, prev = last.number + 1, bytes(last.hash).hex()
    node_der = node.certificate.public_bytes(Encoding.DER)
    node_sha = hashlib.sha256(node_der).hexdigest()
    chain = [hashlib.sha256(x.public_bytes(Encoding.DER)).hexdigest() for x in node.chain]
    ts_ns = time.time_ns()
    last_say = began
    for lo in range(start, stop, block):
        hi = min(stop, lo + block)
        txs: list[tuple[int, bytes, str, int, bytes]] = []
        writes: list[tuple[int, str, bytes | None]] = []
        records = []
        for i, n in enumerate(range(lo, hi)):
            t = n % len(templates)
            tx_hex, old_tx, rows = templates[t]
            new_tx = hashlib.sha256(b"replica:%d" % n).hexdigest()
            swaps = (
                (aeo_id(t).encode(), aeo_id(n).encode()),
                (b"KZ%012d" % t, b"KZ%012d" % n),
                (b"Holder %d LLP" % t, b"Holder %d LLP" % n),
                (old_tx, new_tx.encode()),
            )
            keys = aeo_keys(aeo_id(n))
            ver = ver_of(number, i)
            shas = []
            for key, row in zip(keys, rows, strict=True):
                value = row
                for a, b in swaps:
                    value = value.replace(a, b)
                writes.append((ver, key, value))
                shas.append([key, hashlib.sha256(value).hexdigest()])
            record = canonical_json({"replica_of": tx_hex, "aeo_id": aeo_id(n), "writes": shas})
            records.append(record)
            txs.append((ver, bytes.fromhex(new_tx), "VALID", ts_ns, record))
        header = block_header(
            channel=CHANNEL,
            number=number,
            prev_hash=prev,
            records=records,
            valid_count=len(records),
            time_us=time.time_ns() // 1000,
            signer_msp=node.msp_id,
            signer_cert_sha256=node_sha,
            signer_chain=chain,
        )
        digest = block_hash(header)
        store.append_block(
            BlockWrite(number, digest, header, sign_header(header, node), None, txs, writes, [])
        )
        number, prev = number + 1, digest.hex()
        if time.perf_counter() - last_say > 30:
            last_say = time.perf_counter()
            say(f"  … {hi:,} AEOs ({(hi - start) / (last_say - began):,.0f}/s replicated)")
    store.close()
    c.ledger = EmbeddedLedger.open(path, node, max_block_tx=max_block_tx)
    return time.perf_counter() - began


def aeo_keys(ident: str) -> tuple[str, str, str]:
    return (
        create_composite_key("aeo", [ident]),
        create_composite_key("aeo-version", [ident, "000001"]),
        create_composite_key("aeo-status", [ident]),
    )


def measure_recognition(
    c: Consortium, issued: int, queries: int, rounds: int, rng: random.Random
) -> dict[str, Any]:
    """IsRecognised on ``queries`` AEOs drawn from 0..issued-1, each answer checked."""
    at = iso(time.time())
    best: dict[str, Any] | None = None
    recognised = 0
    for _ in range(rounds):
        picks = [rng.randrange(issued) for _ in range(queries)]
        args = [json.dumps({"aeo_id": aeo_id(n), "country": "UZ", "at": at}) for n in picks]
        samples: list[int] = []
        recognised = 0
        evaluate = c.ledger.evaluate
        for n, arg in zip(picks, args, strict=True):
            t0 = time.perf_counter_ns()
            response = evaluate("IsRecognised", [arg])
            samples.append(time.perf_counter_ns() - t0)
            if response.status != 200:
                raise SystemExit(f"IsRecognised {aeo_id(n)}: {response.status} {response.message}")
            answer = json.loads(response.payload)["recognised"]
            if answer is not expected_recognised(n):
                raise SystemExit(f"IsRecognised {aeo_id(n)} answered {answer}: wrong")
            recognised += answer
        figures = percentiles(samples)
        if best is None or figures["p50_ms"] < best["p50_ms"]:
            best = figures
    assert best is not None
    return {**best, "aeos": issued, "recognised_share": round(recognised / queries, 3)}


# ---------------------------------------------------------------------------- events
def wave_size(per_block: int) -> int:
    return per_block * GROUP * ROUNDS


def event_at(position: int, per_block: int) -> dict[str, Any]:
    """The event at ``position`` in the anchoring stream.

    A wave is ``per_block`` groups of GROUP consignments; one round of a wave (one event of
    each of its consignments, GROUP per transaction) fills one block, so no transaction
    reads a consignment head that another transaction of its block writes (MVCC).
    """
    wave, rest = divmod(position, wave_size(per_block))
    rnd, rest = divmod(rest, per_block * GROUP)
    consignment = wave * per_block * GROUP + rest
    return {
        "event_hash": "ni:///sha-256;"
        + hashlib.sha256(b"%d:%d" % (consignment, rnd)).hexdigest()
        + "?ver=CBV2.0",
        "consignment_ref": consignment_ref(consignment),
        "event_type": "ObjectEvent",
        "biz_step": ("arriving", "inspecting", "storing", "loading", "departing")[rnd % 5],
        "disposition": "in_transit",
        "event_time": iso(1_795_000_000 + rnd * 3600),
        "location": "urn:epc:id:sgln:4870001.00001.0",
        "aeo_id": aeo_id(consignment % 1000),
    }


def consignment_ref(n: int) -> str:
    return f"26KZ{n:010d}-KHG"


def complete_consignments(events: int, per_block: int) -> int:
    return (events // wave_size(per_block)) * per_block * GROUP


def grow_events(c: Consortium, start: int, stop: int, per_block: int, say: Say) -> float:
    began = time.perf_counter()
    operator = c.who["operator"]
    last_say = began
    position = start
    round_len = per_block * GROUP
    while position < stop:
        block_end = min(stop, (position // round_len + 1) * round_len)
        batch = []
        while position < block_end:
            size = min(GROUP - position % GROUP, block_end - position)
            events = [event_at(p, per_block) for p in range(position, position + size)]
            batch.append(propose(operator, "AnchorEvents", {"sez": SEZ, "events": events}))
            position += size
        receipts = c.ledger.submit_many(batch)
        bad = [r for r in receipts if r.code != "VALID"]
        if bad:
            raise SystemExit(f"AnchorEvents refused: {bad[0].code} {bad[0].message}")
        if time.perf_counter() - last_say > 30:
            last_say = time.perf_counter()
            rate = (position - start) / (last_say - began)
            say(f"  … {position:,} events ({rate:,.0f}/s)")
    return time.perf_counter() - began


#: the trail queries and the keys of their figures in the JSON output
TRAIL_FIGURES = {"GetTrail": "get_trail", "VerifyTrail": "verify_trail"}


def timed_trail(ledger: EmbeddedLedger, function: str, ref: str) -> int:
    """Nanoseconds of one ``GetTrail``/``VerifyTrail`` of ``ref``; the answer is checked
    (a complete trail of ``ROUNDS`` events, ``ok``)."""
    arg = json.dumps({"consignment_ref": ref})
    t0 = time.perf_counter_ns()
    response = ledger.evaluate(function, [arg])
    elapsed = time.perf_counter_ns() - t0
    if response.status != 200:
        raise SystemExit(f"{function} {ref}: {response.status} {response.message}")
    body = json.loads(response.payload)
    if function == "GetTrail" and len(body) != ROUNDS:
        raise SystemExit(f"GetTrail {ref}: {len(body)} events, expected {ROUNDS}")
    if function == "VerifyTrail" and not (body["ok"] and body["events"] == ROUNDS):
        raise SystemExit(f"VerifyTrail {ref}: {body}")
    return elapsed


def measure_trails(
    c: Consortium, events: int, per_block: int, queries: int, rounds: int, rng: random.Random
) -> dict[str, Any]:
    complete = complete_consignments(events, per_block)
    if complete == 0:
        raise SystemExit(
            f"no complete consignment at {events} events (need {wave_size(per_block)}; "
            "lower --event-block)"
        )
    out: dict[str, Any] = {"events": events, "consignments_complete": complete}
    for function, figure in TRAIL_FIGURES.items():
        best: dict[str, float] | None = None
        first: list[str] = []
        for i in range(rounds):
            refs = [consignment_ref(rng.randrange(complete)) for _ in range(queries)]
            figures = percentiles([timed_trail(c.ledger, function, ref) for ref in refs])
            if i == 0:
                first = refs
            if best is None or figures["p50_ms"] < best["p50_ms"]:
                best = figures
        out[figure] = best
        # the first round's trails again: now in the page cache at any size, so the
        # checkpoints compare like with like (the rounds above read from disk once the
        # ledger outgrows the RAM, and from memory while it does not)
        out[figure + "_repeat"] = percentiles([timed_trail(c.ledger, function, r) for r in first])
    return out


def profile_queries(
    c: Consortium, aeos: int, events: int, per_block: int, rng: random.Random
) -> None:
    at = iso(time.time())
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(2000):
        n = rng.randrange(aeos)
        c.ledger.evaluate(
            "IsRecognised", [json.dumps({"aeo_id": aeo_id(n), "country": "UZ", "at": at})]
        )
    complete = complete_consignments(events, per_block)
    for _ in range(500 if complete else 0):
        ref = consignment_ref(rng.randrange(complete))
        c.ledger.evaluate("GetTrail", [json.dumps({"consignment_ref": ref})])
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(20)


# ------------------------------------------------------------------------------ main
def aeo_phase(
    c: Consortium, opts: argparse.Namespace, result: dict[str, Any], rng: random.Random, say: Say
) -> int:
    """Issue (and replicate) the AEOs, measuring recognition; how many there are."""
    base = db_bytes(c.ledger)["db_bytes"]
    aeo_figures: list[dict[str, Any]] = []
    issued = 0
    real = min(opts.aeos, opts.real_aeos)
    real_bytes_per_aeo = 0
    for mark in checkpoints(opts.aeos, (10_000,)):
        seconds = 0.0
        top = min(mark, real)
        if top > issued:
            seconds = grow_aeos(c, issued, top, opts.aeo_block, say)
            rate = (top - issued) / seconds
            say(f"{top:>10,} AEOs issued through the contract ({rate:,.0f}/s)")
            issued = top
            real_bytes_per_aeo = round((db_bytes(c.ledger)["db_bytes"] - base) / issued)
        if mark > issued:
            seconds = replicate_aeos(c, real, issued, mark, opts.aeo_block, say)
            say(f"{mark:>10,} AEOs ({mark - issued:,} replicated, {seconds:.0f} s)")
            issued = mark
        size = db_bytes(c.ledger)
        figures = measure_recognition(c, issued, opts.queries, opts.rounds, rng)
        figures.update(size, **proc_status(), real_aeos=min(issued, real))
        figures["bytes_per_aeo_all"] = round((size["db_bytes"] - base) / issued)
        figures["bytes_per_real_aeo"] = real_bytes_per_aeo
        line = (
            f"{issued:>10,} AEOs: IsRecognised p50 {figures['p50_ms']:.3f} ms, "
            f"p99 {figures['p99_ms']:.3f} ms"
        )
        if issued > real:
            only = measure_recognition(c, real, opts.queries, opts.rounds, rng)
            figures["real_only"] = only
            line += f" (contract-issued only: p50 {only['p50_ms']:.3f} ms)"
        aeo_figures.append(figures)
        say(
            f"{line}; db {size['db_bytes'] / GB:.2f} GiB, RSS {figures['vmrss_mb']} MiB "
            f"(peak {figures['vmhwm_mb']})"
        )
    result["recognition"] = aeo_figures
    result["aeo_disk_gb_per_million"] = round(real_bytes_per_aeo * 1e6 / GB, 2)
    return issued


def checkpoints(target: int, marks: tuple[int, ...]) -> Iterator[int]:
    yield from (m for m in marks if m < target)
    if target > 0:
        yield target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--aeos", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--max-events", type=int, default=None, help="stop growing here")
    parser.add_argument("--dir", type=Path, default=None, help="where the ledger is built")
    parser.add_argument("--keep", action="store_true", help="keep the ledger directory")
    parser.add_argument(
        "--resume",
        type=Path,
        default=None,
        help="grow the events of a kept run's caravan-scale-* directory further (kept)",
    )
    parser.add_argument("--anchored", type=int, default=None, help="events the kept run has")
    parser.add_argument("--queries", type=int, default=10_000, help="IsRecognised per round")
    parser.add_argument("--trail-queries", type=int, default=2_000, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="query rounds; best p50 kept")
    parser.add_argument(
        "--real-aeos",
        type=int,
        default=10_000,
        help="AEOs issued through the contract (multiple of 10); the rest are replicated",
    )
    parser.add_argument("--aeo-block", type=int, default=2000, help="IssueAeo tx per block")
    parser.add_argument("--event-block", type=int, default=2, help="AnchorEvents tx per block")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--profile", action="store_true", help="cProfile the queries at the end")
    parser.add_argument("--json", action="store_true", help="print only the JSON line")
    opts = parser.parse_args()
    if opts.aeos < 1 or opts.events < 0:
        parser.error("--aeos must be positive and --events not negative")
    if opts.real_aeos < 10 or opts.real_aeos % 10:
        parser.error("--real-aeos must be a positive multiple of 10")
    say: Say = (lambda *a: None) if opts.json else print
    rng = random.Random(opts.seed)
    target_events = opts.events if opts.max_events is None else min(opts.events, opts.max_events)

    if opts.resume is not None:
        root = opts.resume
        if not (root / "ledger.db").is_file():
            parser.error(f"--resume: no ledger at {root / 'ledger.db'}")
        if opts.anchored is None:
            parser.error("--resume needs --anchored (the events the kept run anchored)")
    else:
        if opts.dir is not None:
            opts.dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="caravan-scale-", dir=opts.dir))
    result: dict[str, Any] = {"machine": machine(), "dir": str(root)}
    say(f"ledger in {root}; {result['machine']}")
    if opts.resume is not None:
        c = resume(root, max(opts.aeo_block, opts.event_block))
    else:
        c = build(root, max(opts.aeo_block, opts.event_block))
    try:
        if opts.resume is not None:
            check_resume_point(c, opts.anchored, opts.event_block)
            anchored, issued = opts.anchored, opts.aeos
            say(f"resuming at {anchored:,} events")
        else:
            issued = aeo_phase(c, opts, result, rng, say)
            anchored = 0
        # bytes per event are measured over the events this run adds
        resumed_at, base_bytes = anchored, db_bytes(c.ledger)["db_bytes"]
        # ---------------------------------------------------------------- events
        trail_figures: list[dict[str, Any]] = []
        bytes_per_event = 4000.0  # prior until measured
        stopped = None
        for mark in checkpoints(target_events, (100_000, 1_000_000)):
            if mark <= anchored:
                continue
            free = shutil.disk_usage(root).free
            need = (mark - anchored) * bytes_per_event
            if need > free - RESERVE:
                stopped = (
                    f"stopped before {mark:,} events: about {need / GB:.1f} GiB more needed "
                    f"({bytes_per_event:,.0f} B/event), {free / GB:.1f} GiB free, "
                    f"{RESERVE / GB:.0f} GiB kept in reserve"
                )
                say(stopped)
                break
            seconds = grow_events(c, anchored, mark, opts.event_block, say)
            rate = (mark - anchored) / seconds
            anchored = mark
            size = db_bytes(c.ledger)
            bytes_per_event = (size["db_bytes"] - base_bytes) / (anchored - resumed_at)
            figures = measure_trails(
                c, anchored, opts.event_block, opts.trail_queries, opts.rounds, rng
            )
            figures.update(size, **proc_status(), anchor_events_per_s=round(rate))
            figures["bytes_per_event"] = round(bytes_per_event)
            trail_figures.append(figures)
            g, v = figures["get_trail"], figures["verify_trail"]
            gr, vr = figures["get_trail_repeat"], figures["verify_trail_repeat"]
            say(
                f"{anchored:>10,} events (anchored {rate:,.0f}/s): GetTrail p50 "
                f"{g['p50_ms']:.3f} ms p99 {g['p99_ms']:.3f} ms (again: p50 "
                f"{gr['p50_ms']:.3f}); VerifyTrail p50 {v['p50_ms']:.3f} ms p99 "
                f"{v['p99_ms']:.3f} ms (again: p50 {vr['p50_ms']:.3f}); "
                f"db {size['db_bytes'] / GB:.2f} GiB ({bytes_per_event:,.0f} B/event), "
                f"RSS {figures['vmrss_mb']} MiB "
                f"(peak {figures['vmhwm_mb']})"
            )
        result["trails"] = trail_figures
        result["stopped_early"] = stopped
        if trail_figures:
            result["event_disk_gb_per_million"] = round(bytes_per_event * 1e6 / GB, 2)
        if len(trail_figures) > 1:
            first, last = trail_figures[0], trail_figures[-1]
            result["trail_ratio"] = {
                "from_events": first["events"],
                "to_events": last["events"],
                "get_trail_p50": round(
                    last["get_trail"]["p50_ms"] / first["get_trail"]["p50_ms"], 3
                ),
                "verify_trail_p50": round(
                    last["verify_trail"]["p50_ms"] / first["verify_trail"]["p50_ms"], 3
                ),
                **{
                    f"{figure}_repeat_p50": round(
                        last[f"{figure}_repeat"]["p50_ms"] / first[f"{figure}_repeat"]["p50_ms"],
                        3,
                    )
                    for figure in TRAIL_FIGURES.values()
                },
            }
            ratio = result["trail_ratio"]
            say(
                f"trail cost {last['events']:,} / {first['events']:,} events: GetTrail "
                f"x{ratio['get_trail_p50']}, VerifyTrail x{ratio['verify_trail_p50']} (p50); "
                f"the same trails again (cached): GetTrail x{ratio['get_trail_repeat_p50']}, "
                f"VerifyTrail x{ratio['verify_trail_repeat_p50']}"
            )
        result["rss"] = proc_status()
        disk = [
            f"{result[key]} GiB per million {what}"
            for key, what in (
                ("aeo_disk_gb_per_million", "AEOs"),
                ("event_disk_gb_per_million", "events"),
            )
            if key in result
        ]
        say(f"disk: {', '.join(disk) or '-'}; peak RSS {result['rss']['vmhwm_mb']} MiB")
        if opts.profile:
            profile_queries(c, issued, anchored, opts.event_block, rng)
    finally:
        c.ledger.close()
        if not opts.keep and opts.resume is None:
            shutil.rmtree(root, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()

"""`caravan demo` (what ``make demo`` runs): a three-country consortium end to end over the API.

``caravan demo --dir demo-out`` creates a node hosting the customs administrations of
Kazakhstan, Uzbekistan and Kyrgyzstan (each with its own PKI: root, issuing CA, e-seal,
TSA, OCSP), an SEZ operator of Khorgos-Eastern Gate (KZ), serves the node's API on
127.0.0.1 in this process, and plays a story through HTTP only — every write a signed
proposal ``POST /v1/transactions``, every read a /v1 route:

1. KZ registers the Khorgos operator; KZ seals (``POST /v1/orgs/KZ-CUSTOMS/seal``, CAdES
   B-B), timestamps the seal at its TSA (``/orgs/KZ-CUSTOMS/tsa``, RFC 3161: CAdES B-T)
   and issues three AEO certificates;
2. KZ and UZ propose and sign an MRA, in force at once; a UZ verifier's recognition check
   answers YES, KG's NO (no MRA);
3. the operator anchors a consignment's EPCIS 2.0 events, arrival to departure;
4. a UZ client follows ``GET /v1/stream``; KZ suspends an AEO and UZ receives the
   ``AeoSuspended`` event; recognition now answers NO;
5. a verifier validates the sealed certificate (``POST /v1/validation``: TOTAL-PASSED), a
   tampered copy (TOTAL-FAILED) and the consignment's trail.

Then it prints the URLs to look at and the commands that check the written files with
independent tools, and keeps serving until Ctrl-C (``--no-serve``: stop at once). A
step that does not get the answer it expects is one line ``error: …`` and exit 1; an
input or environment problem (a directory that is not a previous demo's, a port in use)
is exit 3.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
import shutil
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from asn1crypto import cms
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from chaincode.canonical import canonical_json
from node.config import HostedOrg
from node.errors import NodeError
from node.node import Node, identity_name, init_node
from node.proposal import ProposalSigner
from node.services import submit
from trust_services.cades import signature_timestamp_token
from trust_services.errors import TrustServiceError
from trust_services.server import bind_socket

from ._common import console, fail, handle_errors
from .client import HttpClient
from .trace import event_fields

__all__ = [
    "DemoFailed",
    "TimestampedSeal",
    "aeo_record",
    "epcis_document",
    "register",
    "run_demo",
    "seal_and_timestamp",
]

MARKER = ".caravan-demo"
DEFAULT_PORT = 8700
ORGS = (
    HostedOrg(org="KZ-CUSTOMS", country="KZ", name="State Revenue Committee of Kazakhstan"),
    HostedOrg(org="UZ-CUSTOMS", country="UZ", name="Customs Committee of Uzbekistan"),
    HostedOrg(org="KG-CUSTOMS", country="KG", name="State Customs Service of Kyrgyzstan"),
)
KZ, UZ, KG = (o.org for o in ORGS)
SEZ = "KZ-KHORGOS"
SEZ_NAME = "Khorgos-Eastern Gate"
OPERATOR = "kz-khorgos"
UZ_VERIFIER = identity_name(UZ, "verifier")
#: the wallet identities the story acts as
KZ_ADMIN, KZ_OFFICER = identity_name(KZ, "admin"), identity_name(KZ, "officer")
UZ_ADMIN, KG_OFFICER = identity_name(UZ, "admin"), identity_name(KG, "officer")
#: Khorgos-Eastern Gate's GS1 location numbers (SGLN): the dry port and its gate
KHORGOS_SITE = "urn:epc:id:sgln:4870001.00000.0"
KHORGOS_GATE = "urn:epc:id:sgln:4870001.00001.0"
#: how long a step may wait for the node (the stream's event, the server's start)
WAIT_S = 30.0


class DemoFailed(Exception):
    """A step of the story did not get the answer it expects."""


def _expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


# --------------------------------------------------------------------------- command
def demo(
    directory: Annotated[
        Path,
        typer.Option(
            "--dir", help="Where the demo writes its node and files (replaced on each run)."
        ),
    ] = Path("demo-out"),
    port: Annotated[
        int | None,
        typer.Option(
            help=f"Port of the node's API (default {DEFAULT_PORT}, or a free one if it is "
            "taken; 0: a free one).",
            min=0,
            max=65535,
        ),
    ] = None,
    serve: Annotated[
        bool,
        typer.Option("--serve/--no-serve", help="Keep serving after the story until Ctrl-C."),
    ] = True,
) -> None:
    """A consortium of KZ, UZ and KG customs and an SEZ operator, end to end over the API."""
    run_demo(directory, port=port, keep_serving=serve)


@handle_errors
def run_demo(directory: Path, *, port: int | None = None, keep_serving: bool = True) -> None:
    """Set up the node in ``directory``, serve it, play the story; see the module doc."""
    passphrase = _fresh_directory(directory)
    sock = _listen(port)
    try:
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        console.rule("[bold]Caravan demo: three customs administrations and an SEZ")
        with console.status("creating the node: three PKIs, identities, the ledger …"):
            node_dir = directory / "node"
            init_node(
                node_dir,
                ORGS,
                passphrase,
                store_passphrase=True,
                host="127.0.0.1",
                port=sock.getsockname()[1],
            )
        node = Node.open(node_dir, {o.org: passphrase for o in ORGS})
        try:
            _add_identities(node)
            files = {"root": directory / "kz-root.pem", "issuing": directory / "kz-issuing.pem"}
            for name, path in files.items():
                path.write_bytes(node.pki(KZ).pem(name))
            with _serving(node, sock):
                outcome = _play(Story(directory, node_dir, base, node), files)
                _show_summary(outcome)
                if keep_serving:
                    _serve_until_interrupted(base)
        finally:
            node.close()
    finally:
        sock.close()


def _fresh_directory(directory: Path) -> bytes:
    """(Re)create ``directory`` (only a previous demo's is deleted); a new passphrase."""
    if directory.exists():
        if not (directory / MARKER).exists():
            raise fail(f"{directory} exists and is not a Caravan demo directory")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / MARKER).touch()
    return secrets.token_urlsafe(24).encode()


def _listen(port: int | None) -> socket.socket:
    """The API's socket on loopback: ``port``, or 8700 and else a free one."""
    if port is not None:
        try:
            return bind_socket("127.0.0.1", port)
        except TrustServiceError as exc:
            raise fail(f"{exc} (try --port 0 for a free port)") from None
    try:
        return bind_socket("127.0.0.1", DEFAULT_PORT)
    except TrustServiceError:
        console.print(f"port {DEFAULT_PORT} is taken: the node takes a free port")
        return bind_socket("127.0.0.1", 0)


def _add_identities(node: Node) -> None:
    """UZ's verifier and the Khorgos-Eastern Gate operator (`node identity add`)."""
    node.wallet.issue(node.pki(UZ), UZ_VERIFIER, role="verifier")
    node.wallet.issue(node.pki(KZ), OPERATOR, role="sez-operator", sez=SEZ)


@contextmanager
def _serving(node: Node, sock: socket.socket) -> Iterator[None]:
    """The node's API (and its TSA/OCSP/CRLs) under uvicorn in a thread of this process."""
    import uvicorn

    from api.app import create_app

    server = uvicorn.Server(
        uvicorn.Config(
            create_app(node),
            lifespan="on",
            log_level="warning",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=2,
        )
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="caravan-api", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + WAIT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise fail("the node's API did not start")
        time.sleep(0.01)
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=WAIT_S)


def _serve_until_interrupted(base: str) -> None:
    console.print(f"serving {base} — Ctrl-C to stop", highlight=False)
    console.file.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.print("stopped")


# --------------------------------------------------------------------------- the story
@dataclass
class Outcome:
    """What the summary panel points at."""

    base: str
    directory: Path
    node_dir: Path
    aeo_id: str
    consignment_ref: str
    files: dict[str, Path] = field(default_factory=dict)


class Story:
    """The actors and their HTTP clients; every step talks to the node's /v1 API."""

    def __init__(self, directory: Path, node_dir: Path, base: str, node: Node) -> None:
        self.directory = directory
        self.node_dir = node_dir
        self.base = base
        self.signers: dict[str, ProposalSigner] = {
            name: node.signer(name)
            for name in (KZ_ADMIN, KZ_OFFICER, UZ_ADMIN, UZ_VERIFIER, KG_OFFICER, OPERATOR)
        }
        self.http = httpx.Client(base_url=base, timeout=WAIT_S)
        self.clients = {name: HttpClient(base, s) for name, s in self.signers.items()}
        self.anonymous = HttpClient(base)
        self.number = 0
        now = dt.datetime.now(dt.UTC).replace(microsecond=0)
        self.now = now
        self.year = now.year

    def close(self) -> None:
        for client in (*self.clients.values(), self.anonymous):
            client.close()
        self.http.close()

    # ------------------------------------------------------------------ output
    def step(self, text: str) -> None:
        self.number += 1
        console.print(f"[bold cyan]{self.number:>2}.[/] {text}", highlight=False, soft_wrap=True)

    def detail(self, text: str) -> None:
        console.print(f"    {text}", highlight=False, soft_wrap=True)

    # ------------------------------------------------------------------ HTTP
    def get(self, path: str, **params: str | int) -> Any:
        return _json(self.http.get(path, params=params or None), f"GET {path}")

    def post(self, path: str, body: Any) -> Any:
        return _json(self.http.post(path, json=body), f"POST {path}")

    def write(self, who: str, function: str, arg: dict[str, Any]) -> dict[str, Any]:
        """Sign the proposal as ``who`` and submit it; the VALID receipt."""
        channel = self.anonymous.channel  # GET /v1/health, once
        signed = submit.propose(self.signers[who], function, arg, channel=channel)
        receipt = self.clients[who].submit(signed)
        _expect(receipt.get("code") == "VALID", f"{function} was not valid: {receipt}")
        return receipt

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


def _json(response: httpx.Response, what: str) -> Any:
    if not response.is_success:
        try:
            detail = response.json().get("detail")
        except (ValueError, AttributeError):
            detail = None
        raise DemoFailed(f"{what} answered {response.status_code}: {detail or response.text}")
    return response.json()


def _tx(receipt: dict[str, Any]) -> str:
    return f"tx {str(receipt['tx_id'])[:12]}… block {receipt['block']}"


def _iso(when: dt.datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _play(story: Story, files: dict[str, Path]) -> Outcome:
    """Every step of the story; an unexpected answer is :class:`DemoFailed` (exit 1)."""
    try:
        return _steps(story, files)
    except (DemoFailed, NodeError, TrustServiceError, httpx.HTTPError) as exc:
        text = " ".join(str(exc).split())
        raise fail(f"demo step {story.number + 1} failed: {escape(text)}", 1) from None
    finally:
        story.close()


def _steps(s: Story, files: dict[str, Path]) -> Outcome:
    s.step(
        f"node init {s.node_dir}: {', '.join(o.org for o in ORGS)}, each with its PKI (root, "
        "issuing CA, e-seal, TSA, OCSP) and admin, officer and node identities; the genesis "
        "makes them the founding members"
    )
    s.detail(
        f"node identity add: {UZ_VERIFIER} (verifier of {UZ}), {OPERATOR} (sez-operator of "
        f"{SEZ}, {KZ})"
    )
    health = s.get("/v1/health")
    s.step(
        f"node serving {s.base} (API, and each organisation's TSA, OCSP and CRLs): channel "
        f"{health['channel']}, hosting {', '.join(health['orgs'])}, height {health['height']}"
    )
    members = s.get("/v1/members")
    members = members["items"] if isinstance(members, dict) else members
    s.detail("trust list: " + "; ".join(f"{m['msp_id']} ({m['country']})" for m in members))

    operator = s.signers[OPERATOR].certificate.subject.rfc4514_string()
    receipt = s.write(
        KZ_ADMIN,
        "RegisterSezOperator",
        {"sez": SEZ, "name": SEZ_NAME, "operator_subject": operator},
    )
    s.step(f"KZ admin registers the {SEZ_NAME} operator ({SEZ}): {_tx(receipt)}")

    outcome = Outcome(s.base, s.directory, s.node_dir, "", "", dict(files))
    aeos = _issue_aeos(s, outcome)
    main = aeos[0]
    outcome.aeo_id = main["aeo_id"]
    mra_id = _sign_mra(s)
    _recognition(s, main["aeo_id"], expected={UZ: True, KG: False})
    _holder_details(s, main["aeo_id"])
    outcome.consignment_ref = _anchor_consignment(s, main["aeo_id"])
    _suspend_and_follow(s, main, mra_id)
    _validate(s, outcome)
    report = s.get(f"/v1/consignments/{_q(outcome.consignment_ref)}/verification")
    _expect(report.get("ok") is True, f"the trail does not verify: {report.get('problems')}")
    s.step(
        f"A verifier checks the trail of {outcome.consignment_ref}: verified — "
        f"{report['events']} events, links, sequence and Merkle proofs"
    )
    ledger = s.get("/v1/ledger")
    s.step(
        f"Ledger: {ledger['height']} blocks, {ledger['tx_count']} transactions "
        f"({ledger['valid_tx_count']} valid), last block {str(ledger['last_hash'])[:16]}…"
    )
    return outcome


def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


# ------------------------------------------------------------------ AEO certificates
def aeo_record(
    aeo_id: str,
    holder: str,
    tin: str,
    address: tuple[str, str, str],
    aeo_type: str,
    roles: list[str],
    now: dt.datetime,
) -> dict[str, Any]:
    """An AEO certificate record of KZ customs (the fields of DOMAIN.md)."""
    validated = now - dt.timedelta(days=30)
    street, city, postcode = address
    return {
        "aeo_id": aeo_id,
        "holder": {
            "tin": tin,
            "name": holder,
            "address": {"street": street, "city": city, "postcode": postcode, "country": "KZ"},
        },
        "issuer": {"administration": KZ, "country": "KZ"},
        "aeo_type": aeo_type,
        "supply_chain_roles": roles,
        "status": "valid",
        "status_reason": None,
        "status_effective_at": _iso(validated),
        "validated_at": validated.strftime("%Y-%m-%d"),
        "valid_until": (validated + dt.timedelta(days=3 * 365)).strftime("%Y-%m-%d"),
        "next_reassessment": (validated + dt.timedelta(days=365)).strftime("%Y-%m-%d"),
        "mra_sharing_consent": True,
    }


@dataclass(frozen=True)
class TimestampedSeal:
    """A CAdES B-T seal made by the node, and the RFC 3161 token inside it."""

    seal: bytes
    record_hash: str
    sealed_by: str
    signature_value: bytes  #: what the token's message imprint covers
    token: bytes
    gen_time: dt.datetime
    serial: int


def seal_and_timestamp(client: HttpClient, org: str, record: dict[str, Any]) -> TimestampedSeal:
    """The organisation's e-seal from the node (``POST /v1/orgs/{org}/seal``, CAdES B-T:
    the node's seal service asks the organisation's own TSA for the signature timestamp)."""
    sealed = client.seal_record(org, record, "B-T")
    seal = base64.b64decode(sealed["seal"])
    found = signature_timestamp_token(seal)
    if found is None:
        raise DemoFailed("the node's B-T seal carries no signature timestamp")
    value, token = found
    tst = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    return TimestampedSeal(
        seal,
        str(sealed["record_hash"]),
        str(sealed["sealed_by"]),
        value,
        token,
        tst["gen_time"].native,
        tst["serial_number"].native,
    )


def _aeo_write(s: Story, record: dict[str, Any]) -> tuple[dict[str, Any], TimestampedSeal]:
    sealed = seal_and_timestamp(s.clients[KZ_OFFICER], KZ, record)
    arg = {
        "record": record,
        "record_hash": sealed.record_hash,
        "seal": base64.b64encode(sealed.seal).decode("ascii"),
    }
    return arg, sealed


def _issue_aeos(s: Story, outcome: Outcome) -> list[dict[str, Any]]:
    y = s.year
    records = [
        aeo_record(
            f"KZ-AEO-{y}-000123",
            "Silk Road Logistics LLP",
            "KZ123456789012",
            ("Dostyk Ave 12", "Almaty", "050010"),
            "AEOF",
            ["exporter", "freight_forwarder"],
            s.now,
        ),
        aeo_record(
            f"KZ-AEO-{y}-000124",
            "Zhetysu Agro Export JSC",
            "KZ210987654321",
            ("Abai St 45", "Taldykorgan", "040000"),
            "AEOS",
            ["exporter", "manufacturer"],
            s.now,
        ),
        aeo_record(
            f"KZ-AEO-{y}-000125",
            "Altyn Customs Brokers LLP",
            "KZ330011223344",
            ("Kabanbay Batyr Ave 8", "Astana", "010000"),
            "AEOC",
            ["customs_broker"],
            s.now,
        ),
    ]
    s.step(
        "A KZ officer issues three AEO certificates: each record sealed by the node's e-seal "
        "service with a signature timestamp from KZ's TSA (CAdES B-T, RFC 3161), then IssueAeo"
    )
    for n, record in enumerate(records):
        arg, sealed = _aeo_write(s, record)
        receipt = s.write(KZ_OFFICER, "IssueAeo", arg)
        payload = receipt.get("payload") or {}
        _expect(payload.get("status") == "valid", f"IssueAeo answered {payload}")
        s.detail(
            f"{record['aeo_id']} {record['aeo_type']} {record['holder']['name']}: "
            f"timestamp {_iso(sealed.gen_time)} serial {sealed.serial}; {_tx(receipt)}"
        )
        if n == 0:
            outcome.files.update(_write_certificate(s.directory, record, sealed))
            s.detail(f"sealed by {sealed.sealed_by}")
    return records


def _write_certificate(
    directory: Path, record: dict[str, Any], sealed: TimestampedSeal
) -> dict[str, Path]:
    """What KZ hands the trader: the record, its seal, and the seal's timestamp token."""
    stem = directory / str(record["aeo_id"])
    files = {
        "record": stem.with_name(f"{stem.name}.json"),
        "canonical": stem.with_name(f"{stem.name}.canonical.json"),
        "seal": stem.with_name(f"{stem.name}.p7s"),
        "signature_value": stem.with_name(f"{stem.name}.signature-value.bin"),
        "tst": stem.with_name(f"{stem.name}.seal-timestamp.tst"),
    }
    files["record"].write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    files["canonical"].write_bytes(canonical_json(record))
    files["seal"].write_bytes(sealed.seal)
    files["signature_value"].write_bytes(sealed.signature_value)
    files["tst"].write_bytes(sealed.token)
    return files


# ------------------------------------------------------------------ MRA and recognition
def _sign_mra(s: Story) -> str:
    mra_id = f"MRA-KZ-UZ-{s.year}"
    decision = s.directory / f"{mra_id}-decision.txt"
    decision.write_text(
        f"Joint decision {s.year}/1 of the customs administrations of Kazakhstan and "
        "Uzbekistan on the mutual recognition of their Authorised Economic Operator "
        "programmes.\n"
    )
    act = {
        "legal_instrument_ref": f"Joint Decision KZ-UZ {s.year}/1",
        "document_hash": hashlib.sha256(decision.read_bytes()).hexdigest(),
    }
    proposal = {
        "mra_id": mra_id,
        "title": "AEO mutual recognition arrangement between Kazakhstan and Uzbekistan",
        "parties": [KZ, UZ],
        "recognised_types": {KZ: ["AEOS", "AEOF"], UZ: ["AEOS", "AEOF"]},
        "benefits": ["fewer_controls", "priority_clearance"],
        "effective_from": s.now.strftime("%Y-%m-%d"),
        **act,
    }
    proposed = s.write(KZ_ADMIN, "ProposeMra", proposal)
    kz_signed = s.write(KZ_ADMIN, "SignMra", {"mra_id": mra_id, **act})
    uz_signed = s.write(UZ_ADMIN, "SignMra", {"mra_id": mra_id, **act})
    mra = s.get(f"/v1/mras/{_q(mra_id)}")
    _expect(mra.get("state_now") == "in_force", f"{mra_id} is {mra.get('state_now')}")
    s.step(
        f"KZ and UZ admins sign {mra_id} ({act['legal_instrument_ref']}): proposed "
        f"{_tx(proposed)}; KZ signs {_tx(kz_signed)}; UZ signs {_tx(uz_signed)} → "
        f"{mra['state_now']}"
    )
    return mra_id


def _recognition(s: Story, aeo_id: str, expected: dict[str, bool]) -> None:
    for org, yes in expected.items():
        country = org[:2]
        answer = s.get("/v1/recognition", aeo_id=aeo_id, country=country)
        _expect(
            answer.get("recognised") is yes,
            f"recognition of {aeo_id} in {country}: expected {'YES' if yes else 'NO'}, "
            f"got {answer}",
        )
        who = "a UZ verifier" if org == UZ else f"a {country} officer"
        s.step(f"{who} checks {aeo_id} in {country}: {'YES' if yes else 'NO'}")
        for reason in answer.get("reasons") or []:
            s.detail(f"- {reason}")


def _holder_details(s: Story, aeo_id: str) -> None:
    """Signed reads (RFC 9421): an MRA partner sees the holder's TIN, KG does not."""
    uz_view = s.clients[UZ_VERIFIER].get_aeo(aeo_id)
    kg_view = s.clients[KG_OFFICER].get_aeo(aeo_id)
    uz_tin = uz_view["record"]["holder"].get("tin")
    _expect(uz_tin is not None, "UZ, an MRA partner, does not see the holder's TIN")
    _expect("tin" not in kg_view["record"]["holder"], "KG sees the holder's TIN")
    s.step(
        f"Signed reads of {aeo_id} (RFC 9421): UZ, an MRA partner, sees holder TIN "
        f"{uz_tin}; KG gets it withheld ({', '.join(kg_view.get('redacted') or [])})"
    )


# ------------------------------------------------------------------ consignment events
def epcis_document(ref: str, now: dt.datetime) -> dict[str, Any]:
    """An EPCIS 2.0 document: a consignment's passage through Khorgos-Eastern Gate."""
    steps = (
        (-6 * 60, "arriving", "in_transit", KHORGOS_GATE),
        (-5 * 60, "receiving", "in_progress", KHORGOS_SITE),
        (-4 * 60, "inspecting", "conformant", KHORGOS_SITE),
        (-3 * 60, "storing", "in_progress", KHORGOS_SITE),
        (-60, "loading", "in_progress", KHORGOS_SITE),
        (-30, "departing", "in_transit", KHORGOS_GATE),
    )
    events = [
        {
            "type": "ObjectEvent",
            "eventTime": _iso(now + dt.timedelta(minutes=minutes)),
            "eventTimeZoneOffset": "+05:00",
            "epcList": ["urn:epc:id:sscc:4870001.0000000042"],
            "action": "OBSERVE",
            "bizStep": step,
            "disposition": disposition,
            "readPoint": {"id": where},
            "bizLocation": {"id": where},
            "bizTransactionList": [{"type": "urn:wco:ucr", "bizTransaction": f"urn:wco:ucr:{ref}"}],
        }
        for minutes, step, disposition, where in steps
    ]
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _iso(now),
        "epcisBody": {"eventList": events},
    }


def _anchor_consignment(s: Story, aeo_id: str) -> str:
    ref = f"{s.year % 100:02d}KZ0000042-KHG"
    document = epcis_document(ref, s.now)
    path = s.directory / f"consignment-{ref}.epcis.json"
    path.write_text(json.dumps(document, indent=2) + "\n")
    events = document["epcisBody"]["eventList"]
    entries = [event_fields(e, consignment_ref=ref, aeo_id=aeo_id) for e in events]
    s.step(
        f"The {SEZ_NAME} operator anchors consignment {ref} (trader {aeo_id}): "
        f"{len(entries)} EPCIS 2.0 events from {path.name}, hashes only, in two Merkle batches"
    )
    for chunk in (entries[:4], entries[4:]):
        receipt = s.write(OPERATOR, "AnchorEvents", {"sez": SEZ, "events": chunk})
        payload = receipt.get("payload") or {}
        s.detail(
            f"{' → '.join(e['biz_step'] for e in chunk)}: root "
            f"{str(payload.get('batch_root'))[:16]}…, {_tx(receipt)}"
        )
    trail = s.get(f"/v1/consignments/{_q(ref)}/trail")
    trail = trail["items"] if isinstance(trail, dict) else trail
    steps = [e["biz_step"] for e in trail]
    _expect(steps == [e["biz_step"] for e in entries], f"the trail is {steps}")
    return ref


# ------------------------------------------------------------------ suspension and stream
class StreamFollower:
    """A UZ client following ``GET /v1/stream`` from a block, in a thread, until it
    sees the AEO event it waits for."""

    def __init__(self, base: str, from_block: int, wanted: Callable[[dict[str, Any]], bool]):
        self.base = base
        self.from_block = from_block
        self.wanted = wanted
        self.connected = threading.Event()
        self.done = threading.Event()
        self.found: tuple[str, dict[str, Any]] | None = None
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="uz-stream", daemon=True)

    def start(self) -> StreamFollower:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        try:
            with (
                httpx.Client(base_url=self.base, timeout=httpx.Timeout(WAIT_S)) as http,
                http.stream(
                    "GET", "/v1/stream", params={"from_block": self.from_block}
                ) as response,
            ):
                if response.status_code != 200:
                    self.error = f"GET /v1/stream answered {response.status_code}"
                    return
                self.connected.set()
                for event_id, data in _messages(response.iter_lines()):
                    if self._stop.is_set():
                        return
                    for entry in json.loads(data).get("entries", []):
                        if self.wanted(entry):
                            self.found = (event_id, entry)
                            return
        except (httpx.HTTPError, ValueError) as exc:
            self.error = f"the event stream failed: {exc}"
        finally:
            self.connected.set()
            self.done.set()


def _messages(lines: Iterator[str]) -> Iterator[tuple[str, str]]:
    """``(id, data)`` of each Server-Sent Events message (comments skipped)."""
    event_id, data = "", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event_id, "\n".join(data)
            event_id, data = "", []
        elif line.startswith("id:"):
            event_id = line[3:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def _suspend_and_follow(s: Story, record: dict[str, Any], mra_id: str) -> None:
    aeo_id = str(record["aeo_id"])
    height = int(s.get("/v1/health")["height"])
    follower = StreamFollower(
        s.base,
        height,
        lambda e: e.get("type") == "AeoSuspended" and e.get("aeo_id") == aeo_id,
    ).start()
    try:
        _expect(
            follower.connected.wait(WAIT_S) and follower.error is None,
            follower.error or "GET /v1/stream did not answer",
        )
        s.step(f"A UZ client follows the event stream {s.url(f'/v1/stream?from_block={height}')}")
        suspended = {
            **record,
            "status": "suspended",
            "status_reason": "post-audit findings: security requirements not met",
            "status_effective_at": _iso(dt.datetime.now(dt.UTC)),
        }
        arg, _sealed = _aeo_write(s, suspended)
        receipt = s.write(KZ_OFFICER, "SuspendAeo", arg)
        s.step(f"KZ suspends {aeo_id} (sealed, timestamped version 2): {_tx(receipt)}")
        _expect(follower.done.wait(WAIT_S), "UZ received no event on the stream")
    finally:
        follower.stop()
    _expect(follower.found is not None, follower.error or "the stream ended without the event")
    assert follower.found is not None
    event_id, entry = follower.found
    block = event_id.split(":", 1)[0]
    s.step(
        f"UZ received on the stream: {entry['type']} {entry['aeo_id']} version "
        f"{entry.get('version')}, status {entry.get('status')}, in block {block} "
        f"(event id {event_id[:24]}…)"
    )
    answer = s.get("/v1/recognition", aeo_id=aeo_id, country="UZ")
    _expect(answer.get("recognised") is False, f"recognition after the suspension: {answer}")
    s.step(f"UZ checks {aeo_id} again: NO (MRA {mra_id} still in force)")
    for reason in answer.get("reasons") or []:
        s.detail(f"- {reason}")


# ------------------------------------------------------------------ validation
def _validate(s: Story, outcome: Outcome) -> None:
    files = outcome.files
    seal = files["seal"].read_bytes()
    content = files["canonical"].read_bytes()
    result = s.post("/v1/validation", _detached(seal, content))
    _expect(
        result.get("indication") == "TOTAL-PASSED",
        f"the sealed certificate did not validate: {result.get('indication')}",
    )
    report = result["reports"][0]
    s.step(
        f"A verifier validates the sealed certificate {files['seal'].name} "
        f"(POST /v1/validation): {result['indication']}"
    )
    signer = (report.get("signer") or {}).get("commonName")
    s.detail(f"{report.get('format')}, {signer}: {report.get('qualification')}")
    stamp = report.get("timestamp") or {}
    checks = report.get("checks") or {}
    s.detail(
        f"timestamp {stamp.get('genTime')} by {stamp.get('tsa')}; "
        + ", ".join(f"{name} {c.get('result')}" for name, c in checks.items())
    )
    history = s.get(f"/v1/aeo-certificates/{_q(outcome.aeo_id)}/history")
    versions = history["items"] if isinstance(history, dict) else history
    ledger_hash = versions[0]["record_hash"]
    _expect(
        ledger_hash == hashlib.sha256(content).hexdigest(),
        "the certificate's hash is not version 1's on the ledger",
    )
    status = s.get(f"/v1/aeo-certificates/{_q(outcome.aeo_id)}/status")
    s.detail(
        f"its hash is version 1's on the ledger; status on the ledger now: "
        f"{status['status']} (version {status['version']})"
    )
    tampered = json.loads(files["record"].read_text())
    tampered["aeo_type"] = "AEOS" if tampered["aeo_type"] != "AEOS" else "AEOC"
    files["tampered"] = files["record"].with_name(f"{outcome.aeo_id}.tampered.json")
    files["tampered"].write_text(json.dumps(tampered, indent=2, ensure_ascii=False) + "\n")
    bad = s.post("/v1/validation", _detached(seal, canonical_json(tampered)))
    _expect(
        bad.get("indication") == "TOTAL-FAILED",
        f"the tampered copy was not refused: {bad.get('indication')}",
    )
    sub = bad["reports"][0].get("subIndication")
    s.step(
        f"… and a tampered copy (aeo_type changed to {tampered['aeo_type']}): "
        f"{bad['indication']} / {sub}"
    )


def _detached(signature: bytes, content: bytes) -> dict[str, str]:
    return {
        "signature": base64.b64encode(signature).decode("ascii"),
        "content": base64.b64encode(content).decode("ascii"),
    }


# --------------------------------------------------------------------------- summary
def _show_summary(o: Outcome) -> None:
    f = o.files
    ref = _q(o.consignment_ref)
    urls = Table.grid(padding=(0, 2))
    urls.add_column(style="bold")
    urls.add_column(overflow="fold")
    for label, url in (
        ("API docs", f"{o.base}/docs"),
        ("AEO record", f"{o.base}/v1/aeo-certificates/{o.aeo_id}"),
        ("its history", f"{o.base}/v1/aeo-certificates/{o.aeo_id}/history"),
        ("recognition", f"{o.base}/v1/recognition?aeo_id={o.aeo_id}&country=UZ"),
        ("trail", f"{o.base}/v1/consignments/{ref}/trail"),
        ("verification", f"{o.base}/v1/consignments/{ref}/verification"),
        ("event stream", f"{o.base}/v1/stream?from_block=0"),
        ("KZ TSA (POST)", f"{o.base}/orgs/{KZ}/tsa"),
        ("KZ CRL", f"{o.base}/orgs/{KZ}/crl/issuing.crl"),
    ):
        urls.add_row(label, url)
    console.print()
    console.print(Panel(urls, title="Caravan consortium demo: look at", expand=False))
    root, issuing = f["root"], f["issuing"]
    lines = [
        f"check the files in {o.directory}/ independently:",
        f"  caravan ledger verify --ledger {o.node_dir}",
        f"  openssl cms -verify -binary -inform DER -in {f['seal']} -content {f['canonical']} "
        f"-CAfile {root} -purpose any -out /dev/null",
        f"  openssl ts -verify -token_in -in {f['tst']} -data {f['signature_value']} "
        f"-CAfile {root} "
        f"-untrusted {issuing}",
        f"  caravan verify {f['canonical']} --signature {f['seal']} --trust {root}",
        f"key-store passphrases: {o.node_dir}/secrets/<ORG>.pass (mode 0600); serve the node "
        f"again with: caravan node start --dir {o.node_dir}",
    ]
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

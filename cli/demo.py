"""`caravan demo`: the main job on the embedded default (``make demo``).

Until the ledger lands this is the trust-services walkthrough: a customs administration
creates its PKI, starts its TSA/OCSP/CRL service on loopback, seals an AEO certificate
record (CAdES B-LT, timestamped over HTTP, revocation data embedded), timestamps a
declaration, and a verifier in another country validates both against the
administration's root alone and gets ETSI EN 319 102-1 reports. A tampered copy shows
what a failure looks like. Every artefact stays in the demo directory, with the
commands that check it with independent tools.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.panel import Panel

from trust_services.cades import CadesSigner, Level, canonical_json
from trust_services.client import HttpTimestamper, request_timestamp
from trust_services.fetch import HttpRevocationSource
from trust_services.pki import init_pki
from trust_services.server import BackgroundServer, TrustServicesApp
from trust_services.validation import (
    CertificateValidator,
    Indication,
    ValidationReport,
    render_lines,
    verify,
)

from ._common import console, fail, handle_errors

ORG = "KZ-CUSTOMS"
AEO_ID = "KZ-AEO-2026-000123"


def sample_aeo_record(now: dt.datetime) -> dict[str, Any]:
    """An AEO certificate record with the fields of DOMAIN.md."""
    return {
        "aeo_id": AEO_ID,
        "holder": {
            "tin": "KZ123456789012",
            "name": "Silk Road Logistics LLP",
            "address": {
                "street": "Dostyk Ave 12",
                "city": "Almaty",
                "postcode": "050010",
                "country": "KZ",
            },
        },
        "issuer": {"administration": ORG, "country": "KZ"},
        "aeo_type": "AEOF",
        "supply_chain_roles": ["exporter", "freight forwarder"],
        "status": "valid",
        "status_reason": None,
        "status_effective_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "validated_at": now.strftime("%Y-%m-%d"),
        "valid_until": (now + dt.timedelta(days=3 * 365)).strftime("%Y-%m-%d"),
        "next_reassessment": (now + dt.timedelta(days=365)).strftime("%Y-%m-%d"),
        "mra_sharing_consent": True,
    }


def _step(number: int, title: str) -> None:
    console.rule(f"[bold cyan]{number}. {title}")


def _show(report: ValidationReport) -> None:
    for line in render_lines(report):
        console.print("   " + line, highlight=False, soft_wrap=True)


def demo(
    directory: Annotated[
        Path, typer.Option("--dir", help="Where the demo writes its node and files.")
    ] = Path("demo-out"),
    port: Annotated[int, typer.Option(help="Port of the trust services (0: a free one).")] = 0,
    serve: Annotated[
        bool, typer.Option("--serve", help="Keep serving after the walkthrough until Ctrl-C.")
    ] = False,
) -> None:
    """The trust-services walkthrough: PKI, seal, timestamp, verify, report."""
    run_demo(directory, port=port, keep_serving=serve)


@handle_errors
def run_demo(directory: Path, *, port: int = 0, keep_serving: bool = False) -> None:
    if directory.exists():
        if not (directory / ".caravan-demo").exists():
            raise fail(f"{directory} exists and is not a Caravan demo directory")
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    (directory / ".caravan-demo").touch()
    passphrase = secrets.token_urlsafe(24).encode()
    secret_file = directory / "passphrase.txt"
    secret_file.write_bytes(passphrase)
    secret_file.chmod(0o600)
    now = dt.datetime.now(dt.UTC)

    with BackgroundServer(TrustServicesApp(), port=port) as server:
        _step(1, "KZ customs creates its PKI")
        pki = init_pki(
            directory,
            ORG,
            country="KZ",
            name="State Revenue Committee of Kazakhstan",
            passphrase=passphrase,
            base_url=server.base_url_for(ORG),
        )
        server.add(pki)
        for name in ("root", "issuing", "seal", "tsa", "ocsp"):
            cert = pki.certificate(name)
            console.print(f"   {name:<8} {cert.subject.rfc4514_string()}", highlight=False)
        root_pem = directory / "kz-root.pem"
        root_pem.write_bytes(pki.pem("root"))
        (directory / "kz-issuing.pem").write_bytes(pki.pem("issuing"))
        console.print(f"   TSA, OCSP and CRLs served at {server.base_url_for(ORG)}")

        _step(2, f"KZ seals AEO certificate {AEO_ID} (CAdES B-LT, RFC 8785 JSON)")
        record = sample_aeo_record(now)
        record_path = directory / f"{AEO_ID}.json"
        record_path.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n")
        revocation = HttpRevocationSource()
        with HttpTimestamper(server.url(ORG, "/tsa")) as tsa:
            signer = CadesSigner.for_org(pki, timestamper=tsa, revocation=revocation)
            seal = signer.sign_json(record, Level.B_LT)
        seal_path = directory / f"{AEO_ID}.p7s"
        seal_path.write_bytes(seal)
        canonical_path = directory / f"{AEO_ID}.canonical.json"
        canonical_path.write_bytes(canonical_json(record))
        console.print(f"   {record_path.name} sealed → {seal_path.name} ({len(seal)} bytes)")

        _step(3, "KZ timestamps a customs declaration at its TSA over HTTP (RFC 3161)")
        declaration = directory / "declaration-KZ-2026-0042.txt"
        declaration.write_text(
            "Export declaration KZ-2026-0042\nExporter: Silk Road Logistics LLP\n"
            "Consignment UCR 6KZ123456789012-0042 via Khorgos-Eastern Gate\n"
        )
        response, _token, info = request_timestamp(
            declaration.read_bytes(), server.url(ORG, "/tsa")
        )
        tsr_path = directory / "declaration-KZ-2026-0042.tsr"
        tsr_path.write_bytes(response)
        console.print(
            f"   token serial {info.serial}, time {info.gen_time.isoformat()}, "
            f"policy {info.policy}, accuracy {info.accuracy} → {tsr_path.name}",
            highlight=False,
        )

        _step(4, "A UZ verifier checks the seal with KZ's root certificate alone")
        validator = CertificateValidator([pki.certificate("root")], source=revocation)
        reports = [
            *verify(record_path.read_bytes(), seal, validator=validator),
            *verify(declaration.read_bytes(), response, validator=validator),
        ]
        _show(reports[0])

        _step(5, "… and the timestamp of the declaration")
        _show(reports[1])

        _step(6, "A tampered record is caught")
        tampered = dict(record, aeo_type="AEOS")
        tampered_path = directory / f"{AEO_ID}.tampered.json"
        tampered_path.write_text(json.dumps(tampered, indent=2) + "\n")
        bad = verify(tampered_path.read_bytes(), seal, validator=validator)[0]
        console.print(f"   aeo_type changed to AEOS → {bad.indication} / {bad.sub_indication}")

        passed = all(r.indication is Indication.TOTAL_PASSED for r in reports)
        caught = bad.indication is Indication.TOTAL_FAILED
        console.print()
        console.print(
            Panel.fit(
                "\n".join(
                    [
                        f"files in {directory}/ — check them with independent tools:",
                        f"  openssl ts -verify -in {tsr_path} -data {declaration} "
                        f"-CAfile {root_pem} -untrusted {directory}/kz-issuing.pem",
                        f"  openssl cms -verify -binary -inform DER -in {seal_path} "
                        f"-content {canonical_path} -CAfile {root_pem} "
                        "-purpose any -out /dev/null",
                        f"  .venv/bin/caravan verify {record_path} --signature {seal_path} "
                        f"--trust {root_pem} --offline",
                        f"the key store passphrase of this demo is in {secret_file}",
                    ]
                ),
                title="Caravan trust services",
            )
        )
        if not (passed and caught):
            raise fail("the demo's validations did not give the expected results", 1)
        if keep_serving:
            console.print(f"serving {server.base_url_for(ORG)} — Ctrl-C to stop")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                console.print("stopped")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)

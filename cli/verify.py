"""`caravan verify`: validate a PAdES PDF, a detached CAdES signature or a timestamp.

Exit codes: 0 TOTAL-PASSED, 1 TOTAL-FAILED, 2 INDETERMINATE, 3 an input error (one line
on stderr, never a traceback).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import typer

from trust_services.errors import InputError
from trust_services.pki import load_pem_certificates
from trust_services.revocation import RevocationSource
from trust_services.validation import (
    CertificateValidator,
    Indication,
    ValidationReport,
    render_lines,
    verify,
)

from ._common import (
    EXIT_FAILED,
    EXIT_INDETERMINATE,
    console,
    fail,
    handle_errors,
    read_input,
)

__all__ = ["register"]

MAX_INPUT = 256 * 1024 * 1024


def _parse_time(text: str) -> dt.datetime:
    try:
        when = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(f"--at {text!r} is not an ISO 8601 time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)


def _exit_code(reports: list[ValidationReport]) -> int:
    indications = {r.indication for r in reports}
    if Indication.TOTAL_FAILED in indications:
        return EXIT_FAILED
    if Indication.INDETERMINATE in indications:
        return EXIT_INDETERMINATE
    return 0


@handle_errors
def verify_command(
    file: Annotated[Path, typer.Argument(help="PDF, signed data, or a .tsr/timestamp token.")],
    trust: Annotated[
        list[Path] | None,
        typer.Option(
            "--trust",
            help="PEM file of trust anchors (root certificates); repeat for more. Required.",
        ),
    ] = None,
    signature: Annotated[
        Path | None,
        typer.Option(
            "--signature",
            "-s",
            help="Detached CAdES signature (.p7s) or RFC 3161 response/token over FILE.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    offline: Annotated[
        bool,
        typer.Option("--offline", help="Do not fetch CRLs/OCSP; use embedded data only."),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option("--at", help="Validation time (ISO 8601, default now)."),
    ] = None,
) -> None:
    """Validate a signature, seal or timestamp and print an ETSI EN 319 102-1 report."""
    when = _parse_time(at) if at else dt.datetime.now(dt.UTC)
    anchors = []
    for path in trust or ():
        anchors.extend(load_pem_certificates(read_input(path, "trust file"), str(path)))
    if not anchors:
        raise fail("give at least one trust anchor with --trust")
    data = read_input(file, "file", MAX_INPUT)
    sig = read_input(signature, "signature", MAX_INPUT) if signature is not None else None
    source: RevocationSource | None = None
    if not offline:
        from trust_services.fetch import HttpRevocationSource

        source = HttpRevocationSource(timeout=5.0)
    validator = CertificateValidator(anchors, source=source)
    reports = verify(data, sig, validator=validator, at=when)
    if as_json:
        if len(reports) == 1:
            payload: object = reports[0].to_json()
        else:
            payload = {"reports": [r.to_json() for r in reports]}
        typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))
    else:
        for index, report in enumerate(reports):
            if len(reports) > 1:
                console.print(f"[bold]signature {index + 1} of {len(reports)}[/]")
            for line in render_lines(report):
                console.print(line, highlight=False, soft_wrap=True)
            if index + 1 < len(reports):
                console.print()
    code = _exit_code(reports)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify_command)

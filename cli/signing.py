"""`caravan seal`, `caravan sign`, `caravan sign-pdf`: CAdES and PAdES signatures.

    caravan seal record.json --dir node --org KZ-CUSTOMS --level B-T -o record.p7s
    caravan sign invoice.xml --dir node --org KZ-CUSTOMS --key officer-a-ivanov -o inv.p7s
    caravan sign-pdf in.pdf out.pdf --dir node --org KZ-CUSTOMS --level B-LTA

Timestamps come from the org's own TSA in process (sharing the HTTP TSA's serial file),
or from ``--tsa URL``. Validation data for B-LT/B-LTA comes from the org's own PKI.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.x509.oid import NameOID

from trust_services.cades import CadesSigner, Level, signature_timestamp_time
from trust_services.errors import InputError
from trust_services.pki import OrgPki
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import TimestampAuthority, Timestamper

from ._common import (
    DirOpt,
    OrgOpt,
    PassphraseFileOpt,
    PinFileOpt,
    console,
    handle_errors,
    open_pki,
    read_input,
)

__all__ = ["register"]

TsaOpt = Annotated[
    str | None,
    typer.Option("--tsa", help="RFC 3161 TSA URL (default: the org's own TSA, in process)."),
]
OutOpt = Annotated[Path, typer.Option("-o", "--out", help="Where to write the .p7s signature.")]
CadesLevelOpt = Annotated[
    Level, typer.Option("--level", help="CAdES baseline level.", case_sensitive=False)
]
JsonOpt = Annotated[
    bool,
    typer.Option("--json", help="Seal a JSON record over its RFC 8785 canonical form."),
]


def org_timestamper(pki: OrgPki, tsa_url: str | None) -> Timestamper:
    """``--tsa URL`` over HTTP, else the org's TSA in process (same serial file as the server)."""
    if tsa_url:
        from trust_services.client import HttpTimestamper  # written alongside; lazy import

        timestamper: Timestamper = HttpTimestamper(tsa_url)
        return timestamper
    return TimestampAuthority.for_org(pki)


def _cades(
    file: Path,
    root: Path,
    org: str,
    label: str,
    level: Level,
    tsa: str | None,
    as_json: bool,
    out: Path,
    passphrase_file: Path | None,
    pin_file: Path | None,
) -> None:
    data = read_input(file)
    pki = open_pki(root, org, passphrase_file, pin_file)
    timestamper = org_timestamper(pki, tsa) if level is not Level.B_B else None
    revocation = PkiRevocationSource(pki) if level is Level.B_LT else None
    signer = CadesSigner.for_org(pki, label, timestamper=timestamper, revocation=revocation)
    if as_json or file.suffix.lower() == ".json":
        signature = signer.sign_json(data, level)
        what = "JSON record (RFC 8785)"
    else:
        signature = signer.sign(data, level)
        what = "file"
    out.write_bytes(signature)
    console.print(
        f"{'sealed' if label == 'seal' else 'signed'} {what} {file} as "
        f"{_cn(signer.certificate)} ({org}), CAdES {level.value} → {out}"
        + _ts_note(signature_timestamp_time(signature)),
        highlight=False,
        soft_wrap=True,
    )


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _ts_note(when: dt.datetime | None) -> str:
    return f", timestamp {when.isoformat()}" if when is not None else ""


def register(app: typer.Typer) -> None:
    @app.command("seal")
    @handle_errors
    def seal(
        file: Annotated[Path, typer.Argument(help="The file (or JSON record) to seal.")],
        root: DirOpt,
        org: OrgOpt,
        out: OutOpt,
        level: CadesLevelOpt = Level.B_B,
        tsa: TsaOpt = None,
        as_json: JsonOpt = False,
        passphrase_file: PassphraseFileOpt = None,
        pin_file: PinFileOpt = None,
    ) -> None:
        """Seal a file with the organisation's qualified e-seal (detached CAdES)."""
        _cades(file, root, org, "seal", level, tsa, as_json, out, passphrase_file, pin_file)

    @app.command("sign")
    @handle_errors
    def sign(
        file: Annotated[Path, typer.Argument(help="The file (or JSON record) to sign.")],
        root: DirOpt,
        org: OrgOpt,
        key: Annotated[str, typer.Option("--key", help="Label of the officer's key.")],
        out: OutOpt,
        level: CadesLevelOpt = Level.B_B,
        tsa: TsaOpt = None,
        as_json: JsonOpt = False,
        passphrase_file: PassphraseFileOpt = None,
        pin_file: PinFileOpt = None,
    ) -> None:
        """Sign a file with an officer's key and certificate (detached CAdES)."""
        _cades(file, root, org, key, level, tsa, as_json, out, passphrase_file, pin_file)

    @app.command("sign-pdf")
    @handle_errors
    def sign_pdf_command(
        infile: Annotated[Path, typer.Argument(help="The PDF to sign.")],
        outfile: Annotated[Path, typer.Argument(help="Where to write the signed PDF.")],
        root: DirOpt,
        org: OrgOpt,
        level: Annotated[
            str, typer.Option("--level", help="PAdES baseline level: B-B, B-T, B-LT or B-LTA.")
        ] = "B-B",
        key: Annotated[
            str, typer.Option("--key", help="Key label: 'seal' or an officer's key.")
        ] = "seal",
        tsa: TsaOpt = None,
        passphrase_file: PassphraseFileOpt = None,
        pin_file: PinFileOpt = None,
    ) -> None:
        """Sign a PDF (PAdES B-B, B-T, B-LT or B-LTA) with the e-seal or an officer's key."""
        # pyHanko is imported only here: it is slow to import, and it registers asn1crypto
        # extension parsers (QCStatements) that other commands need not see
        from trust_services.pades import PadesLevel, PadesSigner, sign_pdf

        try:
            pades_level = PadesLevel(level.upper())
        except ValueError:
            raise InputError(
                f"unknown PAdES level {level!r} (one of B-B, B-T, B-LT, B-LTA)"
            ) from None
        data = read_input(infile, "PDF")
        if infile.resolve() == outfile.resolve():
            raise InputError("the output must not overwrite the input PDF")
        pki = open_pki(root, org, passphrase_file, pin_file)
        timestamper = org_timestamper(pki, tsa) if pades_level is not PadesLevel.B_B else None
        needs_revocation = pades_level in (PadesLevel.B_LT, PadesLevel.B_LTA)
        signer = PadesSigner.for_org(
            pki,
            key,
            timestamper=timestamper,
            revocation=PkiRevocationSource(pki) if needs_revocation else None,
        )
        signed = sign_pdf(data, signer, pades_level)
        outfile.write_bytes(signed)
        console.print(
            f"signed PDF {infile} as {_cn(signer.certificate)} ({org}), "
            f"PAdES {pades_level.value} → {outfile}",
            highlight=False,
            soft_wrap=True,
        )

"""`caravan pki …`: an administration's certificate hierarchy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from rich.table import Table

from trust_services.errors import InputError, PkiError
from trust_services.keystore import KeyAlgorithm, resolve_passphrase
from trust_services.pki import REVOCATION_REASONS, SERVICE_CERTS, HsmConfig, init_pki
from trust_services.profiles import CertProfile

from ._common import (
    DirOpt,
    OrgOpt,
    PassphraseFileOpt,
    PinFileOpt,
    console,
    handle_errors,
    open_pki,
    read_input,
    stdout_bytes,
)

app = typer.Typer(help="Create and run an administration's PKI.", no_args_is_help=True)

ROLES = ("admin", "officer", "sez-operator", "verifier", "node")


@app.command("init")
@handle_errors
def init(
    root: DirOpt,
    org: OrgOpt,
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2 country code.")],
    name: Annotated[str, typer.Option(help="The administration's name.")],
    algorithm: Annotated[
        KeyAlgorithm, typer.Option(help="Key algorithm for every key of the hierarchy.")
    ] = KeyAlgorithm.EC_P256,
    base_url: Annotated[
        str | None,
        typer.Option(help="Public URL of the org on its node (CRL, OCSP, CA links)."),
    ] = None,
    org_identifier: Annotated[
        str | None,
        typer.Option(help="organizationIdentifier (ETSI EN 319 412-1), default NTR<CC>-<ORG>."),
    ] = None,
    pkcs11_module: Annotated[
        Path | None, typer.Option(help="PKCS#11 library: seal and TSA keys go on its token.")
    ] = None,
    token_label: Annotated[str | None, typer.Option(help="PKCS#11 token label.")] = None,
    passphrase_file: PassphraseFileOpt = None,
    pin_file: PinFileOpt = None,
) -> None:
    """Create root CA → issuing CA, the e-seal, TSA and OCSP certificates, and first CRLs."""
    hsm = None
    pin = None
    if pkcs11_module is not None or token_label is not None:
        if pkcs11_module is None or token_label is None:
            raise InputError("give both --pkcs11-module and --token-label")
        hsm = HsmConfig(str(pkcs11_module), token_label)
        pin = resolve_passphrase(pin_file, env_var="CARAVAN_PKCS11_PIN", what="PKCS#11 PIN")
    passphrase = resolve_passphrase(passphrase_file, confirm=True)
    pki = init_pki(
        root,
        org,
        country=country.upper(),
        name=name,
        passphrase=passphrase,
        algorithm=algorithm,
        base_url=base_url,
        org_identifier=org_identifier,
        hsm=hsm,
        hsm_pin=pin,
    )
    table = Table(title=f"PKI of {pki.org} ({pki.config.name}, {pki.config.country})")
    table.add_column("certificate")
    table.add_column("serial")
    table.add_column("subject")
    table.add_column("key")
    for name_ in SERVICE_CERTS:
        cert = pki.certificate(name_)
        where = "PKCS#11 token" if name_ in pki.config.hsm_keys else "encrypted file"
        table.add_row(name_, f"{cert.serial_number:x}", _cn(cert), where)
    console.print(table)
    console.print(f"written to {pki.path}")


@app.command("issue")
@handle_errors
def issue(
    root: DirOpt,
    org: OrgOpt,
    profile: Annotated[
        str, typer.Option(help="officer (qualified e-signature) or member (ledger identity).")
    ],
    name: Annotated[str, typer.Option(help="Common name of the holder.")],
    role: Annotated[str | None, typer.Option(help=f"Member role: {', '.join(ROLES)}.")] = None,
    sez: Annotated[str | None, typer.Option(help="SEZ code for an sez-operator.")] = None,
    label: Annotated[
        str | None, typer.Option(help="Key label in the org's key store (default from name).")
    ] = None,
    csr: Annotated[
        Path | None, typer.Option(help="Certify the key of this PKCS#10 request instead.")
    ] = None,
    person_id: Annotated[
        str | None, typer.Option(help="serialNumber of an officer, e.g. IDCKZ-880101300123.")
    ] = None,
    out: Annotated[
        Path | None, typer.Option("-o", "--out", help="Also write the PEM here.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    passphrase_file: PassphraseFileOpt = None,
    pin_file: PinFileOpt = None,
) -> None:
    """Issue an officer's signing certificate or a member identity with a role."""
    try:
        kind = CertProfile(profile)
    except ValueError:
        kind = None
    if kind not in (CertProfile.OFFICER, CertProfile.MEMBER):
        raise InputError("--profile must be 'officer' or 'member'")
    if kind is CertProfile.MEMBER:
        if role not in ROLES:
            raise InputError(f"a member needs --role, one of: {', '.join(ROLES)}")
        if role == "sez-operator" and not sez:
            raise InputError("an sez-operator needs --sez (the zone it writes for)")
    elif role or sez:
        raise InputError("--role and --sez are for member identities")
    if not name.strip():
        raise InputError("--name must not be empty")
    extra = []
    if person_id:
        extra.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, person_id))
    pki = open_pki(root, org, passphrase_file, pin_file)
    kwargs = {"common_name": name.strip(), "extra_name": extra, "role": role, "sez": sez}
    if csr is not None:
        request = _load_csr(read_input(csr, "CSR"))
        issued = pki.issue_certificate(kind, request.public_key(), label=None, **kwargs)  # type: ignore[arg-type]
    else:
        key_label = label or f"{kind.value}-{_slug(name)}"
        issued = pki.issue_with_new_key(kind, key_label, **kwargs)  # type: ignore[arg-type]
    pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    if out is not None:
        out.write_bytes(pem)
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "serial": f"{issued.serial:x}",
                    "profile": issued.profile,
                    "label": issued.label,
                    "subject": issued.certificate.subject.rfc4514_string(),
                    "path": str(issued.path),
                }
            )
        )
    else:
        console.print(
            f"issued {issued.profile} certificate serial [bold]{issued.serial:x}[/] "
            f"for {_cn(issued.certificate)} → {issued.path}"
        )


@app.command("revoke")
@handle_errors
def revoke(
    root: DirOpt,
    org: OrgOpt,
    serial: Annotated[str, typer.Option(help="Serial number (hex) of the certificate.")],
    reason: Annotated[
        str, typer.Option(help=f"One of: {', '.join(REVOCATION_REASONS)}.")
    ] = "unspecified",
    passphrase_file: PassphraseFileOpt = None,
    pin_file: PinFileOpt = None,
) -> None:
    """Revoke a certificate and publish a new CRL (OCSP answers at once)."""
    number = _parse_serial(serial)
    reason = reason.replace("_", "-").lower()
    if reason == "keycompromise":
        reason = "key-compromise"
    pki = open_pki(root, org, passphrase_file, pin_file)
    status = pki.revoke(number, reason)
    assert status.revoked_at is not None
    console.print(
        f"revoked {number:x} ({status.reason}) at {status.revoked_at.isoformat()}; CRL updated"
    )


@app.command("show")
@handle_errors
def show(
    root: DirOpt,
    org: OrgOpt,
    pem: Annotated[
        str | None, typer.Option(help="Print this certificate as PEM: " + "|".join(SERVICE_CERTS))
    ] = None,
    serial: Annotated[str | None, typer.Option(help="Print an issued certificate (hex).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="List as JSON.")] = False,
) -> None:
    """Print a certificate as PEM, or list what the organisation issued."""
    pki = open_pki(root, org, unlock=False)
    if pem is not None:
        if pem not in SERVICE_CERTS:
            raise InputError(f"--pem must be one of {'|'.join(SERVICE_CERTS)}")
        stdout_bytes(pki.pem(pem))
        return
    if serial is not None:
        cert = pki.issued(_parse_serial(serial)).certificate
        stdout_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return
    if as_json:
        console.print_json(json.dumps(pki.list_issued()))
        return
    table = Table(title=f"certificates issued by {pki.org}")
    for col in ("serial", "profile", "subject", "not after", "status"):
        table.add_column(col)
    for entry in pki.list_issued():
        revoked = entry["revoked"]
        status = f"revoked ({revoked['reason']})" if revoked else "good"
        table.add_row(
            entry["serial"], entry["profile"], entry["subject"], entry["not_after"][:10], status
        )
    console.print(table)


def _cn(cert: x509.Certificate) -> str:
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else cert.subject.rfc4514_string()


def _slug(name: str) -> str:
    out = "".join(c.lower() if c.isalnum() and c.isascii() else "-" for c in name.strip())
    return "-".join(filter(None, out.split("-")))[:48] or "holder"


def _parse_serial(text: str) -> int:
    try:
        return int(text.lower().removeprefix("0x").replace(":", ""), 16)
    except ValueError:
        raise PkiError(f"not a hexadecimal serial number: {text!r}") from None


def _load_csr(data: bytes) -> x509.CertificateSigningRequest:
    try:
        if b"-----BEGIN" in data:
            request = x509.load_pem_x509_csr(data)
        else:
            request = x509.load_der_x509_csr(data)
    except ValueError:
        raise InputError("not a PKCS#10 certificate request") from None
    if not request.is_signature_valid:
        raise InputError("the certificate request's signature is invalid")
    return request

"""Our PAdES signatures checked by independent verifiers: poppler's `pdfsig` and pyHanko's CLI.

pdfsig (NSS) checks revocation online by the AIA OCSP URL of the signer certificate, so
the PKI here is an online one (tests/live_server.py) whose certificates point at a
trust-services server on a free local port. pdfsig always exits 0: we read its text.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.live_server import OnlinePkiFactory, make_online_pki, trust_server  # noqa: F401
from tests.pdf_samples import minimal_pdf
from tests.tools import require_tool, run_tool
from trust_services.pades import PadesLevel, PadesSigner, sign_pdf
from trust_services.pki import OrgPki
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority


def full_signer(pki: OrgPki) -> PadesSigner:
    tsa = TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(pki.path / "tsa" / "serial"),
    )
    return PadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))


def nss_db(pki: OrgPki, directory: Path) -> str:
    certutil = require_tool("certutil", "libnss3-tools")
    db = directory / "nssdb"
    db.mkdir()
    root = directory / "root.pem"
    root.write_bytes(pki.pem("root"))
    run_tool(certutil, "-N", "-d", f"sql:{db}", "--empty-password")
    run_tool(certutil, "-A", "-d", f"sql:{db}", "-n", "root", "-t", "C,C,C", "-i", root)
    return f"sql:{db}"


def test_pdfsig_accepts_every_level(
    make_online_pki: OnlinePkiFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    pdfsig = require_tool("pdfsig", "poppler-utils")
    pki = make_online_pki()
    db = nss_db(pki, tmp_path)
    signer = full_signer(pki)
    for level in PadesLevel:
        path = tmp_path / f"{level}.pdf"
        path.write_bytes(sign_pdf(minimal_pdf(f"PAdES {level}"), signer, level))
        report = run_tool(pdfsig, "-nssdir", db, path, check=False)
        text = report.stdout + report.stderr
        first = text.split("Signature #2")[0]
        assert "Signature is Valid" in first, text
        assert "Certificate is Trusted" in first, text
        assert "Signer Certificate Common Name: " + pki.config.name + " e-Seal" in first
        assert "ETSI.CAdES.detached" in first
        if level is PadesLevel.B_LTA:
            # the document timestamp: pdfsig cannot validate ETSI.RFC3161 (documented)
            assert "Signature #2" in text
            assert (
                "Unable to validate this type of signature" in text
                or "not yet been verified" in text
            )
        else:
            assert "Signature #2" not in text


def test_pdfsig_reports_a_tampered_pdf(
    make_online_pki: OnlinePkiFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    pdfsig = require_tool("pdfsig", "poppler-utils")
    pki = make_online_pki()
    db = nss_db(pki, tmp_path)
    signed = sign_pdf(minimal_pdf("Release order 7"), PadesSigner.for_org(pki), "B-B")
    position = signed.index(b"Release order 7")
    path = tmp_path / "tampered.pdf"
    path.write_bytes(signed[:position] + b"Release order 9" + signed[position + 15 :])
    text = run_tool(pdfsig, "-nssdir", db, path, check=False).stdout
    assert "Signature Validation: Signature is Valid" not in text
    assert "Digest Mismatch" in text or "Invalid" in text, text


@pytest.mark.parametrize("level", [PadesLevel.B_T, PadesLevel.B_LTA])
def test_pyhanko_cli_validates(
    make_online_pki: OnlinePkiFactory,  # noqa: F811
    tmp_path: Path,
    level: PadesLevel,
) -> None:
    beside = Path(sys.executable).parent / "pyhanko"  # the venv's CLI, even if not on PATH
    pyhanko = str(beside) if beside.exists() else require_tool("pyhanko", "pyhanko-cli (pip)")
    pki = make_online_pki()
    root = tmp_path / "root.pem"
    root.write_bytes(pki.pem("root"))
    path = tmp_path / "signed.pdf"
    path.write_bytes(sign_pdf(minimal_pdf(), full_signer(pki), level))
    result = run_tool(pyhanko, "sign", "validate", "--trust", root, "--trust-replace", path)
    assert ":INTACT:TRUSTED" in result.stdout, result.stdout + result.stderr
    assert "TIMESTAMP_TOKEN<INTACT:TRUSTED>" in result.stdout

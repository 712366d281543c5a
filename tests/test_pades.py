"""PAdES signing: levels, pyHanko validation, DSS content, bad input, tampering, the CLI."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.dss import DocumentSecurityStore
from pyhanko_certvalidator import ValidationContext
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import PASSPHRASE, Consortium
from tests.pdf_samples import minimal_pdf, multi_page_pdf
from trust_services.errors import InputError, TimestampError, TrustServiceError
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


def root_of(pki: OrgPki) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(
        pki.certificate("root").public_bytes(serialization.Encoding.DER)
    )


@pytest.fixture(scope="module")
def signed(consortium: Consortium) -> dict[PadesLevel, bytes]:
    signer = full_signer(consortium.kz)
    pdf = multi_page_pdf(["Customs declaration", "Annex"])
    return {level: sign_pdf(pdf, signer, level) for level in PadesLevel}


def validate(pdf: bytes, context: ValidationContext, index: int = 0) -> object:
    reader = PdfFileReader(io.BytesIO(pdf))
    return asyncio.run(async_validate_pdf_signature(reader.embedded_signatures[index], context))


@pytest.mark.parametrize("level", list(PadesLevel))
def test_pyhanko_validates_every_level(
    consortium: Consortium, signed: dict[PadesLevel, bytes], level: PadesLevel
) -> None:
    context = ValidationContext(trust_roots=[root_of(consortium.kz)], allow_fetching=False)
    status = validate(signed[level], context)
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()  # type: ignore[attr-defined]
    has_ts = status.timestamp_validity is not None  # type: ignore[attr-defined]
    assert has_ts == (level is not PadesLevel.B_B)
    reader = PdfFileReader(io.BytesIO(signed[level]))
    sig = reader.embedded_signatures[0]
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert ("/DSS" in reader.root) == (level in (PadesLevel.B_LT, PadesLevel.B_LTA))
    doc_timestamps = [
        s for s in reader.embedded_signatures if s.sig_object["/Type"] == "/DocTimeStamp"
    ]
    assert len(doc_timestamps) == (1 if level is PadesLevel.B_LTA else 0)


@pytest.mark.parametrize("level", [PadesLevel.B_LT, PadesLevel.B_LTA])
def test_dss_alone_is_enough_offline(
    consortium: Consortium, signed: dict[PadesLevel, bytes], level: PadesLevel
) -> None:
    reader = PdfFileReader(io.BytesIO(signed[level]))
    dss = DocumentSecurityStore.read_dss(reader)
    assert len(dss.ocsps) >= 2 and len(dss.crls) >= 1
    context = dss.as_validation_context(
        {
            "trust_roots": [root_of(consortium.kz)],
            "allow_fetching": False,
            "revocation_mode": "require",
        }
    )
    status = validate(signed[level], context)
    assert status.trusted, status.pretty_print_details()  # type: ignore[attr-defined]
    if level is PadesLevel.B_LTA:
        ts = asyncio.run(async_validate_pdf_timestamp(reader.embedded_signatures[1], context))
        assert ts.intact and ts.valid and ts.trusted


def test_tampering_is_detected(consortium: Consortium, signed: dict[PadesLevel, bytes]) -> None:
    context = ValidationContext(trust_roots=[root_of(consortium.kz)], allow_fetching=False)
    pdf = signed[PadesLevel.B_B]
    reader = PdfFileReader(io.BytesIO(pdf))
    byte_range = reader.embedded_signatures[0].byte_range
    start, length = int(byte_range[0]), int(byte_range[1])
    position = pdf.index(b"Customs declaration")
    assert start <= position < start + length
    flipped = pdf[:position] + b"c" + pdf[position + 1 :]
    assert not validate(flipped, context).intact  # type: ignore[attr-defined]
    # garbage after the signed revision: the signature no longer covers the whole file
    appended = validate(pdf + b"\n% appended garbage\n", context)
    assert appended.coverage.name != "ENTIRE_FILE"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (minimal_pdf()[:400], "not a PDF"),
        (b"PK\x03\x04 this is a zip file", "not a PDF: the file does not start with %PDF-"),
        (minimal_pdf()[:-120] + b"\n%%EOF\n", "not a PDF"),
    ],
)
def test_bad_input(consortium: Consortium, data: bytes, message: str) -> None:
    with pytest.raises(InputError, match=message) as info:
        sign_pdf(data, PadesSigner.for_org(consortium.kz), PadesLevel.B_B)
    assert "\n" not in str(info.value)


def test_encrypted_pdf_is_refused(consortium: Consortium) -> None:
    from pyhanko.pdf_utils.crypt import StandardSecurityHandler
    from pyhanko.pdf_utils.writer import copy_into_new_writer

    writer = copy_into_new_writer(PdfFileReader(io.BytesIO(minimal_pdf())))
    writer.security_handler = StandardSecurityHandler.build_from_pw("owner", "user")
    writer._encrypt = writer.add_object(writer.security_handler.as_pdf_object())
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(InputError, match="encrypted"):
        sign_pdf(out.getvalue(), PadesSigner.for_org(consortium.kz), "B-B")


def test_levels_need_their_services(consortium: Consortium) -> None:
    plain = PadesSigner.for_org(consortium.kz)
    with pytest.raises(TimestampError, match="needs a timestamp authority"):
        sign_pdf(minimal_pdf(), plain, "B-T")
    tsa_only = PadesSigner(
        consortium.kz.key("seal"),
        consortium.kz.certificate("seal"),
        [consortium.kz.certificate("issuing")],
        roots=[consortium.kz.certificate("root")],
        timestamper=full_signer(consortium.kz).timestamper._timestamper,  # type: ignore[union-attr]
    )
    with pytest.raises(TrustServiceError, match="revocation source"):
        sign_pdf(minimal_pdf(), tsa_only, "B-LT")
    with pytest.raises(InputError, match="unknown PAdES level"):
        sign_pdf(minimal_pdf(), plain, "B-X")


def test_second_signature_gets_its_own_field(consortium: Consortium) -> None:
    signer = PadesSigner.for_org(consortium.kz)
    twice = sign_pdf(sign_pdf(minimal_pdf(), signer, "B-B"), signer, "B-B")
    reader = PdfFileReader(io.BytesIO(twice))
    assert [s.field_name for s in reader.embedded_signatures] == ["Signature1", "Signature2"]


# ------------------------------------------------------------------ CLI
runner = CliRunner()


def test_cli_sign_pdf(consortium: Consortium, tmp_path: Path) -> None:
    src = tmp_path / "in.pdf"
    src.write_bytes(minimal_pdf())
    env = {"CARAVAN_PASSPHRASE": PASSPHRASE.decode()}
    for level in ("B-B", "B-LTA"):
        out = tmp_path / f"{level}.pdf"
        args = [
            "sign-pdf",
            str(src),
            str(out),
            "--dir",
            str(consortium.root),
            "--org",
            "KZ-CUSTOMS",
            "--level",
            level,
        ]
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 0, result.stderr
        assert f"PAdES {level}" in result.stdout
        context = ValidationContext(trust_roots=[root_of(consortium.kz)], allow_fetching=False)
        assert validate(out.read_bytes(), context).trusted  # type: ignore[attr-defined]
    bad = tmp_path / "bad.pdf"
    bad.write_bytes(b"hello")
    args = [
        "sign-pdf",
        str(bad),
        str(tmp_path / "o.pdf"),
        "--dir",
        str(consortium.root),
        "--org",
        "KZ-CUSTOMS",
    ]
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 3 and "not a PDF" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = runner.invoke(
        app,
        [
            "sign-pdf",
            str(tmp_path / "none.pdf"),
            str(tmp_path / "o.pdf"),
            "--dir",
            str(consortium.root),
            "--org",
            "KZ-CUSTOMS",
        ],
        env=env,
    )
    assert result.exit_code == 3 and "no such PDF" in result.stderr

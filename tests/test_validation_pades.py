"""PAdES validation of PDFs signed by trust_services.pades, B-B to B-LTA."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.conftest import Consortium
from tests.pdf_samples import minimal_pdf
from tests.tools import require_tool, run_tool
from trust_services.errors import InputError
from trust_services.fetch import CachingRevocationSource
from trust_services.pades import PadesSigner, sign_pdf
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority
from trust_services.validation import (
    CertificateValidator,
    Indication,
    SubIndication,
    validate_pades,
)

TEXT = "Caravan customs declaration 5KZ123456789"


@pytest.fixture(scope="module")
def signed(consortium: Consortium, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    pki = consortium.kz
    tsa = TimestampAuthority(
        pki.key("tsa"), pki.certificate("tsa"), [pki.certificate("issuing")],
        serials=SerialAllocator(tmp_path_factory.mktemp("pdf-tsa") / "serial"),
    )  # fmt: skip
    signer = PadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))
    pdf = minimal_pdf(TEXT)
    return {level: sign_pdf(pdf, signer, level) for level in ("B-B", "B-T", "B-LT", "B-LTA")}


@pytest.fixture(scope="module")
def validator(consortium: Consortium) -> CertificateValidator:
    source = CachingRevocationSource(PkiRevocationSource(consortium.kz))
    return CertificateValidator([consortium.kz.certificate("root")], source=source)


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
def test_signed_pdf_passes(
    signed: dict[str, bytes], validator: CertificateValidator, level: str
) -> None:
    (report,) = validate_pades(signed[level], validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.format == f"PAdES-BASELINE-{level[2:]}"
    assert report.qualification is not None
    assert report.qualification.startswith("qualified electronic seal")
    assert (report.timestamp is None) == (level == "B-B")
    assert report.signed_data is not None and "byte range" in report.signed_data


@pytest.mark.parametrize("level", ["B-LT", "B-LTA"])
def test_lt_and_lta_validate_offline_from_the_dss(
    signed: dict[str, bytes], consortium: Consortium, level: str
) -> None:
    offline = CertificateValidator([consortium.kz.certificate("root")])
    (report,) = validate_pades(signed[level], offline)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.revocation is not None and report.revocation.source.startswith("embedded")
    # long after the embedded OCSP responses and CRLs expired: current at the POE
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)
    (report,) = validate_pades(signed[level], offline, at=later)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()


def test_b_t_offline_is_try_later(signed: dict[str, bytes], consortium: Consortium) -> None:
    offline = CertificateValidator([consortium.kz.certificate("root")])
    (report,) = validate_pades(signed["B-T"], offline)
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.TRY_LATER


def test_tampered_pdf_is_hash_failure(
    signed: dict[str, bytes], validator: CertificateValidator
) -> None:
    pdf = signed["B-T"]
    assert pdf.count(TEXT.encode()) == 1
    tampered = pdf.replace(TEXT.encode(), TEXT.replace("5KZ", "6KZ").encode())
    (report,) = validate_pades(tampered, validator)
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.HASH_FAILURE


def test_untrusted_pdf(signed: dict[str, bytes], consortium: Consortium) -> None:
    uz = CertificateValidator([consortium.uz.certificate("root")])
    (report,) = validate_pades(signed["B-B"], uz)
    assert report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_truncated_not_pdf_and_unsigned_are_input_errors(
    signed: dict[str, bytes], validator: CertificateValidator
) -> None:
    with pytest.raises(InputError, match="not a readable PDF"):
        validate_pades(signed["B-T"][: len(signed["B-T"]) // 2], validator)
    with pytest.raises(InputError, match="not a PDF"):
        validate_pades(b"GIF89a....", validator)
    with pytest.raises(InputError, match="no signature"):
        validate_pades(minimal_pdf("unsigned"), validator)


def test_pdfsig_agrees_on_the_signature(signed: dict[str, bytes], tmp_path: Path) -> None:
    """poppler's pdfsig (an independent verifier) sees the same intact signature."""
    pdfsig = require_tool("pdfsig", "poppler-utils")
    path = tmp_path / "b-t.pdf"
    path.write_bytes(signed["B-T"])
    assert "Signature Validation: Signature is Valid." in run_tool(pdfsig, path).stdout
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(signed["B-T"].replace(b"5KZ", b"6KZ"))
    assert "Signature Validation: Signature is Valid." not in run_tool(pdfsig, tampered).stdout


def test_two_signatures_two_reports(
    signed: dict[str, bytes], consortium: Consortium, validator: CertificateValidator
) -> None:
    """A KZ seal, then a UZ seal on top: one report each; only KZ is trusted here."""
    uz = PadesSigner.for_org(consortium.uz)
    twice = sign_pdf(signed["B-B"], uz, "B-B")
    kz_report, uz_report = validate_pades(twice, validator)
    assert kz_report.indication is Indication.TOTAL_PASSED, kz_report.to_json()
    assert any("later changes" in n for n in kz_report.notes)
    assert uz_report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    assert uz_report.signer is not None and uz_report.signer.country == "UZ"

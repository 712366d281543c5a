"""`caravan verify`: exit codes 0/1/2/3, the human report and --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import Consortium
from tests.pdf_samples import minimal_pdf
from trust_services.cades import CadesSigner, Level
from trust_services.pades import PadesSigner, sign_pdf
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority, build_request

DATA = b'{"aeo_id": "KZ-AEO-2025-000123", "status": "valid"}'
runner = CliRunner()


@pytest.fixture(scope="module")
def files(consortium: Consortium, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pki = consortium.kz
    out = tmp_path_factory.mktemp("verify")
    tsa = TimestampAuthority(
        pki.key("tsa"), pki.certificate("tsa"), [pki.certificate("issuing")],
        serials=SerialAllocator(out / "serial"),
    )  # fmt: skip
    source = PkiRevocationSource(pki)
    cades = CadesSigner.for_org(pki, timestamper=tsa, revocation=source)
    paths = {
        "data": out / "record.json",
        "b-lt.p7s": out / "b-lt.p7s",
        "b-t.p7s": out / "b-t.p7s",
        "json.p7s": out / "json.p7s",
        "tsr": out / "record.tsr",
        "pdf": out / "signed.pdf",
        "junk": out / "junk.p7s",
        "trust": out / "trust.pem",
        "uz": out / "uz.pem",
    }
    paths["data"].write_bytes(DATA)
    paths["b-lt.p7s"].write_bytes(cades.sign(DATA, Level.B_LT))
    paths["b-t.p7s"].write_bytes(cades.sign(DATA, Level.B_T))
    paths["json.p7s"].write_bytes(cades.sign_json(DATA, Level.B_LT))
    paths["tsr"].write_bytes(tsa.respond(build_request(DATA)))
    pades = PadesSigner.for_org(pki, timestamper=tsa, revocation=source)
    paths["pdf"].write_bytes(sign_pdf(minimal_pdf("verify me"), pades, "B-LT"))
    paths["junk"].write_bytes(b"\x30\x82\x01\x00 this is not CMS")
    # several anchors in one file: UZ first, then KZ
    paths["trust"].write_bytes(consortium.uz.pem("root") + consortium.kz.pem("root"))
    paths["uz"].write_bytes(consortium.uz.pem("root"))
    return paths


def verify(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, ["verify", *map(str, args)])
    return result.exit_code, result.stdout, result.stderr


def test_b_lt_offline_passes_exit_0(files: dict[str, Path]) -> None:
    code, out, _err = verify(
        files["data"], "--signature", files["b-lt.p7s"], "--trust", files["trust"], "--offline"
    )
    assert code == 0, out
    assert "TOTAL-PASSED" in out
    assert "CAdES-BASELINE-LT" in out
    assert "qualified electronic seal" in out
    for group in ("integrity:", "identity:", "status:", "timestamp:"):
        assert group in out


def test_json_output(files: dict[str, Path]) -> None:
    code, out, _err = verify(
        files["data"], "-s", files["json.p7s"], "--trust", files["trust"], "--offline", "--json"
    )
    assert code == 0
    report = json.loads(out)
    assert report["indication"] == "TOTAL-PASSED"
    assert report["format"] == "CAdES-BASELINE-LT"
    assert report["signedData"] == "RFC 8785 canonical form of the JSON data"
    assert report["signer"]["organizationIdentifier"] == "NTRKZ-KZ-CUSTOMS"
    assert report["timestamp"]["genTime"].endswith("Z")
    assert set(report["checks"]) == {"integrity", "identity", "status"}


def test_wrong_data_exit_1(files: dict[str, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_bytes(DATA.replace(b"valid", b"revoked"))
    code, out, _err = verify(other, "-s", files["b-lt.p7s"], "--trust", files["trust"], "--offline")
    assert code == 1
    assert "TOTAL-FAILED" in out and "HASH_FAILURE" in out


def test_untrusted_exit_2(files: dict[str, Path]) -> None:
    code, out, _err = verify(
        files["data"], "-s", files["b-lt.p7s"], "--trust", files["uz"], "--offline", "--json"
    )
    assert code == 2
    assert json.loads(out)["subIndication"] == "NO_CERTIFICATE_CHAIN_FOUND"


def test_b_t_offline_is_try_later_exit_2(files: dict[str, Path]) -> None:
    code, out, _err = verify(
        files["data"], "-s", files["b-t.p7s"], "--trust", files["trust"], "--offline", "--json"
    )
    assert code == 2
    assert json.loads(out)["subIndication"] == "TRY_LATER"


def test_timestamp_response_with_and_without_data(files: dict[str, Path]) -> None:
    code, out, _ = verify(
        files["data"], "-s", files["tsr"], "--trust", files["trust"], "--json", "--offline"
    )
    report = json.loads(out)
    assert report["format"] == "RFC3161-TOKEN"
    assert report["checks"]["integrity"]["result"] == "passed"
    assert report["checks"]["identity"]["result"] == "passed"
    # a bare TimeStampResp carries no revocation data: offline, the TSA status is open
    assert (code, report["subIndication"]) == (2, "TRY_LATER")
    code, out, _ = verify(files["tsr"], "--trust", files["trust"], "--json", "--offline")
    assert json.loads(out)["signedData"] == "no data given"
    tampered = files["data"].with_suffix(".other")
    tampered.write_bytes(b"other data")
    code, out, _ = verify(tampered, "-s", files["tsr"], "--trust", files["trust"], "--offline")
    assert code == 1 and "HASH_FAILURE" in out


def test_pdf(files: dict[str, Path]) -> None:
    code, out, _err = verify(files["pdf"], "--trust", files["trust"], "--offline")
    assert code == 0, out
    assert "PAdES-BASELINE-LT" in out


def test_at_in_the_past_is_indeterminate(files: dict[str, Path]) -> None:
    code, out, _err = verify(
        files["pdf"], "--trust", files["trust"], "--offline", "--at", "2001-01-01T00:00:00Z",
        "--json",
    )  # fmt: skip
    assert code == 2
    assert json.loads(out)["validationTime"] == "2001-01-01T00:00:00Z"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("{data}", "-s", "{junk}", "--trust", "{trust}"), "neither CMS SignedData"),
        (("{data}", "--trust", "{trust}"), "give the detached signature"),
        (("{missing}", "--trust", "{trust}"), "no such file"),
        (("{data}", "-s", "{blt}", "--trust", "{data}"), "not an X.509 certificate"),
        (("{data}", "-s", "{blt}", "--trust", "{trust}", "--at", "soon"), "ISO 8601"),
        (("{data}", "-s", "{blt}"), "give at least one trust anchor"),
    ],
)
def test_input_errors_exit_3_with_one_line(
    files: dict[str, Path], tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    names = {k: str(v) for k, v in files.items()} | {
        "missing": str(tmp_path / "nope"),
        "blt": str(files["b-lt.p7s"]),
    }
    code, out, err = verify(*(a.format(**names) for a in args))
    assert code == 3
    assert message in err
    assert "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_truncated_pdf_exit_3(files: dict[str, Path], tmp_path: Path) -> None:
    truncated = tmp_path / "t.pdf"
    truncated.write_bytes(files["pdf"].read_bytes()[:2000])
    code, _out, err = verify(truncated, "--trust", files["trust"], "--offline")
    assert code == 3
    assert "PDF" in err and "Traceback" not in err


def test_pdf_with_two_signatures(
    files: dict[str, Path], consortium: Consortium, tmp_path: Path
) -> None:
    twice = tmp_path / "twice.pdf"
    twice.write_bytes(
        sign_pdf(files["pdf"].read_bytes(), PadesSigner.for_org(consortium.uz), "B-B")
    )
    code, out, _err = verify(twice, "--trust", files["uz"], "--offline")
    assert code == 2  # the KZ seal is not trusted with UZ's root alone
    assert "signature 1 of 2" in out and "signature 2 of 2" in out
    code, out, _err = verify(twice, "--trust", files["uz"], "--offline", "--json")
    reports = json.loads(out)["reports"]
    assert [r["subIndication"] for r in reports] == ["NO_CERTIFICATE_CHAIN_FOUND", "TRY_LATER"]

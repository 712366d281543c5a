"""CAdES seals and signatures: structure, JSON canonicalisation, errors, the CLI."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pytest
from asn1crypto import cms
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import PASSPHRASE, Consortium
from tests.live_server import LiveServer, trust_server  # noqa: F401
from trust_services.cades import (
    ATTR_CONTENT_HINT,
    JSON_CONTENT_HINT,
    CadesSigner,
    Level,
    canonical_json,
    signature_timestamp_time,
)
from trust_services.errors import InputError, PkiError, TimestampError, TrustServiceError
from trust_services.pki import OrgPki
from trust_services.profiles import CertProfile
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority

RECORD = {
    "aeo_id": "KZ-AEO-2025-000123",
    "holder": {"tin": "KZ123456789012", "name": "Khorgos Logistics LLP"},
    "status": "valid",
    "aeo_type": "AEOF",
}


def tsa_for(pki: OrgPki) -> TimestampAuthority:
    return TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(pki.path / "tsa" / "serial"),
    )


def signer_info(der: bytes) -> cms.SignerInfo:
    content = cms.ContentInfo.load(der)
    assert content["content_type"].native == "signed_data"
    return content["content"]["signer_infos"][0]


def signed_attr(info: cms.SignerInfo, name: str) -> object:
    for attr in info["signed_attrs"]:
        if attr["type"].native == name or attr["type"].dotted == name:
            return attr["values"][0]
    raise AssertionError(f"no signed attribute {name}")


def test_b_b_structure(consortium: Consortium) -> None:
    fixed = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
    signer = CadesSigner.for_org(consortium.kz, clock=lambda: fixed)
    der = signer.sign(b"declaration 42")
    content = cms.ContentInfo.load(der)["content"]
    assert content["encap_content_info"]["content"].native is None  # detached
    info = content["signer_infos"][0]
    assert signed_attr(info, "message_digest").native == hashlib.sha256(b"declaration 42").digest()
    assert signed_attr(info, "signing_time").native == fixed
    assert signed_attr(info, "content_type").native == "data"
    assert signed_attr(info, "signing_certificate_v2") is not None
    assert info["unsigned_attrs"].native is None
    assert signature_timestamp_time(der) is None


def test_b_t_has_timestamp_over_signature(consortium: Consortium) -> None:
    signer = CadesSigner.for_org(consortium.kz, timestamper=tsa_for(consortium.kz))
    der = signer.sign(b"declaration 43", Level.B_T)
    info = signer_info(der)
    (attr,) = info["unsigned_attrs"]
    assert attr["type"].dotted == "1.2.840.113549.1.9.16.2.14"
    tst = attr["values"][0]["content"]["encap_content_info"]["content"].parsed
    imprint = tst["message_imprint"]["hashed_message"].native
    assert imprint == hashlib.sha256(info["signature"].native).digest()
    when = signature_timestamp_time(der)
    assert when is not None and abs(when - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)


def test_b_lt_embeds_validation_data(consortium: Consortium) -> None:
    kz = consortium.kz
    signer = CadesSigner.for_org(kz, timestamper=tsa_for(kz), revocation=PkiRevocationSource(kz))
    content = cms.ContentInfo.load(signer.sign(b"x", Level.B_LT))["content"]
    subjects = {c.chosen.subject.native["common_name"] for c in content["certificates"]}
    assert {f"{kz.config.name} {s}" for s in ("Root CA", "Issuing CA", "e-Seal", "TSA")} <= subjects
    kinds = [c.name for c in content["crls"]]
    assert kinds.count("other") == 2  # OCSP responses: e-seal and TSA
    assert kinds.count("crl") == 1  # the root's CRL covering the issuing CA
    others = [c.chosen for c in content["crls"] if c.name == "other"]
    assert {o["other_rev_info_format"].dotted for o in others} == {"1.3.6.1.5.5.7.16.2"}


def test_levels_need_their_services(consortium: Consortium) -> None:
    signer = CadesSigner.for_org(consortium.kz)
    with pytest.raises(TimestampError, match="needs a timestamp authority"):
        signer.sign(b"x", Level.B_T)
    with_tsa = CadesSigner.for_org(consortium.kz, timestamper=tsa_for(consortium.kz))
    with pytest.raises(TrustServiceError, match="revocation source"):
        with_tsa.sign(b"x", "B-LT")
    with pytest.raises(InputError, match="unknown CAdES level"):
        signer.sign(b"x", "B-LTA")


def test_b_lt_refuses_a_revoked_signer(fresh_pki: OrgPki) -> None:
    signer = CadesSigner.for_org(
        fresh_pki, timestamper=tsa_for(fresh_pki), revocation=PkiRevocationSource(fresh_pki)
    )
    fresh_pki.revoke(fresh_pki.certificate("seal").serial_number, "key-compromise")
    with pytest.raises(PkiError, match="revoked"):
        signer.sign(b"x", Level.B_LT)


# ------------------------------------------------------------------ JSON
def test_json_variants_give_the_same_digest(consortium: Consortium) -> None:
    signer = CadesSigner.for_org(consortium.kz)
    variants = [
        RECORD,
        dict(reversed(list(RECORD.items()))),
        json.dumps(RECORD, indent=4).encode(),
        json.dumps(RECORD, separators=(",", ":"), sort_keys=True).encode(),
    ]
    digests = {
        signed_attr(signer_info(signer.sign_json(v)), "message_digest").native for v in variants
    }
    assert digests == {hashlib.sha256(canonical_json(RECORD)).digest()}
    assert canonical_json(RECORD).startswith(b'{"aeo_id":"KZ-AEO-2025-000123","aeo_type"')


def test_json_content_hint(consortium: Consortium) -> None:
    signer = CadesSigner.for_org(consortium.kz)
    hint = signed_attr(signer_info(signer.sign_json(RECORD)), ATTR_CONTENT_HINT)
    # asn1crypto does not know the attribute: parse the ContentHints SEQUENCE by hand
    from asn1crypto import core

    seq = core.Sequence.load(hint.dump())
    assert seq[0].native == JSON_CONTENT_HINT
    assert core.ObjectIdentifier.load(seq[1].dump()).dotted == "1.2.840.113549.1.7.1"
    plain = signer_info(signer.sign(b"not json"))
    assert all(a["type"].dotted != ATTR_CONTENT_HINT for a in plain["signed_attrs"])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b'{"a": 1,', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"a": 1, "a": 2}', "duplicate member 'a'"),
        (b'{"n": 1e400}', "not JSON|canonicalised"),
    ],
)
def test_bad_json_is_one_line_input_error(
    consortium: Consortium, text: bytes, message: str
) -> None:
    with pytest.raises(InputError, match=message) as info:
        CadesSigner.for_org(consortium.kz).sign_json(text)
    assert "\n" not in str(info.value)


def test_officer_signature(consortium: Consortium) -> None:
    kz = consortium.kz
    label = "officer-cades-test"
    if not any(e.get("label") == label for e in kz.list_issued()):
        kz.issue_with_new_key(CertProfile.OFFICER, label, common_name="Aigerim Officer")
    signer = CadesSigner.for_org(kz, label)
    assert signer.certificate.subject.rfc4514_string().startswith("CN=Aigerim Officer")
    sid = signer_info(signer.sign(b"x"))["sid"].chosen
    assert sid["serial_number"].native == signer.certificate.serial_number
    with pytest.raises(PkiError, match="no valid certificate for key 'nobody'"):
        CadesSigner.for_org(kz, "nobody")


# ------------------------------------------------------------------ CLI
runner = CliRunner()


def cli(*args: str | Path, passphrase: str = PASSPHRASE.decode()) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(a) for a in args], env={"CARAVAN_PASSPHRASE": passphrase})
    return result.exit_code, result.stdout, result.stderr


def test_cli_seal_levels(consortium: Consortium, tmp_path: Path) -> None:
    data = tmp_path / "declaration.xml"
    data.write_bytes(b"<declaration/>")
    for level in ("B-B", "B-T", "B-LT"):
        out = tmp_path / f"{level}.p7s"
        code, stdout, stderr = cli(
            "seal",
            data,
            "--dir",
            consortium.root,
            "--org",
            "KZ-CUSTOMS",
            "--level",
            level,
            "-o",
            out,
        )
        assert code == 0, stderr
        assert f"CAdES {level}" in stdout and str(out) in stdout.replace("\n", "")
        assert ("timestamp" in stdout) == (level != "B-B")
        assert signed_attr(signer_info(out.read_bytes()), "message_digest").native == (
            hashlib.sha256(b"<declaration/>").digest()
        )


def test_cli_seal_json(consortium: Consortium, tmp_path: Path) -> None:
    record = tmp_path / "aeo.json"
    record.write_text(json.dumps(RECORD, indent=2))
    out = tmp_path / "aeo.p7s"
    code, stdout, stderr = cli(
        "seal", record, "--dir", consortium.root, "--org", "KZ-CUSTOMS", "-o", out
    )
    assert code == 0, stderr
    assert "RFC 8785" in stdout
    digest = signed_attr(signer_info(out.read_bytes()), "message_digest").native
    assert digest == hashlib.sha256(canonical_json(RECORD)).digest()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _stdout, stderr = cli(
        "seal", bad, "--dir", consortium.root, "--org", "KZ-CUSTOMS", "-o", out
    )
    assert code == 3 and "not JSON" in stderr and len(stderr.strip().splitlines()) == 1


def test_cli_sign_with_officer_key(consortium: Consortium, tmp_path: Path) -> None:
    kz = consortium.kz
    label = "officer-cli-test"
    if not any(e.get("label") == label for e in kz.list_issued()):
        kz.issue_with_new_key(CertProfile.OFFICER, label, common_name="Bakyt Officer")
    data = tmp_path / "doc.txt"
    data.write_text("release note")
    out = tmp_path / "doc.p7s"
    code, stdout, stderr = cli(
        "sign",
        data,
        "--dir",
        consortium.root,
        "--org",
        "KZ-CUSTOMS",
        "--key",
        label,
        "--level",
        "B-T",
        "-o",
        out,
    )
    assert code == 0, stderr
    assert "signed file" in stdout and "Bakyt Officer" in stdout


@pytest.mark.parametrize(
    ("args", "passphrase", "expected"),
    [
        (("--org", "KZ-CUSTOMS"), "wrong-passphrase", "wrong passphrase"),
        (("--org", "TJ-CUSTOMS"), PASSPHRASE.decode(), "no PKI for TJ-CUSTOMS"),
    ],
)
def test_cli_errors_are_one_line(
    consortium: Consortium, tmp_path: Path, args: tuple[str, ...], passphrase: str, expected: str
) -> None:
    data = tmp_path / "d"
    data.write_bytes(b"x")
    code, _out, stderr = cli(
        "seal", data, "--dir", consortium.root, *args, "-o", tmp_path / "o", passphrase=passphrase
    )
    assert code == 3
    assert expected in stderr and "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_cli_missing_file(consortium: Consortium, tmp_path: Path) -> None:
    code, _out, stderr = cli(
        "seal",
        tmp_path / "absent",
        "--dir",
        consortium.root,
        "--org",
        "KZ-CUSTOMS",
        "-o",
        tmp_path / "o",
    )
    assert code == 3 and "no such file" in stderr and "Traceback" not in stderr


def test_cli_seal_with_http_tsa(
    consortium: Consortium,
    trust_server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    data = tmp_path / "d.txt"
    data.write_text("manifest")
    out = tmp_path / "d.p7s"
    url = trust_server.url("KZ-CUSTOMS", "/tsa")
    code, stdout, stderr = cli(
        "seal", data, "--dir", consortium.root, "--org", "KZ-CUSTOMS", "--level", "B-T",
        "--tsa", url, "-o", out,
    )  # fmt: skip
    assert code == 0, stderr
    assert signature_timestamp_time(out.read_bytes()) is not None and "timestamp" in stdout

"""CAdES validation on the real consortium PKI: every ETSI outcome the brief names."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PASSPHRASE, Consortium
from trust_services.cades import CadesSigner, Level
from trust_services.cms import ID_DATA, SignerTemplate, build_signed_data
from trust_services.errors import InputError
from trust_services.fetch import CachingRevocationSource
from trust_services.pki import OrgPki, init_pki
from trust_services.profiles import CertProfile
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority
from trust_services.validation import (
    CertificateValidator,
    Indication,
    SubIndication,
    validate_cades,
)
from trust_services.validation._der_parse import parse_signed_data

DATA = b"KZ-AEO-2025-000123: status valid"
NOW = dt.datetime.now(dt.UTC)


def tsa_for(
    pki: OrgPki, path: Path, clock: Callable[[], dt.datetime] | None = None
) -> TimestampAuthority:
    return TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(path / f"{pki.org}-tsa.serial"),
        clock=clock,
    )


@pytest.fixture(scope="module")
def kz(consortium: Consortium, tmp_path_factory: pytest.TempPathFactory) -> CadesSigner:
    pki = consortium.kz
    source = PkiRevocationSource(pki)
    return CadesSigner.for_org(
        pki, timestamper=tsa_for(pki, tmp_path_factory.mktemp("tsa")), revocation=source
    )


@pytest.fixture(scope="module")
def validator(consortium: Consortium) -> CertificateValidator:
    source = CachingRevocationSource(PkiRevocationSource(consortium.kz))
    return CertificateValidator([consortium.kz.certificate("root")], source=source)


@pytest.mark.parametrize(
    ("level", "fmt"),
    [
        (Level.B_B, "CAdES-BASELINE-B"),
        (Level.B_T, "CAdES-BASELINE-T"),
        (Level.B_LT, "CAdES-BASELINE-LT"),
    ],
)
def test_valid_seal_passes_with_qualification(
    kz: CadesSigner, validator: CertificateValidator, level: Level, fmt: str
) -> None:
    report = validate_cades(kz.sign(DATA, level), DATA, validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.sub_indication is None
    assert report.format == fmt
    assert report.qualification is not None
    assert report.qualification.startswith("qualified electronic seal")
    assert "under KZ legislation" in report.qualification
    assert report.signer is not None and report.signer.country == "KZ"
    assert report.signer.organization_identifier == "NTRKZ-KZ-CUSTOMS"
    assert report.integrity.ok and report.identity.ok and report.status.ok
    if level is Level.B_B:
        assert report.timestamp is None
    else:
        assert report.timestamp is not None and report.timestamp.trusted
        assert report.timestamp.tsa == "State Revenue Committee of Kazakhstan TSA"
        assert report.claimed_signing_time is not None
    payload = json.loads(report.to_json_text())
    assert payload["indication"] == "TOTAL-PASSED"
    assert payload["checks"]["integrity"]["result"] == "passed"


def test_b_lt_validates_offline_from_embedded_data(kz: CadesSigner, consortium: Consortium) -> None:
    offline = CertificateValidator([consortium.kz.certificate("root")])
    report = validate_cades(kz.sign(DATA, Level.B_LT), DATA, offline)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.revocation is not None and report.revocation.source == "embedded-ocsp"


def test_b_t_offline_without_revocation_data_is_try_later(
    kz: CadesSigner, consortium: Consortium
) -> None:
    offline = CertificateValidator([consortium.kz.certificate("root")])
    report = validate_cades(kz.sign(DATA, Level.B_T), DATA, offline)
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.TRY_LATER
    assert report.integrity.ok and report.identity.ok


def test_wrong_data_is_hash_failure(kz: CadesSigner, validator: CertificateValidator) -> None:
    report = validate_cades(kz.sign(DATA, Level.B_T), DATA + b"!", validator)
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.HASH_FAILURE
    assert report.integrity.result == "failed"


def test_flipped_signature_byte_is_sig_crypto_failure(
    kz: CadesSigner, validator: CertificateValidator
) -> None:
    der = kz.sign(DATA, Level.B_B)
    signature = parse_signed_data(der).signer_infos[0].signature
    at = der.index(signature)
    tampered = der[: at + 10] + bytes([der[at + 10] ^ 0x01]) + der[at + 11 :]
    report = validate_cades(tampered, DATA, validator)
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


@pytest.mark.parametrize("garbage", [b"", b"\x30\x03\x02\x01", b"not der at all", b"\x30\x80" * 4])
def test_malformed_der_is_an_input_error(validator: CertificateValidator, garbage: bytes) -> None:
    with pytest.raises(InputError, match="not DER-encoded CMS SignedData"):
        validate_cades(garbage, DATA, validator)


def test_truncated_signature_is_an_input_error(
    kz: CadesSigner, validator: CertificateValidator
) -> None:
    der = kz.sign(DATA, Level.B_T)
    with pytest.raises(InputError):
        validate_cades(der[:-40], DATA, validator)


def test_untrusted_root_is_no_certificate_chain_found(
    kz: CadesSigner, consortium: Consortium
) -> None:
    uz_only = CertificateValidator([consortium.uz.certificate("root")])
    report = validate_cades(kz.sign(DATA, Level.B_B), DATA, uz_only)
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND
    assert report.integrity.ok  # the signature itself is intact


def test_json_seal_is_checked_over_its_canonical_form(
    kz: CadesSigner, validator: CertificateValidator
) -> None:
    record = {"aeo_id": "KZ-AEO-2025-000123", "status": "valid", "holder": {"tin": "KZ1"}}
    seal = kz.sign_json(record, Level.B_T)
    reordered = json.dumps(dict(reversed(list(record.items()))), indent=4).encode()
    report = validate_cades(seal, reordered, validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.signed_data == "RFC 8785 canonical form of the JSON data"
    changed = json.dumps({**record, "status": "revoked"}).encode()
    failed = validate_cades(seal, changed, validator)
    assert failed.sub_indication is SubIndication.HASH_FAILURE
    not_json = validate_cades(seal, b"{not json", validator)
    assert not_json.sub_indication is SubIndication.HASH_FAILURE


def test_signature_without_signing_certificate_attribute(
    consortium: Consortium, validator: CertificateValidator
) -> None:
    """A CMS whose signing certificate is not bound by ESS signing-certificate(-v2)."""
    pki = consortium.kz
    template = SignerTemplate.create(
        pki.key("seal"), pki.certificate("seal"), [pki.certificate("issuing")]
    )
    from trust_services import _der
    from trust_services.cms import attribute

    attrs = _der.set_of(
        attribute("1.2.840.113549.1.9.3", _der.oid(ID_DATA)),
        attribute("1.2.840.113549.1.9.4", _der.octet_string(template.hash(DATA))),
    )
    sig = pki.key("seal").sign(attrs, "sha256")
    signer_info = _der.seq(
        _der.integer(1), template.sid, template.digest_alg, b"\xa0" + attrs[1:],
        template.signature_alg, _der.octet_string(sig),
    )  # fmt: skip
    sd = _der.seq(
        _der.integer(1), _der.set_of(template.digest_alg), _der.seq(_der.oid(ID_DATA)),
        _der.context(0, b"".join(template.certificates_der)), _der.set_of(signer_info),
    )  # fmt: skip
    der = _der.seq(_der.oid("1.2.840.113549.1.7.2"), _der.explicit(0, sd))
    report = validate_cades(der, DATA, validator)
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND


def test_signer_certificate_missing_is_no_signing_certificate_found(
    consortium: Consortium, validator: CertificateValidator
) -> None:
    pki = consortium.kz
    template = SignerTemplate.create(pki.key("seal"), pki.certificate("seal"))
    der, _sig = build_signed_data(
        template,
        content_type=ID_DATA,
        message_digest=template.hash(DATA),
        include_certificates=False,
    )
    report = validate_cades(der, DATA, validator)
    assert report.sub_indication is SubIndication.NO_SIGNING_CERTIFICATE_FOUND


# ---------------------------------------------------------------- revocation
def test_revoked_before_signing_is_total_failed_revoked(fresh_pki: OrgPki, tmp_path: Path) -> None:
    fresh_pki.revoke(fresh_pki.certificate("seal").serial_number, "key-compromise")
    signer = CadesSigner.for_org(fresh_pki, timestamper=tsa_for(fresh_pki, tmp_path))
    validator = CertificateValidator(
        [fresh_pki.certificate("root")], source=PkiRevocationSource(fresh_pki)
    )
    for level in (Level.B_B, Level.B_T):
        report = validate_cades(signer.sign(DATA, level), DATA, validator)
        assert report.indication is Indication.TOTAL_FAILED, report.to_json()
        assert report.sub_indication is SubIndication.REVOKED
        assert report.status.result == "failed"
        assert report.revocation is not None and report.revocation.status == "revoked"
        assert report.revocation.reason == "keyCompromise"


def test_revoked_after_a_b_t_signature_passes_with_the_poe_noted(
    fresh_pki: OrgPki, tmp_path: Path
) -> None:
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    signer = CadesSigner.for_org(
        fresh_pki, timestamper=tsa_for(fresh_pki, tmp_path, lambda: earlier)
    )
    b_t = signer.sign(DATA, Level.B_T)
    b_b = CadesSigner.for_org(fresh_pki, clock=lambda: earlier).sign(DATA, Level.B_B)
    fresh_pki.revoke(fresh_pki.certificate("seal").serial_number, "superseded")
    validator = CertificateValidator(
        [fresh_pki.certificate("root")], source=PkiRevocationSource(fresh_pki)
    )
    report = validate_cades(b_t, DATA, validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert any("after the proof of existence" in n for n in report.notes)
    assert report.revocation is not None and report.revocation.status == "revoked"
    # the same signature without a timestamp: only a claimed time, nothing proves it
    unproven = validate_cades(b_b, DATA, validator)
    assert unproven.indication is Indication.INDETERMINATE
    assert unproven.sub_indication is SubIndication.REVOKED_NO_POE


def test_revoked_issuing_ca_fails_the_chain(fresh_pki: OrgPki, tmp_path: Path) -> None:
    signer = CadesSigner.for_org(fresh_pki)
    fresh_pki.revoke(fresh_pki.certificate("issuing").serial_number, "ca-compromise")
    validator = CertificateValidator(
        [fresh_pki.certificate("root")], source=PkiRevocationSource(fresh_pki)
    )
    report = validate_cades(signer.sign(DATA, Level.B_B), DATA, validator)
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.REVOKED
    assert "CA certificate" in report.status.message


# ---------------------------------------------------------------- expiry and POE
@pytest.fixture(scope="module")
def old_pki(tmp_path_factory: pytest.TempPathFactory) -> OrgPki:
    """A PKI made four years ago: its seal certificate (3 years) expired a year ago."""
    root = tmp_path_factory.mktemp("old-pki")
    four_years_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=4 * 365)
    pki = init_pki(
        root, "KZ-CUSTOMS", country="KZ", name="KZ Customs", passphrase=PASSPHRASE,
        now=four_years_ago,
    )  # fmt: skip
    pki.write_crl("issuing")
    pki.write_crl("root")
    return pki


def test_expired_certificate_without_poe_is_out_of_bounds_no_poe(old_pki: OrgPki) -> None:
    seal = old_pki.certificate("seal")
    assert seal.not_valid_after_utc < dt.datetime.now(dt.UTC)
    when = seal.not_valid_after_utc - dt.timedelta(days=30)
    signer = CadesSigner.for_org(old_pki, clock=lambda: when)
    validator = CertificateValidator(
        [old_pki.certificate("root")], source=PkiRevocationSource(old_pki)
    )
    report = validate_cades(signer.sign(DATA, Level.B_B), DATA, validator)
    assert report.indication is Indication.INDETERMINATE, report.to_json()
    assert report.sub_indication is SubIndication.OUT_OF_BOUNDS_NO_POE
    assert report.identity.result == "indeterminate"


def test_expired_certificate_with_a_timestamp_inside_its_validity_passes(
    old_pki: OrgPki, tmp_path: Path
) -> None:
    seal = old_pki.certificate("seal")
    when = seal.not_valid_after_utc - dt.timedelta(days=30)
    signer = CadesSigner.for_org(
        old_pki, timestamper=tsa_for(old_pki, tmp_path, lambda: when), clock=lambda: when
    )
    validator = CertificateValidator(
        [old_pki.certificate("root")], source=PkiRevocationSource(old_pki)
    )
    report = validate_cades(signer.sign(DATA, Level.B_T), DATA, validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert any("valid at the proof of existence" in n for n in report.identity.notes)


def test_timestamp_after_expiry_is_total_failed_expired(old_pki: OrgPki, tmp_path: Path) -> None:
    seal = old_pki.certificate("seal")
    when = seal.not_valid_after_utc - dt.timedelta(days=30)
    # the signer's clock is in the past; the TSA (honest) stamps it now, after expiry
    signer = CadesSigner.for_org(
        old_pki, timestamper=tsa_for(old_pki, tmp_path), clock=lambda: when
    )
    validator = CertificateValidator(
        [old_pki.certificate("root")], source=PkiRevocationSource(old_pki)
    )
    report = validate_cades(signer.sign(DATA, Level.B_T), DATA, validator)
    assert report.indication is Indication.TOTAL_FAILED, report.to_json()
    assert report.sub_indication is SubIndication.EXPIRED


def test_validation_time_is_injected(kz: CadesSigner, validator: CertificateValidator) -> None:
    der = kz.sign(DATA, Level.B_B)
    past = dt.datetime(2001, 1, 1, tzinfo=dt.UTC)
    report = validate_cades(der, DATA, validator, at=past)
    assert report.validation_time == past
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.NOT_YET_VALID


def test_officer_signature_is_a_qualified_signature(fresh_pki: OrgPki, tmp_path: Path) -> None:
    from trust_services.cms import SignerTemplate

    issued = fresh_pki.issue_with_new_key(
        CertProfile.OFFICER, "officer-1", common_name="A. Officer"
    )
    signer = CadesSigner(
        fresh_pki.key("officer-1"), issued.certificate, [fresh_pki.certificate("issuing")]
    )
    assert isinstance(signer.template, SignerTemplate)
    validator = CertificateValidator(
        [fresh_pki.certificate("root")], source=PkiRevocationSource(fresh_pki)
    )
    report = validate_cades(signer.sign(DATA, Level.B_B), DATA, validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.qualification == "qualified electronic signature under KZ legislation"


# ---------------------------------------------------------------- interoperability
def test_openssl_cades_signature_validates(fresh_pki: OrgPki, tmp_path: Path) -> None:
    """A CAdES-B-B made by `openssl cms -sign -cades` (DER and PEM) passes here."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    from tests.tools import require_tool, run_tool
    from trust_services.validation import verify

    openssl = require_tool("openssl")
    key = ec.generate_private_key(ec.SECP256R1())
    issued = fresh_pki.issue_certificate(
        CertProfile.OFFICER, key.public_key(), common_name="B. Inspector", label=None
    )
    key_path = tmp_path / "officer.key"
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path = tmp_path / "officer.pem"
    cert_path.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
    chain_path = tmp_path / "issuing.pem"
    chain_path.write_bytes(fresh_pki.pem("issuing"))
    data_path = tmp_path / "declaration.xml"
    data_path.write_bytes(b"<declaration ucr='5KZ1'/>")
    validator = CertificateValidator(
        [fresh_pki.certificate("root")], source=PkiRevocationSource(fresh_pki)
    )
    for form in ("DER", "PEM"):
        sig_path = tmp_path / f"sig.{form.lower()}"
        run_tool(
            openssl, "cms", "-sign", "-binary", "-cades", "-md", "sha256",
            "-in", data_path, "-signer", cert_path, "-inkey", key_path,
            "-certfile", chain_path, "-outform", form, "-out", sig_path,
        )  # fmt: skip
        (report,) = verify(data_path.read_bytes(), sig_path.read_bytes(), validator=validator)
        assert report.indication is Indication.TOTAL_PASSED, report.to_json()
        assert report.qualification == "qualified electronic signature under KZ legislation"
        assert report.claimed_signing_time is not None
        (bad,) = verify(b"<declaration ucr='5KZ2'/>", sig_path.read_bytes(), validator=validator)
        assert bad.sub_indication is SubIndication.HASH_FAILURE


def test_claimed_signing_time_after_the_timestamp_is_flagged(
    consortium: Consortium, validator: CertificateValidator, tmp_path: Path
) -> None:
    pki = consortium.kz
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    signer = CadesSigner.for_org(pki, timestamper=tsa_for(pki, tmp_path), clock=lambda: later)
    report = validate_cades(signer.sign(DATA, Level.B_T), DATA, validator)
    assert any("later than the signature timestamp" in n for n in report.notes), report.notes


def test_revocation_after_poe_is_reported_in_status(fresh_pki: OrgPki, tmp_path: Path) -> None:
    earlier = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    signer = CadesSigner.for_org(
        fresh_pki, timestamper=tsa_for(fresh_pki, tmp_path, lambda: earlier)
    )
    b_t = signer.sign(DATA, Level.B_T)
    fresh_pki.revoke(fresh_pki.certificate("seal").serial_number)
    validator = CertificateValidator(
        [fresh_pki.certificate("root")], source=PkiRevocationSource(fresh_pki)
    )
    report = validate_cades(b_t, DATA, validator)
    assert report.passed
    assert "revoked only after the proof of existence" in report.status.message


def test_b_lt_still_validates_offline_long_after_its_revocation_data_expired(
    kz: CadesSigner, consortium: Consortium
) -> None:
    """Embedded OCSP (1 h) and CRL (days) are long stale; they were current at the POE."""
    offline = CertificateValidator([consortium.kz.certificate("root")])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=200)
    report = validate_cades(kz.sign(DATA, Level.B_LT), DATA, offline, at=later)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    # without a POE the same stale data is not enough
    b_b = validate_cades(kz.sign(DATA, Level.B_B), DATA, offline, at=later)
    assert b_b.sub_indication is SubIndication.TRY_LATER

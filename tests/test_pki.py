"""The PKI hierarchy and its certificate profiles (ETSI EN 319 412, RFC 3161, RFC 6960)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from asn1crypto import core
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from tests.conftest import PASSPHRASE, Consortium
from trust_services.errors import KeyStoreError, PassphraseError, PkiError
from trust_services.keystore import FileKeyStore, KeyAlgorithm
from trust_services.pki import OrgPki, init_pki
from trust_services.profiles import (
    QC_COMPLIANCE,
    QC_SSCD,
    QC_TYPE_ESEAL,
    QC_TYPE_ESIGN,
    ROLE_ATTRIBUTE_OID,
    CertProfile,
)


class _QcStatement(core.Sequence):
    _fields = [  # noqa: RUF012 - asn1crypto's declarative spec
        ("statement_id", core.ObjectIdentifier),
        ("statement_info", core.Any, {"optional": True}),
    ]


class _QcStatements(core.SequenceOf):
    _child_spec = _QcStatement


class _OidList(core.SequenceOf):
    _child_spec = core.ObjectIdentifier


def qc_statement_ids(cert: x509.Certificate) -> dict[str, bytes | None]:
    """Parse QCStatements with asn1crypto (an independent decoder): id → raw info DER."""
    parsed = ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    out: dict[str, bytes | None] = {}
    for ext in parsed["tbs_certificate"]["extensions"]:
        if ext["extn_id"].dotted == "1.3.6.1.5.5.7.1.3":
            for statement in _QcStatements.load(ext["extn_value"].contents):
                info = statement["statement_info"]
                out[statement["statement_id"].dotted] = info.dump() if info.native else None
    return out


def qc_types(cert: x509.Certificate) -> list[str]:
    info = qc_statement_ids(cert)["0.4.0.1862.1.6"]
    assert info is not None
    return [o.dotted for o in _OidList.load(info)]


def test_hierarchy_chains_and_profiles(consortium: Consortium) -> None:
    kz = consortium.kz
    root, issuing = kz.certificate("root"), kz.certificate("issuing")
    assert root.issuer == root.subject
    assert issuing.issuer == root.subject
    for name in ("seal", "tsa", "ocsp"):
        cert = kz.certificate(name)
        assert cert.issuer == issuing.subject
        issuing.public_key().verify(  # type: ignore[call-arg]
            cert.signature,
            cert.tbs_certificate_bytes,
            *_ecdsa(cert),
        )
    assert issuing.extensions.get_extension_for_class(x509.BasicConstraints).value.path_length == 0

    seal = kz.certificate("seal")
    org_id = seal.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value
    assert org_id == "NTRKZ-KZ-CUSTOMS"
    statements = qc_statement_ids(seal)
    assert QC_COMPLIANCE in statements
    assert QC_SSCD not in statements  # file key: no QSCD claim
    assert "0.4.0.1862.1.6" in statements
    ku = seal.extensions.get_extension_for_class(x509.KeyUsage)
    assert ku.critical and ku.value.content_commitment and ku.value.digital_signature

    tsa = kz.certificate("tsa")
    eku = tsa.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]

    ocsp = kz.certificate("ocsp")
    assert (
        ExtendedKeyUsageOID.OCSP_SIGNING
        in ocsp.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    )
    ocsp.extensions.get_extension_for_class(x509.OCSPNoCheck)


def _ecdsa(cert: x509.Certificate) -> tuple[object, ...]:
    from cryptography.hazmat.primitives.asymmetric import ec

    assert cert.signature_hash_algorithm is not None
    return (ec.ECDSA(cert.signature_hash_algorithm),)


def test_qc_type_values(consortium: Consortium) -> None:
    assert qc_types(consortium.kz.certificate("seal")) == [QC_TYPE_ESEAL]


def test_urls_point_at_the_node(consortium: Consortium) -> None:
    seal = consortium.kz.certificate("seal")
    base = "http://127.0.0.1:8318/orgs/KZ-CUSTOMS"
    dp = seal.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert dp[0].full_name[0].value == f"{base}/crl/issuing.crl"  # type: ignore[index]
    aia = {
        d.access_method.dotted_string: d.access_location.value
        for d in seal.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    }
    assert aia["1.3.6.1.5.5.7.48.1"] == f"{base}/ocsp"
    assert aia["1.3.6.1.5.5.7.48.2"] == f"{base}/certs/issuing.cer"


def test_officer_and_member_identities(fresh_pki: OrgPki) -> None:
    officer = fresh_pki.issue_with_new_key(
        CertProfile.OFFICER, "officer-aigerim", common_name="Aigerim Sadykova"
    )
    assert qc_types(officer.certificate) == [QC_TYPE_ESIGN]
    member = fresh_pki.issue_with_new_key(
        CertProfile.MEMBER,
        "member-khorgos",
        common_name="Khorgos Gateway Operator",
        role="sez-operator",
        sez="KZ-KHORGOS",
    )
    ext = member.certificate.extensions.get_extension_for_oid(
        x509.ObjectIdentifier(ROLE_ATTRIBUTE_OID)
    )
    # Fabric CA's encoding: the extension value is the JSON document itself
    assert json.loads(ext.value.value) == {"attrs": {"role": "sez-operator", "sez": "KZ-KHORGOS"}}  # type: ignore[attr-defined]
    entries = {e["label"]: e for e in fresh_pki.list_issued()}
    assert entries["member-khorgos"]["profile"] == "member"


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P384])
def test_other_algorithms(tmp_path: Path, algorithm: KeyAlgorithm) -> None:
    pki = init_pki(
        tmp_path, "UZ-CUSTOMS", country="UZ", name="UZ", passphrase=PASSPHRASE, algorithm=algorithm
    )
    assert pki.certificate("seal").public_key().key_size == 384  # type: ignore[union-attr]


def test_revocation_updates_index_and_crl(fresh_pki: OrgPki) -> None:
    serial = fresh_pki.certificate("seal").serial_number
    assert fresh_pki.status(serial).status == "good"
    before = x509.load_der_x509_crl(fresh_pki.crl("issuing"))
    status = fresh_pki.revoke(serial, "key-compromise")
    assert status.status == "revoked" and status.reason == "key-compromise"
    crl = x509.load_der_x509_crl(fresh_pki.crl("issuing"))
    assert crl.is_signature_valid(fresh_pki.certificate("issuing").public_key())  # type: ignore[arg-type]
    entry = crl.get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == (
        x509.ReasonFlags.key_compromise
    )
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number > before.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    with pytest.raises(PkiError, match="already revoked"):
        fresh_pki.revoke(serial)
    with pytest.raises(PkiError, match="unknown revocation reason"):
        fresh_pki.revoke(fresh_pki.certificate("tsa").serial_number, "bored")
    with pytest.raises(PkiError, match="issued no certificate"):
        fresh_pki.revoke(12345)


def test_refusals(tmp_path: Path, consortium: Consortium) -> None:
    with pytest.raises(PkiError, match="already has a PKI"):
        init_pki(consortium.root, "KZ-CUSTOMS", country="KZ", name="x", passphrase=PASSPHRASE)
    with pytest.raises(PkiError, match="country"):
        init_pki(tmp_path, "XX", country="kz", name="x", passphrase=PASSPHRASE)
    with pytest.raises(PkiError, match="organisation id"):
        init_pki(tmp_path, "../evil", country="KZ", name="x", passphrase=PASSPHRASE)
    with pytest.raises(PkiError, match="no PKI for"):
        OrgPki(tmp_path, "TJ-CUSTOMS")
    locked = OrgPki(consortium.root, "KZ-CUSTOMS")
    with pytest.raises(KeyStoreError, match="locked"):
        locked.key("seal")


def test_wrong_passphrase_is_refused_without_leaking(consortium: Consortium) -> None:
    pki = OrgPki(consortium.root, "KZ-CUSTOMS").unlock(b"not-the-passphrase")
    with pytest.raises(PassphraseError) as info:
        pki.key("seal")
    assert "not-the-passphrase" not in str(info.value)
    assert "wrong passphrase" in str(info.value)


def test_key_files_are_encrypted_and_private(consortium: Consortium) -> None:
    for path in (consortium.kz.path / "keys").iterdir():
        assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
        assert path.stat().st_mode & 0o077 == 0
    key = consortium.kz.key("seal")
    assert "PRIVATE" not in repr(key)


def test_file_key_store_refuses_duplicates_and_bad_labels(tmp_path: Path) -> None:
    store = FileKeyStore(tmp_path, b"pw")
    store.generate("seal", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate("seal", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="invalid key label"):
        store.load("../../etc/passwd")
    with pytest.raises(PassphraseError):
        FileKeyStore(tmp_path, b"")


def test_expired_certificate_can_be_issued_for_tests(fresh_pki: OrgPki) -> None:
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    issued = fresh_pki.issue_with_new_key(
        CertProfile.OFFICER,
        "officer-old",
        common_name="Retired Officer",
        not_before=past,
        not_after=past + dt.timedelta(days=30),
    )
    assert issued.certificate.not_valid_after_utc < dt.datetime.now(dt.UTC)

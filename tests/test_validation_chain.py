"""Chain and revocation rules: forged or broken revocation data is never believed."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from tests.conftest import Consortium
from trust_services.ocsp import OcspResponder
from trust_services.pki import OrgPki
from trust_services.validation import (
    CertificateValidator,
    EmbeddedRevocation,
    Indication,
    SubIndication,
    Usage,
)

NOW = dt.datetime.now(dt.UTC)


class FixedSource:
    """A revocation source that serves exactly the bytes it is given."""

    def __init__(self, ocsp_der: bytes | None = None, crl_der: bytes | None = None) -> None:
        self.ocsp_der = ocsp_der
        self.crl_der = crl_der

    def ocsp(self, cert: x509.Certificate, issuer: x509.Certificate) -> bytes | None:
        return self.ocsp_der

    def crl(self, url: str) -> bytes | None:
        return self.crl_der


def _software_key(pki: OrgPki, label: str) -> object:
    key = pki.key(label).certificate_signer()
    assert key is not None
    return key


def _forged_revoked_ocsp(victim: OrgPki, forger: OrgPki) -> bytes:
    """'revoked' about victim's seal, signed by forger's OCSP responder."""
    seal, issuer = victim.certificate("seal"), victim.certificate("issuing")
    builder = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=seal, issuer=issuer, algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.REVOKED, this_update=NOW, next_update=NOW
            + dt.timedelta(hours=1), revocation_time=NOW - dt.timedelta(days=1),
            revocation_reason=x509.ReasonFlags.key_compromise,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, forger.certificate("ocsp"))
        .certificates([forger.certificate("ocsp")])
    )  # fmt: skip
    key = _software_key(forger, "ocsp")
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


def _forged_crl(victim: OrgPki, forger: OrgPki) -> bytes:
    """victim's issuing CA name, victim's seal listed — signed by forger's issuing key."""
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(victim.certificate("seal").serial_number)
        .revocation_date(NOW - dt.timedelta(days=1))
        .build()
    )
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(victim.certificate("issuing").subject)
        .last_update(NOW - dt.timedelta(minutes=1))
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(revoked)
    )
    key = _software_key(forger, "issuing")
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def genuine_ocsp(consortium: Consortium) -> bytes:
    return OcspResponder(consortium.kz).response_for(consortium.kz.certificate("seal"))


def _validate(
    consortium: Consortium, source: object = None, embedded: EmbeddedRevocation | None = None
) -> tuple[Indication | None, SubIndication | None, str]:
    kz = consortium.kz
    validator = CertificateValidator([kz.certificate("root")], source=source)  # type: ignore[arg-type]
    result = validator.validate(
        kz.certificate("seal"), [kz.certificate("issuing")], at=NOW, embedded=embedded
    )
    return result.indication, result.sub_indication, result.status.message


def test_genuine_embedded_ocsp_is_believed(consortium: Consortium, genuine_ocsp: bytes) -> None:
    crl = consortium.kz.crl("root")
    ind, sub, _ = _validate(consortium, embedded=EmbeddedRevocation((genuine_ocsp,), (crl,)))
    assert (ind, sub) == (None, None)


def test_ocsp_signed_by_another_administration_is_ignored(consortium: Consortium) -> None:
    forged = _forged_revoked_ocsp(consortium.kz, consortium.uz)
    crl = consortium.kz.crl("root")
    ind, sub, _ = _validate(consortium, embedded=EmbeddedRevocation((forged,), (crl,)))
    assert ind is Indication.INDETERMINATE and sub is SubIndication.TRY_LATER
    ind, sub, _ = _validate(consortium, source=FixedSource(ocsp_der=forged))
    assert sub is SubIndication.TRY_LATER  # not REVOKED: the forger is not believed


def test_ocsp_with_a_broken_signature_is_ignored(
    consortium: Consortium, genuine_ocsp: bytes
) -> None:
    broken = bytearray(genuine_ocsp)
    tbs = ocsp.load_der_ocsp_response(genuine_ocsp).tbs_response_bytes
    at = genuine_ocsp.index(tbs)
    broken[at + len(tbs) - 3] ^= 0x01  # inside the signed ResponseData
    crl = consortium.kz.crl("root")
    _ind, sub, _ = _validate(consortium, embedded=EmbeddedRevocation((bytes(broken),), (crl,)))
    assert sub is SubIndication.TRY_LATER


def test_forged_crl_is_ignored(consortium: Consortium) -> None:
    forged = _forged_crl(consortium.kz, consortium.uz)
    ind, sub, _ = _validate(consortium, embedded=EmbeddedRevocation((), (forged,)))
    assert ind is Indication.INDETERMINATE and sub is SubIndication.TRY_LATER


def test_garbage_revocation_data_is_ignored(consortium: Consortium) -> None:
    _ind, sub, _ = _validate(consortium, source=FixedSource(b"\x30\x00garbage", b"\x30\x03abc"))
    assert sub is SubIndication.TRY_LATER


def test_ocsp_about_another_certificate_does_not_count(consortium: Consortium) -> None:
    kz = consortium.kz
    about_tsa = OcspResponder(kz).response_for(kz.certificate("tsa"))
    _ind, sub, _ = _validate(consortium, source=FixedSource(ocsp_der=about_tsa))
    assert sub is SubIndication.TRY_LATER


def test_stale_data_is_revocation_out_of_bounds(consortium: Consortium) -> None:
    kz = consortium.kz
    old = NOW - dt.timedelta(days=3)
    stale = OcspResponder(kz, clock=lambda: old).response_for(kz.certificate("seal"))
    _ind, sub, _ = _validate(consortium, source=FixedSource(ocsp_der=stale))
    assert sub is SubIndication.REVOCATION_OUT_OF_BOUNDS_NO_POE


def test_tsa_usage_needs_the_timestamping_eku(consortium: Consortium) -> None:
    kz = consortium.kz
    validator = CertificateValidator([kz.certificate("root")])
    seal = validator.validate(
        kz.certificate("seal"), [kz.certificate("issuing")], at=NOW, usage=Usage.TIMESTAMPING
    )
    assert seal.sub_indication is SubIndication.CHAIN_CONSTRAINTS_FAILURE
    tsa = validator.validate(
        kz.certificate("tsa"), [kz.certificate("issuing")], at=NOW, usage=Usage.TIMESTAMPING
    )
    assert tsa.sub_indication is not SubIndication.CHAIN_CONSTRAINTS_FAILURE
    assert tsa.identity.ok


def test_missing_intermediate_is_no_chain(consortium: Consortium) -> None:
    kz = consortium.kz
    validator = CertificateValidator([kz.certificate("root")])
    result = validator.validate(kz.certificate("seal"), [], at=NOW)
    assert result.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_no_anchor_is_refused() -> None:
    with pytest.raises(ValueError, match="trust anchor"):
        CertificateValidator([])


def _responder_without_nocheck(pki: OrgPki) -> tuple[x509.Certificate, object]:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    issuer = pki.certificate("issuing")
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Checked responder")]))
        .issuer_name(issuer.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(hours=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False)
        .sign(_software_key(pki, "issuing"), hashes.SHA256())  # type: ignore[arg-type]
    )
    return cert, key


def test_responder_without_ocsp_nocheck_needs_a_crl(fresh_pki: OrgPki) -> None:
    seal, issuer = fresh_pki.certificate("seal"), fresh_pki.certificate("issuing")
    responder, key = _responder_without_nocheck(fresh_pki)
    response = (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=seal, issuer=issuer, algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD, this_update=NOW,
            next_update=NOW + dt.timedelta(hours=1), revocation_time=None, revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, responder)
        .certificates([responder])
        .sign(key, hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(serialization.Encoding.DER)
    )  # fmt: skip
    validator = CertificateValidator([fresh_pki.certificate("root")])
    root_crl = fresh_pki.crl("root")

    def run(*crls: bytes) -> tuple[SubIndication | None, str | None]:
        result = validator.validate(
            seal, [issuer], at=NOW, embedded=EmbeddedRevocation((response,), (root_crl, *crls))
        )
        return result.sub_indication, result.revocation.source if result.revocation else None

    # nothing tells the responder's own status: its answer is not taken
    assert run() == (SubIndication.TRY_LATER, None)
    # the issuing CA's CRL clears the responder: the OCSP answer counts
    assert run(fresh_pki.crl("issuing")) == (None, "embedded-ocsp")
    # a CRL that lists the responder: its answers are refused (the CRL answers instead)
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(responder.serial_number)
        .revocation_date(NOW - dt.timedelta(minutes=30))
        .build()
    )
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(NOW - dt.timedelta(minutes=1))
        .next_update(NOW + dt.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .sign(_software_key(fresh_pki, "issuing"), hashes.SHA256())  # type: ignore[arg-type]
        .public_bytes(serialization.Encoding.DER)
    )
    assert run(crl) == (None, "embedded-crl")

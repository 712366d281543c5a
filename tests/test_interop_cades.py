"""Our CAdES seals checked by independent verifiers: `openssl cms` and pyHanko.

OpenSSL 3.0's `cms -verify` has no `-untrusted`; the issuing CA goes in with `-certfile`
(it is also embedded in every seal).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from asn1crypto import cms
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives import serialization
from pyhanko.sign.validation import async_validate_detached_cms
from pyhanko_certvalidator import ValidationContext

from tests.conftest import PASSPHRASE, Consortium
from tests.softhsm import SoftHsmToken, softhsm_config, softhsm_token  # noqa: F401
from tests.tools import require_tool, run_tool
from trust_services import _der
from trust_services.cades import CadesSigner, Level
from trust_services.keystore import KeyAlgorithm
from trust_services.pki import OrgPki, init_pki
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority

DATA = b"Consignment UCR 5KZ123456789-0001 released at Khorgos\n"


@pytest.fixture(scope="session")
def other_pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, OrgPki]:
    """One P-384 and one RSA-3072 PKI per session (RSA key generation is slow)."""
    root = tmp_path_factory.mktemp("cades-algorithms")
    return {
        algorithm.value: init_pki(
            root,
            f"UZ-{algorithm.value.upper()}",
            country="UZ",
            name=f"UZ Customs {algorithm.value}",
            passphrase=PASSPHRASE,
            algorithm=algorithm,
        )
        for algorithm in (KeyAlgorithm.EC_P384, KeyAlgorithm.RSA_3072)
    }


@pytest.fixture(params=["ec-p256", "ec-p384", "rsa-3072"])
def pki(
    request: pytest.FixtureRequest, consortium: Consortium, other_pkis: dict[str, OrgPki]
) -> Iterator[OrgPki]:
    yield consortium.kz if request.param == "ec-p256" else other_pkis[request.param]


def full_signer(pki: OrgPki) -> CadesSigner:
    tsa = TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(pki.path / "tsa" / "serial"),
    )
    return CadesSigner.for_org(pki, timestamper=tsa, revocation=PkiRevocationSource(pki))


def write_pems(pki: OrgPki, directory: Path) -> tuple[Path, Path]:
    root, issuing = directory / "root.pem", directory / "issuing.pem"
    root.write_bytes(pki.pem("root"))
    issuing.write_bytes(pki.pem("issuing"))
    return root, issuing


def openssl_verify(sig: Path, content: Path, root: Path, issuing: Path) -> int:
    openssl = require_tool("openssl")
    result = run_tool(
        openssl, "cms", "-verify", "-binary", "-inform", "DER", "-in", sig, "-content", content,
        "-CAfile", root, "-certfile", issuing, "-purpose", "any", "-out", "/dev/null",
        check=False,
    )  # fmt: skip
    return result.returncode


@pytest.mark.parametrize("level", list(Level))
def test_openssl_accepts_our_seals(pki: OrgPki, level: Level, tmp_path: Path) -> None:
    root, issuing = write_pems(pki, tmp_path)
    content = tmp_path / "data"
    content.write_bytes(DATA)
    sig = tmp_path / "sig.p7s"
    sig.write_bytes(full_signer(pki).sign(DATA, level))
    assert openssl_verify(sig, content, root, issuing) == 0
    content.write_bytes(DATA.replace(b"released", b"RELEASED"))
    assert openssl_verify(sig, content, root, issuing) != 0


def test_openssl_shows_signing_certificate_v2(consortium: Consortium, tmp_path: Path) -> None:
    sig = tmp_path / "sig.p7s"
    sig.write_bytes(CadesSigner.for_org(consortium.kz).sign(DATA))
    printed = run_tool(
        require_tool("openssl"), "cms", "-cmsout", "-print", "-inform", "DER", "-in", sig
    ).stdout
    assert "id-smime-aa-signingCertificateV2" in printed or "1.2.840.113549.1.9.16.2.47" in printed
    assert "signingTime" in printed and "messageDigest" in printed


def test_openssl_verifies_canonical_json_seal(consortium: Consortium, tmp_path: Path) -> None:
    from trust_services.cades import canonical_json

    record = {"status": "valid", "aeo_id": "KZ-AEO-2025-000123"}
    root, issuing = write_pems(consortium.kz, tmp_path)
    sig = tmp_path / "sig.p7s"
    sig.write_bytes(CadesSigner.for_org(consortium.kz).sign_json(record))
    content = tmp_path / "record.json"
    content.write_bytes(canonical_json(record))
    assert openssl_verify(sig, content, root, issuing) == 0


def asn1(cert_pem: bytes) -> asn1_x509.Certificate:
    from cryptography import x509

    der = x509.load_pem_x509_certificate(cert_pem).public_bytes(serialization.Encoding.DER)
    return asn1_x509.Certificate.load(der)


@pytest.mark.parametrize("level", list(Level))
def test_pyhanko_validates_our_seals(pki: OrgPki, level: Level) -> None:
    der = full_signer(pki).sign(DATA, level)
    signed_data = cms.ContentInfo.load(der)["content"]
    root = asn1(pki.pem("root"))

    def context() -> ValidationContext:
        if level is not Level.B_LT:
            return ValidationContext(trust_roots=[root], allow_fetching=False)
        # B-LT: the embedded revocation data alone must be enough, with revocation required
        crls = [c.chosen for c in signed_data["crls"] if c.name == "crl"]
        ocsps = [c.chosen["other_rev_info"] for c in signed_data["crls"] if c.name == "other"]
        return ValidationContext(
            trust_roots=[root],
            allow_fetching=False,
            revocation_mode="require",
            crls=crls,
            ocsps=ocsps,
        )

    status = asyncio.run(
        async_validate_detached_cms(
            DATA,
            signed_data,
            signer_validation_context=context(),
            ts_validation_context=context(),
        )
    )
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    if level is Level.B_B:
        assert status.timestamp_validity is None
    else:
        ts = status.timestamp_validity
        assert ts is not None and ts.intact and ts.valid and ts.trusted
    tampered = asyncio.run(
        async_validate_detached_cms(DATA + b"!", signed_data, signer_validation_context=context())
    )
    assert not tampered.intact


def test_seal_with_key_on_pkcs11_token(
    softhsm_token: SoftHsmToken,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The seal key lives on a (SoftHSM2) token; openssl accepts the seal; QcSSCD is set."""
    from cryptography import x509

    from trust_services.pki import HsmConfig
    from trust_services.profiles import QC_SSCD, QC_STATEMENTS_OID

    pki = init_pki(
        tmp_path / "node",
        "KG-CUSTOMS",
        country="KG",
        name="KG Customs (HSM)",
        passphrase=PASSPHRASE,
        hsm=HsmConfig(softhsm_token.module, softhsm_token.label),
        hsm_pin=softhsm_token.pin,
    )
    signer = full_signer(pki)
    assert signer.template.key.in_hsm
    root, issuing = write_pems(pki, tmp_path)
    content = tmp_path / "data"
    content.write_bytes(DATA)
    for level in Level:
        sig = tmp_path / f"{level}.p7s"
        sig.write_bytes(signer.sign(DATA, level))
        assert openssl_verify(sig, content, root, issuing) == 0
    qc = pki.certificate("seal").extensions.get_extension_for_oid(
        x509.ObjectIdentifier(QC_STATEMENTS_OID)
    )
    # QCStatements ::= SEQUENCE OF SEQUENCE { statementId OID, ... }: QcSSCD has no info
    assert _der.seq(_der.oid(QC_SSCD)) in qc.value.value

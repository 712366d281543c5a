"""Pkcs11KeyStore on a real SoftHSM2 token: keys made on the token, never extractable."""

from __future__ import annotations

import datetime as dt
import subprocess
import threading
from pathlib import Path

import pkcs11
import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass

from tests.softhsm import (  # noqa: F401 (fixtures)
    PIN,
    SO_PIN,
    SoftHsmConfig,
    SoftHsmToken,
    init_token,
    softhsm_config,
    softhsm_token,
)
from trust_services import _der
from trust_services.errors import KeyStoreError, PassphraseError
from trust_services.keystore import DIGESTS, KeyAlgorithm, SigningKey
from trust_services.pkcs11 import Pkcs11Key, Pkcs11KeyStore, load_library
from trust_services.pki import HsmConfig, OrgPki, init_pki, sign_certificate
from trust_services.profiles import QC_SSCD, QC_STATEMENTS_OID, QCP_L_QSCD

WRONG_PIN = b"987654"


def verify(public: object, signature: bytes, data: bytes, digest: str) -> None:
    algo = DIGESTS[digest][1]()
    if isinstance(public, ec.EllipticCurvePublicKey):
        public.verify(signature, data, ec.ECDSA(algo))
    elif isinstance(public, rsa.RSAPublicKey):
        public.verify(signature, data, padding.PKCS1v15(), algo)
    else:
        raise AssertionError(f"unexpected public key {public!r}")


@pytest.fixture
def store(softhsm_token: SoftHsmToken) -> Pkcs11KeyStore:  # noqa: F811
    return Pkcs11KeyStore(*softhsm_token)


# ------------------------------------------------------------------ keys and signatures
@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_generate_sign_verify(store: Pkcs11KeyStore, algorithm: KeyAlgorithm) -> None:
    key = store.generate("seal", algorithm)
    assert isinstance(key, SigningKey)
    assert key.label == "seal" and key.algorithm is algorithm
    assert key.in_hsm and store.in_hsm
    assert key.certificate_signer() is None
    public = key.public_key()
    if algorithm is KeyAlgorithm.RSA_3072:
        assert isinstance(public, rsa.RSAPublicKey) and public.key_size == 3072
    else:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        assert public.curve.name == {"ec-p256": "secp256r1", "ec-p384": "secp384r1"}[algorithm]
    data = b"customs declaration KZ-2025-000001"
    for digest in DIGESTS:
        signature = key.sign(data, digest)
        verify(public, signature, data, digest)
        with pytest.raises(InvalidSignature):
            verify(public, signature, data + b"!", digest)
    if algorithm.is_ec:  # DER Ecdsa-Sig-Value, as a software key gives
        assert key.sign(data, "sha256")[0] == 0x30


def test_unsupported_digest(store: Pkcs11KeyStore) -> None:
    key = store.generate("seal", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="unsupported digest"):
        key.sign(b"x", "md5")


def test_load_after_reopening(softhsm_token: SoftHsmToken) -> None:  # noqa: F811
    with Pkcs11KeyStore(*softhsm_token) as first:
        ec_key = first.generate("seal", KeyAlgorithm.EC_P384)
        rsa_key = first.generate("tsa", KeyAlgorithm.RSA_3072)
        publics = {k.label: k.public_key().public_numbers() for k in (ec_key, rsa_key)}
    assert first.closed
    with pytest.raises(KeyStoreError, match="closed"):
        first.load("seal")
    with pytest.raises(KeyStoreError, match="closed"):
        ec_key.sign(b"x", "sha384")

    reopened = Pkcs11KeyStore(*softhsm_token)
    assert reopened.has("seal") and reopened.has("tsa") and not reopened.has("ocsp")
    for label, algorithm in (("seal", KeyAlgorithm.EC_P384), ("tsa", KeyAlgorithm.RSA_3072)):
        key = reopened.load(label)
        assert key.algorithm is algorithm
        assert key.public_key().public_numbers() == publics[label]
        verify(key.public_key(), key.sign(b"data", "sha256"), b"data", "sha256")
    assert reopened.load("seal") is reopened.load("seal")  # handles are cached


def test_load_missing_key(store: Pkcs11KeyStore, softhsm_token: SoftHsmToken) -> None:  # noqa: F811
    with pytest.raises(KeyStoreError) as info:
        store.load("seal")
    assert str(info.value) == f"no key 'seal' on token '{softhsm_token.label}'"
    assert not isinstance(info.value, PassphraseError)


def test_duplicate_label_refused(softhsm_token: SoftHsmToken) -> None:  # noqa: F811
    store = Pkcs11KeyStore(*softhsm_token)
    store.generate("seal", KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="already exists"):
        store.generate("seal", KeyAlgorithm.EC_P384)
    with pytest.raises(KeyStoreError, match="already exists"):
        Pkcs11KeyStore(*softhsm_token).generate("seal", KeyAlgorithm.EC_P256)


@pytest.mark.parametrize("label", ["", "Seal", "../seal", "a" * 65, "seal key"])
def test_invalid_label(store: Pkcs11KeyStore, label: str) -> None:
    with pytest.raises(KeyStoreError, match="invalid key label"):
        store.generate(label, KeyAlgorithm.EC_P256)
    with pytest.raises(KeyStoreError, match="invalid key label"):
        store.load(label)


@pytest.mark.parametrize(
    ("algorithm", "secret"),
    [
        (KeyAlgorithm.EC_P256, Attribute.VALUE),
        (KeyAlgorithm.RSA_3072, Attribute.PRIVATE_EXPONENT),
    ],
)
def test_private_key_is_not_extractable(
    softhsm_token: SoftHsmToken,  # noqa: F811
    algorithm: KeyAlgorithm,
    secret: Attribute,
) -> None:
    with Pkcs11KeyStore(*softhsm_token) as store:
        store.generate("seal", algorithm)
    token = load_library(softhsm_token.module).get_token(token_label=softhsm_token.label)
    with token.open(user_pin=softhsm_token.pin.decode()) as session:
        private = session.get_key(ObjectClass.PRIVATE_KEY, label="seal")
        public = session.get_key(ObjectClass.PUBLIC_KEY, label="seal")
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            private[secret]
        assert private[Attribute.TOKEN] is True
        assert private[Attribute.PRIVATE] is True
        assert private[Attribute.SENSITIVE] is True
        assert private[Attribute.ALWAYS_SENSITIVE] is True
        assert private[Attribute.EXTRACTABLE] is False
        assert private[Attribute.NEVER_EXTRACTABLE] is True
        assert private[Attribute.LOCAL] is True  # generated on the token
        assert private[Attribute.SIGN] is True
        assert private[Attribute.DECRYPT] is False
        assert private[Attribute.UNWRAP] is False
        assert private[Attribute.ID] == public[Attribute.ID] != b""
        assert public[Attribute.TOKEN] is True


def test_concurrent_signing(store: Pkcs11KeyStore) -> None:
    key = store.generate("seal", KeyAlgorithm.EC_P256)
    public = key.public_key()
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for i in range(25):
                data = f"{n}-{i}".encode()
                verify(public, key.sign(data, "sha256"), data, "sha256")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


# ------------------------------------------------------------------ opening the token
def test_wrong_pin(softhsm_token: SoftHsmToken) -> None:  # noqa: F811
    module, label, _pin = softhsm_token
    expected = f"wrong PIN for PKCS#11 token '{label}'"
    for pin in (WRONG_PIN, b"", b"\xff\xfe"):
        with pytest.raises(PassphraseError) as info:
            Pkcs11KeyStore(module, label, pin)
        assert str(info.value) == expected
        assert info.value.__cause__ is None and info.value.__suppress_context__
    assert WRONG_PIN.decode() not in str(info.value) and WRONG_PIN.decode() not in repr(info.value)

    # while another store holds the token's (process-wide) login, the PIN is still checked
    store = Pkcs11KeyStore(module, label, softhsm_token.pin)
    with pytest.raises(PassphraseError) as info:
        Pkcs11KeyStore(module, label, WRONG_PIN)
    assert str(info.value) == expected
    second = Pkcs11KeyStore(module, label, softhsm_token.pin)
    second.close()
    store.generate("seal", KeyAlgorithm.EC_P256)  # closing one store keeps the other open


def test_repr_shows_no_pin(store: Pkcs11KeyStore, softhsm_token: SoftHsmToken) -> None:  # noqa: F811
    key = store.generate("seal", KeyAlgorithm.EC_P256)
    for text in (repr(store), repr(key), str(key)):
        assert PIN.decode() not in text.replace(softhsm_token.label, "")
    assert repr(key) == f"Pkcs11Key(label='seal', algorithm=ec-p256, token='{softhsm_token.label}')"
    assert isinstance(key, Pkcs11Key)


def test_unknown_token(softhsm_token: SoftHsmToken) -> None:  # noqa: F811
    with pytest.raises(KeyStoreError, match="no PKCS#11 token labelled 'no-such-token'") as info:
        Pkcs11KeyStore(softhsm_token.module, "no-such-token", PIN)
    assert not isinstance(info.value, PassphraseError)


def test_missing_or_bad_module(tmp_path: Path) -> None:
    with pytest.raises(KeyStoreError, match="not found") as info:
        Pkcs11KeyStore(str(tmp_path / "nope.so"), "caravan", PIN)
    assert "\n" not in str(info.value)
    garbage = tmp_path / "garbage.so"
    garbage.write_bytes(b"not an ELF file")
    with pytest.raises(KeyStoreError, match="is not a PKCS#11 library") as info:
        Pkcs11KeyStore(str(garbage), "caravan", PIN)
    assert "\n" not in str(info.value)
    with pytest.raises(KeyStoreError, match="no PKCS#11 module"):
        Pkcs11KeyStore("", "caravan", PIN)


def test_token_made_after_the_module_was_loaded(softhsm_config: SoftHsmConfig) -> None:  # noqa: F811
    first = init_token(softhsm_config, "caravan-late-1")
    store = Pkcs11KeyStore(*first)
    key = store.generate("seal", KeyAlgorithm.EC_P256)
    second = init_token(softhsm_config, "caravan-late-2")  # re-initialises the module
    with pytest.raises(KeyStoreError, match="closed"):
        key.sign(b"x", "sha256")
    with pytest.raises(KeyStoreError, match="closed"):
        store.has("seal")
    store.close()  # harmless after the module was re-initialised
    Pkcs11KeyStore(*second).generate("seal", KeyAlgorithm.EC_P256)
    # with no session open on the module (the store above is gone), a token the module
    # does not list yet is looked for again
    subprocess.run(
        [
            *(softhsm_config.util, "--init-token", "--free", "--label", "caravan-late-3"),
            *("--pin", PIN.decode(), "--so-pin", SO_PIN),
        ],
        check=True,
        capture_output=True,
    )
    assert Pkcs11KeyStore(softhsm_config.module, "caravan-late-3", PIN).has("seal") is False


# ------------------------------------------------------------------ certificates and PKI
@pytest.mark.parametrize("algorithm", list(KeyAlgorithm))
def test_certificate_signed_on_token(store: Pkcs11KeyStore, algorithm: KeyAlgorithm) -> None:
    key = store.generate("root", algorithm)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HSM test root")])
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
    )
    cert = sign_certificate(builder, key)
    cert.verify_directly_issued_by(cert)
    assert cert.signature_hash_algorithm is not None
    assert cert.signature_hash_algorithm.name == algorithm.default_digest


def test_init_pki_with_keys_on_the_token(
    tmp_path: Path,
    softhsm_token: SoftHsmToken,  # noqa: F811
) -> None:
    module, label, pin = softhsm_token
    init_pki(
        tmp_path,
        "KZ-CUSTOMS",
        country="KZ",
        name="KZ Customs",
        passphrase=b"pw",
        hsm=HsmConfig(module, label),
        hsm_pin=pin,
    )
    pki = OrgPki(tmp_path, "KZ-CUSTOMS").unlock(b"pw", pin)
    assert pki.key("seal").in_hsm and pki.key("tsa").in_hsm
    assert not pki.key("root").in_hsm and not pki.key("issuing").in_hsm
    assert not list((tmp_path / "orgs" / "KZ-CUSTOMS" / "keys").glob("seal*"))

    seal = pki.certificate("seal")
    seal.verify_directly_issued_by(pki.certificate("issuing"))
    pki.certificate("tsa").verify_directly_issued_by(pki.certificate("issuing"))
    qc = seal.extensions.get_extension_for_oid(x509.ObjectIdentifier(QC_STATEMENTS_OID))
    assert isinstance(qc.value, x509.UnrecognizedExtension)
    assert QC_SSCD == "0.4.0.1862.1.4" and _der.oid(QC_SSCD) in qc.value.value
    policies = seal.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert QCP_L_QSCD == "0.4.0.194112.1.3"
    assert [p.policy_identifier.dotted_string for p in policies] == [QCP_L_QSCD]

    data = b"sealed record"
    verify(seal.public_key(), pki.key("seal").sign(data, "sha256"), data, "sha256")

    with pytest.raises(PassphraseError):
        OrgPki(tmp_path, "KZ-CUSTOMS").unlock(b"pw", WRONG_PIN)
    with pytest.raises(KeyStoreError, match="PIN is needed"):
        OrgPki(tmp_path, "KZ-CUSTOMS").unlock(b"pw")

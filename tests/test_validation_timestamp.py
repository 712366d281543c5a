"""RFC 3161 timestamp validation: responses and bare tokens, with and without data."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.conftest import Consortium
from tests.tools import require_tool, run_tool
from trust_services.errors import InputError
from trust_services.fetch import CachingRevocationSource
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority, build_request
from trust_services.validation import (
    CertificateValidator,
    Indication,
    SubIndication,
    validate_timestamp,
)

DATA = b"consignment UCR 5KZ123456789-1"


@pytest.fixture(scope="module")
def tsa(consortium: Consortium, tmp_path_factory: pytest.TempPathFactory) -> TimestampAuthority:
    pki = consortium.kz
    return TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(tmp_path_factory.mktemp("ts") / "serial"),
    )


@pytest.fixture(scope="module")
def validator(consortium: Consortium) -> CertificateValidator:
    source = CachingRevocationSource(PkiRevocationSource(consortium.kz))
    return CertificateValidator([consortium.kz.certificate("root")], source=source)


def test_response_with_data_passes(
    tsa: TimestampAuthority, validator: CertificateValidator
) -> None:
    tsr = tsa.respond(build_request(DATA))
    report = validate_timestamp(tsr, validator, data=DATA)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.format == "RFC3161-TOKEN"
    assert report.timestamp is not None and report.timestamp.trusted
    assert report.timestamp.policy == "0.4.0.2023.1.1"
    assert report.timestamp.accuracy_seconds == 1.0
    assert report.signer is not None and report.signer.common_name is not None
    assert report.signer.common_name.endswith("TSA")
    assert "messageImprint matches" in report.integrity.message


def test_token_alone_passes_and_says_the_data_was_not_compared(
    tsa: TimestampAuthority, validator: CertificateValidator
) -> None:
    token = tsa.stamp(DATA)
    report = validate_timestamp(token, validator)
    assert report.indication is Indication.TOTAL_PASSED
    assert any("not compared" in n for n in report.notes)


def test_digest_instead_of_data(tsa: TimestampAuthority, validator: CertificateValidator) -> None:
    token = tsa.stamp(DATA)
    ok = validate_timestamp(token, validator, digest=hashlib.sha256(DATA).digest())
    assert ok.indication is Indication.TOTAL_PASSED
    bad = validate_timestamp(token, validator, digest=hashlib.sha256(b"x").digest())
    assert bad.sub_indication is SubIndication.HASH_FAILURE


def test_other_data_is_hash_failure(
    tsa: TimestampAuthority, validator: CertificateValidator
) -> None:
    report = validate_timestamp(tsa.stamp(DATA), validator, data=DATA + b"2")
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.HASH_FAILURE


def test_untrusted_tsa(tsa: TimestampAuthority, consortium: Consortium) -> None:
    uz = CertificateValidator([consortium.uz.certificate("root")])
    report = validate_timestamp(tsa.stamp(DATA), uz, data=DATA)
    assert report.sub_indication is SubIndication.NO_CERTIFICATE_CHAIN_FOUND


def test_seal_certificate_is_not_a_tsa(consortium: Consortium, tmp_path: Path) -> None:
    """A token signed with a key whose certificate lacks id-kp-timeStamping."""
    pki = consortium.kz
    fake = TimestampAuthority(
        pki.key("seal"), pki.certificate("seal"), [pki.certificate("issuing")],
        serials=SerialAllocator(tmp_path / "serial"),
    )  # fmt: skip
    validator = CertificateValidator([pki.certificate("root")], source=PkiRevocationSource(pki))
    report = validate_timestamp(fake.stamp(DATA), validator, data=DATA)
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.CHAIN_CONSTRAINTS_FAILURE
    assert "timeStamping" in report.identity.message


def test_refusal_and_garbage_are_input_errors(
    tsa: TimestampAuthority, validator: CertificateValidator
) -> None:
    refusal = tsa.respond(b"\x30\x03\x02\x01\x07")
    with pytest.raises(InputError, match="refusal"):
        validate_timestamp(refusal, validator)
    with pytest.raises(InputError):
        validate_timestamp(b"\x01\x02garbage", validator)


def test_flipped_tsa_signature(tsa: TimestampAuthority, validator: CertificateValidator) -> None:
    token = bytearray(tsa.stamp(DATA))
    token[-5] ^= 0x01  # inside the ECDSA signature value, the last field
    report = validate_timestamp(bytes(token), validator, data=DATA)
    assert report.indication is Indication.TOTAL_FAILED
    assert report.sub_indication is SubIndication.SIG_CRYPTO_FAILURE


def test_openssl_and_we_agree_on_a_reply(
    tsa: TimestampAuthority,
    validator: CertificateValidator,
    consortium: Consortium,
    tmp_path: Path,
) -> None:
    """openssl builds the query and verifies the reply; we accept the same reply."""
    openssl = require_tool("openssl")
    data = tmp_path / "data.bin"
    data.write_bytes(DATA)
    query = tmp_path / "q.tsq"
    run_tool(openssl, "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    reply = tmp_path / "r.tsr"
    reply.write_bytes(tsa.respond(query.read_bytes()))
    root = consortium.pem_file(consortium.kz, "root")
    chain = consortium.pem_file(consortium.kz, "issuing")
    verified = run_tool(
        openssl, "ts", "-verify", "-in", reply, "-queryfile", query,
        "-CAfile", root, "-untrusted", chain,
    )  # fmt: skip
    assert "Verification: OK" in verified.stdout
    report = validate_timestamp(reply.read_bytes(), validator, data=DATA)
    assert report.indication is Indication.TOTAL_PASSED
    other = validate_timestamp(reply.read_bytes(), validator, data=b"other")
    assert other.sub_indication is SubIndication.HASH_FAILURE

"""The in-process TSA: request parsing (strict DER, fuzzed), rejections, tokens, serials."""

from __future__ import annotations

import datetime as dt
import hashlib
import multiprocessing
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, tsp
from asn1crypto import x509 as asn1_x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Consortium
from trust_services import _der
from trust_services.client import TimeStampResp
from trust_services.cms import ID_CT_TST_INFO, build_signed_data
from trust_services.errors import TimestampError
from trust_services.keystore import DIGESTS, FileKeyStore, KeyAlgorithm
from trust_services.pki import OrgPki
from trust_services.tsa import (
    DEFAULT_POLICY,
    FailureInfo,
    Rejection,
    SerialAllocator,
    TimestampAuthority,
    _GenTimeCache,
    build_request,
    parse_request,
)

SHA256 = "2.16.840.1.101.3.4.2.1"
SHA1 = "1.3.14.3.2.26"
MD5 = "1.2.840.113549.2.5"

FAILURE_NAMES = {
    FailureInfo.BAD_ALG: "bad_alg",
    FailureInfo.BAD_REQUEST: "bad_request",
    FailureInfo.BAD_DATA_FORMAT: "bad_data_format",
    FailureInfo.UNACCEPTED_POLICY: "unaccepted_policy",
    FailureInfo.UNACCEPTED_EXTENSION: "unaccepted_extensions",
    FailureInfo.SYSTEM_FAILURE: "system_failure",
}


def make_tsa(pki: OrgPki, tmp_path: Path, **kwargs: Any) -> TimestampAuthority:
    return TimestampAuthority(
        pki.key("tsa"),
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(tmp_path / "serial"),
        **kwargs,
    )


@pytest.fixture
def tsa(consortium: Consortium, tmp_path: Path) -> TimestampAuthority:
    return make_tsa(consortium.kz, tmp_path)


def raw_request(
    *,
    version: int = 1,
    alg: str = SHA256,
    params: bytes | None = None,
    hashed: bytes = b"\x11" * 32,
    policy: str | None = None,
    nonce: int | None = None,
    cert_req: bool | None = None,
    extensions: bytes | None = None,
) -> bytes:
    alg_id = _der.oid(alg) + (params or b"")
    parts = [_der.integer(version), _der.seq(_der.seq(alg_id), _der.octet_string(hashed))]
    if policy is not None:
        parts.append(_der.oid(policy))
    if nonce is not None:
        parts.append(_der.integer(nonce))
    if cert_req is not None:
        parts.append(_der.boolean(cert_req))
    if extensions is not None:
        parts.append(_der.tlv(0xA0, extensions))
    return _der.seq(*parts)


def rejection_of(reply: bytes) -> tuple[int, set[str], list[str]]:
    status = TimeStampResp.load(reply, strict=True)["status"]
    return (
        int(status["status"].contents[0]),
        set(status["fail_info"].native or ()),
        list(status["status_string"].native or ()),
    )


def tst_info_of(reply: bytes) -> tsp.TSTInfo:
    resp = TimeStampResp.load(reply, strict=True)
    assert resp["status"]["status"].native == "granted"
    return resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed


# ------------------------------------------------------------------ rejections
EXTENSION = _der.seq(_der.oid("1.2.3.4"), _der.octet_string(b"x"))


@pytest.mark.parametrize(
    ("request_der", "failure"),
    [
        (b"garbage", FailureInfo.BAD_REQUEST),
        (b"", FailureInfo.BAD_REQUEST),
        (raw_request(version=2), FailureInfo.BAD_REQUEST),
        (raw_request(alg=SHA1, hashed=b"\x00" * 20), FailureInfo.BAD_ALG),
        (raw_request(alg=MD5, hashed=b"\x00" * 16), FailureInfo.BAD_ALG),
        (raw_request(params=_der.integer(5)), FailureInfo.BAD_ALG),
        (raw_request(hashed=b"\x00" * 31), FailureInfo.BAD_DATA_FORMAT),
        (raw_request(policy="1.2.3.4.5"), FailureInfo.UNACCEPTED_POLICY),
        (raw_request(extensions=EXTENSION), FailureInfo.UNACCEPTED_EXTENSION),
        (raw_request(nonce=-5), FailureInfo.BAD_REQUEST),
        (raw_request(nonce=1 << 600), FailureInfo.BAD_REQUEST),
        (raw_request() + b"\x00", FailureInfo.BAD_REQUEST),  # trailing bytes
        (b"\x30\x80" + raw_request()[2:] + b"\x00\x00", FailureInfo.BAD_REQUEST),  # BER
        (
            raw_request(nonce=5).replace(b"\x02\x01\x05", b"\x02\x02\x00\x05"),
            FailureInfo.BAD_REQUEST,
        ),
        (raw_request(extensions=b""), FailureInfo.BAD_REQUEST),
        (b"\x30" + b"\x82\x50\x00" + b"\x00" * 0x5000, FailureInfo.BAD_REQUEST),  # too large
    ],
    ids=[
        "garbage",
        "empty",
        "version-2",
        "sha1",
        "md5",
        "odd-params",
        "short-digest",
        "foreign-policy",
        "extensions",
        "negative-nonce",
        "huge-nonce",
        "trailing-bytes",
        "indefinite-length",
        "non-minimal-integer",
        "empty-extensions",
        "too-large",
    ],
)
def test_rejections_carry_the_failure_bit(
    tsa: TimestampAuthority, request_der: bytes, failure: FailureInfo
) -> None:
    status, bits, texts = rejection_of(tsa.respond(request_der))
    assert status == 2  # rejection
    assert bits == {FAILURE_NAMES[failure]}
    assert texts and texts[0]


def test_null_parameters_and_our_policy_are_accepted(tsa: TimestampAuthority) -> None:
    reply = tsa.respond(raw_request(params=_der.null(), policy=DEFAULT_POLICY, nonce=7))
    info = tst_info_of(reply)
    assert info["policy"].dotted == DEFAULT_POLICY
    assert info["nonce"].native == 7


# ------------------------------------------------------------------ tokens
@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_token_fields(tsa: TimestampAuthority, digest: str) -> None:
    reply = tsa.respond(build_request(b"record", digest, nonce=2**63 + 5))
    info = tst_info_of(reply)
    assert info["version"].native == "v1"
    assert info["policy"].dotted == DEFAULT_POLICY
    assert info["message_imprint"]["hash_algorithm"]["algorithm"].native == digest
    assert (
        info["message_imprint"]["hashed_message"].native == hashlib.new(digest, b"record").digest()
    )
    assert info["nonce"].native == 2**63 + 5
    assert info["accuracy"].native["seconds"] == 1
    assert info["tsa"].name == "directory_name"
    subject = asn1_x509.Name.load(tsa.certificate.subject.public_bytes())
    assert info["tsa"].chosen.native == subject.native
    gen_time = info["gen_time"].native
    assert abs(gen_time - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert gen_time.microsecond % 1000 == 0
    signed = TimeStampResp.load(reply)["time_stamp_token"]["content"]
    assert len(signed["certificates"]) == 2  # certReq: the TSA certificate and the issuing CA


def test_cert_req_false_gives_a_token_without_certificates(tsa: TimestampAuthority) -> None:
    reply = tsa.respond(build_request(b"x", cert_req=False))
    signed = TimeStampResp.load(reply)["time_stamp_token"]["content"]
    assert signed["certificates"].native is None
    assert signed["signer_infos"][0]["sid"].chosen["serial_number"].native == (
        tsa.certificate.serial_number
    )


def test_injected_clock_and_sub_second_accuracy(consortium: Consortium, tmp_path: Path) -> None:
    when = dt.datetime(2031, 5, 6, 7, 8, 9, 120_999, tzinfo=dt.UTC)
    tsa = make_tsa(consortium.uz, tmp_path, clock=lambda: when, accuracy_ms=1500)
    info = tst_info_of(tsa.respond(build_request(b"x")))
    assert info["gen_time"].native == when.replace(microsecond=120_000)
    assert info["accuracy"].native == {"seconds": 1, "millis": 500, "micros": None}


def test_issue_refuses_a_wrong_digest(tsa: TimestampAuthority) -> None:
    with pytest.raises(TimestampError):
        tsa.issue("sha256", b"\x00" * 20)
    with pytest.raises(TimestampError):
        tsa.issue("md5", b"\x00" * 16)


def test_fast_token_matches_the_generic_cms_builder(consortium: Consortium, tmp_path: Path) -> None:
    # RSA PKCS#1 v1.5 signatures are deterministic, so both builders must agree bytewise
    rsa_key = FileKeyStore(tmp_path / "keys", b"pw").generate("tsa", KeyAlgorithm.RSA_3072)
    pki = consortium.kg
    tsa = TimestampAuthority(
        rsa_key,
        pki.certificate("tsa"),
        [pki.certificate("issuing")],
        serials=SerialAllocator(tmp_path / "serial"),
    )
    for cert_req in (True, False):
        tst = tsa.tst_info("sha512", b"\x42" * 64, 123, dt.datetime.now(dt.UTC))
        fast = tsa._token.build(tst, cert_req)
        generic, _ = build_signed_data(
            tsa.template,
            content_type=ID_CT_TST_INFO,
            message_digest=tsa.template.hash(tst),
            econtent=tst,
            include_certificates=cert_req,
        )
        assert fast == generic
        assert cms.ContentInfo.load(fast, strict=True)["content_type"].native == "signed_data"


@given(st.integers(min_value=0, max_value=253_402_300_799_999))  # up to 9999-12-31
def test_generalized_time_cache(millis: int) -> None:
    when = dt.datetime.fromtimestamp(millis // 1000, dt.UTC)
    when = when.replace(microsecond=(millis % 1000) * 1000)
    assert _GenTimeCache().encode(millis) == _der.generalized_time(when)


# ------------------------------------------------------------------ parser vs asn1crypto
def reference_parse(der: bytes) -> tuple[Any, ...]:
    """What asn1crypto reads from a TimeStampReq (raises on what it cannot read)."""
    req = tsp.TimeStampReq.load(der, strict=True)
    imprint = req["message_imprint"]
    return (
        req["version"].native,
        imprint["hash_algorithm"]["algorithm"].dotted,
        imprint["hash_algorithm"]["parameters"].native,
        imprint["hashed_message"].native,
        req["req_policy"].dotted if req["req_policy"].native is not None else None,
        req["nonce"].native,
        bool(req["cert_req"].native),
        req["extensions"].native,
    )


requests = st.builds(
    raw_request,
    version=st.sampled_from([1, 1, 1, 0, 2, -1, 256]),
    alg=st.sampled_from(
        [SHA256, "2.16.840.1.101.3.4.2.2", "2.16.840.1.101.3.4.2.3", SHA1, "1.2.3"]
    ),
    params=st.sampled_from([None, None, _der.null(), _der.integer(0)]),
    hashed=st.binary(min_size=0, max_size=70),
    policy=st.none() | st.sampled_from([DEFAULT_POLICY, "1.2.840.1", "2.999.12345678901234"]),
    nonce=st.none() | st.integers(min_value=-(2**70), max_value=2**600),
    cert_req=st.none() | st.booleans(),
    extensions=st.none() | st.just(EXTENSION),
)


@settings(max_examples=300, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(request_der=requests)
def test_parser_agrees_with_asn1crypto(tsa: TimestampAuthority, request_der: bytes) -> None:
    try:
        ref = reference_parse(request_der)
    except ValueError:  # e.g. INTEGER parameters for SHA-256: we refuse it too
        with pytest.raises(Rejection):
            parse_request(request_der)
        return
    try:
        ours = parse_request(request_der)
    except Rejection as rej:
        assert rej.failure is not FailureInfo.BAD_REQUEST or (
            ref[0] != "v1" or ref[5] is None or ref[5] < 0 or ref[5].bit_length() > 512
        )
        return
    assert ref[0] == "v1"
    assert ref[1] == DIGESTS[ours.digest][0]
    assert ref[2] is None and ref[7] is None
    assert (ref[3], ref[4], ref[5], ref[6]) == (
        ours.hashed_message,
        ours.policy,
        ours.nonce,
        ours.cert_req,
    )


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, where, value in edits:
        if not out:
            out.append(value)
            continue
        pos = where % len(out)
        if kind == 0:
            out[pos] = value
        elif kind == 1:
            out.insert(pos, value)
        else:
            del out[pos]
    return bytes(out)


@settings(max_examples=400, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    base=requests,
    edits=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 10_000), st.integers(0, 255)), max_size=4
    ),
)
def test_mutated_requests_never_raise(
    tsa: TimestampAuthority, base: bytes, edits: list[tuple[int, int, int]]
) -> None:
    request_der = mutate(base, edits)
    reply = tsa.respond(request_der)
    resp = TimeStampResp.load(reply, strict=True)
    status = resp["status"]["status"].native
    if status == "granted":
        # we accepted it: asn1crypto must read the same request
        ours = parse_request(request_der)
        ref = reference_parse(request_der)
        assert (ref[3], ref[4], ref[5], ref[6]) == (
            ours.hashed_message,
            ours.policy,
            ours.nonce,
            ours.cert_req,
        )
        assert (
            resp["time_stamp_token"]["content"]["encap_content_info"]["content"]
            .parsed["message_imprint"]["hashed_message"]
            .native
            == ours.hashed_message
        )
    else:
        assert status == "rejection"


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_random_bytes_are_rejected_cleanly(tsa: TimestampAuthority, data: bytes) -> None:
    resp = TimeStampResp.load(tsa.respond(data), strict=True)
    assert resp["status"]["status"].native in ("rejection", "granted")


# ------------------------------------------------------------------ serials
def serials_of(reply: bytes) -> int:
    return int(tst_info_of(reply)["serial_number"].native)


def test_serials_increase_and_survive_a_restart(consortium: Consortium, tmp_path: Path) -> None:
    first = make_tsa(consortium.kz, tmp_path)
    request = build_request(b"x")
    seen = [serials_of(first.respond(request)) for _ in range(20)]
    assert seen == sorted(seen) and len(set(seen)) == 20
    restarted = make_tsa(consortium.kz, tmp_path)  # same serial file
    after = [serials_of(restarted.respond(request)) for _ in range(5)]
    assert min(after) > max(seen)
    assert after == sorted(after)


def _draw(path: str, count: int) -> list[int]:
    allocator = SerialAllocator(Path(path), block=16)
    return [allocator.next() for _ in range(count)]


def test_serials_unique_across_processes(tmp_path: Path) -> None:
    path = str(tmp_path / "serial")
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.starmap(_draw, [(path, 2000), (path, 2000)])
    merged = results[0] + results[1]
    assert len(merged) == len(set(merged)) == 4000
    assert all(r == sorted(r) for r in results)

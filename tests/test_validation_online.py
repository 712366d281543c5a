"""Online revocation: HttpRevocationSource against the live trust-services server."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

from tests.conftest import PASSPHRASE
from tests.live_server import OnlinePkiFactory, make_online_pki, trust_server  # noqa: F401
from trust_services.cades import CadesSigner, Level
from trust_services.fetch import CachingRevocationSource, HttpRevocationSource, RevocationCache
from trust_services.pki import OrgPki, init_pki
from trust_services.revocation import PkiRevocationSource
from trust_services.tsa import SerialAllocator, TimestampAuthority
from trust_services.validation import (
    CertificateValidator,
    Indication,
    SubIndication,
    validate_cades,
)

DATA = b"AEO status KZ-AEO-2025-000123"


def test_online_ocsp_and_crl_pass_and_are_cached(
    make_online_pki: OnlinePkiFactory,  # noqa: F811
    tmp_path: Path,
) -> None:
    pki = make_online_pki()
    tsa = TimestampAuthority(
        pki.key("tsa"), pki.certificate("tsa"), [pki.certificate("issuing")],
        serials=SerialAllocator(tmp_path / "serial"),
    )  # fmt: skip
    signer = CadesSigner.for_org(pki, timestamper=tsa)
    source = HttpRevocationSource(timeout=10)
    validator = CertificateValidator([pki.certificate("root")], source=source)
    report = validate_cades(signer.sign(DATA, Level.B_T), DATA, validator)
    assert report.indication is Indication.TOTAL_PASSED, report.to_json()
    assert report.revocation is not None and report.revocation.source == "ocsp"
    assert any("(crl," in n for n in report.status.notes)  # the issuing CA, by the root CRL
    fetched = source.requests
    assert fetched >= 3  # seal OCSP, TSA OCSP, root CRL
    for i in range(5):
        data = DATA + bytes([i])
        again = validate_cades(signer.sign(data, Level.B_T), data, validator)
        assert again.indication is Indication.TOTAL_PASSED
    assert source.requests == fetched  # revocation data cached until nextUpdate
    source.close()


def test_online_revocation_is_seen(
    make_online_pki: OnlinePkiFactory,  # noqa: F811
) -> None:
    pki = make_online_pki()
    pki.revoke(pki.certificate("seal").serial_number, "key-compromise")
    signer = CadesSigner.for_org(pki)
    source = HttpRevocationSource(timeout=10)
    validator = CertificateValidator([pki.certificate("root")], source=source)
    report = validate_cades(signer.sign(DATA, Level.B_B), DATA, validator)
    assert report.indication is Indication.TOTAL_FAILED, report.to_json()
    assert report.sub_indication is SubIndication.REVOKED
    assert report.revocation is not None and report.revocation.source == "ocsp"
    source.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_unreachable_responder_is_try_later(tmp_path: Path) -> None:
    pki = init_pki(
        tmp_path, "KZ-CUSTOMS", country="KZ", name="KZ", passphrase=PASSPHRASE,
        base_url=f"http://127.0.0.1:{_closed_port()}/orgs/KZ-CUSTOMS",
    )  # fmt: skip
    source = HttpRevocationSource(timeout=2)
    validator = CertificateValidator([pki.certificate("root")], source=source)
    report = validate_cades(CadesSigner.for_org(pki).sign(DATA), DATA, validator)
    assert report.indication is Indication.INDETERMINATE
    assert report.sub_indication is SubIndication.TRY_LATER
    assert source.ocsp(pki.certificate("seal"), pki.certificate("issuing")) is None
    source.close()


def test_limits_and_schemes(
    make_online_pki: OnlinePkiFactory,  # noqa: F811
) -> None:
    pki = make_online_pki()
    url = pki.config.endpoints.crl("issuing")
    assert HttpRevocationSource().crl(url) is not None
    assert HttpRevocationSource(max_crl_bytes=16).crl(url) is None  # over the size limit
    assert HttpRevocationSource().crl("ftp://127.0.0.1/x.crl") is None
    assert HttpRevocationSource().crl(url.replace("/crl/", "/nothing/")) is None


def test_cache_honours_next_update() -> None:
    now = [dt.datetime(2030, 1, 1, tzinfo=dt.UTC)]
    cache = RevocationCache(clock=lambda: now[0])
    key = ("crl", "http://x/crl", 0)
    cache.put(key, b"der", now[0] + dt.timedelta(hours=1))
    assert cache.get(key) == b"der"
    now[0] += dt.timedelta(minutes=59)
    assert cache.get(key) == b"der"
    now[0] += dt.timedelta(minutes=2)
    assert cache.get(key) is None
    cache.put(key, b"stale", now[0] - dt.timedelta(seconds=1))  # already past nextUpdate
    assert cache.get(key) is None


def test_caching_source_wraps_any_source(fresh_pki: OrgPki) -> None:
    inner = PkiRevocationSource(fresh_pki)
    cached = CachingRevocationSource(inner)
    seal, issuing = fresh_pki.certificate("seal"), fresh_pki.certificate("issuing")
    first = cached.ocsp(seal, issuing)
    assert first is not None
    assert cached.ocsp(seal, issuing) is first  # not re-signed
    assert inner.ocsp(seal, issuing) != first  # the inner source signs anew each time


def test_ocsp_nonce_must_come_back_unchanged(fresh_pki: OrgPki) -> None:
    from trust_services.fetch import _nonce_ok
    from trust_services.ocsp import OcspResponder, build_ocsp_request

    responder = OcspResponder(fresh_pki)
    seal, issuer = fresh_pki.certificate("seal"), fresh_pki.certificate("issuing")
    echoed = responder.respond(build_ocsp_request(seal, issuer, nonce=b"n" * 16))
    assert _nonce_ok(echoed, b"n" * 16)
    assert not _nonce_ok(echoed, b"m" * 16)  # a replayed answer to another request
    assert _nonce_ok(responder.response_for(seal), b"n" * 16)  # no nonce: allowed (RFC 8954)

"""OCSP (RFC 6960) and CRLs over HTTP, checked with `openssl ocsp` and `openssl crl`."""

from __future__ import annotations

import base64
import itertools
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from tests.conftest import Consortium
from tests.live_server import LiveServer, trust_server  # noqa: F401 (fixture)
from tests.tools import require_tool, run_tool
from trust_services.ocsp import OcspResponder, build_ocsp_request
from trust_services.pki import OrgPki

OCSP_REQ = {"content-type": "application/ocsp-request"}
_mounts = itertools.count(1)


def pem(tmp_path: Path, pki: OrgPki, name: str) -> Path:
    path = tmp_path / f"{pki.org}-{name}.pem"
    path.write_bytes(pki.pem(name))
    return path


def openssl_ocsp(tmp_path: Path, pki: OrgPki, url: str, cert: str = "seal") -> str:
    openssl = require_tool("openssl")
    result = run_tool(
        openssl,
        "ocsp",
        "-issuer",
        pem(tmp_path, pki, "issuing"),
        "-cert",
        pem(tmp_path, pki, cert),
        "-url",
        url,
        "-CAfile",
        pem(tmp_path, pki, "root"),
        "-verify_other",
        pem(tmp_path, pki, "issuing"),
        check=False,
    )
    return result.stdout + result.stderr


@pytest.fixture
def hosted_fresh_pki(fresh_pki: OrgPki, trust_server: LiveServer) -> tuple[OrgPki, str]:  # noqa: F811
    """``fresh_pki`` hosted by the live server; returns it and its mount name."""
    mount = trust_server.add(fresh_pki, mount=f"FRESH-{next(_mounts)}")
    return fresh_pki, mount


def test_openssl_ocsp_good_then_revoked(
    hosted_fresh_pki: tuple[OrgPki, str],
    trust_server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    pki, mount = hosted_fresh_pki
    url = trust_server.url(mount, "/ocsp")
    out = openssl_ocsp(tmp_path, pki, url)
    assert "Response verify OK" in out
    assert f"{pki.org}-seal.pem: good" in out
    pki.revoke(pki.certificate("seal").serial_number, "key-compromise")
    out = openssl_ocsp(tmp_path, pki, url)
    assert "Response verify OK" in out
    assert f"{pki.org}-seal.pem: revoked" in out
    assert "Reason: keyCompromise" in out


def test_openssl_ocsp_for_another_ca_is_unauthorized(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    tmp_path: Path,
) -> None:
    # ask KZ's responder about a UZ certificate
    out = openssl_ocsp(tmp_path, consortium.uz, trust_server.url(consortium.kz, "/ocsp"))
    assert "unauthorized" in out


def test_junk_is_malformed_request_with_http_200(
    trust_server: LiveServer,  # noqa: F811
) -> None:
    response = httpx.post(
        trust_server.url("KZ-CUSTOMS", "/ocsp"), content=b"\x30\x03junk", headers=OCSP_REQ
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/ocsp-response"
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST


def test_get_request_in_the_url(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
) -> None:
    pki = consortium.kg
    request = build_ocsp_request(
        pki.certificate("seal"), pki.certificate("issuing"), nonce=b"n" * 16
    )
    encoded = quote(base64.b64encode(request).decode(), safe="")
    response = httpx.get(trust_server.url(pki, f"/ocsp/{encoded}"))
    assert response.status_code == 200
    parsed = ocsp.load_der_ocsp_response(response.content)
    assert parsed.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert parsed.serial_number == pki.certificate("seal").serial_number
    nonce = parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    assert nonce == b"n" * 16
    # the responder's own signature, with its delegated certificate
    responder = parsed.certificates[0]
    assert responder == pki.certificate("ocsp")


def test_response_for_in_process(consortium: Consortium) -> None:
    responder = OcspResponder(consortium.uz)
    good = ocsp.load_der_ocsp_response(responder.response_for(consortium.uz.certificate("tsa")))
    assert good.certificate_status is ocsp.OCSPCertStatus.GOOD
    other = ocsp.load_der_ocsp_response(responder.response_for(consortium.kz.certificate("tsa")))
    assert other.response_status is ocsp.OCSPResponseStatus.UNAUTHORIZED


# ------------------------------------------------------------------ CRLs
def openssl_crl(tmp_path: Path, pki: OrgPki, der: bytes) -> str:
    openssl = require_tool("openssl")
    crl = tmp_path / "issuing.crl"
    crl.write_bytes(der)
    chain = tmp_path / "chain.pem"
    chain.write_bytes(pki.pem("root") + pki.pem("issuing"))
    result = run_tool(
        openssl, "crl", "-inform", "DER", "-in", crl, "-CAfile", chain, "-verify", "-noout", "-text"
    )
    return result.stdout + result.stderr


def test_crl_download_verifies_and_lists_revocations(
    hosted_fresh_pki: tuple[OrgPki, str],
    trust_server: LiveServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    pki, mount = hosted_fresh_pki
    url = trust_server.url(mount, "/crl/issuing.crl")
    first = httpx.get(url)
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/pkix-crl"
    out = openssl_crl(tmp_path, pki, first.content)
    assert "verify OK" in out
    assert "No Revoked Certificates" in out
    serial = pki.certificate("seal").serial_number
    pki.revoke(serial, "key-compromise")
    der = httpx.get(url).content
    out = openssl_crl(tmp_path, pki, der)
    assert "verify OK" in out
    entry = x509.load_der_x509_crl(der).get_revoked_certificate_by_serial_number(serial)
    assert entry is not None
    assert "Key Compromise" in out
    root_crl = httpx.get(trust_server.url(mount, "/crl/root.crl"))
    assert x509.load_der_x509_crl(root_crl.content).issuer == pki.certificate("root").subject

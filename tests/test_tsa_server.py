"""The trust-services HTTP service: routes, RFC 9457 errors, fuzzing, CRLs, workers."""

from __future__ import annotations

import datetime as dt
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import PASSPHRASE, Consortium
from tests.live_server import LiveServer, make_online_pki, trust_server  # noqa: F401
from trust_services.client import TimeStampResp
from trust_services.pki import OrgPki
from trust_services.tsa import build_request

TSQ = {"content-type": "application/timestamp-query"}
OnlinePki = Callable[..., OrgPki]


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as c:
        yield c


def problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    return dict(body)


def granted(reply: bytes) -> Any:
    resp = TimeStampResp.load(reply, strict=True)
    assert resp["status"]["status"].native == "granted"
    return resp


def test_health_lists_the_hosted_orgs(trust_server: LiveServer, client: httpx.Client) -> None:  # noqa: F811
    response = client.get(f"{trust_server.base_url}/health")
    assert response.status_code == 200
    assert {"KZ-CUSTOMS", "UZ-CUSTOMS", "KG-CUSTOMS"} <= set(response.json()["orgs"])


def test_tsa_per_org(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    client: httpx.Client,
) -> None:
    for pki in (consortium.kz, consortium.uz):
        reply = client.post(
            trust_server.url(pki, "/tsa"), content=build_request(b"x", nonce=99), headers=TSQ
        )
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "application/timestamp-reply"
        token = granted(reply.content)["time_stamp_token"]["content"]
        tst = token["encap_content_info"]["content"].parsed
        assert tst["nonce"].native == 99
        sid = token["signer_infos"][0]["sid"].chosen
        assert sid["serial_number"].native == pki.certificate("tsa").serial_number


def test_rejections_are_http_200(trust_server: LiveServer, client: httpx.Client) -> None:  # noqa: F811
    reply = client.post(trust_server.url("KZ-CUSTOMS", "/tsa"), content=b"junk", headers=TSQ)
    assert reply.status_code == 200
    status = TimeStampResp.load(reply.content, strict=True)["status"]
    assert status["status"].native == "rejection"
    assert status["fail_info"].native == {"bad_request"}


def test_certificates_are_served(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    client: httpx.Client,
) -> None:
    for name in ("root", "issuing", "seal", "tsa", "ocsp"):
        response = client.get(trust_server.url("UZ-CUSTOMS", f"/certs/{name}.cer"))
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/pkix-cert"
        assert x509.load_der_x509_certificate(response.content) == consortium.uz.certificate(name)


def test_http_errors_are_problem_json(trust_server: LiveServer, client: httpx.Client) -> None:  # noqa: F811
    tsa = trust_server.url("KZ-CUSTOMS", "/tsa")
    problem(client.get(f"{trust_server.base_url}/nope"), 404)
    problem(client.get(trust_server.url("XX-NOWHERE", "/tsa")), 404)
    problem(client.get(trust_server.url("KZ-CUSTOMS", "/certs/secret.cer")), 404)
    # with several orgs hosted there are no root routes
    problem(client.post(f"{trust_server.base_url}/tsa", content=b"x", headers=TSQ), 404)
    wrong_method = client.get(tsa)
    problem(wrong_method, 405)
    assert wrong_method.headers["allow"] == "POST"
    assert client.post(trust_server.url("KZ-CUSTOMS", "/crl/root.crl")).headers["allow"] == (
        "GET, HEAD"
    )
    problem(client.post(tsa, content=build_request(b"x")), 415)  # no content type
    problem(
        client.post(tsa, content=build_request(b"x"), headers={"content-type": "text/plain"}), 415
    )
    problem(client.post(tsa, content=b"", headers=TSQ), 400)
    problem(client.post(tsa, content=b"\x30" * 70_000, headers=TSQ), 413)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the streamed length counts
        for _ in range(20):
            yield b"\x00" * 8192

    problem(client.post(tsa, content=chunks(), headers=TSQ), 413)
    problem(client.get(trust_server.url("KZ-CUSTOMS", "/ocsp/%%%not-base64")), 400)
    upgrade = {
        "connection": "Upgrade",
        "upgrade": "websocket",
        "sec-websocket-version": "13",
        "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    assert client.get(f"{trust_server.base_url}/health", headers=upgrade).status_code == 200


def test_single_org_is_also_served_at_the_root(consortium: Consortium) -> None:
    with LiveServer([consortium.kg]) as server, httpx.Client() as c:
        reply = c.post(f"{server.base_url}/tsa", content=build_request(b"x"), headers=TSQ)
        granted(reply.content)
        assert c.get(f"{server.base_url}/crl/issuing.crl").status_code == 200
        assert c.get(f"{server.base_url}/orgs/KG-CUSTOMS/certs/root.cer").status_code == 200


methods = st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS"])
segments = st.sampled_from(
    ["orgs", "KZ-CUSTOMS", "tsa", "ocsp", "crl", "issuing.crl", "certs", "root.cer", "health", ""]
)
paths = st.lists(segments | st.text(max_size=12), max_size=5).map(
    lambda parts: "/" + "/".join(quote(p, safe="") for p in parts)
)
content_types = st.sampled_from(
    ["application/timestamp-query", "application/ocsp-request", "text/plain", ""]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(method=methods, path=paths, content_type=content_types, body=st.binary(max_size=400))
def test_no_client_input_gives_a_5xx(
    trust_server: LiveServer,  # noqa: F811
    client: httpx.Client,
    method: str,
    path: str,
    content_type: str,
    body: bytes,
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = client.request(
        method, trust_server.base_url + path, content=body or None, headers=headers
    )
    assert response.status_code < 500, (method, path, response.text)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(body=st.binary(min_size=1, max_size=300))
def test_fuzzed_tsa_and_ocsp_bodies(
    trust_server: LiveServer,  # noqa: F811
    client: httpx.Client,
    body: bytes,
) -> None:
    tsa = client.post(trust_server.url("KG-CUSTOMS", "/tsa"), content=body, headers=TSQ)
    assert tsa.status_code == 200
    TimeStampResp.load(tsa.content, strict=True)
    ocsp = client.post(
        trust_server.url("KG-CUSTOMS", "/ocsp"),
        content=body,
        headers={"content-type": "application/ocsp-request"},
    )
    assert ocsp.status_code == 200
    assert ocsp.headers["content-type"] == "application/ocsp-response"


def crl_of(client: httpx.Client, url: str) -> x509.CertificateRevocationList:
    response = client.get(url)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pkix-crl"
    return x509.load_der_x509_crl(response.content)


def test_expired_crl_is_reissued(
    make_online_pki: OnlinePki,  # noqa: F811
    trust_server: LiveServer,  # noqa: F811
    client: httpx.Client,
) -> None:
    pki = make_online_pki()
    url = pki.config.endpoints.crl("issuing")
    assert url.startswith(trust_server.base_url)
    pki.write_crl("issuing", now=dt.datetime.now(dt.UTC) - dt.timedelta(days=30))
    crl = crl_of(client, url)
    assert crl.next_update_utc is not None
    assert crl.next_update_utc > dt.datetime.now(dt.UTC)
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    assert number == 3  # the first, the back-dated one, the re-issue
    again = crl_of(client, url)  # cached, not re-issued again
    assert again.public_bytes(Encoding.DER) == crl.public_bytes(Encoding.DER)


def test_crl_after_revoke_is_picked_up(
    make_online_pki: OnlinePki,  # noqa: F811
    client: httpx.Client,
) -> None:
    pki = make_online_pki("UZ-CUSTOMS", "UZ")
    url = pki.config.endpoints.crl("issuing")
    seal_serial = pki.certificate("seal").serial_number
    assert crl_of(client, url).get_revoked_certificate_by_serial_number(seal_serial) is None
    # what `caravan pki revoke` does, from another OrgPki object (another process)
    OrgPki(pki.root_dir, pki.org).unlock(PASSPHRASE).revoke(seal_serial, "key-compromise")
    revoked = crl_of(client, url).get_revoked_certificate_by_serial_number(seal_serial)
    assert revoked is not None


# ------------------------------------------------------------------ serve() with workers
@pytest.mark.parametrize(
    ("workers", "stop_signal"), [(2, signal.SIGINT), (1, signal.SIGTERM)], ids=["2-int", "1-term"]
)
def test_serve_and_a_clean_stop(
    consortium: Consortium, tmp_path: Path, workers: int, stop_signal: signal.Signals
) -> None:
    passphrase = tmp_path / "pw"
    passphrase.write_bytes(PASSPHRASE)
    command = [
        sys.executable,
        "-m",
        "cli.main",
        "tsa",
        "serve",
        "--dir",
        str(consortium.root),
        "--org",
        "KG-CUSTOMS",
        "--port",
        "0",
        "--workers",
        str(workers),
        "--passphrase-file",
        str(passphrase),
    ]
    env = {**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"}
    env.pop("CARAVAN_PASSPHRASE", None)
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"http://127\.0\.0\.1:(\d+)", first)
        assert match, first + (proc.stderr.read() if proc.stderr else "")
        base = f"http://127.0.0.1:{match.group(1)}"
        serials = []
        # fresh connections, so that both workers get to answer
        for _ in range(40):
            reply = httpx.post(f"{base}/tsa", content=build_request(b"w"), headers=TSQ, timeout=30)
            tst = granted(reply.content)["time_stamp_token"]["content"]["encap_content_info"]
            serials.append(tst["content"].parsed["serial_number"].native)
        assert len(set(serials)) == len(serials)
        proc.send_signal(stop_signal)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    # the workers are gone with the parent: nothing listens any more
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{base}/health", timeout=5)

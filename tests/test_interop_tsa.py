"""Our TSA over HTTP checked by independent implementations: OpenSSL and rfc3161-client.

Also the client side: ``caravan timestamp`` and :class:`HttpTimestamper` against the live
server, and a TSA whose key lives on a PKCS#11 token (SoftHSM2).
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import httpx
import pytest
from rfc3161_client import (
    HashAlgorithm,
    TimestampRequestBuilder,
    VerifierBuilder,
    decode_timestamp_response,
)
from typer.testing import CliRunner

from cli.main import app
from tests.conftest import Consortium
from tests.live_server import LiveServer, trust_server  # noqa: F401 (fixture)
from tests.softhsm import SoftHsmToken, softhsm_config, softhsm_token  # noqa: F401
from tests.test_tsa import SHA1, raw_request, rejection_of
from tests.tools import require_tool, run_tool
from trust_services.client import HttpTimestamper, check_response, request_timestamp
from trust_services.errors import TimestampError
from trust_services.pki import HsmConfig, init_pki
from trust_services.server import TrustServicesApp
from trust_services.tsa import DEFAULT_POLICY

TSQ = {"content-type": "application/timestamp-query"}
runner = CliRunner()


def post(url: str, query: bytes) -> bytes:
    response = httpx.post(url, content=query, headers=TSQ, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/timestamp-reply"
    return response.content


@pytest.mark.parametrize("digest", ["sha256", "sha384", "sha512"])
def test_openssl_query_and_verify(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    tmp_path: Path,
    digest: str,
) -> None:
    openssl = require_tool("openssl")
    data = tmp_path / "record.json"
    data.write_bytes(b'{"aeo_id":"KZ-AEO-2025-000123","status":"valid"}')
    query = tmp_path / "q.tsq"
    run_tool(openssl, "ts", "-query", "-data", data, f"-{digest}", "-cert", "-out", query)
    reply = tmp_path / "r.tsr"
    reply.write_bytes(post(trust_server.url(consortium.kz, "/tsa"), query.read_bytes()))
    root = consortium.pem_file(consortium.kz, "root")
    issuing = consortium.pem_file(consortium.kz, "issuing")
    checks: list[list[str | Path]] = [["-queryfile", query], ["-data", data]]
    for what in checks:  # the imprint and the nonce; the data itself
        result = run_tool(
            openssl, "ts", "-verify", "-in", reply, *what, "-CAfile", root, "-untrusted", issuing
        )
        assert "Verification: OK" in result.stdout
    text = run_tool(openssl, "ts", "-reply", "-in", reply, "-text").stdout
    assert "Status: Granted." in text
    assert f"Policy OID: {DEFAULT_POLICY}" in text
    assert f"Hash Algorithm: {digest}" in text
    assert "Accuracy: 0x01 seconds" in text
    assert "Nonce: 0x" in text
    assert "TSA: DirName:" in text and "TSA" in text


def test_openssl_rejects_a_token_of_another_root(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    tmp_path: Path,
) -> None:
    openssl = require_tool("openssl")
    data = tmp_path / "data"
    data.write_bytes(b"x")
    query = tmp_path / "q.tsq"
    run_tool(openssl, "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    reply = tmp_path / "r.tsr"
    reply.write_bytes(post(trust_server.url(consortium.uz, "/tsa"), query.read_bytes()))
    result = run_tool(
        openssl,
        "ts",
        "-verify",
        "-in",
        reply,
        "-queryfile",
        query,
        "-CAfile",
        consortium.pem_file(consortium.kz, "root"),  # not UZ's root
        "-untrusted",
        consortium.pem_file(consortium.uz, "issuing"),
        check=False,
    )
    assert result.returncode != 0


@pytest.mark.parametrize("algorithm", [HashAlgorithm.SHA256, HashAlgorithm.SHA512])
def test_rfc3161_client_verifies_our_token(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    algorithm: HashAlgorithm,
) -> None:
    message = b"consignment event batch 42"
    request = TimestampRequestBuilder().data(message).hash_algorithm(algorithm).build()
    reply = post(trust_server.url(consortium.kg, "/tsa"), request.as_bytes())
    response = decode_timestamp_response(reply)
    root = consortium.kg.certificate("root")
    issuing = consortium.kg.certificate("issuing")
    verifier = (
        VerifierBuilder.from_request(request)
        .add_root_certificate(root)
        .add_intermediate_certificate(issuing)
        .build()
    )
    verifier.verify_message(response, message)
    assert response.tst_info.nonce == request.nonce
    assert response.tst_info.policy.dotted_string == DEFAULT_POLICY
    with pytest.raises(Exception, match=r"(?i)imprint|message|hash"):
        verifier.verify_message(response, b"another message")


def test_rejection_statuses_over_http(
    trust_server: LiveServer,  # noqa: F811
) -> None:
    # SHA-1 imprint: rejected with badAlg, and an HTTP 200
    reply = post(trust_server.url("KZ-CUSTOMS", "/tsa"), raw_request(alg=SHA1, hashed=b"\0" * 20))
    status, bits, _ = rejection_of(reply)
    assert (status, bits) == (2, {"bad_alg"})
    for query, bit in (
        (raw_request(hashed=b"\0" * 20), "bad_data_format"),
        (raw_request(policy="1.3.6.1.4.1.99999.1"), "unaccepted_policy"),
        (raw_request(extensions=b"\x30\x06\x06\x01\x2a\x04\x01\x00"), "unaccepted_extensions"),
        (b"\xde\xad\xbe\xef", "bad_request"),
    ):
        assert rejection_of(post(trust_server.url("KZ-CUSTOMS", "/tsa"), query))[1] == {bit}


# ------------------------------------------------------------------ our client
def test_http_timestamper_issues_checked_tokens(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
) -> None:
    digest = hashlib.sha384(b"record").digest()
    with HttpTimestamper(trust_server.url(consortium.uz, "/tsa")) as tsa:
        reply, token, info = tsa.request("sha384", digest, nonce=12345)
        assert info.nonce == 12345 and info.hashed_message == digest
        assert info.policy == DEFAULT_POLICY and info.digest == "sha384"
        assert info.tsa_name and "TSA" in info.tsa_name
        assert token in reply
        second = tsa.issue("sha384", digest)
        assert second != token
    # a reply that answers another request is refused
    with pytest.raises(TimestampError, match="nonce"):
        check_response(reply, "sha384", digest, 999)
    with pytest.raises(TimestampError, match="imprint"):
        check_response(reply, "sha384", hashlib.sha384(b"other").digest(), 12345)


def test_http_timestamper_reports_rejections_and_http_errors(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
) -> None:
    tsa_app = TrustServicesApp([consortium.kz]).services("KZ-CUSTOMS").tsa
    rejection = tsa_app.respond(b"not a request")
    with pytest.raises(TimestampError, match=r"refused.*bad_request.*malformed TimeStampReq"):
        check_response(rejection, "sha256", b"\0" * 32, None)
    with pytest.raises(TimestampError, match="HTTP 405"):
        HttpTimestamper(trust_server.url(consortium.kz, "/crl/root.crl")).issue(
            "sha256", b"\0" * 32
        )
    with pytest.raises(TimestampError, match="not a sha256 digest"):
        HttpTimestamper(trust_server.url(consortium.kz, "/tsa")).issue("sha256", b"\0" * 20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_unreachable_tsa_is_one_line() -> None:
    url = f"http://127.0.0.1:{free_port()}/tsa"
    with pytest.raises(TimestampError, match=r"^cannot reach TSA at http://127\.0\.0\.1:\d+/tsa: "):
        request_timestamp(b"x", url)


# ------------------------------------------------------------------ the CLI
def test_cli_timestamp_writes_a_reply_openssl_verifies(
    trust_server: LiveServer,  # noqa: F811
    consortium: Consortium,
    tmp_path: Path,
) -> None:
    openssl = require_tool("openssl")
    data = tmp_path / "declaration.pdf"
    data.write_bytes(b"%PDF-1.7 not really" * 100)
    out = tmp_path / "declaration.tsr"
    result = runner.invoke(
        app,
        [
            "timestamp",
            str(data),
            "--tsa",
            trust_server.url(consortium.kg, "/tsa"),
            "-o",
            str(out),
            "--digest",
            "sha512",
        ],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "serial:" in result.stdout and "genTime:" in result.stdout
    assert DEFAULT_POLICY in result.stdout and "Customs Service of the Kyrgyz Republic" in (
        result.stdout
    )
    verified = run_tool(
        openssl,
        "ts",
        "-verify",
        "-in",
        out,
        "-data",
        data,
        "-CAfile",
        consortium.pem_file(consortium.kg, "root"),
        "-untrusted",
        consortium.pem_file(consortium.kg, "issuing"),
    )
    assert "Verification: OK" in verified.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tsa", "http://127.0.0.1:{port}/tsa"], "cannot reach TSA at"),
        (["--tsa", "ftp://example/tsa"], "not an http(s) TSA URL"),
        (["--tsa", "http://127.0.0.1:{port}/tsa", "--digest", "md5"], "unsupported digest"),
    ],
)
def test_cli_timestamp_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    data = tmp_path / "f"
    data.write_bytes(b"x")
    port = free_port()
    result = runner.invoke(
        app,
        [
            "timestamp",
            str(data),
            "-o",
            str(tmp_path / "f.tsr"),
            *[a.format(port=port) for a in args],
        ],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 3
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert not (tmp_path / "f.tsr").exists()


# ------------------------------------------------------------------ PKCS#11
def test_tsa_key_on_a_pkcs11_token(
    softhsm_token: SoftHsmToken,  # noqa: F811
    tmp_path: Path,
) -> None:
    openssl = require_tool("openssl")
    module, label, pin = softhsm_token
    pki = init_pki(
        tmp_path,
        "TJ-CUSTOMS",
        country="TJ",
        name="Customs Service of Tajikistan",
        passphrase=b"pw",
        hsm=HsmConfig(module, label),
        hsm_pin=pin,
    )
    assert pki.key("tsa").in_hsm
    data = tmp_path / "data"
    data.write_bytes(b"sealed on the token")
    query = tmp_path / "q.tsq"
    run_tool(openssl, "ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    with LiveServer([pki]) as server:
        reply = tmp_path / "r.tsr"
        reply.write_bytes(post(f"{server.base_url}/tsa", query.read_bytes()))
    (tmp_path / "root.pem").write_bytes(pki.pem("root"))
    (tmp_path / "issuing.pem").write_bytes(pki.pem("issuing"))
    result = run_tool(
        openssl,
        "ts",
        "-verify",
        "-in",
        reply,
        "-queryfile",
        query,
        "-CAfile",
        tmp_path / "root.pem",
        "-untrusted",
        tmp_path / "issuing.pem",
    )
    assert "Verification: OK" in result.stdout

"""RFC 9421 request signatures with real member certificates, over real HTTP.

The node side trusts only the KZ root (as the ledger's trust list would grant it); the
client signs with key-store keys through ``SignedRequestAuth``.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import Depends, FastAPI
from http_message_signatures import HTTPMessageSigner, algorithms

from api.httpsig import (
    CLIENT_CERT,
    MAX_SKEW_S,
    Caller,
    ReplayCache,
    ReplayCacheFull,
    SignedRequestAuth,
    TrustCheck,
    Unauthenticated,
    caller_from,
    certificate_keyid,
    optional_caller,
    signed_caller,
)
from api.problems import PROBLEM_MEDIA_TYPE, install_problem_handlers
from chaincode.seal import verify_chain
from node.proposal import KeySigner
from tests.api.conftest import serve
from tests.node.conftest import Signers, member_signer
from trust_services.keystore import KeyAlgorithm
from trust_services.pki import OrgPki


def kz_trust(root: x509.Certificate) -> TrustCheck:
    """KZ-CUSTOMS with its root as the one granted anchor; chaincode.seal builds the path."""

    def trust(certificate: x509.Certificate, chain: list[x509.Certificate]) -> Caller:
        verify_chain(
            certificate, chain, [root], time.time_ns() // 1000, "caller", owner="KZ-CUSTOMS"
        )
        return caller_from("KZ-CUSTOMS", certificate)

    return trust


def describe(caller: Caller | None) -> dict[str, Any] | None:
    if caller is None:
        return None
    return {"msp_id": caller.msp_id, "role": caller.role, "attrs": dict(caller.attrs)}


def make_app(trust: TrustCheck, replays: ReplayCache | None = None) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    # Depends as the default: the annotations are strings (__future__) resolved globally
    signed = Depends(signed_caller(trust, replays=replays))
    maybe = Depends(optional_caller(trust, replays=replays))

    @app.api_route("/v1/whoami", methods=["GET", "DELETE"])
    def whoami(caller: Caller = signed) -> dict[str, Any] | None:
        return describe(caller)

    @app.post("/v1/orgs/{org}/seal")
    def seal(org: str, record: dict[str, Any], caller: Caller = signed) -> dict[str, Any]:
        return {"org": org, "record": record, "caller": describe(caller)}

    @app.get("/v1/aeo/{aeo_id}")
    def aeo(aeo_id: str, caller: Caller | None = maybe) -> dict[str, Any]:
        return {"aeo": aeo_id, "confidential": caller is not None, "caller": describe(caller)}

    return app


@pytest.fixture(scope="module")
def base_url(signers: Signers) -> Iterator[str]:
    root = signers.pkis["KZ"].certificate("root")
    with serve(make_app(kz_trust(root))) as base:
        yield base


def client(base_url: str, signer: KeySigner | None = None, **auth: Any) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, auth=None if signer is None else SignedRequestAuth(signer, **auth)
    )


def refused(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body = response.json()
    assert body["code"] == code, body
    detail: str = body["detail"]
    if status == 401:
        assert "RFC 9421" in detail and "Client-Cert" in detail  # how to sign it right
        assert '"client-cert"' in response.headers["accept-signature"]
    return detail


# ------------------------------------------------------------------------ accepted
def test_signed_get_names_the_caller(base_url: str, signers: Signers) -> None:
    with client(base_url, signers["kz-officer"]) as http:
        response = http.get("/v1/whoami")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "msp_id": "KZ-CUSTOMS",
        "role": "officer",
        "attrs": {"role": "officer"},
    }
    sent = response.request.headers
    assert "content-digest" not in sent  # no body, no digest
    assert sent["signature-input"].startswith(
        'caravan=("@method" "@target-uri" "client-cert");created='
    )
    keyid = certificate_keyid(signers["kz-officer"].certificate)
    assert f'keyid="{keyid}"' in sent["signature-input"]
    assert 'alg="ecdsa-p256-sha256"' in sent["signature-input"]
    assert ";nonce=" in sent["signature-input"] and 'tag="caravan"' in sent["signature-input"]
    der = signers["kz-officer"].certificate.public_bytes(Encoding.DER)
    assert sent[CLIENT_CERT] == ":" + base64.b64encode(der).decode() + ":"


def test_signed_post_covers_the_body(base_url: str, signers: Signers) -> None:
    with client(base_url, signers["kz-khorgos"]) as http:
        response = http.post("/v1/orgs/KZ-CUSTOMS/seal?v=1", json={"aeo_id": "KZ-AEO-1"})
    assert response.status_code == 200, response.text
    assert response.json()["caller"]["attrs"] == {"role": "sez-operator", "sez": "KZ-KHORGOS"}
    sent = response.request.headers
    assert sent["content-digest"].startswith("sha-256=:")
    assert '"content-digest"' in sent["signature-input"]


@pytest.mark.parametrize(
    ("algorithm", "alg"),
    [(KeyAlgorithm.EC_P384, "ecdsa-p384-sha384"), (KeyAlgorithm.RSA_3072, "rsa-v1_5-sha256")],
)
def test_p384_and_rsa_keys(
    base_url: str, signers: Signers, algorithm: KeyAlgorithm, alg: str
) -> None:
    signer = member_signer(
        signers.pkis["KZ"], f"hs-{algorithm.value}", "verifier", algorithm=algorithm
    )
    with client(base_url, signer) as http:
        response = http.post("/v1/orgs/KZ-CUSTOMS/seal", json={"n": 1})
    assert response.status_code == 200, response.text
    assert f'alg="{alg}"' in response.request.headers["signature-input"]


def test_anonymous_reads_where_allowed(base_url: str, signers: Signers) -> None:
    with client(base_url) as http:
        assert http.get("/v1/aeo/KZ-1").json()["confidential"] is False
        detail = refused(http.get("/v1/whoami"), 401, "SIGNATURE_MISSING")
        assert detail.startswith("the request is not signed; ")
    with client(base_url, signers["kz-admin"]) as http:
        assert http.get("/v1/aeo/KZ-1").json()["caller"]["role"] == "admin"


# ------------------------------------------------------------------------ refused
def signed_request(
    http: httpx.Client, signer: KeySigner, method: str, url: str, **kw: Any
) -> httpx.Request:
    request = http.build_request(method, url, **kw)
    SignedRequestAuth(signer).sign(request)
    return request


def resend(http: httpx.Client, request: httpx.Request, **changes: Any) -> httpx.Response:
    """Send a copy of a signed request with some parts changed (no new signature)."""
    headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() != "content-length"]
    headers = [(k, v) for k, v in headers if k.lower() not in changes.get("drop", ())]
    headers += list(changes.get("add", {}).items())
    return http.send(
        httpx.Request(
            changes.get("method", request.method),
            changes.get("url", request.url),
            headers=headers,
            content=changes.get("content", request.content),
        )
    )


def test_tampered_body(base_url: str, signers: Signers) -> None:
    with client(base_url) as http:
        signed = signed_request(
            http, signers["kz-officer"], "POST", "/v1/orgs/KZ-CUSTOMS/seal", json={"n": 1}
        )
        assert resend(http, signed).status_code == 200
        detail = refused(resend(http, signed, content=b'{"n": 2}'), 401, "CONTENT_DIGEST_MISMATCH")
        assert detail.startswith("Content-Digest does not match the message body")


def test_signature_is_bound_to_method_and_target(base_url: str, signers: Signers) -> None:
    with client(base_url) as http:
        signed = signed_request(http, signers["kz-officer"], "GET", "/v1/whoami?page=1")
        assert resend(http, signed).status_code == 200
        refused(resend(http, signed, url=f"{base_url}/v1/whoami?page=2"), 401, "SIGNATURE_INVALID")
        refused(resend(http, signed, method="DELETE"), 401, "SIGNATURE_INVALID")


def test_wrong_key(base_url: str, signers: Signers) -> None:
    officer, other = signers["kz-officer"], signers["kz-admin"]
    impostor = dataclasses.replace(officer, key=other.key)  # officer's certificate, admin's key
    with client(base_url, impostor) as http:
        detail = refused(http.get("/v1/whoami"), 401, "SIGNATURE_INVALID")
    assert detail.startswith("the request signature does not verify")


def test_keyid_must_be_the_client_cert(base_url: str, signers: Signers) -> None:
    other = signers["kz-admin"].certificate.public_bytes(Encoding.DER)
    with client(base_url) as http:
        signed = signed_request(http, signers["kz-officer"], "GET", "/v1/whoami")
        response = resend(
            http,
            signed,
            drop=("client-cert",),
            add={CLIENT_CERT: ":" + base64.b64encode(other).decode() + ":"},
        )
    detail = refused(response, 401, "SIGNATURE_INVALID")
    assert detail.startswith("keyid is not the SHA-256 of the Client-Cert certificate")


def test_missing_or_malformed_client_cert(base_url: str, signers: Signers) -> None:
    with client(base_url) as http:
        signed = signed_request(http, signers["kz-officer"], "GET", "/v1/whoami")
        detail = refused(resend(http, signed, drop=("client-cert",)), 401, "BAD_CLIENT_CERT")
        assert detail.startswith("the Client-Cert header is missing")
        broken = resend(http, signed, drop=("client-cert",), add={CLIENT_CERT: ":AAAA:"})
        assert refused(broken, 401, "BAD_CLIENT_CERT").startswith(
            "Client-Cert is not a DER certificate"
        )


def test_signature_must_cover_the_client_cert(base_url: str, signers: Signers) -> None:
    officer = signers["kz-officer"]
    with client(base_url) as http:
        request = http.build_request("GET", "/v1/whoami")
        der = officer.certificate.public_bytes(Encoding.DER)
        request.headers[CLIENT_CERT] = ":" + base64.b64encode(der).decode() + ":"
        signer = HTTPMessageSigner(signature_algorithm=algorithms.ECDSA_P256_SHA256)

        @dataclasses.dataclass
        class View:
            method: str
            url: str
            headers: httpx.Headers

        view = View(request.method, str(request.url), request.headers)
        prepared = signer.prepare(
            view,
            key_id=certificate_keyid(officer.certificate),
            tag="caravan",
            label="caravan",
            covered_component_ids=("@method", "@target-uri"),
        )
        raw = algorithms.ECDSA_P256_SHA256.signature_from_der(
            officer.sign(prepared.signature_base, "sha256")
        )
        signer.apply(view, prepared, raw)
        detail = refused(http.send(request), 401, "SIGNATURE_INVALID")
    assert "client-cert" in detail.split(";")[0]


@pytest.mark.parametrize("offset", [-(MAX_SKEW_S + 1), MAX_SKEW_S + 30, -3600])
def test_created_too_far_from_the_node_clock(base_url: str, signers: Signers, offset: int) -> None:
    with client(base_url, signers["kz-officer"], clock=lambda: time.time() + offset) as http:
        detail = refused(http.get("/v1/whoami"), 401, "SIGNATURE_EXPIRED")
    assert "(at most 300 s either way)" in detail


def test_created_within_the_window(base_url: str, signers: Signers) -> None:
    with client(base_url, signers["kz-officer"], clock=lambda: time.time() - 200) as http:
        assert http.get("/v1/whoami").status_code == 200


def test_untrusted_pki(base_url: str, signers: Signers) -> None:
    with client(base_url, signers["uz-officer"]) as http:
        detail = refused(http.get("/v1/whoami"), 403, "UNTRUSTED_CALLER")
        assert "does not chain to a granted root anchor of KZ-CUSTOMS" in detail
        refused(http.get("/v1/aeo/KZ-1"), 403, "UNTRUSTED_CALLER")  # optional, but checked


def test_chain_is_needed_to_reach_the_root(base_url: str, signers: Signers) -> None:
    bare = dataclasses.replace(signers["kz-officer"], chain=[])
    with client(base_url, bare) as http:
        refused(http.get("/v1/whoami"), 403, "UNTRUSTED_CALLER")


def test_created_is_seconds_since_the_epoch(signers: Signers) -> None:
    fixed = datetime.datetime(2026, 11, 23, 12, tzinfo=datetime.UTC).timestamp()
    request = httpx.Request("GET", "http://node.example/v1/whoami")
    SignedRequestAuth(signers["kz-officer"], clock=lambda: fixed).sign(request)
    assert f";created={int(fixed)};" in request.headers["signature-input"]


# ------------------------------------------------------------------------ replays
@pytest.fixture(scope="module")
def guarded(signers: Signers) -> Iterator[tuple[str, ReplayCache]]:
    """An app whose signatures are good once (as the node's: api.deps.ApiState)."""
    replays = ReplayCache()
    root = signers.pkis["KZ"].certificate("root")
    with serve(make_app(kz_trust(root), replays)) as base:
        yield base, replays


def test_a_signature_is_good_for_one_request(
    guarded: tuple[str, ReplayCache], signers: Signers
) -> None:
    base, _replays = guarded
    with client(base) as http:
        signed = signed_request(
            http, signers["kz-officer"], "POST", "/v1/orgs/KZ-CUSTOMS/seal", json={"n": 1}
        )
        assert resend(http, signed).status_code == 200
        detail = refused(resend(http, signed), 401, "SIGNATURE_REPLAYED")
        assert detail.startswith("this signature (keyid and nonce) was already used")
        # the same request signed afresh (a new nonce) is accepted
        again = signed_request(
            http, signers["kz-officer"], "POST", "/v1/orgs/KZ-CUSTOMS/seal", json={"n": 1}
        )
        assert resend(http, again).status_code == 200
        # optional signatures too: a replayed signed read is refused, not made anonymous
        read = signed_request(http, signers["kz-officer"], "GET", "/v1/aeo/KZ-1")
        assert resend(http, read).json()["confidential"] is True
        refused(resend(http, read), 401, "SIGNATURE_REPLAYED")


def test_refused_requests_do_not_fill_the_replay_cache(
    guarded: tuple[str, ReplayCache], signers: Signers, fresh_pki: OrgPki
) -> None:
    base, replays = guarded
    stranger = member_signer(fresh_pki, "replay-stranger", "officer")
    with client(base) as http:
        before = len(replays)
        request = signed_request(http, stranger, "GET", "/v1/whoami")
        refused(resend(http, request), 403, "UNTRUSTED_CALLER")
        refused(resend(http, request), 403, "UNTRUSTED_CALLER")  # not "replayed"
        tampered = signed_request(
            http, signers["kz-officer"], "POST", "/v1/orgs/KZ-CUSTOMS/seal", json={"n": 1}
        )
        refused(resend(http, tampered, content=b'{"n": 2}'), 401, "CONTENT_DIGEST_MISMATCH")
        assert len(replays) == before
        assert resend(http, tampered).status_code == 200  # the genuine one, once
        assert len(replays) == before + 1


def test_replay_cache_window_and_bound() -> None:
    now = [1000.0]
    cache = ReplayCache(window_s=600, max_entries=2, clock=lambda: now[0])
    cache.check_and_add("k1", "n1")
    with pytest.raises(Unauthenticated) as replayed:
        cache.check_and_add("k1", "n1")
    assert replayed.value.code == "SIGNATURE_REPLAYED"
    cache.check_and_add("k2", "n1")  # the same nonce from another key is another request
    with pytest.raises(ReplayCacheFull) as full:
        cache.check_and_add("k3", "n3")
    assert (full.value.status, full.value.code) == (429, "TOO_MANY_SIGNED_REQUESTS")
    now[0] += 599
    with pytest.raises(Unauthenticated):
        cache.check_and_add("k1", "n1")  # still in the window
    now[0] += 1
    cache.check_and_add("k3", "n3")  # the first two left the window
    cache.check_and_add("k1", "n1")
    assert len(cache) == 2

"""Member CRLs on the ledger (PublishCrl, GetCrl, GetCrls), the creator revocation helper
and the public chain check, on the real PKIs (fresh ones where a test revokes)."""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from chaincode.errors import Forbidden
from chaincode.registry import (
    MAX_CRL_B64,
    authority_key_id,
    creator_revocation,
    issuer_key_id,
)
from chaincode.seal import verify_chain
from chaincode.timeutil import US, datetime_us
from tests.chaincode.conftest import Identities, Ledger, b64, cert_b64
from tests.conftest import Consortium
from trust_services.pki import OrgPki, sign_crl
from trust_services.profiles import CertProfile

DER = serialization.Encoding.DER
UTC = dt.UTC


def own_ledger(identities: Identities, pki: OrgPki) -> Ledger:
    """A ledger whose only member, KZ-CUSTOMS, has ``pki``'s root as its anchor."""
    ledger = Ledger(identities)
    member = {
        "msp_id": "KZ-CUSTOMS",
        "country": "KZ",
        "name": "KZ Customs",
        "anchors": [{"kind": "root", "certificate": cert_b64(pki, "root")}],
    }
    ledger.ok("kz-admin", "InitLedger", {"members": [member]})
    return ledger


def publication(crl: bytes, pki: OrgPki, issuer: str = "issuing") -> dict[str, str]:
    return {"crl": b64(crl), "issuer_certificate": cert_b64(pki, issuer)}


def at(seconds: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


def member_cert(pki: OrgPki, label: str) -> x509.Certificate:
    return pki.issue_with_new_key(
        CertProfile.MEMBER, label, common_name=f"{label} (test)", role="officer"
    ).certificate


# ------------------------------------------------------------------ publishing
def test_publish_the_issuing_cas_crl_and_check_a_creator(
    identities: Identities, fresh_pki: OrgPki
) -> None:
    ledger = own_ledger(identities, fresh_pki)
    creator = member_cert(fresh_pki, "creator")
    other = member_cert(fresh_pki, "other")
    revoked_at = ledger.clock - 3600  # an hour before the ledger's next transaction
    fresh_pki.revoke(creator.serial_number, "key-compromise", when=at(revoked_at))
    issuing = fresh_pki.certificate("issuing")

    result = ledger.ok("kz-admin", "PublishCrl", publication(fresh_pki.crl("issuing"), fresh_pki))
    key_id = issuing.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    entry = {
        "serial": str(creator.serial_number),
        "revoked_at_us": revoked_at * US,
        "revoked_at": at(revoked_at).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "reason": "keyCompromise",
    }
    assert result["issuer_key_id"] == key_id.hex() == issuer_key_id(issuing)
    assert result["issuer"] == issuing.subject.rfc4514_string()
    assert result["number"] == "2"  # init_pki published number 1; revoke published 2
    assert result["revoked"] == [entry]
    assert result["this_update_us"] == (revoked_at - 60) * US
    assert result["published"]["by"]["msp_id"] == "KZ-CUSTOMS"
    assert "crl" not in result  # the answer leaves out the two blobs; GetCrl has them
    assert ledger.last_event()["entries"] == [
        {
            "type": "CrlPublished",
            "msp_id": "KZ-CUSTOMS",
            "issuer": issuing.subject.rfc4514_string(),
            "issuer_key_id": key_id.hex(),
            "number": "2",
            "revoked": 1,
        }
    ]

    stored = ledger.ok(
        "kg-admin", "GetCrl", {"msp_id": "KZ-CUSTOMS", "issuer_key_id": key_id.hex()}
    )
    assert base64.b64decode(stored["crl"]) == fresh_pki.crl("issuing")
    assert base64.b64decode(stored["issuer_certificate"]) == issuing.public_bytes(DER)
    assert ledger.ok("kg-admin", "GetCrls", {"msp_id": "KZ-CUSTOMS"}) == [stored]

    # what the node does with a creator: chain, issuer key id, revocation at the tx time
    path = verify_chain(
        creator, [issuing], [fresh_pki.certificate("root")], ledger.clock * US, "creator"
    )
    assert path == [creator, issuing, fresh_pki.certificate("root")]
    assert authority_key_id(creator) == issuer_key_id(path[1]) == stored["issuer_key_id"]
    assert creator_revocation(stored, creator.serial_number, revoked_at * US - 1) is None
    assert creator_revocation(stored, creator.serial_number, revoked_at * US) == entry
    assert creator_revocation(stored, creator.serial_number, ledger.clock * US) == entry
    assert creator_revocation(stored, other.serial_number, ledger.clock * US) is None


def test_a_newer_crl_replaces_the_stored_one_and_is_never_rolled_back(
    identities: Identities, fresh_pki: OrgPki
) -> None:
    ledger = own_ledger(identities, fresh_pki)
    first = fresh_pki.crl("issuing")  # number 1, nothing revoked
    assert ledger.ok("kz-admin", "PublishCrl", publication(first, fresh_pki))["revoked"] == []
    serials = sorted(member_cert(fresh_pki, f"m{i}").serial_number for i in range(3))
    for serial in reversed(serials):  # revoked in descending order, stored sorted by value
        fresh_pki.revoke(serial, "superseded", when=at(ledger.clock - 600))
    latest = fresh_pki.crl("issuing")  # number 4
    result = ledger.ok("kz-admin", "PublishCrl", publication(latest, fresh_pki))
    assert result["number"] == "4"
    assert [e["serial"] for e in result["revoked"]] == [str(s) for s in serials]
    assert {e["reason"] for e in result["revoked"]} == {"superseded"}

    for old, number in ((first, 1), (latest, 4)):
        message = ledger.fails("kz-admin", "PublishCrl", publication(old, fresh_pki), 409)
        assert message == (
            "a CRL is never rolled back: KZ-CUSTOMS published CRL number 4 of "
            f"{fresh_pki.certificate('issuing').subject.rfc4514_string()}; "
            f"this one has number {number}"
        )


def test_a_root_publishes_its_own_crl(identities: Identities, fresh_pki: OrgPki) -> None:
    ledger = own_ledger(identities, fresh_pki)
    root = fresh_pki.certificate("root")
    result = ledger.ok(
        "kz-admin", "PublishCrl", publication(fresh_pki.crl("root"), fresh_pki, "root")
    )
    assert result["issuer_key_id"] == issuer_key_id(root)
    assert result["issuer"] == root.subject.rfc4514_string()
    issuing_key = issuer_key_id(fresh_pki.certificate("issuing"))
    ledger.ok("kz-admin", "PublishCrl", publication(fresh_pki.crl("issuing"), fresh_pki))
    crls = ledger.ok("uz-admin", "GetCrls", {"msp_id": "KZ-CUSTOMS"})
    assert sorted(c["issuer_key_id"] for c in crls) == sorted([issuer_key_id(root), issuing_key])
    assert [c["issuer_key_id"] for c in crls] == sorted(c["issuer_key_id"] for c in crls)


def test_the_consortium_crls(ledger: Ledger, consortium: Consortium) -> None:
    kz = publication(consortium.kz.crl("issuing"), consortium.kz)
    assert ledger.ok("kz-admin", "PublishCrl", kz)["msp_id"] == "KZ-CUSTOMS"
    uz = publication(consortium.uz.crl("issuing"), consortium.uz)
    assert ledger.fails("kz-admin", "PublishCrl", uz, 403) == (
        "CRL rejected: the CRL issuer certificate does not chain to a granted root anchor "
        "of KZ-CUSTOMS"
    )
    assert ledger.ok("uz-admin", "PublishCrl", uz)["msp_id"] == "UZ-CUSTOMS"
    assert ledger.ok("kg-admin", "GetCrls", {"msp_id": "KG-CUSTOMS"}) == []
    assert ledger.fails(
        "kg-admin",
        "GetCrl",
        {
            "msp_id": "KG-CUSTOMS",
            "issuer_key_id": issuer_key_id(consortium.kg.certificate("issuing")),
        },
        404,
    ).startswith("no CRL of issuer ")


# ------------------------------------------------------------------ refusals
def _crl_signed_by(pki: OrgPki, label: str, *, number: int | None = 7, now: int) -> bytes:
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(pki.certificate(label).subject)
        .last_update(at(now - 60))
        .next_update(at(now + 86400))
    )
    if number is not None:
        builder = builder.add_extension(x509.CRLNumber(number), False)
    return sign_crl(builder, pki.key(label))


def test_a_crl_signed_by_a_non_ca_is_refused(identities: Identities, fresh_pki: OrgPki) -> None:
    ledger = own_ledger(identities, fresh_pki)
    crl = _crl_signed_by(fresh_pki, "seal", now=ledger.clock)
    seal = fresh_pki.certificate("seal").subject.rfc4514_string()
    assert ledger.fails("kz-admin", "PublishCrl", publication(crl, fresh_pki, "seal"), 403) == (
        f"CRL rejected: the issuer certificate ({seal}) is not a CA"
    )


def test_a_crl_with_a_bad_signature_or_the_wrong_issuer_is_refused(
    identities: Identities, fresh_pki: OrgPki
) -> None:
    ledger = own_ledger(identities, fresh_pki)
    crl = bytearray(fresh_pki.crl("issuing"))
    crl[-1] ^= 0x01  # the last byte of the signature value
    issuing = fresh_pki.certificate("issuing").subject.rfc4514_string()
    assert ledger.fails("kz-admin", "PublishCrl", publication(bytes(crl), fresh_pki), 403) == (
        f"CRL rejected: the CRL's signature does not verify with the issuer certificate ({issuing})"
    )
    root_crl = publication(fresh_pki.crl("root"), fresh_pki)  # with the issuing CA's cert
    assert ledger.fails("kz-admin", "PublishCrl", root_crl, 403) == (
        "CRL rejected: the CRL's issuer name differs from the subject of the issuer "
        f"certificate ({issuing})"
    )


def test_crl_number_and_times(identities: Identities, fresh_pki: OrgPki) -> None:
    ledger = own_ledger(identities, fresh_pki)
    no_number = _crl_signed_by(fresh_pki, "issuing", number=None, now=ledger.clock)
    assert ledger.fails("kz-admin", "PublishCrl", publication(no_number, fresh_pki), 400) == (
        "request.crl has no CRL number (RFC 5280 §5.2.3)"
    )
    future = fresh_pki.build_crl("issuing", now=at(ledger.clock + 3600))
    message = ledger.fails("kz-admin", "PublishCrl", publication(future, fresh_pki), 409)
    assert (
        message.startswith("the CRL's thisUpdate ") and "is after the transaction time" in message
    )
    # a CRL number beyond 2^53 is kept exactly, as a decimal string
    big = _crl_signed_by(fresh_pki, "issuing", number=2**64 + 1, now=ledger.clock)
    assert ledger.ok("kz-admin", "PublishCrl", publication(big, fresh_pki))["number"] == str(
        2**64 + 1
    )


def test_the_issuer_must_be_valid_at_the_transaction_time(
    identities: Identities, fresh_pki: OrgPki
) -> None:
    ledger = own_ledger(identities, fresh_pki)
    issuing = fresh_pki.certificate("issuing")
    ledger.clock = int(issuing.not_valid_before_utc.timestamp()) - 3600
    message = ledger.fails(
        "kz-admin", "PublishCrl", publication(fresh_pki.crl("issuing"), fresh_pki), 403
    )
    assert message == (
        f"CRL rejected: the CRL issuer certificate ({issuing.subject.rfc4514_string()}) "
        "is not valid at the transaction time"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"crl": "not base64!"}, "request.crl is not base64 (a DER CRL)"),
        ({"crl": b64(b"\x30\x05\x02\x01")}, "request.crl is not DER: DER length exceeds the data"),
        ({"crl": b64(b"\x30\x00\x00")}, "request.crl is not DER: trailing bytes after DER element"),
        ({"crl": b64(b"\x30\x03\x02\x01\x01")}, "request.crl is not an X.509 CRL"),
        ({"crl": "A" * (MAX_CRL_B64 + 4)}, f"request.crl is longer than {MAX_CRL_B64} characters"),
        (
            {"issuer_certificate": b64(b"\x30\x00")},
            "request.issuer_certificate is not a DER X.509 certificate with a positive serial",
        ),
        (
            {"issuer_certificate": "%%%"},
            "request.issuer_certificate is not base64 (a DER certificate)",
        ),
        ({"extra": "1"}, "request has unknown member(s): extra"),
        ({"crl": None}, "request.crl is required"),
    ],
)
def test_malformed_publication(
    ledger: Ledger, consortium: Consortium, change: dict[str, Any], message: str
) -> None:
    request: dict[str, Any] = publication(consortium.kz.crl("issuing"), consortium.kz) | change
    assert ledger.fails("kz-admin", "PublishCrl", request, 400).startswith(message)


def test_a_certificate_is_not_a_crl(ledger: Ledger, consortium: Consortium) -> None:
    request = {
        "crl": cert_b64(consortium.kz, "seal"),
        "issuer_certificate": cert_b64(consortium.kz, "issuing"),
    }
    assert ledger.fails("kz-admin", "PublishCrl", request, 400) == (
        "request.crl is not an X.509 CRL (RFC 5280 CertificateList)"
    )


def test_only_an_admin_of_a_member_publishes(
    identities: Identities, fresh_pki: OrgPki, ledger: Ledger, consortium: Consortium
) -> None:
    request = publication(consortium.kz.crl("issuing"), consortium.kz)
    assert "needs admin" in ledger.fails("kz-officer", "PublishCrl", request, 403)
    alone = own_ledger(identities, fresh_pki)
    assert alone.fails("uz-admin", "PublishCrl", request, 403) == (
        "UZ-CUSTOMS is not a member of the consortium"
    )


def test_crl_queries_are_strict(ledger: Ledger) -> None:
    assert "has the wrong format" in ledger.fails(
        "kz-admin", "GetCrl", {"msp_id": "KZ-CUSTOMS", "issuer_key_id": "ABC"}, 400
    )
    assert ledger.fails("kz-admin", "GetCrls", {}, 400) == "query.msp_id is required"


def test_crls_are_deterministic(identities: Identities, consortium: Consortium) -> None:
    from tests.chaincode.conftest import genesis

    states = []
    for _ in range(2):
        ledger = Ledger(identities)
        ledger.ok("kz-admin", "InitLedger", genesis(consortium, "KZ", "UZ"))
        ledger.ok(
            "kz-admin", "PublishCrl", publication(consortium.kz.crl("issuing"), consortium.kz)
        )
        ledger.ok(
            "kz-admin", "PublishCrl", publication(consortium.kz.crl("root"), consortium.kz, "root")
        )
        states.append(dict(ledger.stub.state))
    assert states[0] == states[1]


# ------------------------------------------------------------------ the chain check
def test_verify_chain_paths_and_reasons(consortium: Consortium) -> None:
    kz, uz = consortium.kz, consortium.uz
    seal, issuing, root = kz.certificate("seal"), kz.certificate("issuing"), kz.certificate("root")
    now = datetime_us(seal.not_valid_before_utc) + 86400 * US
    assert verify_chain(seal, [issuing], [root], now, "seal") == [seal, issuing, root]
    assert verify_chain(issuing, [], [uz.certificate("root"), root], now, "CRL issuer") == [
        issuing,
        root,
    ]
    assert verify_chain(root, [], [root], now, "CRL issuer") == [root]

    def reason(*args: Any, **kw: Any) -> str:
        with pytest.raises(Forbidden) as caught:
            verify_chain(*args, **kw)
        return caught.value.message

    assert reason(seal, [issuing], [], now, "creator", owner="KZ-CUSTOMS") == (
        "KZ-CUSTOMS has no granted root anchor"
    )
    assert reason(seal, [], [root], now, "creator", owner="KZ-CUSTOMS", prefix="x: ") == (
        "x: the creator certificate does not chain to a granted root anchor of KZ-CUSTOMS"
    )
    assert reason(seal, [uz.certificate("issuing")], [root], now, "creator").endswith(
        "does not chain to a granted root anchor of the issuer"
    )
    late = datetime_us(seal.not_valid_after_utc) + 1
    # a certificate issued straight by a root: its own validity counts, then the root's
    expired = datetime_us(issuing.not_valid_after_utc) + 1
    assert reason(issuing, [], [root], expired, "CRL issuer").startswith(
        f"the CRL issuer certificate ({issuing.subject.rfc4514_string()}) is not valid"
    )
    assert reason(seal, [issuing], [root], late, "creator") == (
        f"the creator certificate ({seal.subject.rfc4514_string()}) is not valid at the "
        "transaction time"
    )


def test_verify_chain_names_the_certificate_not_valid(fresh_pki: OrgPki) -> None:
    issuing, root = fresh_pki.certificate("issuing"), fresh_pki.certificate("root")
    start = issuing.not_valid_before_utc
    early = fresh_pki.issue_with_new_key(
        CertProfile.MEMBER,
        "early",
        common_name="early (test)",
        role="officer",
        not_before=start - dt.timedelta(days=2),
    ).certificate
    before = datetime_us(start) - 3600 * US
    with pytest.raises(Forbidden) as caught:
        verify_chain(early, [issuing], [root], before, "creator")
    assert caught.value.message == (
        f"the intermediate CA certificate ({issuing.subject.rfc4514_string()}) is not valid "
        "at the transaction time"
    )
    with pytest.raises(Forbidden) as caught:
        verify_chain(early, [], [issuing], before, "creator")  # the issuing CA as a root
    assert caught.value.message.startswith("the root anchor certificate (")


def test_key_ids(consortium: Consortium) -> None:
    import hashlib

    from cryptography.hazmat.primitives.asymmetric import ec

    root = consortium.kz.certificate("root")
    assert authority_key_id(root) is None  # a root carries no AuthorityKeyIdentifier
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "no SKI")])
    bare = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(at(0))
        .not_valid_after(at(86400))
        .sign(key, hashes.SHA256())
    )
    spki = key.public_key().public_bytes(DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert issuer_key_id(bare) == hashlib.sha256(spki).hexdigest()

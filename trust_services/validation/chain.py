"""Certificate chains and revocation per ETSI EN 319 102-1 §5.2.6 / §5.6.

>>> # validator = CertificateValidator([kz_root], source=HttpRevocationSource())
>>> # result = validator.validate(seal, [issuing], at=now, poe=gen_time, usage=Usage.SIGNATURE)
>>> # result.indication, result.sub_indication   # None, None when everything passed

Path building uses ``cryptography.x509.verification`` (the Rust webpki validator): it is
fast (≈0.3 ms a path here), takes the validation time (``PolicyBuilder.time``) and,
with ``ExtensionPolicy.permit_all()`` for the end entity, accepts seal, TSA and OCSP
certificates that carry no server/client EKU or SAN, while CA certificates still get the
full RFC 5280 checks (basicConstraints, keyCertSign, name chaining, signatures). What it
cannot do — tell an expired certificate from a missing chain, honour a proof of
existence (POE), ETSI key-usage rules, revocation — is done here, around it. Results are
cached: a path per (certificate, intermediates) together with the window in which every
certificate of it is valid; a parsed, signature-checked OCSP response or CRL per DER.

Revocation rules (the brief's policy, following EN 319 102-1 §5.6.2.5):

* revoked at R and a trusted POE (signature timestamp) before R → passed, noted;
* revoked and the POE (or, without POE, the claimed signing time or nothing) not
  before R → TOTAL-FAILED/REVOKED; revoked, no POE but a claimed time before R →
  INDETERMINATE/REVOKED_NO_POE;
* no usable revocation data → INDETERMINATE/TRY_LATER, or
  REVOCATION_OUT_OF_BOUNDS_NO_POE when only stale data was found.

Revocation data is usable when its signature verifies (by the CA, or by a delegated
responder certified by the CA with id-kp-OCSPSigning — whose own status is not checked
when it carries ocsp-nocheck) and it is fresh: the validation time falls between
thisUpdate and nextUpdate, or — for a signature with a proof of existence — it was
issued after the POE or was current at the POE (thisUpdate ≤ POE ≤ nextUpdate): then it
tells the status at the time of signing, which is what a B-LT signature embeds and what
still counts years later.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509 import verification as xv
from cryptography.x509.oid import ExtendedKeyUsageOID

from ..profiles import crl_urls as _crl_urls
from ..profiles import ocsp_urls as _ocsp_urls
from ..revocation import RevocationSource
from ._crypto import verify_signature
from .report import Check, Indication, RevocationInfo, SubIndication

__all__ = [
    "CertificateValidator",
    "ChainResult",
    "EmbeddedRevocation",
    "Usage",
]

CLOCK_SKEW = dt.timedelta(minutes=5)
_CACHE_LIMIT = 4096


class Usage(StrEnum):
    SIGNATURE = "signature"
    TIMESTAMPING = "timestamping"


@dataclass(frozen=True)
class EmbeddedRevocation:
    """Revocation data that travels with a signature (CMS crls field, PDF DSS)."""

    ocsp: tuple[bytes, ...] = ()
    crls: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class ChainResult:
    """The identity and status halves of a report, plus the outcome they lead to."""

    chain: tuple[x509.Certificate, ...]
    identity: Check
    status: Check
    indication: Indication | None = None
    sub_indication: SubIndication | None = None
    revocation: RevocationInfo | None = None
    notes: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return self.indication is None


@dataclass(frozen=True)
class _Path:
    chain: tuple[x509.Certificate, ...] | None
    error: str | None
    start: dt.datetime
    end: dt.datetime


@dataclass(frozen=True)
class _Status:
    """What one piece of revocation data says about one certificate."""

    status: str  # good | revoked | unknown
    source: str
    this_update: dt.datetime
    next_update: dt.datetime | None
    revoked_at: dt.datetime | None = None
    reason: str | None = None

    def covers(self, when: dt.datetime) -> bool:
        return self.this_update - CLOCK_SKEW <= when and (
            self.next_update is None or when <= self.next_update
        )

    def fresh_for(self, at: dt.datetime, poe: dt.datetime | None) -> bool:
        """Usable at ``at``; or, for a signature proven to exist at ``poe``, issued
        after it or authoritative at it (so it tells the status at signing time)."""
        if self.status == "revoked" or self.covers(at):
            return True
        return poe is not None and (self.this_update + CLOCK_SKEW >= poe or self.covers(poe))


@dataclass
class _Caches:
    certs: dict[bytes, x509.Certificate] = field(default_factory=dict)
    paths: dict[tuple[x509.Certificate, frozenset[x509.Certificate]], _Path] = field(
        default_factory=dict
    )
    ocsp: dict[tuple[bytes, x509.Certificate], list[_OcspEntry] | None] = field(
        default_factory=dict
    )
    crls: dict[tuple[bytes, x509.Certificate], x509.CertificateRevocationList | None] = field(
        default_factory=dict
    )


@dataclass(frozen=True)
class _OcspEntry:
    serial: int
    name_hash: bytes
    key_hash: bytes
    algorithm: str
    status: _Status
    #: a delegated responder without ocsp-nocheck, whose own status must be checked
    check_responder: x509.Certificate | None = None


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def _bounded(cache: dict[object, object]) -> None:
    if len(cache) > _CACHE_LIMIT:
        cache.clear()


class CertificateValidator:
    """Validates certificates against injected trust anchors and revocation data."""

    def __init__(
        self,
        anchors: Sequence[x509.Certificate],
        *,
        source: RevocationSource | None = None,
    ) -> None:
        if not anchors:
            raise ValueError("at least one trust anchor is needed")
        self.anchors = tuple(anchors)
        self.source = source
        self._store = xv.Store(list(self.anchors))
        self._anchor_set = frozenset(self.anchors)
        self._caches = _Caches()
        self._lock = threading.Lock()
        self._key_hashes: dict[x509.Certificate, dict[str, tuple[bytes, bytes]]] = {}

    # ------------------------------------------------------------------ parsing
    def certificate(self, der: bytes) -> x509.Certificate:
        """A parsed certificate, cached by its DER (raises ValueError when malformed)."""
        cert = self._caches.certs.get(der)
        if cert is None:
            cert = x509.load_der_x509_certificate(der)
            _bounded(self._caches.certs)  # type: ignore[arg-type]
            self._caches.certs[der] = cert
        return cert

    def is_anchor(self, cert: x509.Certificate) -> bool:
        return cert in self._anchor_set

    # ------------------------------------------------------------------ paths
    def _verifier_at(self, when: dt.datetime) -> xv.ClientVerifier:
        return (
            xv.PolicyBuilder()
            .store(self._store)
            .time(when)
            .extension_policies(
                ca_policy=xv.ExtensionPolicy.webpki_defaults_ca(),
                ee_policy=xv.ExtensionPolicy.permit_all(),
            )
            .build_client_verifier()
        )

    def _path(
        self, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], at: dt.datetime
    ) -> _Path:
        inter = frozenset(c for c in intermediates if c != cert)
        key = (cert, inter)
        cached = self._caches.paths.get(key)
        if cached is not None:  # validity in time is judged apart, from start/end
            return cached
        if cert in self._anchor_set:
            path = _Path((cert,), None, cert.not_valid_before_utc, cert.not_valid_after_utc)
        else:
            path = self._build_path(cert, list(inter), at)
        _bounded(self._caches.paths)  # type: ignore[arg-type]
        self._caches.paths[key] = path
        return path

    def _build_path(
        self, cert: x509.Certificate, intermediates: list[x509.Certificate], at: dt.datetime
    ) -> _Path:
        nvb, nva = cert.not_valid_before_utc, cert.not_valid_after_utc
        # first at the validation time, then inside the certificate's own validity, so
        # an expired certificate is told apart from one with no path at all
        tries = [at, min(max(at, nvb), nva), nvb + (nva - nvb) / 2]
        error = "no path"
        for when in dict.fromkeys(tries):
            try:
                verified = self._verifier_at(when).verify(cert, intermediates)
            except xv.VerificationError as exc:
                error = str(exc)
                continue
            chain = tuple(verified.chain)
            start = max(c.not_valid_before_utc for c in chain)
            end = min(c.not_valid_after_utc for c in chain)
            return _Path(chain, None, start, end)
        return _Path(None, error, nvb, nva)

    # ------------------------------------------------------------------ validate
    def validate(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate] = (),
        *,
        at: dt.datetime,
        usage: Usage = Usage.SIGNATURE,
        poe: dt.datetime | None = None,
        claimed_time: dt.datetime | None = None,
        embedded: EmbeddedRevocation | None = None,
        revocation_time: dt.datetime | None = None,
    ) -> ChainResult:
        """Chain, validity, key usage and revocation of ``cert`` at ``at``.

        ``poe`` is a trusted proof that the signature existed then (a validated
        signature timestamp's genTime); ``claimed_time`` is the unproven signing time.
        ``revocation_time`` (default: ``poe``) is the time revocation data may speak
        for when it is no longer current — a timestamp's own genTime for its TSA.
        """
        with self._lock:
            return self._validate(
                cert,
                intermediates,
                at,
                usage,
                poe,
                claimed_time,
                embedded,
                revocation_time or poe,
            )

    def _validate(
        self,
        cert: x509.Certificate,
        intermediates: Sequence[x509.Certificate],
        at: dt.datetime,
        usage: Usage,
        poe: dt.datetime | None,
        claimed_time: dt.datetime | None,
        embedded: EmbeddedRevocation | None,
        revocation_time: dt.datetime | None,
    ) -> ChainResult:
        path = self._path(cert, intermediates, at)
        if path.chain is None:
            return ChainResult(
                (),
                Check.indeterminate(f"no chain to a trust anchor ({_short(path.error)})"),
                Check.indeterminate("not checked: no certificate chain"),
                Indication.INDETERMINATE,
                SubIndication.NO_CERTIFICATE_CHAIN_FOUND,
            )
        chain = path.chain
        anchor = chain[-1]
        identity_notes: list[str] = [f"chain: {' → '.join(_cn(c) for c in chain)}"]
        notes: list[str] = []

        # ---------------------------------------------------------- validity in time
        time_fail = self._check_time(cert, chain, path, at, poe, identity_notes)
        if time_fail is not None and time_fail[0] is Indication.TOTAL_FAILED:
            return ChainResult(
                chain,
                Check.failed(time_fail[2], *identity_notes),
                Check.indeterminate("not checked"),
                time_fail[0],
                time_fail[1],
            )

        # ---------------------------------------------------------- key usage
        usage_error = _check_usage(cert, usage)
        if usage_error is not None:
            return ChainResult(
                chain,
                Check.failed(usage_error, *identity_notes),
                Check.indeterminate("not checked"),
                Indication.INDETERMINATE,
                SubIndication.CHAIN_CONSTRAINTS_FAILURE,
            )

        # ---------------------------------------------------------- revocation
        ref = at if time_fail is None else (poe or at)
        revocation: RevocationInfo | None = None
        status_notes: list[str] = []
        outcome: tuple[Indication, SubIndication, str] | None = None
        stale_found = False
        revoked_after_poe: list[str] = []
        for index, subject in enumerate(chain[:-1]):
            issuer = chain[index + 1]
            st, stale = self._status(subject, issuer, ref, revocation_time, embedded)
            stale_found = stale_found or stale
            who = "signing certificate" if index == 0 else f"CA certificate {_cn(subject)}"
            if index == 0 and st is not None:
                revocation = RevocationInfo(
                    st.source, st.status, st.this_update, st.revoked_at, st.reason
                )
            if st is None:
                sub = (
                    SubIndication.REVOCATION_OUT_OF_BOUNDS_NO_POE
                    if stale
                    else SubIndication.TRY_LATER
                )
                what = "only stale revocation data" if stale else "no revocation data"
                outcome = outcome or (Indication.INDETERMINATE, sub, f"{what} for the {who}")
                continue
            status_notes.append(f"{who}: {st.status} ({st.source}, {_iso(st.this_update)})")
            if st.status == "revoked" and st.revoked_at is not None:
                r_at = st.revoked_at
                if poe is not None and poe < r_at:
                    revoked_after_poe.append(who)
                    notes.append(
                        f"the {who} was revoked at {_iso(r_at)}, after the proof of existence"
                        f" at {_iso(poe)}: the signature stands"
                    )
                    continue
                if poe is None and claimed_time is not None and claimed_time < r_at:
                    sub = (
                        SubIndication.REVOKED_NO_POE
                        if index == 0
                        else SubIndication.REVOKED_CA_NO_POE
                    )
                    outcome = (
                        Indication.INDETERMINATE,
                        sub,
                        f"the {who} was revoked at {_iso(r_at)}; nothing proves the"
                        " signature existed before",
                    )
                    break
                outcome = (
                    Indication.TOTAL_FAILED,
                    SubIndication.REVOKED,
                    f"the {who} was revoked at {_iso(r_at)} ({st.reason or 'unspecified'})",
                )
                break
            if st.status != "good":
                outcome = outcome or (
                    Indication.INDETERMINATE,
                    SubIndication.TRY_LATER,
                    f"the status of the {who} is unknown",
                )
        if outcome is None and revoked_after_poe:
            status = Check.passed(
                f"the {', '.join(revoked_after_poe)} was revoked only after the proof of existence",
                *status_notes,
                *notes,
            )
        elif outcome is None:
            status = Check.passed("not revoked", *status_notes)
        elif outcome[0] is Indication.TOTAL_FAILED:
            status = Check.failed(outcome[2], *status_notes)
        else:
            status = Check.indeterminate(outcome[2], *status_notes)

        anchor_note = f"trust anchor: {_cn(anchor)}"
        if time_fail is not None:
            identity = Check.indeterminate(time_fail[2], *identity_notes, anchor_note)
            return ChainResult(
                chain, identity, status, time_fail[0], time_fail[1], revocation, tuple(notes)
            )
        identity = Check.passed(f"chains to a trust anchor ({_cn(anchor)})", *identity_notes)
        if outcome is not None:
            return ChainResult(
                chain, identity, status, outcome[0], outcome[1], revocation, tuple(notes)
            )
        return ChainResult(chain, identity, status, None, None, revocation, tuple(notes))

    def _check_time(
        self,
        cert: x509.Certificate,
        chain: tuple[x509.Certificate, ...],
        path: _Path,
        at: dt.datetime,
        poe: dt.datetime | None,
        notes: list[str],
    ) -> tuple[Indication, SubIndication, str] | None:
        """None when the chain is valid at ``at`` (or at the POE, noted)."""
        nvb, nva = cert.not_valid_before_utc, cert.not_valid_after_utc
        if poe is not None and poe < nvb:
            return (
                Indication.TOTAL_FAILED,
                SubIndication.NOT_YET_VALID,
                f"the signing certificate was not yet valid at the timestamp {_iso(poe)}",
            )
        if poe is not None and poe > nva:
            return (
                Indication.TOTAL_FAILED,
                SubIndication.EXPIRED,
                f"the signing certificate expired at {_iso(nva)}, before the timestamp {_iso(poe)}",
            )
        if path.start <= at <= path.end:
            return None
        if at < path.start:
            return (
                Indication.INDETERMINATE,
                SubIndication.NOT_YET_VALID,
                f"a certificate of the chain is not valid before {_iso(path.start)}",
            )
        if poe is not None and path.start <= poe <= path.end:
            notes.append(
                f"a certificate of the chain expired at {_iso(path.end)}; it was valid at"
                f" the proof of existence {_iso(poe)}"
            )
            return None
        return (
            Indication.INDETERMINATE,
            SubIndication.OUT_OF_BOUNDS_NO_POE,
            f"a certificate of the chain expired at {_iso(path.end)} and no proof of"
            " existence before that",
        )

    # ------------------------------------------------------------------ revocation
    def _status(
        self,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        poe: dt.datetime | None,
        embedded: EmbeddedRevocation | None,
    ) -> tuple[_Status | None, bool]:
        """The first usable status of ``cert``, and whether stale data was seen."""
        stale = False
        candidates: list[_Status] = []
        if embedded is not None:
            for item in embedded.ocsp:
                candidates.extend(
                    self._ocsp_status(item, cert, issuer, "embedded-ocsp", at, embedded)
                )
            for item in embedded.crls:
                candidates.extend(self._crl_status(item, cert, issuer, "embedded-crl"))
        for st in candidates:
            if st.status != "unknown" and st.fresh_for(at, poe):
                return st, stale
            stale = stale or st.status != "unknown"
        if self.source is None:
            return None, stale
        der: bytes | None
        try:
            der = self.source.ocsp(cert, issuer) if _ocsp_urls(cert) else None
        except Exception:  # a source failing is "no data", never a crash
            der = None
        if der is not None:
            for st in self._ocsp_status(der, cert, issuer, "ocsp", at, embedded):
                if st.status != "unknown" and st.fresh_for(at, poe):
                    return st, stale
                stale = stale or st.status != "unknown"
        for url in _crl_urls(cert):
            try:
                der = self.source.crl(url)
            except Exception:  # as above
                der = None
            if der is None:
                continue
            for st in self._crl_status(der, cert, issuer, "crl"):
                if st.fresh_for(at, poe):
                    return st, stale
                stale = True
        return None, stale

    def _issuer_hashes(self, issuer: x509.Certificate, algorithm: str) -> tuple[bytes, bytes]:
        per = self._key_hashes.setdefault(issuer, {})
        if algorithm not in per:
            from asn1crypto import keys

            spki = keys.PublicKeyInfo.load(
                issuer.public_key().public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
            key_bits = bytes(spki["public_key"].contents[1:])
            name = issuer.subject.public_bytes()
            per[algorithm] = (
                hashlib.new(algorithm, name).digest(),
                hashlib.new(algorithm, key_bits).digest(),
            )
        return per[algorithm]

    def _ocsp_status(
        self,
        der: bytes,
        cert: x509.Certificate,
        issuer: x509.Certificate,
        source: str,
        at: dt.datetime,
        embedded: EmbeddedRevocation | None,
    ) -> list[_Status]:
        key = (der, issuer)
        if key not in self._caches.ocsp:
            _bounded(self._caches.ocsp)  # type: ignore[arg-type]
            self._caches.ocsp[key] = self._parse_ocsp(der, issuer, source)
        entries = self._caches.ocsp[key]
        if not entries:
            return []
        out = []
        for entry in entries:
            if entry.serial != cert.serial_number:
                continue
            if (entry.name_hash, entry.key_hash) != self._issuer_hashes(issuer, entry.algorithm):
                continue
            if entry.check_responder is not None and not self._responder_not_revoked(
                entry.check_responder, issuer, at, embedded
            ):
                continue
            out.append(entry.status)
        return out

    def _parse_ocsp(
        self, der: bytes, issuer: x509.Certificate, source: str
    ) -> list[_OcspEntry] | None:
        try:
            resp = ocsp.load_der_ocsp_response(der)
            if resp.response_status is not ocsp.OCSPResponseStatus.SUCCESSFUL:
                return None
            signer = self._ocsp_signer(resp, issuer)
            if signer is None:
                return None
            check_responder = None
            if signer is not issuer:
                try:
                    signer.extensions.get_extension_for_class(x509.OCSPNoCheck)
                except x509.ExtensionNotFound:
                    check_responder = signer
            hash_alg = resp.signature_hash_algorithm
            if hash_alg is None or not verify_signature(
                signer.public_key(),
                resp.signature,
                resp.tbs_response_bytes,
                digest=hash_alg.name,
                signature_oid=resp.signature_algorithm_oid.dotted_string,
            ):
                return None
            entries = []
            for single in resp.responses:
                cs = single.certificate_status
                status = {
                    ocsp.OCSPCertStatus.GOOD: "good",
                    ocsp.OCSPCertStatus.REVOKED: "revoked",
                }.get(cs, "unknown")
                reason = single.revocation_reason
                entries.append(
                    _OcspEntry(
                        single.serial_number,
                        single.issuer_name_hash,
                        single.issuer_key_hash,
                        single.hash_algorithm.name,
                        _Status(
                            status,
                            source,
                            single.this_update_utc,
                            single.next_update_utc,
                            single.revocation_time_utc,
                            reason.value if reason is not None else None,
                        ),
                        check_responder,
                    )
                )
            return entries
        except (ValueError, TypeError, x509.UnsupportedGeneralNameType):
            return None
        except Exception:  # UnsupportedAlgorithm and friends: unusable
            return None

    def _ocsp_signer(
        self, resp: ocsp.OCSPResponse, issuer: x509.Certificate
    ) -> x509.Certificate | None:
        """The issuer itself, or a delegated responder it certified (RFC 6960 §4.2.2.2)."""
        if _responder_matches(resp, issuer):
            return issuer
        for responder in resp.certificates:
            if not _responder_matches(resp, responder):
                continue
            if responder.issuer != issuer.subject:
                continue
            if not _issued_by(responder, issuer):
                continue
            try:
                eku = responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
            except x509.ExtensionNotFound:
                continue
            if ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
                continue
            produced = resp.produced_at_utc
            if not (
                responder.not_valid_before_utc - CLOCK_SKEW
                <= produced
                <= responder.not_valid_after_utc
            ):
                continue
            # with ocsp-nocheck (RFC 6960 §4.2.2.2.1) the responder's own status is not
            # checked; without it, _ocsp_status checks it against the CA's CRL
            return responder
        return None

    def _responder_not_revoked(
        self,
        responder: x509.Certificate,
        issuer: x509.Certificate,
        at: dt.datetime,
        embedded: EmbeddedRevocation | None,
    ) -> bool:
        """A responder without ocsp-nocheck counts only if a current CRL clears it."""
        crls = list(embedded.crls) if embedded is not None else []
        if self.source is not None:
            for url in _crl_urls(responder):
                try:
                    der = self.source.crl(url)
                except Exception:  # a source failing is "no data"
                    der = None
                if der is not None:
                    crls.append(der)
        for der in crls:
            for st in self._crl_status(der, responder, issuer, "crl"):
                if st.status == "revoked":
                    return False
                if st.covers(at):
                    return True
        return False

    def _crl_status(
        self, der: bytes, cert: x509.Certificate, issuer: x509.Certificate, source: str
    ) -> list[_Status]:
        key = (der, issuer)
        if key not in self._caches.crls:
            _bounded(self._caches.crls)  # type: ignore[arg-type]
            self._caches.crls[key] = self._parse_crl(der, issuer)
        crl = self._caches.crls[key]
        if crl is None:
            return []
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is None:
            return [_Status("good", source, crl.last_update_utc, crl.next_update_utc)]
        reason: str | None = None
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.value
        except x509.ExtensionNotFound:
            reason = None
        return [
            _Status(
                "revoked",
                source,
                crl.last_update_utc,
                crl.next_update_utc,
                entry.revocation_date_utc,
                reason,
            )
        ]

    @staticmethod
    def _parse_crl(der: bytes, issuer: x509.Certificate) -> x509.CertificateRevocationList | None:
        try:
            crl = x509.load_der_x509_crl(der)
        except ValueError:
            return None
        if crl.issuer != issuer.subject:
            return None
        try:
            if not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]
                return None
        except (TypeError, ValueError):
            return None
        return crl


def _issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def _responder_matches(resp: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    if resp.responder_key_hash is not None:
        from asn1crypto import keys

        spki = keys.PublicKeyInfo.load(
            cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        bits = bytes(spki["public_key"].contents[1:])
        return hashlib.sha1(bits).digest() == resp.responder_key_hash  # noqa: S324
    return resp.responder_name == cert.subject


def _check_usage(cert: x509.Certificate, usage: Usage) -> str | None:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        ku = None
    if ku is not None and not (ku.digital_signature or ku.content_commitment):
        return "the certificate's key usage allows neither digitalSignature nor nonRepudiation"
    if usage is Usage.TIMESTAMPING:
        try:
            ext = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
        except x509.ExtensionNotFound:
            return "the TSA certificate has no extended key usage id-kp-timeStamping"
        if not ext.critical or list(ext.value) != [ExtendedKeyUsageOID.TIME_STAMPING]:
            return "the TSA certificate's EKU must be id-kp-timeStamping alone and critical"
    return None


def _cn(cert: x509.Certificate) -> str:
    values = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    if values:
        v = values[0].value
        return v if isinstance(v, str) else v.decode(errors="replace")
    return cert.subject.rfc4514_string()


def _iso(when: dt.datetime | None) -> str:
    if when is None:
        return "?"
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _short(text: str | None) -> str:
    text = (text or "").split(" (encountered")[0]
    return text[:160]

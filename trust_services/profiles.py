"""Certificate profiles: the extensions each kind of Caravan certificate carries.

ETSI EN 319 412-1/-2/-3/-5 (QCStatements, organizationIdentifier), RFC 3161 §2.3 (TSA
EKU), RFC 6960 §4.2.2.2 (OCSP signing, ocsp-nocheck) and the Fabric CA attribute
extension used for roles (DOMAIN.md, "Identities in certificates").
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from . import _der

__all__ = [
    "QC_COMPLIANCE",
    "QC_SSCD",
    "QC_TYPE",
    "QC_TYPE_ESEAL",
    "QC_TYPE_ESIGN",
    "ROLE_ATTRIBUTE_OID",
    "CertProfile",
    "Endpoints",
    "crl_urls",
    "ocsp_urls",
    "qc_statements",
    "role_attributes",
]

QC_STATEMENTS_OID = "1.3.6.1.5.5.7.1.3"
QC_COMPLIANCE = "0.4.0.1862.1.1"
QC_SSCD = "0.4.0.1862.1.4"
QC_TYPE = "0.4.0.1862.1.6"
QC_TYPE_ESIGN = "0.4.0.1862.1.6.1"
QC_TYPE_ESEAL = "0.4.0.1862.1.6.2"
QC_CC_LEGISLATION = "0.4.0.1862.1.7"
PKIX_QC_SYNTAX_V2 = "1.3.6.1.5.5.7.11.2"
SEMANTICS_ID_NATURAL = "0.4.0.194121.1.1"
SEMANTICS_ID_LEGAL = "0.4.0.194121.1.2"

# ETSI EN 319 411-2 qualified certificate policies
QCP_N = "0.4.0.194112.1.0"
QCP_L = "0.4.0.194112.1.1"
QCP_N_QSCD = "0.4.0.194112.1.2"
QCP_L_QSCD = "0.4.0.194112.1.3"

#: Fabric CA's attribute extension: the value is the JSON document itself
ROLE_ATTRIBUTE_OID = "1.2.3.4.5.6.7.8.1"


class CertProfile(StrEnum):
    ROOT = "root"
    ISSUING = "issuing"
    SEAL = "seal"
    TSA = "tsa"
    OCSP = "ocsp"
    OFFICER = "officer"
    MEMBER = "member"


@dataclass(frozen=True)
class Endpoints:
    """Where a node publishes an organisation's revocation data and CA certificates."""

    base_url: str

    @property
    def ocsp(self) -> str:
        return f"{self.base_url}/ocsp"

    @property
    def tsa(self) -> str:
        return f"{self.base_url}/tsa"

    def crl(self, ca: str) -> str:
        return f"{self.base_url}/crl/{ca}.crl"

    def ca_cert(self, ca: str) -> str:
        return f"{self.base_url}/certs/{ca}.cer"


def qc_statements(*, qc_type: str, sscd: bool, legal_person: bool, country: str) -> bytes:
    """DER of the QCStatements extension value (ETSI EN 319 412-5)."""
    statements = [
        _der.seq(_der.oid(QC_COMPLIANCE)),
        _der.seq(_der.oid(QC_TYPE), _der.seq(_der.oid(qc_type))),
        # not an EU qualified certificate: qualified under the issuing country's law
        _der.seq(_der.oid(QC_CC_LEGISLATION), _der.seq(_der.tlv(0x13, country.encode()))),
        _der.seq(
            _der.oid(PKIX_QC_SYNTAX_V2),
            _der.seq(_der.oid(SEMANTICS_ID_LEGAL if legal_person else SEMANTICS_ID_NATURAL)),
        ),
    ]
    if sscd:
        statements.insert(1, _der.seq(_der.oid(QC_SSCD)))
    return _der.seq(*statements)


def role_attributes(role: str, sez: str | None = None) -> bytes:
    attrs = {"role": role}
    if sez:
        attrs["sez"] = sez
    return json.dumps({"attrs": attrs}, separators=(",", ":"), sort_keys=True).encode()


def _key_usage(
    *, sign: bool = False, non_repudiation: bool = False, ca: bool = False
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=sign,
        content_commitment=non_repudiation,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _policies(*oids: str) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier(o), None) for o in oids]
    )


def extensions_for(
    profile: CertProfile,
    *,
    endpoints: Endpoints,
    country: str,
    sscd: bool = False,
    role: str | None = None,
    sez: str | None = None,
) -> list[tuple[x509.ExtensionType, bool]]:
    """The (extension, critical) pairs of a profile, without key identifiers."""
    exts: list[tuple[x509.ExtensionType, bool]] = []
    if profile is CertProfile.ROOT:
        exts.append((x509.BasicConstraints(ca=True, path_length=None), True))
        exts.append((_key_usage(ca=True), True))
        return exts
    if profile is CertProfile.ISSUING:
        exts.append((x509.BasicConstraints(ca=True, path_length=0), True))
        exts.append((_key_usage(ca=True), True))
        exts.append((_crl_dp(endpoints.crl("root")), False))
        return exts

    exts.append((x509.BasicConstraints(ca=False, path_length=None), True))
    exts.append((_crl_dp(endpoints.crl("issuing")), False))
    aia = [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS,
            x509.UniformResourceIdentifier(endpoints.ca_cert("issuing")),
        )
    ]
    if profile is not CertProfile.OCSP:
        aia.insert(
            0,
            x509.AccessDescription(
                AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(endpoints.ocsp)
            ),
        )
    exts.append((x509.AuthorityInformationAccess(aia), False))

    if profile is CertProfile.SEAL:
        exts.append((_key_usage(sign=True, non_repudiation=True), True))
        exts.append((_policies(QCP_L_QSCD if sscd else QCP_L), False))
        exts.append((_qc(QC_TYPE_ESEAL, sscd, True, country), False))
    elif profile is CertProfile.OFFICER:
        exts.append((_key_usage(sign=True, non_repudiation=True), True))
        exts.append((_policies(QCP_N_QSCD if sscd else QCP_N), False))
        exts.append((_qc(QC_TYPE_ESIGN, sscd, False, country), False))
    elif profile is CertProfile.TSA:
        exts.append((_key_usage(sign=True, non_repudiation=True), True))
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), True))
    elif profile is CertProfile.OCSP:
        exts.append((_key_usage(sign=True), True))
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.OCSP_SIGNING]), False))
        exts.append((x509.OCSPNoCheck(), False))
    elif profile is CertProfile.MEMBER:
        if not role:
            raise ValueError("a member identity needs a role")
        exts.append((_key_usage(sign=True), True))
        exts.append((x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False))
        exts.append(
            (
                x509.UnrecognizedExtension(
                    x509.ObjectIdentifier(ROLE_ATTRIBUTE_OID), role_attributes(role, sez)
                ),
                False,
            )
        )
    return exts


def _crl_dp(url: str) -> x509.CRLDistributionPoints:
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url)],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


def _qc(qc_type: str, sscd: bool, legal: bool, country: str) -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(
        x509.ObjectIdentifier(QC_STATEMENTS_OID),
        qc_statements(qc_type=qc_type, sscd=sscd, legal_person=legal, country=country),
    )


def crl_urls(cert: x509.Certificate) -> list[str]:
    """The URLs of the certificate's CRL distribution points."""
    try:
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        name.value
        for point in points
        for name in point.full_name or ()
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    """The OCSP responder URLs of the certificate's authority information access."""
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return []
    return [
        d.access_location.value
        for d in aia
        if d.access_method == AuthorityInformationAccessOID.OCSP
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
    ]

"""What a file is: a PDF, a detached CAdES signature, an RFC 3161 response or token.

>>> detect(b"%PDF-1.7 ...", None)
<Kind.PADES: 'pades'>
"""

from __future__ import annotations

import base64
import binascii
import re
from enum import StrEnum

from ..errors import InputError
from ._der_parse import SEQUENCE, children, parse_signed_data, tlv

__all__ = ["Kind", "detect", "unarmor"]

ID_DATA = "1.2.840.113549.1.7.1"
ID_CT_TST_INFO = "1.2.840.113549.1.9.16.1.4"
_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)


class Kind(StrEnum):
    PADES = "pades"
    CADES = "cades"
    TIMESTAMP = "timestamp"


def unarmor(data: bytes) -> bytes:
    """DER from a PEM-armoured CMS/PKCS7 (``-----BEGIN CMS-----``), or ``data`` as is."""
    if data[:64].lstrip()[:11] != b"-----BEGIN ":
        return data
    match = _PEM.search(data)
    if match is None:
        return data
    try:
        return base64.b64decode(b"".join(match.group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        raise InputError("the PEM armour holds no valid base64") from None


def _der_kind(der: bytes) -> Kind | None:
    """CADES for SignedData over id-data, TIMESTAMP for a token or TimeStampResp."""
    try:
        tag, start, end = tlv(der, 0, len(der))
        if tag != SEQUENCE:
            return None
        parts = children(der, start, end)
    except ValueError:
        # BER (indefinite lengths) — let the full parser decide
        try:
            sd = parse_signed_data(der)
        except ValueError:
            return None
        return Kind.TIMESTAMP if sd.econtent_type == ID_CT_TST_INFO else Kind.CADES
    if not parts:
        return None
    if parts[0][0] == 0x06:  # ContentInfo
        try:
            sd = parse_signed_data(der)
        except ValueError:
            return None
        if sd.econtent_type == ID_CT_TST_INFO:
            return Kind.TIMESTAMP
        if sd.econtent_type == ID_DATA:
            return Kind.CADES
        return None
    if parts[0][0] == SEQUENCE:  # TimeStampResp: PKIStatusInfo first
        status = children(der, parts[0][1], parts[0][2])
        if status and status[0][0] == 0x02:
            return Kind.TIMESTAMP
    return None


def detect(file: bytes, signature: bytes | None) -> Kind:
    """Which validation applies to ``file`` (and ``signature``, when given)."""
    if signature is not None:
        kind = _der_kind(unarmor(signature))
        if kind is None:
            raise InputError(
                "the signature file is neither CMS SignedData (CAdES) nor an RFC 3161"
                " timestamp response or token"
            )
        return kind
    if file[:1024].lstrip()[:5] == b"%PDF-":
        return Kind.PADES
    kind = _der_kind(unarmor(file))
    if kind is Kind.TIMESTAMP:
        return kind
    if kind is Kind.CADES:
        return kind  # enveloping: the content is inside
    raise InputError(
        "the file is neither a PDF nor a timestamp; give the detached signature with --signature"
    )

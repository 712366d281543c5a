"""A small, strict DER reader for the hot path of CMS and RFC 3161 validation.

asn1crypto is a fine general parser, but building its object trees cost about a
millisecond per signature — half the time budget of a CAdES-B-T validation. The few
structures read here (ContentInfo, SignedData, SignerInfo, TSTInfo) are walked
directly; anything unusual (BER indefinite lengths from streaming encoders) is first
normalised to DER by asn1crypto, and anything malformed is a ValueError.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from .._der import decode_oid

__all__ = ["ParsedSignedData", "ParsedSignerInfo", "ParsedTstInfo", "parse_signed_data"]

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
OCTET_STRING = 0x04
OID = 0x06
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18


def tlv(buf: bytes, pos: int, end: int) -> tuple[int, int, int]:
    """(tag, contents start, contents end) of the TLV at ``pos``."""
    if pos + 2 > end:
        raise ValueError("truncated DER")
    tag = buf[pos]
    if tag & 0x1F == 0x1F:
        raise ValueError("multi-byte tags are not supported")
    first = buf[pos + 1]
    if first < 0x80:
        start = pos + 2
        length = first
    else:
        n = first & 0x7F
        if n == 0:
            raise ValueError("indefinite length (BER)")
        if n > 4 or pos + 2 + n > end:
            raise ValueError("bad DER length")
        length = int.from_bytes(buf[pos + 2 : pos + 2 + n], "big")
        start = pos + 2 + n
    if start + length > end:
        raise ValueError("truncated DER")
    return tag, start, start + length


def children(buf: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, contents start, contents end, element start) of each element in a range."""
    out = []
    pos = start
    while pos < end:
        tag, cs, ce = tlv(buf, pos, end)
        out.append((tag, cs, ce, pos))
        pos = ce
    return out


def oid_text(contents: bytes) -> str:
    return decode_oid(contents)


def integer(contents: bytes) -> int:
    if not contents:
        raise ValueError("empty INTEGER")
    return int.from_bytes(contents, "big", signed=True)


def parse_time(tag: int, contents: bytes) -> dt.datetime:
    text = contents.decode("ascii")
    if not text.endswith("Z"):
        raise ValueError("time is not in UTC")
    text = text[:-1]
    if tag == UTC_TIME:
        year = int(text[:2])
        text = ("19" if year >= 50 else "20") + text
    elif tag != GENERALIZED_TIME:
        raise ValueError("not a time")
    frac = 0
    if "." in text:
        text, digits = text.split(".", 1)
        frac = int((digits + "000000")[:6])
    if len(text) == 12:
        text += "00"
    when = dt.datetime.strptime(text, "%Y%m%d%H%M%S").replace(tzinfo=dt.UTC)
    return when.replace(microsecond=frac)


@dataclass
class ParsedSignerInfo:
    sid_kind: str  # issuer_serial | ski
    sid_issuer: bytes  # DER Name (issuer_serial)
    sid_serial: int
    sid_ski: bytes
    digest_oid: str
    signed_attrs: bytes | None  # DER as a SET (tag rewritten from [0] to 0x31)
    attrs: dict[str, list[bytes]]  # OID → DER values
    duplicate_attr: str | None
    sig_oid: str
    sig_params: bytes  # DER of parameters, b"" if absent
    signature: bytes
    unsigned: dict[str, list[bytes]] = field(default_factory=dict)


@dataclass
class ParsedSignedData:
    econtent_type: str
    econtent: bytes | None
    certificates: list[bytes]
    crls: list[bytes]
    ocsp: list[bytes]
    signer_infos: list[ParsedSignerInfo]


def _attributes(buf: bytes, start: int, end: int) -> tuple[dict[str, list[bytes]], str | None]:
    attrs: dict[str, list[bytes]] = {}
    duplicate = None
    for tag, cs, ce, _ in children(buf, start, end):
        if tag != SEQUENCE:
            raise ValueError("bad Attribute")
        parts = children(buf, cs, ce)
        if len(parts) != 2 or parts[0][0] != OID or parts[1][0] != SET:
            raise ValueError("bad Attribute")
        oid = oid_text(buf[parts[0][1] : parts[0][2]])
        values = [buf[p[3] : p[2]] for p in children(buf, parts[1][1], parts[1][2])]
        if oid in attrs:
            duplicate = oid
        attrs[oid] = values
    return attrs, duplicate


def _signer_info(buf: bytes, start: int, end: int) -> ParsedSignerInfo:
    parts = children(buf, start, end)
    if len(parts) < 5 or parts[0][0] != INTEGER:
        raise ValueError("bad SignerInfo")
    i = 1
    tag, cs, ce, _ = parts[i]
    if tag == SEQUENCE:
        ias = children(buf, cs, ce)
        if len(ias) != 2 or ias[0][0] != SEQUENCE or ias[1][0] != INTEGER:
            raise ValueError("bad IssuerAndSerialNumber")
        kind, issuer, serial, ski = (
            "issuer_serial",
            buf[ias[0][3] : ias[0][2]],
            integer(buf[ias[1][1] : ias[1][2]]),
            b"",
        )
    elif tag == 0x80:
        kind, issuer, serial, ski = "ski", b"", 0, buf[cs:ce]
    else:
        raise ValueError("bad SignerIdentifier")
    i += 1
    tag, cs, ce, _ = parts[i]
    if tag != SEQUENCE:
        raise ValueError("bad digestAlgorithm")
    alg = children(buf, cs, ce)
    digest_oid = oid_text(buf[alg[0][1] : alg[0][2]])
    i += 1
    signed_attrs = None
    attrs: dict[str, list[bytes]] = {}
    duplicate = None
    tag, cs, ce, el = parts[i]
    if tag == 0xA0:
        signed_attrs = b"\x31" + buf[el + 1 : ce]
        attrs, duplicate = _attributes(buf, cs, ce)
        i += 1
    tag, cs, ce, _ = parts[i]
    if tag != SEQUENCE:
        raise ValueError("bad signatureAlgorithm")
    alg = children(buf, cs, ce)
    sig_oid = oid_text(buf[alg[0][1] : alg[0][2]])
    sig_params = buf[alg[1][3] : alg[1][2]] if len(alg) > 1 else b""
    i += 1
    tag, cs, ce, _ = parts[i]
    if tag != OCTET_STRING:
        raise ValueError("bad signature")
    signature = buf[cs:ce]
    i += 1
    unsigned: dict[str, list[bytes]] = {}
    if i < len(parts) and parts[i][0] == 0xA1:
        unsigned, _dup = _attributes(buf, parts[i][1], parts[i][2])
    return ParsedSignerInfo(
        kind, issuer, serial, ski, digest_oid, signed_attrs, attrs, duplicate, sig_oid,
        sig_params, signature, unsigned,
    )  # fmt: skip


def _walk(buf: bytes) -> ParsedSignedData:
    tag, cs, ce = tlv(buf, 0, len(buf))
    if tag != SEQUENCE or ce != len(buf):
        raise ValueError("not a DER ContentInfo")
    top = children(buf, cs, ce)
    if len(top) != 2 or top[0][0] != OID or top[1][0] != 0xA0:
        raise ValueError("not a ContentInfo")
    if oid_text(buf[top[0][1] : top[0][2]]) != "1.2.840.113549.1.7.2":
        raise ValueError("not SignedData")
    tag, cs, ce = tlv(buf, top[1][1], top[1][2])
    if tag != SEQUENCE:
        raise ValueError("bad SignedData")
    parts = children(buf, cs, ce)
    if len(parts) < 4 or parts[0][0] != INTEGER or parts[1][0] != SET:
        raise ValueError("bad SignedData")
    encap = children(buf, parts[2][1], parts[2][2])
    if not encap or encap[0][0] != OID:
        raise ValueError("bad EncapsulatedContentInfo")
    econtent_type = oid_text(buf[encap[0][1] : encap[0][2]])
    econtent = None
    if len(encap) > 1:
        if encap[1][0] != 0xA0:
            raise ValueError("bad eContent")
        t, s, e = tlv(buf, encap[1][1], encap[1][2])
        if t != OCTET_STRING:
            raise ValueError("eContent is not a primitive OCTET STRING")
        econtent = buf[s:e]
    certs: list[bytes] = []
    crls: list[bytes] = []
    ocsps: list[bytes] = []
    signer_infos: list[ParsedSignerInfo] = []
    for tag, cs, ce, _el in parts[3:]:
        if tag == 0xA0:
            certs.extend(buf[p[3] : p[2]] for p in children(buf, cs, ce) if p[0] == SEQUENCE)
        elif tag == 0xA1:
            for t, s, e, el in children(buf, cs, ce):
                if t == SEQUENCE:
                    crls.append(buf[el:e])
                elif t == 0xA1:  # [1] OtherRevocationInfoFormat
                    other = children(buf, s, e)
                    if (
                        len(other) == 2
                        and other[0][0] == OID
                        and oid_text(buf[other[0][1] : other[0][2]]) == "1.3.6.1.5.5.7.16.2"
                    ):
                        ocsps.append(buf[other[1][3] : other[1][2]])
        elif tag == SET:
            signer_infos = [_signer_info(buf, s, e) for _t, s, e, _ in children(buf, cs, ce)]
    return ParsedSignedData(econtent_type, econtent, certs, crls, ocsps, signer_infos)


def parse_signed_data(der: bytes) -> ParsedSignedData:
    """Walk a DER (or BER, normalised first) ContentInfo holding SignedData."""
    try:
        return _walk(der)
    except (ValueError, IndexError) as exc:
        if "indefinite" not in str(exc):
            raise ValueError(str(exc)) from None
    from asn1crypto import cms

    try:
        normalised = cms.ContentInfo.load(der).dump(force=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(str(exc)) from None
    try:
        return _walk(normalised)
    except IndexError:
        raise ValueError("malformed CMS") from None


@dataclass
class ParsedTstInfo:
    policy: str
    imprint_oid: str
    hashed_message: bytes
    serial: int
    gen_time: dt.datetime
    accuracy: float | None
    nonce: int | None
    tsa_name_der: bytes | None


def parse_tst_info(der: bytes) -> ParsedTstInfo:
    try:
        tag, cs, ce = tlv(der, 0, len(der))
        if tag != SEQUENCE or ce != len(der):
            raise ValueError("bad TSTInfo")
        parts = children(der, cs, ce)
        if parts[0][0] != INTEGER or integer(der[parts[0][1] : parts[0][2]]) != 1:
            raise ValueError("bad TSTInfo version")
        policy = oid_text(der[parts[1][1] : parts[1][2]])
        imprint = children(der, parts[2][1], parts[2][2])
        alg = children(der, imprint[0][1], imprint[0][2])
        imprint_oid = oid_text(der[alg[0][1] : alg[0][2]])
        if imprint[1][0] != OCTET_STRING:
            raise ValueError("bad messageImprint")
        hashed = der[imprint[1][1] : imprint[1][2]]
        serial = integer(der[parts[3][1] : parts[3][2]])
        if parts[4][0] != GENERALIZED_TIME:
            raise ValueError("bad genTime")
        gen_time = parse_time(GENERALIZED_TIME, der[parts[4][1] : parts[4][2]])
        accuracy = None
        nonce = None
        tsa = None
        for tag, s, e, _el in parts[5:]:
            if tag == SEQUENCE:  # Accuracy
                seconds = millis = micros = 0
                for t2, s2, e2, _ in children(der, s, e):
                    if t2 == INTEGER:
                        seconds = integer(der[s2:e2])
                    elif t2 == 0x80:
                        millis = integer(der[s2:e2])
                    elif t2 == 0x81:
                        micros = integer(der[s2:e2])
                accuracy = seconds + millis / 1000 + micros / 1_000_000
            elif tag == INTEGER:
                nonce = integer(der[s:e])
            elif tag == 0xA0:
                tsa = der[s:e]
        return ParsedTstInfo(policy, imprint_oid, hashed, serial, gen_time, accuracy, nonce, tsa)
    except (IndexError, UnicodeDecodeError) as exc:
        raise ValueError(f"bad TSTInfo ({exc})") from None

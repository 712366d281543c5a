"""The strict DER reader and the RFC 6962 Merkle tree (property tests)."""

from __future__ import annotations

import contextlib
import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaincode import der
from chaincode.merkle import leaf_hash, node_hash, root, tree, verify_inclusion


def test_parse_and_values() -> None:
    el = der.parse(bytes.fromhex("300b0201010201ff06032a8648"))
    a, b, c = el.children()
    assert (der.int_value(a), der.int_value(b), der.oid_value(c)) == (1, -1, "1.2.840")
    signed_data = der.parse(bytes.fromhex("06092a864886f70d010702"))
    assert der.oid_value(signed_data) == "1.2.840.113549.1.7.2"


@pytest.mark.parametrize(
    ("hexdata", "message"),
    [
        ("3080", "indefinite length"),
        ("30810100", "non-minimal DER length"),
        ("3003020101ff", "trailing bytes"),
        ("300502", "DER length exceeds"),
        ("30", "truncated"),
        ("1f0100", "multi-byte tags"),
        ("3084ffffffff", "length exceeds"),
    ],
)
def test_rejects(hexdata: str, message: str) -> None:
    with pytest.raises(der.DerError, match=message):
        der.parse(bytes.fromhex(hexdata))


def test_rejects_non_minimal_integer_and_oid_and_depth() -> None:
    with pytest.raises(der.DerError, match="non-minimal INTEGER"):
        der.int_value(der.parse(bytes.fromhex("02020001")))
    with pytest.raises(der.DerError, match="non-minimal OBJECT IDENTIFIER"):
        der.oid_value(der.parse(bytes.fromhex("06032a8001")))
    deep = b"\x05\x00"
    for _ in range(40):
        deep = (
            bytes([0x30, len(deep)]) + deep
            if len(deep) < 128
            else bytes([0x30, 0x81, len(deep)]) + deep
        )
    el = der.parse(deep)
    with pytest.raises(der.DerError, match="too deeply"):
        while True:
            el = el.children()[0]


def _walk(el: der.Element) -> None:
    if el.constructed:
        for child in el.children():
            _walk(child)


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_fuzz_only_der_errors(data: bytes) -> None:
    with contextlib.suppress(der.DerError):
        _walk(der.parse(data))


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1 Merkle tree hash, written independently of chaincode.merkle."""
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)
    return node_hash(_mth(leaves[:k]), _mth(leaves[k:]))


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=70), st.data())
def test_proofs_verify_and_fail_when_tampered(n: int, data: st.DataObject) -> None:
    leaves = [leaf_hash(b"event %d" % i) for i in range(n)]
    root, paths = tree(leaves)
    assert root == _mth(leaves)
    for i in range(n):
        assert verify_inclusion(leaves[i], i, n, paths[i], root)
    i = data.draw(st.integers(min_value=0, max_value=n - 1))
    assert not verify_inclusion(leaf_hash(b"forged"), i, n, paths[i], root)
    if n > 1:
        assert not verify_inclusion(leaves[i], (i + 1) % n, n, paths[i], root)
        j = data.draw(st.integers(min_value=0, max_value=len(paths[i]) - 1))
        bad = list(paths[i])
        bad[j] = hashlib.sha256(bad[j]).digest()
        assert not verify_inclusion(leaves[i], i, n, bad, root)
        assert not verify_inclusion(leaves[i], i, n, paths[i][:-1], root)


def test_root_alone_is_the_rfc_6962_root() -> None:
    """Pairing level by level (a block's root) gives the split-at-a-power-of-two tree."""
    leaves = [leaf_hash(b"tx %d" % i) for i in range(300)]
    for n in [*range(1, 130), 255, 256, 257, 300]:
        assert root(leaves[:n]) == _mth(leaves[:n]) == tree(leaves[:n])[0], n


def test_single_leaf_and_empty() -> None:
    top, paths = tree([leaf_hash(b"x")])
    assert top == leaf_hash(b"x") and paths == [[]]
    assert root([leaf_hash(b"x")]) == leaf_hash(b"x")
    with pytest.raises(ValueError):
        tree([])
    with pytest.raises(ValueError):
        root([])

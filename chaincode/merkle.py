"""RFC 6962/9162 Merkle trees over SHA-256 with domain-separated leaves and nodes.

>>> leaves = [leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")]
>>> root, paths = tree(leaves)
>>> verify_inclusion(leaves[2], 2, 3, paths[2], root)
True

leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right); the tree splits at
the largest power of two below n, so no leaf is ever duplicated (no CVE-2012-2459).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["leaf_hash", "node_hash", "root", "tree", "verify_inclusion"]


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root(leaves: Sequence[bytes]) -> bytes:
    """The root of ``leaves`` (leaf hashes) alone, without the audit paths of :func:`tree`.

    Level by level: neighbours are paired and an odd last node moves up unchanged, which
    gives the RFC 6962 tree (its split at the largest power of two below n leaves every
    odd node at the right edge). n - 1 node hashes and no paths: a block's root.
    """
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    level = list(leaves)
    while len(level) > 1:
        odd = level[-1] if len(level) % 2 else None
        level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if odd is not None:
            level.append(odd)
    return level[0]


def tree(leaves: Sequence[bytes]) -> tuple[bytes, list[list[bytes]]]:
    """The root of ``leaves`` (leaf hashes) and each leaf's audit path (bottom up)."""
    if not leaves:
        raise ValueError("a Merkle tree needs at least one leaf")
    if len(leaves) == 1:  # the common one-event batch: the leaf is the root
        return leaves[0], [[]]
    paths: list[list[bytes]] = [[] for _ in leaves]

    def build(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return leaves[lo]
        k = lo + _split(hi - lo)
        left, right = build(lo, k), build(k, hi)
        for i in range(lo, k):
            paths[i].append(right)
        for i in range(k, hi):
            paths[i].append(left)
        return node_hash(left, right)

    return build(0, len(leaves)), paths


def verify_inclusion(
    leaf: bytes, index: int, size: int, path: Sequence[bytes], root: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: does ``path`` prove ``leaf`` at ``index`` in a tree of ``size``?"""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root

"""The creator check of :mod:`chaincode.creators` on the embedded ledger's committed state.

>>> verifier = CreatorVerifier()
>>> creator = verifier.check(view, signed, proposal)   # chaincode Creator, or Rejected

The rule and its cache live in ``chaincode.creators`` (the Fabric chaincode server applies
the same code, decision 0005); here a :class:`StateView` feeds it and its refusals become
:class:`node.errors.Rejected` with the same codes, statuses and messages. The ledger calls
:meth:`invalidate` after any block that writes member, anchor or CRL keys.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from chaincode import creators as _creators
from chaincode.envelope import Proposal, ProposalRefused, SignedProposal
from chaincode.stub import Creator, partial_key_range

from ..errors import Rejected
from .stub import StateView

__all__ = ["TRUST_PREFIXES", "CreatorVerifier"]

TRUST_PREFIXES = _creators.TRUST_PREFIXES


class _ViewReader:
    """A StateView as a chaincode TrustReader (values without versions)."""

    __slots__ = ("view",)

    def __init__(self, view: StateView) -> None:
        self.view = view

    def get_state(self, key: str) -> bytes | None:
        found = self.view.get(key)
        return None if found is None else found[1]

    def get_state_by_partial_composite_key(
        self, object_type: str, attributes: Sequence[str]
    ) -> Iterator[tuple[str, bytes]]:
        start, end = partial_key_range(object_type, attributes)
        for key, _ver, value in self.view.range(start, end):
            yield key, value


class CreatorVerifier:
    """Checks creators against the trust list on the ledger; caches by certificate."""

    __slots__ = ("_reader", "_verifier")

    def __init__(self) -> None:
        self._verifier = _creators.CreatorVerifier()
        self._reader: _ViewReader | None = None

    def invalidate(self) -> None:
        self._verifier.invalidate()

    def check(self, view: StateView, signed: SignedProposal, proposal: Proposal) -> Creator:
        reader = self._reader
        if reader is None or reader.view is not view:
            reader = self._reader = _ViewReader(view)
        try:
            return self._verifier.check(reader, signed, proposal)
        except ProposalRefused as exc:
            raise Rejected(exc.code, exc.message, exc.status) from None

    def check_genesis(
        self, signed: SignedProposal, proposal: Proposal, genesis: dict[str, Any]
    ) -> Creator:
        """Block 0: the InitLedger creator against the anchors it brings."""
        try:
            return self._verifier.check_genesis(signed, proposal, genesis)
        except ProposalRefused as exc:
            raise Rejected(exc.code, exc.message, exc.status) from None

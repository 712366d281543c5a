"""The Ledger interface that the node's services use, whichever backend runs it.

>>> receipt = ledger.submit(make_proposal(officer, "SuspendAeo", [arg], channel=…, timestamp=…))
>>> receipt.code, receipt.block, receipt.status
('VALID', 42, 200)
>>> ledger.evaluate("IsRecognised", [query]).payload

``submit`` returns once the transaction's block is durable (or at once when the node
rejects the proposal: ``receipt.code`` names why and nothing was recorded). The embedded
backend (node.embedded) implements it now; the Fabric backend implements it over the
peer Gateway service.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from chaincode.router import Response
from chaincode.stub import Creator

from .proposal import SignedProposal

__all__ = [
    "INVALID_CODES",
    "REJECTED_CODES",
    "BlockView",
    "Ledger",
    "LedgerInfo",
    "Receipt",
    "TxChanges",
    "TxView",
]

#: codes of transactions that are ordered into a block but change nothing (as in Fabric)
INVALID_CODES = ("MVCC_READ_CONFLICT", "PHANTOM_READ_CONFLICT")
#: codes of proposals refused before ordering: never recorded
REJECTED_CODES = (
    "BAD_PROPOSAL",
    "BAD_SIGNATURE",
    "BAD_TIMESTAMP",
    "WRONG_CHANNEL",
    "DUPLICATE_TXID",
    "UNTRUSTED_CREATOR",
    "REVOKED_CREATOR",
    "CHAINCODE_ERROR",
)


@dataclass(frozen=True)
class Receipt:
    """What became of one submitted proposal."""

    tx_id: str
    code: str  # VALID, one of INVALID_CODES (in a block) or REJECTED_CODES (not recorded)
    status: int  # the contract's status (200 when VALID), or the HTTP-style refusal status
    message: str
    payload: bytes = b""
    block: int | None = None
    event: tuple[str, bytes] | None = None

    @property
    def valid(self) -> bool:
        return self.code == "VALID"


@dataclass(frozen=True)
class TxView:
    tx_id: str
    index: int
    code: str
    function: str
    creator_msp: str
    timestamp_us: int
    record: dict[str, Any]


@dataclass(frozen=True)
class BlockView:
    number: int
    hash: str
    header: dict[str, Any]
    signature: bytes
    timestamp_token: bytes | None
    txs: list[TxView] = field(default_factory=list)


@dataclass(frozen=True)
class TxChanges:
    """The committed effect of one valid transaction: what an off-chain index is fed from."""

    block: int
    index: int
    tx_id: str
    function: str
    creator_msp: str
    timestamp_us: int
    writes: tuple[tuple[str, bytes | None], ...]  # (key, value or None when deleted), key order
    event: tuple[str, bytes] | None


@dataclass(frozen=True)
class LedgerInfo:
    channel: str
    height: int
    last_hash: str
    tx_count: int
    valid_tx_count: int
    state_keys: int


class Ledger(Protocol):
    def submit(self, proposal: SignedProposal) -> Receipt: ...

    def submit_many(self, proposals: Sequence[SignedProposal]) -> list[Receipt]: ...

    def evaluate(
        self, function: str, args: Sequence[str], creator: Creator | None = None
    ) -> Response: ...

    def info(self) -> LedgerInfo: ...

    @property
    def height(self) -> int:
        """Blocks committed (cheap; ``info()`` also counts transactions and state keys)."""
        ...

    def block(self, number: int) -> BlockView: ...

    def events(self, from_block: int = 0) -> Iterator[tuple[int, str, str, bytes]]:
        """(block, tx_id, event name, payload) of valid transactions, in ledger order."""
        ...

    def changes(self, from_block: int = 0) -> Iterator[TxChanges]:
        """The writes and event of every valid transaction from ``from_block``, in order."""
        ...

"""The Stub the contracts run on in the embedded ledger, recording a read/write set.

>>> stub = TxStub(view, creator, tx_id, (seconds, nanos))
>>> response = invoke(stub, "AnchorEvents", [batch])
>>> stub.reads, stub.ranges, stub.writes, stub.event

Reads see the committed state of the last block (never this transaction's writes nor
those of earlier transactions in the block being built, as on Fabric), and are recorded
with the version they saw; the ledger then validates them (MVCC) before applying writes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from chaincode.stub import Creator, KeyModification, RangeReads

__all__ = ["StateView", "TxStub"]


class StateView(Protocol):
    """Committed state, as a block's transactions see it."""

    def get(self, key: str) -> tuple[int, bytes] | None: ...

    def range(self, start: str, end: str) -> Iterator[tuple[str, int, bytes]]: ...

    def history(self, key: str) -> list[tuple[int, bytes | None, bytes, int]]: ...


class TxStub(RangeReads):
    """One transaction's view of the ledger plus what it read and wants to write."""

    __slots__ = ("_creator", "_timestamp", "_tx_id", "_view", "event", "ranges", "reads", "writes")

    def __init__(
        self,
        view: StateView,
        creator: Creator | None,
        tx_id: str,
        timestamp: tuple[int, int],
    ) -> None:
        self._view = view
        self._creator = creator
        self._tx_id = tx_id
        self._timestamp = timestamp
        self.reads: dict[str, int | None] = {}
        self.ranges: list[tuple[str, str]] = []
        self.writes: dict[str, bytes | None] = {}
        self.event: tuple[str, bytes] | None = None

    # ---------------------------------------------------------------- state
    def get_state(self, key: str) -> bytes | None:
        found = self._view.get(key)
        if found is None:
            self.reads[key] = None
            return None
        self.reads[key] = found[0]
        return found[1]

    def put_state(self, key: str, value: bytes) -> None:
        if not key:
            raise ValueError("empty key")
        key.encode()  # refuses lone surrogates here, not at commit
        self.writes[key] = bytes(value)

    def del_state(self, key: str) -> None:
        if not key:
            raise ValueError("empty key")
        self.writes[key] = None

    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        self.ranges.append((start, end))
        for key, ver, value in self._view.range(start, end):
            self.reads[key] = ver
            yield key, value

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        for ver, value, tx_id, ts_ns in self._view.history(key):
            del ver
            seconds, nanos = divmod(ts_ns, 1_000_000_000)
            yield KeyModification(bytes(tx_id).hex(), (seconds, nanos), value or b"", value is None)

    # ------------------------------------------------------------- transaction
    def get_creator(self) -> Creator:
        if self._creator is None:
            return Creator("", b"")
        return self._creator

    def get_tx_id(self) -> str:
        return self._tx_id

    def get_tx_timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ValueError("event name must not be empty")
        self.event = (name, bytes(payload))

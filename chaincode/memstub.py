"""An in-memory Stub for tests: state, per-key history and one event per transaction.

>>> stub = MemStub()
>>> response = stub.invoke("GetMembers", [], creator=kz_admin, timestamp=(1767225600, 0))

Each transaction runs against the committed state (reads never see the transaction's own
writes, as on Fabric); its writes and its event are committed only when the contract
answers 200. A test chooses the creator, tx id and timestamp of every transaction.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from .router import Response, invoke
from .stub import Creator, KeyModification, RangeReads

__all__ = ["ChaincodeEvent", "MemStub"]


@dataclass(frozen=True)
class ChaincodeEvent:
    tx_id: str
    name: str
    payload: bytes


@dataclass
class _Tx:
    tx_id: str
    creator: Creator
    timestamp: tuple[int, int]
    writes: dict[str, bytes | None] = field(default_factory=dict)
    event: tuple[str, bytes] | None = None


class MemStub(RangeReads):
    """A Stub over dictionaries; see the module docstring."""

    def __init__(self) -> None:
        self.state: dict[str, bytes] = {}
        self._keys: list[str] = []
        self.history: dict[str, list[KeyModification]] = {}
        self.events: list[ChaincodeEvent] = []
        self.tx_ids: set[str] = set()
        self._tx: _Tx | None = None
        self._counter = 0

    # ------------------------------------------------------------ transactions
    def begin(self, creator: Creator, timestamp: tuple[int, int], tx_id: str | None = None) -> None:
        if self._tx is not None:
            raise RuntimeError("a transaction is already open")
        if tx_id is None:
            self._counter += 1
            tx_id = f"tx{self._counter:08d}"
        if tx_id in self.tx_ids:
            raise ValueError(f"duplicate transaction id {tx_id}")
        self._tx = _Tx(tx_id, creator, timestamp)

    def commit(self) -> None:
        tx = self._current()
        for key in sorted(tx.writes):
            value = tx.writes[key]
            if value is None:
                if key in self.state:
                    del self.state[key]
                    self._keys.pop(bisect.bisect_left(self._keys, key))
            else:
                if key not in self.state:
                    bisect.insort(self._keys, key)
                self.state[key] = value
            self.history.setdefault(key, []).append(
                KeyModification(tx.tx_id, tx.timestamp, value or b"", value is None)
            )
        if tx.event is not None:
            self.events.append(ChaincodeEvent(tx.tx_id, *tx.event))
        self.tx_ids.add(tx.tx_id)
        self._tx = None

    def rollback(self) -> None:
        self._tx = None

    def invoke(
        self,
        function: str,
        args: Sequence[str],
        *,
        creator: Creator,
        timestamp: tuple[int, int],
        tx_id: str | None = None,
    ) -> Response:
        """Run one transaction through the router; commit it when the answer is 200."""
        self.begin(creator, timestamp, tx_id)
        try:
            response = invoke(self, function, list(args))
        except BaseException:
            self.rollback()
            raise
        if response.status == 200:
            self.commit()
        else:
            self.rollback()
        return response

    def _current(self) -> _Tx:
        if self._tx is None:
            raise RuntimeError("no transaction is open")
        return self._tx

    # -------------------------------------------------------------------- Stub
    def get_state(self, key: str) -> bytes | None:
        if self._tx is None:
            self._current()  # raises
        return self.state.get(key)

    def put_state(self, key: str, value: bytes) -> None:
        if not key:
            raise ValueError("empty key")
        tx = self._tx if self._tx is not None else self._current()
        tx.writes[key] = value if type(value) is bytes else bytes(value)

    def del_state(self, key: str) -> None:
        self._current().writes[key] = None

    def _range(self, start: str, end: str) -> Iterator[tuple[str, bytes]]:
        self._current()
        lo = bisect.bisect_left(self._keys, start)
        hi = bisect.bisect_left(self._keys, end) if end else len(self._keys)
        for key in self._keys[lo:hi]:
            yield key, self.state[key]

    def get_history_for_key(self, key: str) -> Iterator[KeyModification]:
        self._current()
        return iter(list(self.history.get(key, ())))

    def get_creator(self) -> Creator:
        return self._current().creator

    def get_tx_id(self) -> str:
        return self._current().tx_id

    def get_tx_timestamp(self) -> tuple[int, int]:
        return self._current().timestamp

    def set_event(self, name: str, payload: bytes) -> None:
        if not name:
            raise ValueError("event name must not be empty")
        self._current().event = (name, bytes(payload))

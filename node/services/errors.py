"""Service errors: each a :class:`node.errors.NodeError` with an HTTP status and a code.

>>> contract_error(404, "AEO certificate KZ-AEO-2026-000009 not found")
NotFound('AEO certificate KZ-AEO-2026-000009 not found')

A contract's answer (on a query or a submitted transaction) maps by status; a proposal
the node refused before ordering is :class:`TransactionRejected` (its ledger code, e.g.
``BAD_SIGNATURE``, and status); one ordered but invalidated by a read conflict is
:class:`TransactionConflict` (409, ``MVCC_READ_CONFLICT``: build a new proposal).
The API turns any of them into problem+json with ``status`` and ``code``.
"""

from __future__ import annotations

from ..errors import NodeError, Rejected

__all__ = [
    "Conflict",
    "ContractError",
    "ContractFailure",
    "Forbidden",
    "InvalidArguments",
    "NotFound",
    "TransactionConflict",
    "TransactionRejected",
    "contract_error",
]


class ContractError(NodeError):
    """The contract answered with an error status; ``tx_id`` when it was a transaction."""

    code = "CHAINCODE_ERROR"
    status = 500

    def __init__(self, message: str, tx_id: str | None = None) -> None:
        super().__init__(message)
        self.tx_id = tx_id

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class InvalidArguments(ContractError):
    code = "INVALID_ARGUMENTS"
    status = 400


class Forbidden(ContractError):
    code = "FORBIDDEN"
    status = 403


class NotFound(ContractError):
    code = "NOT_FOUND"
    status = 404


class Conflict(ContractError):
    code = "CONFLICT"
    status = 409


class ContractFailure(ContractError):
    """The contract failed (500): a bug, never the caller's fault."""

    code = "CHAINCODE_FAILURE"
    status = 500


_BY_STATUS: dict[int, type[ContractError]] = {
    400: InvalidArguments,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
}


def contract_error(status: int, message: str, tx_id: str | None = None) -> ContractError:
    return _BY_STATUS.get(status, ContractFailure)(message, tx_id)


class TransactionRejected(Rejected):
    """The node refused the proposal before ordering it; nothing was recorded."""

    def __init__(self, code: str, message: str, status: int, tx_id: str) -> None:
        super().__init__(code, message, status)
        self.tx_id = tx_id


class TransactionConflict(NodeError):
    """Ordered into ``block`` but invalid (a read conflict): it changed nothing."""

    status = 409

    def __init__(self, code: str, message: str, tx_id: str, block: int | None) -> None:
        super().__init__(message)
        self.code = code
        self.tx_id = tx_id
        self.block = block

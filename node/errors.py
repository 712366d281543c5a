"""One error root for the node: every message is one line, safe to show to a user.

>>> try:
...     raise Rejected("BAD_SIGNATURE", "the proposal signature does not verify")
... except NodeError as exc:
...     print(exc.code, exc)
BAD_SIGNATURE the proposal signature does not verify

``cli`` turns a :class:`NodeError` into an exit code and ``api`` into problem+json with
``status``; nothing else in the node formats errors.
"""

from __future__ import annotations

__all__ = ["LedgerCorrupted", "LedgerError", "NodeError", "ProposalError", "Rejected"]


class NodeError(Exception):
    """Root of every node error."""

    #: HTTP status an API maps this error to
    status: int = 400
    #: short machine-readable code
    code: str = "NODE_ERROR"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class ProposalError(NodeError):
    """A signed proposal that cannot be parsed or is inconsistent."""

    code = "BAD_PROPOSAL"


class Rejected(NodeError):
    """A proposal the node refuses before ordering (nothing is recorded)."""

    def __init__(self, code: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class LedgerError(NodeError):
    """The ledger cannot be opened, created or read (wrong path, wrong channel …)."""

    code = "LEDGER_ERROR"
    status = 409


class LedgerCorrupted(LedgerError):
    """Stored data does not match what the chain proves; names the first bad block."""

    code = "LEDGER_CORRUPTED"
    status = 500

    def __init__(self, block: int | None, message: str) -> None:
        where = "ledger" if block is None else f"block {block}"
        super().__init__(f"{where}: {message}")
        self.block = block

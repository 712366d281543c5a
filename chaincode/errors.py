"""Contract errors: each carries the response status the router returns.

>>> raise NotFound("AEO certificate KZ-AEO-2025-000123 not found")
"""

from __future__ import annotations

__all__ = ["BadRequest", "Conflict", "ContractError", "Forbidden", "NotFound"]


class ContractError(Exception):
    """The one error root of the contracts: a status code and a safe one-line message."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(ContractError):
    """Malformed arguments (400)."""

    status = 400


class Forbidden(ContractError):
    """The creator may not do this (403)."""

    status = 403


class NotFound(ContractError):
    """No such record (404)."""

    status = 404


class Conflict(ContractError):
    """An invalid lifecycle step or a conflict with the ledger state (409)."""

    status = 409

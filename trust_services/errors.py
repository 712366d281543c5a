"""One error root for the trust-services layer.

Every error a user can cause (bad input, wrong passphrase, unknown organisation …) is a
:class:`TrustServiceError` with a one-line, key-free message. ``cli`` turns it into an
exit code and ``api`` into problem+json, each in exactly one place.

>>> try:
...     raise PassphraseError("wrong passphrase for the key store of KZ-CUSTOMS")
... except TrustServiceError as exc:
...     print(exc)
wrong passphrase for the key store of KZ-CUSTOMS
"""

from __future__ import annotations

__all__ = [
    "InputError",
    "KeyStoreError",
    "PassphraseError",
    "PkiError",
    "TimestampError",
    "TrustServiceError",
]


class TrustServiceError(Exception):
    """Root of every trust-services error; its message is safe to show to a user."""

    #: short machine-readable kind, used as the problem+json ``type`` suffix
    kind: str = "trust-service-error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InputError(TrustServiceError):
    """Input that cannot be used: malformed DER, a truncated PDF, an unreadable file."""

    kind = "bad-input"


class PkiError(TrustServiceError):
    """A PKI operation that cannot be done (unknown org, unknown serial, existing PKI)."""

    kind = "pki"


class KeyStoreError(TrustServiceError):
    """A key cannot be reached: missing key, unreachable token, no passphrase source."""

    kind = "key-store"


class PassphraseError(KeyStoreError):
    """The passphrase or PIN does not open the key store."""

    kind = "passphrase"


class TimestampError(TrustServiceError):
    """A timestamp could not be obtained or the TSA refused the request."""

    kind = "timestamp"

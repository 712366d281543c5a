"""Shared CLI plumbing: the one place errors become messages and exit codes."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console

from node.errors import NodeError
from trust_services.errors import TrustServiceError
from trust_services.keystore import resolve_passphrase
from trust_services.pki import OrgPki

__all__ = [
    "EXIT_ERROR",
    "EXIT_FAILED",
    "EXIT_INDETERMINATE",
    "DirOpt",
    "OrgOpt",
    "PassphraseFileOpt",
    "PinFileOpt",
    "console",
    "err_console",
    "fail",
    "handle_errors",
    "open_pki",
]

#: exit codes (docs/cli.md): 0 success / TOTAL-PASSED
EXIT_FAILED = 1  #: validation TOTAL-FAILED
EXIT_INDETERMINATE = 2  #: validation INDETERMINATE
EXIT_ERROR = 3  #: a usage or input error (one line on stderr)

console = Console()
err_console = Console(stderr=True)

P = ParamSpec("P")
R = TypeVar("R")

DirOpt = Annotated[
    Path, typer.Option("--dir", help="Node directory holding the organisations' PKIs.")
]
OrgOpt = Annotated[str, typer.Option("--org", help="Organisation id, e.g. KZ-CUSTOMS.")]
PassphraseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="File holding the key store passphrase (else CARAVAN_PASSPHRASE, else a prompt).",
    ),
]
PinFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--pin-file",
        help="File holding the PKCS#11 user PIN (else CARAVAN_PKCS11_PIN, else a prompt).",
    ),
]


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def handle_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn every expected error into one line on stderr and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (TrustServiceError, NodeError) as exc:
            raise fail(str(exc)) from None
        except FileNotFoundError as exc:
            raise fail(f"no such file: {exc.filename}") from None
        except (IsADirectoryError, PermissionError) as exc:
            raise fail(f"cannot open {exc.filename}: {exc.strerror}") from None
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None

    return wrapper


def open_pki(
    root: Path,
    org: str,
    passphrase_file: Path | None = None,
    pin_file: Path | None = None,
    *,
    unlock: bool = True,
) -> OrgPki:
    pki = OrgPki(root, org)
    if unlock:
        passphrase = resolve_passphrase(passphrase_file)
        pin = None
        if pki.config.hsm is not None:
            pin = resolve_passphrase(pin_file, env_var="CARAVAN_PKCS11_PIN", what="PKCS#11 PIN")
        pki.unlock(passphrase, pin)
    return pki


def read_input(path: Path, what: str = "file", limit: int = 512 * 1024 * 1024) -> bytes:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise fail(f"no such {what}: {path}") from None
    if size > limit:
        raise fail(f"{what} {path} is larger than {limit // (1024 * 1024)} MiB")
    return path.read_bytes()


def stdout_bytes(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def print_more(page: Mapping[str, Any]) -> None:
    """After a listed page: how to ask for the next one, if there is one."""
    if page.get("next_cursor"):
        console.print(f"more: --cursor {page['next_cursor']}", highlight=False, soft_wrap=True)

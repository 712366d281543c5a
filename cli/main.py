"""The `caravan` command: every operation a customs IT team or a verifier has.

Exit codes: 0 success (for ``verify``: TOTAL-PASSED), 1 TOTAL-FAILED, 2 INDETERMINATE,
3 a usage or input error (one line on stderr). See docs/cli.md.
"""

from __future__ import annotations

import sys

import typer

from . import pki
from ._common import EXIT_ERROR, err_console

app = typer.Typer(
    name="caravan",
    help="Caravan: ledger and trust services for customs administrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(pki.app, name="pki")

for _module in (
    "signing",
    "tsa",
    "verify",
    "demo",
    "ledger",
    "node",
    "aeo",
    "mra",
    "recognition",
    "trace",
    "sez",
    "chaincode",
    "network",
):
    try:
        __import__(f"cli.{_module}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"cli.{_module}":
            raise
    else:
        import sys as _sys

        _sys.modules[f"cli.{_module}"].register(app)


def run() -> None:
    """The console script. A usage error (unknown option, missing argument) exits 3 —
    an input error — never the 2 that means INDETERMINATE for `verify` (docs/cli.md)."""
    try:
        result = app(standalone_mode=False)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except Exception as exc:
        # click's usage and parameter errors (Typer vendors click, so match by shape)
        show, code = getattr(exc, "show", None), getattr(exc, "exit_code", None)
        if not (callable(show) and isinstance(code, int)):
            raise
        show()
        sys.exit(EXIT_ERROR if code == 2 else code)
    sys.exit(result if isinstance(result, int) else 0)


if __name__ == "__main__":
    run()

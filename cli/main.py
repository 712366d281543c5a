"""The `caravan` command: every operation a customs IT team or a verifier has.

Exit codes: 0 success (for ``verify``: TOTAL-PASSED), 1 TOTAL-FAILED, 2 INDETERMINATE,
3 a usage or input error (one line on stderr). See docs/cli.md.
"""

from __future__ import annotations

import typer

from . import pki

app = typer.Typer(
    name="caravan",
    help="Caravan: ledger and trust services for customs administrations.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(pki.app, name="pki")

for _module in ("signing", "tsa", "verify", "demo"):
    try:
        __import__(f"cli.{_module}")
    except ModuleNotFoundError as _exc:  # a command module not written yet
        if _exc.name != f"cli.{_module}":
            raise
    else:
        import sys as _sys

        _sys.modules[f"cli.{_module}"].register(app)


def run() -> None:
    app()


if __name__ == "__main__":
    run()

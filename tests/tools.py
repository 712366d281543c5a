"""Helpers for tests that need an external tool (openssl, pdfsig, softhsm2-util …).

Locally a missing tool skips the test with the reason; in CI (CI=true) it fails, because
CI installs every tool and must skip nothing.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

__all__ = ["require_tool", "run_tool"]


def require_tool(name: str, package: str | None = None) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (apt package {package or name}; `make test` installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_tool(*args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, args))} exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}"
        )
    return result

"""Real SoftHSM2 tokens for the PKCS#11 tests (a helper module; import its fixtures).

SoftHSM2 reads ``SOFTHSM2_CONF`` when the library is initialised, and python-pkcs11 loads
a library once per process, so one configuration (a session-scoped temporary token
directory) serves the whole test session. Each test gets a fresh token with a label of
its own; the module is re-initialised after the token is made so that it lists it (which
ends every session of earlier tests).

    from tests.softhsm import softhsm_config, softhsm_token  # noqa: F401 (fixtures)

    def test_x(softhsm_token: SoftHsmToken) -> None:
        store = Pkcs11KeyStore(*softhsm_token)

Without ``softhsm2-util`` or ``libsofthsm2.so`` the tests are skipped (and fail in CI,
which installs them — see tests/tools.py).
"""

from __future__ import annotations

import itertools
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.tools import require_tool
from trust_services.pkcs11 import reinitialize_module

__all__ = ["PIN", "SO_PIN", "SoftHsmConfig", "SoftHsmToken", "softhsm_config", "softhsm_token"]

PIN = b"1234"
SO_PIN = "5678"
MODULE_ENV = "CARAVAN_SOFTHSM_MODULE"
MODULE_CANDIDATES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)

_token_numbers = itertools.count(1)


class SoftHsmConfig(NamedTuple):
    util: str
    module: str
    conf: Path


class SoftHsmToken(NamedTuple):
    """What ``Pkcs11KeyStore(module, token_label, pin)`` needs."""

    module: str
    label: str
    pin: bytes


def find_module() -> str | None:
    configured = os.environ.get(MODULE_ENV)
    if configured:
        return configured if Path(configured).is_file() else None
    return next((m for m in MODULE_CANDIDATES if Path(m).is_file()), None)


@pytest.fixture(scope="session")
def softhsm_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsmConfig]:
    """A SoftHSM2 configuration of the test session, with an empty token directory."""
    util = require_tool("softhsm2-util", "softhsm2")
    module = find_module()
    if module is None:
        message = (
            f"libsofthsm2.so not found (apt package softhsm2, or set {MODULE_ENV}); "
            f"looked in {', '.join(MODULE_CANDIDATES)}"
        )
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("softhsm")
    tokens = base / "tokens"
    tokens.mkdir()
    conf = base / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\n"
        "objectstore.backend = file\n"
        "log.level = ERROR\n"
        "slots.removable = false\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        # in case the module was loaded earlier in the session with another configuration
        reinitialize_module(module)
        yield SoftHsmConfig(util, module, conf)


def init_token(config: SoftHsmConfig, label: str, pin: bytes = PIN) -> SoftHsmToken:
    """Initialise a new token ``label`` and make the loaded module list it."""
    result = subprocess.run(
        [
            config.util,
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            pin.decode(),
            "--so-pin",
            SO_PIN,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SOFTHSM2_CONF": str(config.conf)},
    )
    if result.returncode != 0:
        raise AssertionError(f"softhsm2-util --init-token failed:\n{result.stdout}{result.stderr}")
    reinitialize_module(config.module)
    return SoftHsmToken(config.module, label, pin)


@pytest.fixture
def softhsm_token(softhsm_config: SoftHsmConfig) -> SoftHsmToken:
    """A fresh, empty token (user PIN ``1234``) for one test."""
    return init_token(softhsm_config, f"caravan-test-{next(_token_numbers)}")

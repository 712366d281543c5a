"""Dependencies point one way (ARCHITECTURE.md): cli, api → node → chaincode, trust_services.

The contracts must run alone in a chaincode container: they import only the standard
library and `cryptography`; the chaincode server that serves them to a Fabric peer
(chaincode/server/) adds gRPC and Fabric's protocol buffers, nothing of the node.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PROJECT = {"chaincode", "trust_services", "node", "api", "cli"}
ALLOWED = {
    "chaincode": set(),
    "trust_services": set(),
    "node": {"chaincode", "trust_services"},
    "api": {"node", "chaincode", "trust_services"},
    "cli": {"node", "api", "chaincode", "trust_services"},
}


def imports_of(package: str, exclude: str | None = None) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        if exclude and path.is_relative_to(ROOT / exclude):
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", sorted(PROJECT))
def test_dependency_direction(package: str) -> None:
    used = set(imports_of(package)) & PROJECT - {package}
    assert used <= ALLOWED[package], f"{package} must not import {used - ALLOWED[package]}"


def test_chaincode_imports_only_stdlib_and_cryptography() -> None:
    allowed = set(sys.stdlib_module_names) | {"cryptography", "chaincode", "__future__"}
    found = imports_of("chaincode", exclude="chaincode/server")
    extra = {name: files for name, files in found.items() if name not in allowed}
    assert not extra, f"chaincode imports third-party modules: {extra}"


def test_chaincode_server_adds_only_grpc_and_fabric_protos() -> None:
    allowed = set(sys.stdlib_module_names) | {
        "cryptography",
        "chaincode",
        "__future__",
        "grpc",
        "google",
        "fabric_protos",
        "greenlet",
    }
    found = imports_of("chaincode/server")
    extra = {name: files for name, files in found.items() if name not in allowed}
    assert not extra, f"the chaincode server imports more than gRPC and protos: {extra}"

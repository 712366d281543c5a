"""The chaincode-as-a-service package ``peer lifecycle chaincode install`` takes.

A ccaas package is a gzipped tar of ``metadata.json`` (``{"type": "ccaas", "label"}``) and
``code.tar.gz``, itself a gzipped tar of ``connection.json`` (where the peer dials the
chaincode server). The package id the peer computes is ``<label>:<sha256 of the
package>``; the chaincode server registers under that id. The archive is byte-for-byte
reproducible (fixed times and owners), so regenerating gives the same package id.

>>> pkg = ccaas_package("caravan_1.0", {"address": "127.0.0.1:7100", "dial_timeout": "10s",
...                                     "tls_required": False})
>>> package_id("caravan_1.0", pkg).startswith("caravan_1.0:")
True
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from typing import Any

__all__ = ["ccaas_package", "connection_json", "package_id"]


def _tar_gz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size = len(files[name])
            info.mode = 0o644
            info.mtime = 0
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(files[name]))
    return gzip.compress(raw.getvalue(), mtime=0)


def connection_json(
    address: str, *, tls: bool = False, root_cert_pem: str | None = None
) -> dict[str, Any]:
    """``connection.json`` of the ccaas builder: where and how the peer dials."""
    data: dict[str, Any] = {"address": address, "dial_timeout": "10s", "tls_required": tls}
    if tls:
        if not root_cert_pem:
            raise ValueError("a TLS chaincode connection needs the server's root certificate")
        data["client_auth_required"] = False
        data["root_cert"] = root_cert_pem
    return data


def ccaas_package(label: str, connection: dict[str, Any]) -> bytes:
    """The package bytes for ``label`` and a ``connection.json`` document."""
    code = _tar_gz({"connection.json": json.dumps(connection, indent=2).encode()})
    metadata = json.dumps({"type": "ccaas", "label": label}).encode()
    return _tar_gz({"metadata.json": metadata, "code.tar.gz": code})


def package_id(label: str, package: bytes) -> str:
    """The id a Fabric 2.5 peer gives the installed package."""
    return f"{label}:{hashlib.sha256(package).hexdigest()}"

"""The chaincode-as-a-service package that ``peer lifecycle chaincode install`` takes.

>>> data = ccaas_package("caravan_1.0", "cc.kz.example:9999")
>>> package_id("caravan_1.0", data)          # what the peer computes: label:sha256(package)
'caravan_1.0:…'

A gzipped tar of ``metadata.json`` (``{"type": "ccaas", "label": …}``) and
``code.tar.gz``, which holds the ``connection.json`` Fabric's ccaas external builder
copies for the peer: ``address``, ``dial_timeout``, ``tls_required``,
``client_auth_required`` and PEM ``root_cert`` / ``client_cert`` / ``client_key``.
Tar entries and gzip headers carry no time, owner or mode from the machine, so the same
options always give the same bytes and the same package id.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import re
import tarfile

__all__ = ["LABEL", "ccaas_package", "connection_json", "package_id"]

#: Fabric's rule for package labels (core/chaincode/persistence LabelRegexp)
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*\Z")
_ADDRESS = re.compile(r"[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}\Z")
_DURATION = re.compile(r"[0-9]+(ms|s|m)\Z")


def connection_json(
    address: str,
    *,
    tls: bool = False,
    dial_timeout: str = "10s",
    root_cert: str = "",
    client_cert: str = "",
    client_key: str = "",
) -> bytes:
    """connection.json for the ccaas builder (``client_auth_required`` with a client key)."""
    if not _ADDRESS.match(address) or not 0 < int(address.rsplit(":", 1)[1]) < 65536:
        raise ValueError(f"address must be HOST:PORT, got {address!r}")
    if not _DURATION.match(dial_timeout):
        raise ValueError("dial_timeout must be a duration such as 10s")
    if not tls and (root_cert or client_cert or client_key):
        raise ValueError("TLS certificates are given but TLS is off")
    if bool(client_cert) != bool(client_key):
        raise ValueError("a client certificate needs its key, and a key its certificate")
    body = {
        "address": address,
        "dial_timeout": dial_timeout,
        "tls_required": tls,
        "client_auth_required": bool(client_cert),
        "root_cert": root_cert,
        "client_cert": client_cert,
        "client_key": client_key,
    }
    return json.dumps(body, indent=2, sort_keys=True).encode() + b"\n"


def _targz(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def ccaas_package(label: str, address: str, **connection: object) -> bytes:
    """The package bytes (keyword options as :func:`connection_json`)."""
    if not LABEL.match(label):
        raise ValueError(
            f"label {label!r} must start with a letter or digit and contain only "
            "letters, digits and _ . + -"
        )
    code = _targz({"connection.json": connection_json(address, **connection)})  # type: ignore[arg-type]
    metadata = json.dumps({"label": label, "type": "ccaas"}).encode()
    return _targz({"metadata.json": metadata, "code.tar.gz": code})


def package_id(label: str, package: bytes) -> str:
    """Fabric's package id: ``label:hex(SHA-256(package bytes))``."""
    return f"{label}:{hashlib.sha256(package).hexdigest()}"

"""``python -m chaincode.server``: serve the contracts to a Fabric peer (ccaas container).

Environment, as in the Fabric samples: ``CHAINCODE_SERVER_ADDRESS`` (host:port to listen
on, default ``0.0.0.0:9999``), ``CHAINCODE_ID`` (the package id, ``label:sha256``,
required); TLS with ``CHAINCODE_TLS_CERT`` + ``CHAINCODE_TLS_KEY`` (PEM files) and
optionally ``CHAINCODE_TLS_CLIENT_CA`` (require the peer's client certificate);
``CHAINCODE_ENGINE`` (``http2``, the default, or ``grpcio``); ``CHAINCODE_WORKERS``
(accepted and unused: transactions run as greenlets); ``CHAINCODE_LOG_LEVEL``
(default INFO). Exits 3 with one line on stderr when the environment is wrong.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from .server import DEFAULT_WORKERS, ENGINES, TlsFiles, serve


def _tls() -> TlsFiles | None:
    cert, key = os.environ.get("CHAINCODE_TLS_CERT"), os.environ.get("CHAINCODE_TLS_KEY")
    ca = os.environ.get("CHAINCODE_TLS_CLIENT_CA")
    if not cert and not key:
        if ca:
            raise ValueError("CHAINCODE_TLS_CLIENT_CA needs CHAINCODE_TLS_CERT and _KEY")
        return None
    if not cert or not key:
        raise ValueError("TLS needs both CHAINCODE_TLS_CERT and CHAINCODE_TLS_KEY")
    try:
        return TlsFiles(
            Path(cert).read_bytes(),
            Path(key).read_bytes(),
            Path(ca).read_bytes() if ca else None,
        )
    except OSError as exc:
        raise ValueError(f"cannot read a TLS file: {exc.strerror}: {exc.filename}") from None


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("CHAINCODE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    address = os.environ.get("CHAINCODE_SERVER_ADDRESS", "0.0.0.0:9999")
    ccid = os.environ.get("CHAINCODE_ID", "")
    try:
        if not ccid:
            raise ValueError("CHAINCODE_ID (the chaincode package id) is not set")
        workers = int(os.environ.get("CHAINCODE_WORKERS", DEFAULT_WORKERS))
        if not 1 <= workers <= 1024:
            raise ValueError("CHAINCODE_WORKERS must be between 1 and 1024")
        engine = os.environ.get("CHAINCODE_ENGINE", "http2")
        if engine not in ENGINES:
            raise ValueError(f"CHAINCODE_ENGINE must be one of {', '.join(ENGINES)}")
        tls = _tls()
        serve(address, ccid, tls=tls, workers=workers, engine=engine)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())

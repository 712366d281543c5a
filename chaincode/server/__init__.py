"""Caravan's chaincode server: the contracts served to a Fabric 2.5 peer (ccaas).

>>> from chaincode.server import serve
>>> serve("0.0.0.0:9999", "caravan_1.0:0123…")      # until SIGTERM / Ctrl-C

A gRPC server of Fabric's ``Chaincode`` service (chaincode_shim.proto) on
``hyperledger-fabric-protos``: registration handshake, concurrent transactions on one
stream with one writer, state / range / composite-key / history calls, chaincode events,
and decision 0005's ``caravan.submit`` (a member's signed proposal, checked as the
embedded ledger checks it). ``python -m chaincode.server`` reads
``CHAINCODE_SERVER_ADDRESS`` and ``CHAINCODE_ID`` as the Fabric samples do.
docs/chaincode-server.md has the protocol notes.
"""

from .package import ccaas_package, package_id
from .server import DEFAULT_WORKERS, ENGINES, ChaincodeServer, TlsFiles, serve
from .stub import WRITES_NEED_SUBMIT, PeerError, PeerStub
from .transactions import MAX_SKEW_S, SUBMIT

__all__ = [
    "DEFAULT_WORKERS",
    "ENGINES",
    "MAX_SKEW_S",
    "SUBMIT",
    "WRITES_NEED_SUBMIT",
    "ChaincodeServer",
    "PeerError",
    "PeerStub",
    "TlsFiles",
    "ccaas_package",
    "package_id",
    "serve",
]

"""The node's ``fabric`` ledger backend: a Python Fabric Gateway client.

>>> from node.fabric import FabricLedger, PeerConnection
>>> ledger = FabricLedger(PeerConnection("127.0.0.1:7051", tls_ca=ca_pem), node_signer,
...                       channel="caravan")
>>> ledger.submit(signed_proposal).code
'VALID'

See :mod:`node.fabric.ledger` and docs/fabric-gateway.md.
"""

from .ledger import DEFAULT_MAX_IN_FLIGHT, FabricLedger, PeerConnection, PeerUnavailable

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "FabricLedger", "PeerConnection", "PeerUnavailable"]

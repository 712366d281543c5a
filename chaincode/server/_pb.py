"""Fabric's generated protobuf modules the server uses, typed as ``Any`` for mypy.

hyperledger-fabric-protos ships ``py.typed`` but no stubs for its ``*_pb2`` modules; loading
them here by name keeps the rest of ``chaincode.server`` strictly typed without per-line
ignores.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "chaincode_event_pb2",
    "chaincode_pb2",
    "chaincode_shim_pb2",
    "chaincode_shim_pb2_grpc",
    "common_pb2",
    "identities_pb2",
    "kv_query_result_pb2",
    "proposal_pb2",
    "proposal_response_pb2",
]


def _load(name: str) -> Any:
    return importlib.import_module(name)


chaincode_event_pb2: Any = _load("fabric_protos.peer.chaincode_event_pb2")
chaincode_pb2: Any = _load("fabric_protos.peer.chaincode_pb2")
chaincode_shim_pb2: Any = _load("fabric_protos.peer.chaincode_shim_pb2")
chaincode_shim_pb2_grpc: Any = _load("fabric_protos.peer.chaincode_shim_pb2_grpc")
common_pb2: Any = _load("fabric_protos.common.common_pb2")
identities_pb2: Any = _load("fabric_protos.msp.identities_pb2")
kv_query_result_pb2: Any = _load("fabric_protos.ledger.queryresult.kv_query_result_pb2")
proposal_pb2: Any = _load("fabric_protos.peer.proposal_pb2")
proposal_response_pb2: Any = _load("fabric_protos.peer.proposal_response_pb2")

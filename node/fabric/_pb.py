"""Fabric's generated protobuf modules, typed as ``Any`` for mypy.

hyperledger-fabric-protos ships ``py.typed`` but no stubs for its ``*_pb2`` modules, and
protobuf's own stubs are not a dependency; importing them here by name keeps the rest of
``node.fabric`` strictly typed without per-line ignores.
"""

from __future__ import annotations

import importlib
from typing import Any

# the modules the chaincode server loads too: one place for each
from chaincode.server._pb import (
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    identities_pb2,
    proposal_pb2,
    proposal_response_pb2,
)

__all__ = [
    "DecodeError",
    "ab_pb2",
    "any_pb2",
    "chaincode_event_pb2",
    "chaincode_pb2",
    "common_pb2",
    "descriptor_pb2",
    "descriptor_pool",
    "events_pb2",
    "events_pb2_grpc",
    "gateway_pb2",
    "gateway_pb2_grpc",
    "identities_pb2",
    "kv_rwset_pb2",
    "ledger_pb2",
    "message_factory",
    "proposal_pb2",
    "proposal_response_pb2",
    "rwset_pb2",
    "timestamp_pb2",
    "transaction_pb2",
]


def _load(name: str) -> Any:
    return importlib.import_module(name)


ab_pb2: Any = _load("fabric_protos.orderer.ab_pb2")
events_pb2: Any = _load("fabric_protos.peer.events_pb2")
events_pb2_grpc: Any = _load("fabric_protos.peer.events_pb2_grpc")
gateway_pb2: Any = _load("fabric_protos.gateway.gateway_pb2")
gateway_pb2_grpc: Any = _load("fabric_protos.gateway.gateway_pb2_grpc")
kv_rwset_pb2: Any = _load("fabric_protos.ledger.rwset.kvrwset.kv_rwset_pb2")
ledger_pb2: Any = _load("fabric_protos.common.ledger_pb2")
rwset_pb2: Any = _load("fabric_protos.ledger.rwset.rwset_pb2")
transaction_pb2: Any = _load("fabric_protos.peer.transaction_pb2")
timestamp_pb2: Any = _load("google.protobuf.timestamp_pb2")
any_pb2: Any = _load("google.protobuf.any_pb2")
descriptor_pb2: Any = _load("google.protobuf.descriptor_pb2")
descriptor_pool: Any = _load("google.protobuf.descriptor_pool")
message_factory: Any = _load("google.protobuf.message_factory")
#: raised by ``FromString`` on bytes that are not the message
DecodeError: type[Exception] = _load("google.protobuf.message").DecodeError

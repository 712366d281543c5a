"""Building caravan.submit transactions for the test peer."""

from __future__ import annotations

import json
from concurrent.futures import Future
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding

from node.proposal import KeySigner, SignedProposal
from tests.node.conftest import propose

from .peer import TestPeer


def wire(signed: SignedProposal) -> str:
    return json.dumps(signed.to_json(), sort_keys=True, separators=(",", ":"))


def fabric_creator(signer: KeySigner) -> tuple[str, bytes]:
    return signer.msp_id, signer.certificate.public_bytes(Encoding.PEM)


def submit_async(
    peer: TestPeer,
    signed: SignedProposal,
    *,
    relay: KeySigner | None = None,
    timestamp: tuple[int, int] | None = None,
    **kw: Any,
) -> Future[Any]:
    """Relay ``signed`` in a Fabric transaction whose time is the proposal's (unless given)."""
    if timestamp is None:
        ts = json.loads(signed.proposal)["timestamp"]
        timestamp = (ts[0], ts[1])
    creator = fabric_creator(relay) if relay is not None else ("KZ-CUSTOMS", b"")
    return peer.invoke(["caravan.submit", wire(signed)], creator=creator, timestamp=timestamp, **kw)


def submit(peer: TestPeer, signed: SignedProposal, **kw: Any) -> Any:
    """The peer Response of a relayed proposal."""
    return TestPeer.response(submit_async(peer, signed, **kw).result(30))


def ok(peer: TestPeer, signer: KeySigner, function: str, arg: Any, **kw: Any) -> Any:
    response = submit(peer, propose(signer, function, arg, **kw))
    assert response.status == 200, (function, response.status, response.message)
    return json.loads(response.payload)


def read(peer: TestPeer, function: str, arg: Any = None, **kw: Any) -> Any:
    args = [function] + ([] if arg is None else [json.dumps(arg)])
    return TestPeer.response(peer.invoke(args, **kw).result(30))

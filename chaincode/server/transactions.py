"""What one Fabric transaction runs: a member's signed Caravan proposal, or a read.

>>> response, event = execute(channel, message)   # peer Response fields + chaincode event

Decision 0005. Input ``["caravan.submit", <SignedProposal JSON>]`` is a write: the checks
the embedded ledger applies before a contract runs, in the same order and with the same
codes — envelope (parse, channel = the Fabric channel, signature), the proposal time
within 300 s of the Fabric transaction's timestamp, the Caravan tx id not seen before
(``\\x00txid\\x00<id>\\x00``, read, then written with the Fabric tx id), the creator
against the trust list read through the stub (``InitLedger``: against the anchors of its
own argument, as block 0 is checked) — then the contract, with the member as creator and
the proposal's tx id and time. A refusal before the contract answers the embedded
ledger's status and ``"<CODE>: <reason>"``; a contract's refusal is passed on as is.

Any other input ``[function, *json_args]`` is a read: the creator is the Fabric creator
(SerializedIdentity) and writes or events are refused with 403.
"""

from __future__ import annotations

import functools
import json
import ssl
from typing import Any

from ..canonical import CanonicalJsonError, parse_json
from ..creators import CreatorVerifier
from ..envelope import ProposalRefused, SignedProposal, check_envelope
from ..router import Response, invoke
from ..stub import Creator, create_composite_key
from ._pb import chaincode_pb2, common_pb2, identities_pb2, proposal_pb2
from .stub import PeerStub, TxChannel

__all__ = ["MAX_SKEW_S", "SUBMIT", "Transaction", "TransactionError", "execute"]

SUBMIT = b"caravan.submit"
MAX_SKEW_S = 300
_MAX_SKEW_US = MAX_SKEW_S * 1_000_000


class TransactionError(Exception):
    """The transaction cannot run at all (undecodable input): an ERROR to the peer."""


class Transaction:
    """The parts of a TRANSACTION message one execution needs, decoded lazily."""

    __slots__ = ("_header", "channel_id", "input", "proposal", "txid")

    def __init__(self, channel_id: str, txid: str, payload: bytes, proposal: Any) -> None:
        self.channel_id = channel_id
        self.txid = txid
        try:
            self.input = chaincode_pb2.ChaincodeInput.FromString(payload)
        except Exception:  # a DecodeError; protobuf's class differs between backends
            raise TransactionError("the chaincode input cannot be decoded") from None
        self.proposal = proposal
        self._header: Any = None

    def header(self) -> Any:
        if self._header is None:
            try:
                prop = proposal_pb2.Proposal.FromString(self.proposal.proposal_bytes)
                self._header = common_pb2.Header.FromString(prop.header)
            except Exception:
                raise TransactionError("the signed proposal cannot be decoded") from None
        return self._header

    def timestamp(self) -> tuple[int, int]:
        """The Fabric transaction's timestamp (channel header)."""
        try:
            ts = common_pb2.ChannelHeader.FromString(self.header().channel_header).timestamp
        except TransactionError:
            raise
        except Exception:
            raise TransactionError("the channel header cannot be decoded") from None
        return ts.seconds, ts.nanos

    def creator(self) -> Creator:
        """The Fabric creator: MSP id and certificate (DER)."""
        try:
            sig = common_pb2.SignatureHeader.FromString(self.header().signature_header)
            identity = identities_pb2.SerializedIdentity.FromString(sig.creator)
        except TransactionError:
            raise
        except Exception:
            raise TransactionError("the signature header cannot be decoded") from None
        return Creator(identity.mspid, _der(bytes(identity.id_bytes)))


@functools.lru_cache(maxsize=256)
def _der(pem: bytes) -> bytes:
    try:
        return ssl.PEM_cert_to_DER_cert(pem.decode("ascii"))
    except (ValueError, UnicodeDecodeError):
        return b""


def _refusal(exc: ProposalRefused) -> Response:
    return Response(exc.status, f"{exc.code}: {exc.message}")


def execute(
    tx: Transaction, line: TxChannel, verifier: CreatorVerifier
) -> tuple[Response, tuple[str, bytes] | None]:
    """Run ``tx``: the response for COMPLETED and the chaincode event (or None)."""
    args = tx.input.args
    if not args:
        return Response(400, "no function given"), None
    if args[0] == SUBMIT:
        return _submit(tx, line, verifier)
    try:
        function = args[0].decode("utf-8")
        texts = [a.decode("utf-8") for a in args[1:]]
    except UnicodeDecodeError:
        return Response(400, "function and arguments must be UTF-8 text"), None
    stub = PeerStub(line, tx.creator, tx.txid, tx.timestamp(), writable=False)
    return invoke(stub, function, texts), None


def _submit(
    tx: Transaction, line: TxChannel, verifier: CreatorVerifier
) -> tuple[Response, tuple[str, bytes] | None]:
    args = tx.input.args
    try:
        if len(args) != 2:
            raise ProposalRefused(
                "BAD_PROPOSAL", "caravan.submit takes one argument: a signed proposal", 400
            )
        try:
            wire = json.loads(args[1])
        except (ValueError, RecursionError):
            raise ProposalRefused(
                "BAD_PROPOSAL", "the signed proposal is not valid UTF-8 JSON", 400
            ) from None
        signed = SignedProposal.from_json(wire)
        proposal = check_envelope(signed, tx.channel_id)
        fabric_s, fabric_ns = tx.timestamp()
        if abs(proposal.time_us - (fabric_s * 1_000_000 + fabric_ns // 1000)) > _MAX_SKEW_US:
            raise ProposalRefused(
                "BAD_TIMESTAMP",
                f"the proposal timestamp is more than {MAX_SKEW_S} s away from the Fabric "
                "transaction's timestamp",
                400,
            )
        stub = PeerStub(line, Creator("", b""), proposal.tx_id, proposal.timestamp, writable=True)
        seen_key = create_composite_key("txid", [proposal.tx_id])
        if stub.get_state(seen_key) is not None:
            raise ProposalRefused(
                "DUPLICATE_TXID", f"transaction {proposal.tx_id} was already submitted", 409
            )
        if proposal.function == "InitLedger":
            creator = verifier.check_genesis(signed, proposal, _genesis(proposal.args))
        else:
            creator = verifier.check(stub, signed, proposal)
    except ProposalRefused as exc:
        return _refusal(exc), None
    stub = PeerStub(line, creator, proposal.tx_id, proposal.timestamp, writable=True)
    response = invoke(stub, proposal.function, proposal.args)
    if response.status != 200:
        return response, None
    stub.put_state(seen_key, tx.txid.encode("ascii", "replace"))
    return response, stub.event


def _genesis(args: tuple[str, ...]) -> dict[str, Any]:
    if len(args) != 1:
        raise ProposalRefused("BAD_PROPOSAL", "block 0 must be one InitLedger transaction", 400)
    try:
        genesis = parse_json(args[0])
    except CanonicalJsonError as exc:
        raise ProposalRefused("BAD_PROPOSAL", f"genesis: {exc}", 400) from None
    if not isinstance(genesis, dict):
        raise ProposalRefused(
            "BAD_PROPOSAL", "genesis: the InitLedger argument must be a JSON object", 400
        )
    return genesis

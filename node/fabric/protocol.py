"""Fabric's messages as the Gateway client builds and reads them (no I/O here).

>>> identity = FabricIdentity(node_signer)            # SerializedIdentity + low-S signer
>>> tx = new_proposal(identity, "caravan", "caravan", [b"caravan.submit", data], now_ns)
>>> tx.tx_id                                           # hex(SHA-256(nonce ‖ creator))
>>> parse_block(block, "caravan").txs[0].writes        # ((key, value | None), …)

Built exactly as Hyperledger's fabric-gateway client builds them (``proposalbuilder``,
``transactioncontext``, ``blockeventsbuilder``): a ``Proposal`` whose header carries a
``ChannelHeader`` (ENDORSER_TRANSACTION, channel, tx id, timestamp, a
``ChaincodeHeaderExtension`` naming the chaincode) and a ``SignatureHeader`` (creator =
``SerializedIdentity{mspid, PEM certificate}``, a 24-byte nonce); its payload is a
``ChaincodeProposalPayload`` holding the ``ChaincodeInvocationSpec``. Every signature is
ECDSA over SHA-256 in DER with a low S (Fabric's MSP refuses s > n/2), made by the
identity's key through the key store.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from ..errors import LedgerError, NodeError
from ..proposal import ProposalSigner, SignedProposal, parse_proposal
from ._pb import (
    DecodeError,
    ab_pb2,
    any_pb2,
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    descriptor_pb2,
    descriptor_pool,
    gateway_pb2,
    identities_pb2,
    kv_rwset_pb2,
    message_factory,
    proposal_pb2,
    proposal_response_pb2,
    rwset_pb2,
    timestamp_pb2,
    transaction_pb2,
)

__all__ = [
    "SUBMIT_FUNCTION",
    "TXID_MARKER",
    "BlockTx",
    "FabricIdentity",
    "NewProposal",
    "ParsedBlock",
    "block_hash",
    "commit_status_request",
    "is_low_s",
    "low_s",
    "new_proposal",
    "parse_block",
    "prepared_result",
    "seek_envelope",
    "validation_code_name",
]

#: the chaincode function that carries a member's signed Caravan proposal (decision 0005)
SUBMIT_FUNCTION = "caravan.submit"
#: the key prefix under which the chaincode server records each Caravan tx id
TXID_MARKER = "\x00txid\x00"
NONCE_BYTES = 24
#: curve orders for the low-S rule (Fabric accepts P-256 and P-384 identities)
_ORDERS = {
    "secp256r1": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    "secp384r1": int(
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973",
        16,
    ),
}
_TX_FILTER = common_pb2.BlockMetadataIndex.TRANSACTIONS_FILTER
_SIGNATURES = common_pb2.BlockMetadataIndex.SIGNATURES


def low_s(signature: bytes, order: int) -> bytes:
    """The same ECDSA signature with s in the lower half of the group (s ≤ n/2)."""
    r, s = decode_dss_signature(signature)
    if s > order // 2:
        return encode_dss_signature(r, order - s)
    return signature


def is_low_s(signature: bytes, order: int) -> bool:
    _r, s = decode_dss_signature(signature)
    return 0 < s <= order // 2


def curve_order(public_key: object) -> int:
    """The group order of an ECDSA identity key; Fabric signs with ECDSA only."""
    if isinstance(public_key, ec.EllipticCurvePublicKey) and public_key.curve.name in _ORDERS:
        return _ORDERS[public_key.curve.name]
    raise LedgerError("a Fabric identity needs an ECDSA P-256 or P-384 key")


class FabricIdentity:
    """An MSP identity that signs Fabric messages: its creator bytes and a low-S signer.

    The key stays in its key store; :meth:`sign` asks it for ECDSA over SHA-256 (Fabric's
    MSP hash, whatever the curve) and lowers S when needed.
    """

    def __init__(self, signer: ProposalSigner) -> None:
        self.signer = signer
        self.msp_id = signer.msp_id
        self.order = curve_order(signer.certificate.public_key())
        pem = signer.certificate.public_bytes(serialization.Encoding.PEM)
        self.creator = identities_pb2.SerializedIdentity(
            mspid=signer.msp_id, id_bytes=pem
        ).SerializeToString()

    def sign(self, message: bytes) -> bytes:
        try:
            signature = self.signer.sign(message, "sha256")
        except NodeError:
            raise
        except Exception as exc:  # a key store failure: name it, never a traceback
            raise LedgerError(
                f"the node identity could not sign ({type(exc).__name__}: {exc})"
            ) from None
        return low_s(signature, self.order)


def _timestamp(time_ns: int) -> timestamp_pb2.Timestamp:
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    return timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)


@dataclass(frozen=True)
class NewProposal:
    """A signed Fabric proposal ready for Evaluate or Endorse."""

    tx_id: str
    signed: Any  # peer.SignedProposal

    def endorse_request(
        self, channel: str, organizations: Sequence[str] = ()
    ) -> gateway_pb2.EndorseRequest:
        return gateway_pb2.EndorseRequest(
            transaction_id=self.tx_id,
            channel_id=channel,
            proposed_transaction=self.signed,
            endorsing_organizations=list(organizations),
        )

    def evaluate_request(
        self, channel: str, organizations: Sequence[str] = ()
    ) -> gateway_pb2.EvaluateRequest:
        return gateway_pb2.EvaluateRequest(
            transaction_id=self.tx_id,
            channel_id=channel,
            proposed_transaction=self.signed,
            target_organizations=list(organizations),
        )


def new_proposal(
    identity: FabricIdentity,
    channel: str,
    chaincode: str,
    args: Sequence[bytes],
    time_ns: int,
    nonce: bytes | None = None,
) -> NewProposal:
    """A proposal to invoke ``chaincode`` with ``args`` (function first), signed."""
    nonce = os.urandom(NONCE_BYTES) if nonce is None else nonce
    tx_id = hashlib.sha256(nonce + identity.creator).hexdigest()
    chaincode_id = chaincode_pb2.ChaincodeID(name=chaincode)
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.ENDORSER_TRANSACTION,
        tx_id=tx_id,
        timestamp=_timestamp(time_ns),
        channel_id=channel,
        extension=proposal_pb2.ChaincodeHeaderExtension(
            chaincode_id=chaincode_id
        ).SerializeToString(),
        epoch=0,
    )
    signature_header = common_pb2.SignatureHeader(creator=identity.creator, nonce=nonce)
    header = common_pb2.Header(
        channel_header=channel_header.SerializeToString(),
        signature_header=signature_header.SerializeToString(),
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec(
        chaincode_spec=chaincode_pb2.ChaincodeSpec(
            type=chaincode_pb2.ChaincodeSpec.Type.NODE,
            chaincode_id=chaincode_id,
            input=chaincode_pb2.ChaincodeInput(args=list(args)),
        )
    )
    payload = proposal_pb2.ChaincodeProposalPayload(input=spec.SerializeToString())
    proposal = proposal_pb2.Proposal(
        header=header.SerializeToString(), payload=payload.SerializeToString()
    )
    proposal_bytes = proposal.SerializeToString()
    signed = proposal_pb2.SignedProposal(
        proposal_bytes=proposal_bytes, signature=identity.sign(proposal_bytes)
    )
    return NewProposal(tx_id, signed)


def commit_status_request(
    identity: FabricIdentity, channel: str, tx_id: str
) -> gateway_pb2.SignedCommitStatusRequest:
    request = gateway_pb2.CommitStatusRequest(
        transaction_id=tx_id, channel_id=channel, identity=identity.creator
    ).SerializeToString()
    return gateway_pb2.SignedCommitStatusRequest(request=request, signature=identity.sign(request))


def seek_envelope(
    identity: FabricIdentity, channel: str, start: int, stop: int, time_ns: int
) -> common_pb2.Envelope:
    """A signed Deliver request for blocks ``start … stop`` (both included)."""
    channel_header = common_pb2.ChannelHeader(
        type=common_pb2.HeaderType.DELIVER_SEEK_INFO,
        channel_id=channel,
        timestamp=_timestamp(time_ns),
        epoch=0,
    )
    signature_header = common_pb2.SignatureHeader(
        creator=identity.creator, nonce=os.urandom(NONCE_BYTES)
    )
    seek = ab_pb2.SeekInfo(
        start=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=start)),
        stop=ab_pb2.SeekPosition(specified=ab_pb2.SeekSpecified(number=stop)),
        behavior=ab_pb2.SeekInfo.SeekBehavior.BLOCK_UNTIL_READY,
    )
    payload = common_pb2.Payload(
        header=common_pb2.Header(
            channel_header=channel_header.SerializeToString(),
            signature_header=signature_header.SerializeToString(),
        ),
        data=seek.SerializeToString(),
    ).SerializeToString()
    return common_pb2.Envelope(payload=payload, signature=identity.sign(payload))


def validation_code_name(code: int) -> str:
    try:
        return str(transaction_pb2.TxValidationCode.Name(code))
    except ValueError:
        return f"INVALID_{code}"


# --------------------------------------------------------------------- reading
@dataclass(frozen=True)
class ActionResult:
    """What the chaincode answered in an endorsed transaction."""

    status: int
    message: str
    payload: bytes
    event: tuple[str, bytes] | None
    results: bytes  # TxReadWriteSet
    args: tuple[bytes, ...]
    endorsers: tuple[str, ...]


def _parse_action(transaction_bytes: bytes) -> ActionResult:
    transaction = transaction_pb2.Transaction.FromString(transaction_bytes)
    if not transaction.actions:
        raise DecodeError("the transaction has no action")
    action_payload = transaction_pb2.ChaincodeActionPayload.FromString(
        transaction.actions[0].payload
    )
    endorsed = action_payload.action
    response_payload = proposal_response_pb2.ProposalResponsePayload.FromString(
        endorsed.proposal_response_payload
    )
    chaincode_action = proposal_pb2.ChaincodeAction.FromString(response_payload.extension)
    event = None
    if chaincode_action.events:
        ev = chaincode_event_pb2.ChaincodeEvent.FromString(chaincode_action.events)
        if ev.event_name:
            event = (ev.event_name, bytes(ev.payload))
    proposal_payload = proposal_pb2.ChaincodeProposalPayload.FromString(
        action_payload.chaincode_proposal_payload
    )
    spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(proposal_payload.input)
    endorsers = []
    for endorsement in endorsed.endorsements:
        try:
            endorsers.append(
                identities_pb2.SerializedIdentity.FromString(endorsement.endorser).mspid
            )
        except DecodeError:
            endorsers.append("")
    response = chaincode_action.response
    return ActionResult(
        response.status,
        response.message,
        bytes(response.payload),
        event,
        bytes(chaincode_action.results),
        tuple(bytes(a) for a in spec.chaincode_spec.input.args),
        tuple(endorsers),
    )


def prepared_result(envelope: common_pb2.Envelope) -> ActionResult:
    """The chaincode's answer inside a prepared (endorsed, unsigned) transaction."""
    try:
        payload = common_pb2.Payload.FromString(envelope.payload)
        return _parse_action(payload.data)
    except DecodeError as exc:
        raise LedgerError(
            f"the Gateway returned a transaction that cannot be read: {exc}"
        ) from None


def writes_of(results: bytes, namespace: str) -> tuple[tuple[str, bytes | None], ...]:
    """The KV writes of ``namespace`` in key order (deletes as None), tx id marker left out."""
    if not results:
        return ()
    rwset = rwset_pb2.TxReadWriteSet.FromString(results)
    out: list[tuple[str, bytes | None]] = []
    for ns in rwset.ns_rwset:
        if ns.namespace != namespace:
            continue
        kv = kv_rwset_pb2.KVRWSet.FromString(ns.rwset)
        for write in kv.writes:
            if write.key.startswith(TXID_MARKER):
                continue
            out.append((write.key, None if write.is_delete else bytes(write.value)))
    out.sort(key=lambda kv: kv[0])
    return tuple(out)


@dataclass(frozen=True)
class BlockTx:
    """One transaction of a block, as the ledger interface reports it."""

    index: int
    fabric_tx_id: str
    code: str
    #: the Caravan proposal carried by a ``caravan.submit`` transaction (else None)
    caravan: SignedProposal | None
    tx_id: str  # the Caravan tx id, else the Fabric one
    function: str
    creator_msp: str
    timestamp_us: int
    result: ActionResult | None
    writes: tuple[tuple[str, bytes | None], ...]

    def record(self) -> dict[str, Any]:
        """A JSON-friendly description (BlockView.txs[i].record)."""
        out: dict[str, Any] = {"fabric_tx_id": self.fabric_tx_id, "code": self.code}
        if self.caravan is not None:
            out.update(self.caravan.to_json())
        result = self.result
        if result is not None:
            out["response"] = {
                "status": result.status,
                "message": result.message,
                "payload_sha256": hashlib.sha256(result.payload).hexdigest(),
            }
            out["endorsers"] = list(result.endorsers)
            out["event"] = (
                None
                if result.event is None
                else {
                    "name": result.event[0],
                    "payload": base64.b64encode(result.event[1]).decode("ascii"),
                }
            )
            out["writes"] = [
                [k, None if v is None else hashlib.sha256(v).hexdigest()] for k, v in self.writes
            ]
        return out


@dataclass(frozen=True)
class ParsedBlock:
    number: int
    hash: str
    header: dict[str, Any]
    signature: bytes
    txs: tuple[BlockTx, ...]


def block_hash(header: common_pb2.BlockHeader) -> bytes:
    """Fabric's block hash: SHA-256 of the ASN.1 DER SEQUENCE {number, previous, data}."""
    return hashlib.sha256(_der_header(header)).digest()


def _der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _der(tag: int, body: bytes) -> bytes:
    return bytes([tag]) + _der_len(len(body)) + body


def _der_header(header: common_pb2.BlockHeader) -> bytes:
    number = header.number
    raw = number.to_bytes(number.bit_length() // 8 + 1, "big")  # a leading 0 keeps it positive
    while len(raw) > 1 and raw[0] == 0 and raw[1] < 0x80:
        raw = raw[1:]
    return _der(
        0x30,
        _der(0x02, raw)
        + _der(0x04, bytes(header.previous_hash))
        + _der(0x04, bytes(header.data_hash)),
    )


def parse_block(block: common_pb2.Block, chaincode: str) -> ParsedBlock:
    """Read a committed block: each transaction's code, Caravan proposal and writes."""
    number = block.header.number
    try:
        metadata = block.metadata.metadata
        flags = bytes(metadata[_TX_FILTER]) if len(metadata) > _TX_FILTER else b""
        signature = b""
        if len(metadata) > _SIGNATURES and metadata[_SIGNATURES]:
            signed = common_pb2.Metadata.FromString(metadata[_SIGNATURES])
            if signed.signatures:
                signature = bytes(signed.signatures[0].signature)
        txs = tuple(
            _parse_tx(n, data, flags[n] if n < len(flags) else 255, chaincode)
            for n, data in enumerate(block.data.data)
        )
    except (DecodeError, NodeError, ValueError, IndexError) as exc:
        raise LedgerError(f"block {number} cannot be read: {exc}") from None
    header = {
        "number": number,
        "previous_hash": bytes(block.header.previous_hash).hex(),
        "data_hash": bytes(block.header.data_hash).hex(),
    }
    return ParsedBlock(number, block_hash(block.header).hex(), header, signature, txs)


def _parse_tx(index: int, data: bytes, flag: int, chaincode: str) -> BlockTx:
    envelope = common_pb2.Envelope.FromString(data)
    payload = common_pb2.Payload.FromString(envelope.payload)
    channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
    signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
    creator_msp = ""
    if signature_header.creator:
        creator_msp = identities_pb2.SerializedIdentity.FromString(signature_header.creator).mspid
    time_us = channel_header.timestamp.seconds * 1_000_000 + channel_header.timestamp.nanos // 1000
    code = validation_code_name(flag)
    fabric_tx_id = channel_header.tx_id
    if channel_header.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
        kind = common_pb2.HeaderType.Name(channel_header.type)
        return BlockTx(
            index, fabric_tx_id, code, None, fabric_tx_id, kind, creator_msp, time_us, None, ()
        )
    extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
    result = _parse_action(payload.data)
    target = extension.chaincode_id.name
    function = result.args[0].decode("utf-8", "replace") if result.args else ""
    if target != chaincode or function != SUBMIT_FUNCTION or len(result.args) != 2:
        shown = f"{target}:{function}" if target != chaincode else function
        return BlockTx(
            index, fabric_tx_id, code, None, fabric_tx_id, shown, creator_msp, time_us, result, ()
        )
    try:
        signed = SignedProposal.from_json(json.loads(result.args[1]))
        proposal = parse_proposal(signed.proposal)
    except (ValueError, NodeError):  # never endorsed by the chaincode server: not VALID
        return BlockTx(
            index,
            fabric_tx_id,
            code,
            None,
            fabric_tx_id,
            function,
            creator_msp,
            time_us,
            result,
            (),
        )
    writes = writes_of(result.results, chaincode) if code == "VALID" else ()
    return BlockTx(
        index,
        fabric_tx_id,
        code,
        signed,
        proposal.tx_id,
        proposal.function,
        proposal.msp_id,
        proposal.time_us,
        result,
        writes,
    )


# ------------------------------------------------------------ gRPC error details
def _rpc_status_class() -> Any:
    """``google.rpc.Status`` (grpc-status-details-bin), built from its descriptor.

    grpcio-status and googleapis-common-protos are not dependencies; the message is three
    fields, so it is declared here in a private descriptor pool.
    """

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(any_pb2.DESCRIPTOR.serialized_pb))
    field = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(
        name="caravan/google_rpc_status.proto",
        package="google.rpc",
        dependency=["google/protobuf/any.proto"],
        syntax="proto3",
    )
    message = file.message_type.add(name="Status")
    message.field.add(name="code", number=1, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    message.field.add(name="message", number=2, type=field.TYPE_STRING, label=field.LABEL_OPTIONAL)
    message.field.add(
        name="details",
        number=3,
        type=field.TYPE_MESSAGE,
        label=field.LABEL_REPEATED,
        type_name=".google.protobuf.Any",
    )
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("google.rpc.Status"))


RpcStatus = _rpc_status_class()
STATUS_DETAILS_KEY = "grpc-status-details-bin"
_ERROR_DETAIL_TYPE = "type.googleapis.com/gateway.ErrorDetail"


def encode_error_details(code: int, message: str, details: Sequence[Any]) -> bytes:
    """``grpc-status-details-bin`` carrying Gateway ``ErrorDetail`` messages."""
    status = RpcStatus(code=code, message=message)
    for detail in details:
        any_detail = status.details.add()
        any_detail.type_url = _ERROR_DETAIL_TYPE
        any_detail.value = detail.SerializeToString()
    return bytes(status.SerializeToString())


def decode_error_details(raw: bytes) -> list[Any]:
    """The Gateway ``ErrorDetail`` messages in ``grpc-status-details-bin`` (others ignored)."""
    try:
        status = RpcStatus.FromString(raw)
        return [
            gateway_pb2.ErrorDetail.FromString(d.value)
            for d in status.details
            if d.type_url == _ERROR_DETAIL_TYPE
        ]
    except DecodeError:
        return []

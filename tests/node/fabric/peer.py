"""An in-process Fabric peer for the Gateway client's tests: Gateway + Deliver on loopback.

>>> peer = FakePeer("caravan", "caravan")
>>> server, address = serve(peer)           # grpc server on 127.0.0.1:<free port>
>>> ...                                     # FabricLedger(PeerConnection(address), …)
>>> server.stop(None)

It checks what a real peer checks of the client's messages — proposal structure, channel
header, tx id = SHA-256(nonce ‖ creator), the creator's ECDSA signature over SHA-256 with
a low S (for proposals, prepared envelopes, commit-status and Deliver requests) — and
records every violation in ``peer.violations`` as well as refusing the call. It endorses
``caravan.submit`` by unwrapping the member's Caravan proposal and applying the embedded
ledger's checks (envelope, creator against the trust list, tx id not yet used), runs the
contracts on an in-memory versioned world state recording a read/write set, orders
submitted transactions into real ``common.Block`` messages (rwsets, chaincode events,
TRANSACTIONS_FILTER metadata) with Fabric's MVCC validation, and serves them through
qscc (GetChainInfo, GetBlockByNumber) and Deliver. Errors have the Gateway's wording:
``chaincode response <status>, <message>`` in a ``gateway.ErrorDetail``.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field
from typing import Any

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from chaincode.canonical import CanonicalJsonError, parse_json
from chaincode.router import invoke
from chaincode.stub import Creator
from node.embedded.creators import TRUST_PREFIXES, CreatorVerifier
from node.embedded.endorse import precheck
from node.embedded.stub import TxStub
from node.errors import NodeError
from node.fabric._pb import (
    ab_pb2,
    chaincode_event_pb2,
    chaincode_pb2,
    common_pb2,
    events_pb2,
    events_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    identities_pb2,
    kv_rwset_pb2,
    ledger_pb2,
    proposal_pb2,
    proposal_response_pb2,
    rwset_pb2,
    transaction_pb2,
)
from node.fabric.protocol import (
    STATUS_DETAILS_KEY,
    SUBMIT_FUNCTION,
    TXID_MARKER,
    block_hash,
    curve_order,
    encode_error_details,
    is_low_s,
)
from node.proposal import SignedProposal

VALID = transaction_pb2.TxValidationCode.Value("VALID")
MVCC = transaction_pb2.TxValidationCode.Value("MVCC_READ_CONFLICT")
PHANTOM = transaction_pb2.TxValidationCode.Value("PHANTOM_READ_CONFLICT")
MAX_SKEW_US = 300 * 1_000_000


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, detail: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.detail = code, message, detail


def ver_of(block: int, index: int) -> int:
    return block << 20 | index


class WorldState:
    """Committed versioned state (a node.embedded StateView) with key history."""

    def __init__(self) -> None:
        self.values: dict[str, tuple[int, bytes]] = {}
        self.keys: list[str] = []
        self.history_of: dict[str, list[tuple[int, bytes | None, bytes, int]]] = {}

    def get(self, key: str) -> tuple[int, bytes] | None:
        return self.values.get(key)

    def range(self, start: str, end: str) -> Iterator[tuple[str, int, bytes]]:
        lo = bisect.bisect_left(self.keys, start)
        hi = bisect.bisect_left(self.keys, end) if end else len(self.keys)
        for key in self.keys[lo:hi]:
            ver, value = self.values[key]
            yield key, ver, value

    def history(self, key: str) -> list[tuple[int, bytes | None, bytes, int]]:
        return list(self.history_of.get(key, ()))

    def apply(self, ver: int, writes: dict[str, bytes | None], tx_id: bytes, ts_ns: int) -> None:
        for key in sorted(writes):
            value = writes[key]
            if value is None:
                if key in self.values:
                    del self.values[key]
                    self.keys.pop(bisect.bisect_left(self.keys, key))
            else:
                if key not in self.values:
                    bisect.insort(self.keys, key)
                self.values[key] = (ver, value)
            self.history_of.setdefault(key, []).append((ver, value, tx_id, ts_ns))


@dataclass
class _Endorsed:
    reads: dict[str, int | None]
    ranges: list[tuple[str, str, list[tuple[str, int]]]]
    writes: dict[str, bytes | None]
    ts_ns: int
    caravan_tx_id: bytes


def _self_signed(name: str) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM)


@dataclass
class FakePeer:
    channel: str
    chaincode: str = "caravan"
    msp_id: str = "KZ-CUSTOMS"
    #: a block is cut once this many transactions wait (tests raise it to force MVCC)
    min_block_txs: int = 1
    max_block_txs: int = 500
    violations: list[str] = field(default_factory=list)
    requests: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = WorldState()
        self.blocks: list[Any] = []
        self._pending: list[tuple[str, bytes]] = []
        self._endorsed: dict[str, _Endorsed] = {}
        self._status: dict[str, tuple[int, int]] = {}
        self._cond = threading.Condition()
        self._creators = CreatorVerifier()
        self._key, self._cert_pem = _self_signed(f"peer0.{self.msp_id.lower()}")
        self._endorser = identities_pb2.SerializedIdentity(
            mspid=self.msp_id, id_bytes=self._cert_pem
        ).SerializeToString()
        self.low_s_checked = 0
        self._closed = False
        self._append_block([self._config_envelope()], bytes([VALID]))
        self._cutter = threading.Thread(target=self._cut_loop, daemon=True)
        self._cutter.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._cutter.join()

    # ------------------------------------------------------------ checking
    def _count(self, name: str) -> None:
        with self._cond:
            self.requests[name] = self.requests.get(name, 0) + 1

    def _refuse(self, code: grpc.StatusCode, message: str) -> Refused:
        self.violations.append(message)
        return Refused(code, message)

    def _verify(self, creator: bytes, message: bytes, signature: bytes, what: str) -> str:
        """Check ``signature`` by ``creator`` (a SerializedIdentity); its MSP id."""
        identity = identities_pb2.SerializedIdentity.FromString(creator)
        cert = x509.load_pem_x509_certificate(identity.id_bytes)
        key = cert.public_key()
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise self._refuse(grpc.StatusCode.PERMISSION_DENIED, f"{what}: not an ECDSA identity")
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise self._refuse(
                grpc.StatusCode.PERMISSION_DENIED, f"{what}: the signature does not verify"
            ) from None
        if not is_low_s(signature, curve_order(key)):
            raise self._refuse(
                grpc.StatusCode.PERMISSION_DENIED, f"{what}: the signature has a high S"
            )
        with self._cond:
            self.low_s_checked += 1
        return str(identity.mspid)

    def _check_proposal(self, signed: Any, tx_id: str) -> tuple[Any, str, list[bytes], str]:
        """(channel header, chaincode name, args, creator MSP) of a checked SignedProposal."""
        proposal = proposal_pb2.Proposal.FromString(signed.proposal_bytes)
        header = common_pb2.Header.FromString(proposal.header)
        channel_header = common_pb2.ChannelHeader.FromString(header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(header.signature_header)
        if channel_header.type != common_pb2.HeaderType.ENDORSER_TRANSACTION:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "not an endorser transaction")
        if channel_header.channel_id != self.channel:
            raise self._refuse(
                grpc.StatusCode.NOT_FOUND, f"channel {channel_header.channel_id} not found"
            )
        if len(signature_header.nonce) < 16:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "nonce too short")
        expected = hashlib.sha256(signature_header.nonce + signature_header.creator).hexdigest()
        if channel_header.tx_id != expected or tx_id != expected:
            raise self._refuse(
                grpc.StatusCode.INVALID_ARGUMENT, "tx id is not SHA-256(nonce ‖ creator)"
            )
        if channel_header.epoch != 0 or not channel_header.HasField("timestamp"):
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "bad channel header")
        extension = proposal_pb2.ChaincodeHeaderExtension.FromString(channel_header.extension)
        payload = proposal_pb2.ChaincodeProposalPayload.FromString(proposal.payload)
        spec = chaincode_pb2.ChaincodeInvocationSpec.FromString(payload.input)
        name = spec.chaincode_spec.chaincode_id.name
        if name != extension.chaincode_id.name:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "chaincode names differ")
        msp = self._verify(
            signature_header.creator, signed.proposal_bytes, signed.signature, "proposal"
        )
        return channel_header, name, [bytes(a) for a in spec.chaincode_spec.input.args], msp

    # ------------------------------------------------------------- endorse
    def evaluate(self, request: Any) -> Any:
        self._count("Evaluate")
        header, name, args, _msp = self._check_proposal(
            request.proposed_transaction, request.transaction_id
        )
        if name == "qscc":
            return self._qscc(args)
        if name != self.chaincode:
            raise Refused(grpc.StatusCode.FAILED_PRECONDITION, f"chaincode {name} not found")
        ts = (header.timestamp.seconds, header.timestamp.nanos)
        with self._cond:
            stub = TxStub(self.state, None, header.tx_id, ts)
            response = invoke(stub, args[0].decode(), [a.decode() for a in args[1:]])
        if response.status == 200 and (stub.writes or stub.event):
            response = type(response)(403, "a read may not write state or set an event")
        if response.status >= 400:
            raise self._chaincode_error(response.status, response.message, evaluate=True)
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(
                status=response.status, message=response.message, payload=response.payload
            )
        )

    def _qscc(self, args: list[bytes]) -> Any:
        function, channel = args[0].decode(), args[1].decode()
        if channel != self.channel:
            raise Refused(grpc.StatusCode.UNKNOWN, f"chaincode response 500, no channel {channel}")
        with self._cond:
            if function == "GetChainInfo":
                last = self.blocks[-1].header
                payload = ledger_pb2.BlockchainInfo(
                    height=len(self.blocks),
                    currentBlockHash=block_hash(last),
                    previousBlockHash=bytes(last.previous_hash),
                ).SerializeToString()
            elif function == "GetBlockByNumber":
                number = int(args[2])
                if number >= len(self.blocks):
                    raise Refused(
                        grpc.StatusCode.UNKNOWN,
                        "evaluate call to endorser returned error: chaincode response 500, "
                        f"Failed to get block number {number}",
                    )
                payload = self.blocks[number].SerializeToString()
            else:
                raise Refused(grpc.StatusCode.UNKNOWN, f"unknown qscc function {function}")
        return gateway_pb2.EvaluateResponse(
            result=proposal_response_pb2.Response(status=200, payload=payload)
        )

    def _chaincode_error(self, status: int, message: str, *, evaluate: bool = False) -> Refused:
        # a 500 without payload looks like a peer error to the Gateway (raw message)
        detail = message if status == 500 else f"chaincode response {status}, {message}"
        if evaluate:
            return Refused(
                grpc.StatusCode.UNKNOWN,
                f"evaluate call to endorser returned error: {detail}",
                detail,
            )
        return Refused(
            grpc.StatusCode.ABORTED,
            "failed to endorse transaction, see attached details for more info",
            detail,
        )

    def endorse(self, request: Any) -> Any:
        self._count("Endorse")
        signed_proposal = request.proposed_transaction
        header, name, args, _msp = self._check_proposal(signed_proposal, request.transaction_id)
        if request.channel_id != self.channel or name != self.chaincode:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "wrong channel or chaincode")
        if len(args) != 2 or args[0] != SUBMIT_FUNCTION.encode():
            raise self._chaincode_error(403, "only caravan.submit writes")
        try:
            signed = SignedProposal.from_json(parse_json(args[1].decode()))
        except (CanonicalJsonError, UnicodeDecodeError, NodeError) as exc:
            raise self._chaincode_error(400, f"BAD_PROPOSAL: {exc}") from None
        fabric_us = header.timestamp.seconds * 1_000_000 + header.timestamp.nanos // 1000
        with self._cond:
            checked = precheck(signed, self.channel)
            if isinstance(checked, NodeError):
                raise self._chaincode_error(checked.status, f"{checked.code}: {checked.message}")
            proposal = checked
            if abs(proposal.time_us - fabric_us) > MAX_SKEW_US:
                raise self._chaincode_error(400, "BAD_TIMESTAMP: more than 300 s away")
            marker = f"{TXID_MARKER}{proposal.tx_id}\x00"
            if self.state.get(marker) is not None:
                raise self._chaincode_error(
                    409, f"DUPLICATE_TXID: transaction {proposal.tx_id} was already submitted"
                )
            try:
                if proposal.function == "InitLedger" and not self.state.values:
                    creator: Creator = self._creators.check_genesis(
                        signed, proposal, json.loads(proposal.args[0])
                    )
                else:
                    creator = self._creators.check(self.state, signed, proposal)
            except NodeError as exc:
                raise self._chaincode_error(exc.status, f"{exc.code}: {exc.message}") from None
            stub = TxStub(self.state, creator, proposal.tx_id, proposal.timestamp)
            response = invoke(stub, proposal.function, list(proposal.args))
            if response.status != 200:
                raise self._chaincode_error(response.status, response.message)
            stub.reads[marker] = None
            writes = dict(stub.writes)
            writes[marker] = b"1"
            ranges = [
                (s, e, [(k, v) for k, v, _ in self.state.range(s, e)]) for s, e in stub.ranges
            ]
            self._endorsed[header.tx_id] = _Endorsed(
                dict(stub.reads),
                ranges,
                writes,
                proposal.timestamp[0] * 10**9 + proposal.timestamp[1],
                bytes.fromhex(proposal.tx_id),
            )
        kv = kv_rwset_pb2.KVRWSet(
            reads=[
                kv_rwset_pb2.KVRead(
                    key=k,
                    version=None
                    if v is None
                    else kv_rwset_pb2.Version(block_num=v >> 20, tx_num=v & 0xFFFFF),
                )
                for k, v in sorted(stub.reads.items())
            ],
            writes=[
                kv_rwset_pb2.KVWrite(key=k, is_delete=v is None, value=v or b"")
                for k, v in sorted(writes.items())
            ],
        )
        results = rwset_pb2.TxReadWriteSet(
            data_model=rwset_pb2.TxReadWriteSet.DataModel.KV,
            ns_rwset=[rwset_pb2.NsReadWriteSet(namespace=name, rwset=kv.SerializeToString())],
        ).SerializeToString()
        events = b""
        if stub.event is not None:
            events = chaincode_event_pb2.ChaincodeEvent(
                chaincode_id=name,
                tx_id=header.tx_id,
                event_name=stub.event[0],
                payload=stub.event[1],
            ).SerializeToString()
        action = proposal_pb2.ChaincodeAction(
            results=results,
            events=events,
            response=proposal_response_pb2.Response(
                status=200, message=response.message, payload=response.payload
            ),
            chaincode_id=chaincode_pb2.ChaincodeID(name=name, version="1"),
        )
        prp = proposal_response_pb2.ProposalResponsePayload(
            proposal_hash=hashlib.sha256(signed_proposal.proposal_bytes).digest(),
            extension=action.SerializeToString(),
        ).SerializeToString()
        endorsement = proposal_response_pb2.Endorsement(
            endorser=self._endorser,
            signature=self._key.sign(prp + self._endorser, ec.ECDSA(hashes.SHA256())),
        )
        fabric_proposal = proposal_pb2.Proposal.FromString(signed_proposal.proposal_bytes)
        proposal_payload = proposal_pb2.ChaincodeProposalPayload.FromString(fabric_proposal.payload)
        cap = transaction_pb2.ChaincodeActionPayload(
            chaincode_proposal_payload=proposal_pb2.ChaincodeProposalPayload(
                input=proposal_payload.input
            ).SerializeToString(),
            action=transaction_pb2.ChaincodeEndorsedAction(
                proposal_response_payload=prp, endorsements=[endorsement]
            ),
        )
        header_msg = common_pb2.Header.FromString(fabric_proposal.header)
        tx = transaction_pb2.Transaction(
            actions=[
                transaction_pb2.TransactionAction(
                    header=header_msg.signature_header, payload=cap.SerializeToString()
                )
            ]
        )
        payload = common_pb2.Payload(header=header_msg, data=tx.SerializeToString())
        return gateway_pb2.EndorseResponse(
            prepared_transaction=common_pb2.Envelope(payload=payload.SerializeToString())
        )

    # ------------------------------------------------------- submit / commit
    def submit(self, request: Any) -> Any:
        self._count("Submit")
        envelope = request.prepared_transaction
        if not envelope.signature:
            raise self._refuse(
                grpc.StatusCode.INVALID_ARGUMENT, "prepared transaction must be signed"
            )
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        if channel_header.tx_id != request.transaction_id:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "tx id differs from the envelope")
        self._verify(signature_header.creator, envelope.payload, envelope.signature, "envelope")
        with self._cond:
            if channel_header.tx_id not in self._endorsed:
                raise self._refuse(grpc.StatusCode.FAILED_PRECONDITION, "never endorsed here")
            self._pending.append((channel_header.tx_id, envelope.SerializeToString()))
            self._cond.notify_all()
        return gateway_pb2.SubmitResponse()

    def commit_status(self, signed: Any, context: grpc.ServicerContext) -> Any:
        self._count("CommitStatus")
        request = gateway_pb2.CommitStatusRequest.FromString(signed.request)
        self._verify(request.identity, signed.request, signed.signature, "commit status request")
        deadline = time.monotonic() + (context.time_remaining() or 60)
        with self._cond:
            while request.transaction_id not in self._status:
                left = deadline - time.monotonic()
                if left <= 0 or self._closed:
                    raise Refused(grpc.StatusCode.DEADLINE_EXCEEDED, "commit status timeout")
                self._cond.wait(left)
            code, block = self._status[request.transaction_id]
        return gateway_pb2.CommitStatusResponse(result=code, block_number=block)

    def _cut_loop(self) -> None:
        while True:
            with self._cond:
                while not self._closed and len(self._pending) < self.min_block_txs:
                    self._cond.wait()
                if self._closed:
                    return
                batch = self._pending[: self.max_block_txs]
                del self._pending[: len(batch)]
                self._commit(batch)
                self._cond.notify_all()

    def _commit(self, batch: list[tuple[str, bytes]]) -> None:
        """Validate (MVCC) and apply, then append the block (the lock is held)."""
        number = len(self.blocks)
        flags = bytearray()
        trust = False
        for index, (tx_id, _data) in enumerate(batch):
            endorsed = self._endorsed.pop(tx_id)
            code = VALID
            for key, ver in endorsed.reads.items():
                found = self.state.get(key)
                if (None if found is None else found[0]) != ver:
                    code = MVCC
                    break
            if code == VALID:
                for start, end, seen in endorsed.ranges:
                    if [(k, v) for k, v, _ in self.state.range(start, end)] != seen:
                        code = PHANTOM
                        break
            if code == VALID:
                self.state.apply(
                    ver_of(number, index), endorsed.writes, endorsed.caravan_tx_id, endorsed.ts_ns
                )
                trust = trust or any(k.startswith(TRUST_PREFIXES) for k in endorsed.writes)
            flags.append(code)
            self._status[tx_id] = (code, number)
        self._append_block([data for _tx, data in batch], bytes(flags))
        if trust:
            self._creators.invalidate()

    def _append_block(self, data: list[bytes], flags: bytes) -> None:
        previous = block_hash(self.blocks[-1].header) if self.blocks else b""
        signatures = common_pb2.Metadata(
            signatures=[
                common_pb2.MetadataSignature(
                    signature_header=b"",
                    signature=self._key.sign(b"".join(data), ec.ECDSA(hashes.SHA256())),
                )
            ]
        ).SerializeToString()
        block = common_pb2.Block(
            header=common_pb2.BlockHeader(
                number=len(self.blocks),
                previous_hash=previous,
                data_hash=hashlib.sha256(b"".join(data)).digest(),
            ),
            data=common_pb2.BlockData(data=data),
            metadata=common_pb2.BlockMetadata(metadata=[signatures, b"", flags, b"", b""]),
        )
        self.blocks.append(block)

    def _config_envelope(self) -> bytes:
        header = common_pb2.Header(
            channel_header=common_pb2.ChannelHeader(
                type=common_pb2.HeaderType.CONFIG, channel_id=self.channel, tx_id=""
            ).SerializeToString(),
            signature_header=common_pb2.SignatureHeader().SerializeToString(),
        )
        payload = common_pb2.Payload(header=header, data=b"").SerializeToString()
        return bytes(common_pb2.Envelope(payload=payload).SerializeToString())

    # ---------------------------------------------------------------- deliver
    def deliver(self, requests: Iterator[Any], context: grpc.ServicerContext) -> Iterator[Any]:
        self._count("Deliver")
        envelope = next(requests)
        payload = common_pb2.Payload.FromString(envelope.payload)
        channel_header = common_pb2.ChannelHeader.FromString(payload.header.channel_header)
        signature_header = common_pb2.SignatureHeader.FromString(payload.header.signature_header)
        if channel_header.type != common_pb2.HeaderType.DELIVER_SEEK_INFO:
            raise self._refuse(grpc.StatusCode.INVALID_ARGUMENT, "not a seek request")
        self._verify(signature_header.creator, envelope.payload, envelope.signature, "seek info")
        if channel_header.channel_id != self.channel:
            yield events_pb2.DeliverResponse(status=common_pb2.Status.NOT_FOUND)
            return
        seek = ab_pb2.SeekInfo.FromString(payload.data)
        start, stop = seek.start.specified.number, seek.stop.specified.number
        for number in range(start, stop + 1):
            with self._cond:
                while number >= len(self.blocks) and context.is_active() and not self._closed:
                    self._cond.wait(0.5)
                if number >= len(self.blocks):
                    return
                block = self.blocks[number]
            yield events_pb2.DeliverResponse(block=block)
        yield events_pb2.DeliverResponse(status=common_pb2.Status.SUCCESS)


def _guard(method: Any) -> Any:
    """Turn :class:`Refused` into a gRPC error with Gateway ErrorDetails."""

    def call(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        try:
            return method(self, request, context)
        except Refused as exc:
            detail = exc.detail
            if detail is not None:
                error = gateway_pb2.ErrorDetail(
                    address="peer0:7051", msp_id=self.peer.msp_id, message=detail
                )
                context.set_trailing_metadata(
                    (
                        (
                            STATUS_DETAILS_KEY,
                            encode_error_details(exc.code.value[0], exc.message, [error]),
                        ),
                    )
                )
            context.abort(exc.code, exc.message)

    return call


class GatewayService(gateway_pb2_grpc.GatewayServicer):  # type: ignore[misc]
    def __init__(self, peer: FakePeer) -> None:
        self.peer = peer

    @_guard
    def Evaluate(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.peer.evaluate(request)

    @_guard
    def Endorse(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.peer.endorse(request)

    @_guard
    def Submit(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.peer.submit(request)

    @_guard
    def CommitStatus(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self.peer.commit_status(request, context)


class DeliverService(events_pb2_grpc.DeliverServicer):  # type: ignore[misc]
    def __init__(self, peer: FakePeer) -> None:
        self.peer = peer

    def Deliver(self, requests: Any, context: grpc.ServicerContext) -> Any:
        try:
            yield from self.peer.deliver(requests, context)
        except Refused as exc:
            context.abort(exc.code, exc.message)


def serve(
    peer: FakePeer,
    *,
    tls: tuple[bytes, bytes] | None = None,
    client_ca: bytes | None = None,
    port: int = 0,
) -> tuple[grpc.Server, str]:
    """Serve ``peer`` on 127.0.0.1 (TLS with (key PEM, cert PEM); mutual with client_ca)."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=600))
    gateway_pb2_grpc.add_GatewayServicer_to_server(GatewayService(peer), server)
    events_pb2_grpc.add_DeliverServicer_to_server(DeliverService(peer), server)
    address = f"127.0.0.1:{port}"
    if tls is None:
        bound = server.add_insecure_port(address)
    else:
        credentials = grpc.ssl_server_credentials(
            [tls], root_certificates=client_ca, require_client_auth=client_ca is not None
        )
        bound = server.add_secure_port(address, credentials)
    server.start()
    return server, f"127.0.0.1:{bound}"

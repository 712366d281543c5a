"""The node's ``fabric`` backend: the Ledger interface over a peer's Gateway and Deliver.

>>> peer = PeerConnection("peer0.kz.example:7051", tls_ca=ca_pem)
>>> with FabricLedger(peer, node_signer, channel="caravan") as ledger:
...     receipt = ledger.submit(signed_proposal)  # Endorse → Submit → CommitStatus
...     ledger.evaluate("IsRecognised", [query]).payload
...     for change in ledger.changes(from_block=checkpoint): ...

A member's :class:`SignedProposal` travels inside a Fabric transaction signed by the
node identity, as ``["caravan.submit", <canonical JSON of to_json()>]`` (decision 0005);
the chaincode server applies the checks the embedded ledger applies. Anything else is a
read (Evaluate). Receipts carry the Caravan tx id; a refusal comes back with the
contract's status and message, exactly as the embedded ledger gives it. Blocks are read
with qscc (``GetChainInfo``, ``GetBlockByNumber``) and the Deliver service. See
docs/fabric-gateway.md.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import grpc

from chaincode.canonical import canonical_json
from chaincode.router import Response
from chaincode.stub import Creator

from ..errors import LedgerError, NodeError
from ..ledger import REJECTED_CODES, BlockView, LedgerInfo, Receipt, TxChanges, TxView
from ..proposal import ProposalSigner, SignedProposal, parse_proposal
from ._pb import (
    DecodeError,
    common_pb2,
    events_pb2_grpc,
    gateway_pb2,
    gateway_pb2_grpc,
    ledger_pb2,
)
from .protocol import (
    STATUS_DETAILS_KEY,
    SUBMIT_FUNCTION,
    FabricIdentity,
    ParsedBlock,
    commit_status_request,
    decode_error_details,
    new_proposal,
    parse_block,
    prepared_result,
    seek_envelope,
    validation_code_name,
)

__all__ = ["DEFAULT_MAX_IN_FLIGHT", "FabricLedger", "PeerConnection", "PeerUnavailable"]

#: the Gateway refuses more than 500 concurrent requests; stay well below
DEFAULT_MAX_IN_FLIGHT = 256
MAX_IN_FLIGHT = 480
_MAX_MESSAGE = 100 * 1024 * 1024
_CHAINCODE_RESPONSE = re.compile(r"chaincode response (\d{3}), (.*)\Z", re.DOTALL)
_CODE_PREFIX = re.compile(r"([A-Z_]+): (.*)\Z", re.DOTALL)
_CONFLICTS = {
    "MVCC_READ_CONFLICT": "a key this transaction read was changed by an earlier transaction "
    "of the block",
    "PHANTOM_READ_CONFLICT": "a range this transaction read was changed by an earlier "
    "transaction of the block",
}


class PeerUnavailable(LedgerError):
    """The peer cannot be reached or did not answer in time (nothing is known of the tx)."""

    code = "PEER_UNAVAILABLE"
    status = 503


@dataclass(frozen=True)
class PeerConnection:
    """Where the Gateway peer is and how to reach it.

    ``tls_ca`` (PEM) turns TLS on; ``client_cert``/``client_key`` (PEM, the TLS client
    identity — never the node's signing key) add mutual TLS; ``server_name`` overrides
    the name checked in the peer's certificate. Timeouts are in seconds.
    """

    endpoint: str
    tls_ca: bytes | None = None
    server_name: str | None = None
    client_cert: bytes | None = None
    client_key: bytes | None = None
    evaluate_timeout_s: float = 30.0
    endorse_timeout_s: float = 30.0
    submit_timeout_s: float = 10.0
    commit_timeout_s: float = 60.0

    def channel(self) -> grpc.Channel:
        options: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", _MAX_MESSAGE),
            ("grpc.max_send_message_length", _MAX_MESSAGE),
            ("grpc.keepalive_time_ms", 60_000),
        ]
        if self.tls_ca is None:
            if self.client_cert is not None or self.server_name is not None:
                raise LedgerError("a client certificate or server name needs tls_ca (TLS)")
            return grpc.insecure_channel(self.endpoint, options=options)
        if (self.client_cert is None) != (self.client_key is None):
            raise LedgerError("mutual TLS needs both a client certificate and its key")
        if self.server_name is not None:
            options.append(("grpc.ssl_target_name_override", self.server_name))
        credentials = grpc.ssl_channel_credentials(
            root_certificates=self.tls_ca,
            private_key=self.client_key,
            certificate_chain=self.client_cert,
        )
        return grpc.secure_channel(self.endpoint, credentials, options=options)


def _details(error: grpc.RpcError) -> list[str]:
    """The messages of the Gateway's ErrorDetails, else the status message."""
    messages: list[str] = []
    trailing = error.trailing_metadata() if isinstance(error, grpc.Call) else None
    for key, value in trailing or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            messages.extend(d.message for d in decode_error_details(value))
    if not messages and isinstance(error, grpc.Call):
        messages.append(str(error.details() or ""))
    return messages


def _code(error: grpc.RpcError) -> grpc.StatusCode | None:
    return error.code() if isinstance(error, grpc.Call) else None


def _chaincode_refusal(messages: Sequence[str]) -> tuple[int, str] | None:
    """(status, message) of a contract's refusal in the Gateway's error messages."""
    for message in messages:
        found = _CHAINCODE_RESPONSE.search(message)
        if found is not None:
            return int(found[1]), found[2]
    for message in messages:  # a 500 without payload reaches the Gateway as a peer error
        if message.startswith("internal error in "):
            return 500, message
    return None


class FabricLedger:
    """The Ledger interface over one Gateway peer; see the module docstring."""

    def __init__(
        self,
        peer: PeerConnection,
        signer: ProposalSigner,
        *,
        channel: str,
        chaincode: str = "caravan",
        endorsing_organizations: Sequence[str] = (),
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        if not 1 <= max_in_flight <= MAX_IN_FLIGHT:
            raise LedgerError(f"max_in_flight must be between 1 and {MAX_IN_FLIGHT}")
        self.peer = peer
        self.channel = channel
        self.chaincode = chaincode
        self.endorsing_organizations = tuple(endorsing_organizations)
        self.max_in_flight = max_in_flight
        self.clock = clock
        self.identity = FabricIdentity(signer)
        self._channel = peer.channel()
        self._gateway = gateway_pb2_grpc.GatewayStub(self._channel)
        self._deliver = events_pb2_grpc.DeliverStub(self._channel)
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()
        self._counted = (0, 0, 0)  # (blocks, txs, valid txs) counted by info()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        self._channel.close()

    def __enter__(self) -> FabricLedger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ calls
    def _unavailable(self, error: grpc.RpcError, what: str, timeout: float) -> NodeError | None:
        code = _code(error)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return PeerUnavailable(
                f"{what}: the peer {self.peer.endpoint} did not answer within {timeout:g} s"
            )
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, None):
            detail = "; ".join(_details(error))[:300]
            return PeerUnavailable(
                f"{what}: the peer {self.peer.endpoint} is unavailable ({detail})"
            )
        return None

    def _failed(self, error: grpc.RpcError, what: str, timeout: float) -> NodeError:
        unavailable = self._unavailable(error, what, timeout)
        if unavailable is not None:
            return unavailable
        code = _code(error)
        name = code.name if code is not None else "UNKNOWN"
        detail = "; ".join(_details(error))[:500]
        return LedgerError(f"{what} failed ({name}): {detail}")

    # ------------------------------------------------------------------ writes
    def submit(self, proposal: SignedProposal) -> Receipt:
        """Endorse, order and commit one member proposal; its Receipt."""
        try:
            checked = parse_proposal(proposal.proposal)
        except NodeError as exc:
            return Receipt("", exc.code, exc.status, exc.message)
        data = canonical_json(proposal.to_json())
        return self._transact(self.chaincode, [SUBMIT_FUNCTION.encode(), data], checked.tx_id)

    def invoke(
        self, function: str, args: Sequence[str | bytes] = (), *, chaincode: str | None = None
    ) -> Receipt:
        """A plain Fabric transaction ``[function, *args]`` to ``chaincode`` (default:
        this ledger's), signed by the node identity: Endorse → Submit → CommitStatus.

        The receipt carries the Fabric transaction id. This is for other chaincodes on
        the channel (a benchmark's trivial chaincode, say): Caravan's chaincode treats
        anything but ``caravan.submit`` as a read and refuses its writes (403), so
        members' writes go through :meth:`submit` only.
        """
        raw = [function.encode(), *(a.encode() if isinstance(a, str) else bytes(a) for a in args)]
        return self._transact(chaincode or self.chaincode, raw, None)

    def _transact(self, chaincode: str, args: list[bytes], caravan_tx_id: str | None) -> Receipt:
        """Endorse → Submit → CommitStatus of ``args``; the receipt names ``caravan_tx_id``,
        or the Fabric tx id when there is none."""
        tx = new_proposal(self.identity, self.channel, chaincode, args, self.clock())
        tx_id = tx.tx_id if caravan_tx_id is None else caravan_tx_id
        timeout = self.peer.endorse_timeout_s
        try:
            endorsed = self._gateway.Endorse(
                tx.endorse_request(self.channel, self.endorsing_organizations), timeout=timeout
            )
        except grpc.RpcError as error:
            return self._endorse_refusal(tx_id, error)
        envelope = endorsed.prepared_transaction
        result = prepared_result(envelope)
        envelope.signature = self.identity.sign(envelope.payload)
        timeout = self.peer.submit_timeout_s
        try:
            self._gateway.Submit(
                gateway_pb2.SubmitRequest(
                    transaction_id=tx.tx_id, channel_id=self.channel, prepared_transaction=envelope
                ),
                timeout=timeout,
            )
        except grpc.RpcError as error:
            raise self._failed(error, f"submitting transaction {tx_id}", timeout) from None
        timeout = self.peer.commit_timeout_s
        try:
            status = self._gateway.CommitStatus(
                commit_status_request(self.identity, self.channel, tx.tx_id), timeout=timeout
            )
        except grpc.RpcError as error:
            raise self._failed(
                error, f"waiting for the commit of transaction {tx_id}", timeout
            ) from None
        code = validation_code_name(status.result)
        block = int(status.block_number)
        if code == "VALID":
            return Receipt(
                tx_id, code, result.status, result.message, result.payload, block, result.event
            )
        message = _CONFLICTS.get(code, f"Fabric marked the transaction {code}")
        return Receipt(tx_id, code, 409, message, b"", block, None)

    def _endorse_refusal(self, tx_id: str, error: grpc.RpcError) -> Receipt:
        unavailable = self._unavailable(error, "endorsing", self.peer.endorse_timeout_s)
        if unavailable is not None:
            raise unavailable from None
        refusal = _chaincode_refusal(_details(error))
        if refusal is None:
            raise self._failed(error, f"endorsing transaction {tx_id}", 0) from None
        status, message = refusal
        code = "CHAINCODE_ERROR"
        prefixed = _CODE_PREFIX.match(message)
        if prefixed is not None and prefixed[1] in REJECTED_CODES:
            code, message = prefixed[1], prefixed[2]
        return Receipt(tx_id, code, status, message)

    def submit_many(self, proposals: Sequence[SignedProposal]) -> list[Receipt]:
        """Submit concurrently (at most ``max_in_flight`` at once); receipts in order."""
        if len(proposals) <= 1:
            return [self.submit(p) for p in proposals]
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(
                    max_workers=self.max_in_flight, thread_name_prefix="fabric-submit"
                )
            pool = self._pool
        return list(pool.map(self.submit, proposals))

    # ------------------------------------------------------------------- reads
    def evaluate(
        self,
        function: str,
        args: Sequence[str],
        creator: Creator | None = None,
        *,
        chaincode: str | None = None,
    ) -> Response:
        """A contract query on the peer's committed state (``creator`` is the node's own
        identity on Fabric: the chaincode's read stub ignores it); ``chaincode`` asks
        another chaincode of the channel."""
        del creator
        raw = self._evaluate(
            chaincode or self.chaincode, [function.encode(), *(a.encode() for a in args)]
        )
        if isinstance(raw, Response):
            return raw
        return Response(raw.status, raw.message, bytes(raw.payload))

    def _evaluate(self, chaincode: str, args: list[bytes]) -> Any:
        tx = new_proposal(self.identity, self.channel, chaincode, args, self.clock())
        timeout = self.peer.evaluate_timeout_s
        try:
            answer = self._gateway.Evaluate(tx.evaluate_request(self.channel), timeout=timeout)
        except grpc.RpcError as error:
            unavailable = self._unavailable(error, "evaluating", timeout)
            if unavailable is not None:
                raise unavailable from None
            refusal = _chaincode_refusal(_details(error))
            if refusal is None:
                raise self._failed(error, "evaluating", timeout) from None
            return Response(*refusal)
        return answer.result

    def _qscc(self, function: str, *args: str) -> bytes:
        raw = self._evaluate(
            "qscc", [function.encode(), self.channel.encode(), *(a.encode() for a in args)]
        )
        if isinstance(raw, Response) or raw.status != 200:
            message = raw.message
            raise LedgerError(f"qscc {function} on {self.channel}: {message}")
        return bytes(raw.payload)

    def _chain_info(self) -> Any:
        try:
            return ledger_pb2.BlockchainInfo.FromString(self._qscc("GetChainInfo"))
        except DecodeError:
            raise LedgerError("qscc GetChainInfo returned something else") from None

    @property
    def height(self) -> int:
        return int(self._chain_info().height)

    def info(self) -> LedgerInfo:
        """Height and last hash from qscc; transaction counts from the blocks (counted
        once, then only the new ones). Fabric does not expose the number of state keys:
        ``state_keys`` is 0."""
        chain = self._chain_info()
        height = int(chain.height)
        with self._lock:
            done, total, valid = self._counted
            for block in self.blocks(done, height):
                total += len(block.txs)
                valid += sum(1 for tx in block.txs if tx.code == "VALID")
            self._counted = (max(done, height), total, valid)
        return LedgerInfo(
            self.channel, height, bytes(chain.currentBlockHash).hex(), total, valid, 0
        )

    def block(self, number: int) -> BlockView:
        height = self.height
        if not 0 <= number < height:
            raise LedgerError(f"no block {number} (height {height})")
        try:
            raw = common_pb2.Block.FromString(self._qscc("GetBlockByNumber", str(number)))
        except DecodeError:
            raise LedgerError(f"qscc GetBlockByNumber {number} returned something else") from None
        parsed = parse_block(raw, self.chaincode)
        if parsed.number != number:
            raise LedgerError(f"asked for block {number}, the peer sent block {parsed.number}")
        return BlockView(
            parsed.number,
            parsed.hash,
            parsed.header,
            parsed.signature,
            None,
            [
                TxView(
                    tx.tx_id,
                    tx.index,
                    tx.code,
                    tx.function,
                    tx.creator_msp,
                    tx.timestamp_us,
                    tx.record(),
                )
                for tx in parsed.txs
            ],
        )

    def blocks(self, start: int, stop: int | None = None) -> Iterator[ParsedBlock]:
        """Blocks ``start … stop-1`` (default: up to the height now) over Deliver, each
        exactly once and in order; a gap or a closed stream raises :class:`LedgerError`."""
        start = max(start, 0)
        stop = self.height if stop is None else stop
        if start >= stop:
            return
        envelope = seek_envelope(self.identity, self.channel, start, stop - 1, self.clock())
        stream = self._deliver.Deliver(iter([envelope]))
        expected = start
        try:
            for response in stream:
                kind = response.WhichOneof("Type")
                if kind == "block":
                    number = response.block.header.number
                    if number != expected:
                        raise LedgerError(
                            f"Deliver sent block {number} where block {expected} was due"
                        )
                    expected += 1
                    yield parse_block(response.block, self.chaincode)
                elif kind == "status":
                    if response.status != common_pb2.Status.SUCCESS:
                        name = common_pb2.Status.Name(response.status)
                        raise LedgerError(f"Deliver from block {start} refused: {name}")
                    break
        except grpc.RpcError as error:
            raise self._failed(error, f"reading blocks from {start}", 0) from None
        finally:
            stream.cancel()
        if expected != stop:
            raise LedgerError(
                f"Deliver ended at block {expected}, before block {stop - 1} (a block is missing)"
            )

    def events(self, from_block: int = 0) -> Iterator[tuple[int, str, str, bytes]]:
        for block in self.blocks(from_block):
            for tx in block.txs:
                result = tx.result if tx.code == "VALID" and tx.caravan is not None else None
                if result is not None and result.event is not None:
                    yield block.number, tx.tx_id, result.event[0], result.event[1]

    def changes(self, from_block: int = 0) -> Iterator[TxChanges]:
        for block in self.blocks(from_block):
            for tx in block.txs:
                if tx.code == "VALID" and tx.caravan is not None and tx.result is not None:
                    yield TxChanges(
                        block.number,
                        tx.index,
                        tx.tx_id,
                        tx.function,
                        tx.creator_msp,
                        tx.timestamp_us,
                        tx.writes,
                        tx.result.event,
                    )

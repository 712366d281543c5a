"""How the user-facing commands reach a node: directly (``--dir``) or over HTTP (``--node``).

>>> # with connect(directory=Path("node"), identity="kz-customs-officer") as conn:
>>> #     receipt = conn.client.submit(conn.propose("SuspendAeo", args))
>>> #     conn.client.recognition("KZ-AEO-2026-000001", "UZ")
>>> # HttpClient("http://127.0.0.1:8700", signer).get_aeo("KZ-AEO-2026-000001")

Both clients implement :class:`NodeClient` with the same methods and answers, shaped as
the API's JSON (docs/api.md, the /v1 route table): :class:`LocalClient` calls
``node.services`` on an opened node directory, :class:`HttpClient` calls the API with
httpx. Writes are :class:`~node.proposal.SignedProposal` objects built and signed in
this process with the identity's key (:meth:`Connection.propose`); the node only checks
and orders them. Reads of confidential AEO fields and ``seal_record`` are RFC 9421 signed
requests (:class:`api.httpsig.SignedRequestAuth`) when the client has a signer.

Every failure is a :class:`node.errors.NodeError` with an HTTP-style ``status``: the node's
own refusals keep theirs (403, 409 …), an unreachable node is :class:`NodeUnreachable`
(503). :func:`handle_client_errors` turns them into one line and an exit code
(:func:`exit_code_for`: 401/403/409 → 4 refused, everything else → 3).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, ParamSpec, Protocol, TypeVar

import httpx
import typer

from api.httpsig import SignedRequestAuth
from node.errors import NodeError
from node.index import Page
from node.ledger import Receipt
from node.node import Node, passphrase_for
from node.proposal import ProposalSigner, SignedProposal
from node.services import aeo, mra, recognition, submit, trace
from node.services.context import Clock
from node.services.errors import InvalidArguments, contract_error
from node.services.seal import seal_record
from node.wallet import Wallet, signer_for
from trust_services.cades import CadesSigner
from trust_services.errors import TrustServiceError
from trust_services.keystore import resolve_passphrase
from trust_services.pki import OrgPki
from trust_services.tsa import TimestampAuthority

from ._common import EXIT_ERROR, fail, handle_errors

__all__ = [
    "EXIT_NEGATIVE",
    "EXIT_REFUSED",
    "REFUSED_STATUSES",
    "ClientError",
    "Connection",
    "CursorOpt",
    "DirOpt",
    "HttpClient",
    "IdentityDirOpt",
    "IdentityOpt",
    "JsonOpt",
    "LimitOpt",
    "LocalClient",
    "NodeClient",
    "NodeOpt",
    "NodeUnreachable",
    "connect",
    "exit_code_for",
    "handle_client_errors",
    "load_identity",
    "print_json",
    "receipt_json",
]

#: exit codes of the node commands (docs/cli.md): 0 yes / done, 1 a negative answer that
#: is the point of the command, 3 input or environment error, 4 refused by the node
EXIT_NEGATIVE = 1
EXIT_REFUSED = 4
#: statuses that mean "the node or the ledger refused": not allowed, or the state forbids it
REFUSED_STATUSES = frozenset({401, 403, 409})
#: the largest batch ``POST /v1/transactions/batch`` takes
MAX_BATCH = 1000

P = ParamSpec("P")
R = TypeVar("R")


# --------------------------------------------------------------------------- errors
class ClientError(NodeError):
    """The node answered a request with an error (an RFC 9457 problem over HTTP)."""

    def __init__(self, status: int, code: str, message: str, tx_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.tx_id = tx_id


class NodeUnreachable(NodeError):
    """No answer from the node at ``--node`` (connection refused, timeout, not the API)."""

    status = 503
    code = "NODE_UNREACHABLE"


def exit_code_for(exc: NodeError) -> int:
    """4 when the node or the ledger refused (401, 403, 409), else 3 (input/environment)."""
    return EXIT_REFUSED if exc.status in REFUSED_STATUSES else EXIT_ERROR


def describe(exc: NodeError) -> str:
    """One line: a refusal names its status and code; other errors are their message."""
    if exc.status in REFUSED_STATUSES:
        return f"refused ({exc.status} {exc.code}): {exc}"
    return str(exc)


def handle_client_errors(func: Callable[P, R]) -> Callable[P, R]:
    """A node error is one line on stderr and exit 4 (refused) or 3; see :func:`exit_code_for`."""

    @functools.wraps(func)
    @handle_errors
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except NodeError as exc:
            raise fail(describe(exc), exit_code_for(exc)) from None
        except TrustServiceError as exc:
            raise fail(str(exc)) from None

    return wrapper


# --------------------------------------------------------------------------- JSON
def _parse(payload: bytes) -> Any:
    if not payload:
        return None
    try:
        return json.loads(payload)
    except ValueError:
        return payload.decode("utf-8", "replace")


def receipt_json(receipt: Receipt) -> dict[str, Any]:
    """A receipt as ``POST /v1/transactions`` answers it."""
    event = None
    if receipt.event is not None:
        event = {"name": receipt.event[0], "payload": _parse(receipt.event[1])}
    return {
        "tx_id": receipt.tx_id,
        "code": receipt.code,
        "block": receipt.block,
        "status": receipt.status,
        "message": receipt.message,
        "payload": _parse(receipt.payload),
        "event": event,
    }


def print_json(value: Any) -> None:
    typer.echo(json.dumps(value, indent=2, ensure_ascii=False))


# --------------------------------------------------------------------------- protocol
class NodeClient(Protocol):
    """What the commands ask of a node; answers are the API's JSON shapes."""

    @property
    def channel(self) -> str: ...

    @property
    def clock(self) -> Clock: ...

    def submit(self, signed: SignedProposal) -> dict[str, Any]:
        """The VALID receipt, or the refusal raised (a NodeError with its status)."""
        ...

    def submit_many(self, signed: Sequence[SignedProposal]) -> list[dict[str, Any]]:
        """One receipt per proposal, in order, refused ones included (not raised)."""
        ...

    def get_aeo(self, aeo_id: str) -> dict[str, Any]: ...

    def aeo_history(self, aeo_id: str) -> list[dict[str, Any]]: ...

    def aeo_status(self, aeo_id: str, at: str | None = None) -> dict[str, Any]: ...

    def list_aeos(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]: ...

    def recognition(self, aeo_id: str, country: str, at: str | None = None) -> dict[str, Any]: ...

    def get_mra(self, mra_id: str) -> dict[str, Any]: ...

    def mra_state(self, mra_id: str, at: str | None = None) -> dict[str, Any]: ...

    def list_mras(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]: ...

    def get_sez(self, sez: str) -> dict[str, Any]:
        """The zone and its operators: ``{sez, country, msp_id, name, operators: [{subject,
        registered}]}`` (``GetSez``; a 404 NodeError when it is not registered)."""
        ...

    def list_sezs(self, *, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        """One page of the index's zones, by code: ``{items: [{sez, country, msp_id, name,
        operators (a count), block, tx_id}], next_cursor}``."""
        ...

    def trail(self, consignment_ref: str) -> list[dict[str, Any]]: ...

    def verify_trail(self, consignment_ref: str) -> dict[str, Any]: ...

    def seal_record(self, org: str, record: dict[str, Any], level: str = "B-T") -> dict[str, Any]:
        """``{record_hash, seal, sealed_by}``: ``org``'s e-seal over the record (B-B, B-T)."""
        ...

    def close(self) -> None: ...


def _filters(filters: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in filters.items() if v is not None}


# --------------------------------------------------------------------------- local
class LocalClient:
    """A node directory opened in this process: ``node.services`` on its ledger and index.

    ``viewer`` decides what confidential AEO fields are shown, as the API decides it for
    a signed caller (None: an anonymous reader, who gets the redacted view).
    """

    def __init__(self, node: Node, viewer: str | None = None) -> None:
        self.node = node
        self.viewer = viewer
        self._index: Any = None

    @property
    def channel(self) -> str:
        return self.node.context.channel

    @property
    def clock(self) -> Clock:
        return self.node.clock

    def submit(self, signed: SignedProposal) -> dict[str, Any]:
        return receipt_json(submit.submit(self.node.context, signed))

    def submit_many(self, signed: Sequence[SignedProposal]) -> list[dict[str, Any]]:
        return [receipt_json(r) for r in submit.submit_many(self.node.context, signed)]

    def get_aeo(self, aeo_id: str) -> dict[str, Any]:
        return aeo.view_for(self.node.context, aeo_id, self.viewer)

    def aeo_history(self, aeo_id: str) -> list[dict[str, Any]]:
        return aeo.history_for(self.node.context, aeo_id, self.viewer)

    def aeo_status(self, aeo_id: str, at: str | None = None) -> dict[str, Any]:
        return aeo.status_at(self.node.context, aeo_id, at)

    def _caught_up(self) -> Any:
        from node.index import Index  # the index (SQLAlchemy) only for lists

        if self._index is None:
            clock = self.node.clock
            self._index = Index(self.node.config.index_url, clock=lambda: clock() // 1000)
        self._index.catch_up(self.node.ledger)
        return self._index

    def list_aeos(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]:
        page = self._caught_up().aeos(limit=limit, cursor=cursor, **_filters(filters))
        items = [dataclasses.asdict(e) for e in page.items]
        ctx = self.node.context
        partners: dict[str, bool] = {}

        def may_see(item: dict[str, Any]) -> bool:
            issuer = str(item["issuer"])
            if self.viewer is None:
                return False
            if self.viewer == issuer:
                return True
            if issuer not in partners:
                partners[issuer] = mra.in_force_between(ctx, issuer, self.viewer)
            return partners[issuer] and bool(item["mra_sharing_consent"])

        shown = []
        for item in items:
            if may_see(item):
                shown.append(item)
            elif filters.get("tin") is None:  # a TIN search shows only what may be seen
                shown.append({**item, "holder_tin": None, "holder_city": None})
                shown[-1]["redacted"] = ["holder_tin", "holder_city"]
        return {"items": shown, "next_cursor": page.next_cursor}

    def recognition(self, aeo_id: str, country: str, at: str | None = None) -> dict[str, Any]:
        return recognition.check(self.node.context, aeo_id, country, at)

    def get_mra(self, mra_id: str) -> dict[str, Any]:
        return mra.get(self.node.context, mra_id)

    def mra_state(self, mra_id: str, at: str | None = None) -> dict[str, Any]:
        return mra.state_at(self.node.context, mra_id, at)

    def list_mras(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]:
        page = self._caught_up().mras(limit=limit, cursor=cursor, **_filters(filters))
        return _page_json(page)

    def get_sez(self, sez: str) -> dict[str, Any]:
        return trace.sez(self.node.context, sez)

    def list_sezs(self, *, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        page = self._caught_up().sezs(limit=limit, cursor=cursor)
        return _page_json(page)

    def trail(self, consignment_ref: str) -> list[dict[str, Any]]:
        return trace.trail(self.node.context, consignment_ref)

    def verify_trail(self, consignment_ref: str) -> dict[str, Any]:
        return trace.verify_trail(self.node.context, consignment_ref)

    def seal_record(self, org: str, record: dict[str, Any], level: str = "B-T") -> dict[str, Any]:
        pki = self.node.pki(org)
        tsa = TimestampAuthority.for_org(pki) if level != "B-B" else None
        return seal_with(CadesSigner.for_org(pki, timestamper=tsa), record, level)

    def close(self) -> None:
        if self._index is not None:
            self._index.close()
        self.node.close()


def seal_with(signer: CadesSigner, record: dict[str, Any], level: str = "B-B") -> dict[str, Any]:
    """``{record_hash, seal, sealed_by}`` as ``POST /v1/orgs/{org}/seal`` answers it."""
    return seal_record(signer, record, level).to_json()


# --------------------------------------------------------------------------- HTTP
def _q(value: str) -> str:
    return urllib.parse.quote(value, safe="")


class HttpClient:
    """The node's /v1 API at ``url``; ``signer`` signs confidential reads and seal requests
    (RFC 9421). Writes carry their own signature (the proposal)."""

    def __init__(
        self,
        url: str,
        signer: ProposalSigner | None = None,
        *,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise InvalidArguments(
                f"--node must be an http(s) URL, e.g. http://127.0.0.1:8700 (got {url!r})"
            )
        self.url = url.rstrip("/")
        self.signer = signer
        self._auth = SignedRequestAuth(signer) if signer is not None else None
        self._http = httpx.Client(base_url=self.url, timeout=timeout, transport=transport)
        self._channel: str | None = None

    # ------------------------------------------------------------------ plumbing
    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        signed: bool = False,
    ) -> Any:
        auth = self._auth if signed and self._auth is not None else None
        try:
            response = self._http.request(
                method,
                path,
                params=_filters(params or {}) or None,
                json=body,
                auth=auth if auth is not None else httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.HTTPError as exc:
            raise NodeUnreachable(f"no answer from the node at {self.url}: {exc}") from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:
                raise NodeUnreachable(
                    f"{self.url}{path} did not answer JSON: is this a Caravan node?"
                ) from None
        raise _problem(response)

    @property
    def channel(self) -> str:
        if self._channel is None:
            health = self._request("GET", "/v1/health")
            channel = health.get("channel") if isinstance(health, dict) else None
            if not isinstance(channel, str):
                raise NodeUnreachable(f"{self.url}/v1/health names no channel")
            self._channel = channel
        return self._channel

    @property
    def clock(self) -> Clock:
        return time.time_ns

    # ------------------------------------------------------------------ writes
    def submit(self, signed: SignedProposal) -> dict[str, Any]:
        result: dict[str, Any] = self._request("POST", "/v1/transactions", body=signed.to_json())
        return result

    def submit_many(self, signed: Sequence[SignedProposal]) -> list[dict[str, Any]]:
        receipts: list[dict[str, Any]] = []
        for start in range(0, len(signed), MAX_BATCH):
            chunk = signed[start : start + MAX_BATCH]
            answer = self._request(
                "POST", "/v1/transactions/batch", body={"proposals": [s.to_json() for s in chunk]}
            )
            got = answer.get("receipts") if isinstance(answer, dict) else None
            if not isinstance(got, list) or len(got) != len(chunk):
                raise NodeUnreachable("the batch answer does not have one receipt per proposal")
            receipts.extend(got)
        return receipts

    def seal_record(self, org: str, record: dict[str, Any], level: str = "B-T") -> dict[str, Any]:
        if self._auth is None:
            raise InvalidArguments("sealing on the node needs an identity (--identity)")
        result: dict[str, Any] = self._request(
            "POST",
            f"/v1/orgs/{_q(org)}/seal",
            body={"record": record, "level": level},
            signed=True,
        )
        return result

    # ------------------------------------------------------------------ reads
    def get_aeo(self, aeo_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/v1/aeo-certificates/{_q(aeo_id)}", signed=True
        )
        return result

    def aeo_history(self, aeo_id: str) -> list[dict[str, Any]]:
        result = self._request("GET", f"/v1/aeo-certificates/{_q(aeo_id)}/history", signed=True)
        if isinstance(result, dict) and isinstance(result.get("items"), list):
            result = result["items"]
        versions: list[dict[str, Any]] = result
        return versions

    def aeo_status(self, aeo_id: str, at: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/v1/aeo-certificates/{_q(aeo_id)}/status", params={"at": at}
        )
        return result

    def list_aeos(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET",
            "/v1/aeo-certificates",
            params={**filters, "limit": limit, "cursor": cursor},
            signed=True,
        )
        return result

    def recognition(self, aeo_id: str, country: str, at: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", "/v1/recognition", params={"aeo_id": aeo_id, "country": country, "at": at}
        )
        return result

    def get_mra(self, mra_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/mras/{_q(mra_id)}")
        return result

    def mra_state(self, mra_id: str, at: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/v1/mras/{_q(mra_id)}/state", params={"at": at}
        )
        return result

    def list_mras(
        self, *, limit: int = 100, cursor: str | None = None, **filters: str | None
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", "/v1/mras", params={**filters, "limit": limit, "cursor": cursor}
        )
        return result

    def get_sez(self, sez: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request("GET", f"/v1/sez/{_q(sez)}")
        return result

    def list_sezs(self, *, limit: int = 100, cursor: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", "/v1/sez", params={"limit": limit, "cursor": cursor}
        )
        return result

    def trail(self, consignment_ref: str) -> list[dict[str, Any]]:
        result = self._request("GET", f"/v1/consignments/{_q(consignment_ref)}/trail")
        if isinstance(result, dict) and isinstance(result.get("items"), list):
            result = result["items"]
        events: list[dict[str, Any]] = result
        return events

    def verify_trail(self, consignment_ref: str) -> dict[str, Any]:
        result: dict[str, Any] = self._request(
            "GET", f"/v1/consignments/{_q(consignment_ref)}/verification"
        )
        return result

    def close(self) -> None:
        self._http.close()


def _problem(response: httpx.Response) -> ClientError:
    """An RFC 9457 problem (or any error answer) as a ClientError with its status."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return ClientError(
            status, "HTTP_ERROR", f"the node answered {status} {response.reason_phrase}"
        )
    code = body.get("code") if isinstance(body.get("code"), str) else "HTTP_ERROR"
    detail = body.get("detail") or body.get("title") or f"HTTP {status}"
    tx_id = body.get("tx_id") if isinstance(body.get("tx_id"), str) else None
    if code == "CHAINCODE_ERROR":  # a contract's refusal: name it as the services do
        code = contract_error(status, "").code
    return ClientError(status, str(code), " ".join(str(detail).split()), tx_id)


# --------------------------------------------------------------------------- identity
def load_identity(directory: Path, name: str) -> tuple[ProposalSigner, OrgPki]:
    """Wallet identity ``name`` of the node (or identity) directory as a proposal signer,
    with its organisation's unlocked PKI. The passphrase: ``CARAVAN_PASSPHRASE_<ORG>``,
    ``DIR/secrets/<ORG>.pass``, ``CARAVAN_PASSPHRASE``, else a prompt on a terminal."""
    entry = Wallet(directory / "wallet").get(name)
    org = entry.key.org
    try:
        pki = OrgPki(directory / "pki", org)
    except TrustServiceError as exc:
        raise NodeConfigMissing(
            f"identity {name}: no key store of {org} in {directory}: {exc}"
        ) from None
    passphrase = passphrase_for(directory, org) or resolve_passphrase(None)
    pin = None
    if pki.config.hsm is not None:
        pin = resolve_passphrase(None, env_var="CARAVAN_PKCS11_PIN", what="PKCS#11 PIN")
    pki.unlock(passphrase, pin)
    return signer_for(entry, {org: pki}), pki


class NodeConfigMissing(NodeError):
    code = "NO_KEY_STORE"
    status = 400


# --------------------------------------------------------------------------- CLI options
DirOpt = Annotated[
    Path | None,
    typer.Option(
        "--dir",
        envvar="CARAVAN_DIR",
        help="Node directory: talk to it directly, and take identities from its wallet.",
    ),
]
NodeOpt = Annotated[
    str | None,
    typer.Option(
        "--node",
        envvar="CARAVAN_NODE",
        help="URL of a node's API (e.g. http://127.0.0.1:8700); identities still come "
        "from --dir or --identity-dir.",
    ),
]
IdentityOpt = Annotated[
    str | None,
    typer.Option(
        "--identity",
        envvar="CARAVAN_IDENTITY",
        help="Wallet identity to act as (e.g. kz-customs-officer).",
    ),
]
IdentityDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--identity-dir",
        help="Directory holding wallet/ and pki/ for --identity (default: --dir).",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
#: the page size and continuation of a list command (the API's limit and cursor)
LimitOpt = Annotated[int, typer.Option("--limit", min=1, max=500, help="Page size.")]
CursorOpt = Annotated[
    str | None, typer.Option("--cursor", help="next_cursor of the previous page.")
]


@dataclass
class Connection:
    """An open client and, when an identity was given, its signer and PKI."""

    client: NodeClient
    signer: ProposalSigner | None
    pki: OrgPki | None
    #: True when the client talks to a node directory opened here
    local: bool

    def require_signer(self) -> ProposalSigner:
        if self.signer is None:
            raise InvalidArguments("this command writes to the ledger: give --identity NAME")
        return self.signer

    def propose(self, function: str, arg: dict[str, Any] | None) -> SignedProposal:
        """A proposal of ``function`` signed by the identity, timestamped now."""
        return submit.propose(
            self.require_signer(),
            function,
            arg,
            channel=self.client.channel,
            clock=self.client.clock,
        )


@contextmanager
def connect(
    *,
    directory: Path | None,
    node: str | None = None,
    identity: str | None = None,
    identity_dir: Path | None = None,
    need_identity: bool = False,
) -> Iterator[Connection]:
    """The client for ``--node URL`` (HTTP) or ``--dir DIR`` (local), with the identity."""
    if node is None and directory is None:
        raise fail("give --dir DIR (a node directory) or --node URL (a node's API)")
    if need_identity and identity is None:
        raise fail("this command writes to the ledger: give --identity NAME (a wallet identity)")
    keys = identity_dir or directory
    if identity is not None and keys is None:
        raise fail("--identity needs --dir or --identity-dir (where its wallet and key store are)")
    client: NodeClient
    signer: ProposalSigner | None = None
    pki: OrgPki | None = None
    if node is not None:
        if identity is not None and keys is not None:
            signer, pki = load_identity(keys, identity)
        client = HttpClient(node, signer)
    else:
        assert directory is not None
        opened = Node.open(directory)
        try:
            if identity is not None:
                if identity_dir is not None:
                    signer, pki = load_identity(identity_dir, identity)
                else:
                    signer = opened.signer(identity)
                    pki = opened.pkis.get(signer.msp_id)
        except BaseException:
            opened.close()
            raise
        client = LocalClient(opened, signer.msp_id if signer is not None else None)
    try:
        yield Connection(client, signer, pki, node is None)
    finally:
        client.close()


def _page_json(page: Page[Any]) -> dict[str, Any]:
    """An index page as the API answers it: ``{items, next_cursor}``."""
    return {"items": [dataclasses.asdict(e) for e in page.items], "next_cursor": page.next_cursor}

"""AEO mutual recognition agreements: propose → sign → in force ↔ suspended → terminated.

>>> invoke(stub, "ProposeMra", [json.dumps({"mra_id": "MRA-KZ-UZ-2026", …})])
>>> invoke(stub, "SignMra", ['{"mra_id": "MRA-KZ-UZ-2026", "legal_instrument_ref": …}'])

Stored states: negotiating → signed (when the last party signs) → terminated, with
suspension intervals. The state at time t is derived: ``in_force`` when signed and
t ≥ effective_from and no suspension covers t (no activation transaction is needed);
``signed`` before effective_from. Only parties act, with the role admin. Suspension is
unilateral; **only the party that suspended may resume**; termination is unilateral and
final. Every step records who (MSP id + certificate subject), when (tx time), the tx id
and the act (legal_instrument_ref, document_hash).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from . import registry
from .aeo import AEO_TYPES
from .context import MSP_ID, SHA256_HEX, Context, Fields, one_object
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .timeutil import format_time

__all__ = ["FUNCTIONS", "MRA_ID", "Act", "mras_between", "state_at"]

MRA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}\Z")
BENEFITS_MAX = 32


@dataclass(frozen=True)
class Act:
    legal_instrument_ref: str
    document_hash: str

    def as_json(self) -> dict[str, str]:
        return {
            "legal_instrument_ref": self.legal_instrument_ref,
            "document_hash": self.document_hash,
        }


def _act(f: Fields) -> Act:
    return Act(
        f.text("legal_instrument_ref", max_len=512), f.text("document_hash", pattern=SHA256_HEX)
    )


@dataclass(frozen=True)
class MraProposal:
    mra_id: str
    title: str
    parties: tuple[str, ...]
    recognised_types: dict[str, tuple[str, ...]]
    benefits: tuple[str, ...]
    effective_from: int
    review_date: int | None
    act: Act


def _proposal(args: list[str]) -> MraProposal:
    f = Fields(one_object(args), "mra")
    mra_id = f.text("mra_id", pattern=MRA_ID)
    title = f.text("title", max_len=512)
    parties = f.texts("parties", pattern=MSP_ID, min_items=2, max_items=32)
    rt = f.obj("recognised_types")
    recognised = {
        p: rt.texts(p, choices=AEO_TYPES, min_items=1, max_items=3) for p in sorted(parties)
    }
    rt.done()
    benefits = f.texts("benefits", max_items=BENEFITS_MAX)
    effective_from = f.time("effective_from")
    review_date = f.opt_time("review_date")
    act = _act(f)
    f.done()
    return MraProposal(
        mra_id, title, parties, recognised, benefits, effective_from, review_date, act
    )


@dataclass(frozen=True)
class MraStep:
    mra_id: str
    act: Act
    reason: str | None


def _step_request(args: list[str], *, reason: bool) -> MraStep:
    f = Fields(one_object(args), "step")
    mra_id = f.text("mra_id", pattern=MRA_ID)
    act = _act(f)
    why = f.text("reason", max_len=1024) if reason else None
    f.done()
    return MraStep(mra_id, act, why)


# ------------------------------------------------------------------ state at t
def state_at(mra: dict[str, Any], at: int) -> str:
    """not_proposed | negotiating | signed | in_force | suspended | terminated at ``at``."""
    if at < mra["proposed_us"]:
        return "not_proposed"
    if mra["terminated_us"] is not None and at >= mra["terminated_us"]:
        return "terminated"
    if mra["signed_us"] is None or at < mra["signed_us"]:
        return "negotiating"
    for s in mra["suspensions"]:
        if s["from_us"] <= at and (s["to_us"] is None or at < s["to_us"]):
            return "suspended"
    return "in_force" if at >= mra["effective_from_us"] else "signed"


def mras_between(ctx: Context, a: str, b: str) -> list[dict[str, Any]]:
    """Every MRA with both ``a`` and ``b`` as parties, via the pair index (in mra_id order).

    The documents are shared views (Context.view): READ ONLY. IsRecognised reads the
    same few MRAs on every query, so each version of an MRA is parsed once.
    """
    lo, hi = sorted((a, b))
    out = []
    for mra_id in ctx.scan_values("mra-pair", lo, hi):
        doc = ctx.view(ctx.key("mra", mra_id))
        if doc is not None:
            out.append(doc)
    return out


# ------------------------------------------------------------------------ writes
def _party(ctx: Context, mra: dict[str, Any]) -> str:
    me = registry.require_member(ctx, "admin")["msp_id"]
    if me not in mra["parties"]:
        raise Forbidden(f"{me} is not a party to MRA {mra['mra_id']}")
    return str(me)


def _load(ctx: Context, mra_id: str) -> dict[str, Any]:
    doc: dict[str, Any] | None = ctx.get(ctx.key("mra", mra_id))
    if doc is None:
        raise NotFound(f"MRA {mra_id} not found")
    return doc


def _record(
    ctx: Context, mra: dict[str, Any], action: str, act: Act, reason: str | None = None
) -> None:
    mra["steps"].append({"action": action, **ctx.step(), **act.as_json(), "reason": reason})
    ctx.put(ctx.key("mra", mra["mra_id"]), mra)


def propose_mra(ctx: Context, args: list[str]) -> Any:
    p = _proposal(args)
    me = registry.require_member(ctx, "admin")["msp_id"]
    if me not in p.parties:
        raise Forbidden(f"{me} is not a party to MRA {p.mra_id}")
    for party in p.parties:
        if registry.member(ctx, party) is None:
            raise BadRequest(f"party {party} is not a member of the consortium")
    if ctx.get(ctx.key("mra", p.mra_id)) is not None:
        raise Conflict(f"MRA {p.mra_id} already exists")
    mra = {
        "mra_id": p.mra_id,
        "title": p.title,
        "parties": list(p.parties),
        "recognised_types": {k: list(v) for k, v in p.recognised_types.items()},
        "benefits": list(p.benefits),
        "effective_from": format_time(p.effective_from),
        "effective_from_us": p.effective_from,
        "review_date": None if p.review_date is None else format_time(p.review_date),
        **p.act.as_json(),
        "state": "negotiating",
        "proposed_us": ctx.now,
        "signatures": [],
        "signed_us": None,
        "suspensions": [],
        "terminated_us": None,
        "steps": [],
    }
    for a, b in itertools.combinations(sorted(p.parties), 2):
        ctx.put(ctx.key("mra-pair", a, b, p.mra_id), p.mra_id)
    _record(ctx, mra, "ProposeMra", p.act)
    ctx.emit("MraProposed", mra_id=p.mra_id, parties=list(p.parties), by=me)
    return {"mra_id": p.mra_id, "state": "negotiating", "tx_id": ctx.tx_id}


def sign_mra(ctx: Context, args: list[str]) -> Any:
    req = _step_request(args, reason=False)
    mra = _load(ctx, req.mra_id)
    me = _party(ctx, mra)
    if mra["state"] != "negotiating":
        raise Conflict(f"MRA {req.mra_id} is {state_at(mra, ctx.now)}: it cannot be signed")
    if any(s["by"]["msp_id"] == me for s in mra["signatures"]):
        raise Conflict(f"{me} has already signed MRA {req.mra_id}")
    if req.act.document_hash != mra["document_hash"]:
        raise Conflict(f"document_hash differs from the proposed text of MRA {req.mra_id}")
    if req.act.legal_instrument_ref != mra["legal_instrument_ref"]:
        raise Conflict(f"legal_instrument_ref differs from the proposed act of MRA {req.mra_id}")
    mra["signatures"].append(ctx.step())
    signed = {s["by"]["msp_id"] for s in mra["signatures"]}
    all_signed = signed == set(mra["parties"])
    if all_signed:
        mra["state"] = "signed"
        mra["signed_us"] = ctx.now
    _record(ctx, mra, "SignMra", req.act)
    ctx.emit("MraSigned", mra_id=req.mra_id, party=me, all_signed=all_signed)
    return {"mra_id": req.mra_id, "state": state_at(mra, ctx.now), "tx_id": ctx.tx_id}


def suspend_mra(ctx: Context, args: list[str]) -> Any:
    req = _step_request(args, reason=True)
    mra = _load(ctx, req.mra_id)
    me = _party(ctx, mra)
    now = state_at(mra, ctx.now)
    if now != "in_force":
        raise Conflict(f"MRA {req.mra_id} is {now}, not in force: it cannot be suspended")
    mra["suspensions"].append({"from_us": ctx.now, "to_us": None, "by": me, "reason": req.reason})
    _record(ctx, mra, "SuspendMra", req.act, req.reason)
    ctx.emit("MraSuspended", mra_id=req.mra_id, party=me, reason=req.reason)
    return {"mra_id": req.mra_id, "state": "suspended", "tx_id": ctx.tx_id}


def resume_mra(ctx: Context, args: list[str]) -> Any:
    req = _step_request(args, reason=False)
    mra = _load(ctx, req.mra_id)
    me = _party(ctx, mra)
    now = state_at(mra, ctx.now)
    if now != "suspended":
        raise Conflict(f"MRA {req.mra_id} is {now}, not suspended: it cannot be resumed")
    open_suspension = mra["suspensions"][-1]
    if open_suspension["by"] != me:
        raise Forbidden(
            f"only {open_suspension['by']}, which suspended MRA {req.mra_id}, may resume it"
        )
    open_suspension["to_us"] = ctx.now
    _record(ctx, mra, "ResumeMra", req.act)
    ctx.emit("MraResumed", mra_id=req.mra_id, party=me)
    return {"mra_id": req.mra_id, "state": state_at(mra, ctx.now), "tx_id": ctx.tx_id}


def terminate_mra(ctx: Context, args: list[str]) -> Any:
    req = _step_request(args, reason=True)
    mra = _load(ctx, req.mra_id)
    me = _party(ctx, mra)
    if mra["state"] == "terminated":
        raise Conflict(f"MRA {req.mra_id} is terminated: it cannot be terminated again")
    mra["state"] = "terminated"
    mra["terminated_us"] = ctx.now
    for s in mra["suspensions"]:
        if s["to_us"] is None:
            s["to_us"] = ctx.now
    _record(ctx, mra, "TerminateMra", req.act, req.reason)
    ctx.emit("MraTerminated", mra_id=req.mra_id, party=me, reason=req.reason)
    return {"mra_id": req.mra_id, "state": "terminated", "tx_id": ctx.tx_id}


# ------------------------------------------------------------------------- reads
def get_mra(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    mra_id = f.text("mra_id", pattern=MRA_ID)
    f.done()
    mra = _load(ctx, mra_id)
    return {**mra, "state_now": state_at(mra, ctx.now)}


def get_mra_state_at(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    mra_id = f.text("mra_id", pattern=MRA_ID)
    at = f.time("at")
    f.done()
    mra = _load(ctx, mra_id)
    return {"mra_id": mra_id, "at": format_time(at), "state": state_at(mra, at)}


def get_mras_between(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    a = f.text("msp_a", pattern=MSP_ID)
    b = f.text("msp_b", pattern=MSP_ID)
    f.done()
    if a == b:
        raise BadRequest("query.msp_a and query.msp_b must differ")
    return [
        {"mra_id": m["mra_id"], "parties": m["parties"], "state_now": state_at(m, ctx.now)}
        for m in mras_between(ctx, a, b)
    ]


FUNCTIONS = {
    "GetMrasBetween": get_mras_between,
    "ProposeMra": propose_mra,
    "SignMra": sign_mra,
    "SuspendMra": suspend_mra,
    "ResumeMra": resume_mra,
    "TerminateMra": terminate_mra,
    "GetMra": get_mra,
    "GetMraStateAt": get_mra_state_at,
}

"""SEZ consignment events: accredited operators anchor EPCIS 2.0 event hashes in Merkle batches.

>>> invoke(stub, "RegisterSezOperator", ['{"sez": "KZ-KHORGOS", "name": …, "operator_subject": …}'])
>>> invoke(stub, "AnchorEvents", [json.dumps({"sez": "KZ-KHORGOS", "events": [...]})])
>>> invoke(stub, "VerifyTrail", ['{"consignment_ref": "25KZ1234567-0001"}'])

An SEZ is registered by the administration of its country (the SEZ code starts with the
country); its operators are identities of that administration with the role
``sez-operator`` and ``attrs.sez`` equal to the SEZ, registered by subject. An operator
anchors events of its OWN zone only. Each event is stored with its CBV 2.0 event hash
(``ni:///sha-256;<hex>?ver=CBV2.0``), the indexed fields, its sequence number in the
consignment and the hash of the consignment's previous event — the contract links it
itself and refuses a caller-supplied link that disagrees. A batch is an RFC 6962 Merkle
tree over the canonical JSON of the stored event fields, in batch order; each event
gets its inclusion proof. Corrections are new events whose ``corrects`` list
(errorDeclaration) names earlier events of the same consignment; nothing is edited.
Trails are keyed by consignment + sequence number, so a trail query reads only that
consignment's keys.
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

from . import registry
from .aeo import AEO_ID
from .canonical import Encoded, ObjectLayout, canonical_json, finish, integer, json_text, quote
from .context import Context, Fields, one_object
from .errors import BadRequest, Conflict, Forbidden, NotFound
from .merkle import leaf_hash, tree, verify_inclusion
from .timeutil import format_time, parse_time

__all__ = ["EVENT_HASH", "EVENT_TYPES", "FUNCTIONS", "SEZ_CODE", "leaf_of"]

EVENT_HASH = re.compile(r"ni:///sha-256;[0-9a-f]{64}\?ver=CBV2\.0\Z")
SEZ_CODE = re.compile(r"([A-Z]{2})-[A-Z0-9][A-Z0-9-]{0,31}\Z")
CONSIGNMENT_REF = re.compile(r"[A-Za-z0-9][A-Za-z0-9./:_-]{0,127}\Z")
EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransactionEvent",
    "TransformationEvent",
    "AssociationEvent",
)
MAX_BATCH = 4096
LEAF_FIELDS = (
    "event_hash",
    "consignment_ref",
    "seq",
    "prev_event_hash",
    "event_type",
    "biz_step",
    "disposition",
    "event_time",
    "location",
    "aeo_id",
    "sez",
    "corrects",
)
BATCH_FIELDS = ("batch_id", "batch_root", "leaf_index", "batch_size", "proof", "anchored_at", "by")
# AnchorEvents encodes each event's values once, for its Merkle leaf and its stored entry
# (canonical.ObjectLayout); GetTrail and VerifyTrail read entries back with leaf_of().
_LEAF = ObjectLayout(LEAF_FIELDS)
_STORED = ObjectLayout(LEAF_FIELDS + BATCH_FIELDS)
_POINTER = ObjectLayout(("consignment_ref", "seq"))
_HEAD = ObjectLayout(("seq", "event_hash", "sez"))
_BATCH = ObjectLayout(("batch_id", "root", "size", "sez", "anchored_at"))
_PROOF = ObjectLayout(("event_hash", "consignment_ref", "seq", "leaf_index", "leaf_hash", "path"))
_RESULT = ObjectLayout(("batch_id", "batch_root", "size", "proofs"))


class ConsignmentEvent(NamedTuple):  # a tuple: built up to 4096 times a transaction
    event_hash: str
    consignment_ref: str
    event_type: str
    biz_step: str
    disposition: str | None
    event_time: str
    location: str
    aeo_id: str | None
    prev_event_hash: str | None
    corrects: tuple[str, ...]


def _event(f: Fields) -> ConsignmentEvent:
    event = ConsignmentEvent(
        event_hash=f.text("event_hash", pattern=EVENT_HASH),
        consignment_ref=f.text("consignment_ref", pattern=CONSIGNMENT_REF),
        event_type=f.text("event_type", choices=EVENT_TYPES),
        biz_step=f.text("biz_step"),
        disposition=f.opt_text("disposition"),
        event_time=format_time(f.time("event_time")),
        location=f.text("location", max_len=512),
        aeo_id=f.opt_text("aeo_id", pattern=AEO_ID),
        prev_event_hash=f.opt_text("prev_event_hash", pattern=EVENT_HASH),
        corrects=f.texts("corrects", pattern=EVENT_HASH, max_items=64, optional=True),
    )
    f.done()
    return event


_EVENT_MEMBERS = frozenset(
    (
        "event_hash",
        "consignment_ref",
        "event_type",
        "biz_step",
        "disposition",
        "event_time",
        "location",
        "aeo_id",
        "prev_event_hash",
        "corrects",
    )
)


def _plain_batch(value: Any) -> tuple[str, list[ConsignmentEvent]] | None:
    """The SEZ and events of a batch that passes every check, else None (see _plain_event)."""
    if type(value) is not dict or len(value) != 2:  # exactly sez and events
        return None
    sez, items = value.get("sez"), value.get("events")
    if not (
        type(sez) is str
        and SEZ_CODE.match(sez)
        and type(items) is list
        and 0 < len(items) <= MAX_BATCH
    ):
        return None
    events = []
    for item in items:
        event = _plain_event(item)
        if event is None:
            return None
        events.append(event)
    return sez, events


def _events(f: Fields) -> list[ConsignmentEvent]:
    """The batch's events; when one is not plainly valid, _event() says what is wrong."""
    items = f.value.get("events")
    if type(items) is list and 0 < len(items) <= MAX_BATCH:
        events = []
        for item in items:
            event = _plain_event(item)
            if event is None:
                break
            events.append(event)
        else:
            f.seen.add("events")
            return events
    return [_event(e) for e in f.objs("events", min_items=1, max_items=MAX_BATCH)]


def _plain_event(item: Any) -> ConsignmentEvent | None:
    """The event when it passes every check of _event(), else None.

    The hot path of AnchorEvents (up to 4096 events a transaction): the same checks as
    _event() without a Fields call per member; None sends the batch to _event(), whose
    checks run in their documented order with their messages.
    """
    if type(item) is not dict or not _EVENT_MEMBERS.issuperset(item):
        return None
    get = item.get
    event_hash, ref, event_type = get("event_hash"), get("consignment_ref"), get("event_type")
    biz_step, disposition, location = get("biz_step"), get("disposition"), get("location")
    aeo_id, prev, corrects = get("aeo_id"), get("prev_event_hash"), get("corrects")
    if not (
        type(event_hash) is str
        and EVENT_HASH.match(event_hash)  # patterns bound the length (≤ 256) too
        and type(ref) is str
        and CONSIGNMENT_REF.match(ref)
        and type(event_type) is str
        and event_type in EVENT_TYPES
        and type(biz_step) is str
        and 0 < len(biz_step) <= 256
        and (disposition is None or (type(disposition) is str and 0 < len(disposition) <= 256))
        and type(location) is str
        and 0 < len(location) <= 512
        and (aeo_id is None or (type(aeo_id) is str and AEO_ID.match(aeo_id)))
        and (prev is None or (type(prev) is str and EVENT_HASH.match(prev)))
    ):
        return None
    if corrects is None:
        corrected: tuple[str, ...] = ()
    elif (
        type(corrects) is list
        and len(corrects) <= 64
        and all(type(c) is str and EVENT_HASH.match(c) for c in corrects)
        and len(set(corrects)) == len(corrects)
    ):
        corrected = tuple(corrects)
    else:
        return None
    try:
        event_time = format_time(parse_time(get("event_time")))
    except BadRequest:
        return None
    return ConsignmentEvent(
        event_hash,
        ref,
        event_type,
        biz_step,
        disposition,
        event_time,
        location,
        aeo_id,
        prev,
        corrected,
    )


def leaf_of(entry: dict[str, Any]) -> bytes:
    """The Merkle leaf hash of a stored event (its LEAF_FIELDS, canonical JSON)."""
    return leaf_hash(canonical_json({k: entry[k] for k in LEAF_FIELDS}))


def register_sez_operator(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "registration")
    sez = f.text("sez", pattern=SEZ_CODE)
    name = f.text("name", max_len=512)
    subject = f.text("operator_subject", max_len=1024)
    f.done()
    me = registry.require_member(ctx, "admin")
    if me["country"] != sez[:2]:
        raise Forbidden(f"{me['msp_id']} ({me['country']}) may not accredit operators of {sez}")
    key = ctx.key("sez", sez)
    record: dict[str, Any] = ctx.get(key) or {
        "sez": sez,
        "country": me["country"],
        "msp_id": me["msp_id"],
        "name": name,
        "operators": [],
    }
    if any(op["subject"] == subject for op in record["operators"]):
        raise Conflict(f"{subject} is already an operator of {sez}")
    record["operators"].append({"subject": subject, "registered": ctx.step()})
    ctx.put(key, record)
    ctx.emit("SezOperatorRegistered", sez=sez, subject=subject)
    return record


def _operator(ctx: Context, sez: str) -> None:
    who = ctx.require_role("sez-operator")
    if who.attrs.get("sez") != sez:
        raise Forbidden(
            f"an operator of {who.attrs.get('sez') or 'no SEZ'} may not anchor events of {sez}"
        )
    record = ctx.view(ctx.key("sez", sez))  # read only
    if record is None:
        raise NotFound(f"SEZ {sez} is not registered")
    if who.msp_id != record["msp_id"]:
        raise Forbidden(f"{who.msp_id} is not the administration that accredits {sez}")
    if not any(op["subject"] == who.subject for op in record["operators"]):
        raise Forbidden(f"{who.subject} is not a registered operator of {sez}")


@functools.lru_cache(maxsize=256)
def _who_text(msp_id: str, subject: str) -> str:
    """The canonical text of Identity.who(): the same operators anchor again and again."""
    return json_text({"msp_id": msp_id, "subject": subject})


def _text(value: Any) -> str:
    """Canonical text of a value: a validated string at C speed, anything else checked."""
    if type(value) is str:
        return quote(value)
    return "null" if value is None else json_text(value)


def anchor_events(ctx: Context, args: list[str]) -> Any:
    """Check the batch and each event's links, then write it (the ledger's hot path).

    The writes are assembled from canonical texts (ObjectLayout): each value is encoded
    once and serves the Merkle leaf, the stored entry, its pointer, the consignment head,
    the batch record and the result, byte for byte what canonical_json would make.
    """
    request = one_object(args)
    plain = _plain_batch(request)
    if plain is None:  # Fields says what is wrong, in its order
        f = Fields(request, "batch")
        sez = f.text("sez", pattern=SEZ_CODE)
        events = _events(f)
        f.done()
    else:
        sez, events = plain
    hashes = [e.event_hash for e in events]
    if len(set(hashes)) != len(hashes):
        raise BadRequest("batch lists the same event hash twice")
    _operator(ctx, sez)
    heads: dict[str, dict[str, Any]] = {}
    head_texts: dict[str, dict[str, str]] = {}  # consignment -> members of its last event
    batch_events: dict[str, str] = {}  # event hash -> consignment, for corrections in the batch
    stored: list[dict[str, str]] = []  # per event: member -> canonical text (see _STORED)
    keys: list[tuple[str, int, str]] = []  # per event: consignment, seq, event hash
    corrections: list[dict[str, Any]] = []
    sez_text = quote(sez)
    for ev in events:
        if ctx.get(ctx.key("event", ev.event_hash)) is not None:
            raise Conflict(f"event {ev.event_hash} is already anchored")
        head = heads.get(ev.consignment_ref) or ctx.get(ctx.key("consignment", ev.consignment_ref))
        expected = head["event_hash"] if head else None
        if ev.prev_event_hash is not None and ev.prev_event_hash != expected:
            raise Conflict(
                f"prev_event_hash of {ev.event_hash} disagrees with the last event of "
                f"consignment {ev.consignment_ref} ({expected or 'none'})"
            )
        for corrected in ev.corrects:
            owner = batch_events.get(corrected)
            if owner is None:
                found = ctx.get(ctx.key("event", corrected))
                owner = None if found is None else found["consignment_ref"]
            if owner is None:
                raise NotFound(f"corrected event {corrected} not found")
            if owner != ev.consignment_ref:
                raise Conflict(f"corrected event {corrected} belongs to another consignment")
            corrections.append({"event_hash": ev.event_hash, "corrects": corrected})
        seq = (head["seq"] if head else 0) + 1
        # the stored event's LEAF_FIELDS, as canonical texts (all strings were validated)
        stored.append(
            {
                "event_hash": quote(ev.event_hash),
                "consignment_ref": quote(ev.consignment_ref),
                "seq": integer(seq),
                "prev_event_hash": _text(expected),
                "event_type": quote(ev.event_type),
                "biz_step": quote(ev.biz_step),
                "disposition": _text(ev.disposition),
                "event_time": quote(ev.event_time),
                "location": quote(ev.location),
                "aeo_id": _text(ev.aeo_id),
                "sez": sez_text,
                "corrects": "[" + ",".join(map(quote, ev.corrects)) + "]",
            }
        )
        keys.append((ev.consignment_ref, seq, ev.event_hash))
        heads[ev.consignment_ref] = {"seq": seq, "event_hash": ev.event_hash, "sez": sez}
        head_texts[ev.consignment_ref] = stored[-1]
        batch_events[ev.event_hash] = ev.consignment_ref
    leaves = [leaf_hash(finish(_LEAF.text(members))) for members in stored]
    root, paths = tree(leaves)
    root_hex = root.hex()
    batch = {  # the members every stored event of the batch shares
        "batch_id": _text(ctx.tx_id),
        "batch_root": quote(root_hex),
        "batch_size": integer(len(stored)),
        "anchored_at": _text(ctx.now_text),
        "by": _who_text(ctx.identity.msp_id, ctx.identity.subject),
    }
    proofs = []
    for i, members in enumerate(stored):
        members.update(batch)
        members["leaf_index"] = integer(i)
        members["proof"] = members["path"] = (
            "[" + ",".join([quote(p.hex()) for p in paths[i]]) + "]"
        )
        members["leaf_hash"] = quote(leaves[i].hex())
        ref, seq, event_hash = keys[i]
        ctx.put_canonical(ctx.key("trail", ref, f"{seq:012d}"), finish(_STORED.text(members)))
        ctx.put_canonical(ctx.key("event", event_hash), finish(_POINTER.text(members)))
        proofs.append(_PROOF.text(members))
    for ref in sorted(heads):
        ctx.put_canonical(ctx.key("consignment", ref), finish(_HEAD.text(head_texts[ref])))
    batch["root"], batch["size"], batch["sez"] = batch["batch_root"], batch["batch_size"], sez_text
    ctx.put_canonical(ctx.key("batch", ctx.tx_id), finish(_BATCH.text(batch)))
    ctx.emit(
        "EventsAnchored",
        sez=sez,
        batch_root=root_hex,
        size=len(stored),
        consignments=sorted(heads),
    )
    for c in corrections:
        ctx.emit("EventCorrected", **c)
    batch["proofs"] = "[" + ",".join(proofs) + "]"
    # {batch_id, batch_root, size, proofs: [{event_hash, consignment_ref, seq, leaf_index,
    # leaf_hash, path}]}, from the texts made above
    return Encoded(finish(_RESULT.text(batch)))


def _ref(args: list[str]) -> str:
    f = Fields(one_object(args), "query")
    ref = f.text("consignment_ref", pattern=CONSIGNMENT_REF)
    f.done()
    return ref


def _trail(ctx: Context, ref: str) -> list[dict[str, Any]]:
    trail = list(ctx.scan_values("trail", ref))
    if not trail:
        raise NotFound(f"consignment {ref} has no anchored events")
    return trail


def get_trail(ctx: Context, args: list[str]) -> Any:
    return _trail(ctx, _ref(args))


def verify_trail(ctx: Context, args: list[str]) -> Any:
    ref = _ref(args)
    trail = _trail(ctx, ref)
    problems: list[str] = []
    roots: dict[str, str | None] = {}
    seqs: dict[str, int] = {}  # the events so far: a correction names an earlier one
    corrections: list[dict[str, Any]] = []
    prev: str | None = None
    for i, entry in enumerate(trail, start=1):
        h = entry["event_hash"]
        if entry["corrects"]:
            for corrected in entry["corrects"]:
                if corrected not in seqs:
                    problems.append(f"event {h}: corrects {corrected}, not an earlier event")
            fixed = [{"seq": seqs.get(c), "event_hash": c} for c in entry["corrects"]]
            corrections.append({"seq": entry["seq"], "event_hash": h, "corrects": fixed})
        seqs[h] = entry["seq"]
        if entry["seq"] != i:
            problems.append(f"event {h}: sequence {entry['seq']}, expected {i}")
        if entry["prev_event_hash"] != prev:
            problems.append(f"event {h}: link to the previous event is broken")
        batch_id = entry["batch_id"]
        if batch_id not in roots:
            batch = ctx.get(ctx.key("batch", batch_id))
            roots[batch_id] = None if batch is None else batch["root"]
        root = roots[batch_id]
        if root is None or root != entry["batch_root"]:
            problems.append(f"event {h}: batch {batch_id} root is missing or differs")
        elif not verify_inclusion(
            leaf_of(entry),
            entry["leaf_index"],
            entry["batch_size"],
            [bytes.fromhex(p) for p in entry["proof"]],
            bytes.fromhex(root),
        ):
            problems.append(f"event {h}: Merkle inclusion proof fails")
        prev = h
    return {
        "consignment_ref": ref,
        "ok": not problems,
        "events": len(trail),
        "problems": problems,
        "corrections": corrections,
    }


def get_event(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    event_hash = f.text("event_hash", pattern=EVENT_HASH)
    f.done()
    pointer = ctx.get(ctx.key("event", event_hash))
    if pointer is None:
        raise NotFound(f"event {event_hash} is not anchored")
    return ctx.get(ctx.key("trail", pointer["consignment_ref"], f"{pointer['seq']:012d}"))


def get_sez(ctx: Context, args: list[str]) -> Any:
    f = Fields(one_object(args), "query")
    sez = f.text("sez", pattern=SEZ_CODE)
    f.done()
    record = ctx.get(ctx.key("sez", sez))
    if record is None:
        raise NotFound(f"SEZ {sez} is not registered")
    return record


FUNCTIONS = {
    "RegisterSezOperator": register_sez_operator,
    "GetSez": get_sez,
    "GetEvent": get_event,
    "AnchorEvents": anchor_events,
    "GetTrail": get_trail,
    "VerifyTrail": verify_trail,
}

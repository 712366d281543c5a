"""CBV 2.0 event hashes of EPCIS 2.0 events, with GS1's reference implementation.

>>> event_hashes([{"type": "ObjectEvent", "eventTime": "…", …}])
['ni:///sha-256;…?ver=CBV2.0']

The hash is the one of CBV 2.0 §8.9 ("EPCIS event hash"): SHA-256 over the event's
canonical pre-hash string, as computed by ``epcis-event-hash-generator`` (GS1's
reference code). That library expands the document as JSON-LD; a node or a CLI must not
fetch JSON-LD contexts from the internet (offline verifiers, no requests steered by
input), so the GS1 EPCIS 2.0 context, whatever URL names it, is replaced by the copy the
library ships, inline contexts (extension namespaces) are kept, and any other remote
context is refused.

The mapping of EPCIS events to the entries of the ``AnchorEvents`` contract lives here too
(:func:`event_fields`, :func:`anchor_plan`), so that every client that anchors EPCIS
documents (the CLI, the demo, an API capture route) maps them one way:

>>> plan = anchor_plan(document["epcisBody"]["eventList"], document["@context"])
>>> plan.entries        # [{event_hash, consignment_ref, event_type, biz_step, …, corrects?}]
>>> plan.declarations   # the errorDeclaration events and what they name

**Corrections (EPCIS 2.0 §7.4.1.5, CBV 2.0 §8.9).** An EPCIS error declaration is a copy of
the erroneous event (same fields, same ``eventID``) with an ``errorDeclaration``
``{declarationTime, reason?, correctiveEventIDs?}``. Its CBV 2.0 hash leaves the
errorDeclaration out, so it IS the erroneous event's hash: the declaration is not a new
event and is not anchored itself. The new events are the corrective events its
``correctiveEventIDs`` name (by ``eventID``, or by their CBV 2.0 hash): each is anchored
with ``corrects`` = the hashes of the events it corrects — the contract's correction
(docs/chaincode.md), checked there against the consignment's anchored events. The
corrective events must be in the same document as the declaration, since an anchored
event is never edited; a declaration without one cannot be put on the ledger.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chaincode.errors import ContractError
from chaincode.timeutil import format_time, parse_time
from chaincode.trace import EVENT_HASH, EVENT_TYPES

from .services.errors import InvalidArguments

__all__ = [
    "GS1_EPCIS_CONTEXTS",
    "AnchorPlan",
    "ErrorDeclaration",
    "anchor_plan",
    "checked_hashes",
    "epcis_event_hash",
    "error_declaration",
    "event_fields",
    "event_hashes",
]

#: the URL whose copy the library ships (offline)
_BUNDLED = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
#: names of the GS1 EPCIS 2.0 JSON-LD context seen in documents
GS1_EPCIS_CONTEXTS = frozenset(
    {
        _BUNDLED,
        "https://ref.gs1.org/standards/epcis/epcis-context.jsonld",
        "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
        "https://gs1.github.io/EPCIS/epcis-context.jsonld",
    }
)


def _contexts(value: Any, where: str) -> list[Any]:
    items = value if isinstance(value, list) else [value]
    out: list[Any] = []
    for item in items:
        if isinstance(item, str):
            if item not in GS1_EPCIS_CONTEXTS:
                raise InvalidArguments(
                    f"{where}: JSON-LD context {item!r} is not fetched; use the GS1 EPCIS 2.0 "
                    "context and inline extension namespaces"
                )
            item = _BUNDLED
        elif not isinstance(item, dict):
            raise InvalidArguments(f"{where}: a JSON-LD context is a URL or an object")
        if item not in out:
            out.append(item)
    return out


def event_hashes(events: Sequence[Any], context: Any = None, *, first: int = 1) -> list[str]:
    """The CBV 2.0 hash of each event, in order (``context``: the document's @context).

    ``first`` numbers the events in error messages (``event N: …``).
    """
    document_context = _contexts(context if context is not None else _BUNDLED, "document")
    if _BUNDLED not in document_context:
        document_context.insert(0, _BUNDLED)
    checked: list[dict[str, Any]] = []
    for n, event in enumerate(events, start=first):
        if not isinstance(event, dict):
            raise InvalidArguments(f"event {n}: an event is a JSON object")
        event = copy.deepcopy(event)
        if "@context" in event:
            event["@context"] = _contexts(event["@context"], f"event {n}")
        checked.append(event)
    try:
        return _hash_all(checked, document_context)
    except Exception:  # name the event that fails: hash them one by one
        for n, event in enumerate(checked, start=first):
            try:
                _hash_all([event], document_context)
            except Exception as exc:  # the library raises whatever its parser meets
                raise InvalidArguments(
                    f"event {n}: no CBV 2.0 event hash ({type(exc).__name__}: {exc})"
                ) from None
        raise InvalidArguments("the events have no CBV 2.0 event hashes") from None


def _hash_all(events: list[dict[str, Any]], context: list[Any]) -> list[str]:
    from epcis_event_hash_generator import hash_generator, json_to_py

    document = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "1970-01-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }
    parsed = json_to_py.event_list_from_epcis_document_str(json.dumps(document))
    hashes = hash_generator.calculate_hashes_from_pre_hashes(
        hash_generator.derive_prehashes_from_events(parsed)
    )
    if len(hashes) != len(events):
        raise ValueError(f"{len(hashes)} hashes for {len(events)} events")
    return [str(h) for h in hashes]


# --------------------------------------------------------------------------- hashes
def checked_hashes(events: Sequence[Any], context: Any = None) -> list[str]:
    """CBV 2.0 hashes; an ``eventID`` that is a hash must be the computed one."""
    hashes = event_hashes(events, context)
    for n, (event, computed) in enumerate(zip(events, hashes, strict=True), start=1):
        given = event.get("eventID")
        if isinstance(given, str) and EVENT_HASH.match(given) and given != computed:
            raise InvalidArguments(
                f"event {n}: eventID {given} is not the event's CBV 2.0 hash ({computed}): "
                "the event was changed after its hash was taken"
            )
    return hashes


def epcis_event_hash(event: dict[str, Any], context: Any = None) -> str:
    """``ni:///sha-256;<hex>?ver=CBV2.0``: the event's CBV 2.0 hash (GS1's algorithm)."""
    return checked_hashes([event], context)[0]


# --------------------------------------------------------------------------- fields
#: CBV vocabulary prefixes stripped from bizStep / disposition / reason (URN and web URI)
_CBV_PREFIXES = {
    "bizStep": ("urn:epcglobal:cbv:bizstep:", "https://ref.gs1.org/cbv/BizStep-"),
    "disposition": ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    "reason": ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
}
_UCR_PREFIX = "urn:wco:ucr:"
_UCR_TYPE = re.compile(r"(?:^|[:/#-])ucr\Z", re.IGNORECASE)
_OFFSET = re.compile(r"(?:[Zz]|[+-]\d{2}:\d{2})\Z")


def _vocab(value: Any, name: str, kind: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidArguments(f"{name} must be a string")
    for prefix in _CBV_PREFIXES[kind]:
        if value.startswith(prefix):
            return value[len(prefix) :]
    return value


def _location(event: dict[str, Any]) -> str:
    for name in ("bizLocation", "readPoint"):
        where = event.get(name)
        if isinstance(where, dict) and isinstance(where.get("id"), str) and where["id"]:
            return str(where["id"])
    raise InvalidArguments("the event has no bizLocation.id or readPoint.id")


def _consignment(event: dict[str, Any]) -> str:
    items = event.get("bizTransactionList")
    if not isinstance(items, list) or not items:
        raise InvalidArguments(
            "the event names no consignment (no bizTransactionList): give --consignment-ref"
        )
    refs = [i for i in items if isinstance(i, dict) and isinstance(i.get("bizTransaction"), str)]
    ucr = [i for i in refs if isinstance(i.get("type"), str) and _UCR_TYPE.search(i["type"])]
    chosen = ucr or refs
    if len(chosen) != 1:
        raise InvalidArguments(
            "cannot tell the consignment: give one bizTransaction of type ucr, or --consignment-ref"
        )
    value = str(chosen[0]["bizTransaction"])
    return value[len(_UCR_PREFIX) :] if value.startswith(_UCR_PREFIX) else value


def _event_time(event: dict[str, Any]) -> str:
    when = event.get("eventTime")
    if not isinstance(when, str) or not when:
        raise InvalidArguments("the event has no eventTime")
    if _OFFSET.search(when) is None:
        offset = event.get("eventTimeZoneOffset")
        if not isinstance(offset, str):
            raise InvalidArguments(
                "eventTime has no UTC offset and there is no eventTimeZoneOffset"
            )
        when += offset
    return when


def event_fields(
    event: Any,
    *,
    consignment_ref: str | None = None,
    aeo_id: str | None = None,
    event_hash: str | None = None,
) -> dict[str, Any]:
    """The ``AnchorEvents`` entry of one EPCIS 2.0 event (the contract checks the values).

    ``event_hash``: the CBV 2.0 hash when already computed for the whole document. An
    ``errorDeclaration`` is not mapped here: see :func:`anchor_plan`.
    """
    fields = _unhashed_fields(event, consignment_ref, aeo_id)
    # last: the fields are checked before the hash library sees the event
    fields["event_hash"] = event_hash or epcis_event_hash(event)
    return fields


def _unhashed_fields(event: Any, consignment_ref: str | None, aeo_id: str | None) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise InvalidArguments("an event is a JSON object")
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise InvalidArguments(f"type must be one of {', '.join(EVENT_TYPES)} (got {kind!r})")
    biz_step = _vocab(event.get("bizStep"), "bizStep", "bizStep")
    if biz_step is None:
        raise InvalidArguments("the event has no bizStep")
    fields: dict[str, Any] = {
        "consignment_ref": consignment_ref or _consignment(event),
        "event_type": kind,
        "biz_step": biz_step,
        "event_time": _event_time(event),
        "location": _location(event),
    }
    disposition = _vocab(event.get("disposition"), "disposition", "disposition")
    if disposition is not None:
        fields["disposition"] = disposition
    if aeo_id is not None:
        fields["aeo_id"] = aeo_id
    return fields


# --------------------------------------------------------------------------- corrections
#: the members of an EPCIS 2.0 errorDeclaration (others must be namespaced extensions)
_DECLARATION_MEMBERS = ("declarationTime", "reason", "correctiveEventIDs")
MAX_CORRECTIVE = 64


@dataclass(frozen=True)
class ErrorDeclaration:
    """An event's ``errorDeclaration``, checked (EPCIS 2.0 §7.4.1.5)."""

    #: RFC 3339 in UTC, as the ledger writes times
    declaration_time: str
    #: the CBV error reason without its prefix (``incorrect_data``, ``did_not_occur``), or a URI
    reason: str | None
    #: the corrective events' ids as given (eventIDs or CBV 2.0 hashes)
    corrective_event_ids: tuple[str, ...]


def error_declaration(event: Any) -> ErrorDeclaration | None:
    """The event's checked ``errorDeclaration``, or None when it has none."""
    if not isinstance(event, dict) or "errorDeclaration" not in event:
        return None
    value = event["errorDeclaration"]
    if not isinstance(value, dict):
        raise InvalidArguments("errorDeclaration must be a JSON object")
    for name in value:
        if name not in _DECLARATION_MEMBERS and ":" not in name:
            raise InvalidArguments(
                f"errorDeclaration: unknown member {name!r} (declarationTime, reason, "
                "correctiveEventIDs, or a namespaced extension such as ex:note)"
            )
    when = value.get("declarationTime")
    if when is None:
        raise InvalidArguments("errorDeclaration has no declarationTime")
    if not isinstance(when, str) or "T" not in when.upper() or _OFFSET.search(when) is None:
        raise InvalidArguments(
            "errorDeclaration.declarationTime must be an RFC 3339 date-time with a UTC offset "
            f"(got {when!r})"
        )
    try:
        declared = format_time(parse_time(when, "errorDeclaration.declarationTime"))
    except ContractError as exc:
        raise InvalidArguments(str(exc)) from None
    reason = _vocab(value.get("reason"), "errorDeclaration.reason", "reason")
    ids = value.get("correctiveEventIDs", [])
    if (
        not isinstance(ids, list)
        or not all(isinstance(i, str) and i and len(i) <= 1024 for i in ids)
        or len(ids) > MAX_CORRECTIVE
    ):
        raise InvalidArguments(
            f"errorDeclaration.correctiveEventIDs must be a list of at most {MAX_CORRECTIVE} "
            "event ids (non-empty strings)"
        )
    if len(set(ids)) != len(ids):
        raise InvalidArguments("errorDeclaration.correctiveEventIDs names an event twice")
    return ErrorDeclaration(declared, reason, tuple(ids))


@dataclass(frozen=True)
class Declaration:
    """An error declaration of the document, resolved to event hashes."""

    #: its position in the document (from 1)
    event: int
    #: the CBV 2.0 hash of the event it declares erroneous (its own hash: see the module)
    erroneous: str
    declaration: ErrorDeclaration
    #: the document positions and hashes of its corrective events
    corrective: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class AnchorPlan:
    """What ``AnchorEvents`` gets for a document: ``entries`` in document order (the
    declarations left out, their corrective events carrying ``corrects``)."""

    entries: list[dict[str, Any]]
    #: the document position of each entry (from 1)
    positions: list[int]
    declarations: list[Declaration]


def _fail(n: int, exc: InvalidArguments) -> InvalidArguments:
    return InvalidArguments(f"event {n}: {exc}")


def anchor_plan(
    events: Sequence[Any],
    context: Any = None,
    *,
    consignment_ref: str | None = None,
    aeo_id: str | None = None,
) -> AnchorPlan:
    """Map a document's events to ``AnchorEvents`` entries, corrections included.

    Every event is checked before anything is hashed, every hash before anything is
    linked; the first problem raises :class:`InvalidArguments` naming the event
    (``event N: …``). The contract still decides what it decides (the corrected events
    exist, in the same consignment; the zone; the operator).
    """
    mapped: list[dict[str, Any]] = []
    declared: dict[int, ErrorDeclaration] = {}
    for n, event in enumerate(events, start=1):
        try:
            entry = _unhashed_fields(event, consignment_ref, aeo_id)
            found = error_declaration(event)
        except InvalidArguments as exc:
            raise _fail(n, exc) from None
        if found is not None:
            declared[n] = found
        mapped.append(entry)
    hashes = checked_hashes(events, context)
    for entry, event_hash in zip(mapped, hashes, strict=True):
        entry["event_hash"] = event_hash

    # the events that are not declarations, by hash and by eventID
    by_id: dict[str, int] = {}
    seen: dict[str, int] = {}
    for n, (event, event_hash) in enumerate(zip(events, hashes, strict=True), start=1):
        if n in declared:
            continue
        if event_hash in seen:
            raise InvalidArguments(f"event {n} is the same event as event {seen[event_hash]}")
        seen[event_hash] = n
        names = {event_hash}
        given = event.get("eventID")
        if isinstance(given, str) and given:
            names.add(given)
        for name in names:
            if name in by_id and by_id[name] != n:
                raise InvalidArguments(f"event {n}: eventID {name} also names event {by_id[name]}")
            by_id[name] = n

    declarations: list[Declaration] = []
    corrects: dict[int, list[str]] = {}
    for n, declaration in declared.items():
        erroneous = hashes[n - 1]
        if not declaration.corrective_event_ids:
            raise InvalidArguments(
                f"event {n}: its errorDeclaration names no corrective event "
                "(correctiveEventIDs): the ledger records a correction on the corrective "
                "events, anchored with the declaration"
            )
        corrective: list[tuple[int, str]] = []
        for name in declaration.corrective_event_ids:
            if name in (erroneous, _id(events[n - 1])):
                raise InvalidArguments(
                    f"event {n}: corrective event {name} is the erroneous event itself"
                )
            m = by_id.get(name)
            if m is None:
                other = [k for k in declared if name in (hashes[k - 1], _id(events[k - 1]))]
                if other:
                    raise InvalidArguments(
                        f"event {n}: corrective event {name} is an error declaration "
                        f"(event {other[0]})"
                    )
                raise InvalidArguments(
                    f"event {n}: corrective event {name} is not an event of this document "
                    "(anchor the corrective events with their error declaration)"
                )
            if hashes[m - 1] == erroneous:
                raise InvalidArguments(
                    f"event {n}: corrective event {name} is the erroneous event itself"
                )
            if mapped[m - 1]["consignment_ref"] != mapped[n - 1]["consignment_ref"]:
                raise InvalidArguments(
                    f"event {n}: corrective event {m} belongs to consignment "
                    f"{mapped[m - 1]['consignment_ref']}, the erroneous event to "
                    f"{mapped[n - 1]['consignment_ref']}"
                )
            listed = corrects.setdefault(m, [])
            if erroneous not in listed:
                listed.append(erroneous)
            corrective.append((m, hashes[m - 1]))
        declarations.append(Declaration(n, erroneous, declaration, tuple(corrective)))

    entries: list[dict[str, Any]] = []
    positions: list[int] = []
    for n, entry in enumerate(mapped, start=1):
        if n in declared:
            continue
        if n in corrects:
            if len(corrects[n]) > MAX_CORRECTIVE:
                raise InvalidArguments(f"event {n} corrects more than {MAX_CORRECTIVE} events")
            entry["corrects"] = corrects[n]
        entries.append(entry)
        positions.append(n)
    return AnchorPlan(entries, positions, declarations)


def _id(event: Any) -> str | None:
    given = event.get("eventID") if isinstance(event, dict) else None
    return given if isinstance(given, str) else None

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
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from typing import Any

from .services.errors import InvalidArguments

__all__ = ["GS1_EPCIS_CONTEXTS", "event_hashes"]

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

"""The node's services: the only way ``api`` and ``cli`` touch the ledger.

>>> # from node.services import NodeContext, aeo, recognition, submit
>>> # ctx = node.context
>>> # submit.submit(ctx, submit.propose(officer, "IssueAeo", aeo.prepare_issue(rec, pki),
>>> #                                   channel=ctx.channel, clock=ctx.clock))
>>> # recognition.check(ctx, rec["aeo_id"], "UZ")

One module per domain — :mod:`trust`, :mod:`aeo`, :mod:`mra`, :mod:`recognition`,
:mod:`trace`, :mod:`chain`, :mod:`submit` — each a set of typed functions taking a
:class:`NodeContext`. Reads of records and anything that needs a rule are contract
queries (``Ledger.evaluate``); errors are :mod:`node.services.errors` classes
(``NodeError`` with ``status`` and ``code``).
"""

from __future__ import annotations

from . import aeo, chain, errors, mra, recognition, submit, trace, trust
from .context import NodeContext

__all__ = [
    "NodeContext",
    "aeo",
    "chain",
    "errors",
    "mra",
    "recognition",
    "submit",
    "trace",
    "trust",
]

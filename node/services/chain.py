"""The chain itself: height, blocks and the event stream from a checkpoint.

>>> # chain.info(ctx).height
>>> # chain.block(ctx, 3).txs[0].tx_id
>>> # for block, tx_id, name, payload in chain.events(ctx, from_block=checkpoint): …

A transaction is looked up by id through the off-chain index (node.index), which
records the block of every transaction; the Ledger interface itself reads by block.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..errors import LedgerCorrupted, LedgerError
from ..ledger import BlockView, LedgerInfo
from .context import NodeContext
from .errors import InvalidArguments, NotFound

__all__ = ["block", "events", "info"]


def info(ctx: NodeContext) -> LedgerInfo:
    return ctx.ledger.info()


def block(ctx: NodeContext, number: int) -> BlockView:
    """Block ``number`` as stored (404 beyond the height)."""
    if isinstance(number, bool) or not isinstance(number, int) or number < 0:
        raise InvalidArguments(f"a block number is an integer ≥ 0 (got {number!r})")
    try:
        return ctx.ledger.block(number)
    except LedgerCorrupted:
        raise
    except LedgerError as exc:  # beyond the height: "no block N (height H)"
        if exc.status >= 500:  # the ledger cannot be reached (a Fabric peer down)
            raise
        raise NotFound(str(exc)) from None


def events(ctx: NodeContext, from_block: int = 0) -> Iterator[tuple[int, str, str, bytes]]:
    """``(block, tx_id, name, payload)`` of valid transactions from ``from_block`` on, in
    ledger order: a consumer that stores its last block resumes without missing any."""
    if isinstance(from_block, bool) or not isinstance(from_block, int) or from_block < 0:
        raise InvalidArguments(f"from_block is an integer ≥ 0 (got {from_block!r})")
    return ctx.ledger.events(from_block)

"""The index's errors, in the node's one error family (node.errors.NodeError)."""

from __future__ import annotations

from node.errors import NodeError

__all__ = ["BadQuery", "IndexFeedError", "IndexUnavailable"]


class BadQuery(NodeError):
    """A list or search request with a filter, limit or cursor the index cannot take."""

    code = "BAD_QUERY"
    status = 400


class IndexUnavailable(NodeError):
    """The index database cannot be opened or reached (bad URL, server down)."""

    code = "INDEX_UNAVAILABLE"
    status = 503


class IndexFeedError(NodeError):
    """A committed ledger value the index cannot map to a row; nothing of its block is kept."""

    code = "INDEX_FEED_ERROR"
    status = 500

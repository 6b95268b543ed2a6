"""Errors of the chain layer.

Every rejection carries a stable reason string (what RPC callers, logs and tests match on)
and a ban score (what p2p uses to punish the peer that sent it). Edges convert these into
JSON-RPC errors, DNS rcodes, HTTP statuses or CLI messages; nothing inside does.
"""


class ValidationError(Exception):
    def __init__(self, reason: str, ban_score: int = 100, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.ban_score = ban_score
        self.detail = detail


def outcome(fn, *args):
    """fn(*args), or the ValidationError it raises: for callers that answer per item of a
    batch (the blocks of one p2p group) rather than stop at the first rejection."""
    try:
        return fn(*args)
    except ValidationError as e:
        return e


class DecodeError(ValidationError):
    """Bytes that are not a canonical encoding of the expected structure."""

    def __init__(self, detail: str, reason: str = "bad-encoding"):
        super().__init__(reason, 100, detail)


class StoreError(Exception):
    """The database is not one this code can use (version, network, corruption)."""

"""Headers received ahead of their blocks (headers-first sync).

The chain indexes only blocks it has; this tree holds the headers peers announced beyond
that, checked for proof of work, linkage and the header rules of core.consensus (difficulty,
median time past, the time-warp bound, future time) exactly as the chain and the light client
check them, so the node knows the most-work chain before it downloads a single block and can
fetch its blocks from several peers at once, and a warped header chain never becomes "best".
"""
from __future__ import annotations

from dataclasses import dataclass

from core.consensus import block_work, check_header_context, check_pow
from core.errors import ValidationError
from core.primitives import Header

MAX_TREE = 200_000          # headers held beyond the chain; cheap PoW must not exhaust memory


@dataclass(slots=True, eq=False)
class HeaderNode:
    hash: bytes
    header: Header
    height: int
    work: int


class HeaderTree:
    def __init__(self, view, params, clock):
        self.view = view
        self.params = params
        self.clock = clock
        self.nodes: dict[bytes, HeaderNode] = {}
        self.best: HeaderNode | None = None      # most-work header not yet in the chain

    def lookup(self, h: bytes):
        """(height, work) of a header known to the tree or the chain."""
        n = self.nodes.get(h)
        if n is not None:
            return n.height, n.work
        k = self.view.known(h)
        if k is not None and not k[3]:
            return k[0], k[1]
        return None

    def connects(self, header: Header) -> bool:
        return self.lookup(header.prev_hash) is not None

    def add(self, header: Header) -> HeaderNode | None:
        """Adds a header whose parent is known; returns its node (None if the chain already has
        it). Raises ValidationError for bad proof of work or an invalid ancestor."""
        h = header.hash
        if h in self.nodes:
            return self.nodes[h]
        k = self.view.known(h)
        if k is not None:
            if k[3]:
                raise ValidationError("bad-prevblk", 100, "header of a block known invalid")
            return None
        pk = self.view.known(header.prev_hash)
        if pk is not None and pk[3]:
            raise ValidationError("bad-prevblk", 100, "header builds on an invalid block")
        parent = self.lookup(header.prev_hash)
        if parent is None:
            raise ValidationError("prev-blk-not-found", 0, "header does not connect")
        check_pow(header, h, self.params)
        parent_header = self._header(header.prev_hash)
        check_header_context(header, parent[0] + 1, parent_header.bits,
                             self._time_at(parent_header, parent[0]), self.params, int(self.clock()))
        if len(self.nodes) >= MAX_TREE:
            self.prune()
            if len(self.nodes) >= MAX_TREE:
                raise ValidationError("too-many-headers", 0, "header tree full")
        node = HeaderNode(h, header, parent[0] + 1, parent[1] + block_work(header.bits))
        self.nodes[h] = node
        if self.best is None or node.work > self.best.work:
            self.best = node
        return node

    def _header(self, h: bytes) -> Header:
        n = self.nodes.get(h)
        header = n.header if n is not None else self.view.header(h)
        if header is None:        # an ancestor left both the tree and the index
            raise ValidationError("prev-blk-not-found", 0, "header ancestry incomplete")
        return header

    def _time_at(self, parent: Header, parent_height: int):
        """time_at(h) for a child of `parent`: walks back through the tree, then the chain's
        index (each ancestor read once; a retarget reaches one interval back)."""
        times = {parent_height: parent.time}
        cursor = [parent, parent_height]

        def time_at(height: int) -> int:
            while cursor[1] > height:
                cursor[0] = self._header(cursor[0].prev_hash)
                cursor[1] -= 1
                times[cursor[1]] = cursor[0].time
            return times[height]
        return time_at

    def best_height(self, chain_height: int) -> int:
        return max(chain_height, self.best.height if self.best is not None else 0)

    def missing_blocks(self, limit: int) -> list[HeaderNode]:
        """Blocks of the best header chain the chain does not have yet, lowest first."""
        out = []
        n = self.best
        while n is not None and not self.view.has_block(n.hash):
            out.append(n)
            n = self.nodes.get(n.header.prev_hash)
        out.reverse()
        return out[:limit]

    def prune(self) -> None:
        """Forgets headers whose blocks the chain now has (they live in its index)."""
        for h in [h for h in self.nodes if self.view.has_block(h)]:
            del self.nodes[h]
        if self.best is not None and self.best.hash not in self.nodes:
            self.best = max(self.nodes.values(), key=lambda n: n.work, default=None)

    def invalidate(self, h: bytes) -> None:
        """A block failed: drop its header and everything above it from the tree."""
        bad = {h}
        changed = True
        while changed:
            changed = False
            for n in list(self.nodes.values()):
                if n.hash not in bad and n.header.prev_hash in bad:
                    bad.add(n.hash)
                    changed = True
        for b in bad:
            self.nodes.pop(b, None)
        if self.best is not None and self.best.hash in bad:
            self.best = max(self.nodes.values(), key=lambda n: n.work, default=None)

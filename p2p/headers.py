"""Headers received ahead of their blocks (headers-first sync).

The chain indexes the blocks it has (and those whose damaged body it dropped, fetched again
as if new); this tree holds the headers peers announced beyond that, checked for proof of
work, linkage and the header rules of core.consensus (difficulty, median time past, the
time-warp bound, future time) exactly as the chain and the light client check them, so the
node knows the most-work chain before it downloads a single block and can fetch its blocks
from several peers at once, and a warped header chain never becomes "best".

What a stranger can make the tree hold is bounded (Bitcoin Core's anti-DoS header rules):
a header whose branch cannot reach the anti-DoS threshold (the per-network minimum chain
work, and no less than the tip's work minus ANTI_DOS_BLOCKS blocks of it) is never stored;
headers stored without leading to more work than the tip are counted per sending peer and
capped at MAX_LOW_WORK_PER_PEER; branches that can no longer lead past the tip are pruned
when the tree fills and when their sender leaves.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from core.consensus import block_work, check_header_context, check_pow
from core.errors import ValidationError
from core.primitives import Header

MAX_TREE = 200_000          # headers held beyond the chain; cheap PoW must not exhaust memory
# A fork may start this many tip-difficulty blocks below the tip's work (plus one headers
# message, MAX_HEADERS, of catching up) and still be followed; deeper low-work branches are
# what an attacker with cheap headers sends, not what an honest reorg looks like.
ANTI_DOS_BLOCKS = 144
# Headers one peer may have stored that do not (yet) lead to more work than our tip: room for
# honest competing tips, not for a peer that stores junk branches in our memory.
MAX_LOW_WORK_PER_PEER = 2_000


@dataclass(slots=True, eq=False)
class HeaderNode:
    hash: bytes
    header: Header
    height: int
    work: int
    peer: int = 0           # who sent it (0: none); charged while it does not beat the tip
    charged: bool = False


class HeaderTree:
    def __init__(self, view, params, clock):
        self.view = view
        self.params = params
        self.clock = clock
        self.nodes: dict[bytes, HeaderNode] = {}
        self.best: HeaderNode | None = None      # most-work header not yet in the chain
        self.low_work: dict[int, int] = {}       # peer id -> charged headers it stored
        self._full_at: tuple[int, int] | None = None

    def tip_work(self) -> int:
        return self.view.known(self.view.tip_hash)[1]

    def threshold(self) -> int:
        """Branches ending below this much work cannot become the best chain in practice."""
        tip = self.view.header(self.view.tip_hash)
        near_tip = self.tip_work() - ANTI_DOS_BLOCKS * block_work(tip.bits)
        return max(self.params.min_chain_work, near_tip)

    def cannot_lead(self, headers: list[Header]) -> bool:
        """True when a connecting run of headers ends below the threshold. Counted from the
        claimed bits: a lie there fails the header checks once the run is stored."""
        parent = self.lookup(headers[0].prev_hash)
        if parent is None:            # not connecting: add() refuses it and says why
            return False
        end = parent[1] + sum(block_work(h.bits) for h in headers)
        return end < self.threshold()

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

    def add(self, header: Header, peer: int = 0) -> HeaderNode | None:
        """Adds a header whose parent is known; returns its node (None if the chain already has
        its block). Raises ValidationError for bad proof of work or an invalid ancestor."""
        h = header.hash
        if h in self.nodes:
            return self.nodes[h]
        k = self.view.known(h)
        if k is not None:
            if k[3]:
                raise ValidationError("bad-prevblk", 100, "header of a block known invalid")
            if k[2]:
                return None
            # Indexed without its body (the node dropped a damaged one): fetched as if new.
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
        # Checked, the AuxPoW is dead weight here (the block brings its own): the tree keeps
        # the 112 hashed bytes' fields only, so MAX_TREE bounds memory as before merged mining.
        kept = replace(header, auxpow=None) if header.auxpow is not None else header
        node = HeaderNode(h, kept, parent[0] + 1, parent[1] + block_work(header.bits), peer)
        self._charge(node)
        if len(self.nodes) >= MAX_TREE:
            self._make_room()
            if len(self.nodes) >= MAX_TREE:
                self._release(node)
                raise ValidationError("too-many-headers", 0, "header tree full")
        self.nodes[h] = node
        if self.best is None or node.work > self.best.work:
            self.best = node
        return node

    def _make_room(self) -> None:
        # A full pass over the tree, so not again for every header while nothing changed.
        if self._full_at == (self.tip_work(), len(self.nodes)):
            return
        self.prune()
        self.prune_dead(self.tip_work())
        self._full_at = (self.tip_work(), len(self.nodes))

    def _charge(self, node: HeaderNode) -> None:
        if node.peer == 0 or node.work > self.tip_work():
            return
        n = self.low_work.get(node.peer, 0)
        if n >= MAX_LOW_WORK_PER_PEER:
            raise ValidationError("too-many-low-work-headers", 20,
                                  f"{n} headers that do not lead past our tip")
        self.low_work[node.peer] = n + 1
        node.charged = True

    def _release(self, node: HeaderNode) -> None:
        if node.charged:
            node.charged = False
            left = self.low_work.get(node.peer, 0) - 1
            if left > 0:
                self.low_work[node.peer] = left
            else:
                self.low_work.pop(node.peer, None)

    def _remove(self, hashes) -> None:
        for h in hashes:
            node = self.nodes.pop(h, None)
            if node is not None:
                self._release(node)
        if self.best is not None and self.best.hash not in self.nodes:
            self.best = max(self.nodes.values(), key=lambda n: n.work, default=None)

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
        self._remove([h for h in self.nodes if self.view.has_block(h)])

    def prune_dead(self, work: int, peer: int | None = None) -> None:
        """Drops branches (of `peer`'s headers, or anyone's) whose best descendant in the tree
        has no more than `work`: they cannot lead past it. Children before parents, so each
        node passes its subtree's best work up once."""
        reach: dict[bytes, int] = {}
        for n in sorted(self.nodes.values(), key=lambda n: n.height, reverse=True):
            best = max(n.work, reach.get(n.hash, 0))
            reach[n.header.prev_hash] = max(reach.get(n.header.prev_hash, 0), best)
            reach[n.hash] = best
        dead: set[bytes] = set()
        for n in sorted(self.nodes.values(), key=lambda n: n.height):
            # A dead parent takes its (equally dead) children along, whoever sent them.
            if reach[n.hash] <= work and (peer is None or n.peer == peer or n.header.prev_hash in dead):
                dead.add(n.hash)
        self._remove(dead)

    def peer_gone(self, peer: int) -> None:
        """A peer's headers that do not lead past our tip go with it."""
        if self.low_work.get(peer):
            self.prune_dead(self.tip_work(), peer)

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
        self._remove(bad)

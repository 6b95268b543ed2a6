"""Headers-first sync and parallel block download.

Headers come first (from every peer, 2000 at a time) into the HeaderTree; the blocks of the
most-work header chain are then requested from all peers that have them, at most
PER_PEER_INFLIGHT at a time each and never further than WINDOW blocks past our tip. Blocks
that arrive before their parent wait here and are handed to the chain in order. A request
that is not answered within BLOCK_TIMEOUT is given to another peer and the slow peer is
dropped, so one peer can never hold the download up.
"""
from __future__ import annotations

import asyncio
import logging
import time

from core.consensus import block_work
from core.errors import ValidationError, outcome
from core.primitives import Block, Header

from p2p.headers import HeaderTree
from p2p.messages import INV_BLOCK, MAX_HEADERS, GetData, GetHeaders

log = logging.getLogger("dotbit.p2p")

PER_PEER_INFLIGHT = 16
WINDOW = 256
BLOCK_TIMEOUT = 10.0
WINDOW_STALL_TIMEOUT = 3.0
HEADERS_TIMEOUT = 20.0
PROGRESS_EVERY = 2.0
LOW_WORK_SCORE = 10              # per headers message below the anti-DoS threshold
UNREQUESTED_SCORE = 20           # per unrequested block that cannot become the best


class BlockSync:
    def __init__(self, net, view, params, clock=time.time):
        self.net = net
        self.view = view
        self.tree = HeaderTree(view, params, clock)
        self.inflight: dict[bytes, object] = {}     # block hash -> peer asked
        self.waiting: dict[bytes, Block] = {}       # parent hash -> block that arrived early
        # Blocks read off the sockets in one turn of the event loop, handed to the chain
        # together once the readers are done (_flush): see node/chain/blockgroup.py.
        self.arrived: list[tuple[object, Block]] = []
        self._arrived_hashes: set[bytes] = set()
        self._flush_soon = False
        self._groups = [0, 0]                       # groups handed over, blocks in them (progress)
        self._queue: list = []                      # missing blocks of the best header chain
        self._queue_best = None
        self._progress_at = 0.0
        self._progress_height = 0
        self._progress_t = time.monotonic()
        self._syncing = False
        self.low_work_refused = 0                   # headers not stored (anti-DoS threshold)
        self.unrequested_refused = 0                # blocks not stored (unrequested, low work)

    # --- headers ---------------------------------------------------------------------------

    @property
    def best_header_height(self) -> int:
        return self.tree.best_height(self.view.height)

    def ask_headers(self, peer, locator: list[bytes] | None = None) -> None:
        if locator is None:
            locator = self.locator()
        peer.headers_asked = time.monotonic()
        peer.send(GetHeaders(tuple(locator)))

    def locator(self) -> list[bytes]:
        # Start from the best header we hold so that sync continues where it stopped.
        loc = self.view.locator()
        best = self.tree.best
        if best is not None and best.work > self._tip_work():
            loc = [best.hash] + loc[:63]
        return loc

    def _tip_work(self) -> int:
        return self.view.known(self.view.tip_hash)[1]

    def on_headers(self, peer, headers: list[Header]) -> None:
        peer.headers_asked = 0.0
        if not headers:
            return
        if not self.tree.connects(headers[0]):
            # Announced out of the blue (or we are behind): ask for the path to it.
            peer.unconnecting += 1
            if peer.unconnecting % 10 == 0:
                self.net.misbehave(peer, 20, "unconnecting headers")
            self.ask_headers(peer)
            return
        peer.unconnecting = 0
        if self._low_work(peer, headers):
            return
        last = None
        for i, hd in enumerate(headers):
            if i and hd.prev_hash != headers[i - 1].hash:
                self.net.misbehave(peer, 20, "non-continuous headers")
                return
            try:
                node = self.tree.add(hd, peer.id)
            except ValidationError as e:
                self.net.misbehave(peer, e.ban_score, f"header {e.reason}")
                return
            h = hd.hash
            peer.known.add((INV_BLOCK, h))
            height = node.height if node is not None else self.view.known(h)[0]
            peer.best_height = max(peer.best_height, height)
            last = h
        if len(headers) == MAX_HEADERS:
            self.ask_headers(peer, [last])
        self.schedule()

    def _low_work(self, peer, headers: list[Header]) -> bool:
        """Headers whose branch cannot reach the anti-DoS threshold are not stored, and their
        sender is scored: cheap to make, they would otherwise fill the tree. Headers the chain
        already has (a peer catching up from us repeats ours) are neither."""
        i = 0
        while i < len(headers) and (k := self.view.known(headers[i].hash)) is not None and not k[3]:
            i += 1
        if i == len(headers) or not self.tree.cannot_lead(headers[i:]):
            return False
        self.low_work_refused += len(headers) - i
        self.net.misbehave(peer, LOW_WORK_SCORE, "headers that cannot lead to more work")
        return True

    # --- blocks ----------------------------------------------------------------------------

    def on_block(self, peer, block: Block) -> None:
        h = block.hash
        peer.blocks_recv += 1
        peer.block_progress = time.monotonic()
        asked = self.inflight.pop(h, None)
        peer.inflight.pop(h, None)
        if asked is not None and asked is not peer:
            asked.inflight.pop(h, None)
        peer.known.add((INV_BLOCK, h))
        if self.view.has_block(h) or h in self._arrived_hashes:
            self.schedule()
            return
        if asked is None and not self._may_store(peer, block):
            return
        parent = self.view.known(block.header.prev_hash)
        if asked is not None and (parent is None or not parent[2]) and block.header.prev_hash in self.tree.nodes \
                and block.header.prev_hash not in self._arrived_hashes:   # (else it goes with its parent)
            # We asked for it and its parent is on its way: keep it here rather than in the
            # chain's orphan pool, which is small and would forget blocks of a wide window.
            # (Unrequested blocks go to that pool, so nobody can fill this buffer.)
            if len(self.waiting) < 2 * WINDOW:
                self.waiting[block.header.prev_hash] = block
            self.schedule()
            return
        self._arrive(peer, block)
        if len(peer.inflight) <= PER_PEER_INFLIGHT // 2:
            self.schedule()            # in batches: one getdata per half window, not per block

    def _arrive(self, peer, block: Block) -> None:
        """Queues a block for the chain; the queue goes at the end of this event-loop turn
        (at once where no loop runs). Bounded: the blocks asked for (and the few unrequested
        ones _may_store lets through) are all that can arrive."""
        self.arrived.append((peer, block))
        self._arrived_hashes.add(block.hash)
        if self._flush_soon:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._flush()
            return
        self._flush_soon = True
        loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_soon = False
        arrived, self.arrived = self.arrived, []
        self._arrived_hashes.clear()
        peers, blocks = [], []
        for peer, block in arrived:
            while block is not None:             # with the blocks that waited for it
                peers.append(peer)
                blocks.append(block)
                block = self.waiting.pop(block.hash, None)
        submit_many = getattr(self.view, "submit_blocks", None)
        try:
            results = submit_many(blocks) if submit_many is not None else [outcome(self.view.submit_block, b) for b in blocks]
        except Exception:
            # As a handler that fails on a peer's message (p2p/peer.py): logged, and the node
            # goes on; the blocks stay unconnected and are asked for again.
            log.exception("handing %d blocks to the chain failed", len(blocks))
            self._queue_best = None
            self.schedule()
            return
        self._groups[0] += 1
        self._groups[1] += len(blocks)
        failed: set[bytes] = set()
        for peer, block, status in zip(peers, blocks, results):
            self._settle(peer, block, status, failed)
        self._log_progress()
        self.schedule()

    def _settle(self, peer, block: Block, status, failed: set) -> None:
        """What a block's answer from the chain means for its peer and the header tree."""
        h = block.hash
        if isinstance(status, ValidationError):
            failed.add(h)
            if block.header.prev_hash not in failed:     # its descendants: one score, not many
                log.info("block %s from peer %d rejected: %s", h.hex(), peer.id if peer else 0, status.reason)
                if status.reason not in ("time-too-new",) and peer is not None:
                    self.net.misbehave(peer, status.ban_score, f"block {status.reason}")
            if self.view.has_block(h):      # remembered invalid: forget its branch
                self.tree.invalidate(h)
                self._queue_best = None
            self._drop_waiting_above(h)
            return
        if status == "orphan" and peer is not None:
            # Parent unknown and not in our header tree: fetch the headers to it.
            self.ask_headers(peer)
        if peer is not None:
            peer.best_height = max(peer.best_height, (self.view.known(h) or (0,))[0])

    def _may_store(self, peer, block: Block) -> bool:
        """Headers first, then data: a block nobody asked for is stored only if its branch
        would have more work than our tip. One whose parent we do not know goes nowhere
        (not into the chain's orphan pool): we ask for the headers leading to it instead, and
        score it less, as it may be a real tip we are behind on (though our peers announce
        blocks, they do not push them)."""
        parent = self.tree.lookup(block.header.prev_hash)
        if parent is None:
            self.unrequested_refused += 1
            self.net.misbehave(peer, UNREQUESTED_SCORE // 2, "unrequested block that does not connect")
            if not peer.headers_asked:
                self.ask_headers(peer)
            return False
        if parent[1] + block_work(block.header.bits) > self._tip_work():
            return True
        self.unrequested_refused += 1
        self.net.misbehave(peer, UNREQUESTED_SCORE, "unrequested block that cannot become the best")
        return False

    def _drop_waiting_above(self, h: bytes) -> None:
        while h in self.waiting:
            h = self.waiting.pop(h).hash

    def schedule(self) -> None:
        """Hands out block requests to peers with free slots, lowest heights first."""
        best = self.tree.best
        if best is None or best.work <= self._tip_work():
            self._set_syncing(False)
            return
        if self._queue_best is not best:
            self._queue = self.tree.missing_blocks(100_000)
            self._queue_best = best
        done = 0
        while done < len(self._queue) and self.view.has_block(self._queue[done].hash):
            done += 1
        del self._queue[:done]          # only the connected prefix: scheduling stays O(window)
        if not self._queue:
            return
        if self._queue[-1].height - self.view.height > 1:
            self._set_syncing(True)
        limit = self.view.height + WINDOW
        peers = [p for p in self.net.ready_peers() if len(p.inflight) < PER_PEER_INFLIGHT]
        if not peers:
            return
        requests: dict = {}
        for n in self._queue:
            if n.height > limit:
                break
            early = self.waiting.get(n.header.prev_hash)
            if n.hash in self.inflight or (early is not None and early.hash == n.hash) \
                    or n.hash in self._arrived_hashes or self.view.has_block(n.hash):
                continue
            candidates = [p for p in peers if p.best_height >= n.height and n.hash not in p.lacks
                          and len(p.inflight) < PER_PEER_INFLIGHT]
            if not candidates:
                continue
            p = min(candidates, key=lambda p: len(p.inflight))
            now = time.monotonic()
            if not p.inflight:
                p.block_progress = now
            p.inflight[n.hash] = now
            self.inflight[n.hash] = p
            requests.setdefault(p, []).append((INV_BLOCK, n.hash))
        for p, items in requests.items():
            p.send(GetData(tuple(items)))

    def on_notfound(self, peer, h: bytes) -> None:
        if peer.inflight.pop(h, None) is not None:
            self.inflight.pop(h, None)
            peer.lacks.add(h)
            self.schedule()

    def peer_gone(self, peer) -> None:
        self.tree.peer_gone(peer.id)
        for h in list(peer.inflight):
            if self.inflight.get(h) is peer:
                del self.inflight[h]
        peer.inflight.clear()
        self.schedule()

    def check_stalls(self) -> None:
        now = time.monotonic()
        if self._queue and len(self.waiting) >= WINDOW // 4:
            # Many later blocks wait for the lowest one: whoever owes it gets less time.
            owner = self.inflight.get(self._queue[0].hash)
            if owner is not None and now - owner.block_progress > WINDOW_STALL_TIMEOUT:
                owner.close("block download stalled (holding up the window)")
        for peer in list(self.net.ready_peers()):
            # Measured from the peer's last delivery, not per request: a peer whose blocks
            # queue up behind our own slow validation of big blocks is not stalling.
            if peer.inflight and now - peer.block_progress > BLOCK_TIMEOUT:
                peer.close("block download stalled")
            elif peer.headers_asked and now - peer.headers_asked > HEADERS_TIMEOUT:
                peer.close("headers request timed out")
        if len(self.tree.nodes) > 10_000 and not self._syncing:
            self.tree.prune()
        self.schedule()

    # --- progress --------------------------------------------------------------------------

    def _set_syncing(self, on: bool) -> None:
        if on and not self._syncing:
            self._progress_t, self._progress_height = time.monotonic(), self.view.height
            log.info("sync: starting from height %d towards %d", self.view.height, self.best_header_height)
        elif not on and self._syncing:
            log.info("sync: done at height %d (%s)", self.view.height, self.view.tip_hash.hex())
        self._syncing = on

    @property
    def syncing(self) -> bool:
        return self._syncing

    @property
    def downloading(self) -> bool:
        """Far behind and fetching blocks: transactions would only fail on a stale tip. (Not
        just "a better header exists": headers nobody serves must not stop tx relay.)"""
        return bool(self.inflight) and self.best_header_height - self.view.height > 6

    def _log_progress(self) -> None:
        now = time.monotonic()
        if not self._syncing or now - self._progress_at < PROGRESS_EVERY:
            return
        height, target = self.view.height, self.best_header_height
        rate = (height - self._progress_height) / max(now - self._progress_t, 1e-6)
        self._progress_at, self._progress_t, self._progress_height = now, now, height
        groups, self._groups = self._groups, [0, 0]
        log.info("sync: height %d/%d (%.1f%%), %.0f blocks/s, %d peers, %.1f blocks connected together",
                 height, target, 100.0 * height / max(target, 1), rate, len(self.net.ready_peers()),
                 groups[1] / max(groups[0], 1))

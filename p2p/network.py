"""The p2p network: the handshake, message handling and relay, on top of Connections
(connections.py: listening, dialling, caps, timeouts, misbehaviour scores and bans).

Everything runs on the node's event loop; the chain is reached only through ChainView.
"""
from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from typing import Callable

from core.crypto import sha256d
from core.errors import DecodeError, ValidationError
from core.primitives import Block, Header, Tx

from p2p.chainview import ChainView
from p2p.connections import Connections, P2PConfig, parse_hostport
from p2p.messages import (INV_BLOCK, INV_EPHKEY, INV_TX, MAX_ADDR, MAX_HEADERS, MAX_INV, NODE_NETWORK,
                       PROTOCOL_VERSION, Addr, BlockMsg, EphKey, GetAddr, GetData, GetHeaders,
                       Headers, Inv, NotFound, Ping, Pong, TxMsg, Verack, Version, encode_frame)
from p2p.peer import BoundedSet, Peer
from p2p.sync import BlockSync

log = logging.getLogger("dotbit.p2p")
USER_AGENT = b"/dotbit:0.1.0/"
MAX_EPHKEYS = 10_000
# Transactions asked of one peer and not yet delivered: a peer announcing junk txids fills
# only its own allowance, and the others' announcements are still fetched at once.
MAX_TX_ASKED_PER_PEER = 5_000
INV_INTERVAL = 0.1
# A transaction nobody asked for that the mempool refuses: honest nodes only send what was
# asked for after an inv, so a stream of them (say low-fee variants of one coin at a full
# pool) is a flood; twenty of them cost the peer its connection and a ban.
UNSOLICITED_TX_SCORE = 5


__all__ = ["Network", "P2PConfig", "parse_hostport"]    # the config lives in connections.py


class Network(Connections):
    def __init__(self, params, view: ChainView, datadir: str, config: P2PConfig):
        super().__init__(datadir, config)
        self.params = params
        self.magic = params.magic
        self.view = view
        self.nonce = random.getrandbits(64)
        self.sync = BlockSync(self, view, params)
        self.handlers: dict[str, Callable] = {}
        self.ephkeys: OrderedDict[bytes, bytes] = OrderedDict()
        self.rejected = BoundedSet(50_000)
        self.tx_requested: dict[bytes, float] = {}
        self.tx_asked: dict[int, dict[bytes, float]] = {}      # peer id -> txid -> asked at
        self.addr_counts = {"added": 0, "known_or_refused": 0, "rate_limited": 0}   # addr entries (/metrics)
        self._tasks: list[asyncio.Task] = []
        view.add_tip_listener(self._on_tip)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self.config.listen:
            self._server = await asyncio.start_server(self._accept, self.config.bind, self.config.port,
                                                      limit=1 << 16)
            log.info("p2p listening on %s:%d", self.config.bind, self.config.port)
        self._tasks = [asyncio.create_task(self._dial_loop()), asyncio.create_task(self._maintain_loop()),
                       asyncio.create_task(self._inv_loop())]

    async def stop(self) -> None:
        for t in self._tasks + list(self._dials):
            t.cancel()
        if self._server is not None:
            self._server.close()
        anchors = self.anchor_targets()          # before closing them: they are the anchors
        for p in list(self.peers.values()):
            p.close("shutting down")
        if self._server is not None:
            try:
                await asyncio.wait_for(self._server.wait_closed(), 2)
            except asyncio.TimeoutError:
                pass
        try:
            self.book.save(anchors)
        except OSError as e:
            log.warning("cannot save address book: %s", e)

    def register_handler(self, command: str, fn: Callable) -> None:
        """Lets other parts handle a message type p2p treats as opaque ("ephkey"): fn(payload,
        peer_id) returns True if the payload is valid and should be relayed, False to drop it
        quietly, or raises ValidationError to punish the sender."""
        self.handlers[command] = fn

    # --- peers coming and going (Connections finds them) -----------------------------------

    def _add_peer(self, peer: Peer) -> None:
        self.peers[peer.id] = peer
        peer.start()
        peer.send(Version(PROTOCOL_VERSION, NODE_NETWORK, self.view.height, self.nonce, int(time.time()),
                          self.config.port if self.config.listen else 0, USER_AGENT))
        log.info("peer %d %s %s", peer.id, "from" if peer.inbound else "to", peer.addr)

    def anchor_targets(self) -> list[tuple[str, int]]:
        """Outbound peers that completed the handshake, longest held first: dialled first after
        a restart, so a book poisoned meanwhile cannot keep us from peers that worked."""
        held = sorted((p for p in self.ready_peers() if p.target is not None and not p.feeler),
                      key=lambda p: p.connected_at)
        return [p.target for p in held]

    def on_closed(self, peer: Peer) -> None:
        self.peers.pop(peer.id, None)
        self.tx_asked.pop(peer.id, None)
        self.sync.peer_gone(peer)

    # --- upkeep ----------------------------------------------------------------------------

    async def _maintain_loop(self) -> None:
        last_save = time.monotonic()
        while True:
            await asyncio.sleep(1.0)
            try:
                self._maintain()
                if time.monotonic() - last_save > 60:
                    last_save = time.monotonic()
                    self.book.save(self.anchor_targets())
            except Exception:
                log.exception("p2p maintenance failed")

    def _maintain(self) -> None:
        self._check_timeouts()
        now = time.monotonic()
        for txid in [t for t, at in self.tx_requested.items() if now - at > 60]:
            del self.tx_requested[txid]
        for asked in self.tx_asked.values():
            for txid in [t for t, at in asked.items() if now - at > 60]:
                del asked[txid]
        self.sync.check_stalls()

    # --- messages --------------------------------------------------------------------------

    async def handle(self, peer: Peer, msg) -> None:
        cmd = msg.command
        if cmd == "version":
            return self._on_version(peer, msg)
        if cmd == "verack":
            return self._on_verack(peer)
        if not peer.ready:
            self.misbehave(peer, 10, f"{cmd} before handshake")
            peer.close("message before handshake")
            return
        handler = getattr(self, "_on_" + cmd)
        handler(peer, msg)

    def _on_version(self, peer: Peer, v: Version) -> None:
        if peer.version is not None:
            self.misbehave(peer, 1, "duplicate version")
            return
        if v.nonce == self.nonce:
            if peer.target is not None:
                self._self_targets.add(peer.target)
            peer.close("connected to self")
            return
        if v.version < 1:
            peer.close(f"obsolete protocol version {v.version}")
            return
        peer.version = v
        peer.best_height = v.height
        peer.send(Verack())
        if peer.inbound and v.listen_port:
            self.book.add(peer.host, v.listen_port, source=peer.host)

    def _on_verack(self, peer: Peer) -> None:
        if peer.version is None or peer.verack:
            self.misbehave(peer, 1, "unexpected verack")
            return
        peer.verack = True
        peer.ping_sent = time.monotonic()
        if peer.target is not None:
            self.book.good(*peer.target)
            if peer.feeler:
                peer.close("feeler: the address is alive")
                return
            peer.addr_tokens += MAX_ADDR          # its answer to our getaddr is not a flood
            peer.send(GetAddr())
        self.sync.ask_headers(peer)

    def _on_ping(self, peer: Peer, msg: Ping) -> None:
        peer.send(Pong(msg.nonce))

    def _on_pong(self, peer: Peer, msg: Pong) -> None:
        if msg.nonce == peer.ping_nonce:
            peer.ping_time = time.monotonic() - peer.ping_sent
            peer.ping_nonce = None

    def _on_getaddr(self, peer: Peer, msg) -> None:
        if not peer.sent_addr:                # once per connection: no amplification
            peer.sent_addr = True
            peer.send(Addr(tuple(self.book.sample(MAX_ADDR))))

    def _on_addr(self, peer: Peer, msg: Addr) -> None:
        # Rate-limited, not punished (Bitcoin Core's way): what is over the peer's allowance
        # is dropped and counted. The book places the rest by who told us (peer.host).
        allowed = peer.take_addr_tokens(len(msg.addrs), self.config.addr_rate)
        self.addr_counts["rate_limited"] += len(msg.addrs) - allowed
        for host, port, seen in msg.addrs[:allowed]:
            self.addr_counts["added" if self.book.add(host, port, seen, peer.host) else "known_or_refused"] += 1

    def _on_inv(self, peer: Peer, msg: Inv) -> None:
        want = []
        new_block = False
        now = time.monotonic()
        asked = self.tx_asked.setdefault(peer.id, {})
        for t, h in msg.items:
            peer.known.add((t, h))
            if t == INV_BLOCK:
                if not self.view.has_block(h) and h not in self.sync.tree.nodes:
                    new_block = True
            elif t == INV_TX:
                if (self.sync.downloading or h in self.rejected or self.view.has_tx(h)
                        or now - self.tx_requested.get(h, -1e9) < 30 or len(asked) >= MAX_TX_ASKED_PER_PEER):
                    continue
                self.tx_requested[h] = now
                asked[h] = now
                want.append((t, h))
            elif t == INV_EPHKEY and h not in self.ephkeys and "ephkey" in self.handlers:
                want.append((t, h))
        if new_block:
            self.sync.ask_headers(peer)      # headers first, then the blocks
        if want:
            peer.send(GetData(tuple(want)))

    def _on_getdata(self, peer: Peer, msg: GetData) -> None:
        if not peer.queue_getdata(msg.items):
            self.misbehave(peer, 50, "getdata flood")

    def serve_getdata(self, peer: Peer) -> bytes | None:
        """Called by the peer's writer when it has room: the next answer to its getdata."""
        missing = []
        while peer.getdata:
            t, h = peer.getdata.popleft()
            if t == INV_BLOCK:
                raw = self.view.raw_block(h)
                if raw is not None:
                    peer.known.add((t, h))
                    return self._frame(peer, missing, BlockMsg(raw))
            elif t == INV_TX:
                raw = self.view.raw_tx(h)
                if raw is not None:
                    peer.known.add((t, h))
                    return self._frame(peer, missing, TxMsg(raw))
            elif t == INV_EPHKEY:
                payload = self.ephkeys.get(h)
                if payload is not None:
                    return self._frame(peer, missing, EphKey(payload))
            missing.append((t, h))
            if len(missing) >= MAX_INV:
                break
        return self._frame(peer, missing, None)

    def _frame(self, peer: Peer, missing, msg) -> bytes | None:
        out = b""
        if missing:
            out += encode_frame(self.magic, NotFound(tuple(missing)))
        if msg is not None:
            out += encode_frame(self.magic, msg)
        return out or None

    def _on_notfound(self, peer: Peer, msg: NotFound) -> None:
        for t, h in msg.items:
            if t == INV_BLOCK:
                self.sync.on_notfound(peer, h)
            elif t == INV_TX:
                self.tx_requested.pop(h, None)
                self.tx_asked.get(peer.id, {}).pop(h, None)

    def _on_getheaders(self, peer: Peer, msg: GetHeaders) -> None:
        peer.send(Headers(tuple(self.view.headers_after(msg.locator, msg.stop, MAX_HEADERS))))

    def _on_headers(self, peer: Peer, msg: Headers) -> None:
        try:             # a header's length depends on its AuxPoW flag: parsed here, not in the frame
            headers = [Header.from_wire(r) for r in msg.headers]
        except DecodeError as e:
            self.misbehave(peer, e.ban_score, f"headers {e.reason}: {e.detail}")
            return
        self.sync.on_headers(peer, headers)

    def _on_block(self, peer: Peer, msg: BlockMsg) -> None:
        try:
            block = Block.from_bytes(msg.raw)
        except DecodeError as e:
            self.misbehave(peer, e.ban_score, f"block {e.reason}: {e.detail}")
            return
        self.sync.on_block(peer, block)

    def _on_tx(self, peer: Peer, msg: TxMsg) -> None:
        try:
            tx = Tx.from_bytes(msg.raw)
        except DecodeError as e:
            self.misbehave(peer, e.ban_score, f"tx {e.reason}: {e.detail}")
            return
        txid = tx.txid
        peer.known.add((INV_TX, txid))
        self.tx_requested.pop(txid, None)
        solicited = self.tx_asked.get(peer.id, {}).pop(txid, None) is not None
        if self.view.has_tx(txid) or txid in self.rejected:
            return
        try:
            self.view.submit_tx(tx)          # the node relays it onwards (relay_tx)
        except ValidationError as e:
            if e.reason != "bad-txns-inputs-missingorspent":   # its parent may still come
                self.rejected.add(txid)
            score = e.ban_score + (0 if solicited else UNSOLICITED_TX_SCORE)
            if score:
                self.misbehave(peer, score, f"tx {e.reason}" + ("" if solicited else " (unsolicited)"))

    def _on_ephkey(self, peer: Peer, msg: EphKey) -> None:
        key = sha256d(msg.payload)
        peer.known.add((INV_EPHKEY, key))
        handler = self.handlers.get("ephkey")
        if key in self.ephkeys or handler is None:
            return
        try:
            ok = handler(msg.payload, peer.id)
        except ValidationError as e:
            self.misbehave(peer, e.ban_score, f"ephkey {e.reason}")
            return
        if ok:
            self.broadcast_ephkey(msg.payload)

    # --- relay -----------------------------------------------------------------------------

    def _announce(self, t: int, h: bytes) -> None:
        for p in self.ready_peers():
            if (t, h) not in p.known:
                p.known.add((t, h))
                if t == INV_BLOCK:
                    p.send(Inv(((t, h),)))      # blocks at once: propagation time matters
                else:
                    p.inv_queue.append((t, h))
                    if len(p.inv_queue) >= MAX_INV:
                        self._flush_invs(p)

    def _flush_invs(self, p: Peer) -> None:
        if p.inv_queue:
            p.send(Inv(tuple(p.inv_queue[:MAX_INV])))
            del p.inv_queue[:MAX_INV]

    async def _inv_loop(self) -> None:
        # Transactions are announced in batches a few times a second: one message per batch
        # rather than per transaction keeps busy peers far below any rate limit.
        while True:
            await asyncio.sleep(INV_INTERVAL)
            for p in self.ready_peers():
                self._flush_invs(p)

    def relay_tx(self, txid: bytes) -> None:
        self._announce(INV_TX, txid)

    def broadcast_ephkey(self, payload: bytes) -> None:
        key = sha256d(payload)
        self.ephkeys[key] = payload
        while len(self.ephkeys) > MAX_EPHKEYS:
            self.ephkeys.popitem(last=False)
        self._announce(INV_EPHKEY, key)

    def _on_tip(self, tip_hash: bytes, height: int) -> None:
        self.rejected = BoundedSet(self.rejected.limit)    # a new tip may make them valid
        self._announce(INV_BLOCK, tip_hash)

    # --- views for RPC ---------------------------------------------------------------------

    def info(self) -> dict:
        peers = list(self.peers.values())
        return {"version": 10000, "subversion": USER_AGENT.decode(), "protocolversion": PROTOCOL_VERSION,
                "localservices": f"{NODE_NETWORK:016x}", "networkactive": True,
                "connections": len(peers), "connections_in": sum(p.inbound for p in peers),
                "connections_out": sum(not p.inbound for p in peers),
                "localaddresses": ([{"address": self.config.bind, "port": self.config.port}]
                                   if self.config.listen else []),
                "syncing": self.sync.syncing, "headers": self.sync.best_header_height,
                "header_tree": len(self.sync.tree.nodes),
                "low_work_headers_refused": self.sync.low_work_refused,
                "unrequested_blocks_refused": self.sync.unrequested_refused,
                "warnings": ""}

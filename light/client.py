"""The light client: talks to resolvers over the signed HTTP API, keeps the header store in
sync and returns answers that verify.py accepted. Shared by the CLI and the DNS stub.

Trust setup (DNSNMC style): a resolver URL plus the fingerprint (SHA-256 of its Ed25519
public key) the user pins. The key is fetched from /v1/resolver and refused unless it hashes
to the pin. Headers come from the resolver and from every other source given (`header_urls`,
further pinned `resolvers`, full nodes over p2p as `peers`): their signatures are not what
makes them trustworthy, proof of work is, so for those we only use the envelope's body, and
the store keeps the most-work chain of them all. `max_tip_age` refuses answers while that
chain's best header is older than that many seconds (all sources may be frozen).
"""
from __future__ import annotations

import asyncio
import hashlib
import time
from urllib.parse import quote

import aiohttp
import msgpack

from light.headers import HeaderStore, sync, sync_locator
from light.peer import PeerSource
from core.records import domain_of
from light.verdict import Verified, VerifyError
from light.verify import DEFAULT_MAX_BEHIND, open_answer, verify_answer

MSGPACK = {"Accept": "application/msgpack"}
SYNC_EVERY = 5.0          # seconds between header syncs when answers do not force one


class Source:
    """One resolver's HTTP API."""

    def __init__(self, url: str, session: aiohttp.ClientSession, timeout: float = 10):
        self.url = url.rstrip("/")
        self.session = session
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.public_key: bytes | None = None

    async def get(self, path: str) -> bytes:
        try:
            async with self.session.get(self.url + path, headers=MSGPACK, timeout=self.timeout) as r:
                return await r.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
            raise VerifyError("connect", f"{self.url}: {type(e).__name__} {e}".strip()) from None

    async def identify(self, pin: str | None, network: str) -> bytes:
        """The resolver's public key, checked against `pin` (hex SHA-256 of the key)."""
        body = _unsigned_body(await self.get("/v1/resolver"), self.url)
        ans = body.get("answer")
        pk = ans.get("public_key") if isinstance(ans, dict) else None
        if type(pk) is not bytes or len(pk) != 32:
            raise VerifyError("identity", f"{self.url} did not give a resolver key")
        if pin is not None and hashlib.sha256(pk).hexdigest() != pin.lower():
            raise VerifyError("pin", f"{self.url} has key {hashlib.sha256(pk).hexdigest()}, not the pinned {pin}")
        if ans.get("network") != network:
            raise VerifyError("identity", f"{self.url} serves network {ans.get('network')!r}, not {network}")
        self.public_key = pk
        return pk

    async def headers(self, start: int, count: int) -> list[bytes]:
        body = _unsigned_body(await self.get(f"/v1/headers?from={start}&count={count}"), self.url)
        ans = body.get("answer")
        hs = ans.get("headers") if isinstance(ans, dict) else None
        if not isinstance(hs, list) or len(hs) > count or any(type(h) is not bytes for h in hs):
            raise VerifyError("header", f"{self.url} sent a malformed header list")
        return hs

    async def domain(self, fqdn: str, qtype: str) -> bytes:
        return await self.get(f"/v1/domain/{quote(fqdn, safe='')}?type={qtype}")


def _unsigned_body(data: bytes, url: str) -> dict:
    """An envelope's body without checking who signed it: used for headers (proof of work
    vouches for them) and to learn the key a pin is then checked against."""
    try:
        obj = msgpack.unpackb(data, raw=False)
        body = msgpack.unpackb(obj[1], raw=False, strict_map_key=True)
    except Exception:
        raise VerifyError("shape", f"{url} did not answer with an envelope") from None
    if not isinstance(body, dict):
        raise VerifyError("shape", f"{url} did not answer with an envelope")
    return body


class LightClient:
    def __init__(self, params, light_dir: str, resolver_url: str, pin: str | None, *,
                 header_urls: tuple[str, ...] = (), trust: str = "proofs",
                 max_behind: int = DEFAULT_MAX_BEHIND, checkpoints: dict | None = None,
                 progress=None, ca_certs=(), dane_anchors=None, peers=(), resolvers=(),
                 max_tip_age: float | None = None):
        self.params = params
        self.light_dir = light_dir
        self.resolver_url = resolver_url
        self.pin = pin
        self.header_urls = header_urls
        self.trust = trust
        self.max_behind = max_behind
        self.checkpoints = checkpoints or {}
        self.progress = progress
        self.ca_certs = tuple(ca_certs)      # cryptography x509 certificates of CAs we trust for .bit
        self.dane_anchors = dane_anchors or {}   # dane.read_anchors(): names outside bit. checked by DNSSEC
        self.peers = tuple(peers)            # (host, port) of full nodes we sync headers from over p2p
        self.more_resolvers = tuple(resolvers)   # (url, pin) of further resolvers: pinned header sources
        self.max_tip_age = max_tip_age
        self.notes: list[str] = []           # sources that fed a lower-work chain or failed, for stderr
        self.store: HeaderStore | None = None
        self.session: aiohttp.ClientSession | None = None
        self.resolver: Source | None = None
        self._last_sync = 0.0
        self._sync_lock = asyncio.Lock()

    async def __aenter__(self):
        self.session = aiohttp.ClientSession()
        self.resolver = Source(self.resolver_url, self.session)
        if self.trust == "proofs":
            self.store = HeaderStore(self.light_dir, self.params)
        return self

    async def __aexit__(self, *exc):
        await self.session.close()

    async def sync(self) -> int:
        """Syncs headers from every source (resolvers, extra URLs, p2p peers); the store keeps
        the most work, so no one source decides which chain is current. A source synced before
        another moved us to a chain with more work is asked once more, which notes it as
        serving a lower-work chain (or brings us its newer blocks)."""
        async with self._sync_lock:
            runs = [self._http_run(self.resolver)] + [self._http_run(Source(u, self.session))
                                                      for u in self.header_urls]
            for url, pin in self.more_resolvers:
                src = Source(url, self.session)
                await src.identify(pin, self.params.name)
                runs.append(self._http_run(src))
            runs += [self._peer_run(host, port) for host, port in self.peers]
            after = [await run() for run in runs]
            for run, tip in zip(runs, after):
                if tip is not None and tip != self.store.hash(self.store.height):
                    await run()
            if self.peers and all(tip is None for tip in after[-len(self.peers):]):
                said = [n for n in self.notes if n.startswith("peer ")][-len(self.peers):]
                raise VerifyError("connect", f"no --peer answered ({'; '.join(said)})")
            self._check_checkpoints()
            self._last_sync = time.monotonic()
            return self.store.height

    def _http_run(self, src: Source):
        async def run():
            await sync(self.store, src.headers, time.time, self.checkpoints, self.progress, self._noter(src.url))
            return self.store.hash(self.store.height)
        return run

    def _peer_run(self, host: str, port: int):
        """Headers from a full node; None if it cannot be reached or sends headers that fail
        our checks (noted: one dead or lying peer must not stop us, since the valid headers
        it sent are kept and the other sources go on; but if no peer gives good headers the
        sync fails, since the user asked for the network's view and we do not have it)."""
        async def run():
            try:
                async with PeerSource(host, port, self.params, self.store.height) as peer:
                    await sync_locator(self.store, peer.headers_after, time.time, self.checkpoints,
                                       self.progress, self._noter(peer.name))
            except VerifyError as e:
                if e.check not in ("connect", "header"):
                    raise
                what = "gave no headers" if e.check == "connect" else "sent headers that fail our checks"
                self._noter(f"peer {host}:{port}")(f"{what} ({e})")
                return None
            return self.store.hash(self.store.height)
        return run

    def _noter(self, source: str):
        def note(message: str) -> None:
            line = f"{source} {message}"
            if line not in self.notes:
                self.notes.append(line)
        return note

    def _check_checkpoints(self) -> None:
        for h, want in self.checkpoints.items():
            if h <= self.store.height and self.store.hash(h) != want:
                raise VerifyError("checkpoint", f"our chain does not contain the checkpoint at height {h}")

    async def resolve(self, fqdn: str, qtype: str, fresh_sync: bool = True) -> Verified:
        if self.resolver.public_key is None:
            await self.resolver.identify(self.pin, self.params.name)
        chain_name = domain_of(fqdn) is not None        # outside bit., headers vouch for nothing
        if self.trust == "proofs" and chain_name and (fresh_sync or time.monotonic() - self._last_sync > SYNC_EVERY):
            await self.sync()
        data = await self.resolver.domain(fqdn, qtype)
        now = time.time()
        body = open_answer(data, self.resolver.public_key, fqdn, qtype, now)
        if self.trust == "proofs" and chain_name and body["tip"]["height"] > self.store.height:
            await self.sync()          # the resolver saw a block we have not fetched yet
        store = self.store
        return verify_answer(body, store.header if store else None, store.height if store else -1,
                             self.params, now, self.max_behind, self.trust, self.ca_certs, self.dane_anchors,
                             self.max_tip_age)


"""The signed HTTP API (aiohttp). Every answer, errors included, is an envelope signed by
the resolver key (envelope.py) that binds the question, the answer, the tip it was answered
at, the time served and a valid-until, and carries name-tree proofs for every name used.

  GET  /v1/resolver                      public key, fingerprint, network, tip, DNSKEY/DS
  GET  /v1/name/{name}                   the name's record and its proof
  GET  /v1/domain/{fqdn}?type=T          resolved records, TLSA and MinimaLT data, proofs
  GET  /v1/headers?from=H&count=N        raw 112-byte headers for light clients
  POST /v1/ekey                          an ephemeral-key update (msgpack bytes)
JSON by default; msgpack with `?format=msgpack` or `Accept: application/msgpack`.

Signed GET answers are cached per URL and format until a block or name change (or 30 s),
so a hot name costs one signature per block, not one per request.
"""
from __future__ import annotations

import time

from aiohttp import web

from node.chain.crypto import encode_address
from node.names.rules import expires_in, is_expired
from .envelope import VERSION, seal
from .records import domain_of, select

VALID_FOR = 300
CACHE_SECONDS = 30
MAX_CACHE = 100_000
MAX_HEADERS = 2000
MSGPACK = "application/msgpack"


class HTTPAPI:
    def __init__(self, resolver):
        self.resolver = resolver
        self.node = resolver.node
        self.chain = resolver.node.chain
        self.port = None
        self._runner = None
        self._cache: dict = {}
        self.chain.listeners.append(self.invalidate)

    def invalidate(self, *_event) -> None:
        self._cache.clear()

    async def start(self, host: str, port: int) -> None:
        app = web.Application(client_max_size=4096)
        app.router.add_get("/v1/resolver", self._cached(self.info))
        app.router.add_get("/v1/name/{name:.+}", self._cached(self.name))
        app.router.add_get("/v1/domain/{fqdn}", self._cached(self.domain))
        app.router.add_get("/v1/headers", self._cached(self.headers))
        app.router.add_post("/v1/ekey", self.ekey)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # --- envelopes ------------------------------------------------------------------------------

    def _envelope(self, request, kind: str, question: dict, answer, proofs=(), status: int = 200,
                  error: str | None = None) -> web.Response:
        tip = self.chain.tip
        now = int(time.time())
        body = {"v": VERSION, "kind": kind, "question": question, "answer": answer,
                "tip": {"height": tip.height, "hash": tip.hash, "name_root": tip.header.name_root},
                "served": now, "valid_until": now + VALID_FOR, "proofs": list(proofs)}
        if error is not None:
            body["error"] = error
        fmt = _format(request)
        data = seal(body, self.resolver.key.sign, fmt)
        return web.Response(body=data, status=status,
                            content_type=MSGPACK if fmt == "msgpack" else "application/json")

    def _cached(self, handler):
        async def serve(request):
            ck = (request.path_qs, _format(request))
            hit = self._cache.get(ck)
            now = time.monotonic()
            if hit is not None and hit[1] > now:
                return web.Response(body=hit[0].body, status=hit[0].status, content_type=hit[0].content_type)
            resp = handler(request)
            if len(self._cache) >= MAX_CACHE:
                self._cache.clear()
            self._cache[ck] = (resp, now + CACHE_SECONDS)
            return resp
        return serve

    def _proof(self, name: bytes) -> dict:
        names = self.chain.names
        rec = names.get(name)
        proof = names.prove(self.chain.tip.header.name_root, name)
        return {"name": name, "record": rec.to_bytes() if rec else None, "proof": proof.to_bytes()}

    def _error(self, request, question: dict, code: str, message: str, status: int, proofs=()):
        return self._envelope(request, "error", question, None, proofs, status, f"{code}: {message}")

    # --- handlers -------------------------------------------------------------------------------

    def info(self, request):
        key = self.resolver.key
        dnskey, ds = key.anchor_lines()
        return self._envelope(request, "resolver", {}, {
            "public_key": key.public_key, "fingerprint": key.fingerprint, "network": self.node.params.name,
            "dnskey": dnskey, "ds": ds, "key_tag": key.key_tag})

    def name(self, request):
        text = request.match_info["name"]
        name = text.encode("utf-8", "surrogateescape")
        question = {"name": name}
        if not 0 < len(name) <= 255:
            return self._error(request, question, "bad-name", "a name is 1 to 255 bytes", 400)
        rec = self.chain.names.get(name)
        proofs = [self._proof(name)]
        if rec is None:
            return self._error(request, question, "not-found", "the name does not exist", 404, proofs)
        height = self.chain.height
        params = self.node.params
        return self._envelope(request, "name", question, {
            "name": rec.name, "value": rec.value, "address": encode_address(params.address_version, rec.address),
            "height": rec.height, "txid": rec.txid, "vout": rec.vout,
            "expires_in": expires_in(rec, height, params), "expired": is_expired(rec, height, params)}, proofs)

    def domain(self, request):
        fqdn = request.match_info["fqdn"].lower().rstrip(".") + "."
        qtype = request.query.get("type", "ANY").upper()
        question = {"name": fqdn, "type": qtype}
        if domain_of(fqdn) is None:
            return self._error(request, question, "not-bit", "only names under bit. are served", 400)
        ans = self.resolver.source.resolve(fqdn)
        proofs = [self._proof(n.encode()) for n in ans.names_used]
        if not ans.records:
            return self._error(request, question, "not-found", "the domain does not exist", 404, proofs)
        records = [[r.owner, r.rtype, r.rdata] for r in select(ans.records, fqdn, qtype)]
        tls = [[r.owner, r.rdata] for r in ans.records if r.rtype == "TLSA"]
        mlt = []
        for owner, (item, eph, update) in ans.minimalt.items():
            mlt.append({"owner": owner, "ip": item.ip, "port": item.port, "id_key": item.id_key, "eph_key": eph,
                        "eph_update": update.to_bytes() if update else None})
        return self._envelope(request, "domain", question,
                              {"records": records, "tls": tls, "minimalt": mlt}, proofs)

    def headers(self, request):
        try:
            start = int(request.query.get("from", "0"))
            count = int(request.query.get("count", str(MAX_HEADERS)))
        except ValueError:
            return self._error(request, {}, "bad-request", "from and count must be integers", 400)
        question = {"from": start, "count": count}
        if start < 0 or count < 1 or count > MAX_HEADERS:
            return self._error(request, question, "bad-request", f"from >= 0 and 1 <= count <= {MAX_HEADERS}", 400)
        headers = []
        for h in range(start, min(start + count, self.chain.height + 1)):
            headers.append(self.chain.entry_at(h).header.to_bytes())
        return self._envelope(request, "headers", question, {"from": start, "headers": headers})

    async def ekey(self, request):
        data = await request.read()
        if request.content_type == "application/json":
            try:
                data = bytes.fromhex((await request.json())["update"])
            except Exception:
                return self._error(request, {}, "bad-request", 'JSON body must be {"update": hex}', 400)
        result = self.node.submit_ekey(data)
        question = {"update": data[:512]}
        if not result["accepted"]:
            return self._error(request, question, result["reason"], result["message"], 400)
        return self._envelope(request, "ekey", question, result)


def _format(request) -> str:
    fmt = request.query.get("format")
    if fmt in ("msgpack", "json"):
        return fmt
    accept = request.headers.get("Accept", "")
    return "msgpack" if "msgpack" in accept else "json"

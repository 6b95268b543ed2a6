"""The CA's endpoints on the resolver's HTTP API (http_api.py routes them here).

  GET  /v1/ca/cert              the CA certificate (PEM)
  GET  /v1/ca/crl               the current CRL (DER, signed by the CA, nextUpdate set)
  GET  /v1/ca/status/{serial}   good / revoked / unknown (signed envelope)
  POST /v1/ca/issue             JSON {name, csr (PEM), block_hash, pubkey33, sig64} (hex) -> leaf
  POST /v1/ca/revoke            JSON {name, serial, block_hash, pubkey33, sig64} (hex)
  POST /v1/ca/ocsp              an OCSP request (DER, application/ocsp-request) -> response
Refusals are signed error envelopes carrying a stable reason (`not-owner: ...`) and a 4xx.
"""
from __future__ import annotations

import json

from cryptography.hazmat.primitives import serialization

from node.resolver.ca.authority import CAError
from core.ca_evidence import tlsa_rdata

STATUS = {"bad-request": 400, "bad-name": 400, "bad-csr": 400, "weak-key": 400, "san-outside-name": 400,
          "stale-block": 400, "bad-proof": 403, "not-owner": 403, "name-expired": 403, "unknown-name": 404,
          "unknown-serial": 404, "already-revoked": 409, "bad-san": 400,
          "too-many-leaves": 409}


def routes(api) -> list:
    h = Handlers(api)
    return [("GET", "/v1/ca/cert", False, h.cert), ("GET", "/v1/ca/crl", False, h.crl),
            ("GET", "/v1/ca/status/", True, h.status), ("POST", "/v1/ca/issue", False, h.issue),
            ("POST", "/v1/ca/revoke", False, h.revoke), ("POST", "/v1/ca/ocsp", False, h.ocsp)]


def off_routes(api, reason: str) -> list:
    """Every CA endpoint of a node without a running CA: a signed 503 saying why and how to
    start one, rather than "no such endpoint", which sends people looking for a typo."""
    def off(request):
        return api._error(request, {}, "no-ca", reason, 503)
    return [("*", "/v1/ca/", True, off)]


class Handlers:
    def __init__(self, api):
        self.api = api
        self.ca = api.resolver.ca

    def _raw(self, ctype: str, body: bytes):
        return self.api.raw(ctype, body)      # http_api imports this module, not the reverse

    def cert(self, request):
        return self._raw("application/x-pem-file", self.ca.authority.cert_pem)

    def crl(self, request):
        return self._raw("application/pkix-crl", self.ca.crl())

    def ocsp(self, request):
        return self._raw("application/ocsp-response", self.ca.ocsp(request.body))

    def status(self, request):
        text = request.match_info["rest"].lower()
        question = {"serial": text[:64]}
        try:
            serial = bytes.fromhex(text)
        except ValueError:
            return self.api._error(request, question, "bad-request", "the serial is hex", 400)
        st, rec = self.ca.status(serial)
        answer = {"serial": text, "status": st}
        if rec is not None:
            answer |= {"name": rec.name.decode("utf-8", "replace"), "not_after": rec.not_after, "revoked_at": rec.revoked_at or None,
                       "reason": rec.reason or None}
        return self.api._envelope(request, "ca-status", question, answer)

    def _fields(self, request, names: tuple[str, ...]) -> dict:
        try:
            obj = json.loads(request.body)
        except ValueError:
            raise CAError("bad-request", "the body must be a JSON object") from None
        # Every field is ASCII (d/ names the CA certifies, hex, PEM); a lone surrogate, which
        # JSON allows and no encoding takes, would otherwise reach name.encode() in the service.
        if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) and obj[k].isascii() for k in names):
            raise CAError("bad-request", f"the body needs the ASCII text fields {', '.join(names)}")
        out = {k: obj[k] for k in names}
        for k, size in (("block_hash", 32), ("pubkey33", 33), ("sig64", 64), ("serial", 16)):
            if k in out:
                try:
                    out[k] = bytes.fromhex(out[k])
                except ValueError:
                    raise CAError("bad-request", f"{k} must be hex") from None
                if len(out[k]) != size:
                    raise CAError("bad-request", f"{k} must be {size} bytes")
        return out

    def _refuse(self, request, question: dict, e: CAError):
        return self.api._error(request, question, e.reason, str(e), STATUS.get(e.reason, 400))

    def issue(self, request):
        question: dict = {}
        try:
            f = self._fields(request, ("name", "csr", "block_hash", "pubkey33", "sig64"))
            question = {"name": f["name"][:255], "block_hash": f["block_hash"]}
            rec = self.ca.issue(f["name"], f["csr"], f["block_hash"], f["pubkey33"], f["sig64"])
        except CAError as e:
            return self._refuse(request, question, e)
        cert = self.ca._leaf(rec)[0]
        return self.api._envelope(request, "ca-issue", question, {
            "serial": rec.serial.hex(), "name": rec.name.decode("utf-8", "replace"), "not_before": rec.issued_at, "not_after": rec.not_after,
            "cert": cert.public_bytes(serialization.Encoding.PEM).decode(), "tlsa": tlsa_rdata(cert),
            "ca_cert": self.ca.authority.cert_pem.decode()})

    def revoke(self, request):
        question: dict = {}
        try:
            f = self._fields(request, ("name", "serial", "block_hash", "pubkey33", "sig64"))
            question = {"name": f["name"][:255], "serial": f["serial"].hex()}
            rec = self.ca.revoke_request(f["name"], f["serial"], f["block_hash"], f["pubkey33"], f["sig64"])
        except CAError as e:
            return self._refuse(request, question, e)
        return self.api._envelope(request, "ca-revoke", question, {
            "serial": rec.serial.hex(), "status": "revoked", "revoked_at": rec.revoked_at, "reason": rec.reason})

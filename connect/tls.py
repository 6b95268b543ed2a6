"""TLS connections whose certificate is checked against verified TLSA rows, never against
the system CA store: the context verifies nothing itself (CERT_NONE, no CA loaded) and no
byte of the request is sent before danecheck accepted the chain the server presented.

The presented chain comes from OpenSSL's unverified peer chain: public as
get_unverified_chain() from Python 3.13, the same call on the private _sslobj on 3.10-3.12.
"""
from __future__ import annotations

import asyncio
import socket
import ssl
import time

from connect.danecheck import MAX_CHAIN, check_chain
from connect.lookup import Lookup
from connect.target import CheckFailed, Target


def client_context() -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False        # the name is checked by danecheck where RFC 7671 asks for it
    ctx.verify_mode = ssl.CERT_NONE   # the chain is checked against TLSA, not a CA store
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def presented_chain(sslobj) -> list[bytes]:
    """DER of the certificates the server sent, leaf first (at most MAX_CHAIN)."""
    get = getattr(sslobj, "get_unverified_chain", None) or getattr(sslobj._sslobj, "get_unverified_chain", None)
    if get is None:
        raise CheckFailed("tls", "this Python cannot show the server's certificate chain (needs 3.10 or later)")
    chain = get() or []
    return [c if isinstance(c, bytes) else c.public_bytes(ssl._ssl.ENCODING_DER) for c in chain[:MAX_CHAIN]]


def connect_blocking(target: Target, found: Lookup, timeout: float, say) -> ssl.SSLSocket:
    """A TLS socket to the first verified address that answers, its chain accepted by a TLSA
    row; CheckFailed("connect" or "tls", ...) otherwise. A certificate that does not match
    fails at once: trying the next address would only ask another server the same question."""
    ctx, errors = client_context(), []
    for addr in found.addresses:
        try:
            raw = socket.create_connection((addr, target.port), timeout=timeout)
        except OSError as e:
            errors.append(f"{addr}: {e.strerror or e}")
            continue
        try:
            sock = ctx.wrap_socket(raw, server_hostname=target.host)
        except (OSError, ssl.SSLError) as e:
            raw.close()
            errors.append(f"{addr}: TLS handshake failed ({e})")
            continue
        try:
            say(f"tls: {check_chain(presented_chain(sock), list(found.tlsa), target.host, time.time())}, "
                f"at {addr} port {target.port}")
        except CheckFailed:
            sock.close()
            raise
        return sock
    raise CheckFailed("connect", f"no verified address of {target.host} port {target.port} answered "
                                 f"({'; '.join(errors)})")


async def connect_async(target: Target, found: Lookup, timeout: float, say):
    """As connect_blocking, for the forwarder: (reader, writer) of the checked connection."""
    ctx, errors = client_context(), []
    for addr in found.addresses:
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(addr, target.port, ssl=ctx, server_hostname=target.host), timeout)
        except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
            errors.append(f"{addr}: {type(e).__name__} {e}".strip())
            continue
        try:
            chain = presented_chain(writer.get_extra_info("ssl_object"))
            say(f"tls: {check_chain(chain, list(found.tlsa), target.host, time.time())}, at {addr} port {target.port}")
        except CheckFailed:
            writer.close()
            raise
        return reader, writer
    raise CheckFailed("connect", f"no verified address of {target.host} port {target.port} answered "
                                 f"({'; '.join(errors)})")

"""The whole zone built from the name index, for a first enable, a stale zone (blocks came
while no resolver ran, another key) and reindex: in two passes over the store in bounded
batches, never the whole zone in memory. Pass one renders every live name's owners unsigned;
pass two walks them in canonical order, so each owner's NSEC names the next one, and signs.
The serial goes on from the one stored (a rebuild is one new serial), or starts above the tip
height, the serial the zone had before it was kept in the store.
"""
from __future__ import annotations

import logging
import time

import dns.name

from node.resolver.identity import ZONE
from node.resolver.zone import rrwire
from node.resolver.zone.basis import chain_value, next_serial, signing_window
from node.resolver.zone.render import IN_CHAIN, data_of, entry_bytes, render_name, sign
from node.resolver.zone.store import Meta

log = logging.getLogger("dotbit.resolver.zone")

NAMES_PER_BATCH = 2000
OWNERS_PER_BATCH = 5000


def rebuild(proj, tip) -> None:
    store = proj.store
    old = store.meta()
    serial = next_serial(old.serial) if old is not None else next_serial(tip.height)
    step = old.next_step if old is not None else 0
    started = time.monotonic()
    # Stale first: a crash part way leaves a zone that is rebuilt again, never served.
    with proj.db.write_batch() as b:
        store.put_meta(b, Meta(serial, b"", proj.key.public_key, step, step))
    store.wipe()
    names = _render_all(proj, tip.height, serial)
    owners = _sign_all(proj, tip.header.time)
    with proj.db.write_batch() as b:
        store.put_meta(b, Meta(serial, tip.hash, proj.key.public_key, step, step))
    log.info("zone bit. built: serial %d, %d names, %d owners in %.1f s", serial, names, owners,
             time.monotonic() - started)


def _render_all(proj, height: int, serial: int) -> int:
    store = proj.store
    value = chain_value(proj.names, proj.params, height)
    count = 0
    batch_names: list = []

    def flush():
        with proj.db.write_batch() as b:
            for name, owners, deps in batch_names:
                for o in owners:
                    store.put_owner(b, o.key, entry_bytes(o.name.to_wire(), o.flags, 0, o.data))
                store.put_name(b, name, [o.key for o in owners], deps)
                for dep in deps:
                    store.set_import(b, dep, name, True)
        batch_names.clear()

    with proj.db.write_batch() as b:
        store.put_owner(b, rrwire.APEX_KEY, entry_bytes(ZONE.to_wire(), IN_CHAIN, 0,
                                                         rrwire.apex_data(proj.key, serial)))
    for rec in proj.names.scan():
        if not rec.name.startswith(b"d/"):
            continue
        owners, deps = render_name(rec.name, value)
        if owners:
            batch_names.append((rec.name, owners, deps))
            count += 1
        if len(batch_names) >= NAMES_PER_BATCH:
            flush()
    flush()
    return count


def _sign_all(proj, tip_time: int) -> int:
    """Pass two: each owner in the chain is signed once the next one is known."""
    store = proj.store
    inception, expiration = signing_window(tip_time)
    out: list = []
    held = None                       # the last owner in the chain, waiting for its next name
    count = 0

    def put(k, name, flags, data, nxt):
        rrs = sign(proj.key, name, flags, data, nxt, inception, expiration)
        out.append((k, entry_bytes(name.to_wire(), flags, expiration, rrs)))

    def flush():
        with proj.db.write_batch() as b:
            for k, raw in out:
                store.put_owner(b, k, raw)
                store.set_expiry(b, expiration, k, True)
        out.clear()

    for k, e in store.owners():
        count += 1
        if not e[1] & IN_CHAIN:
            continue                  # glue: stored unsigned in pass one, and stays so
        name = dns.name.from_wire(e[0], 0)[0]
        if held is not None:
            put(*held, name)
        held = (k, name, e[1], data_of(map(tuple, e[3])))
        if len(out) >= OWNERS_PER_BATCH:
            flush()
    if held is not None:
        put(*held, ZONE)
    flush()
    return count

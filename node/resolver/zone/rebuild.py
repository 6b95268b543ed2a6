"""The whole zone built from the name index, for a first enable, a stale zone (blocks came
while no resolver ran, another key) and reindex: in two passes over the store in bounded
batches, never the whole zone in memory. Pass one renders every live name's owners unsigned;
pass two walks them in canonical order, so each owner's NSEC names the next one, and signs.
Both passes hand their CPU work to worker processes on a big zone (lanes.py), and write the
same bytes either way.
The serial goes on from the one stored (a rebuild is one new serial), or starts above the tip
height, the serial the zone had before it was kept in the store.
"""
from __future__ import annotations

import logging
import time

from node.resolver.identity import ZONE
from node.resolver.zone import rrwire
from node.resolver.zone.basis import chain_value, live_text, next_serial, signing_window
from node.resolver.zone.lanes import Lanes, default_workers, render_chunk, sign_chunk
from node.resolver.zone.render import IN_CHAIN, data_of, entry_bytes, render_name
from node.resolver.zone.store import Meta

log = logging.getLogger("dotbit.resolver.zone")

NAMES_PER_BATCH = 2000
OWNERS_PER_BATCH = 5000
INLINE_CHUNKS = 2                 # chunks of each pass done here before worker processes start


def rebuild(proj, tip, workers: int | None = None, inline: int = INLINE_CHUNKS) -> None:
    """`workers`: processes rendering and signing beside this one (lanes.py; None: one per core
    but this one's, up to 3; 0: none); the first `inline` chunks of each pass are done here
    either way."""
    store = proj.store
    old = store.meta()
    serial = next_serial(old.serial) if old is not None else next_serial(tip.height)
    step = old.next_step if old is not None else 0
    started = time.monotonic()
    # Stale first: a crash part way leaves a zone that is rebuilt again, never served.
    with proj.db.write_batch() as b:
        store.put_meta(b, Meta(serial, b"", proj.key.public_key, step, step))
    store.wipe()
    lanes = Lanes(proj.key, default_workers() if workers is None else workers, inline)
    try:
        names = _render_all(proj, tip.height, serial, lanes)
        lanes.submitted = 0                 # the signing pass starts inline too
        owners = _sign_all(proj, tip.header.time, lanes)
    finally:
        lanes.close()
    with proj.db.write_batch() as b:
        store.put_meta(b, Meta(serial, tip.hash, proj.key.public_key, step, step))
    log.info("zone bit. built: serial %d, %d names, %d owners in %.1f s", serial, names, owners,
             time.monotonic() - started)


def _render_all(proj, height: int, serial: int, lanes: Lanes) -> int:
    """Pass one: every live d/ name's owners, unsigned, and its imports."""
    store = proj.store
    value = chain_value(proj.names, proj.params, height)
    count = 0

    def write(results):
        nonlocal count
        with proj.db.write_batch() as b:
            for name, owners, deps in results:
                if owners is None:          # it imports: rendered here, where the store is
                    rendered, deps = render_name(name, value)
                    owners = [(o.key, entry_bytes(o.name.to_wire(), o.flags, 0, o.data)) for o in rendered]
                if not owners:
                    continue
                count += 1
                for k, raw in owners:
                    store.put_owner(b, k, raw)
                store.put_name(b, name, [k for k, _ in owners], deps)
                for dep in deps:
                    store.set_import(b, dep, name, True)

    with proj.db.write_batch() as b:
        store.put_owner(b, rrwire.APEX_KEY, entry_bytes(ZONE.to_wire(), IN_CHAIN, 0,
                                                         rrwire.apex_data(proj.key, serial)))
    chunk: list = []
    for rec in proj.names.scan():
        if not rec.name.startswith(b"d/"):
            continue
        text = live_text(rec, proj.params, height)          # as value() would, without reading it again
        if text is not None:
            chunk.append((rec.name, text))
        if len(chunk) >= NAMES_PER_BATCH:
            for results in lanes.submit(render_chunk, chunk):
                write(results)
            chunk = []
    if chunk:
        for results in lanes.submit(render_chunk, chunk):
            write(results)
    for results in lanes.drain():
        write(results)
    return count


def _sign_all(proj, tip_time: int, lanes: Lanes) -> int:
    """Pass two: each owner in the chain is signed once the next one is known."""
    store = proj.store
    inception, expiration = signing_window(tip_time)
    items: list = []
    held = None                       # the last owner in the chain, waiting for its next name
    count = 0

    def write(results):
        with proj.db.write_batch() as b:
            for k, raw in results:
                store.put_owner(b, k, raw)
                store.set_expiry(b, expiration, k, True)

    for k, e in store.owners():
        count += 1
        if not e[1] & IN_CHAIN:
            continue                  # glue: stored unsigned in pass one, and stays so
        if held is not None:
            items.append(held + (e[0],))
        held = (k, e[0], e[1], data_of(map(tuple, e[3])))
        if len(items) >= OWNERS_PER_BATCH:
            for results in lanes.submit(sign_chunk, items, inception, expiration):
                write(results)
            items = []
    if held is not None:
        items.append(held + (ZONE.to_wire(),))
    if items:
        for results in lanes.submit(sign_chunk, items, inception, expiration):
            write(results)
    for results in lanes.drain():
        write(results)
    return count

"""The resolver's read-only view of names: what `bit.` holds at and below a query name.

It reads the name index through `get` only (DESIGN §1: the resolver never writes chain
state), treats expired names as absent, renders d/ values with the shared interpreter, and
serves each minimalT item as TXT at `_minimalt._udp.OWNER` with the freshest MinimaLT
ephemeral key. Results are cached per query name and indexed by the
names they were built from (imports and absent names included), so a name-change event drops
exactly the answers that read that name and an update is visible at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from core.names.dvalue import MinimaLT, Record, bit_labels, minimalt_txt_rdata, records_for_qname
from core.names.rules import is_expired

MINIMALT_PREFIX = "_minimalt._udp."
MAX_CACHE = 200_000


@dataclass(frozen=True, slots=True)
class Answer:
    qname: str
    records: tuple[Record, ...]              # at qname and below it (or the cut / DNAME above)
    names_used: tuple[str, ...]
    minimalt: dict                            # owner -> (MinimaLT, eph_key, EKeyUpdate | None)

    def at(self, owner: str) -> list[Record]:
        return [r for r in self.records if r.owner == owner]

    def below(self, owner: str) -> bool:
        suffix = "." + owner
        return any(r.owner.endswith(suffix) for r in self.records)


def select(records, fqdn: str, qtype: str) -> list[Record]:
    """The records an answer for (fqdn, qtype) carries. The HTTP API and light clients both
    use this, so a client can recompute an answer from proven names and compare."""
    return [r for r in records
            if qtype == "ANY" or (r.owner == fqdn and r.rtype in (qtype, "CNAME", "DNAME"))
            or r.rtype in ("NS", "DNAME") and fqdn.endswith("." + r.owner)]


def domain_of(qname: str) -> str | None:
    """ "www.example.bit." -> "d/example" """
    labels = qname.rstrip(".").split(".")
    return "d/" + labels[-2] if len(labels) >= 2 and labels[-1] == "bit" and labels[-2] else None


class NameSource:
    def __init__(self, get_record: Callable, height: Callable[[], int], params, ekeys=None):
        self.get_record = get_record
        self.height = height
        self.params = params
        self.ekeys = ekeys
        self._cache: dict[str, Answer] = {}
        self._by_name: dict[str, set] = {}
        self.track: list | None = None      # when a list, every resolve() adds its names_used

    def invalidate(self, name: str | None = None) -> None:
        """Forget answers built from `name` ("d/example"), or everything."""
        if name is None:
            self._cache.clear()
            self._by_name.clear()
            return
        for q in self._by_name.pop(name, ()):
            self._cache.pop(q, None)

    def value(self, name: str) -> str | None:
        rec = self.get_record(name.encode())
        if rec is None or is_expired(rec, self.height(), self.params):
            return None
        try:
            return rec.value.decode("utf-8")
        except UnicodeDecodeError:
            return None

    def resolve(self, qname: str) -> Answer:
        q = qname.lower()
        q = q if q.endswith(".") else q + "."
        hit = self._cache.get(q)
        if hit is None:
            hit = self._build(q)
            # An empty answer (a name nobody registered) is cheap to rebuild and not worth a
            # cache slot: a flood of random names would otherwise fill the cache with them.
            if hit.records:
                if len(self._cache) >= MAX_CACHE:
                    self.invalidate()
                self._cache[q] = hit
                for n in hit.names_used:
                    self._by_name.setdefault(n, set()).add(q)
        if self.track is not None:
            self.track.extend(hit.names_used)
        return hit

    def _build(self, q: str) -> Answer:
        res = records_for_qname(q, self.value)
        if not res.minimalt and not q.startswith(("_minimalt._udp.", "_udp.")):
            return Answer(q, res.records, res.names_used, {})     # records come sorted, each once
        records = set(res.records)
        used = list(res.names_used)
        mlt = {owner: self._fresh(owner, item) for owner, item in res.minimalt.items()}
        # _minimalt._udp.OWNER (and the empty non-terminal _udp.OWNER above it)
        for prefix in (MINIMALT_PREFIX, "_udp."):
            if q.startswith(prefix) and q[len(prefix):].count(".") >= 2:
                owner = q[len(prefix):]
                sub = records_for_qname(owner, self.value)
                used += [n for n in sub.names_used if n not in used]
                item = sub.minimalt.get(owner)
                if item is not None:
                    fresh = self._fresh(owner, item)
                    mlt.setdefault(owner, fresh)
                    records.add(Record(MINIMALT_PREFIX + owner, "TXT", minimalt_txt_rdata(item, fresh[1])))
        return Answer(q, tuple(sorted(records, key=lambda r: (r.owner, r.rtype, r.rdata))), tuple(used), mlt)

    def _fresh(self, owner: str, item: MinimaLT):
        update = None
        if self.ekeys is not None:
            domain = domain_of(owner)
            update = self.ekeys.current(domain.encode()) if domain else None
        return (item, update.eph_key if update else item.eph_key, update)


def unregistered(q: str, absent: Callable[[str], bool]) -> Answer | None:
    """NameSource.resolve(q)'s answer, built without the resolver, when `q` (lower case, ending
    in a dot) is under a d/ name nobody holds (`absent(d/ name)`): an empty answer that read that
    name alone, as the interpreter's first read finds it missing. None where resolve() would do
    more or other (not a name it reads a d/ name for, a MinimaLT owner query, a name that exists):
    half of a random-subdomain flood's answers, at a fraction of the interpreter's cost."""
    labels = bit_labels(q)
    if labels is None or q.startswith((MINIMALT_PREFIX, "_udp.")):
        return None
    name = "d/" + labels[-2]
    return Answer(q, (), (name,), {}) if absent(name) else None


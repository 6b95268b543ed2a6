"""Build the merged tree of a ``d/`` value: items per node, ``map`` children, ``import``
and legacy ``delegate`` resolved.

Merging is by layers. A node is: the value's ``map[""]`` entry (lowest), then each
imported value in order, then the value's own items (highest). A layer that has an item
key at all -- even ``null`` or an invalid one -- replaces that item of the layers below
(``"ip": null`` hides an imported address); ``map`` children merge key by key, so an import
never hides records at other owner names. A ``delegate`` that resolves replaces the whole
value it appears in.

Loops are cut by the chain of names being expanded (an import of a name that is already
being expanded above is skipped), nesting is limited to ``max_import_depth`` imports and
16 map levels, and one interpretation reads at most ``max_loads`` imported values, so a
hostile value cannot make a query expensive.

Pure: names are read only through the injected ``lookup``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from core.names import dvalue_items as items
from core.names.dnsname import is_owner_label
from core.names.dvalue_items import Issues

MAP_DEPTH_LIMIT = 16


@dataclass(slots=True)
class Node:
    """One owner name in the value tree: parsed items by key, and subdomains by label."""

    items: dict[str, Any] = field(default_factory=dict)
    children: dict[str, "Node"] = field(default_factory=dict)


def overlay(base: Node, top: Node) -> Node:
    """``top`` over ``base``: present items of ``top`` win; children merge recursively."""
    children = dict(base.children)
    for label, child in top.children.items():
        below = children.get(label)
        children[label] = child if below is None else overlay(below, child)
    return Node({**base.items, **top.items}, children)


def find(node: Node, relative: str) -> Node | None:
    """The descendant at a relative name ("a.www" is map www, then map a)."""
    if relative == "":
        return node
    for label in reversed(relative.lower().split(".")):
        node = node.children.get(label)
        if node is None:
            return None
    return node


def _no_constants(name: str) -> Any:
    raise ValueError(name)


# One decoder for every value (json.loads with an argument builds a new one per call).
_DECODER = json.JSONDecoder(parse_constant=_no_constants)


def parse_json(text: Any, issues: Issues) -> Any:
    """Decode a name value; None (and an error) when it is not JSON. NaN/Infinity are not
    JSON, and absurd nesting is refused rather than allowed to exhaust the stack."""
    if not isinstance(text, str):
        issues.error("value is not text")
        return None
    try:
        return _DECODER.decode(text)
    except (ValueError, RecursionError):
        issues.error("value is not valid JSON")
        return None


_PLAIN = frozenset({"ip", "ip6", "map"})     # keys Builder._plain takes alone


class Builder:
    """One interpretation: the lookup cache, the names read and the issue counts."""

    def __init__(self, lookup: Callable[[str], str | None], *, max_import_depth: int,
                 max_loads: int) -> None:
        self._lookup = lookup
        self._cache: dict[str, str | None] = {}
        self.names_used: list[str] = []
        self.issues = Issues()
        self.max_import_depth = max_import_depth
        self.max_loads = max_loads
        self._loads = 0

    def read(self, name: str) -> str | None:
        """Read a name once; every name read is recorded (present or absent) so the
        resolver can prove what the answer was built from."""
        if name not in self._cache:
            self._cache[name] = self._lookup(name)
            self.names_used.append(name)
        return self._cache[name]

    def root(self, name: str) -> Node | None:
        text = self.read(name)
        if text is None:
            return None
        value = parse_json(text, self.issues)
        if value is None:
            return None
        return self.node(value, (name,), 0, 0)

    # -- one JSON object -> Node ---------------------------------------------------------

    def node(self, value: Any, path: tuple[str, ...], merge_depth: int, depth: int) -> Node:
        if not isinstance(value, dict):
            self.issues.error("value is not an object")
            return Node()
        if depth > MAP_DEPTH_LIMIT:
            self.issues.error("map nesting too deep")
            return Node()

        if value.get("delegate") is not None:
            layers = self._references(value["delegate"], path, merge_depth, depth, "delegate")
            if layers:
                merged = Node()
                for layer in layers:
                    merged = overlay(merged, layer)
                return merged

        # Imports are read before the value's own items (names_used keeps that order).
        layers = None
        if value.get("import") is not None:
            layers = self._references(value["import"], path, merge_depth, depth, "import")
        merged = self._own(value, path, merge_depth, depth)      # a fresh Node nothing else holds
        if layers is not None:
            below = Node()
            for layer in layers:
                below = overlay(below, layer)
            merged = overlay(below, merged)

        empty = merged.children.pop("", None)
        if empty is not None:
            merged = overlay(empty, merged)
        return merged

    def _own(self, value: dict[str, Any], path: tuple[str, ...], merge_depth: int,
             depth: int) -> Node:
        """The items written in this object itself, and its map (a new Node)."""
        if _PLAIN.issuperset(value):
            return self._plain(value, path, merge_depth, depth)
        issues = self.issues
        own = Node()
        legacy = Node()  # children implied by the older "service" and six-element "tls"
        ns_raw = value["dns"] if value.get("dns") is not None else value.get("ns")
        if "ns" in value or "dns" in value:
            own.items["ns"] = () if ns_raw is None else items.parse_ns(ns_raw, issues)
        for key, v6 in (("ip", False), ("ip6", True)):
            if key in value:
                own.items[key] = () if value[key] is None else items.parse_ips(value[key], issues, v6)
        for key in ("alias", "translate"):
            if key in value:
                raw = value[key]
                own.items[key] = None if raw is None else items.parse_target(raw, issues, key)
        simple = (("ds", items.parse_ds), ("srv", items.parse_srv), ("mx", items.parse_mx),
                  ("txt", items.parse_txt), ("sshfp", items.parse_sshfp))
        for key, parse in simple:
            if key in value:
                own.items[key] = () if value[key] is None else parse(value[key], issues)
        if "tls" in value:
            tls = items.TlsItem((), {}) if value["tls"] is None else items.parse_tls(value["tls"], issues)
            own.items["tls"] = tls.here
            for (port, proto), rows in tls.placed.items():
                leaf = _grandchild(legacy, proto, port)
                leaf.items["tls"] = leaf.items.get("tls", ()) + tuple(rows)
        if value.get("service") is not None:
            for (app, proto), rows in items.parse_service(value["service"], issues).items():
                leaf = _grandchild(legacy, proto, app)
                leaf.items["srv"] = leaf.items.get("srv", ()) + tuple(rows)
        if "minimalT" in value:
            raw = value["minimalT"]
            own.items["minimalT"] = None if raw is None else items.parse_minimalt(raw, issues)
        if value.get("map") is not None:
            own.children = self._map(value["map"], path, merge_depth, depth)
        return overlay(legacy, own)

    def _plain(self, value: dict[str, Any], path: tuple[str, ...], merge_depth: int, depth: int) -> Node:
        """_own for the commonest values, addresses and a map only: the same Node, without
        trying every other item (most names on a chain look like this)."""
        own = Node()
        if "ip" in value:
            own.items["ip"] = () if value["ip"] is None else items.parse_ips(value["ip"], self.issues, False)
        if "ip6" in value:
            own.items["ip6"] = () if value["ip6"] is None else items.parse_ips(value["ip6"], self.issues, True)
        if value.get("map") is not None:
            own.children = self._map(value["map"], path, merge_depth, depth)
        return own

    def _map(self, raw: Any, path: tuple[str, ...], merge_depth: int,
             depth: int) -> dict[str, Node]:
        if not isinstance(raw, dict):
            self.issues.error("map value must be an object")
            return {}
        children: dict[str, Node] = {}
        for key in sorted(raw, key=lambda k: (k.lower(), k)):
            label = key.lower()
            if label not in ("", "*") and not is_owner_label(label):
                self.issues.warn(f"map key is not a DNS label: {key!r:.60}")
                continue
            sub = raw[key]
            if isinstance(sub, str):  # deprecated shorthand: "map": {"www": "1.2.3.4"}
                sub = {"ip": sub}
            if not isinstance(sub, dict):
                self.issues.error("map entry must be an object or an IPv4 string")
                continue
            child = self.node(sub, path, merge_depth, depth + 1)
            children[label] = child if label not in children else overlay(children[label], child)
        return children

    # -- import / delegate ---------------------------------------------------------------

    def _references(self, raw: Any, path: tuple[str, ...], merge_depth: int, depth: int,
                    what: str) -> list[Node]:
        """Resolve an import/delegate item to the list of layers it names, in order.
        Forms: "name", ["name"], ["name", "sub.domain"], [["name", "sub"], ["name2"]]."""
        if isinstance(raw, str):
            raw = [raw]
        if not isinstance(raw, list):
            self.issues.error(f"unknown {what} field format")
            return []
        if all(isinstance(x, str) for x in raw):
            raw = [raw]
        elif not all(isinstance(x, list) for x in raw):
            self.issues.error(f"unknown {what} field format")
            return []
        layers = []
        for entry in raw:
            if len(entry) not in (1, 2) or not isinstance(entry[0], str):
                self.issues.warn(f"{what} entry must be [name] or [name, subdomain]")
                continue
            name = entry[0]
            sub = entry[1] if len(entry) == 2 and isinstance(entry[1], str) else ""
            layer = self._load(name, sub, path, merge_depth + 1, depth, what)
            if layer is not None:
                layers.append(layer)
        return layers

    def _load(self, name: str, sub: str, path: tuple[str, ...], merge_depth: int,
              depth: int, what: str) -> Node | None:
        if name in path:
            self.issues.warn(f"{what} loop through {name!r:.60} ignored")
            return None
        if merge_depth > self.max_import_depth:
            self.issues.error(f"{what} nesting deeper than {self.max_import_depth}")
            return None
        if self._loads >= self.max_loads:
            self.issues.error(f"more than {self.max_loads} imported values")
            return None
        self._loads += 1
        text = self.read(name)
        if text is None:
            self.issues.warn(f"{what} of a name that does not exist: {name!r:.60}")
            return None
        value = parse_json(text, self.issues)
        if value is None:
            return None
        node = self.node(value, path + (name,), merge_depth, depth)
        if sub.endswith(".") or find(node, sub) is None:
            self.issues.error(f"{what}: no subdomain {sub!r:.60} in {name!r:.60}")
            return None
        return find(node, sub)


def _grandchild(node: Node, first: str, second: str) -> Node:
    child = node.children.setdefault(first, Node())
    return child.children.setdefault(second, Node())

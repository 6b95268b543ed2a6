"""DNS name syntax inside a Namecoin ``d/`` value: owner labels, the label a d/ name maps to
under .bit, (relative) target names, and making a target absolute. Shared by the d/ item
parsers, the tree renderer and everything that checks a .bit label (CA proofs, zone, light CLI).

Pure: no I/O, no globals mutated.
"""
from __future__ import annotations

import re
from typing import Any

# Owner labels as browsers and ncdns accept them: letters, digits, '_' and inner '-'.
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_LABEL_RE = re.compile(_LABEL, re.ASCII)
# A name inside a value: absolute ("a.b."), relative to the parent ("a.b"), relative to the
# domain apex ("a.b.@", "@"), or "" (the parent itself).
_REL_NAME_RE = re.compile(rf"|@|(?:{_LABEL}\.)*{_LABEL}(?:\.@?)?", re.ASCII)
# The label under .bit that a d/ name maps to.
_DOMAIN_LABEL_RE = re.compile(r"(?:xn--)?(?:[a-z0-9]+-)*[a-z0-9]+", re.ASCII)


def is_owner_label(label: str) -> bool:
    return _LABEL_RE.fullmatch(label) is not None


def is_domain_label(label: str) -> bool:
    return len(label) <= 63 and _DOMAIN_LABEL_RE.fullmatch(label) is not None


MAX_HOSTNAME = 253             # text form without the root dot: 255 wire bytes


def is_hostname(name: str, wildcard: bool = False) -> bool:
    """A lower-case LDH host name as certificates write it ("www.example.bit", no trailing
    dot): at most 253 characters, each label 1-63; "*" may be the first label if `wildcard`."""
    labels = name.split(".")
    if len(name) > MAX_HOSTNAME or len(labels) < 2:
        return False
    if wildcard and labels[0] == "*":
        labels = labels[1:]
    return all(is_domain_label(lb) for lb in labels)


def wire_length_ok(absolute: str) -> bool:
    """An absolute name ("a.b.") fits the 255-byte wire limit."""
    return len(absolute) + 1 <= 255


def rel_name(raw: Any) -> str | None:
    """Syntax-check a (possibly relative) target name; lower-cased, or None if invalid."""
    if not isinstance(raw, str):
        return None
    name = raw.lower()
    if len(name) > 255 or _REL_NAME_RE.fullmatch(name) is None:
        return None
    return name


def qualify(name: str, owner: str, apex: str, is_top: bool) -> str | None:
    """Make a target name absolute. Relative names are relative to the parent of the node
    they sit on (to the node itself at the top level of a value); ``@`` is the apex."""
    if name.endswith("."):
        absolute = name
    else:
        base = owner if is_top else owner.split(".", 1)[1]
        if name == "":
            absolute = base
        elif name == "@":
            absolute = apex
        elif name.endswith(".@"):
            absolute = name[:-2] + "." + apex
        else:
            absolute = name + "." + base
    return absolute if wire_length_ok(absolute) else None

"""Reader for the ncdns conversion suite (``tests/data/nctestsuite.txt``, a copy of the public
conformance data in ``../shared/testdata/``, kept in the repository so a fresh clone runs it).

Format: an entry starts with ``IN <id>``, then a Namecoin name line and its JSON value;
further ``IN`` / name / value groups give names the first one imports; ``OUT`` (or
``OUT <n>``, n = number of errors expected) is followed by the expected records, one per
line, until a blank line or the next entry. ``#`` lines are comments. A record line may
begin with a section tag (``AN``, ``NS``, ``AD``), which is stripped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

SUITE_PATH = Path(__file__).resolve().parents[1] / "data" / "nctestsuite.txt"
SECTION_TAGS = ("AN", "NS", "AD")


@dataclass(frozen=True)
class SuiteEntry:
    id: str
    names: dict[str, str]  # Namecoin name -> JSON value text, first is the queried one
    records: tuple[str, ...]  # expected "owner IN TYPE rdata" lines, sorted
    num_errors: int

    @property
    def first_name(self) -> str:
        return next(iter(self.names))

    @property
    def parses(self) -> bool:
        """Whether the queried name's value is JSON at all (the suite skips it if not)."""
        try:
            json.loads(self.names[self.first_name])
        except ValueError:
            return False
        return True


def normalize_record(line: str) -> str:
    tokens = line.split()
    if len(tokens) > 1 and tokens[0] in SECTION_TAGS and tokens[1].endswith("."):
        tokens = tokens[1:]
    if len(tokens) < 4 or tokens[1] != "IN":
        raise ValueError(f"not a record line: {line!r}")
    return " ".join(tokens)


def _starts_entry(line: str) -> bool:
    return line.startswith(("IN ", "#")) or line.strip() == "IN"


def parse_suite(text: str) -> list[SuiteEntry]:
    lines = text.splitlines()
    entries: list[SuiteEntry] = []
    i = 0

    def fail(msg: str) -> None:
        raise ValueError(f"nctestsuite line {i + 1}: {msg}")

    while i < len(lines):
        line = lines[i].strip()
        if not line or line.startswith("#"):
            i += 1
            continue
        if not line.startswith("IN ") or len(line.split()) != 2:
            fail(f"expected 'IN <id>', got {line!r}")
        entry_id = line.split()[1]
        names: dict[str, str] = {}
        i += 1
        while True:
            if i + 1 >= len(lines):
                fail("truncated entry")
            name, value = lines[i].strip(), lines[i + 1].strip()
            if not name or name in names:
                fail(f"bad or repeated name {name!r}")
            names[name] = value
            i += 2
            if i < len(lines) and lines[i].strip() == "IN":
                i += 1
                continue
            break
        if i >= len(lines) or not lines[i].startswith("OUT"):
            fail("expected OUT")
        out = lines[i].split()
        if out[0] != "OUT" or len(out) > 2 or (len(out) == 2 and not out[1].isdigit()):
            fail(f"bad OUT line {lines[i]!r}")
        num_errors = int(out[1]) if len(out) == 2 else 0
        i += 1
        records = []
        while i < len(lines) and lines[i].strip() and not _starts_entry(lines[i]):
            records.append(normalize_record(lines[i]))
            i += 1
        entries.append(SuiteEntry(entry_id, names, tuple(sorted(records)), num_errors))
    ids = [e.id for e in entries]
    if len(set(ids)) != len(ids):
        raise ValueError("nctestsuite: duplicate entry ids")
    return entries


def load_suite(path: Path = SUITE_PATH) -> list[SuiteEntry]:
    """Raises (so the tests fail, not skip) when the suite file is missing."""
    return parse_suite(path.read_text(encoding="utf-8"))

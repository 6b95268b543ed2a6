"""Log set-up for the node: levels, and `text` (for people) or `json` (for log shippers).

JSON lines are one object per line with `ts` (RFC 3339 UTC, milliseconds), `level`, `logger`
and `msg`, plus every `extra={...}` field a call site passes (e.g. height, hash), so a
collector can filter on them without parsing the message; an exception adds `exc`.
"""
from __future__ import annotations

import json
import logging
import sys
import time

LEVELS = ("debug", "info", "warning", "error")
FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out = {"ts": f"{ts}.{int(record.msecs):03d}Z", "level": record.levelname.lower(),
               "logger": record.name, "msg": record.getMessage()}
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in out:
                out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, separators=(",", ":"), ensure_ascii=False)


def configure(level: str = "info", fmt: str = "text", stream=None) -> None:
    """Replace the root handlers (idempotent: a second call reconfigures, never duplicates)."""
    if level not in LEVELS:
        raise ValueError(f"log level {level!r} (choose from {', '.join(LEVELS)})")
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} (choose from {', '.join(FORMATS)})")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JSONFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(level.upper())

"""The error boundary of the client-side commands (dotbit-resolve, dotbit-connect,
dotbit-tunnel): whatever goes wrong, the user gets one line on stderr and a non-zero exit,
never a traceback. Expected errors carry their own prefix; a closed pipe (`| head`) ends
quietly with 141 as a shell would; Ctrl-C is 130."""
from __future__ import annotations

import os
import sys
from typing import Callable


def run_command(prog: str, body: Callable[[], int], expected: list[tuple[type, str]]) -> int:
    """body()'s exit code, or the exit code of the error it raised. `expected` is checked in
    order (first match wins), before OSError and before the catch-all for bugs."""
    try:
        try:
            return body()
        finally:
            sys.stdout.flush()          # a reader gone: say nothing, even at exit
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        return fail(prog, _line(e, expected))


def _line(e: Exception, expected: list[tuple[type, str]]) -> str:
    for kind, prefix in expected:
        if isinstance(e, kind):
            return f"{prefix}{e}"
    if isinstance(e, OSError):
        return f"I/O error: {e}"
    return f"internal error: {type(e).__name__}: {e}"     # a bug: still one line


def fail(prog: str, line: str) -> int:
    print(f"{prog}: {line}", file=sys.stderr, flush=True)
    return 2

"""`dotbit-connect` run as a real process for the connect tests, and the shape of a refusal."""
from __future__ import annotations

import os
import subprocess
import sys

CONNECT = os.path.join(os.path.dirname(sys.executable), "dotbit-connect")


def connect(*args: str, resolver: str, pin: str, ldir: str, timeout: float = 120) -> subprocess.CompletedProcess:
    cmd = [CONNECT, "--network", "regtest", "--resolver", resolver, "--pin", pin, "--light-dir", ldir,
           "--config", os.devnull, *args]
    return subprocess.run(cmd, capture_output=True, timeout=timeout)


def refused(r: subprocess.CompletedProcess, check: str, words: str = "") -> None:
    """Exit 2, nothing on stdout, the last stderr line names the check (and says `words`), and
    no ';; checked: tls' line when the TLS check is the one that failed."""
    err = r.stderr.decode()
    last = err.strip().splitlines()[-1]
    assert r.returncode == 2 and r.stdout == b"", err
    assert last.startswith(f"dotbit-connect: {check}:") and words in last, err
    assert check != "tls" or ";; checked: tls" not in err, err

"""A server-side signer for `dotbit-tunnel serve --publish-cmd` in tests: holds only the
owner key of the test names (support.resolver.OWNER), signs the ephemeral-key update it is
given and posts it to the resolver.

    python tunnel_signer.py RESOLVER_URL NAME EPH_KEY_B64 EXPIRES
"""
from __future__ import annotations

import base64
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from support.resolver import OWNER  # noqa: E402
from core.ekey import make_update  # noqa: E402


def main() -> int:
    url, name, eph, expires = sys.argv[1:5]
    update = make_update(name.encode(), base64.b64decode(eph), time.time_ns() // 1000, int(expires),
                         OWNER.secret, OWNER.pubkey)
    req = urllib.request.Request(f"{url}/v1/ekey", data=update.to_bytes(), headers={"Content-Type": "application/msgpack"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return 0 if r.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())

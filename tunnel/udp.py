"""What both endpoints do to their UDP socket."""
from __future__ import annotations

import socket

SOCKET_BUFFER = 4 * 1024 * 1024     # a congestion window's burst must not overflow the kernel's queue


def tune(transport) -> None:
    sock = transport.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            pass                     # the system's maximum applies; loss is then recovered

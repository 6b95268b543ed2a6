"""What both endpoints do to their UDP socket."""
from __future__ import annotations

import socket
import sys

SOCKET_BUFFER = 4 * 1024 * 1024     # a congestion window's burst must not overflow the kernel's queue
# Linux's values (Python does not export them): set Don't Fragment on every datagram and
# ignore the kernel's path MTU guess, so a probe larger than the path is lost (or refused with
# EMSGSIZE) instead of being fragmented and "succeeding" (RFC 8899 §3, tunnel/pmtu.py).
IP_MTU_DISCOVER, IPV6_MTU_DISCOVER, PMTUDISC_PROBE = 10, 23, 3


def tune(transport) -> None:
    sock = transport.get_extra_info("socket")
    for opt in (socket.SO_RCVBUF, socket.SO_SNDBUF):
        try:
            sock.setsockopt(socket.SOL_SOCKET, opt, SOCKET_BUFFER)
        except OSError:
            pass                     # the system's maximum applies; loss is then recovered
    if sys.platform.startswith("linux"):
        level, opt = ((socket.IPPROTO_IPV6, IPV6_MTU_DISCOVER) if sock.family == socket.AF_INET6
                      else (socket.IPPROTO_IP, IP_MTU_DISCOVER))
        try:
            sock.setsockopt(level, opt, PMTUDISC_PROBE)
        except OSError:
            pass                     # then probes may pass fragmented: still correct, only slower

"""NOTIFY (RFC 1996) to the `bit.` zone's secondaries, so they fetch a new version when a block
connects instead of waiting for the SOA refresh timer (an hour).

Each target gets one NOTIFY per burst of blocks: the first tip change opens a short window,
tips arriving within it fold into the same message, which carries the SOA of the tip at the
window's end. A NOTIFY is retried over UDP with doubling timeouts until the target answers
(§3.6); a newer serial replaces retries of an older one. Everything runs as event-loop tasks
on a non-blocking socket, so a dead secondary never delays block processing. With TSIG keys,
NOTIFYs are signed with the first key and an answer that does not verify does not count.
"""
from __future__ import annotations

import asyncio
import ipaddress
import logging
from typing import Callable

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.tsig

from node.resolver.dns_answer import soa_rrset
from node.resolver.identity import ZONE
from node.resolver.zone.tsig import Keyring

log = logging.getLogger("dotbit.resolver.notify")

DEBOUNCE = 0.5          # seconds a burst of blocks may take to become one NOTIFY
FIRST_TIMEOUT = 1.0     # doubled after each unanswered try
ATTEMPTS = 5            # 1 + 2 + 4 + 8 + 16 s: a secondary restarting within half a minute still hears


def parse_targets(specs) -> tuple[tuple[str, int], ...]:
    """`--notify` values (`IP:PORT`, `[IPv6]:PORT`, or an IP alone for port 53) -> (ip, port).
    Addresses only: resolving names here would block, and secondaries are known by address."""
    out = []
    for spec in specs or ():
        text = spec.strip()
        host, port = text, "53"
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port = rest.removeprefix(":") or "53"
        elif text.count(":") == 1:
            host, port = text.split(":")
        try:
            addr = ipaddress.ip_address(host)
            number = int(port)
            if not 0 < number < 65536:
                raise ValueError
        except ValueError:
            raise ValueError(f"--notify: expected IP:PORT, got {spec!r}") from None
        out.append((str(addr), number))
    return tuple(out)


def notify_message(serial: int, keyring: Keyring | None) -> dns.message.Message:
    msg = dns.message.make_query(ZONE, dns.rdatatype.SOA, flags=dns.flags.AA)
    msg.set_opcode(dns.opcode.NOTIFY)
    msg.answer.append(soa_rrset(serial))           # §3.7: the new SOA, a hint the secondary may use
    if keyring is not None:
        msg.use_tsig(keyring.first)
    return msg


class _Replies(asyncio.DatagramProtocol):
    def __init__(self):
        self.queue: asyncio.Queue = asyncio.Queue()

    def datagram_received(self, data, addr):
        self.queue.put_nowait(data)

    def error_received(self, exc):                  # ICMP port unreachable: just no answer yet
        pass


class Notifier:
    def __init__(self, targets, serial: Callable[[], int], keyring: Keyring | None = None, *,
                 debounce: float = DEBOUNCE, first_timeout: float = FIRST_TIMEOUT, attempts: int = ATTEMPTS):
        self.targets = tuple(targets)
        self.serial = serial
        self.keyring = keyring
        self.debounce = debounce
        self.first_timeout = first_timeout
        self.attempts = attempts
        self.sent = 0                   # NOTIFY datagrams sent, tries included
        self.acked = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._window: asyncio.TimerHandle | None = None
        self._tasks: dict[tuple, asyncio.Task] = {}

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()

    def stop(self) -> None:
        if self._window is not None:
            self._window.cancel()
            self._window = None
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()

    def tip_changed(self, *_event) -> None:
        """A chain listener (kind, block, entry); safe to call from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._open_window)

    def _open_window(self) -> None:
        if self._window is None:
            self._window = self._loop.call_later(self.debounce, self._fire)

    def _fire(self) -> None:
        self._window = None
        serial = self.serial()
        for target in self.targets:
            old = self._tasks.get(target)
            if old is not None:
                old.cancel()
            self._tasks[target] = self._loop.create_task(self._notify(target, serial))

    async def _notify(self, target: tuple[str, int], serial: int) -> bool:
        where = f"{target[0]}:{target[1]}"
        try:
            transport, replies = await self._loop.create_datagram_endpoint(_Replies, remote_addr=target)
        except OSError as e:
            log.warning("NOTIFY serial %d to %s: %s", serial, where, e.strerror or e)
            return False
        try:
            timeout = self.first_timeout
            for _ in range(self.attempts):
                msg = notify_message(serial, self.keyring)
                transport.sendto(msg.to_wire())
                self.sent += 1
                verdict = await self._await_reply(replies, msg, timeout)
                if verdict is not None:
                    if verdict == dns.rcode.NOERROR:
                        self.acked += 1
                        log.info("NOTIFY serial %d to %s acknowledged", serial, where)
                        return True
                    log.warning("NOTIFY serial %d to %s answered %s", serial, where, dns.rcode.to_text(verdict))
                    return False
                timeout *= 2
            log.warning("NOTIFY serial %d to %s: no answer after %d tries", serial, where, self.attempts)
            return False
        finally:
            transport.close()

    async def _await_reply(self, replies: _Replies, msg: dns.message.Message, timeout: float) -> int | None:
        """The rcode of the answer to `msg`, or None when none came in time. Answers to other
        tries, forgeries and unsigned answers to a signed NOTIFY are skipped."""
        deadline = self._loop.time() + timeout
        while (left := deadline - self._loop.time()) > 0:
            try:
                data = await asyncio.wait_for(replies.queue.get(), left)
            except asyncio.TimeoutError:
                return None
            try:
                reply = dns.message.from_wire(data, keyring=msg.keyring if self.keyring else None,
                                              request_mac=msg.mac if self.keyring else b"")
            except dns.tsig.PeerError as e:        # the target refuses our key: no use retrying
                log.warning("NOTIFY to a target that rejects the TSIG key: %s", type(e).__name__)
                return dns.rcode.NOTAUTH
            except Exception:
                continue
            if (reply.id == msg.id and reply.flags & dns.flags.QR and reply.opcode() == dns.opcode.NOTIFY
                    and (self.keyring is None or reply.had_tsig)):
                return reply.rcode()
        return None

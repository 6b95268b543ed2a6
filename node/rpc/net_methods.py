"""Network RPC methods (bitcoind names and shapes): peers, connections, bans."""
from __future__ import annotations

import time

from p2p.network import parse_hostport
from node.rpc.registry import (CLIENT_NODE_ALREADY_ADDED, CLIENT_NODE_NOT_ADDED, CLIENT_NODE_NOT_CONNECTED,
                       CLIENT_P2P_DISABLED, INVALID_PARAMETER, RPCError, rpc)


def _net(node):
    if node.p2p is None:
        raise RPCError(CLIENT_P2P_DISABLED, "Error: Peer-to-peer functionality missing or disabled")
    return node.p2p


def _target(node, text):
    try:
        return parse_hostport(str(text), node.params.p2p_port)
    except ValueError as e:
        raise RPCError(INVALID_PARAMETER, str(e)) from None


@rpc()
def getpeerinfo(node) -> list:
    """Data about each connected peer."""
    return [p.info() for p in _net(node).peers.values()]


@rpc()
def getconnectioncount(node) -> int:
    """The number of peer connections."""
    return len(_net(node).peers)


@rpc()
def getnetworkinfo(node) -> dict:
    """State of the p2p networking."""
    return _net(node).info()


@rpc()
async def addnode(node, node_address: str, command: str) -> None:
    """Adds ("add") or removes ("remove") a peer to keep connected, or tries one connection
    ("onetry")."""
    net = _net(node)
    target = _target(node, node_address)
    if command == "add":
        if target in net.added:
            raise RPCError(CLIENT_NODE_ALREADY_ADDED, "Error: Node already added")
        net.added[target] = True
    elif command == "remove":
        if net.added.pop(target, None) is None:
            raise RPCError(CLIENT_NODE_NOT_ADDED, "Error: Node could not be removed. It has not been added previously.")
    elif command == "onetry":
        await net.connect_once(target)
    else:
        raise RPCError(INVALID_PARAMETER, "command must be one of add, remove, onetry")
    return None


@rpc()
def disconnectnode(node, address: str = "", nodeid: int | None = None) -> None:
    """Disconnects a peer by address (HOST:PORT) or by id."""
    net = _net(node)
    for p in list(net.peers.values()):
        if (nodeid is not None and p.id == nodeid) or (address and address in (p.addr, _fmt(p.target))):
            p.close("disconnectnode")
            return None
    raise RPCError(CLIENT_NODE_NOT_CONNECTED, "Node not found in connected nodes")


def _fmt(target) -> str:
    return f"{target[0]}:{target[1]}" if target else ""


@rpc()
def setban(node, subnet: str, command: str, bantime: int = 0, absolute: bool = False) -> None:
    """Bans ("add") or unbans ("remove") a host; bantime in seconds (0: the default 24 h), or
    a unix time with absolute=true."""
    net = _net(node)
    host = subnet.split("/")[0]
    if command == "add":
        if net.bans.is_banned(host):
            raise RPCError(CLIENT_NODE_ALREADY_ADDED, "Error: IP/Subnet already banned")
        seconds = (bantime - time.time()) if absolute else (bantime or net.config.ban_seconds)
        if seconds <= 0:
            raise RPCError(INVALID_PARAMETER, "bantime is in the past")
        net.ban(host, seconds)
    elif command == "remove":
        if not net.bans.unban(host):
            raise RPCError(CLIENT_NODE_NOT_ADDED, "Error: Unban failed. Requested address/subnet was not previously manually banned.")
    else:
        raise RPCError(INVALID_PARAMETER, "command must be add or remove")
    return None


@rpc()
def getnodeaddresses(node, count: int = 1) -> list:
    """Addresses from the address book, in random order (count 0: all), with where they sit:
    "tried" (a handshake once completed) or "new", failed attempts since, and the network
    (/24, /56) of the peer that told us."""
    if count < 0:
        raise RPCError(INVALID_PARAMETER, "Address count out of range")
    return [{"time": e.seen, "services": 1, "address": e.host, "port": e.port,
             "network": "ipv6" if ":" in e.host else "ipv4", "tried": e.tried, "attempts": e.attempts,
             "source": e.source} for e in _net(node).book.listing(count)]


@rpc()
def listbanned(node) -> list:
    """Banned hosts with when the ban ends and why."""
    return _net(node).bans.entries()


@rpc()
def clearbanned(node) -> None:
    """Removes every ban."""
    _net(node).bans.clear()
    return None

"""dotbit-tunnel: a MinimaLT-style encrypted transport over UDP (seed 004 §4, docs/protocol.md).

A client that resolved a name through the light client's verified path knows the server's
long-term id key and its current owner-signed ephemeral key before it sends anything, so its
FIRST datagram already carries encrypted data (0-RTT). One tunnel carries many reliable,
ordered streams; it is named by a tunnel ID, not by addresses, so a client may move.

Modules: packet (wire codec, pure), crypto (key agreement, sealing, puzzles, replay cache,
pure), stream (one reliable ordered stream, pure), session (a tunnel: keys, packet numbers,
congestion window, rekeying; no sockets), server / client (asyncio UDP endpoints), resolve
(the verified name lookup), cli (`dotbit-tunnel`). May import core/ and light/; nothing
imports it.
"""

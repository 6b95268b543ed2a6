"""The dotbit p2p network (DESIGN §5). Imports only core/ and itself; the node hands it a
ChainView (implemented in node/chain/p2pview.py).

messages     the pure codec (frame and every message), re-exported from core/p2pwire.py
addrbook     the address book and the ban list, persisted as JSON in the data dir
chainview    the interface (a typing.Protocol) through which p2p sees the chain and mempool
headers      headers received ahead of their blocks (headers-first sync)
sync         block download from several peers, out-of-order blocks, stalls, progress log
peer         one connection: reader and writer tasks, send queue, per-peer state and limits
connections  P2PConfig; listening, dialling with back-off, caps, timeouts, scores and bans
network      Network (on Connections): handshake, message handling, relay, info for RPC
"""

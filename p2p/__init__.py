"""The dotbit p2p network (DESIGN §5).

messages   pure codecs: the frame (magic | length | msgpack [type, body]) and every message
addrbook   the address book and the ban list, persisted as JSON in the data dir
chainview  the small interface through which p2p sees the chain and the mempool
headers    headers received ahead of their blocks (headers-first sync)
sync       block download from several peers, out-of-order blocks, stalls, progress log
peer       one connection: reader and writer tasks, send queue, per-peer state and limits
network    listening, dialling, handshake, message handling, relay, scores and bans
"""

"""The dotbit p2p network (DESIGN §5). Imports only core/ and itself; the node hands it a
ChainView (implemented in node/chain/p2pview.py).

messages     the pure codec (frame and every message), re-exported from core/p2pwire.py
addrbook     the address book: new/tried tables of fixed slots, persisted as JSON in the data dir
addrpolicy   its pure rules: keyed bucket hashing by network, terrible entries, pick odds
banlist      the ban list, persisted as JSON in the data dir
jsonfile     crash-safe whole-file JSON writes shared by both
chainview    the interface (a typing.Protocol) through which p2p sees the chain and mempool
headers      headers received ahead of their blocks (headers-first sync)
sync         block download from several peers, out-of-order blocks, stalls, progress log
peer         one connection: reader and writer tasks, send queue, per-peer state and limits
connections  P2PConfig; listening, dialling (anchors, picks from distinct networks, feelers)
             with back-off, caps, timeouts, scores and bans
network      Network (on Connections): handshake, message handling, relay, info for RPC
"""

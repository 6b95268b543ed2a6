"""The chain: the store, the block index, chain state and the mempool (DESIGN §1, §2).

layout      the ONE key table of the node's LevelDB (every key prefix, typed key builders)
storage     the key-value interface (get, iterator, write_batch) on LevelDB or in memory
chaindb     the chain store: every chain key is read or written here; the queries adapters
            use (raw block, address coins, address history, projection comparison)
blockindex  the in-memory index entry of a header (height, chainwork, status), fork point
chainstate  block acceptance, most-work chain selection, connect/disconnect and reorgs
mempool     unconfirmed transactions checked against the tip, with their name operations
p2pview     the node's implementation of p2p's ChainView (p2p/chainview.py)
Projections that write their own keys into a block's batch (node/names/index.py) and the
resolver's own records (ekeys.py, ca/store.py) also use layout; adapters (p2p, RPC,
operator commands) never do.
"""

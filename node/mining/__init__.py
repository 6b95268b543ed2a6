"""Mining: everything that makes blocks on this node's chain.

  template.py     the next block on the tip with the mempool's best transactions
  miner.py        CPU proof-of-work search (midstate, a worker process per core)
  loop.py         Mining: solve one block (generate) or keep mining every few seconds (--mine)
  rpc.py          getminingaddress, generate, generatetoaddress, getblocktemplate, submitblock
"""

"""JSON-RPC, bitcoind-style.

  server.py          HTTP POST + cookie auth; every error converted to an RPC error here
  registry.py        @rpc marks a method; the service adds modules to one Registry (help, binding,
                     parameter checks, error codes)
  methods.py         chain, mempool, address index and control methods, shared argument parsers
  name_methods.py    name_show, name_history, name_scan, name_pending, name_checkdb, getnameproof
  net_methods.py     peers, connections, bans;  status_methods.py  getnodestatus
  zone_methods.py    dumpzone;  views.py  JSON shapes of headers, transactions and covenants
Mining methods live in node/mining/rpc.py.
"""

"""The full node `dotbit-node`: everything that stores, validates, mines and serves the chain.

  cli.py          the command line: parses flags, loads the config, calls the service
  config.py       core/config.py with the real environment and files (flags > env > file > defaults)
  settings.py     NodeSettings / ResolverSettings: the one settings object, built once
  service.py      Node, the one composition root: builds and wires every part, runs them
  compose.py      the parts built from settings (resolver options, the RPC method registry)
  events.py       Event: the typed subscribe/emit helper behind chain, name and ekey events
  devrun.py       `make run`: dotbit-node --regtest --mine --resolver plus a banner
  demo.py         `make demo`: the whole story in subprocesses (node, wallet, light client)
  exposure.py     what may face the network: RPC bind check, DNS rate limiter
  metrics.py      getnodestatus numbers and Prometheus /metrics
  logs.py         text or JSON log lines;  secretfile.py  0600 key files  (the JSON-RPC client is wallet/nodeclient.py)
  chain/          store and its one key table, chain state (connect/disconnect/reorg), mempool
  names/          name index, history, expiry and the name tree's storage (a chain projection)
  mining/         block templates, the CPU miner, the mining loop and the mining RPCs
  rpc/            JSON-RPC server, method registry and the methods (chain, names, net, status, zone)
  resolver/       DNS, DNSSEC, the signed HTTP API, record sources (CA, DANE), ekeys, zone
  ops/            operator subcommands: status, reindex/checkdb, zone export
"""

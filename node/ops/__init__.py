"""Operator subcommands of `dotbit-node` that act on a data dir or a running node.

  status.py       `status`: one screen of a running node's health over RPC
  maintenance.py  `reindex` and `checkdb`: rebuild and check every projection from the blocks
  zone_export.py  `zone export`: the signed bit. zone as a file (from a running node or the DB)
"""

"""dotbit-wallet: an HD wallet for dotbit coins and names that talks to a node over JSON-RPC.

  keys        seed words (BIP39) and BIP32 derivation, the account's key chains
  storage     the encrypted, versioned wallet file, atomic saves, one process per file
  nodeclient  JSON-RPC to the node (cookie auth)
  txbuild     coin selection, fees, change, signing
  wallet      the wallet: file + keys + its view of the chain (gap-limit scan)
  names       register/update/renew/transfer and pending registrations
  values      name value checks, tls and minimalT items
  ekeys       MinimaLT ephemeral keys: generate, keep the secret, sign, post to a resolver
  cli         the `dotbit-wallet` command
"""

"""dotbit-wallet: an HD wallet for dotbit coins and names that talks to a node over JSON-RPC.
Imports only core/ and itself; runs with no LevelDB installed.

  keys          seed words (BIP39) and BIP32 derivation, the account's key chains
  storage       the encrypted, versioned wallet file, atomic saves, one process per file
  nodeclient    the one JSON-RPC client to a node (the node's own commands use it too)
  txbuild       coin selection, fees, change, signing
  wallet        the wallet: file + keys + its view of the chain (gap-limit scan)
  names         register/update/renew/transfer and pending registrations; names of any bytes
  name_steps    name_new and name_firstupdate by hand (namecoind's two steps)
  coins         coin rows, history rows, send: shared by the CLI and the RPC daemon
  values        name value checks, tls and minimalT items
  ekeys         MinimaLT ephemeral keys: generate, keep the secret, sign, post to a resolver
  certs         certificates from a resolver's CA for names this wallet owns
  tlsa          a certificate's TLSA association, as a d/ tls item and a zone-file line
  resolverapi   the wallet's client of a resolver's signed HTTP API
  errors        WalletError: one line meant for the user
  cli           the `dotbit-wallet` command: parser and main
  cliutil       the command table and what every command shares (output, passphrase, open)
  cli_coins     commands for the wallet and its coins (create, restore, balance, send, ...)
  cli_names     name commands (name register/update/..., tls, minimalt)
  cli_resolver  commands that talk to a resolver (cert, ekey) and tlsa
  cli_serve     `serve`: runs the wallet RPC daemon
  daemon        the wallet RPC server: cookie auth, bounds, forwarding to the node
  walletservice the open (or locked) wallet behind the daemon, background registrations
  rpc_methods   namecoind's wallet methods over the shared functions above
  rpc_args      the RPC's error codes and argument checks
"""

"""What every party agrees on (DESIGN §1): the full node, the wallet and the light client
build on it alike. Pure: no I/O, no clock, no globals; it imports nothing else of the project
(only the standard library and third-party packages), so light/ and wallet/ need nothing of the
node, and no LevelDB.

  primitives     transactions, headers, blocks: their one canonical encoding each
  encoding       canonical msgpack (bytes as bin, no trailing bytes, size limits)
  consensus      header, proof-of-work, retarget and transaction rules as pure functions
  crypto         hashes, secp256k1 signatures, Base58Check addresses
  signing        signing transactions (wallet, tests, bench)
  params         network parameters (main, testnet, regtest), passed explicitly
  errors         ValidationError(reason, ban score), DecodeError, StoreError
  config         the one TOML config (flags > env > file > defaults); file reading injected
  names/         name rules, name tree and proofs, d/ value interpretation (see names/)
  records        what bit. holds at and below a query name, read through an injected lookup
  sources        record sources (chain, CA, DANE) and the policy that picks one
  envelope       resolver-signed envelopes and their verifier
  ekey           the MinimaLT ephemeral-key update message
  ca_proof       the digests a name's owner signs to get or revoke a certificate from the CA
  ca_evidence    checks tying a CA-sourced TLSA record to a leaf the CA signed
  dane_evidence  DNSSEC evidence pieces the DANE source builds and light clients check
"""

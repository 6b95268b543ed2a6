"""The CA record source: an issuing CA, name-constrained to `.bit`, that certifies whoever
proves control of a name by signing with the name's current owner key (DESIGN §5).

  proof.py      the control proofs (issue, revoke): digests and their checks; pure, shared
                with the wallet
  authority.py  the CA key (encrypted at rest) and certificate; issuing leaves, CRLs, OCSP
  keyfile.py    the key file: standard encrypted PKCS#8 with a strong PBKDF2 count
  evidence.py   what a light client checks about a CA-sourced TLSA record (leaf chains to
                the CA, names the host, hashes to the record); cryptography only
  store.py      issued certificates in the node DB (X/x/Y keys of node/chain/layout.py)
  service.py    issue/revoke policy, automatic revocation on transfer and expiry, the
                RecordSource answering TLSA from current leaves
  http.py       the /v1/ca endpoints on the resolver's HTTP API
"""

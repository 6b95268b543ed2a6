"""The CA record source: an issuing CA, name-constrained to `.bit`, that certifies whoever
proves control of a name by signing with the name's current owner key (DESIGN §5).

  authority.py  the CA key (encrypted at rest) and certificate; issuing leaves, CRLs, OCSP
  keyfile.py    the key file: standard encrypted PKCS#8 with a strong PBKDF2 count
  store.py      issued certificates in the node DB (X/x/Y keys of node/chain/layout.py)
  service.py    issue/revoke policy, automatic revocation on transfer and expiry, the
                RecordSource answering TLSA from current leaves
  http.py       the /v1/ca endpoints on the resolver's HTTP API

The control proofs (core/ca_proof.py, shared with the wallet) and what a light client checks
about a CA-sourced TLSA record (core/ca_evidence.py) live in core/.
"""

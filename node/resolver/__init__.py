"""The resolver: `bit.` over DNS (with online DNSSEC) and a signed HTTP API, from chain names.

  identity.py     the one Ed25519 key: envelope signer and bit. DNSKEY (alg 15), anchor lines
  records.py      read-only name view: d/ records per query name, fresh MinimaLT keys, cache
  sources.py      record sources (chain, CA, DANE) and the policy choosing who answers TLSA
  ca/             the CA source: issuing CA, owner-proof issuance, revocation, CRL/OCSP
  dns_answer.py   one query packet -> one response packet (all DNS logic, fuzzable in-process)
  dnssec.py       online RRSIGs (cached), NSEC white lies
  dns_server.py   UDP (lean batch path) and TCP sockets
  envelope.py     signed envelopes and their verifier (msgpack + PyNaCl only: light clients)
  http_api.py     /v1 endpoints; http_server.py the lean HTTP/1.1 protocol under them
  dane.py         names outside bit.: TLSA/A/AAAA/CNAME from DNSSEC-signed zone files,
                  checked against trust anchors (secure and insecure served, marked; bogus never)
  ekeys.py        off-chain MinimaLT ephemeral-key updates (checked, stored, listened to)
  lightverify.py  the light client's checks (signature, question, header in its own chain,
                  name proofs, expiry, ekeys): one module others can embed
  lightheaders.py its PoW-checked header store and sync; lightclient.py fetching and pinning;
  lightstub.py    the verified-only local DNS stub; lightcli.py `dotbit-resolve`
  service.py      wires it all to a Node (node/service.py) and invalidates caches on events
"""
